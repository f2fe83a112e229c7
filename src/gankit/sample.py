"""Sampling: latents from seeds, grids, spherical interpolation, exports, and the pictures of a run
(sample grids, 2D scatter plots, progress.gif, losses.png)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn


def latents(n: int, z_dim: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """(n, z_dim) standard normal latents, reproducible from `seed` on any device."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, z_dim, generator=g).to(device)


@torch.inference_mode()
def generate(G: nn.Module, z: torch.Tensor, c: Optional[torch.Tensor] = None, batch: int = 500) -> torch.Tensor:
    """G(z, c) in eval mode, in chunks; returns float32 on G's device."""
    was_training = G.training
    G.eval()
    out = [G(z[i:i + batch], None if c is None else c[i:i + batch]).float() for i in range(0, len(z), batch)]
    G.train(was_training)
    return torch.cat(out)


def sample(G: nn.Module, n: int, seed: int = 0, c=None) -> torch.Tensor:
    """n samples from G: (n, *img_shape). `c` an int class for all, a (n,) tensor, or None (uniform classes
    when G is conditional)."""
    device = next(G.parameters()).device
    z = latents(n, G.z_dim, seed, device)
    labels = None
    if G.c_dim:
        if c is None:
            labels = torch.arange(n, device=device) % G.c_dim
        elif isinstance(c, int):
            labels = torch.full((n,), c, dtype=torch.long, device=device)
        else:
            labels = torch.as_tensor(c, device=device).long()
    return generate(G, z, labels)


def to_grid(x: torch.Tensor, nrow: Optional[int] = None) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (3, H', W') in [0, 1]."""
    from torchvision.utils import make_grid  # torchvision costs ~2.5 s to import: only where pictures are made
    nrow = nrow or max(1, int(round(len(x) ** 0.5)))
    return make_grid(x.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2)


def save_grid(x: torch.Tensor, path: Path, nrow: Optional[int] = None) -> Path:
    from torchvision.utils import save_image
    save_image(to_grid(x, nrow), str(path))
    return Path(path)


def save_pngs(x: torch.Tensor, out: Path, names: Sequence[str]) -> None:
    """(N, C, H, W) in [-1, 1] -> one PNG per image in folder `out`, `names[i]`.png."""
    from torchvision.utils import save_image
    out.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, x):
        save_image((img.float().cpu() + 1) / 2, str(out / f"{name}.png"))


def save_scatter(fake: torch.Tensor, path: Path, real: Optional[torch.Tensor] = None, title: str = "") -> Path:
    """2D samples (N, 2) as a scatter plot over the real data."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        ax.scatter(*real[:2000].cpu().numpy().T, s=2, c="tab:blue", alpha=0.3, label="real")
    ax.scatter(*fake.detach().float().cpu().numpy().T, s=2, c="tab:red", alpha=0.6, label="G")
    lim = 1.3 * float(real.abs().max()) if real is not None else None
    if lim:
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def save_samples(x: torch.Tensor, out: Path, fmt: str = "png") -> Path:
    """png: one grid; png-dir: one PNG per sample in folder `out`; npy: (N, ...) float32 in [-1, 1]."""
    out = Path(out)
    if fmt == "npy":
        np.save(out, x.cpu().numpy().astype(np.float32))
    elif fmt == "png-dir":
        save_pngs(x, out, [f"{i:06d}" for i in range(len(x))])
    elif fmt == "png":
        if x.dim() == 2:
            save_scatter(x, out)
        else:
            save_grid(x, out)
    else:
        raise ValueError(f"unknown format '{fmt}'")
    return out


def save_per_class(G: nn.Module, per_class: int, out: Path, fmt: str = "png-dir", seed: int = 0) -> Path:
    """`per_class` samples of each class of a conditional G (latents from `seed`). png-dir: `out/<class
    name>/000000.png ...`, a labelled folder; npy: images in class order to `out`, labels to `<out>-labels.npy`;
    png: a grid with one row per class."""
    names = list(getattr(G, "meta", {}).get("class_names") or []) or [str(k) for k in range(G.c_dim)]
    labels = torch.arange(G.c_dim).repeat_interleave(per_class)
    x = sample(G, len(labels), seed=seed, c=labels).cpu()
    out = Path(out)
    if fmt == "png-dir":
        for k, name in enumerate(names):
            save_samples(x[labels == k], out / name, "png-dir")
    elif fmt == "npy":
        save_samples(x, out, "npy")
        np.save(out.with_name(out.stem + "-labels.npy"), labels.numpy())
    else:
        save_grid(x, out, nrow=per_class)
    return out


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of a and b (N, D) at fractions t (T,) -> (N, T, D)."""
    a_n, b_n = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]  # (N, 1, 1)
    t = t[None, :, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / so


def interpolate(G: nn.Module, rows: int = 8, steps: int = 10, seed: int = 0, c: Optional[int] = None) -> torch.Tensor:
    """rows x steps images: each row a spherical path between two latents. -> (rows * steps, *img_shape)."""
    device = next(G.parameters()).device
    z = latents(2 * rows, G.z_dim, seed, device)
    path = slerp(z[:rows], z[rows:], torch.linspace(0, 1, steps, device=device)).reshape(-1, G.z_dim)
    labels = None
    if G.c_dim:
        row_c = torch.arange(rows, device=device) % G.c_dim if c is None else torch.full((rows,), c, device=device)
        labels = row_c.repeat_interleave(steps)
    return generate(G, path, labels)


def make_gif(frames: Sequence[Path], path: Path, ms_per_frame: int = 250) -> Optional[Path]:
    """Animated GIF of PNG frames (the training-progress picture of seed 003)."""
    from PIL import Image
    if not frames:
        return None
    images = [Image.open(p).convert("RGB") for p in frames]
    images[0].save(path, save_all=True, append_images=images[1:] + [images[-1]] * 3, duration=ms_per_frame,
                   loop=0)
    return Path(path)


def plot_losses(rows: List[dict], path: Path) -> Optional[Path]:
    """One curve per loss term logged in stats.jsonl: D's and G's losses and, for image-to-image tasks,
    G's parts (loss/g_l1, loss/g_adv, ...), each on its own axis scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = sorted({k for r in rows for k, v in r.items() if k.startswith("loss/") and isinstance(v, float)})
    if not keys:
        return None
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.9 * len(keys) + 0.6), dpi=100, sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), float)]
        ax.plot(*zip(*pts), label={"loss/d": "D loss", "loss/g": "G loss"}.get(key, key))
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step (G updates)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)

