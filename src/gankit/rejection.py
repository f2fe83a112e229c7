"""Discriminator rejection sampling (DRS; Azadi et al., ICLR 2019): draw from G, keep x with
probability sigmoid(F(x)),

    F(x) = D~(x) - D~_M - log(1 - exp(D~(x) - D~_M - eps)) - gamma,

where D~ is D's raw logit and D~_M the largest logit of a burn-in of `burn_in` draws. A D trained with the BCE
objective estimates D~(x) = log p_data(x) / p_G(x) at its optimum, so with gamma = 0 the acceptance
probability is ~exp(D~(x) - D~_M) = p_data / (M p_G): rejection sampling of the data distribution from G's.
The paper shifts F by gamma = a percentile of F in each batch (its experiments: the 95th) to accept more;
`shift=None` (the default) keeps gamma = 0, which gave the lower reverse KL on the 2D mixtures here (README,
gankit bench toy2d --drs).

One departure from the paper: it raises D~_M whenever a later draw has a larger logit; here such a draw is
accepted outright and D~_M stays. Raising it chases D's extrapolation on rare off-data draws: on grid25
seed 2 the running maximum drove the acceptance to 0.06% (2.5 million draws for 1,562 samples).

D judges the G it was trained against; the EMA of G is close to it but not the same net. And a D trained
with a regulariser (R1, gradient penalty) or another loss is no density-ratio estimate. `refit` answers
both: it trains a copy of D further, alone, with the BCE objective against the frozen G that will be
sampled, which is the D the acceptance rule above assumes. On grid25 (R1, G 4x400, 5 seeds) DRS with the
trained D keeps 95-99% of draws and high quality goes from 83.2% to 84.0%; after a 2,000-step refit it keeps
25-51% and reaches 93.3%, the 25 modes still balanced (KL 0.010; README, gankit bench toy2d --drs-refit 2000).
"""
from __future__ import annotations

import copy
from typing import Optional, Tuple

import torch
import torch.nn as nn

from gankit.data import Dataset
from gankit.losses import d_bce
from gankit.registry import GankitError
from gankit.sample import generate
from gankit.schedule import set_lr

RATIO_LOSSES = ("bce", "minimax")  # objectives whose optimal D logit is log p_data / p_G
REFIT_BATCH = 1024  # real and generated samples per refit step unless told


def accept_prob(logits: torch.Tensor, max_logit: float, shift: Optional[float] = None,
                eps: float = 1e-6) -> torch.Tensor:
    """sigmoid(F(x)) for D's logits (N,) given D~_M; `shift`: gamma as this quantile (0..1) of F.
    A logit above D~_M counts as D~_M (acceptance 1 without shift)."""
    delta = (logits.double() - max_logit).clamp(max=0.0)
    f = delta - torch.log1p(-torch.exp(delta - eps))
    if shift is not None:
        f = f - torch.quantile(f, shift)
    return torch.sigmoid(f).float()


def check(D: nn.Module) -> None:
    """D must come from a run whose loss makes its logit a log density ratio (see RATIO_LOSSES), or from
    `refit`, which trains it with that loss."""
    loss = getattr(D, "config", {}).get("loss", {}).get("name")
    if loss not in RATIO_LOSSES and not getattr(D, "refit_steps", 0):
        raise GankitError(f"DRS reads D's logit as log p_data/p_G, which a D trained with "
                          f"{' or '.join(RATIO_LOSSES)} estimates; this run used loss '{loss}' "
                          f"(refit D first: --drs-refit STEPS)")


