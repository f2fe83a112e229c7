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
