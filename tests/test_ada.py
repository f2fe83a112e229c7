"""ADA (ada.py): each 'bgc' operation on hand-made images, gradients through the pipeline, p steered by
D's overfitting signal (up on a tiny set, near 0 on a large one), and p in the checkpoint (exact resume)."""
import json
import math

import pytest
import torch

from gankit import checkpoint
from gankit.ada import ADA, colour, geometric
from gankit.distributed import World
from gankit.trainer import train


def const(u):
    """A 'random' stream that always draws u: every gate opens (u < p = 1) and each op takes a known value."""
    return lambda n, *shape, device=None, dtype=None: torch.full((n, *shape), u, device=device)


def image(side=16, channels=1):
    torch.manual_seed(0)
    return torch.rand(2, channels, side, side) * 2 - 1


def test_pixel_blitting_ops_are_exact_flips_rotations_and_shifts():
    x = image()
    close = lambda a, b: torch.testing.assert_close(a, b, atol=1e-5, rtol=0)  # noqa: E731
    close(geometric(x, 1.0, const(0.75), ("xflip",)), x.flip(-1))           # i = floor(0.75 * 2) = 1
    close(geometric(x, 1.0, const(0.25), ("xflip",)), x)                    # i = 0
    for u, k in ((0.3, 1), (0.6, 2), (0.9, 3)):                              # i = floor(4u) quarter turns
        close(geometric(x, 1.0, const(u), ("rotate90",)), torch.rot90(x, k, (2, 3)))
    # integer translation: t = (2u - 1) / 8 of the side = 2 px at u = 1 (16 px); reflection at the border
    shifted = geometric(x, 1.0, const(1.0 - 1e-7), ("xint",))
    close(shifted[..., 2:, 2:], x[..., :-2, :-2])
    close(geometric(x, 0.0, const(0.75), ("xflip", "rotate90", "xint")), x)  # p = 0: every gate shut


def test_general_geometric_ops_rotate_scale_and_shift_as_drawn():
    x = image()
    # rotation: theta = (2u - 1) pi = pi/2 at u = 0.75, before and after the anisotropic scaling: a half turn
    torch.testing.assert_close(geometric(x, 1.0, const(0.75), ("rotate",)), x.flip(-1, -2), atol=1e-5, rtol=0)
    disk = torch.zeros(1, 1, 32, 32)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disk[0, 0] = (((yy - 15.5) ** 2 + (xx - 15.5) ** 2) < 64).float() * 2 - 1  # radius 8
    z = torch.special.ndtri(torch.tensor(0.75))  # the normal draw of u = 0.75: 0.674
    area = lambda t: float((t > 0).float().sum())  # noqa: E731
    s = float(torch.exp2(z * 0.2))  # isotropic: the disk grows by s in each direction
    assert area(geometric(disk, 1.0, const(0.75), ("scale",))) == pytest.approx(area(disk) * s * s, rel=0.05)
    aniso = geometric(disk, 1.0, const(0.75), ("aniso",))  # wider by s, lower by 1 / s: same area
    width, height = float((aniso[0, 0, 16] > 0).sum()), float((aniso[0, 0, :, 16] > 0).sum())
    assert width > 16 * s - 1.5 and height < 16 / s + 1.5 and width > height + 2
    # fractional translation: t = z / 8 of the side, in x and in y
    moved = geometric(disk, 1.0, const(0.75), ("xfrac",))
    w = (moved + 1) / 2
    cx = float((w[0, 0] * xx).sum() / w[0, 0].sum())
    assert cx - 15.5 == pytest.approx(float(z) * 0.125 * 32, abs=0.1)


