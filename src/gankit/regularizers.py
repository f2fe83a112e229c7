"""Constraints on D: penalties added to D's loss, and weight clipping applied after D's update.

A regularizer is data: the weight and interval come from the config, and the trainer only calls
``penalty(D, real, fake, c, noise)`` on the D steps where ``due(d_step)`` holds, then ``after_step(D)``,
and adds ``g_penalty(D, fake, c)`` to G's loss in every G step (zero unless a term also trains G).
``noise`` (optional) draws random numbers: the trainer passes the shared stream of distributed.SharedNoise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.config import LossConfig

Tensor = torch.Tensor


def grad_norm_sq(D: nn.Module, x: Tensor, c: Optional[Tensor]) -> Tensor:
    """||d D(x) / dx||^2 per sample, with a graph for the double backward. x: (N, ...) -> (N,)."""
    x = x.detach().requires_grad_(True)
    logits = D(x, c)
    (grad,) = torch.autograd.grad(logits.float().sum(), x, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(1)


@dataclass
class Regularizer:
    name: str
    weight: float
    every: int = 1

    def due(self, d_step: int) -> bool:
        return d_step % self.every == 0

    def penalty(self, D: nn.Module, real: Tensor, fake: Tensor, c: Optional[Tensor], noise=None) -> Tensor:
        return real.new_zeros(())

    def g_penalty(self, D: nn.Module, fake: Tensor, c: Optional[Tensor]) -> Optional[Tensor]:
        return None

    def after_step(self, D: nn.Module) -> None:
        pass


class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)|| - 1)^2] on random interpolates."""

    def penalty(self, D, real, fake, c, noise=None):
        shape = (1,) * (real.dim() - 1)
        rand = noise.rand if noise is not None else torch.rand
        alpha = rand(real.shape[0], *shape, device=real.device, dtype=real.dtype)
        x_hat = alpha * real.detach() + (1 - alpha) * fake.detach()
        return self.weight * (grad_norm_sq(D, x_hat, c).add(1e-12).sqrt() - 1).pow(2).mean()


class R1(Regularizer):
    """R1 (Mescheder et al. 2018): weight/2 * E[||grad D(x)||^2] on real data; lazy every k steps (x k)."""

    def penalty(self, D, real, fake, c, noise=None):
        return 0.5 * self.weight * self.every * grad_norm_sq(D, real, c).mean()


class R2(Regularizer):
    """R2 (Mescheder et al. 2018; R3GAN pairs it with R1): weight/2 * E[||grad D(x)||^2] on G's samples,
    lazy on R1's interval."""

    def penalty(self, D, real, fake, c, noise=None):
        return 0.5 * self.weight * self.every * grad_norm_sq(D, fake, c).mean()


class WeightClip(Regularizer):
    """WGAN weight clipping (Arjovsky et al. 2017): every D parameter into [-weight, weight] after a step."""

    @torch.no_grad()
    def after_step(self, D):
        for p in D.parameters():
            p.clamp_(-self.weight, self.weight)


class ACGAN(Regularizer):
    """ACGAN's auxiliary classifier (Odena et al. 2017): D also predicts the class, from the same features.
    D step: weight * [CE(D_cls(x_real), c) + CE(D_cls(G(z, c)), c)]; G step: weight * CE(D_cls(G(z, c)), c),
    so G is paid for samples that are recognisably of their class. D must answer ``classify=True``."""

    def penalty(self, D, real, fake, c, noise=None):
        return self.weight * (F.cross_entropy(D(real, c, classify=True).float(), c)
                              + F.cross_entropy(D(fake.detach(), c, classify=True).float(), c))

    def g_penalty(self, D, fake, c):
        return self.weight * F.cross_entropy(D(fake, c, classify=True).float(), c)


def build_regularizers(cfg: LossConfig) -> List[Regularizer]:
    regs: List[Regularizer] = []
    if cfg.gp:
        regs.append(GradientPenalty("gp", cfg.gp))
    if cfg.r1:
        regs.append(R1("r1", cfg.r1, cfg.r1_every))
    if cfg.r2:
        regs.append(R2("r2", cfg.r2, cfg.r1_every))
    if cfg.clip:
        regs.append(WeightClip("clip", cfg.clip))
    if cfg.acgan:
        regs.append(ACGAN("acgan", cfg.acgan))
    return regs
