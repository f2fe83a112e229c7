import os

import pytest
import torch

from gankit import checkpoint
from gankit.registry import GankitError


class Payload:
    """Unpickling this runs os.system: a checkpoint must never do that."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_save_load_round_trip(tmp_path):
    state = {"G": {"w": torch.randn(3)}, "step": 5, "rng": checkpoint.rng_state()}
    checkpoint.save(tmp_path / "a.pt", state)
    back = checkpoint.load(tmp_path / "a.pt")
    torch.testing.assert_close(back["G"]["w"], state["G"]["w"])
    assert back["step"] == 5
    checkpoint.set_rng_state(back["rng"])
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_code_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "G": Payload(marker)}, path)
    with pytest.raises(GankitError, match="refused"):
        checkpoint.load(path)
    assert not marker.exists()


def test_truncated_and_foreign_files(tmp_path):
    checkpoint.save(tmp_path / "good.pt", {"G": {"w": torch.randn(100)}})
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(GankitError, match="truncated"):
        checkpoint.load(tmp_path / "cut.pt")
    torch.save({"model": torch.randn(2)}, tmp_path / "foreign.pt")
    with pytest.raises(GankitError, match="not a gankit checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(GankitError):
        checkpoint.load(tmp_path / "text.pt")
    with pytest.raises(GankitError, match="no checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")


def test_non_finite_weights_are_refused(tmp_path):
    checkpoint.save(tmp_path / "nan.pt", {"G": {"w": torch.tensor([1.0, float("nan")])}})
    with pytest.raises(GankitError, match="non-finite"):
        checkpoint.load(tmp_path / "nan.pt")


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"G": {"w": torch.ones(2)}})

    def boom(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(GankitError, match="No space left.*intact"):
        checkpoint.atomic_write(path, boom)
    torch.testing.assert_close(checkpoint.load(path)["G"]["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_failed_rng_restore_is_an_error():
    state = checkpoint.rng_state()
    state["numpy"]["keys"] = torch.zeros(3, dtype=torch.int64)  # wrong length for MT19937
    with pytest.raises(GankitError, match="RNG state could not be restored"):
        checkpoint.set_rng_state(state)


def test_wrong_shapes_are_refused_before_use():
    small, big = torch.nn.Linear(2, 3), torch.nn.Linear(2, 4)
    with pytest.raises(GankitError, match="do not fit"):
        checkpoint.load_state(big, small.state_dict(), "G")
