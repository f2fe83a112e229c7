"""The run directory: created or reopened (`open_run`), the training state in checkpoints (`train_state`,
`restore`, `save_checkpoint`), the pictures of progress, the evaluation during training and the final
exports. A run directory describes itself: config.yaml, stats.jsonl, samples/, checkpoints/, exports.
Only rank 0 calls the writers here (see trainer.py)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch

from gankit import checkpoint, distributed
from gankit.config import Config, config_from_plain, dump_yaml
from gankit.distributed import World
from gankit.registry import GankitError
from gankit.sample import generate, latents, make_gif, plot_losses, save_scatter, to_grid
from gankit.stats import Stats, read_stats

if TYPE_CHECKING:
    from gankit.trainer import Parts

N_FIXED = 64  # images in the fixed-latent progress grids


def new_run_dir(cfg: Config) -> Path:
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        ids = [int(d.name.split("-")[0]) for d in out.iterdir() if d.name.split("-")[0].isdigit()]
        run_dir = out / f"{max(ids, default=-1) + 1:05d}-{cfg.recipe}"
        (run_dir / "samples").mkdir(parents=True)
        (run_dir / "checkpoints").mkdir()
        (run_dir / "config.yaml").write_text(dump_yaml(cfg))
    except OSError as e:
        raise GankitError(f"cannot write the run directory under '{out}' ({e.strerror or e}); "
                          f"choose another with --out DIR") from None
    return run_dir


def train_state(p: Parts, step: int, nimg: int) -> dict:
    return {"config": p.cfg.to_dict(), "meta": p.meta, "step": step, "nimg": nimg,
            "G": p.G.state_dict(), "D": p.D.state_dict(),
            "G_ema": p.G_ema.state_dict() if p.G_ema is not None else None,
            "g_opt": p.g_opt.state_dict(), "d_opt": p.d_opt.state_dict(),
            "batches": p.batches.state_dict(), "noise": p.noise.get_state(),
            "rng": checkpoint.rng_state(p.device), "task": p.task.state_dict(),
            "counters": {"skipped": p.skipped, "d_steps": p.d_steps, "best_fid": p.best_fid},
            "augment": p.augment.state_dict() if hasattr(p.augment, "state_dict") else None}


def restore(p: Parts, state: dict) -> tuple:
    checkpoint.load_state(p.G, state["G"], "G")
    checkpoint.load_state(p.D, state["D"], "D")
    if p.G_ema is not None:
        checkpoint.load_state(p.G_ema, state.get("G_ema"), "G_ema")
    try:
        p.g_opt.load_state_dict(state["g_opt"])
        p.d_opt.load_state_dict(state["d_opt"])
        p.batches.load_state_dict(state["batches"])
        p.noise.set_state(state["noise"])
        p.task.load_state_dict(state.get("task", {}))
        if hasattr(p.augment, "load_state_dict"):  # ADA's p
            p.augment.load_state_dict(state["augment"])
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise GankitError(f"checkpoint training state does not fit this run ({e})") from None
    checkpoint.set_rng_state(state["rng"], p.device)
    p.skipped, p.d_steps = state["counters"]["skipped"], state["counters"]["d_steps"]
    p.best_fid = state["counters"].get("best_fid", math.inf)
    if p.world.rank:  # the saved RNG state is rank 0's; other ranks keep streams of their own
        torch.manual_seed(p.cfg.train.seed + p.world.rank + 7919 * int(state["step"]))
    return int(state["step"]), int(state["nimg"])


def save_checkpoint(p: Parts, run_dir: Path, step: int, nimg: int) -> None:
    for name, net in (("G", p.G), ("D", p.D)):
        if not all(torch.isfinite(t).all() for t in net.parameters()):
            raise GankitError(f"{name} has non-finite weights at step {step}; not overwriting the last good "
                              f"checkpoint {run_dir / 'checkpoints' / 'last.pt'}")
    checkpoint.save(run_dir / "checkpoints" / "last.pt", train_state(p, step, nimg))


def evaluate_now(p: Parts, run_dir: Path, step: int, nimg: int, stats: Stats) -> None:
    """Metrics of the current (EMA) G into stats.jsonl/TensorBoard; keep checkpoints/best.pt by FID."""
    from gankit.evaluate import evaluate, evaluate_translation
    G = p.G_ema if p.G_ema is not None else p.G
    if p.task.has_latent:
        metrics = ("fid", "classes") if p.ds.is_image else ()
        result = evaluate(G, p.ds, p.cfg.train.eval_n, metrics)
    else:  # image-to-image: the held-out split (its FID in the training data's classifier features)
        result = evaluate_translation(G, p.task, p.held_out, features_of=p.ds)
    stats.write(step, {f"metric/{k}": float(v) for k, v in result.items()
                       if k not in ("n", "features", "classifier_accuracy")})
    fid = result.get("fid")
    if fid is not None and fid < p.best_fid:
        p.best_fid = fid
        checkpoint.save(run_dir / "checkpoints" / "best.pt", train_state(p, step, nimg))


def save_pictures(p: Parts, run_dir: Path, step: int, stats: Stats) -> Path:
    """The fixed-latent grid (noise to image; a scatter plot for 2D points), or rows input | output | target
    of the first held-out images (image-to-image)."""
    from torchvision.utils import save_image
    G = p.G_ema if p.G_ema is not None else p.G
    path = run_dir / "samples" / f"step_{step:06d}.png"
    if not p.task.has_latent:
        from gankit.tasks import example_grid
        images = example_grid(G, p.task, p.held_out)
    else:
        c = torch.arange(N_FIXED, device=p.device) % G.c_dim if G.c_dim else None
        images = generate(G, latents(N_FIXED * (1 if p.ds.is_image else 16), G.z_dim, 0, p.device),
                          None if c is None else c.repeat(1 if p.ds.is_image else 16))
        if not p.ds.is_image:
            return save_scatter(images, path, p.ds.x, f"step {step}")
    grid = to_grid(images, nrow=8)
    save_image(grid, str(path))
    stats.image("samples", grid, step)
    return path


def finish(p: Parts, run_dir: Path, step: int, nimg: int) -> None:
    save_checkpoint(p, run_dir, step, nimg)
    checkpoint.export_generator(run_dir, p.G_ema if p.G_ema is not None else p.G,
                                {**p.meta, "ema": p.G_ema is not None, "step": step, "nimg": nimg,
                                 "recipe": p.cfg.recipe})
    frames = sorted((run_dir / "samples").glob("step_*.png"))
    make_gif(frames, run_dir / "progress.gif")
    plot_losses(read_stats(run_dir / "stats.jsonl"), run_dir / "losses.png")


def check_resumable(cfg: Config, saved: Config) -> None:
    """Refuse a resume whose data or model differ (the weights would not fit or not mean the same)."""
    diffs = [f"{sec}.{k}" for sec in ("data", "model") for k, v in getattr(cfg, sec).__dict__.items()
             if getattr(saved, sec).__dict__[k] != v]
    diffs += [f"task.{k}" for k in ("name", "input", "scale") if getattr(cfg.task, k) != getattr(saved.task, k)]
    if diffs:
        raise GankitError(f"cannot resume: {', '.join(diffs)} differ from the run's config; "
                          f"only training keys (steps, cadences, ...) may change")


def refresh(run_dir: Path, cfg: Config) -> None:
    """On resume: drop temp files of a save that was killed, record the (possibly changed) config."""
    for stale in (run_dir / "checkpoints").glob(".*.tmp"):
        stale.unlink()
    (run_dir / "config.yaml").write_text(dump_yaml(cfg))


def open_run(cfg: Config, resume: Optional[Path], world: World) -> tuple:
    """-> (run_dir, checkpoint state or None), the same on every rank. Rank 0 creates or reads; a torchrun
    restart (--max-restarts) resumes the run directory that this torchrun job created."""
    if resume is None and distributed.restart_id() is not None and world.main:
        tagged = [d for d in Path(cfg.out).glob("*/torchrun_job")
                  if d.read_text().strip() == distributed.restart_id() and (d.parent / "checkpoints/last.pt").is_file()]
        resume = max((d.parent for d in tagged), default=None)
    state, run_dir = None, None
    if world.main:
        if resume is not None:
            run_dir = Path(resume)
            state = checkpoint.load(run_dir / "checkpoints" / "last.pt")
            check_resumable(cfg, config_from_plain(state["config"]))
        else:
            run_dir = new_run_dir(cfg)
            if distributed.job_id() is not None:
                (run_dir / "torchrun_job").write_text(distributed.job_id())
    return distributed.broadcast(run_dir, world), distributed.broadcast(state, world)
