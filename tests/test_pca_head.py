"""Contract of D's principal-component head (model.d_pca): the projection it fits, its place in every image
family's D, and that the fit travels with D's weights."""
import pytest
import torch

import gankit
from gankit.data import build_dataset
from gankit.loading import load_discriminator
from gankit.nets import FAMILIES, build
from gankit.nets.pca_head import PCAHead
from gankit.registry import GankitError

CONV = [f for f in FAMILIES.names() if f != "mlp"]


def test_fit_finds_the_principal_directions_and_whitens_them():
    torch.manual_seed(0)
    n = 4000
    e1, e2 = torch.zeros(16), torch.zeros(16)
    e1[3], e2[9] = 1.0, 1.0
    x = 5.0 * torch.randn(n, 1) * e1 + 2.0 * torch.randn(n, 1) * e2 + 0.1 * torch.randn(n, 16) + 0.3
    head = PCAHead(torch.nn.Identity(), (1, 4, 4), 2).fit(x.reshape(n, 1, 4, 4))
    d = head.proj / head.proj.norm(dim=0)
    assert abs(float(d[:, 0] @ e1)) > 0.999 and abs(float(d[:, 1] @ e2)) > 0.999
    f = head.features(x.reshape(n, 1, 4, 4))
    assert torch.allclose(f.mean(0), torch.zeros(2), atol=1e-4)
    assert torch.allclose(f.std(0), torch.ones(2), atol=1e-4)  # whitened: each component at unit variance


def test_fit_is_reproducible_from_its_seed_and_leaves_the_global_rng_alone():
    x = torch.rand(300, 1, 8, 8) * 2 - 1
    torch.manual_seed(1)
    a = PCAHead(torch.nn.Identity(), (1, 8, 8), 5).fit(x, seed=3)
    after = torch.rand(1)
    torch.manual_seed(1)
    b = PCAHead(torch.nn.Identity(), (1, 8, 8), 5).fit(x, seed=3)
    assert torch.equal(a.proj, b.proj) and torch.equal(a.mean, b.mean)
    assert torch.equal(torch.rand(1), after)


@pytest.mark.parametrize("family, shape", [(f, s) for f in CONV for s in [(1, 28, 28), (3, 32, 32)]]
                         + [("mlp", (1, 8, 8))])
@pytest.mark.parametrize("c_dim", [0, 10])
def test_every_image_family_takes_the_head(family, shape, c_dim):
    torch.manual_seed(0)
    G, D = build(family, shape, c_dim, 16, {}, d_pca=20)
    assert isinstance(D, PCAHead)
    D.fit(torch.rand(64, *shape) * 2 - 1).eval()  # eval: spectral norm's power step and BatchNorm hold still
    c = torch.randint(10, (4,)) if c_dim else None
    x = G(torch.randn(4, 16), c)
    logits = D(x, c)
    assert logits.shape == (4,)
    assert torch.allclose(logits, D.inner(x, c) + D.mlp(D.features(x)).flatten())  # raw logits, a plain sum
    logits.sum().backward()
    assert all(p.grad is not None for p in D.mlp.parameters())
    assert any(p.grad.abs().sum() > 0 for p in G.parameters())  # G learns through the head too
    names = {n for n, _ in D.named_parameters()}
    assert not {"mean", "proj"} & names  # fixed buffers, never trained


def test_acgan_class_head_passes_through():
    G, D = build("dcgan", (1, 28, 28), 10, 16, {"d_cond": "aux"}, d_pca=8)
    x = torch.rand(3, 1, 28, 28)
    c = torch.tensor([1, 2, 3])
    assert torch.equal(D(x, c, classify=True), D.inner(x, c, classify=True))


def test_bad_sizes_and_settings_fail_loudly(make_cfg):
    with pytest.raises(GankitError, match="d_pca must lie in 1..64"):
        build("dcgan", (1, 8, 8), 0, 16, {}, d_pca=65)
    with pytest.raises(GankitError, match="model.d_pca must be >= 0"):
        make_cfg("dcgan", "model.d_pca=-1")
    with pytest.raises(GankitError, match="needs images and a D of single samples"):
        gankit.train(make_cfg("dcgan", "model.d_pca=8", "model.conditional=false", "train.pack=2"), quiet=True)
    with pytest.raises(GankitError, match="needs images"):
        gankit.train(make_cfg("ring8", "model.d_pca=1"), quiet=True)


def test_the_fit_travels_with_d(make_cfg):
    cfg = make_cfg("dcgan", "data.name=digits", "model.d_pca=12")
    D = load_discriminator(gankit.train(cfg, quiet=True))
    assert isinstance(D, PCAHead)
    fresh = PCAHead(torch.nn.Identity(), (1, 8, 8), 12).fit(build_dataset(cfg.data).x, seed=cfg.train.seed)
    assert D.proj.abs().sum() > 0 and torch.equal(D.proj, fresh.proj) and torch.equal(D.mean, fresh.mean)
