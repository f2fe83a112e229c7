"""Metric math against closed forms and hand-made cases."""
import math

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from gankit.data import grid25_means, ring8_means
from gankit.metrics.scores import class_stats, fid, kid, prdc
from gankit.metrics.stacked import mode_stats as stacked_mode_stats
from gankit.metrics.toy2d import mode_stats


def test_fid_of_a_set_against_itself_is_zero():
    x = torch.randn(500, 8, dtype=torch.float64)
    assert abs(fid(x, x)) < 1e-6


def test_fid_matches_closed_form_for_gaussians():
    """Large samples from N(0, I) and N(m, 4I) in d dims: FID = |m|^2 + d(1 + 4 - 2*2) = |m|^2 + d."""
    g = torch.Generator().manual_seed(0)
    d = 4
    a = torch.randn(200_000, d, generator=g, dtype=torch.float64)
    b = 2 * torch.randn(200_000, d, generator=g, dtype=torch.float64) + 1.0
    assert fid(a, b) == pytest.approx(d * 1.0 + d, rel=0.02)


def test_fid_matches_pytorch_fid_formula():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(3000, 16, generator=g, dtype=torch.float64)
    b = torch.randn(3000, 16, generator=g, dtype=torch.float64) @ torch.randn(16, 16, generator=g, dtype=torch.float64) * 0.3 + 0.2
    an, bn = a.numpy(), b.numpy()
    want = calculate_frechet_distance(an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False))
    assert fid(a, b) == pytest.approx(want, rel=1e-4)


def test_kid_near_zero_on_equal_sets_and_positive_apart():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(2000, 8, generator=g, dtype=torch.float64)
    same = kid(a[:1000], a[1000:], subsets=20, subset_size=500)
    apart = kid(a[:1000], a[1000:] + 1, subsets=20, subset_size=500)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert apart["kid"] > 10 * abs(same["kid"]) and apart["kid"] > 0.1


def test_prdc_identical_and_disjoint():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(400, 4, generator=g, dtype=torch.float64)
    same = prdc(a, a)
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1
    far = prdc(a, a + 100)
    assert far["precision"] == 0 and far["recall"] == 0 and far["coverage"] == 0 and far["density"] == 0


def test_one_class_generator_finds_one_class():
    logits = torch.zeros(1000, 10)
    logits[:, 3] = 5
    labels = torch.arange(1000) % 10
    s = class_stats(logits, labels, 10)
    assert s["classes"] == 1 and s["class_kl"] == pytest.approx(math.log(10)) and s["class_max_share"] == 1
    balanced = torch.nn.functional.one_hot(labels, 10).float()
    s = class_stats(balanced, labels, 10)
    assert s["classes"] == 10 and s["class_kl"] == pytest.approx(0, abs=1e-12)


def test_toy2d_exact_counts():
    means = ring8_means()
    # 3 modes hit exactly, 1 sample 2 std from mode 5, 1 sample far from everything
    pts = torch.cat([means[[0, 0, 1, 2]], means[5:6] + torch.tensor([[0.04, 0.0]]), torch.tensor([[0.0, 0.0]])])
    s = mode_stats(pts, means, 0.02)
    assert s["modes"] == 4 and s["hq"] == pytest.approx(5 / 6)
    p = torch.tensor([2, 1, 1, 1]) / 5.0
    assert s["kl"] == pytest.approx(float((p * (p * 8).log()).sum()))
    perfect = mode_stats(grid25_means().repeat(4, 1), grid25_means(), 0.05)
    assert perfect == {"modes": 25, "hq": 1.0, "kl": pytest.approx(0.0, abs=1e-12)}


def test_stacked_mnist_mode_counts_exact():
    uniform = torch.arange(26_000) % 1000  # every code 26 times
    assert stacked_mode_stats(uniform) == {"modes": 1000, "kl": pytest.approx(0.0, abs=1e-12)}
    one = stacked_mode_stats(torch.full((500,), 7))
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000))
    half = stacked_mode_stats(torch.tensor([1, 2] * 100))  # two codes, equal shares: KL = log(1000 / 2)
    assert half["modes"] == 2 and half["kl"] == pytest.approx(math.log(500))
