"""`gankit eval`: metrics of a trained generator against its real data, with offline features.

Features: `classifier` (default; works offline, see metrics/classifier.py). `inception` needs the FID
Inception-v3 weights (torchmetrics / torch-fidelity download them when online, or --inception-weights):
not available on an offline machine, and never replaced silently by something else.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from gankit import checkpoint
from gankit.config import DataConfig, from_dict
from gankit.data import Dataset, build_dataset, MIXTURES
from gankit.metrics import classifier as clf
from gankit.metrics.scores import all_image_metrics
from gankit.metrics.toy2d import N_SAMPLES, mode_stats
from gankit.registry import GankitError
from gankit.sample import sample  # conditional G: classes 0..K-1 in turn

METRICS = ("fid", "kid", "is", "pr", "dc", "classes")


def real_features(model: nn.Module, ds: Dataset) -> tuple:
    """Classifier features and logits of the real images, cached beside the classifier."""
    path = clf.cache_dir() / f"features-{ds.name}-{clf.data_hash(ds)}.pt"
    if path.is_file():
        state = checkpoint.load(path)
        return state["features"], state["logits"]
    feats, logits = clf.embed(model, ds.x)
    checkpoint.save(path, {"features": feats, "logits": logits})
    return feats, logits


def evaluate(G: nn.Module, ds: Dataset, n: int = 10000, metrics: Sequence[str] = METRICS,
             features: str = "classifier", seed: int = 123, quiet: bool = True) -> Dict[str, float]:
    """Metrics of G against `ds`. 2D mixtures get the mode protocol (2,500 samples) instead."""
    if not ds.is_image:
        if ds.name not in MIXTURES:
            raise GankitError(f"no metrics for 2D data set '{ds.name}'")
        means_fn, std = MIXTURES[ds.name]
        return mode_stats(sample(G, N_SAMPLES, seed), means_fn(), std)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise GankitError(f"unknown metric '{unknown[0]}'; choose from {', '.join(METRICS)}")
    if features != "classifier":
        raise GankitError(f"--features {features}: the Inception-v3 FID weights are not available offline; "
                          f"use --features classifier (trained on the real data, works offline)")
    model, acc = clf.get_classifier(ds, quiet=quiet)
    real_f, _ = real_features(model, ds)
    fake_f, fake_logits = clf.embed(model, sample(G, n, seed))
    out = all_image_metrics(real_f, fake_f, fake_logits, ds.c, ds.num_classes, tuple(metrics))
    if G.c_dim and G.c_dim == ds.num_classes:  # conditional: is a sample of class k classified as k?
        out["cond_acc"] = float((fake_logits.argmax(1) == torch.arange(n) % G.c_dim).double().mean())
    return {**out, "n": n, "classifier_accuracy": acc}


def real_vs_real(ds: Dataset, metrics: Sequence[str] = ("fid", "kid", "pr", "dc")) -> Dict[str, float]:
    """The floor: metrics between two random halves of the real data (F0 for FID)."""
    model, _ = clf.get_classifier(ds)
    feats, logits = real_features(model, ds)
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    a, b = perm[: len(ds) // 2], perm[len(ds) // 2:]
    return all_image_metrics(feats[a], feats[b], logits[b], ds.c[a], ds.num_classes, tuple(metrics))


def evaluate_run(path: Path, n: int, metrics: Sequence[str], features: str = "classifier",
                 ema: bool = True, data: Optional[DataConfig] = None) -> Dict[str, float]:
    """Evaluate a run directory / checkpoint / export; writes eval.json into a run directory."""
    from gankit.loading import load_generator
    G = load_generator(Path(path), ema=ema)
    data = data or from_dict(DataConfig, _run_data(Path(path)), "data.")
    result = evaluate(G, build_dataset(data), n, metrics, features, quiet=False)
    if Path(path).is_dir():
        (Path(path) / "eval.json").write_text(json.dumps(result, indent=2))
    return result


def _run_data(path: Path) -> dict:
    from gankit.config import read_yaml
    run = path if path.is_dir() else path.parent.parent if path.suffix == ".pt" else path.parent
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise GankitError(f"cannot tell which data {path} was trained on (no config.yaml beside it)")
    return read_yaml(cfg_path).get("data", {})
