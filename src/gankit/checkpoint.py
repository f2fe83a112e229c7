"""Checkpoints that survive crashes and never run code.

- ``save``: write to a temporary file in the same directory, flush + fsync, then ``os.replace`` (atomic on
  POSIX), then fsync the directory. The previous file stays whole until the new one is complete; a full
  disk leaves it untouched and raises a one-line error.
- ``load``: ``torch.load(weights_only=True)`` only (tensors and plain data; a pickled code payload is
  refused and never executed), then checks the format tag and that every tensor is finite.
- ``export_generator``: ``generator.safetensors`` + ``generator.json`` (everything needed to rebuild G).
"""
from __future__ import annotations

import json
import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
import torch.nn as nn

from gankit.registry import GankitError

FORMAT = "gankit-checkpoint-1"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call write(file_object) on a temp file next to `path`, fsync, rename over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise GankitError(f"could not write {path} ({e.strerror or e}); the previous file is intact") from None
        raise
    _fsync_dir(path.parent)


def save(path: Path, state: Dict[str, Any]) -> None:
    atomic_write(Path(path), lambda f: torch.save({"format": FORMAT, **state}, f))


def check_finite(obj: Any, where: str) -> None:
    if torch.is_tensor(obj):
        if obj.is_floating_point() and not torch.isfinite(obj).all():
            raise GankitError(f"checkpoint holds non-finite values in {where}")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check_finite(v, f"{where}.{k}")


def load(path: Path, map_location: Any = "cpu") -> Dict[str, Any]:
    """Load a gankit checkpoint safely; any problem is a GankitError with one line."""
    path = Path(path)
    if not path.is_file():
        raise GankitError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:160]
        raise GankitError(f"refused to load {path}: it holds objects other than tensors and plain data "
                          f"(possible code payload; nothing was executed): {first}") from None
    except Exception as e:  # a damaged file can fail anywhere in the unpickler, with any error type
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise GankitError(f"cannot read checkpoint {path}: truncated or not a torch file ({first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise GankitError(f"{path} is not a gankit checkpoint (no '{FORMAT}' tag)")
    for key in ("G", "D", "G_ema"):
        if state.get(key) is not None:
            check_finite(state[key], key)
    return state


# --- random number generators -----------------------------------------------------------------------------
def rng_state(device: Optional[torch.device] = None) -> Dict[str, Any]:
    """Global torch / numpy / Python RNG states as tensors and plain data (weights_only-safe), and the CUDA
    RNG state of the training `device` only: not every visible GPU's (which would not restore with fewer
    GPUs visible), and CUDA is never initialised for a CPU run."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    cuda = device is not None and torch.device(device).type == "cuda"
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(torch.device(device)) if cuda else None,
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached": float(cached)},
            "python": [version, list(internal), gauss_next]}


def set_rng_state(state: Dict[str, Any], device: Optional[torch.device] = None) -> None:
    """Restore `rng_state()`; a failure is an error, never a silent fresh seed. The CUDA state goes to the
    training `device` when both the checkpoint and this run are on CUDA; across devices (CPU <-> CUDA) the
    CPU, numpy and Python states still restore, and the data order and latents (CPU generators) too."""
    try:
        torch.set_rng_state(state["torch"])
        cuda = state.get("cuda")
        if isinstance(cuda, list):  # written by an earlier format: one state per visible GPU
            cuda = cuda[0] if cuda else None
        if cuda is not None and device is not None and torch.device(device).type == "cuda":
            torch.cuda.set_rng_state(cuda, torch.device(device))
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached"]))
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        raise GankitError(f"checkpoint RNG state could not be restored ({e})") from None


# --- exported generators ----------------------------------------------------------------------------------
def export_generator(run_dir: Path, G: nn.Module, meta: Dict[str, Any]) -> Path:
    """Write G's weights as safetensors and the constructor arguments as JSON (diffusers style)."""
    from safetensors.torch import save as st_save
    run_dir = Path(run_dir)
    tensors = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    atomic_write(run_dir / "generator.safetensors", lambda f: f.write(st_save(tensors)))
    text = json.dumps(meta, indent=2).encode()
    atomic_write(run_dir / "generator.json", lambda f: f.write(text))
    return run_dir / "generator.safetensors"


def read_generator(path: Path) -> tuple:
    """-> (meta dict, state dict) from generator.safetensors + generator.json beside it."""
    from safetensors.torch import load_file
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise GankitError(f"{meta_path} is missing: it holds the config needed to rebuild the generator")
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise GankitError(f"cannot read exported generator {path} ({type(e).__name__}: {e})") from None
    check_finite(tensors, "generator")
    return meta, tensors


def load_state(module: nn.Module, state: Optional[Dict[str, torch.Tensor]], what: str) -> None:
    """Strict load_state_dict with a one-line error on a shape or key mismatch."""
    if state is None:
        raise GankitError(f"checkpoint has no weights for {what}")
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise GankitError(f"weights for {what} do not fit the model: {lines[1] if len(lines) > 1 else lines[0]}") from None
