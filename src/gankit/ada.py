"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks
with Limited Data"), after NVlabs/stylegan2-ada-pytorch `training/augment.py` and `training/loss.py`.

`train.augment=ada`: every image D sees, real and fake, in the D step and the G step, goes through the 'bgc'
pipeline, each operation applied to each image with probability p. All of it is differentiable, so G learns
through it. p follows D's overfitting signal r_t = E[sign(D(real))]: every `interval` (4) D steps p moves by
sign(r_t - target) x (images seen in those steps) / (ada_kimg x 1000), so that it can cross 0 -> 1 in
`train.ada_kimg` (500) thousand images, toward r_t = `train.ada_target` (0.6). p and r_t are logged
(augment/p, augment/rt) and p is in the checkpoint (exact resume).

The 'bgc' operations and their ranges are the reference's: x-flip, 90-degree rotations, integer translation
(up to 1/8 of the side), isotropic scaling (log2 std 0.2), rotation (full circle, split into a pre- and a
post-rotation so that either happens with probability p), anisotropic scaling (log2 std 0.2), fractional
translation (std 1/8 of the side), brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue rotation
(full circle) and saturation (log2 std 1); hue and saturation only for colour images, as there. One
difference: the geometric transforms are one bilinear `grid_sample` with reflection padding, without the
reference's wavelet up/down-sampling filter (sym6), which suppresses aliasing at a 2x cost.

