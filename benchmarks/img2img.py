"""Seed 001's claim, measured: for each image-to-image recipe, train at equal wall time (a) on the
reconstruction loss alone (the autoencoder: D never trains), (b) on the adversarial loss alone, and (c) on
both (the recipe), then score each on the held-out split beside the baselines that learn nothing.

    python benchmarks/img2img.py --minutes 10 --write docs/results/img2img.md
    python benchmarks/img2img.py --recipes photos-x4 --minutes 10 --write docs/results/img2img-photos.md
    python benchmarks/img2img.py --recipes srgan-x4 --minutes 1          # one task, quickly
    python benchmarks/img2img.py --recipes inpaint --minutes 10 --fit-schedule

With `--fit-schedule` each run's lr schedule (the recipes' linear decay) ends inside the budget: a timing run
of --probe steps measures the variant's seconds per step first (not counted in the budget), and the run
trains for the steps that fill 97% of it, with the budget as a cap. Without it a run is stopped by the
budget at a nearly constant lr, long before its decay.

Baselines: bicubic upsampling (super-resolution); OpenCV's Telea inpainting (`cv2.inpaint`, from
opencv-python-headless, the benchmark extra) and each image's mean fill (holes); the input itself (edges).
Scores: PSNR, SSIM, L1, FID to the held-out targets in the training split's classifier features, and the
classifier's accuracy on the outputs; for holes also on the centre square of half the side. Recipes that
train on crops of whole photos (photos-x4) are scored on each held-out photo whole, PSNR and SSIM per photo,
in a table of their own.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import gankit
from gankit.bench import elapsed_s, finished_run, results_fragment, training_precision, write_results
from gankit.config import load_config
from gankit.data import build_dataset
from gankit.distributed import SharedNoise, World
from gankit.evaluate import (evaluate_translation, get_extractor, translation_scores, whole_image_scores,
                             whole_images)
from gankit.metrics.scores import fid
from gankit.stats import read_stats
from gankit.tasks import Inpaint, SuperResolution, Translate, build_task

VARIANTS = {"(a) reconstruction alone": ["task.pretrain_steps=1000000000"],  # D never joins
            "(b) adversarial alone": ["task.l1=0", "task.l2=0", "task.adv=1", "task.pretrain_steps=0"],
            "(c) both (the recipe)": []}
COLUMNS = ("psnr", "ssim", "l1", "fid", "accuracy")


def whole_baselines(task, held) -> dict:
    """Bicubic upsampling of each held-out whole photo, scored as `evaluate.whole_image_scores` scores G."""
    up = lambda x: F.interpolate(task.inputs(x, None)["input"], scale_factor=task.cfg.scale, mode="bicubic",  # noqa: E731
                                 align_corners=False).clamp(-1, 1)
    return {"bicubic upsampling": whole_image_scores(None, task, held, outputs=up)}


def whole_row(name: str, steps, seconds, m: dict, names) -> str:
    cells = [f"{m['psnr/' + n]:.2f} / {m['ssim/' + n]:.4f}" for n in names] + [f"{m['psnr']:.2f}", f"{m['ssim']:.4f}"]
    return f"| {name} | {steps} | {seconds} | " + " | ".join(cells) + " |"


def baselines(task, held, train_ds) -> dict:
    """Scores of the maps that learn nothing, on the same held-out inputs the runs get."""
    ext = get_extractor("classifier", train_ds)
    real_f = ext(held.x)[0]
    noise = SharedNoise(torch.Generator().manual_seed(123), World())
    x, out = held.x, {}
    if isinstance(task, SuperResolution):
        up = F.interpolate(task.inputs(x, noise)["input"], scale_factor=task.cfg.scale, mode="bicubic",
                           align_corners=False).clamp(-1, 1)
        out["bicubic upsampling"] = translation_scores(up, x, held.c, ext, real_f)
    elif isinstance(task, Inpaint):
        import cv2
        m = task.inputs(x, noise)["mask"]
        known = 1 - m
        mean = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
        out["mean fill"] = translation_scores(m * mean + known * x, x, held.c, ext, real_f)
        u8 = ((x + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        telea = np.stack([cv2.inpaint(img, mk.astype(np.uint8), 3, cv2.INPAINT_TELEA).reshape(img.shape)
                          for img, mk in zip(u8, m[:, 0].numpy())])
        t = torch.from_numpy(telea).permute(0, 3, 1, 2).float() / 127.5 - 1
        out["OpenCV Telea inpainting"] = translation_scores(t, x, held.c, ext, real_f)
    elif isinstance(task, Translate):
        a = task.inputs(x, noise)["input"]
        out["input as output"] = translation_scores(a.expand_as(x), x, held.c, ext, real_f)
    return out


def seconds_per_step(recipe: str, over: list, probe: int) -> float:
    """A variant's training seconds per step, from a run of `probe` steps (its first log interval, which
    holds the start-up, left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(recipe, overrides=[f"out={tmp}", f"train.steps={probe}", *over])
        logs = read_stats(gankit.train(cfg, quiet=True) / "stats.jsonl")
    timed = [r for r in logs if "time/elapsed_s" in r]
    first, last = timed[0], timed[-1]
    if last["step"] <= first["step"]:
        raise SystemExit(f"--probe {probe}: too few steps to time (train.log_every={cfg.train.log_every})")
    return (last["time/elapsed_s"] - first["time/elapsed_s"]) / (last["step"] - first["step"])


