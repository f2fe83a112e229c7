"""Mode-collapse metrics for 2D mixtures of Gaussians, per the VEEGAN / PacGAN / GDPP protocol.

Draw 2,500 samples. A sample is *high quality* when it lies within 3 standard deviations of its nearest
mode; a mode is *captured* when it is the nearest mode of at least one high-quality sample; the reverse
KL is KL(p || uniform) of the histogram of high-quality samples over the modes.
"""
from __future__ import annotations

import math
from typing import Dict

import torch

N_SAMPLES = 2500


def mode_stats(samples: torch.Tensor, means: torch.Tensor, std: float) -> Dict[str, float]:
    """samples (N, 2), means (K, 2) -> {'modes': captured, 'hq': fraction high quality, 'kl': reverse KL}."""
    samples, means = samples.detach().double().cpu(), means.double().cpu()
    dist = torch.cdist(samples, means)  # (N, K)
    nearest_d, nearest = dist.min(1)
    hq = nearest_d <= 3 * std
    k = means.shape[0]
    counts = torch.bincount(nearest[hq], minlength=k).double()
    if counts.sum() == 0:
        return {"modes": 0, "hq": 0.0, "kl": math.inf}
    p = counts / counts.sum()
    nz = p > 0
    kl = float((p[nz] * (p[nz] * k).log()).sum())
    return {"modes": int(nz.sum()), "hq": float(hq.double().mean()), "kl": kl}
