"""Discriminator rejection sampling (rejection.py): the acceptance rule, that it turns G's distribution into
the one D's logit describes, labels kept per slot, the refusals, and refitting D to the density ratio."""
import json
import math

import pytest
import torch
import torch.nn as nn

from gankit.cli import main
from gankit.data import Dataset
from gankit.loading import load_discriminator
from gankit.registry import GankitError
from gankit.rejection import accept_prob, drs_sample, refit
from gankit.trainer import train


class TwoPoints(nn.Module):
    """G whose samples are (+1, 0) or (-1, 0) with probability 1/2 each (by the sign of z[:, 0]); with
    c_dim, x[:, 1] carries the label so a test can read it back."""

    def __init__(self, c_dim=0):
        super().__init__()
        self.z_dim, self.c_dim, self.img_shape = 2, c_dim, (2,)
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, z, c=None):
        x = torch.stack([torch.sign(z[:, 0]), torch.zeros(len(z))], 1)
        if c is not None:
            x[:, 1] = c.float()
        return x + self.anchor


class RatioD(nn.Module):
    """D with the optimal logit for data that puts `p_plus` on (+1, 0): log p_data(x) / p_G(x)."""

    def __init__(self, p_plus=0.8, loss="bce"):
        super().__init__()
        self.logit_plus, self.logit_minus = math.log(p_plus / 0.5), math.log((1 - p_plus) / 0.5)
        self.config = {"loss": {"name": loss}}

    def forward(self, x, c=None):
        return torch.where(x[:, 0] > 0, self.logit_plus, self.logit_minus)


class LinearD(nn.Module):
    """D whose logit is w[c] * x0 + b[c] (c = 0 when unconditional): it can represent the optimal logit of
    any data on the two points of TwoPoints, per class. Starts at logit 0 with the given loss recorded."""

    def __init__(self, classes=1, loss="hinge"):
        super().__init__()
        self.w, self.b = nn.Parameter(torch.zeros(classes)), nn.Parameter(torch.zeros(classes))
        self.config = {"loss": {"name": loss}}

    def forward(self, x, c=None):
        c = torch.zeros(len(x), dtype=torch.long) if c is None else c
        return self.w[c] * x[:, 0] + self.b[c]


def two_point_data(p_plus, n=20000):
    """Data on (+1, k) / (-1, k) for class k, with P(+1 | k) = p_plus[k]."""
    g = torch.Generator().manual_seed(0)
    c = torch.arange(n) % len(p_plus)
    sign = torch.where(torch.rand(n, generator=g) < torch.tensor(p_plus)[c], 1.0, -1.0)
    x = torch.stack([sign, c.float() if len(p_plus) > 1 else torch.zeros(n)], 1)
    return Dataset("two-points", x, c if len(p_plus) > 1 else None, len(p_plus) if len(p_plus) > 1 else 0)


def test_accept_prob_is_the_density_ratio_over_its_max_without_shift():
    logits = torch.tensor([2.0, 2.0 + math.log(0.25), 2.0 + math.log(0.5), -10.0, 5.0])
    p = accept_prob(logits, max_logit=2.0)
    assert torch.allclose(p, torch.tensor([1.0, 0.25, 0.5, math.exp(-12.0), 1.0]), atol=1e-5)  # above max: kept


def test_accept_prob_shift_puts_that_quantile_at_one_half():
    logits = torch.linspace(-3, 0, 101)
    p = accept_prob(logits, max_logit=0.0, shift=0.95)
    assert p[95].item() == pytest.approx(0.5, abs=1e-6)
    assert (p.diff() > 0).all()  # still ordered by D's logit


def test_drs_turns_g_into_the_distribution_d_describes():
    G = TwoPoints()
    raw = (G(torch.randn(20000, 2)) [:, 0] > 0).float().mean()
    x, info = drs_sample(G, RatioD(0.8), 4000, seed=0, burn_in=1000, batch=1000)
    assert abs(raw - 0.5) < 0.02
    assert (x[:, 0] > 0).float().mean().item() == pytest.approx(0.8, abs=0.025)
    assert info["acceptance"] == pytest.approx(0.5 * 1 + 0.5 * 0.25, abs=0.03)  # E[p_data / (M p_G)]
    assert info["max_logit"] == pytest.approx(math.log(1.6))


