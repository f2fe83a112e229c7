"""Rebuild a generator from what a run leaves behind: the export (safetensors + JSON) or a checkpoint.
The config travels with the weights, so nothing else is needed."""
from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from gankit import checkpoint, hardware, nets
from gankit.registry import GankitError
from gankit.tasks import task_from_meta


def _build(meta: dict):
    """(G, D) of the family and arguments a run recorded (a translator family for image-to-image tasks)."""
    if meta.get("task", {}).get("name", "noise") != "noise":
        return nets.build_translator(meta["family"], tuple(meta["in_shape"]), tuple(meta["img_shape"]),
                                     tuple(meta["d_shape"]), meta["args"])
    return nets.build(meta["family"], tuple(meta["img_shape"]), meta["c_dim"], meta["z_dim"], meta["args"],
                      meta.get("d_pca", 0))


def load_generator(path: Path, ema: bool = True, device: str = "cpu") -> nn.Module:
    """`path`: run dir, checkpoints/*.pt, or generator.safetensors. `ema`: prefer the EMA weights.
    A run dir uses its export when `ema` (the export holds G_ema when there is one), else last.pt."""
    path = Path(path)
    if path.is_dir():
        export = path / "generator.safetensors"
        ckpt = path / "checkpoints" / "last.pt"
        if export.is_file() and (ema or not ckpt.is_file()):
            path = export
        elif ckpt.is_file():
            path = ckpt
        else:
            raise GankitError(f"{path} holds neither generator.safetensors nor checkpoints/last.pt")
    if path.suffix == ".safetensors":
        meta, tensors = checkpoint.read_generator(path)
        G, _ = _build(meta)
        checkpoint.load_state(G, tensors, "G")
    else:
        state = checkpoint.load(path)
        G, _ = _build(state["meta"])
        weights = state["G_ema"] if ema and state.get("G_ema") is not None else state["G"]
        checkpoint.load_state(G, weights, "G")
    G.meta = meta if path.suffix == ".safetensors" else state["meta"]
    G.task = task_from_meta(G.meta)  # what G translates (or noise to image), as the run trained it
    return G.to(hardware.pick_device(device)).eval().requires_grad_(False)


def load_discriminator(path: Path, device: str = "cpu") -> nn.Module:
    """D of a run directory or checkpoint (exports hold G only), as trained; with its run's config in
    `D.config` (the loss and PacGAN packing decide whether D's logit can be read as a density ratio)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if path.suffix != ".pt":
        raise GankitError(f"{path}: D lives in the run's checkpoints (checkpoints/last.pt); exports hold G only")
    state = checkpoint.load(path)
    _, D = _build(state["meta"])
    if state["config"]["train"].get("pack", 1) > 1:
        raise GankitError(f"{path}: this D judges packs of {state['config']['train']['pack']} samples "
                          f"(PacGAN), not single samples")
    checkpoint.load_state(D, state["D"], "D")
    D.config = state["config"]
    return D.to(hardware.pick_device(device)).eval().requires_grad_(False)
