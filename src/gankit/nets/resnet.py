"""SNGAN ResNet G and D (Miyato et al. 2018, "Spectral Normalization for GANs", the CIFAR-10 ResNets of
their appendix; Miyato & Koyama 2018, "cGANs with Projection Discriminator"), at any resolution
H = s0 * 2^k: 28 -> 7, 14, 28; 32 -> 4, 8, 16, 32.

G: z -> linear to (width, s0, s0) -> k up-blocks [BN, ReLU, 2x nearest up, 3x3 conv, BN, ReLU, 3x3 conv;
shortcut up + 1x1 conv] -> BN, ReLU, 3x3 conv, Tanh. Class-conditional G uses conditional BatchNorm
(per-class scale and shift) in every block.
D: k down-blocks [ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 avg-pool; shortcut 1x1 conv + pool], the first
"optimized" (no leading ReLU), spectral norm on every layer, ReLU, global sum pooling, linear to one raw
logit, plus the projection term <embed(c), h> when conditional. Optional minibatch std before the pooling.
Paper settings: hinge loss, Adam 2e-4, betas (0, 0.9), n_critic 5 (or TTUR: lr_d > lr_g, n_critic 1).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.nets import FAMILIES
from gankit.nets.dcgan import base_size
from gankit.nets.layers import ConditionalBatchNorm2d, MinibatchStd, Projection, d_layer


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, c_dim: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm2d(cin, c_dim), ConditionalBatchNorm2d(cout, c_dim)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor]) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str, first: bool):
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = d_layer(nn.Conv2d(cin, cout, 3, 1, 1), norm), d_layer(nn.Conv2d(cout, cout, 3, 1, 1), norm)
        self.skip = d_layer(nn.Conv2d(cin, cout, 1), norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = F.avg_pool2d(self.conv2(F.relu(h)), 2)
        skip = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return h + skip


class ResNetGenerator(nn.Module):
    def __init__(self, img_shape, c_dim, z_dim, width):
        super().__init__()
        self.img_shape, self.c_dim, self.z_dim = tuple(img_shape), c_dim, z_dim
        self.s0, k = base_size(img_shape[1])
        self.width = width
        self.linear = nn.Linear(z_dim, width * self.s0 ** 2)
        self.blocks = nn.ModuleList([GBlock(width, width, c_dim) for _ in range(k)])
        self.bn = nn.BatchNorm2d(width)
        self.out = nn.Conv2d(width, img_shape[0], 3, 1, 1)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.width, self.s0, self.s0)  # a known channel count (ONNX)
        for block in self.blocks:
            h = block(h, c)
        return torch.tanh(self.out(F.relu(self.bn(h))))  # (N, C, H, W)


class ResNetDiscriminator(nn.Module):
    def __init__(self, img_shape, c_dim, width, norm, mbstd):
        super().__init__()
        _, k = base_size(img_shape[1])
        chs = [img_shape[0]] + [width] * k
        self.blocks = nn.Sequential(*[DBlock(a, b, norm, i == 0) for i, (a, b) in enumerate(zip(chs[:-1], chs[1:]))])
        self.mbstd = MinibatchStd(mbstd) if mbstd else None
        last = width + (1 if mbstd else 0)
        self.final = d_layer(nn.Conv2d(last, width, 3, 1, 1), norm) if mbstd else nn.Identity()
        self.head = d_layer(nn.Linear(width, 1), norm)
        self.proj = Projection(c_dim, width)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.blocks(x)  # (N, width, s0, s0)
        if self.mbstd is not None:
            h = self.final(F.relu(self.mbstd(h)))
        h = F.relu(h).sum((2, 3))  # global sum pooling, (N, width)
        out = self.head(h).squeeze(1)
        return out + self.proj(h, c) if self.proj.embed is not None else out


def sngan_init(module: nn.Module) -> None:
    """Xavier-uniform conv/linear weights and zero biases; BatchNorm and class embeddings keep their own."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            parametrized = nn.utils.parametrize.is_parametrized(m, "weight")
            nn.init.xavier_uniform_(m.parametrizations.weight.original if parametrized else m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@FAMILIES.register("resnet")
def build(img_shape: Tuple[int, ...], c_dim: int = 0, z_dim: int = 128, g_width: int = 64,
          d_width: int = 64, d_norm: str = "spectral", d_mbstd: int = 0):
    """SNGAN ResNet G/D for square (C, H, H) images; `d_mbstd`: minibatch-std group size (0 = off)."""
    if len(img_shape) != 3 or img_shape[1] != img_shape[2]:
        raise ValueError(f"resnet needs square images (C, H, H), got {img_shape}; use family mlp for points")
    G = ResNetGenerator(img_shape, c_dim, z_dim, g_width)
    D = ResNetDiscriminator(img_shape, c_dim, d_width, d_norm, d_mbstd)
    sngan_init(G)
    sngan_init(D)
    return G, D