def test_drs_is_reproducible_from_its_seed():
    G, D = TwoPoints(), RatioD(0.7)
    a, b, c = (drs_sample(G, D, 500, seed=s, burn_in=100, batch=100)[0] for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_conditional_drs_keeps_each_slot_class():
    G = TwoPoints(c_dim=3)
    x, _ = drs_sample(G, RatioD(0.9), 30, seed=0, burn_in=100, batch=50)
    assert torch.equal(x[:, 1], (torch.arange(30) % 3).float())
    x, _ = drs_sample(G, RatioD(0.9), 10, seed=0, c=2, burn_in=100, batch=50)
    assert (x[:, 1] == 2).all()


def test_drs_refuses_a_d_whose_logit_is_no_density_ratio_and_a_bad_shift():
    with pytest.raises(GankitError, match="hinge"):
        drs_sample(TwoPoints(), RatioD(0.8, loss="hinge"), 10)
    with pytest.raises(GankitError, match="quantile"):
        drs_sample(TwoPoints(), RatioD(0.8), 10, shift=95)


def test_drs_stops_with_a_message_when_it_keeps_too_few():
    with pytest.raises(GankitError, match="--drs-shift"):
        drs_sample(TwoPoints(), RatioD(0.999), 100, burn_in=100, batch=10, max_draws=50)


def test_drs_from_a_trained_run_through_eval_and_sample(make_cfg, tmp_path, capsys):
    run = train(make_cfg("ring8", steps=20), quiet=True)
    D = load_discriminator(run)
    assert D(torch.zeros(4, 2)).shape == (4,) and D.config["loss"]["name"] == "bce"
    assert main(["eval", str(run), "--drs"]) == 0
    out = capsys.readouterr().out
    assert "drs_acceptance" in out and "hq" in out and (run / "eval-drs.json").is_file()
    assert main(["sample", str(run), "--drs", "--n", "50", "--format", "npy", "--out", str(tmp_path / "s.npy")]) == 0
    assert "DRS: kept" in capsys.readouterr().out
    assert main(["sample", str(run / "generator.safetensors"), "--drs"]) == 2  # exports hold G only


def test_packed_discriminator_is_refused(make_cfg):
    run = train(make_cfg("ring8", "train.pack=2", steps=2), quiet=True)
    with pytest.raises(GankitError, match="packs"):
        load_discriminator(run)


def test_refit_turns_any_d_into_the_log_density_ratio_and_leaves_the_original_alone():
    G, D = TwoPoints(), LinearD(loss="hinge")
    with pytest.raises(GankitError, match="--drs-refit"):
        drs_sample(G, D, 10)  # a hinge D's logit is no density ratio
    D2 = refit(G, D, two_point_data([0.8]), steps=300, batch=1024, lr=0.05)
    logits = D2(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    assert logits.tolist() == pytest.approx([math.log(0.8 / 0.5), math.log(0.2 / 0.5)], abs=0.05)
    assert D.w.item() == D.b.item() == 0.0 and not D2.training and not any(p.requires_grad for p in D2.parameters())
    x, _ = drs_sample(G, D2, 4000, seed=0, burn_in=1000, batch=1000)  # now accepted, and it samples the data
    assert (x[:, 0] > 0).double().mean().item() == pytest.approx(0.8, abs=0.03)


def test_refit_pairs_each_sample_with_its_label():
    """Class 0 puts 90% on +1, class 1 30%: the refit logits must be each class's own ratio."""
    G, D = TwoPoints(c_dim=2), LinearD(classes=2)
    D2 = refit(G, D, two_point_data([0.9, 0.3]), steps=300, batch=1024, lr=0.05)
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0], [-1.0, 1.0]])
    want = [math.log(0.9 / 0.5), math.log(0.1 / 0.5), math.log(0.3 / 0.5), math.log(0.7 / 0.5)]
    assert D2(x, torch.tensor([0, 0, 1, 1])).tolist() == pytest.approx(want, abs=0.07)
    with pytest.raises(GankitError, match="positive"):
        refit(G, D, two_point_data([0.9, 0.3]), steps=0)


def test_drs_refit_through_eval_sample_and_a_hinge_run(make_cfg, tmp_path, capsys):
    run = train(make_cfg("ring8", "loss.name=hinge", steps=20), quiet=True)
    assert main(["eval", str(run), "--drs"]) == 2 and "--drs-refit" in capsys.readouterr().err
    assert main(["eval", str(run), "--drs", "--drs-refit", "20"]) == 0
    assert '"drs_refit": 20' in (run / "eval-drs.json").read_text()
    assert main(["sample", str(run), "--drs", "--drs-refit", "20", "--n", "50", "--format", "npy",
                 "--out", str(tmp_path / "s.npy")]) == 0
    assert "DRS: kept" in capsys.readouterr().out
    assert main(["eval", str(run), "--drs", "--drs-refit", "5", "--drs-refit-batch", "64"]) == 0
    written = json.loads((run / "eval-drs.json").read_text())
    assert (written["drs_refit"], written["drs_refit_batch"]) == (5, 64)
    assert main(["sample", str(run), "--drs", "--drs-refit", "5", "--drs-refit-batch", "0", "--n", "5",
                 "--format", "npy", "--out", str(tmp_path / "t.npy")]) == 2
    assert "positive steps and batch" in capsys.readouterr().err