def row(name: str, steps, seconds, m: dict, prefix: str = "") -> str:
    cells = [f"{m[prefix + k]:.4f}" if k in ("ssim", "l1", "accuracy") else f"{m[prefix + k]:.2f}" for k in COLUMNS]
    return f"| {name} | {steps} | {seconds} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="*", default=["pix2pix-edges", "srgan-x4", "inpaint"])
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-time budget of each training run")
    ap.add_argument("--out", default="runs-img2img")
    ap.add_argument("--write", metavar="MD", help="also write the table with its command and hardware to MD")
    ap.add_argument("--reuse", action="store_true", help="score the newest finished run of each row in --out "
                                                         "(same config) instead of training it again")
    ap.add_argument("--fit-schedule", action="store_true", help="end each run's lr schedule inside the budget "
                                                                "(steps from a timing run)")
    ap.add_argument("--probe", type=int, default=300, help="--fit-schedule: steps of the timing run")
    a = ap.parse_args()
    lines = ["| task | method | steps | wall s | PSNR dB | SSIM | L1 | FID | digit accuracy |",
             "|---|---|---|---|---|---|---|---|---|"]
    whole_lines, notes, precisions = [], [], []
    for recipe in a.recipes:
        cfg = load_config(recipe)
        precisions.append(training_precision(recipe, cfg))
        ds = build_dataset(cfg.data)
        task = build_task(cfg.task, ds, cfg.model.z_dim)
        train_ds, held = task.split(ds)
        whole = held.full is not None and task.any_size
        if whole:
            names = [n for n, _ in whole_images(task, held)]
            whole_lines += ["| task | method | steps | wall s | " + " | ".join(f"{n} PSNR dB / SSIM" for n in names)
                            + " | mean PSNR dB | mean SSIM |", "|---" * (6 + len(names)) + "|"]
            notes.append(f"{recipe}: trained on random {cfg.data.crop} px crops of {', '.join(train_ds.names)}; "
                         f"scored on {', '.join(names)}, each whole.")
            for name, m in whole_baselines(task, held).items():
                whole_lines.append(whole_row(f"{recipe} | {name}", "", "", m, names))
        else:
            ext = get_extractor("classifier", train_ds)
            floor = fid(ext(held.x)[0], ext(train_ds.x[:len(held)])[0])
            notes.append(f"{recipe}: scores on the fixed held-out split of {len(held)} images; {len(held)} other real "
                         f"images (the first of the training split) have FID {floor:.2f} to them, while outputs "
                         f"that match their own targets can score below that.")
            for name, m in baselines(task, held, train_ds).items():
                lines.append(row(f"{recipe} | {name}", "", "", m))
        for name, over in VARIANTS.items():
            steps = 1000000
            if a.fit_schedule and not a.reuse:
                steps = int(0.97 * 60 * a.minutes / seconds_per_step(recipe, over, a.probe))
            run_cfg = load_config(recipe, overrides=[f"out={a.out}", f"train.max_minutes={a.minutes}",
                                                     f"train.steps={steps}", *over])
            if a.reuse:
                run = finished_run(Path(a.out), run_cfg, any_steps=a.fit_schedule)
                seconds = elapsed_s(run)
            else:
                t = time.perf_counter()
                run = gankit.train(run_cfg, quiet=True)
                seconds = time.perf_counter() - t
            steps = read_stats(run / "stats.jsonl")[-1]["step"]
            G = gankit.load(run)
            m = evaluate_translation(G, G.task, held, features_of=train_ds)
            if whole:
                whole_lines.append(whole_row(f"{recipe} | {name}", steps, f"{seconds:.0f}", m, names))
                print(whole_lines[-1], flush=True)
                continue
            lines.append(row(f"{recipe} | {name}", steps, f"{seconds:.0f}", m))
            if isinstance(task, Inpaint):
                lines.append(row(f"{recipe} | {name}, centre square", "", "", m, prefix="centre_"))
            print(lines[-1], flush=True)
    table = "\n".join((lines if len(lines) > 2 else []) + ([""] if len(lines) > 2 and whole_lines else [])
                      + whole_lines)
    print("\n" + table)
    if a.write:
        note = f"Each run trains for {a.minutes:g} minutes" + (
            ", its lr schedule fitted to end inside them (the steps that fill 97% of the budget at the speed a "
            f"{a.probe}-step timing run measured). " if a.fit_schedule else ". ") + " ".join(notes)
        write_results(a.write, results_fragment(table, precision=", ".join(precisions), note=note))


if __name__ == "__main__":
    main()
