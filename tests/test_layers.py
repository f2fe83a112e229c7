"""Contracts of the shared layers: minibatch std, PacGAN packing, conditional BatchNorm, ACGAN's classifier
head, and the SNGAN ResNet family's shape and spectral norm."""
import pytest
import torch
from torch.testing import assert_close

from gankit.nets import build
from gankit.nets.layers import ConditionalBatchNorm2d, MinibatchStd, Packed, packed_shape


def test_minibatch_std_exact_values_and_groups():
    x = torch.zeros(4, 2, 1, 1)
    x[:, 0, 0, 0] = torch.tensor([0.0, 10.0, 2.0, 10.0])  # groups of 2: samples (0, 2) and (1, 3)
    out = MinibatchStd(2)(x)
    assert out.shape == (4, 3, 1, 1)
    assert_close(out[:, :2], x)
    # group (0, 2): std of channel 0 is 1, of channel 1 is 0 -> mean 0.5; group (1, 3): all equal -> 0
    assert_close(out[:, 2, 0, 0], torch.tensor([0.5, 0.0, 0.5, 0.0]), atol=1e-3, rtol=0)


def test_minibatch_std_sees_collapse_and_passes_gradients():
    varied = torch.randn(8, 3, 4, 4, requires_grad=True)
    collapsed = varied[:1].detach().expand(8, 3, 4, 4)
    layer = MinibatchStd(4)
    assert layer(collapsed)[:, 3].abs().max() < 1e-3 < layer(varied)[:, 3].min()
    layer(varied)[:, 3].sum().backward()
    assert varied.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiple of the group"):
        layer(torch.randn(6, 3, 4, 4))


def test_packed_d_sees_packs_along_channels():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x, c=None):
            seen.append(x)
            return x.flatten(1).sum(1)

    x = torch.arange(6 * 1 * 2 * 2, dtype=torch.float32).view(6, 1, 2, 2)
    out = Packed(Probe(), 3)(x)
    assert out.shape == (2,) and seen[0].shape == (2, 3, 2, 2)
    assert_close(seen[0][1, 0], x[3, 0]) and assert_close(seen[0][1, 2], x[5, 0])
    assert packed_shape((1, 28, 28), 2) == (2, 28, 28) and packed_shape((2,), 4) == (8,)
    with pytest.raises(ValueError, match="multiple of train.pack"):
        Packed(Probe(), 4)(x)


@pytest.mark.parametrize("family, shape", [("dcgan", (1, 28, 28)), ("mlp", (2,)), ("resnet", (1, 8, 8))])
def test_packed_d_of_every_image_and_point_family_trains(family, shape):
    G, _ = build(family, shape, 0, 8, {})
    _, inner = build(family, packed_shape(shape, 2), 0, 8, {})
    D = Packed(inner, 2)
    logits = D(G(torch.randn(8, 8)))
    assert logits.shape == (4,)
    logits.sum().backward()
    assert all(p.grad is not None for p in G.parameters())


def test_conditional_batchnorm_is_per_class_affine():
    cbn = ConditionalBatchNorm2d(3, 5)
    with torch.no_grad():
        cbn.gain.weight[2] = 2.0
        cbn.bias.weight[2] = -1.0
    x = torch.randn(4, 3, 2, 2)
    c = torch.tensor([0, 2, 0, 2])
    plain = torch.nn.functional.batch_norm(x, None, None, training=True)
    out = cbn(x, c)
    assert_close(out[0], plain[0], atol=1e-5, rtol=1e-5)
    assert_close(out[1], 2 * plain[1] - 1, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="pass class labels"):
        cbn(x, None)
    assert len(list(ConditionalBatchNorm2d(3, 0).parameters())) == 2  # plain affine BatchNorm when unconditional


def test_resnet_conditional_g_uses_its_labels_and_d_is_spectral():
    torch.manual_seed(0)
    G, D = build("resnet", (1, 28, 28), 10, 16, {"g_width": 16, "d_width": 16})
    for m in G.modules():  # make the class embeddings differ from their identity init
        if isinstance(m, ConditionalBatchNorm2d):
            torch.nn.init.normal_(m.gain.weight, 1.0, 0.5)
    z = torch.randn(4, 16)
    assert not torch.allclose(G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long)))
    convs = [m for m in D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    _, D_mb = build("resnet", (1, 28, 28), 0, 16, {"d_width": 16, "d_mbstd": 4})
    assert D_mb(torch.randn(8, 1, 28, 28)).shape == (8,)


def test_dcgan_aux_classifier_head():
    G, D = build("dcgan", (1, 28, 28), 10, 8, {"g_width": 8, "d_width": 8, "d_cond": "aux"})
    x, c = torch.randn(5, 1, 28, 28), torch.randint(10, (5,))
    assert D(x, c).shape == (5,) and D(x, c, classify=True).shape == (5, 10)
    assert D.proj.embed is None  # ACGAN conditions by the classifier, not by projection
    _, plain = build("dcgan", (1, 28, 28), 10, 8, {"g_width": 8, "d_width": 8})
    with pytest.raises(ValueError, match="no auxiliary classifier"):
        plain(x, c, classify=True)
    with pytest.raises(Exception, match="d_cond"):
        build("dcgan", (1, 28, 28), 10, 8, {"d_cond": "both"})


def test_dcgan_minibatch_std_adds_one_feature_map_before_the_head():
    _, D = build("dcgan", (1, 28, 28), 0, 8, {"d_width": 8, "d_mbstd": 4})
    assert D.head.in_channels == 16 + 1  # widths 8 -> 16 at 28x28, plus the std map
    x = torch.randn(8, 1, 28, 28, requires_grad=True)
    D(x).sum().backward()
    assert D(x).shape == (8,) and x.grad.abs().sum() > 0
    collapsed = x[:1].detach().expand(8, 1, 28, 28)
    assert D.mbstd(D.body(collapsed))[:, -1].abs().max() < 1e-3
