"""Rebuild a generator from what a run leaves behind: the export (safetensors + JSON) or a checkpoint.
The config travels with the weights, so nothing else is needed."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch.nn as nn

from gankit import checkpoint, hardware, nets
from gankit.registry import GankitError
from gankit.tasks import TASKS, task_from_meta


def _build(meta: dict):
    """(G, D) of the family and arguments a run recorded (a translator family for image-to-image tasks)."""
    task = meta.get("task", {}).get("name", "noise")
    if task != "noise":
        return nets.build_translator(meta["family"], tuple(meta["in_shape"]), tuple(meta["img_shape"]),
                                     tuple(meta["d_shape"]), meta["args"], two_way=TASKS.get(task).two_way)
    return nets.build(meta["family"], tuple(meta["img_shape"]), meta["c_dim"], meta["z_dim"], meta["args"],
                      meta.get("d_pca", 0))


def run_dir_of(path: Path) -> Path:
    """The run directory of a run dir, a checkpoint (RUN/checkpoints/x.pt) or an export (RUN/generator.*)."""
    path = Path(path)
    return path if path.is_dir() else path.parent.parent if path.suffix == ".pt" else path.parent


def generator_from(meta: dict, tensors: Optional[dict] = None, what: str = "G") -> nn.Module:
    """G of the family and arguments `meta` records (generator.json, a checkpoint's meta, a hub config.json),
    with `tensors` loaded strictly when given; it knows its task (`G.task`) and carries `G.meta`."""
    G, _ = _build(meta)
    if tensors is not None:
        checkpoint.load_state(G, tensors, what)
    G.meta, G.task = meta, task_from_meta(meta)
    return G


def hub_download(spec: str) -> Path:
    """"hf:USER/REPO[@REVISION]" -> the local folder of that Hub model (huggingface_hub's cache)."""
    repo, _, revision = spec[3:].partition("@")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise GankitError(f"loading {spec} needs huggingface_hub: pip install 'gankit[hub]' (or download the "
                          f"folder and give its path)") from None
    try:
        return Path(snapshot_download(repo, revision=revision or None))
    except Exception as e:  # offline, no such repo, no access: the hub client raises many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise GankitError(f"could not download {spec} from the Hugging Face Hub ({first}); offline, give the "
                          f"path of a downloaded copy") from None


def read_hub(folder: Path) -> tuple:
    """-> (meta, state dict) of a hub folder written by `gankit export --format hub`."""
    import json
    from safetensors.torch import load_file
    cfg_path, weights = folder / "config.json", folder / "model.safetensors"
    if not cfg_path.is_file():
        raise GankitError(f"{folder} holds no config.json: not a gankit hub folder (gankit export RUN --format hub)")
    try:
        meta = json.loads(cfg_path.read_text())
    except ValueError as e:
        raise GankitError(f"{cfg_path} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("library_name") != "gankit" or "family" not in meta:
        raise GankitError(f"{cfg_path} is not a gankit config (no library_name: gankit and family); this folder "
                          f"holds another library's model")
    if not weights.is_file():
        raise GankitError(f"{folder} has config.json but no model.safetensors")
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise GankitError(f"cannot read {weights} ({type(e).__name__}: {e})") from None
    checkpoint.check_finite(tensors, "model.safetensors")
    return {k: v for k, v in meta.items() if k not in ("format", "library_name")}, tensors


def load_generator(path, ema: bool = True, device: str = "cpu") -> nn.Module:
    """`path`: run dir, checkpoints/*.pt, generator.safetensors, a hub folder (config.json +
    model.safetensors) or "hf:USER/REPO" (downloaded with huggingface_hub). `ema`: prefer the EMA weights.
    A run dir uses its export when `ema` (the export holds G_ema when there is one), else last.pt."""
    if str(path).startswith("hf:"):
        path = hub_download(str(path))
    path = Path(path)
    if path.is_dir() and ((path / "config.json").is_file() or (path / "model.safetensors").is_file()):  # a hub folder
        G = generator_from(*read_hub(path), what=f"G (the model.safetensors of {path} against its config.json)")
    elif path.suffix == ".safetensors" or path.is_dir() and _export_first(path, ema):
        G = generator_from(*checkpoint.read_generator(path if path.suffix == ".safetensors"
                                                     else path / "generator.safetensors"))
    else:
        state = checkpoint.load(path / "checkpoints" / "last.pt" if path.is_dir() else path)
        G = generator_from(state["meta"], state["G_ema"] if ema and state.get("G_ema") is not None else state["G"])
    return G.to(hardware.pick_device(device)).eval().requires_grad_(False)


def _export_first(run: Path, ema: bool) -> bool:
    """A run dir: its export (which holds G_ema when there is one) when `ema` or when it has no checkpoint."""
    export, ckpt = run / "generator.safetensors", run / "checkpoints" / "last.pt"
    if not export.is_file() and not ckpt.is_file():
        raise GankitError(f"{run} holds neither generator.safetensors nor checkpoints/last.pt")
    return export.is_file() and (ema or not ckpt.is_file())


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
