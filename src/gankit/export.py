"""`gankit export`: a trained G in the formats other tools read.

- ``onnx``: ONNX (the TorchScript-based exporter; opset `OPSET` unless asked), a dynamic batch dimension,
  inputs ``z`` (and ``class`` for a conditional G), or ``image`` (and ``mask`` for inpainting) for
  image-to-image runs; output ``image`` (``output`` for image-to-image runs, whose input is the image). The
  metadata holds img_shape, z_dim, class names, task, inputs and opset, as JSON strings. For ONNX Runtime,
  including onnxruntime-web.
- ``torchscript``: ``torch.jit.trace`` of the same module, with the metadata as the extra file gankit.json.
- ``exported``: ``torch.export`` (.pt2, dynamic batch), with the same extra file.
- ``hub``: a folder to publish on the Hugging Face Hub as it is: ``config.json`` (the constructor arguments,
  what ``generator.json`` holds), ``model.safetensors``, ``samples.png`` and a ``README.md`` model card.
  ``gankit.load(DIR)`` and ``gankit.load("hf:USER/REPO")`` read it back (loading.py).

Every format takes the EMA weights when the run has them (``ema=False``: the raw G), and every exported
module takes and returns what a program outside Python has: tensors, images in [-1, 1] NCHW.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from gankit.registry import GankitError

FORMATS = ("onnx", "torchscript", "exported", "hub")
OPSET = 17
HUB_FORMAT = "gankit-hub-1"


class Portable(nn.Module):
    """G with plain tensor inputs: noise runs take (z[, class]) -> image; translation and super-resolution
    take (image) -> image; inpainting takes (image, mask) -> the image with its holes (mask 1) filled by G,
    composed as in training (tasks.Inpaint); unpaired runs export one `direction` (AtoB or BtoA)."""

    def __init__(self, G: nn.Module, direction: Optional[str] = None):
        super().__init__()
        if direction is not None and not G.task.unpaired:
            raise GankitError("--direction is for unpaired runs (task.name=cycle or cut); drop it")
        if direction == "BtoA" and not G.task.two_way:
            raise GankitError(f"--direction BtoA: this run (task.name={G.task.cfg.name}) learned A to B only")
        self.task, self.meta = G.task, G.meta
        self.direction = (direction or "AtoB") if G.task.unpaired else None
        self.G = G.one_way(self.direction) if self.direction else G  # only that direction's weights
        self.kind = "noise" if G.task.has_latent else "inpaint" if G.task.cfg.name == "inpaint" else "image"

    def forward(self, first: torch.Tensor, second: torch.Tensor = None) -> torch.Tensor:
        if self.kind == "noise":
            return self.G(first, second)
        if self.kind == "inpaint":  # the task's own input making and composition, as in training
            batch = {"real": first, **self.task.inputs(first, None, mask=second)}
            return self.task.generate(self.G, batch, None)
        return self.G(first)

    def input_names(self) -> Tuple[str, ...]:
        if self.kind == "noise":
            return ("z", "class") if self.G.c_dim else ("z",)
        return ("image", "mask") if self.kind == "inpaint" else ("image",)

    def output_name(self) -> str:
        return "image" if self.kind == "noise" else "output"  # an input is already called image

    def example(self, n: int = 2) -> Tuple[torch.Tensor, ...]:
        """Example inputs of batch `n` (fixed values), in input_names' order."""
        g = torch.Generator().manual_seed(0)
        if self.kind == "noise":
            z = torch.randn(n, self.G.z_dim, generator=g)
            return (z, torch.arange(n) % self.G.c_dim) if self.G.c_dim else (z,)
        shape = self.task.in_shape() if self.kind == "image" else self.task.img_shape
        x = torch.rand(n, *shape, generator=g) * 2 - 1
        if self.kind == "inpaint":
            return x, (torch.rand(n, 1, *shape[1:], generator=g) > 0.7).float()
        return (x,)


