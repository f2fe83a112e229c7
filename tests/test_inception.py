"""The Inception-v3 FID extractor: offline error, weights from a file (refusing pickles), shapes, eval path.
The real TF-FID weights cannot be downloaded here; a file of the right architecture with random weights
exercises the same loading and feature path."""
import pytest
import torch

from gankit.data import Dataset
from gankit.registry import GankitError

import torch_fidelity.feature_extractor_inceptionv3 as fidelity


def _offline(*args, **kwargs):
    raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A state dict of torch-fidelity's Inception-v3 with random weights, saved like the real file."""
    mp = pytest.MonkeyPatch()
    mp.setattr(fidelity, "load_state_dict_from_url", lambda *a, **k: {})
    mp.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    net = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    mp.undo()
    for m in net.modules():  # calibrate BatchNorm on one batch so that random features do not vanish
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net((torch.rand(16, 3, 32, 32) * 255).to(torch.uint8))
    path = tmp_path_factory.mktemp("inc") / "weights-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_offline_without_weights_is_one_line_naming_the_alternative(monkeypatch):
    from gankit.metrics.inception import Inception
    monkeypatch.setattr(fidelity, "load_state_dict_from_url", _offline)
    with pytest.raises(GankitError) as e:
        Inception()
    msg = str(e.value)
    assert "\n" not in msg and "--features classifier" in msg and "--inception-weights" in msg


def test_weights_file_that_is_not_plain_tensors_is_refused(tmp_path):
    import os
    from gankit.metrics.inception import Inception
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": Payload()}, bad)
    with pytest.raises(GankitError, match="not a plain PyTorch state dict"):
        Inception(str(bad))
    assert not marker.exists()
    other = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, other)
    with pytest.raises(GankitError, match="no fc.weight"):
        Inception(str(other))
    with pytest.raises(GankitError, match="no such file"):
        Inception(str(tmp_path / "missing.pth"))


def test_features_from_a_weights_file(weights_file):
    from gankit.metrics.inception import Inception
    inc = Inception(str(weights_file))
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    f, logits = inc(x)
    assert f.shape == (3, 2048) and logits.shape == (3, 1008) and f.dtype == torch.float64
    assert torch.isfinite(f).all()
    f2, _ = inc(x.expand(-1, 3, -1, -1))  # grey = the same grey on three channels
    assert torch.equal(f, f2)
    assert inc.key.startswith("inception-")


def test_evaluate_with_inception_features(weights_file, tmp_path, monkeypatch):
    """FID of a set against itself through the whole inception path is ~0, and far from it for noise;
    unlabelled data gets no class statistics."""
    from gankit.evaluate import evaluate
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(48, 1, 16, 16, generator=g) > 0.7).float() * 2 - 1

    class Replay(torch.nn.Module):
        def __init__(self, data):
            super().__init__()
            self.z_dim, self.c_dim, self.img_shape, self.data = 4, 0, tuple(data.shape[1:]), data
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, c=None):
            return self.data[: len(z)]

    ds = Dataset("tiny", x, None, 0)
    same = evaluate(Replay(x), ds, n=48, metrics=("fid", "is"), features="inception",
                    inception_weights=str(weights_file))
    assert same["features"] == "inception" and "classes" not in same and same["is"] > 0
    assert len(list(tmp_path.glob("features-tiny-inception-*.pt"))) == 1  # real features cached
    noise = evaluate(Replay(torch.rand(48, 1, 16, 16, generator=g) * 2 - 1), ds, n=48, metrics=("fid",),
                     features="inception", inception_weights=str(weights_file))
    # 48 samples of 2048-d features: singular covariances, so "zero" is zero up to round-off of the scale
    assert noise["fid"] > 1.0 and abs(same["fid"]) < 1e-6 * noise["fid"]
