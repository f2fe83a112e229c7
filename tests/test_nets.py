"""Contract tests over every registered model family: build, shapes, range, gradients, rebuild."""
import pytest
import torch

from gankit.nets import FAMILIES, build
from gankit.registry import GankitError

SHAPES = {"mlp": [(1, 28, 28), (3, 32, 32), (1, 8, 8), (2,)],
          "dcgan": [(1, 28, 28), (3, 32, 32), (1, 8, 8), (3, 64, 64)],
          "keras-dcgan": [(1, 28, 28), (3, 32, 32)],
          "resnet": [(1, 28, 28), (3, 32, 32), (1, 8, 8)]}
CASES = [(f, s, c) for f in FAMILIES.names() for s in SHAPES[f] for c in (0, 10)]


def test_every_family_has_shapes_listed():
    assert set(SHAPES) == set(FAMILIES.names())


@pytest.mark.parametrize("family, shape, c_dim", CASES)
def test_family_contract(family, shape, c_dim):
    torch.manual_seed(0)
    G, D = build(family, shape, c_dim, 16, {})
    assert G.z_dim == 16 and G.c_dim == c_dim and tuple(G.img_shape) == shape
    z = torch.randn(4, 16)
    c = torch.randint(10, (4,)) if c_dim else None
    x = G(z, c)
    assert x.shape == (4, *shape)
    if len(shape) == 3:
        assert x.min() >= -1 and x.max() <= 1
    logits = D(x, c)
    assert logits.shape == (4,)
    # gradients reach every parameter of G (through D) and of D
    (logits.sum() + x.sum() * 0).backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in G.parameters())


LIGHT = {"mlp": {"g_hidden": [16], "d_hidden": [16]}, "dcgan": {"g_width": 8, "d_width": 8},
         "keras-dcgan": {}, "resnet": {"g_width": 8, "d_width": 8}}  # narrow, so that 256 px builds fast
SIDES = (8, 16, 28, 32, 64, 128, 256)


@pytest.mark.parametrize("family", sorted(LIGHT))
def test_every_image_family_builds_from_8_to_256_px(family):
    assert set(LIGHT) == set(FAMILIES.names())
    for side in SIDES:
        torch.manual_seed(0)
        G, D = build(family, (3, side, side), 10, 8, LIGHT[family])
        c = torch.tensor([1, 7])
        x = G(torch.randn(2, 8), c)
        assert x.shape == (2, 3, side, side) and x.abs().max() <= 1, side
        logits = D(x, c)
        assert logits.shape == (2,), side
        logits.sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters()), side


@pytest.mark.parametrize("family, shape, c_dim", CASES[::3])
def test_family_rebuilds_from_state_dict(family, shape, c_dim):
    G, D = build(family, shape, c_dim, 16, {})
    G2, D2 = build(family, shape, c_dim, 16, {})
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    G.eval(), G2.eval(), D.eval(), D2.eval()
    z = torch.randn(3, 16)
    c = torch.randint(10, (3,)) if c_dim else None
    torch.testing.assert_close(G(z, c), G2(z, c))
    torch.testing.assert_close(D(G(z, c), c), D2(G(z, c), c))


@pytest.mark.parametrize("d_norm", ["none", "batch", "spectral"])
def test_dcgan_d_norm_options(d_norm):
    G, D = build("dcgan", (1, 28, 28), 0, 8, {"d_norm": d_norm, "g_width": 8, "d_width": 8})
    out = D(G(torch.randn(2, 8)))
    assert out.shape == (2,)
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    assert has_bn == (d_norm == "batch")


def test_classic_dcgan_at_32():
    """width 64 at 32x32 is the PyTorch DCGAN: 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32."""
    G, D = build("dcgan", (1, 32, 32), 0, 100, {})
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [256, 128, 64, 1]


def test_unknown_family_arg_fails_with_choices():
    with pytest.raises(GankitError, match="model.args.widht.*valid"):
        build("dcgan", (1, 28, 28), 0, 8, {"widht": 3})


def test_bad_resolution_is_a_clear_error():
    with pytest.raises(GankitError, match="resolution"):
        build("dcgan", (1, 7, 7), 0, 8, {})
    with pytest.raises(GankitError, match="mlp"):
        build("dcgan", (2,), 0, 8, {})
