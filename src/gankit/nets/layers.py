"""Building blocks shared by several families: conditioning and normalisation choices."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

NORMS_D = ("none", "batch", "spectral")


def with_labels(z: torch.Tensor, c: Optional[torch.Tensor], c_dim: int) -> torch.Tensor:
    """Concatenate one-hot labels to the latent (conditional G, Mirza & Osindero 2014). z: (N, z_dim)."""
    if c_dim == 0:
        return z
    if c is None:
        raise ValueError("this generator is conditional: pass class labels c")
    return torch.cat([z, F.one_hot(c, c_dim).to(z.dtype)], 1)


class Projection(nn.Module):
    """Projection discriminator term <embed(c), h> (Miyato & Koyama 2018); zero when unconditional."""

    def __init__(self, c_dim: int, features: int):
        super().__init__()
        self.embed = nn.Embedding(c_dim, features) if c_dim else None

    def forward(self, h: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:  # h: (N, F) -> (N,)
        if self.embed is None:
            return h.new_zeros(h.shape[0])
        if c is None:
            raise ValueError("this discriminator is conditional: pass class labels c")
        return (self.embed(c) * h).sum(1)


def d_layer(layer: nn.Module, norm: str) -> nn.Module:
    """Wrap a D layer in spectral norm when asked (Miyato et al. 2018)."""
    if norm not in NORMS_D:
        raise ValueError(f"d_norm must be one of {', '.join(NORMS_D)}, got '{norm}'")
    return nn.utils.parametrizations.spectral_norm(layer) if norm == "spectral" else layer


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016): conv/linear N(0, 0.02), BatchNorm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            parametrized = nn.utils.parametrize.is_parametrized(m, "weight")
            nn.init.normal_(m.parametrizations.weight.original if parametrized else m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN): one extra feature map holding the mean
    standard deviation of the features over groups of `group` samples, so D can see a batch's variety and
    punish a collapsed G. (N, C, H, W) -> (N, C + 1, H, W); N must divide by the group (or be smaller)."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = x.shape
        g = min(self.group, n)
        if n % g:
            raise ValueError(f"minibatch std: batch {n} is not a multiple of the group size {g}")
        y = x.float().view(g, n // g, ch, h, w)  # sample i is in group i % (n // g), as in ProGAN
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # (n // g,)
        y = y.to(x.dtype).repeat(g)[:, None, None, None].expand(n, 1, h, w)
        return torch.cat([x, y], 1)


class Packed(nn.Module):
    """PacGAN packing (Lin et al. 2018): D judges `pack` samples at once, concatenated along channels
    (images) or features (points). The inner D is built for the packed shape; (N, *shape) -> (N // pack,)."""

    def __init__(self, D: nn.Module, pack: int):
        super().__init__()
        self.net, self.pack = D, pack

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"PacGAN: batch {n} is not a multiple of train.pack={self.pack}")
        return self.net(x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:]), c)


def packed_shape(img_shape, pack: int):
    """The shape the inner D of `Packed` sees: channels (or point coordinates) times `pack`."""
    return (img_shape[0] * pack, *img_shape[1:])


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale and shift are embeddings of the class (de Vries et al. 2017; Miyato & Koyama
    2018); plain BatchNorm when c_dim == 0. Scale starts at 1 and shift at 0 for every class."""

    def __init__(self, channels: int, c_dim: int):
        super().__init__()
        self.c_dim = c_dim
        self.bn = nn.BatchNorm2d(channels, affine=c_dim == 0)
        if c_dim:
            self.gain = nn.Embedding(c_dim, channels)
            self.bias = nn.Embedding(c_dim, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
        h = self.bn(x)
        if not self.c_dim:
            return h
        if c is None:
            raise ValueError("this generator is conditional: pass class labels c")
        return h * self.gain(c)[:, :, None, None] + self.bias(c)[:, :, None, None]
