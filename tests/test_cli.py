"""The command line as a user meets it: bad input is one line and exit 2; sample/interpolate work."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.parametrize("args, words", [
    (["train", "--recipe", "dcgn"], ["unknown recipe 'dcgn'", "did you mean 'dcgan'"]),
    (["train", "train.stesp=3"], ["unknown config key 'train.stesp'", "steps"]),
    (["train", "train.steps=-1"], ["train.steps must be positive"]),
    (["train", "loss.name=hinj"], ["unknown loss 'hinj'", "hinge"]),
    (["train", "model.family=dcgna"], ["unknown model family 'dcgna'", "dcgan"]),
    (["train", "train.batch_size=6000", "model.args.g_width=8", "model.args.d_width=8"],
     ["larger than the data set"]),
    (["train", "data.name=folder", "data.root=/nonexistent"], ["not a directory"]),
    (["sample", "/nonexistent/run"], ["no checkpoint"]),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, words):
    r = run_cli(*args, f"--out={tmp_path}" if args[0] == "train" else "--seed=0", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gankit: error:"), r.stderr
    for w in words:
        assert w in lines[0]


def test_the_command_line_starts_without_torchvision():
    """torchvision (and the torch._dynamo its ops import) takes seconds to import; the commands that make no
    pictures (help, eval, translate to .npy, every bad-input error) do not pay for it."""
    code = ("import sys, gankit, gankit.cli; "
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_unwritable_output_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert main(["train", "model.args.g_width=8", f"--out={ro / 'runs'}"]) == 2
    finally:
        ro.chmod(0o700)


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "--recipe", "cgan", "train.steps=3", "train.batch_size=16", "model.args.g_width=8",
                 "model.args.d_width=8", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    return next(out.iterdir())


def test_sample_formats(cgan_run, tmp_path, capsys):
    assert main(["sample", str(cgan_run), "--n", "10", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size[0] > 28
    assert main(["sample", str(cgan_run), "--n", "5", "--format", "npy", "--class", "3",
                 "--out", str(tmp_path / "x.npy")]) == 0
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert main(["sample", str(cgan_run / "checkpoints" / "last.pt"), "--no-ema", "--n", "3",
                 "--format", "png-dir", "--out", str(tmp_path / "dir")]) == 0
    assert len(list((tmp_path / "dir").glob("*.png"))) == 3
    assert main(["sample", str(cgan_run), "--n", "0"]) == 2
    assert main(["sample", str(cgan_run), "--class", "10"]) == 2


def test_sample_is_reproducible_by_seed(cgan_run, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        main(["sample", str(cgan_run), "--n", "4", "--seed", str(seed), "--format", "npy",
              "--out", str(tmp_path / f"{name}.npy")])
    a, b, c = (np.load(tmp_path / f"{n}.npy") for n in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_interpolate(cgan_run, tmp_path):
    assert main(["interpolate", str(cgan_run), "--rows", "3", "--steps", "5", "--out", str(tmp_path / "i.png")]) == 0
    w, h = Image.open(tmp_path / "i.png").size
    assert w > h  # 5 columns, 3 rows


def test_recipes_lists_every_recipe(capsys):
    from gankit.config import recipe_names
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in recipe_names():
        assert name in out
