"""The offline feature extractor: a small CNN classifier trained on the real, labelled training images.

Its penultimate layer (128 features) stands in for Inception's pool features in FID/KID/precision/recall,
its softmax gives the Inception Score and class histograms. It is trained once per set of images and labels
and cached under the user cache dir, keyed by a hash of them and of this architecture (not by the data set's
name: mnist2digits' domain A reuses mnist-5k's).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit import checkpoint
from gankit.data import Dataset
from gankit.registry import GankitError

ARCH_VERSION = "cnn-v1"
N_FEATURES = 128


def cache_dir() -> Path:
    root = os.environ.get("GANKIT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                                                          "gankit")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_hash(ds: Dataset) -> str:
    """Hash of the images (quantised to 8 bits) and labels: the cache key of everything derived from them."""
    h = hashlib.sha256()
    h.update(ARCH_VERSION.encode())
    h.update(str(tuple(ds.x.shape)).encode())
    h.update(((ds.x + 1) * 127.5).round().to(torch.uint8).numpy().tobytes())
    if ds.c is not None:
        h.update(ds.c.to(torch.int64).numpy().tobytes())
    return h.hexdigest()[:16]


class Classifier(nn.Module):
    """(N, C, H, W) in [-1, 1] -> logits (N, K); `features(x)` -> (N, 128)."""

    def __init__(self, img_shape: Tuple[int, ...], num_classes: int):
        super().__init__()
        c = img_shape[0]
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 16, N_FEATURES), nn.ReLU())
        self.head = nn.Linear(N_FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels (batched): a little robustness to the jitter of generated digits."""
    n, _, h, w = x.shape
    pad = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx, dy = torch.randint(0, 5, (2,), generator=g).tolist()
    return pad[:, :, dy:dy + h, dx:dx + w]


def fit(model: Classifier, x: torch.Tensor, c: torch.Tensor, epochs: int, g: torch.Generator,
        device="cpu", batch: int = 128) -> Classifier:
    """Train `model` on (x, c) for `epochs` passes (at least one step each) of shuffled, shifted batches
    (Adam, one-cycle lr 3e-3); the data order and shifts come from `g`. Returns it in eval mode."""
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps_per_epoch = max(len(x) // batch, 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * steps_per_epoch)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(augment(x[idx], g).to(device)), c[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.inference_mode()
def accuracy(model: Classifier, x: torch.Tensor, c: torch.Tensor) -> float:
    """The share of `x` that `model` reads as its label `c`."""
    device = next(model.parameters()).device
    pred = torch.cat([model(x[i:i + 1000].to(device).float()).argmax(1).cpu() for i in range(0, len(x), 1000)])
    return float((pred == c.cpu()).float().mean())


def train_classifier(ds: Dataset, epochs: int = 8, seed: int = 0, device="cpu") -> Tuple[Classifier, float]:
    """Train on 90% of `ds` (on `device`), return the model and its accuracy on the held-out 10%."""
    if ds.c is None or not ds.is_image:
        raise GankitError(f"the classifier feature extractor needs labelled images; '{ds.name}' has none")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(ds), generator=g)
    n_val = max(len(ds) // 10, 1)
    val, tr = perm[:n_val], perm[n_val:]
    model = fit(Classifier(ds.img_shape, ds.num_classes), ds.images(tr), ds.c[tr], epochs, g, device)
    return model.cpu(), accuracy(model, ds.images(val), ds.c[val])


def get_classifier(ds: Dataset, quiet: bool = False, device="cpu") -> Tuple[Classifier, float]:
    """The cached classifier for `ds` (trained on first use, on `device`); returns (model in eval mode on
    `device`, held-out accuracy)."""
    path = cache_dir() / f"classifier-{data_hash(ds)}.pt"  # by content alone: mnist2digits' domain A is mnist-5k
    model = Classifier(ds.img_shape, ds.num_classes)
    if path.is_file():
        state = checkpoint.load(path)
        checkpoint.load_state(model, state["weights"], "classifier")
        return model.to(device).eval().requires_grad_(False), float(state["accuracy"])
    if not quiet:
        print(f"training the {ds.name} feature classifier (once; cached in {path.parent}) ...", flush=True)
    with torch.random.fork_rng():  # leave the caller's global RNG (a training run's) untouched
        model, acc = train_classifier(ds, device=device)
    checkpoint.save(path, {"weights": model.state_dict(), "accuracy": acc, "data": ds.name})
    return model.to(device).eval().requires_grad_(False), acc


@torch.inference_mode()
def embed(model: Classifier, x: torch.Tensor, batch: int = 1000) -> Tuple[torch.Tensor, torch.Tensor]:
    """-> (features (N, 128), logits (N, K)) as float64 on the CPU; x may live on any device (each chunk is
    moved to the model's)."""
    device = next(model.parameters()).device
    model = model.to(memory_format=torch.channels_last)  # 1.5x faster convs on CPU (oneDNN); same features
    feats, logits = [], []
    for i in range(0, len(x), batch):
        f = model.features(x[i:i + batch].to(device).float().contiguous(memory_format=torch.channels_last))
        feats.append(f.double().cpu())
        logits.append(model.head(f).double().cpu())
    return torch.cat(feats), torch.cat(logits)


class Features:
    """The classifier as a feature extractor: `key` names its cached real features, calling it embeds."""

    def __init__(self, model: Classifier, accuracy: float):
        self.model, self.accuracy, self.key = model, accuracy, "classifier"

    def __call__(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return embed(self.model, x)
