"""Adversarial objectives as (d_loss, g_loss) pairs of pure functions of raw logits (StudioGAN style).

``d_loss(real_logits, fake_logits)`` and ``g_loss(fake_logits)`` return scalar means; a relativistic loss
(``g_needs_real``) is also handed the logits of a real batch, ``g_loss(fake_logits, real_logits)``, paired
sample by sample with the fakes. D's output is a raw logit, so the BCE family uses softplus (log-sigmoid
identities), which is exact and safe under autocast:
    -log sigmoid(t) = softplus(-t),   -log(1 - sigmoid(t)) = softplus(t).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from gankit.registry import Registry

LOSSES = Registry("loss")
Tensor = torch.Tensor


class Loss(NamedTuple):
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[..., Tensor]
    doc: str
    g_needs_real: bool = False


def d_bce(real: Tensor, fake: Tensor) -> Tensor:
    """-log D(x) - log(1 - D(G(z))): the discriminator of the original GAN (Goodfellow et al. 2014)."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


LOSSES.register("bce", Loss(d_bce, lambda fake: F.softplus(-fake).mean(),
                            "non-saturating GAN: G minimises -log D(G(z)) (Goodfellow et al. 2014)"))
LOSSES.register("minimax", Loss(d_bce, lambda fake: -F.softplus(fake).mean(),
                                "original minimax GAN: G minimises log(1 - D(G(z))); saturates early"))
LOSSES.register("lsgan", Loss(
    lambda real, fake: 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake ** 2).mean(),
    lambda fake: 0.5 * ((fake - 1) ** 2).mean(),
    "least squares GAN, a=0 b=1 c=1 (Mao et al. 2017)"))
LOSSES.register("wgan", Loss(
    lambda real, fake: fake.mean() - real.mean(),
    lambda fake: -fake.mean(),
    "Wasserstein GAN critic (Arjovsky et al. 2017); needs a Lipschitz constraint: clip, gp or spectral norm"))
LOSSES.register("hinge", Loss(
    lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
    lambda fake: -fake.mean(),
    "hinge loss (Lim & Ye 2017; Miyato et al. 2018)"))
LOSSES.register("rpgan", Loss(
    lambda real, fake: F.softplus(fake - real).mean(),
    lambda fake, real: F.softplus(real - fake).mean(),
    "relativistic pairing GAN (Jolicoeur-Martineau 2019, RSGAN): D and G judge each fake against a real; "
    "with R1 and R2 the R3GAN baseline (Huang et al. 2024), whose landscape has no mode-dropping basins "
    "(Sun et al. 2020)", g_needs_real=True))
