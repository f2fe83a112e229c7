"""DiffAugment contracts: shapes kept, exact transforms on hand-made draws, differentiable, the same
policy on real and fake, reproducible from the shared stream, wired into training."""
import pytest
import torch

from gankit.augment import AUGMENTS, DiffAugment, color, cutout, translation
from gankit.registry import GankitError


def const(value):
    """A 'rand' that always returns `value`: fixes every random choice of a transform."""
    def rand(n, *shape, device=None, dtype=None):
        return torch.full((n, *shape), value, device=device, dtype=dtype or torch.float32)
    return rand


def seeded(seed):
    g = torch.Generator().manual_seed(seed)
    return lambda n, *shape, device=None, dtype=None: torch.rand(n, *shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("name", AUGMENTS.names())
def test_every_augmentation_keeps_shape_and_passes_gradients(name):
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = AUGMENTS.get(name)(x, seeded(0))
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_by_the_drawn_offset():
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 3, 4] = 1.0
    # rand 0.999 -> offset +1 (of -1..1 at 8 px * 1/8); rand 0 -> -1
    up = translation(x, const(0.999))
    assert up[0, 0, 2, 3] == 1 and up.sum() == 1  # out[i, j] = in[i + 1, j + 1]: content moves up-left
    down = translation(x, const(0.0))
    assert down[0, 0, 4, 5] == 1 and down.sum() == 1
    edge = translation(torch.ones(1, 1, 8, 8), const(0.999))
    assert edge[0, 0, -1].sum() == 0 and edge[0, 0, :-1, :-1].sum() == 49  # zero-padded border


def test_cutout_zeros_a_square_of_half_the_size():
    y = cutout(torch.ones(2, 3, 8, 8), const(0.5))  # offset 4 -> rows/cols 2..5
    assert (y == 0).sum() == 2 * 3 * 16
    assert (y[:, :, 2:6, 2:6] == 0).all()


def test_color_at_neutral_draws_is_identity():
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(color(x, const(0.5)), x)  # brightness +0, saturation x1, contrast x1


def test_policy_applies_in_order_reproducibly_and_rejects_unknown_names():
    aug = DiffAugment("color, translation,cutout")
    assert aug.names == ["color", "translation", "cutout"]
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(aug(x, seeded(7)), aug(x, seeded(7)))
    assert not torch.equal(aug(x, seeded(7)), aug(x, seeded(8)))
    with pytest.raises(GankitError, match="choose from color, cutout, translation"):
        DiffAugment("colour")


def test_d_sees_augmented_real_and_fake_and_training_runs(make_cfg, monkeypatch):
    """Every D input in the D step and the G step goes through the same policy."""
    from gankit import trainer
    calls = []
    original = trainer.for_d

    def spy(p, x):
        calls.append(tuple(x.shape))
        return original(p, x)
    monkeypatch.setattr(trainer, "for_d", spy)
    cfg = make_cfg("dcgan", "train.steps=2", "train.augment=color,translation,cutout", "train.batch_size=8")
    run = trainer.train(cfg, quiet=True)
    assert calls == [(8, 1, 28, 28)] * 6  # per step: real and fake in the D step, fake in the G step
    assert (run / "checkpoints" / "last.pt").is_file()