def metadata(module: Portable, opset: int = 0) -> Dict[str, str]:
    """What a user of the file needs to feed it, as strings (ONNX metadata_props, TorchScript extra files)."""
    from gankit import __version__
    G, meta = module.G, module.meta
    out = {"gankit_version": __version__, "family": meta["family"], "img_shape": json.dumps(meta["img_shape"]),
           "z_dim": json.dumps(meta["z_dim"] if module.task.has_latent else 0),
           "class_names": json.dumps(meta.get("class_names", []) if G.c_dim else []),
           "task": json.dumps(meta.get("task", {"name": "noise"})),
           "inputs": json.dumps(list(module.input_names())), "outputs": json.dumps([module.output_name()]),
           "value_range": "[-1, 1]", "layout": "NCHW"}
    if opset:
        out["opset"] = str(opset)
    if module.direction:
        out["direction"] = module.direction
    return out


def _writable(out: Path) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise GankitError(f"cannot write {out}: {parent} is not a writable folder")


def load_for_export(run: Path, ema: bool = True) -> nn.Module:
    """The G to export: a run's finished export (generator.safetensors), a checkpoint, or a hub folder; a run
    that only has checkpoints is a one-line error naming the checkpoint to export instead."""
    from gankit.loading import load_generator
    run = Path(run)
    if run.is_dir() and ema and not (run / "generator.safetensors").is_file() and not (run / "config.json").is_file():
        ckpt = run / "checkpoints" / "last.pt"
        if ckpt.is_file():
            raise GankitError(f"{run} has no finished generator (generator.safetensors is written when training "
                              f"ends); export its checkpoint instead: gankit export {ckpt} ...")
    G = load_generator(run, ema=ema, device="cpu")
    return G.to(memory_format=torch.contiguous_format)


def export(run: Path, fmt: str, out: Path, ema: bool = True, opset: int = OPSET, direction: Optional[str] = None) -> Path:
    """Write run's G as `fmt` (one of FORMATS) to `out`; returns `out`. Unpaired runs: one `direction`
    (default AtoB), except the hub folder, which keeps both."""
    if fmt not in FORMATS:
        raise GankitError(f"unknown export format '{fmt}'; choose from {', '.join(FORMATS)}")
    out = Path(out)
    _writable(out)
    return save(load_for_export(Path(run), ema), fmt, out, opset, run=Path(run), ema=ema, direction=direction)


def save(G: nn.Module, fmt: str, out: Path, opset: int = OPSET, run: Optional[Path] = None, ema: bool = True,
         direction: Optional[str] = None) -> Path:
    """Write a loaded G (with `G.meta` and `G.task`, as loading.py gives it) as `fmt`; `run` (its run
    directory, checkpoint or export) gives the hub card its config, metrics and sample grid."""
    out = Path(out)
    if direction is not None and direction not in ("AtoB", "BtoA"):
        raise GankitError(f"--direction {direction}: choose AtoB or BtoA")
    module = Portable(G, direction).eval()
    try:
        if fmt == "onnx":
            return to_onnx(module, out, opset)
        if fmt == "torchscript":  # deprecated by PyTorch in favour of torch.export, still what C++ loads
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                traced = torch.jit.trace(module, module.example(), check_trace=False)
                torch.jit.save(traced, str(out), _extra_files={"gankit.json": json.dumps(metadata(module))})
            return out
        if fmt == "exported":
            batch = torch.export.Dim("batch", min=1, max=1 << 16)
            names = module.input_names()
            dynamic = {arg: {0: batch} for arg in ("first", "second")[:len(names)]}
            program = torch.export.export(module, module.example(), dynamic_shapes=dynamic)
            torch.export.save(program, str(out), extra_files={"gankit.json": json.dumps(metadata(module))})
            return out
        return to_hub(G, run, out, ema)
    except OSError as e:
        raise GankitError(f"cannot write {out} ({e.strerror or e})") from None


def to_onnx(module: Portable, out: Path, opset: int = OPSET) -> Path:
    """ONNX with a dynamic batch and gankit's metadata (needs the `onnx` package: pip install gankit[export])."""
    try:
        import onnx
    except ImportError:
        raise GankitError("ONNX export needs the onnx package: pip install 'gankit[export]'") from None
    names = module.input_names()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter still works
        torch.onnx.export(module, module.example(), str(out), dynamo=False, input_names=list(names),
                          output_names=[module.output_name()], opset_version=opset,
                          dynamic_axes={n: {0: "batch"} for n in (*names, module.output_name())})
    model = onnx.load(str(out))
    for key, value in metadata(module, opset).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out))
    return out


