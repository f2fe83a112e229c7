"""Stacked MNIST mode counting (Metz et al. 2017, Unrolled GANs; VEEGAN; PacGAN): three MNIST digits
stacked as the R, G, B channels give 1,000 modes. Draw 26,000 samples, read each channel with a digit
classifier, count the distinct 3-digit codes (modes found) and KL(code histogram || uniform over 1,000)."""
from __future__ import annotations

from typing import Dict

import torch

N_SAMPLES = 26_000
N_MODES = 1000


def mode_stats(codes: torch.Tensor) -> Dict[str, float]:
    """codes (N,) ints in 0..999 -> {'modes': distinct codes, 'kl': KL(p || uniform)}."""
    p = torch.bincount(codes.long().cpu(), minlength=N_MODES).double()
    p = p / p.sum()
    nz = p > 0
    return {"modes": int(nz.sum()), "kl": float((p[nz] * (p[nz] * N_MODES).log()).sum())}
