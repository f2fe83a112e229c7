"""Discriminator rejection sampling (rejection.py): the acceptance rule, that it turns G's distribution into
the one D's logit describes, labels kept per slot, and the refusals."""
import math

import pytest
import torch
import torch.nn as nn

from gankit.cli import main
from gankit.loading import load_discriminator
from gankit.registry import GankitError
from gankit.rejection import accept_prob, drs_sample
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