# --- the hub folder ---------------------------------------------------------------------------------------
def to_hub(G: nn.Module, run: Path, out: Path, ema: bool = True) -> Path:
    """A Hub model folder: config.json, model.safetensors, samples.png, README.md (the model card)."""
    from safetensors.torch import save_file
    from gankit.loading import run_dir_of
    from gankit.sample import sample, save_grid
    if out.exists() and not out.is_dir():
        raise GankitError(f"cannot write the hub folder {out}: a file of that name exists")
    out.mkdir(parents=True, exist_ok=True)
    config = {"format": HUB_FORMAT, "library_name": "gankit", **G.meta}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    save_file({k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}, str(out / "model.safetensors"))
    rd = run_dir_of(run) if run is not None else out
    if G.task.has_latent:
        shown = sample(G, 10 * G.c_dim if G.c_dim else 64, seed=0)
        image = save_grid(shown, out / "samples.png", nrow=G.c_dim or 8).name if shown.dim() == 4 else None
    else:
        grids = sorted((rd / "samples").glob("step_*.png"))
        image = shutil.copyfile(grids[-1], out / "samples.png").name if grids else None
    (out / "README.md").write_text(model_card(G, rd, image, ema))
    return out


def model_card(G: nn.Module, run: Path, image, ema: bool) -> str:
    """The model card: YAML front matter (library_name, tags, licence, data set), then what the model is, the
    recipe and its config, the metrics of eval.json, the sample image and three lines that load it."""
    import yaml
    meta = G.meta
    task = meta.get("task", {}).get("name", "noise")
    cfg_text = (run / "config.yaml").read_text() if (run / "config.yaml").is_file() else ""
    cfg = yaml.safe_load(cfg_text) if cfg_text else {}
    recipe = (cfg or {}).get("recipe") or meta["family"]
    data = meta.get("data", "unknown")
    front = {"library_name": "gankit", "license": "mit",
             "tags": ["gan", "gankit", "pytorch",
                      "unconditional-image-generation" if task == "noise" else "image-to-image", meta["family"]],
             "datasets": ["mnist"] if data in ("mnist-5k", "mnist", "stacked-mnist") else [data],
             "pipeline_tag": "unconditional-image-generation" if task == "noise" else "image-to-image"}
    shape = "x".join(str(s) for s in meta["img_shape"])
    what = (f"A GAN generator ({meta['family']} family) trained with gankit on `{data}`: it maps "
            + (f"a {meta['z_dim']}-dimensional standard normal latent" + (f" and one of {G.c_dim} classes "
               f"({', '.join(meta.get('class_names', [])[:12])})" if G.c_dim else "") if task == "noise"
               else f"an input image ({'x'.join(str(s) for s in meta['in_shape'])}; task `{task}`)")
            + f" to a {shape} image in [-1, 1] (NCHW).")
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "", f"# gankit {meta['family']} on {data}",
             "", what, "", f"Weights: {'the exponential moving average of G' if ema else 'the raw G'}.", ""]
    if image:
        lines += [f"![samples]({image})", ""]
    lines += ["## Use it", "", "```python", "import gankit"]
    if task == "noise":
        lines += ['G = gankit.load("hf:USER/REPO")  # or the path of this folder',
                  "x = gankit.sample(G, 16" + (", c=3)  # 16 images of class 3" if G.c_dim else ")  # 16 images")]
    else:
        lines += ['G = gankit.load("hf:USER/REPO")  # or the path of this folder',
                  "y, inputs, masks = gankit.tasks.translate(G, G.task, images, from_targets=True)"]
    lines += ["```", "", "## Metrics", ""]
    metrics_path = run / "eval.json"
    if metrics_path.is_file():
        scores = json.loads(metrics_path.read_text())
        lines += ["From `gankit eval` (eval.json of the run):", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in scores.items()]
    else:
        lines += ["Not evaluated: the run has no eval.json (`gankit eval RUN` writes one)."]
    lines += ["", f"## Recipe `{recipe}` and its config", "", "```yaml", cfg_text.strip() or "(not recorded)", "```", ""]
    return "\n".join(lines)