def translate_files(G: nn.Module, source: Path, out: Path, mask: Optional[Path] = None, seed: int = 0,
                    from_targets: bool = False, save_inputs: Optional[Path] = None,
                    save_masks: Optional[Path] = None, direction: Optional[str] = None) -> int:
    """`gankit translate`: images from `source` (file, folder, .npy) through an image-to-image G, to `out`
    (.npy: float32 (N, C, H, W) in [-1, 1]; .png: a grid of input | output rows; else a folder of one PNG
    per input, under its name); an unpaired run in `direction` (AtoB, the default, or BtoA). Returns the
    number of images."""
    from gankit.imagefiles import load_images
    from gankit.nets.img2img import DIRECTIONS
    from gankit.registry import GankitError
    from gankit.tasks import Inpaint, translate
    task = G.task
    if task.has_latent:
        raise GankitError("gankit translate needs an image-to-image run (task.name=translate, sr, inpaint or "
                          "cycle); this one maps noise to images: use gankit sample")
    if direction is not None and not task.unpaired:
        raise GankitError("--direction is for unpaired runs (task.name=cycle or cut); this run translates one way: "
                          "drop --direction")
    if direction == "BtoA" and not task.two_way:
        raise GankitError(f"--direction BtoA: this run (task.name={task.cfg.name}) learned A to B only; drop "
                          f"--direction, or train the other way round (swap the folders A/ and B/)")
    if direction is not None and direction not in DIRECTIONS:
        raise GankitError(f"--direction {direction}: this run translates {' and '.join(DIRECTIONS)}")
    want = task.img_shape[0] if from_targets or isinstance(task, Inpaint) else task.in_shape()[0]
    x, names = load_images(Path(source), want if Path(source).suffix != ".npy" else 0)
    if x.shape[1] != want:
        raise GankitError(f"{source}: images with {x.shape[1]} channel(s), this run's "
                          f"{'targets' if from_targets else 'inputs'} have {want}; convert them first")
    m = None
    if mask is not None:
        if not isinstance(task, Inpaint):
            raise GankitError("--mask is for inpainting runs (task.name=inpaint)")
        m = torch.from_numpy(np.load(mask, allow_pickle=False)).float()
        m = m[:, None] if m.dim() == 3 else m
        if m.dim() != 4 or m.shape[1] != 1 or m.shape[0] != len(x) or m.shape[2:] != x.shape[2:]:
            raise GankitError(f"--mask {mask}: shape {tuple(m.shape)}; expected (N, H, W) or (N, 1, H, W) = "
                              f"({len(x)}, {x.shape[2]}, {x.shape[3]}), 1 = hole")
        if not torch.isin(m.unique(), torch.tensor([0.0, 1.0])).all():
            raise GankitError(f"--mask {mask}: values must be 0 (known) or 1 (hole)")
    try:
        fake, inputs, masks = translate(G, task, x, from_targets=from_targets, mask=m, seed=seed,
                                        direction=direction or "AtoB")
    except RuntimeError as e:
        raise GankitError(f"this run's G cannot take {tuple(x.shape[1:])} images ({str(e).splitlines()[0][:120]})") from None
    if save_inputs is not None:
        np.save(save_inputs, inputs.cpu().numpy().astype(np.float32))
    if save_masks is not None:
        if masks is None:
            raise GankitError("--save-masks is for inpainting runs")
        np.save(save_masks, masks.cpu().numpy().astype(np.float32))
    out = Path(out)
    if out.suffix == ".npy":
        np.save(out, fake.cpu().numpy().astype(np.float32))
    elif out.suffix == ".png":
        shown = task.shown_input({"input": inputs}).cpu()
        rows = [t for i in range(0, len(fake), 8) for t in (shown[i:i + 8], fake[i:i + 8].cpu())]
        save_grid(torch.cat(rows), out, nrow=8)
    else:
        save_pngs(fake, out, names)
    return len(fake)
