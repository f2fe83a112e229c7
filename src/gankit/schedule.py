"""Learning-rate schedule: a pure function of the step, so a resumed run needs no scheduler state.

``lr_scale(step, train_cfg)`` multiplies lr_g and lr_d: a linear warm-up from 0 over ``train.lr_warmup`` G
steps (Goyal et al. 2017), then constant (``lr_decay=none``) or decayed to 0 at ``train.steps`` (linear
or cosine; Loshchilov & Hutter 2017), the decay starting after a share ``train.lr_hold`` of the steps
(CycleGAN). A run stopped early by ``train.max_minutes`` ends before the decay does.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch


def lr_scale(step: int, t) -> float:
    """Factor at G step `step` (1-based) for a TrainConfig `t`."""
    scale = min(1.0, step / t.lr_warmup) if t.lr_warmup else 1.0
    if t.lr_decay == "none":
        return scale
    start = max(t.lr_warmup, int(t.lr_hold * t.steps))  # CycleGAN: constant for half the steps, then decayed
    progress = min(1.0, max(0.0, (step - start) / max(1, t.steps - start)))
    decay = 1.0 - progress if t.lr_decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return scale * decay


def set_lr(opts: Sequence[torch.optim.Optimizer], base: Sequence[float], scale: float) -> None:
    for opt, lr in zip(opts, base):
        for group in opt.param_groups:
            group["lr"] = lr * scale