def refit(G: nn.Module, D: nn.Module, ds: Dataset, steps: int, batch: int = REFIT_BATCH, lr: float = 1e-3,
          seed: int = 0) -> nn.Module:
    """A copy of D trained `steps` more Adam steps (betas 0.5, 0.999; lr decayed linearly to 0) on
    `batch` real samples of `ds` and `batch` samples of the frozen G per step, with the BCE objective and
    nothing else (no regulariser, no augmentation), so that its logit estimates log p_data / p_G for this
    G. Conditional nets get the real labels and uniform fake labels. D itself is left as it was."""
    if steps < 1 or batch < 1:
        raise GankitError(f"refitting D needs positive steps and batch, got {steps} and {batch}")
    if ds.img_shape != tuple(G.img_shape):
        raise GankitError(f"the data's samples are {ds.img_shape}, G makes {tuple(G.img_shape)}")
    D2 = copy.deepcopy(D).train().requires_grad_(True)
    device = next(D2.parameters()).device
    opt = torch.optim.Adam(D2.parameters(), lr=lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    for i in range(steps):
        set_lr([opt], [lr], 1 - i / steps)
        idx = torch.randint(len(ds), (batch,), generator=gen)
        real = ds.images(idx).to(device)
        c_real = ds.c[idx].to(device) if G.c_dim else None
        c_fake = torch.randint(G.c_dim, (batch,), generator=gen).to(device) if G.c_dim else None
        z = torch.randn(batch, G.z_dim, generator=gen).to(device)
        fake = generate(G, z, c_fake).clone()  # clone: generate returns an inference tensor
        loss = d_bce(D2(real, c_real), D2(fake, c_fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    D2.eval().requires_grad_(False)
    D2.refit_steps = steps
    return D2


@torch.inference_mode()
def drs_sample(G: nn.Module, D: nn.Module, n: int, seed: int = 0, c=None, shift: Optional[float] = None,
               burn_in: int = 10_000, batch: int = 2_000, max_draws: Optional[int] = None
               ) -> Tuple[torch.Tensor, dict]:
    """n accepted samples (n, *img_shape) and {'acceptance', 'draws', 'max_logit'}. Labels as in
    `sample.sample`: `c` an int for all, or None for classes 0..K-1 in turn (each slot keeps its class).
    Reproducible from `seed`. Raises when more than `max_draws` (default 1000 n) draws would be needed."""
    check(D)
    if shift is not None and not 0.0 <= shift <= 1.0:
        raise GankitError(f"DRS shift is a quantile in [0, 1], got {shift}")
    device = next(G.parameters()).device
    if G.c_dim:
        labels = (torch.arange(n) % G.c_dim if c is None else torch.full((n,), int(c))).to(device)
    else:
        labels = None
    gen = torch.Generator().manual_seed(seed)
    max_draws = max_draws or 1000 * n

    def draw(m: int, label: Optional[torch.Tensor]):  # m samples of class `label` (or cycling classes)
        z = torch.randn(m, G.z_dim, generator=gen).to(device)
        cls = None
        if labels is not None:
            cls = torch.arange(m, device=device) % G.c_dim if label is None else label.expand(m)
        x = generate(G, z, cls)
        logits = torch.cat([D(x[i:i + batch], None if cls is None else cls[i:i + batch]).float()
                            for i in range(0, m, batch)])
        return x, logits

    _, burn_logits = draw(burn_in, None)
    max_logit = float(burn_logits.max())
    out = torch.empty(n, *G.img_shape, device=device)
    draws = kept = 0
    for label in ([None] if labels is None else labels.unique()):
        slots = torch.arange(n, device=device) if label is None else (labels == label).nonzero()[:, 0]
        filled = 0
        while filled < len(slots):
            if draws >= max_draws:
                raise GankitError(f"DRS accepted {filled} of {len(slots)} samples in {draws} draws; "
                                  f"accept more with a shift (gankit sample --drs-shift 0.95)")
            x, logits = draw(batch, label)
            draws += batch
            keep = torch.rand(batch, generator=gen).to(device) < accept_prob(logits, max_logit, shift).to(device)
            kept += int(keep.sum())
            x = x[keep][: len(slots) - filled]
            out[slots[filled:filled + len(x)]] = x
            filled += len(x)
    return out, {"acceptance": kept / draws, "draws": draws, "max_logit": max_logit}
