"""The Keras DCGAN of seed 002, ported layer by layer (TensorFlow 'valid' padding, Keras BatchNorm).

G: Dense(512 * s0 * s0) -> ConvT(256, 3, stride 2) ReLU, BN -> ConvT(128, 2, 2) ReLU, BN
   -> ConvT(64, 2, 2) Tanh -> Dense(1) per pixel.  At 28x28: 3 -> 7 -> 14 -> 28.
D: Conv(64, 4, 2) ReLU, BN -> Conv(128, 4, 3) ReLU, BN -> Conv(256, 4, 3) ReLU -> Flatten -> Dense(1).
One deviation, to keep G's contract (x in [-1, 1]): a Tanh after the seed's final Dense(1), whose output
the seed leaves unbounded. Resolutions: multiples of 4 (28 as in the seed; 8 to 256). D's strided 'valid'
convolutions need at least 28 px, so D pads smaller images to 28 with the background value -1.
Seed hyperparameters: Adam(1e-4) (Keras betas 0.9, 0.999), batch 256, BCE on logits.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.nets import FAMILIES
from gankit.nets.layers import Projection, with_labels


MIN_SIDE = 28  # what D's three 'valid' convolutions (kernel 4; strides 2, 3, 3) need


def keras_bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=1e-3, momentum=0.01)  # Keras defaults: momentum 0.99, epsilon 1e-3


class KerasGenerator(nn.Module):
    def __init__(self, img_shape, c_dim, z_dim):
        super().__init__()
        self.img_shape, self.c_dim, self.z_dim = tuple(img_shape), c_dim, z_dim
        channels, side = img_shape[0], img_shape[1]
        q = side // 4
        # first ConvT (kernel 3, stride 2) maps s0 -> q: valid padding for odd q, 'same'-like for even q
        self.s0, pad, out_pad = ((q - 1) // 2, 0, 0) if q % 2 else (q // 2, 1, 1)
        self.fc = nn.Linear(z_dim + c_dim, 512 * self.s0 * self.s0)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 3, 2, pad, output_padding=out_pad), nn.ReLU(), keras_bn(256),
            nn.ConvTranspose2d(256, 128, 2, 2), nn.ReLU(), keras_bn(128),
            nn.ConvTranspose2d(128, 64, 2, 2), nn.Tanh(),
            nn.Conv2d(64, channels, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.fc(with_labels(z, c, self.c_dim)).view(-1, 512, self.s0, self.s0)
        return self.net(h)  # (N, C, H, W)


class KerasDiscriminator(nn.Module):
    def __init__(self, img_shape, c_dim):
        super().__init__()
        extra = max(0, MIN_SIDE - img_shape[1])
        self.pad = (extra // 2, extra - extra // 2) * 2  # left, right, top, bottom: to MIN_SIDE
        self.body = nn.Sequential(
            nn.Conv2d(img_shape[0], 64, 4, 2), nn.ReLU(), keras_bn(64),
            nn.Conv2d(64, 128, 4, 3), nn.ReLU(), keras_bn(128),
            nn.Conv2d(128, 256, 4, 3), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            features = self.body.eval()(F.pad(torch.zeros(1, *img_shape), self.pad)).shape[1]
        self.body.train()
        self.head = nn.Linear(features, 1)
        self.proj = Projection(c_dim, features)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = self.body(F.pad(x, self.pad, value=-1.0) if any(self.pad) else x)  # (N, F)
        return self.head(h).squeeze(1) + self.proj(h, c)  # (N,)


@FAMILIES.register("keras-dcgan")
def build(img_shape: Tuple[int, ...], c_dim: int = 0, z_dim: int = 100):
    """Seed 002's Keras DCGAN; square images with side a multiple of 4, at least 8."""
    if len(img_shape) != 3 or img_shape[1] != img_shape[2] or img_shape[1] % 4 or img_shape[1] < 8:
        raise ValueError(f"keras-dcgan needs square images with side a multiple of 4, >= 8; got {img_shape}")
    return KerasGenerator(img_shape, c_dim, z_dim), KerasDiscriminator(img_shape, c_dim)
