"""DCGAN (Radford et al. 2016), generalised to any resolution H = s0 * 2^k (8, 28, 32, 64, ...).

G: z -> ConvT(s0 x s0) -> k stride-2 ConvT (BatchNorm, ReLU) -> Tanh.  D mirrors it with stride-2 convs,
LeakyReLU(0.2), BatchNorm (or spectral norm, or none) and a final s0 x s0 conv to one raw logit.
Options of D: minibatch std before the last conv (`d_mbstd`, ProGAN); class conditioning by projection
(`d_cond=projection`, Miyato & Koyama 2018) or by ACGAN's auxiliary classifier (`d_cond=aux`, Odena et al.
2017: `D(x, c, classify=True)` gives (N, classes) logits, trained by `loss.acgan`).
At 32x32 with width 64 this is exactly the PyTorch DCGAN (ngf = ndf = 64); at 28x28: 7 -> 14 -> 28.
Known good: Adam(2e-4, betas (0.5, 0.999)), batch 64, BCE.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from gankit.nets import FAMILIES
from gankit.nets.layers import MinibatchStd, Projection, d_layer, dcgan_init, with_labels

D_COND = ("projection", "aux")


def base_size(side: int) -> Tuple[int, int]:
    """side = s0 * 2**k with s0 odd or 4: 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4), 8 -> (4, 1)."""
    s0, k = side, 0
    while s0 % 2 == 0 and s0 > 4:
        s0, k = s0 // 2, k + 1
    if k == 0:
        raise ValueError(f"resolution {side} cannot be reached by doubling (use e.g. 8, 28, 32, 64)")
    return s0, k


class DCGANGenerator(nn.Module):
    def __init__(self, img_shape, c_dim, z_dim, width, max_width, batch_norm):
        super().__init__()
        self.img_shape, self.c_dim, self.z_dim = tuple(img_shape), c_dim, z_dim
        channels, side = img_shape[0], img_shape[1]
        s0, k = base_size(side)
        chs = [min(width * 2 ** (k - 1 - i), max_width) for i in range(k)]  # widest first

        def norm(ch):
            return nn.BatchNorm2d(ch) if batch_norm else nn.Identity()

        layers = [nn.ConvTranspose2d(z_dim + c_dim, chs[0], s0, 1, 0, bias=not batch_norm), norm(chs[0]),
                  nn.ReLU(True)]
        for a, b in zip(chs[:-1], chs[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=not batch_norm), norm(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(chs[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        zc = with_labels(z, c, self.c_dim)  # (N, z_dim + c_dim)
        return self.net(zc[:, :, None, None])  # (N, C, H, W)


class DCGANDiscriminator(nn.Module):
    def __init__(self, img_shape, c_dim, width, max_width, norm, mbstd=0, cond="projection"):
        super().__init__()
        if cond not in D_COND:
            raise ValueError(f"d_cond must be one of {', '.join(D_COND)}, got '{cond}'")
        channels, side = img_shape[0], img_shape[1]
        s0, k = base_size(side)
        chs = [min(width * 2 ** i, max_width) for i in range(k)]  # narrowest first
        layers = [d_layer(nn.Conv2d(channels, chs[0], 4, 2, 1), norm), nn.LeakyReLU(0.2, True)]
        for a, b in zip(chs[:-1], chs[1:]):
            bn = norm == "batch"
            layers += [d_layer(nn.Conv2d(a, b, 4, 2, 1, bias=not bn), norm)]
            layers += [nn.BatchNorm2d(b)] if bn else []
            layers += [nn.LeakyReLU(0.2, True)]
        self.body = nn.Sequential(*layers)
        self.mbstd = MinibatchStd(mbstd) if mbstd else nn.Identity()
        self.head = d_layer(nn.Conv2d(chs[-1] + (1 if mbstd else 0), 1, s0, 1, 0), norm)
        self.proj = Projection(c_dim if cond == "projection" else 0, chs[-1])
        self.aux = d_layer(nn.Linear(chs[-1], c_dim), norm) if cond == "aux" and c_dim else None

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, classify: bool = False) -> torch.Tensor:
        h = self.body(x)  # (N, C', s0, s0)
        if classify:  # ACGAN: class logits (N, c_dim) from the same features
            if self.aux is None:
                raise ValueError("this discriminator has no auxiliary classifier (model.args.d_cond=aux)")
            return self.aux(h.sum((2, 3)))
        out = self.head(self.mbstd(h)).flatten()  # (N,)
        return out + self.proj(h.sum((2, 3)), c) if self.proj.embed is not None else out


@FAMILIES.register("dcgan")
def build(img_shape: Tuple[int, ...], c_dim: int = 0, z_dim: int = 100, g_width: int = 64,
          d_width: int = 64, max_width: int = 512, g_batch_norm: bool = True, d_norm: str = "batch",
          d_mbstd: int = 0, d_cond: str = "projection"):
    """DCGAN G/D for (C, H, H) images; `d_norm` in none | batch | spectral; `d_mbstd`: minibatch-std group
    size (0 = off); `d_cond` (conditional models): projection | aux (ACGAN)."""
    if len(img_shape) != 3 or img_shape[1] != img_shape[2]:
        raise ValueError(f"dcgan needs square images (C, H, H), got {img_shape}; use family mlp for points")
    G = DCGANGenerator(img_shape, c_dim, z_dim, g_width, max_width, g_batch_norm)
    D = DCGANDiscriminator(img_shape, c_dim, d_width, max_width, d_norm, d_mbstd, d_cond)
    dcgan_init(G)
    dcgan_init(D)
    return G, D
