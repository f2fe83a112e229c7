import torch
from torch.testing import assert_close

from gankit.config import LossConfig
from gankit.regularizers import build_regularizers


class Linear(torch.nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere, so penalties have closed forms."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.as_tensor(w, dtype=torch.float32))

    def forward(self, x, c=None):
        return x.flatten(1) @ self.w


def test_gradient_penalty_closed_form():
    (gp,) = build_regularizers(LossConfig(gp=10.0))
    D = Linear([3.0, 4.0])  # ||w|| = 5
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert_close(gp.penalty(D, real, fake, None), torch.tensor(10.0 * (5 - 1) ** 2))


def test_r1_closed_form_and_lazy_scaling():
    (r1,) = build_regularizers(LossConfig(r1=2.0, r1_every=4))
    D = Linear([3.0, 4.0])
    assert_close(r1.penalty(D, torch.randn(8, 2), None, None), torch.tensor(0.5 * 2.0 * 4 * 25.0))
    assert [r1.due(i) for i in range(5)] == [True, False, False, False, True]


def test_penalty_gradients_reach_d():
    (gp,) = build_regularizers(LossConfig(gp=1.0))
    D = Linear([3.0, 4.0])
    gp.penalty(D, torch.randn(8, 2), torch.randn(8, 2), None).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert_close(D.w.grad, 2 * 4 * torch.tensor([3.0, 4.0]) / 5)


def test_weight_clip():
    (clip,) = build_regularizers(LossConfig(clip=0.01))
    D = Linear([3.0, -0.005])
    assert_close(clip.penalty(D, torch.randn(2, 2), torch.randn(2, 2), None), torch.tensor(0.0))
    clip.after_step(D)
    assert_close(D.w.data, torch.tensor([0.01, -0.005]))


def test_no_regularizers_by_default():
    assert build_regularizers(LossConfig()) == []
