"""gankit: train, sample and evaluate GANs with PyTorch.

    run_dir = gankit.train(gankit.load_config("dcgan", overrides=["train.steps=500"]))
    G = gankit.load(run_dir)
    x = gankit.sample(G, 64)          # (64, 1, 28, 28) in [-1, 1]
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from gankit.config import Config, load_config, recipe_names
from gankit.data import DATASETS
from gankit.losses import LOSSES
from gankit.nets import FAMILIES
from gankit.registry import GankitError
from gankit.sample import sample

__all__ = ["train", "load", "sample", "load_config", "recipe_names", "Config", "GankitError",
           "DATASETS", "FAMILIES", "LOSSES"]
__version__ = "0.1.0"


def train(config: Union[Config, str, None] = None, resume: Optional[Union[str, Path]] = None,
          quiet: bool = False) -> Path:
    """Train from a Config (or a recipe name); returns the run directory."""
    from gankit.trainer import train as _train
    cfg = config if isinstance(config, Config) else load_config(config)
    return _train(cfg, Path(resume) if resume else None, quiet=quiet)


def load(path: Union[str, Path], ema: bool = True, device: str = "cpu"):
    """Rebuild the generator of a run directory, a checkpoint (.pt), an export (.safetensors), a hub folder
    (`gankit export RUN --format hub`) or "hf:USER/REPO" (needs huggingface_hub and a network)."""
    from gankit.loading import load_generator
    return load_generator(path, ema=ema, device=device)
