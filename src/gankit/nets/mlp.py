"""Fully connected G and D: the original GAN (Goodfellow et al. 2014) as the seeds write it.

Seed 004: G 100 -> 256 -> 784 (ReLU, Tanh), D 784 -> 256 -> 1 (LeakyReLU 0.2).
Seed 003: latent 64, G 64 -> 256 -> 256 -> 784, D 784 -> 256 -> 256 -> 1.
For 2D points (img_shape == (2,)) the output is linear, so G can reach the mixtures' means at +-4.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from gankit.nets import FAMILIES
from gankit.nets.layers import Projection, d_layer, with_labels

ACTS = {"relu": lambda: nn.ReLU(), "lrelu": lambda: nn.LeakyReLU(0.2), "tanh": lambda: nn.Tanh()}


def _act(name: str) -> nn.Module:
    if name not in ACTS:
        raise ValueError(f"activation must be one of {', '.join(ACTS)}, got '{name}'")
    return ACTS[name]()


class MLPGenerator(nn.Module):
    def __init__(self, img_shape, c_dim, z_dim, hidden, act, batch_norm):
        super().__init__()
        self.img_shape, self.c_dim, self.z_dim = tuple(img_shape), c_dim, z_dim
        layers, width = [], z_dim + c_dim
        for h in hidden:
            layers += [nn.Linear(width, h)] + ([nn.BatchNorm1d(h)] if batch_norm else []) + [_act(act)]
            width = h
        layers.append(nn.Linear(width, math.prod(img_shape)))
        if len(img_shape) == 3:  # images live in [-1, 1]
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(with_labels(z, c, self.c_dim)).view(-1, *self.img_shape)  # (N, *img_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, img_shape, c_dim, hidden, act, norm, dropout):
        super().__init__()
        layers, width = [], math.prod(img_shape)
        for h in hidden:
            layers += [d_layer(nn.Linear(width, h), norm), _act(act)]
            layers += [nn.Dropout(dropout)] if dropout else []
            width = h
        self.body = nn.Sequential(*layers)
        self.head = d_layer(nn.Linear(width, 1), norm)
        self.proj = Projection(c_dim, width)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.body(x.flatten(1))  # (N, hidden[-1])
        return self.head(h).squeeze(1) + self.proj(h, c)  # (N,)


@FAMILIES.register("mlp")
def build(img_shape: Tuple[int, ...], c_dim: int = 0, z_dim: int = 100,
          g_hidden: Sequence[int] = (256,), d_hidden: Sequence[int] = (256,),
          g_act: str = "relu", d_act: str = "lrelu", g_batch_norm: bool = False,
          d_norm: str = "none", d_dropout: float = 0.0):
    """MLP GAN for images or 2D points. Good toy2d setting: g_hidden=d_hidden=[128, 128], batch 256."""
    G = MLPGenerator(img_shape, c_dim, z_dim, list(g_hidden), g_act, g_batch_norm)
    D = MLPDiscriminator(img_shape, c_dim, list(d_hidden), d_act, d_norm, d_dropout)
    return G, D
