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


def test_r2_penalises_the_fakes_on_r1s_interval():
    (r1, r2) = build_regularizers(LossConfig(r1=2.0, r2=3.0, r1_every=4))
    assert (r2.name, r2.every) == ("r2", 4)

    class OnFakesOnly(torch.nn.Module):  # slope 1 where x > 0 (the fakes), 0 elsewhere (the reals)
        def forward(self, x, c=None):
            return torch.relu(x).sum(1)

    real, fake = -torch.rand(8, 2) - 0.1, torch.rand(8, 2) + 0.1
    assert_close(r2.penalty(OnFakesOnly(), real, fake, None), torch.tensor(0.5 * 3.0 * 4 * 2.0))
    assert_close(r1.penalty(OnFakesOnly(), real, fake, None), torch.tensor(0.0))


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


class FixedClassifier(torch.nn.Module):
    """classify=True returns fixed logits; the adversarial output is unused by ACGAN's term."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.as_tensor(logits, dtype=torch.float32))

    def forward(self, x, c=None, classify=False):
        assert classify
        return self.logits.expand(x.shape[0], -1) + 0 * x.flatten(1).sum(1, keepdim=True)


def test_acgan_exact_values_for_d_and_g():
    (ac,) = build_regularizers(LossConfig(acgan=0.5))
    D = FixedClassifier([0.0, 0.0, 0.0, 0.0])  # uniform over 4 classes: CE = log 4 for any label
    real, fake, c = torch.randn(3, 2), torch.randn(3, 2, requires_grad=True), torch.tensor([0, 1, 3])
    log4 = torch.log(torch.tensor(4.0))
    assert_close(ac.penalty(D, real, fake, c), 0.5 * 2 * log4)
    assert_close(ac.g_penalty(D, fake, c), 0.5 * log4)
    D2 = FixedClassifier([2.0, 0.0, 0.0, 0.0])  # CE of label 0 = -log(e^2 / (e^2 + 3))
    ce0 = -torch.log(torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + 3))
    assert_close(ac.g_penalty(D2, fake[:1], c[:1]), 0.5 * ce0)


def test_acgan_d_term_does_not_reach_g_but_g_term_does():
    (ac,) = build_regularizers(LossConfig(acgan=1.0))
    D = torch.nn.Linear(2, 3)
    D_cls = lambda x, c=None, classify=False: D(x)  # noqa: E731
    fake = torch.randn(4, 2, requires_grad=True)
    c = torch.tensor([0, 1, 2, 0])
    ac.penalty(D_cls, torch.randn(4, 2), fake, c).backward()
    assert fake.grad is None and D.weight.grad is not None
    ac.g_penalty(D_cls, fake, c).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_other_regularizers_add_nothing_to_g():
    for cfg in (LossConfig(gp=1.0), LossConfig(r1=1.0), LossConfig(clip=0.1)):
        assert all(r.g_penalty(None, torch.randn(2, 2), None) is None for r in build_regularizers(cfg))
