"""Metric math on feature arrays. FID, KID and IS come from torchmetrics, fed precomputed features through
an identity "extractor" (so real features can be cached); the k-NN metrics follow their papers.

- FID (Heusel et al. 2017), KID (Binkowski et al. 2018): torchmetrics.
- IS (Salimans et al. 2016): torchmetrics, on the classifier's logits.
- precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020), k = 5.
- class statistics: predicted-class histogram of the samples vs the real one.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict

import torch
import torch.nn as nn


# Our features are already in memory; torchmetrics' note about buffering them is not news to the user.
warnings.filterwarnings("ignore", message=r"Metric `.*` will save all extracted features")


class Identity(nn.Module):
    """Lets torchmetrics take features that were computed (and cached) elsewhere."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to real (N, F) and fake (M, F) features."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    m = FrechetInceptionDistance(feature=Identity(real.shape[1]))
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    return float(m.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000) -> Dict[str, float]:
    """Kernel Inception Distance (cubic polynomial kernel), mean and std over random subsets."""
    from torchmetrics.image.kid import KernelInceptionDistance
    size = min(subset_size, len(real), len(fake))
    m = KernelInceptionDistance(feature=Identity(real.shape[1]), subsets=subsets, subset_size=size)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    mean, std = m.compute()
    return {"kid": float(mean), "kid_std": float(std)}


def inception_score(logits: torch.Tensor, splits: int = 10) -> Dict[str, float]:
    from torchmetrics.image.inception import InceptionScore
    m = InceptionScore(feature=Identity(logits.shape[1]), splits=splits)
    m.update(logits.double())
    mean, std = m.compute()
    return {"is": float(mean), "is_std": float(std)}


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)  # (N, N)
    return d.kthvalue(k + 1, dim=1).values  # the point itself is at distance 0


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> Dict[str, float]:
    """Precision/recall (k-NN manifolds) and density/coverage. real (N, F), fake (M, F)."""
    real, fake = real.double(), fake.double()
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = torch.cdist(real, fake)  # (N, M)
    inside_real = d <= r_real[:, None]  # fake j inside the ball of real i
    precision = inside_real.any(0).double().mean()
    recall = (d <= r_fake[None, :]).any(1).double().mean()
    density = inside_real.double().sum(0).mean() / k
    coverage = (d.min(1).values <= r_real).double().mean()
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage)}


def class_stats(fake_logits: torch.Tensor, real_labels: torch.Tensor, num_classes: int) -> Dict[str, float]:
    """classes found: classes predicted for at least 10% of their uniform share of the samples (so a few
    stray predictions do not count); class_kl: KL(fake histogram || real histogram)."""
    pred = fake_logits.argmax(1)
    p = torch.bincount(pred, minlength=num_classes).double() / len(pred)
    q = torch.bincount(real_labels, minlength=num_classes).double() / len(real_labels)
    found = int((p >= 0.1 / num_classes).sum())
    nz = p > 0
    kl = float((p[nz] * (p[nz] / q[nz].clamp_min(1e-12)).log()).sum())
    return {"classes": found, "class_kl": kl, "class_max_share": float(p.max())}


def all_image_metrics(real_f: torch.Tensor, fake_f: torch.Tensor, fake_logits: torch.Tensor,
                      real_labels, num_classes: int, which=("fid", "kid", "is", "pr", "dc", "classes"),
                      class_logits=None) -> Dict[str, float]:
    """fake_logits feed IS; class_logits (default: fake_logits) the class statistics."""
    out: Dict[str, float] = {}
    if "fid" in which:
        out["fid"] = fid(real_f, fake_f)
    if "kid" in which:
        out.update(kid(real_f, fake_f))
    if "is" in which:
        out.update(inception_score(fake_logits))
    if "pr" in which or "dc" in which:
        n = min(5000, len(real_f), len(fake_f))
        g = torch.Generator().manual_seed(0)  # random subsets: data sets may be stored sorted by class
        pick_r, pick_f = torch.randperm(len(real_f), generator=g)[:n], torch.randperm(len(fake_f), generator=g)[:n]
        vals = prdc(real_f[pick_r], fake_f[pick_f])
        keys = (["precision", "recall"] if "pr" in which else []) + (["density", "coverage"] if "dc" in which else [])
        out.update({k: vals[k] for k in keys})
    if "classes" in which and real_labels is not None:
        out.update(class_stats(fake_logits if class_logits is None else class_logits, real_labels, num_classes))
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else float("nan")) for k, v in out.items()}
