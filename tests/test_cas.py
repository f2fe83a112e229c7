"""Generated data for classifiers: held-out and class-balanced subsets, CAS (metrics/cas.py), labelled
sample folders, and the augmentation bench."""
import numpy as np
import pytest
import torch

from gankit import bench
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import Dataset, build_dataset, class_balanced
from gankit.metrics import cas as cas_mod
from gankit.metrics.cas import cas
from gankit.registry import GankitError


@pytest.fixture(scope="module")
def digits_split():
    """scikit-learn's 8x8 digits: 30 of each class held out, the rest to train on."""
    cfg = DataConfig(name="digits", held_out=30)
    return build_dataset(cfg), build_dataset(cfg, "held_out")


def test_held_out_and_per_class_are_fixed_balanced_disjoint_and_nested():
    full = build_dataset(DataConfig(name="digits"))
    train, held = build_dataset(DataConfig(name="digits", held_out=30)), build_dataset(DataConfig(name="digits", held_out=30), "held_out")
    assert len(held) == 300 and torch.bincount(held.c).tolist() == [30] * 10
    assert len(train) + len(held) == len(full)
    key = lambda ds: {tuple(((x + 1) * 127.5).round().flatten().tolist()) for x in ds.x}  # noqa: E731
    assert not key(train) & key(held)  # no image in both (the 8x8 digits hold no duplicates across the split)
    small = build_dataset(DataConfig(name="digits", held_out=30, per_class=5))
    large = build_dataset(DataConfig(name="digits", held_out=30, per_class=20))
    assert torch.bincount(small.c).tolist() == [5] * 10 and torch.bincount(large.c).tolist() == [20] * 10
    assert key(small) <= key(large) <= key(train)  # a smaller subset is part of a larger one
    again = build_dataset(DataConfig(name="digits", held_out=30, per_class=5))
    assert torch.equal(small.x, again.x) and torch.equal(small.c, again.c)


def test_class_balanced_refuses_more_than_the_smallest_class():
    ds = build_dataset(DataConfig(name="digits"))
    smallest = int(torch.bincount(ds.c).min())
    chosen, rest = class_balanced(ds, smallest)
    assert len(chosen) == 10 * smallest and len(rest) == len(ds) - len(chosen)
    with pytest.raises(GankitError, match="smallest class"):
        class_balanced(ds, smallest + 1)
    with pytest.raises(GankitError, match="no labels"):
        class_balanced(Dataset("flat folder", ds.x, None), 3)


def test_cas_of_real_training_images_approaches_the_real_classifier(digits_split):
    train, test = digits_split
    g = torch.Generator().manual_seed(5)

    def real_images(labels):  # a "generator" that returns training images of the asked-for classes
        pools = [train.x[train.c == k] for k in range(10)]
        return torch.stack([pools[int(k)][torch.randint(len(pools[int(k)]), (1,), generator=g)][0] for k in labels])

    r = cas(real_images, train, test, per_class=100)
    assert r["cas_real"] > 0.9
    assert abs(r["cas"] - r["cas_real"]) < 0.05, r
    assert r["gan_test"] > 0.9 and r["cas_per_class"] == 100 and r["cas_test_n"] == 300


def test_cas_of_noise_is_near_chance(digits_split):
    train, test = digits_split
    r = cas(lambda labels: torch.rand(len(labels), 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1,
            train, test, per_class=50)
    assert r["cas"] < 0.25 and r["cas_real"] > 0.85, r
    assert r["gan_test"] < 0.3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny conditional run (with 40 digits of each class held out) and a tiny unconditional one."""
    out = tmp_path_factory.mktemp("runs")
    common = ["train.steps=3", "train.batch_size=16", "model.args.g_width=8", "model.args.d_width=8", "--quiet",
              "--device", "cpu"]
    assert main(["train", "data.held_out=40", *common, "--out", str(out / "cond")]) == 0
    assert main(["train", "model.conditional=false", *common, "--out", str(out / "uncond")]) == 0
    return next((out / "cond").iterdir()), next((out / "uncond").iterdir())


def test_sample_per_class_writes_a_labelled_folder(runs, tmp_path):
    cond, _ = runs
    assert main(["sample", str(cond), "--per-class", "3", "--format", "png-dir", "--out", str(tmp_path / "d")]) == 0
    folders = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert folders == [str(k) for k in range(10)]
    assert all(len(list((tmp_path / "d" / f).glob("*.png"))) == 3 for f in folders)
    back = build_dataset(DataConfig(name="folder", root=str(tmp_path / "d"), resolution=28))
    assert len(back) == 30 and back.class_names == tuple(folders) and torch.bincount(back.c).tolist() == [3] * 10
    assert main(["sample", str(cond), "--per-class", "2", "--format", "npy", "--out", str(tmp_path / "x.npy")]) == 0
    assert np.load(tmp_path / "x.npy").shape == (20, 1, 28, 28)
    assert np.load(tmp_path / "x-labels.npy").tolist() == [k for k in range(10) for _ in range(2)]


def test_eval_cas_on_the_runs_held_out_images(runs, monkeypatch, capsys):
    monkeypatch.setattr(cas_mod, "MIN_STEPS", 5)
    monkeypatch.setattr(cas_mod, "MIN_EPOCHS", 1)
    cond, _ = runs
    assert main(["eval", str(cond), "--metrics", "cas", "--per-class", "20", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for key in ("cas ", "cas_real", "gan_test", "cas_per_class", "cas_test_n"):
        assert key in out
    assert "400" in out.split("cas_test_n")[1].splitlines()[0]  # the 40 held-out digits of each class


@pytest.mark.parametrize("which, args, words", [
    (1, ["--metrics", "cas"], ["unconditional", "model.conditional"]),
    (0, ["--metrics", "cas", "--per-class", "0"], ["--per-class must be at least 1"]),
])
def test_eval_cas_bad_input(runs, which, args, words, capsys):
    assert main(["eval", str(runs[which]), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_cas_needs_real_images_g_never_saw(tmp_path, capsys):
    assert main(["train", "train.steps=2", "train.batch_size=16", "model.args.g_width=8", "model.args.d_width=8",
                 "--quiet", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert main(["eval", str(next(tmp_path.iterdir())), "--metrics", "cas"]) == 2
    assert "never saw" in capsys.readouterr().err


def test_sample_per_class_bad_input(runs, capsys):
    cond, uncond = runs
    assert main(["sample", str(uncond), "--per-class", "3"]) == 2
    assert "model.conditional" in capsys.readouterr().err
    assert main(["sample", str(cond), "--per-class", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_augment_bench_runs_at_a_tiny_size(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cas_mod, "MIN_STEPS", 3)
    monkeypatch.setattr(cas_mod, "MIN_EPOCHS", 1)
    results = bench.augment(ks=(2,), seeds=2, minutes=0, gen_per_class=4, held_out=20, out=str(tmp_path),
                            overrides=["train.steps=2", "model.args.g_width=8", "model.args.d_width=8",
                                       "train.device=cpu"], device="cpu")
    assert list(results) == [2] and len(results[2]) == 2
    for r in results[2]:
        assert all(0.0 <= r[key] <= 1.0 for key in ("real", "real+gen", "gen"))
    table = bench.augment_report(results, 4, "the held-out digits")
    assert "| 2 |" in table and "(b) real + 4 generated / class" in table
    assert main(["bench", "augment", "--k", "600", "--seeds", "1", "--out", str(tmp_path)]) == 2
    assert "smallest class" in capsys.readouterr().err
