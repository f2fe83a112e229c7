"""Exact values of every loss at known logits, and the sign each loss rewards."""
import math

import pytest
import torch
from torch.testing import assert_close

from gankit.losses import LOSSES

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([0.0, -1.0])


def sp(x):  # softplus
    return math.log1p(math.exp(x))


def g_loss(loss, fake, real):
    """G's loss as the trainer calls it: a relativistic loss also sees the real batch's logits."""
    return loss.g_loss(fake, real) if loss.g_needs_real else loss.g_loss(fake)


EXPECTED = {  # (d_loss(REAL, FAKE), g_loss(FAKE[, REAL])) written out by hand
    "bce": ((sp(0) + sp(-2)) / 2 + (sp(0) + sp(-1)) / 2, (sp(0) + sp(1)) / 2),
    "minimax": ((sp(0) + sp(-2)) / 2 + (sp(0) + sp(-1)) / 2, -(sp(0) + sp(-1)) / 2),
    "lsgan": (0.5 * (1 + 1) / 2 + 0.5 * (0 + 1) / 2, 0.5 * (1 + 4) / 2),
    "wgan": (-0.5 - 1.0, 0.5),
    "hinge": ((1 + 0) / 2 + (1 + 0) / 2, 0.5),
    # pairs (real, fake) = (0, 0), (2, -1): D pays softplus(fake - real), G softplus(real - fake)
    "rpgan": ((sp(0) + sp(-3)) / 2, (sp(0) + sp(3)) / 2),
}


def test_every_loss_has_expected_values():
    assert set(EXPECTED) == set(LOSSES.names())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_exact_values(name):
    loss = LOSSES.get(name)
    d_want, g_want = EXPECTED[name]
    assert_close(loss.d_loss(REAL, FAKE), torch.tensor(d_want))
    assert_close(g_loss(loss, FAKE, REAL), torch.tensor(g_want))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loss_signs(name):
    """D's loss falls as real logits rise / fake logits fall; G's loss falls as fake logits rise."""
    loss = LOSSES.get(name)
    r = torch.full((4,), 0.5, requires_grad=True)
    f = torch.full((4,), 0.5, requires_grad=True)
    loss.d_loss(r, f).backward()
    assert (r.grad < 0).all() and (f.grad > 0).all()
    f2, r2 = torch.full((4,), 0.5, requires_grad=True), torch.full((4,), 0.5, requires_grad=True)
    g_loss(loss, f2, r2).backward()
    assert (f2.grad < 0).all()
    assert r2.grad is None or (r2.grad > 0).all()  # a relativistic G gains as the real logits fall


def test_bce_matches_torch_bce_with_logits():
    r, f = torch.randn(32), torch.randn(32)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    want = bce(r, torch.ones(32)) + bce(f, torch.zeros(32))
    assert_close(LOSSES.get("bce").d_loss(r, f), want)
    assert_close(LOSSES.get("bce").g_loss(f), bce(f, torch.ones(32)))


def test_rpgan_pairs_sample_by_sample():
    """RpGAN is not a function of the two means: swapping which fake meets which real changes it."""
    rp = LOSSES.get("rpgan")
    r, f = torch.tensor([0.0, 4.0]), torch.tensor([1.0, 3.0])
    assert_close(rp.d_loss(r, f), torch.tensor((sp(1) + sp(-1)) / 2))
    assert_close(rp.d_loss(r, f.flip(0)), torch.tensor((sp(3) + sp(-3)) / 2))