def test_colour_ops_on_grey_and_rgb_pixels():
    z = float(torch.special.ndtri(torch.tensor(0.75)))
    x = image()
    close = lambda a, b: torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # noqa: E731
    close(colour(x, 1.0, const(0.75), ("brightness",)), x + 0.2 * z)
    close(colour(x, 1.0, const(0.75), ("contrast",)), x * 2 ** (0.5 * z))
    close(colour(x, 1.0, const(0.75), ("lumaflip",)), -x)  # grey: the luma axis reversed
    rgb = image(channels=3)
    grey = rgb.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    for op in ("hue", "saturation"):  # both keep grey pixels grey and keep the luma (channel mean)
        close(colour(grey, 1.0, const(0.75), (op,)), grey)
        close(colour(rgb, 1.0, const(0.75), (op,)).mean(1), rgb.mean(1))
    sat = colour(rgb, 1.0, const(0.75), ("saturation",))  # chroma scaled by 2 ** z
    close(sat - sat.mean(1, keepdim=True), (rgb - rgb.mean(1, keepdim=True)) * 2 ** z)
    hue = colour(rgb, 1.0, const(0.75), ("hue",))  # a rotation: chroma length kept, direction changed
    chroma = lambda t: (t - t.mean(1, keepdim=True)).norm(dim=1)  # noqa: E731
    close(chroma(hue), chroma(rgb))
    assert (hue - rgb).abs().max() > 0.1
    close(colour(rgb, 1.0, const(0.75), ("lumaflip",)), rgb - 2 * rgb.mean(1, keepdim=True))


def test_gradients_flow_through_the_whole_pipeline():
    ada = ADA()
    ada.p = 1.0
    g = torch.Generator().manual_seed(0)
    rand = lambda n, *s, device=None, dtype=None: torch.rand(n, *s, generator=g)  # noqa: E731
    for channels in (1, 3):
        x = image(channels=channels).requires_grad_(True)
        y = ada(x, rand)
        assert y.shape == x.shape and not torch.allclose(y, x)
        (y * torch.randn_like(y)).sum().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_p_follows_the_sign_of_d_on_real_images():
    world = World()
    ada = ADA(target=0.6, kimg=1.0, batch=50)  # 200 images per adjustment: p moves by 0.2
    for _ in range(4 * 3):
        ada.observe(torch.ones(50), world)  # D is sure of every real image: r_t = 1 > 0.6
    assert ada.p == pytest.approx(0.6) and ada.rt == 1.0
    for _ in range(4 * 10):
        ada.observe(torch.ones(50), world)
    assert ada.p == 1.0  # clamped
    for _ in range(4):  # r_t = 0.6 exactly: no change
        ada.observe(torch.cat([torch.ones(40), -torch.ones(10)]), world)
    assert ada.p == 1.0 and ada.rt == pytest.approx(0.6)
    for _ in range(4 * 6):
        ada.observe(torch.cat([torch.ones(25), -torch.ones(25)]), world)  # r_t = 0
    assert ada.p == 0.0 and ada.rt == 0.0
    for bad in ({"target": 1.5}, {"kimg": 0}):
        with pytest.raises(Exception, match="ada_"):
            ADA(**bad)


def p_and_rt(run):
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    return [(r["augment/p"], r["augment/rt"]) for r in rows if "augment/rt" in r]


def test_p_rises_when_d_overfits_a_tiny_set_and_stays_near_0_on_a_large_one(make_cfg):
    over = ["train.augment=ada", "train.ada_kimg=5", "train.batch_size=16", "model.args.g_width=16",
            "model.args.d_width=16", "train.amp=off", "train.log_every=50", "train.sample_every=1000",
            "train.ckpt_every=1000"]
    tiny = p_and_rt(train(make_cfg("dcgan", *over, "data.per_class=2", steps=400), quiet=True))
    large = p_and_rt(train(make_cfg("dcgan", *over, steps=400), quiet=True))
    assert tiny[-1][0] > 0.25, tiny  # 20 digits
    assert max(p for p, _ in large) < 0.1, large  # 5,000 digits
    assert all(math.isfinite(rt) for _, rt in tiny + large)


def test_resume_with_ada_is_bit_exact_and_keeps_p(make_cfg):
    over = ["train.augment=ada", "train.ada_kimg=0.05", "train.ada_target=0.1", "train.batch_size=8", "model.args.g_width=8",
            "model.args.d_width=8", "data.per_class=2"]
    straight = train(make_cfg("dcgan", *over, steps=10), quiet=True)
    half = train(make_cfg("dcgan", *over, steps=5), quiet=True)
    resumed = train(make_cfg("dcgan", *over, steps=10), resume=half, quiet=True)
    a = checkpoint.load(straight / "checkpoints" / "last.pt")
    b = checkpoint.load(resumed / "checkpoints" / "last.pt")
    assert a["augment"]["p"] == b["augment"]["p"] > 0
    for part in ("G", "D"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    assert p_and_rt(straight)[-1] == p_and_rt(resumed)[-1]
