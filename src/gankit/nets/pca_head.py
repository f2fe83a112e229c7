"""A second judge for any image D: an MLP on the data's whitened principal components (`model.d_pca=K`).

D'(x, c) = D(x, c) + MLP(W (x - mean)), where the rows of W are the first K principal directions of the
training images, each scaled to unit variance over them. W and the mean are fixed buffers, fit once on the
data before training without its labels (`fit`), and travel with D's weights in the checkpoint.

Why: a conv D judges strokes and texture; a D that judges only those does not see how often G draws each
kind of image. On Stacked MNIST a refit DCGAN D reads p_data/p_G within 0.90-1.11 for every digit while
G draws 8s at 0.7 and 7s at 1.3 of their share, so G's digit balance is never corrected. The principal
components keep an image's coarse shape (which digit) and drop its fine detail, so the head's density-ratio
estimate is about the shapes and their frequencies. The idea is Projected GAN's (Sauer et al. 2021: D heads
on fixed feature networks), with a projection that needs no pretrained network.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

FIT_SAMPLES = 20_000  # the principal directions are fit on at most this many images (a fixed random subset)


class PCAHead(nn.Module):
    """Wraps an image D (`D.inner`); `width`: the MLP's hidden units (two hidden layers, LeakyReLU 0.2)."""

    def __init__(self, D: nn.Module, img_shape, k: int, width: int = 512):
        super().__init__()
        dims = math.prod(img_shape)
        if not 0 < k <= dims:
            raise ValueError(f"d_pca must lie in 1..{dims} (the pixels of a {tuple(img_shape)} image), got {k}")
        self.inner = D
        self.register_buffer("mean", torch.zeros(dims))
        self.register_buffer("proj", torch.zeros(dims, k))  # (pixels, K): whitened principal directions
        self.mlp = nn.Sequential(nn.Linear(k, width), nn.LeakyReLU(0.2), nn.Linear(width, width),
                                 nn.LeakyReLU(0.2), nn.Linear(width, 1))

    @property
    def aux(self) -> Optional[nn.Module]:
        """The inner D's ACGAN class head, if any: the wrapper answers for D as a whole."""
        return getattr(self.inner, "aux", None)

    @torch.no_grad()
    def fit(self, x: torch.Tensor, seed: int = 0) -> "PCAHead":
        """Principal directions of images `x` (N, C, H, W) by randomized PCA (Halko et al. 2011)."""
        k = self.proj.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if len(x) > FIT_SAMPLES:
                x = x[torch.randperm(len(x))[:FIT_SAMPLES]]
            X = x.reshape(len(x), -1).float().to(self.mean.device)
            mean = X.mean(0)
            _, _, V = torch.pca_lowrank(X - mean, q=min(k + 10, *X.shape), center=False, niter=4)
        V = V[:, :k]
        std = ((X - mean) @ V).std(0)
        self.mean.copy_(mean)
        self.proj.copy_(V / std.clamp_min(1e-6 * float(std.max())))
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, K)
        return (x.reshape(len(x), -1) - self.mean.to(x.dtype)) @ self.proj.to(x.dtype)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, classify: bool = False) -> torch.Tensor:
        if classify:  # ACGAN's class head belongs to the inner D
            return self.inner(x, c, classify=True)
        return self.inner(x, c) + self.mlp(self.features(x)).flatten()  # (N,)