Why not kornia's augmentation module: its ops draw from torch's global RNG (not the trainer's shared,
checkpointed stream), each op resamples the image once (11 resamplings instead of one), and ADA's gating
by a changing p per image would still have to be written around it.
Random numbers come from the caller's `rand(n, *shape)` (uniform); normal draws are its inverse CDF.
"""
from __future__ import annotations

import math
from typing import Callable, Dict

import torch
import torch.nn.functional as F

from gankit import distributed
from gankit.registry import GankitError

Tensor = torch.Tensor
Rand = Callable[..., Tensor]

XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
BGC = GEOMETRIC + COLOUR


# --- homogeneous matrices, batched: (n, 3, 3) for pixel coordinates, (n, 4, 4) for colours -------------
def _mat(rows) -> Tensor:
    """rows of (n,) tensors or numbers -> (n, k, k)."""
    ref = next(v for row in rows for v in row if torch.is_tensor(v))
    return torch.stack([torch.stack([v if torch.is_tensor(v) else torch.full_like(ref, v) for v in row], -1)
                        for row in rows], -2)


def translate2d(tx, ty):
    return _mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale2d(sx, sy):
    return _mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate2d(theta):
    return _mat([[torch.cos(theta), -torch.sin(theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]])


def translate3d(t):
    return _mat([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]])


def scale3d(s):
    return _mat([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]])


def rotate3d(v: Tensor, theta: Tensor) -> Tensor:
    """Rotation by theta (n,) around the unit axis v (3,) (Rodrigues)."""
    vx, vy, vz = v.tolist()
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _mat([[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
                 [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
                 [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
                 [0, 0, 0, 1]])


def normal(rand: Rand, n: int, *shape, device=None) -> Tensor:
    """Standard normal draws from the uniform stream (inverse CDF)."""
    return torch.special.ndtri(rand(n, *shape, device=device).clamp(1e-7, 1 - 1e-7))


# --- the pipeline ---------------------------------------------------------------------------------------
def geometric(x: Tensor, p: float, rand: Rand, ops=GEOMETRIC) -> Tensor:
    """The 'bgc' geometric operations, each applied per image with probability p: one inverse transform
    (output pixel -> input pixel, centred pixel units), then one bilinear resampling with reflection."""
    n, _, h, w = x.shape
    dev = x.device
    gate = lambda *s: rand(n, *s, device=dev) < p  # noqa: E731
    G = torch.eye(3, device=dev).expand(n, 3, 3)
    zero, one = torch.zeros(n, device=dev), torch.ones(n, device=dev)
    if "xflip" in ops:
        i = torch.where(gate(), torch.floor(rand(n, device=dev) * 2), zero)
        G = G @ scale2d(1 / (1 - 2 * i), one)
    if "rotate90" in ops:
        i = torch.where(gate(), torch.floor(rand(n, device=dev) * 4), zero)
        G = G @ rotate2d(math.pi / 2 * i)  # rotate2d_inv(-pi/2 i) of the reference
    if "xint" in ops:
        t = torch.where(gate(1), (rand(n, 2, device=dev) * 2 - 1) * XINT_MAX, torch.zeros(n, 2, device=dev))
        G = G @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
    if "scale" in ops:
        s = torch.where(gate(), torch.exp2(normal(rand, n, device=dev) * SCALE_STD), one)
        G = G @ scale2d(1 / s, 1 / s)
    p_rot = 1 - math.sqrt(max(0.0, 1 - p))  # P(pre or post) = p
    if "rotate" in ops:  # pre-rotation: rotate2d_inv(-theta) of the reference
        theta = (rand(n, device=dev) * 2 - 1) * math.pi * ROTATE_MAX
        G = G @ rotate2d(torch.where(rand(n, device=dev) < p_rot, theta, zero))
    if "aniso" in ops:
        s = torch.where(gate(), torch.exp2(normal(rand, n, device=dev) * ANISO_STD), one)
        G = G @ scale2d(1 / s, s)
    if "rotate" in ops:  # post-rotation
        theta = (rand(n, device=dev) * 2 - 1) * math.pi * ROTATE_MAX
        G = G @ rotate2d(torch.where(rand(n, device=dev) < p_rot, theta, zero))
    if "xfrac" in ops:
        t = torch.where(gate(1), normal(rand, n, 2, device=dev) * XFRAC_STD, torch.zeros(n, 2, device=dev))
        G = G @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
    # centred pixels -> affine_grid's normalised coordinates (align_corners=False: [-1, 1] spans the pixels)
    to_norm, to_pix = scale2d(2 / w * one, 2 / h * one), scale2d(w / 2 * one, h / 2 * one)
    theta = (to_norm @ G @ to_pix)[:, :2, :]
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour(x: Tensor, p: float, rand: Rand, ops=COLOUR) -> Tensor:
    """The 'bgc' colour operations as one 4x4 matrix per image (hue and saturation for RGB only), as in the
    reference; a grey image takes the mean of the RGB rows."""
    n, ch, h, w = x.shape
    if ch not in (1, 3):
        raise GankitError(f"train.augment=ada works on grey or RGB images; these have {ch} channels")
    dev = x.device
    gate = lambda: rand(n, device=dev) < p  # noqa: E731
    zero, one = torch.zeros(n, device=dev), torch.ones(n, device=dev)
    C = torch.eye(4, device=dev).expand(n, 4, 4)
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)  # the luma axis
    vv = torch.outer(v, v)
    if "brightness" in ops:
        C = translate3d(torch.where(gate(), normal(rand, n, device=dev) * BRIGHTNESS_STD, zero)) @ C
    if "contrast" in ops:
        C = scale3d(torch.where(gate(), torch.exp2(normal(rand, n, device=dev) * CONTRAST_STD), one)) @ C
    if "lumaflip" in ops:
        i = torch.where(gate(), torch.floor(rand(n, device=dev) * 2), zero)
        C = (torch.eye(4, device=dev) - 2 * vv * i[:, None, None]) @ C  # Householder reflection
    if "hue" in ops and ch == 3:
        theta = torch.where(gate(), (rand(n, device=dev) * 2 - 1) * math.pi * HUE_MAX, zero)
        C = rotate3d(v[:3], theta) @ C
    if "saturation" in ops and ch == 3:
        s = torch.where(gate(), torch.exp2(normal(rand, n, device=dev) * SATURATION_STD), one)
        C = (vv + (torch.eye(4, device=dev) - vv) * s[:, None, None]) @ C
    C = C.to(x.dtype)
    flat = x.reshape(n, ch, h * w)
    if ch == 3:
        flat = C[:, :3, :3] @ flat + C[:, :3, 3:]
    else:
        Cm = C[:, :3, :].mean(dim=1, keepdim=True)  # (n, 1, 4)
        flat = flat * Cm[:, :, :3].sum(dim=2, keepdim=True) + Cm[:, :, 3:]
    return flat.reshape(n, ch, h, w)


class ADA:
    """`aug(x, rand) -> x'` with the adaptive probability `p`; `observe(real_logits, world)` after each D step."""

    def __init__(self, target: float = 0.6, kimg: float = 500.0, batch: int = 64, interval: int = 4,
                 p: float = 0.0):
        if not 0 < target < 1:
            raise GankitError(f"train.ada_target={target}: give a value between 0 and 1 (the paper's: 0.6)")
        if kimg <= 0:
            raise GankitError(f"train.ada_kimg={kimg}: give a positive number of thousands of images (500)")
        self.target, self.interval, self.p = target, interval, float(p)
        self.speed = batch * interval / (kimg * 1000)  # the change of p per adjustment
        self.names = list(BGC)
        self.signs, self.count, self.rt = None, 0, float("nan")

    def __call__(self, x: Tensor, rand: Rand) -> Tensor:
        if x.dim() != 4:
            raise GankitError("train.augment=ada works on images (N, C, H, W); this data set is not images")
        if self.p <= 0:  # nothing to apply; the draws would all be gated off
            return x
        return colour(geometric(x, self.p, rand), self.p, rand)

    def observe(self, real_logits: Tensor, world) -> None:
        """Accumulate sign(D(real)); every `interval` calls, move p toward the target (all ranks alike)."""
        s = torch.stack([real_logits.detach().float().sign().sum(), torch.tensor(float(real_logits.numel()),
                                                                                 device=real_logits.device)])
        self.signs = s if self.signs is None else self.signs + s
        self.count += 1
        if self.count < self.interval:
            return
        total = distributed.mean(self.signs, world)  # a mean of sums is proportional to the sum: same ratio
        self.rt = float(total[0] / total[1])
        direction = (self.rt > self.target) - (self.rt < self.target)  # sign(r_t - target)
        self.p = min(1.0, max(0.0, self.p + direction * self.speed))
        self.signs, self.count = None, 0

    def stats(self) -> Dict[str, float]:
        """p, and r_t once it has been measured (after the first `interval` D steps)."""
        return {"augment/p": self.p, **({"augment/rt": self.rt} if math.isfinite(self.rt) else {})}

    def state_dict(self) -> dict:
        return {"p": self.p, "rt": self.rt, "count": self.count,
                "signs": None if self.signs is None else self.signs.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.rt, self.count = float(state["p"]), float(state["rt"]), int(state["count"])
        self.signs = state["signs"]
