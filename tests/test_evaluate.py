"""The offline feature classifier and `gankit eval` end to end (real training, in the test run's cache)."""
import json

import pytest
import torch

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import build_dataset


def test_classifier_is_accurate_and_cached(feature_cache):
    from gankit.metrics.classifier import data_hash, get_classifier
    ds = build_dataset(DataConfig(name="mnist-5k"))
    model, acc = get_classifier(ds, quiet=True)
    assert acc >= 0.98
    assert (feature_cache / f"classifier-{data_hash(ds)}.pt").is_file()
    files = sorted(feature_cache.glob("classifier-*.pt"))
    renamed = build_dataset(DataConfig(name="mnist-5k"))
    renamed.name = "mnist2digits"  # the same images and labels under another name (its domain A): no retraining
    assert get_classifier(renamed, quiet=True)[1] == acc and sorted(feature_cache.glob("classifier-*.pt")) == files
    again, acc2 = get_classifier(ds, quiet=True)
    assert acc2 == acc
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_a_classifier_is_trained_on_first_use_only(tmp_path, monkeypatch):
    from gankit.metrics import classifier
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    calls, real = [], classifier.train_classifier
    monkeypatch.setattr(classifier, "train_classifier", lambda ds, **kw: calls.append(ds.name) or real(ds, **kw))
    ds = build_dataset(DataConfig(name="digits"))  # scikit-learn's 8x8 digits: seconds to train
    model, acc = classifier.get_classifier(ds, quiet=True)
    assert calls == ["digits"] and len(list(tmp_path.glob("classifier-*.pt"))) == 1 and acc > 0.8
    again, acc2 = classifier.get_classifier(ds, quiet=True)
    assert calls == ["digits"] and acc2 == acc
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_real_vs_real_small_and_noise_large():
    from gankit.evaluate import real_features, real_vs_real
    from gankit.metrics.classifier import Features, embed, get_classifier
    from gankit.metrics.scores import fid
    ds = build_dataset(DataConfig(name="mnist-5k"))
    floor = real_vs_real(ds, metrics=("fid",))["fid"]
    model, acc = get_classifier(ds, quiet=True)
    real_f, _ = real_features(Features(model, acc), ds)
    noise_f, _ = embed(model, torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert floor < 3 and fid(real_f, noise_f) > 100 * floor


def test_eval_command_writes_eval_json(tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    assert main(["train", "--recipe", "dcgan", "train.steps=2", "model.args.g_width=8", "model.args.d_width=8",
                 "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    run = next(out.iterdir())
    assert main(["eval", str(run), "--n", "500"]) == 0
    result = json.loads((run / "eval.json").read_text())
    for key in ["fid", "kid", "kid_std", "is", "precision", "recall", "density", "coverage", "classes", "class_kl"]:
        assert key in result
    assert result["fid"] > 5  # two G steps make noise, far from digits
    assert 0 <= result["cond_acc"] <= 1  # the default recipe is class-conditional on labelled data
    import torch_fidelity.feature_extractor_inceptionv3 as fidelity

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
    monkeypatch.setattr(fidelity, "load_state_dict_from_url", offline)
    capsys.readouterr()
    assert main(["eval", str(run), "--features", "inception"]) == 2
    assert "--features classifier" in capsys.readouterr().err
    assert main(["eval", str(run), "--metrics", "fdi"]) == 2


def test_eval_during_training_logs_metrics_and_keeps_best(make_cfg):
    from gankit import checkpoint
    from gankit.trainer import train
    cfg = make_cfg("dcgan", "model.args.g_width=8", "model.args.d_width=8", "train.eval_every=2",
                   "train.eval_n=200", steps=4)
    run = train(cfg, quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    fids = [(r["step"], r["metric/fid"]) for r in rows if "metric/fid" in r]
    assert [s for s, _ in fids] == [2, 4]
    best = checkpoint.load(run / "checkpoints" / "best.pt")
    assert best["step"] == min(fids, key=lambda x: x[1])[0]
    assert best["counters"]["best_fid"] == min(f for _, f in fids)


def test_eval_every_toy2d_logs_modes(make_cfg):
    from gankit.trainer import train
    run = train(make_cfg("ring8", "train.eval_every=2", steps=2), quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert any("metric/modes" in r for r in rows)


class RealByClass(torch.nn.Module):
    """A 'generator' that returns real digits of the asked class: the best a conditional G can do."""

    def __init__(self, ds):
        super().__init__()
        self.z_dim, self.c_dim, self.img_shape = 4, ds.num_classes, ds.img_shape
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.by_class = [ds.x[ds.c == k] for k in range(ds.num_classes)]

    def forward(self, z, c):
        pick = (z[:, 0].abs() * 1000).long()
        return torch.stack([self.by_class[k][i % len(self.by_class[k])] for k, i in zip(c.tolist(), pick.tolist())])


def test_conditional_accuracy_and_real_data_scores():
    from gankit.evaluate import evaluate
    ds = build_dataset(DataConfig(name="mnist-5k"))
    m = evaluate(RealByClass(ds), ds, n=2000)
    assert m["cond_acc"] >= 0.97 and m["classes"] == 10 and m["class_kl"] < 0.01
    assert m["fid"] < 5 and m["precision"] > 0.8 and m["recall"] > 0.8


def test_stacked_mnist_data_and_its_real_modes():
    """Channel k of every sample is a bundled digit whose label is the k-th digit of the 3-digit label;
    the real data read back by the classifier covers all 1,000 modes nearly uniformly."""
    from gankit.evaluate import stacked_modes
    base = build_dataset(DataConfig(name="mnist-5k"))
    ds = build_dataset(DataConfig(name="stacked-mnist"))
    x, base_x = ds.x, base.x  # floats in [-1, 1], made once from the bytes
    assert x.shape == (50_000, 3, 28, 28) and ds.num_classes == 1000 and int(ds.c.max()) < 1000
    for i in (0, 1234, 49_999):
        for k, place in enumerate((100, 10, 1)):
            match = (base_x == x[i, k]).flatten(1).all(1)
            assert match.any() and int(base.c[match][0]) == int(ds.c[i]) // place % 10
    m = stacked_modes(x[:13_000])  # half the protocol's 26,000: 13 draws per mode, none missed in expectation
    assert m["modes"] == 1000 and m["kl"] < 0.1
    one = stacked_modes(x[:1].expand(1000, -1, -1, -1))
    assert one["modes"] == 1 and one["kl"] > 6.5  # log(1000) = 6.91
