"""Crash safety for real: SIGKILL a training process at random moments (saves included), check that the
checkpoint on disk always loads, resume, and compare with an uninterrupted run bit for bit."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from gankit import checkpoint
from gankit.cli import main

ARGS = ["--recipe", "dcgan", "model.args.g_width=8", "model.args.d_width=8", "train.batch_size=16",
        "train.ckpt_every=1", "train.sample_every=1000", "train.log_every=5", "--device", "cpu", "--quiet"]
STEPS = 60
KILLS = 6


def launch(out: Path, resume: Path = None):
    extra = ["--resume", str(resume)] if resume else []
    return subprocess.Popen([sys.executable, "-m", "gankit", "train", *ARGS, f"train.steps={STEPS}",
                             "--out", str(out), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for_training(out: Path, before, proc, timeout=120):
    """Until a new last.pt appears (startup takes seconds, and varies on a loaded machine)."""
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        lasts = sorted(out.glob("*/checkpoints/last.pt")) if out.exists() else []
        if lasts and lasts[-1].stat().st_mtime_ns != before:
            return
        time.sleep(0.05)


def final_weights(run: Path):
    s = checkpoint.load(run / "checkpoints" / "last.pt")
    assert s["step"] == STEPS
    return s


def test_sigkill_at_random_moments_then_resume_is_exact(tmp_path):
    straight = launch(tmp_path / "straight")
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    want = final_weights(next((tmp_path / "straight").iterdir()))

    rng = random.Random(1234)
    out, run, survived, mid_save = tmp_path / "killed", None, 0, 0
    for _ in range(KILLS):
        before = (run / "checkpoints" / "last.pt").stat().st_mtime_ns if run else None
        proc = launch(out, resume=run)
        wait_for_training(out, before, proc)
        time.sleep(rng.uniform(0.0, 0.6))  # a checkpoint is saved every step: kills land in steps and saves
        if proc.poll() is not None:
            break  # finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        runs = sorted(out.iterdir()) if out.exists() else []
        last = runs[-1] / "checkpoints" / "last.pt" if runs else None
        if last is not None and last.exists():
            mid_save += bool(list(last.parent.glob(".last.pt.*.tmp")))  # killed inside a save
            state = checkpoint.load(last)  # must never fail
            assert 0 <= state["step"] <= STEPS
            run = runs[-1]
            survived += 1
        else:
            run = None  # killed before the run directory had its first checkpoint: start again
            if runs:
                import shutil
                shutil.rmtree(runs[-1])
    assert survived >= 3, f"only {survived} kills hit a resumable run"
    proc = launch(out, resume=run)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    got = final_weights(run)
    assert not list(run.glob("checkpoints/.*.tmp"))  # resume cleans what a killed save left
    print(f"\nkills survived: {survived} of {KILLS} ({mid_save} inside a save); resumed run is bit-exact")
    for key in ("G", "D", "G_ema", "g_opt", "d_opt"):
        a, b = want[key], got[key]
        if key.endswith("opt"):
            a, b = a["state"], b["state"]
            a = {f"{i}.{k}": v for i, st in a.items() for k, v in st.items()}
            b = {f"{i}.{k}": v for i, st in b.items() for k, v in st.items()}
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])), f"{key}.{k}"


def test_on_nan_skip_counts_and_continues(make_cfg):
    from gankit.trainer import train
    cfg = make_cfg("dcgan", "model.args.g_width=8", "model.args.d_width=8", "train.on_nan=skip",
                   "train.lr_d=1e30", "train.lr_g=1e30", steps=6)
    try:
        run = train(cfg, quiet=True)
    except Exception as e:  # weights may still blow up to inf without a NaN loss; that must be a clear stop
        assert "non-finite" in str(e) or "became" in str(e)
        return
    import json
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["train/skipped"] >= 1


def test_unwritable_out_is_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "model.args.g_width=8", "--out", str(blocker / "runs")]) == 2
    assert "cannot write the run directory" in capsys.readouterr().err


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    from gankit.config import DataConfig
    from gankit.data import build_dataset
    Image.fromarray(torch.zeros(100, 100, dtype=torch.uint8).numpy(), "L").save(tmp_path / "bomb.png")
    Image.fromarray(torch.zeros(20, 20, dtype=torch.uint8).numpy(), "L").save(tmp_path / "ok.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.warns(UserWarning, match="skipped 1 .*bomb.png"):
        ds = build_dataset(DataConfig(name="folder", root=str(tmp_path), resolution=8))
    assert len(ds) == 1


def test_resume_of_a_truncated_checkpoint_is_exit_2(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", *ARGS, "train.steps=2", "--out", str(out)]) == 0
    run = next(out.iterdir())
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    assert main(["train", "--resume", str(run), "train.steps=4"]) == 2
    assert "truncated" in capsys.readouterr().err
