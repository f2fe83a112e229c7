"""Unpaired translation, measured: the cyclegan and cut recipes on each bundled unpaired task, trained for
their steps (at most a wall time), then scored on each domain's held-out images beside two maps that learn
nothing. CUT learns A -> B only, so its B -> A cells stay empty.

    python benchmarks/unpaired.py --minutes 15 --write docs/results/unpaired.md
    python benchmarks/unpaired.py --recipes cut --minutes 15 --write docs/results/unpaired-cut.md
    python benchmarks/unpaired.py --tasks mnist2digits --recipes cyclegan --minutes 1   # one run, quickly
    python benchmarks/unpaired.py --tasks mnist2photodigits --recipes cyclegan --variants "" "task.cycle_b=1" \
        --write docs/results/unpaired-cycle-b.md train.steps=800   # a row per recipe and variant (overrides)

Scores, per direction: label preservation (the share of translations that a digit classifier trained on
the *target* domain's training images reads as the source image's digit, as CyCADA and UNIT report
MNIST <-> USPS), FID to the target domain's held-out images in that classifier's features, and the cycle
reconstruction L1. Baselines: the identity map (the untranslated images), and a plain resize / recolour map:
  - mnist2digits: A -> B crops MNIST's 20 x 20 digit box, shrinks it to 8 x 8 (area) and enlarges it again
    as B was made; B -> A shrinks B's full-frame digit into a 20 x 20 box centred on 28 x 28, as MNIST frames
    its digits;
  - mnist2photodigits: A -> B composes |c - digit| with c the mean colour of B's training images (a flat
    patch); B -> A takes the grey level's distance from each image's median, stretched to [-1, 1].
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import gankit
from gankit.bench import results_fragment, training_precision, write_results
from gankit.config import load_config
from gankit.data import build_dataset
from gankit.evaluate import map_scores, unpaired_scores
from gankit.stats import read_stats
from gankit.tasks import build_task

PUBLISHED = ("For context only (other data): CyCADA's pixel-level adaptation 95.6% MNIST -> USPS and 96.4% USPS -> "
             "MNIST; UNIT 96.0% and 93.6%; PixelDA 98.2% MNIST -> MNIST-M.")


def resize_map(task: str, x: torch.Tensor, direction: str, b_train: torch.Tensor) -> torch.Tensor:
    """The plain map of the module docstring for `task` and `direction`: (N, C, 28, 28) -> the same."""
    if task == "mnist2digits":
        if direction == "AtoB":
            small = F.interpolate(x[..., 4:24, 4:24], size=(8, 8), mode="area")
            return F.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False)
        inner = F.interpolate(x, size=(20, 20), mode="bilinear", antialias=True, align_corners=False)
        return F.pad(inner, (4, 4, 4, 4), value=-1.0)
    if direction == "AtoB":
        colour = b_train.mean((0, 2, 3)).view(1, -1, 1, 1)  # [-1, 1]
        digit = torch.where(x > 0, 1.0, -1.0)  # binarised, as the data set makes B
        return ((colour + 1) / 2 - (digit + 1) / 2).abs() * 2 - 1
    grey = x.mean(1, keepdim=True)
    dist = (grey - grey.flatten(1).median(1).values.view(-1, 1, 1, 1)).abs()
    dist = dist / dist.flatten(1).amax(1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return (dist * 2 - 1).expand_as(x).contiguous()


def row(task: str, name: str, m: dict, seconds="", steps="") -> str:
    cycle = (f"{m['AtoB/cycle_l1']:.3f} / {m['BtoA/cycle_l1']:.3f}" if "AtoB/cycle_l1" in m else "")
    cell = lambda key, scale, digits: f"{scale * m[key]:.{digits}f}" if key in m else ""  # noqa: E731
    return (f"| {task} | {name} | {cell('AtoB/labels', 100, 1)} | {cell('BtoA/labels', 100, 1)} | "
            f"{cell('AtoB/fid', 1, 2)} | {cell('BtoA/fid', 1, 2)} | {cycle} | {steps} | {seconds} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=["mnist2digits", "mnist2photodigits"])
    ap.add_argument("--recipes", nargs="*", default=["cyclegan", "cut"])
    ap.add_argument("--minutes", type=float, default=15.0, help="the most wall time of each training run (it stops "
                                                                 "at the recipe's train.steps or here)")
    ap.add_argument("--out", default="runs-unpaired")
    ap.add_argument("--write", metavar="MD", help="also write the table with its command and hardware to MD")
    ap.add_argument("--variants", nargs="*", default=[""], help="a row per recipe and variant: each variant a "
                                                                 "space-separated list of overrides ('' for none)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides for every run")
    a = ap.parse_args()
    lines = ["| task | map | A→B labels % | B→A labels % | A→B FID | B→A FID | cycle L1 A / B | steps | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    splits = []
    for task_name in a.tasks:
        cfg = load_config(a.recipes[0], overrides=[f"data.name={task_name}", *a.overrides])
        ds = build_dataset(cfg.data)
        train_ds, held = build_task(cfg.task, ds, 0).split(ds)
        splits.append(f"{task_name}: {len(held)} in A, {len(held.b)} in B")
        lines.append(row(task_name, "identity (untranslated)", map_scores(lambda x, d: x, held, train_ds)))
        plain = lambda x, d: resize_map(task_name, x, d, train_ds.b.x).clamp(-1, 1)  # noqa: E731
        lines.append(row(task_name, "plain resize / recolour", map_scores(plain, held, train_ds)))
        for recipe, variant in ((r, v) for r in a.recipes for v in a.variants):
            run_cfg = load_config(recipe, overrides=[f"data.name={task_name}", f"out={a.out}",
                                                     f"train.max_minutes={a.minutes}", *a.overrides, *variant.split()])
            t = time.perf_counter()
            run = gankit.train(run_cfg, quiet=True)
            seconds = time.perf_counter() - t
            G = gankit.load(run)
            m = unpaired_scores(G, G.task, held, train_ds)
            steps = read_stats(run / "stats.jsonl")[-1]["step"]
            nets = "G_AB, G_BA" if G.task.two_way else "G, A→B only"
            name = f"{recipe} ({nets})" + (f", {variant}" if variant else "")
            lines.append(row(task_name, name, m, f"{seconds:.0f}", steps))
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if a.write:
        note = (f"Each run trains for the recipe's train.steps or {a.minutes:g} minutes, whichever comes first; "
                f"scores on each domain's fixed held-out split ({'; '.join(splits)}), "
                f"in the classifier features of the target domain's training images. {PUBLISHED}")
        precisions = [training_precision(r, load_config(r, overrides=list(a.overrides))) for r in a.recipes]
        write_results(a.write, results_fragment(table, precision=", ".join(precisions), note=note))


if __name__ == "__main__":
    main()
