"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the same
random, differentiable transforms applied to every image D sees, real and fake, in the D step and in the
G step, so D cannot memorise a small data set (the 5,000 bundled digits) and G's gradient passes through.

Policies (`train.augment`, comma-separated, applied in the order given; the paper's is
"color,translation,cutout"): `color` (brightness, saturation,
contrast), `translation` (up to 1/8 of the size, zero-padded), `cutout` (a square of half the size set to
zero). The transforms follow the authors' DiffAugment_pytorch.py; random numbers come from the caller's
`rand(n, *shape)` (the trainer's shared stream: exact resume, DDP-independent).
"""
from __future__ import annotations

from typing import Callable, List

import torch
import torch.nn.functional as F

from gankit.registry import GankitError, Registry

Tensor = torch.Tensor
Rand = Callable[..., Tensor]  # rand(n, *shape) -> uniform [0, 1) on the images' device
AUGMENTS = Registry("augmentation")


def _randint(rand: Rand, n: int, low: int, high: int, x: Tensor) -> Tensor:
    """(n, 1, 1) integers uniform in [low, high)."""
    return (rand(n, 1, 1, device=x.device) * (high - low)).floor().long() + low


@AUGMENTS.register("color")
def color(x: Tensor, rand: Rand) -> Tensor:
    n = x.shape[0]
    x = x + (rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean  # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean  # contrast


@AUGMENTS.register("translation")
def translation(x: Tensor, rand: Rand, ratio: float = 0.125) -> Tensor:
    n, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx, ty = _randint(rand, n, -sx, sx + 1, x), _randint(rand, n, -sy, sy + 1, x)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    pad = F.pad(x, [1, 1, 1, 1])  # (N, C, H + 2, W + 2)
    return pad.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2).contiguous()


@AUGMENTS.register("cutout")
def cutout(x: Tensor, rand: Rand, ratio: float = 0.5) -> Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox, oy = _randint(rand, n, 0, h + (1 - ch % 2), x), _randint(rand, n, 0, w + (1 - cw % 2), x)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, min=0, max=h - 1)
    gy = torch.clamp(gy + oy - cw // 2, min=0, max=w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


class DiffAugment:
    """Callable `aug(x, rand) -> x'` for a policy such as "translation,cutout,color"; shapes kept."""

    def __init__(self, policy: str):
        self.names: List[str] = [p.strip() for p in policy.split(",") if p.strip()]
        self.fns = [AUGMENTS.get(name) for name in self.names]  # unknown names fail here, with the list

    def __call__(self, x: Tensor, rand: Rand) -> Tensor:
        if x.dim() != 4:
            raise GankitError("train.augment works on images (N, C, H, W); this data set is not images")
        for fn in self.fns:
            x = fn(x, rand)
        return x
