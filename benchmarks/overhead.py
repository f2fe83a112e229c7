"""Steps/s of the small nets (the 2D recipes' 128-200-wide MLPs) and the share of each step spent outside
PyTorch's operators: the Python of the loop, module calls, autograd bookkeeping. Such nets are bound by
that per-step overhead, not by FLOPs, so this is what a lever for them has to cut.

    python benchmarks/overhead.py [--recipes ring8 grid25] [--steps 300] [--rounds 5] [--levers]

Each recipe's own iteration (trainer.train_step, with its statistics reduced at its log cadence) is timed
alternately with the other rows after a warm-up; a row's rate is its best round, as a shared machine only
ever slows a round down (rounds of one row differ by up to 30% on a busy 2-core machine). Then 100 steps
run under torch.profiler: "in operators" is the self time of every aten:: operator (the kernels and their
dispatch), "outside" is the rest of the wall time. Rows below a recipe's default flip one option, as in
speed.py; a lever the recipe already has is left out.
"""
from __future__ import annotations

import argparse
import time

import torch

from speed import gankit_steps

LEVERS = ["train.amp=bf16", "train.compile=true", "train.ema_kimg=0", "train.fused_opt=false", "train.reuse_fake=true"]


def make(recipe: str, options: list):
    from gankit.config import load_config
    from gankit.trainer import build_parts, distribute
    cfg = load_config(recipe, overrides=["train.device=cpu", *options])
    parts = build_parts(cfg)
    distribute(parts)
    return parts, cfg


def outside_share(parts, cfg, steps: int = 100) -> tuple:
    """(share of wall time outside aten operators, the three operators with the most self time)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        gankit_steps(parts, cfg, steps)
        wall = time.perf_counter() - t
    ops = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    inside = sum(e.self_cpu_time_total for e in ops) / 1e6
    top = sorted(ops, key=lambda e: -e.self_cpu_time_total)[:3]
    return max(0.0, 1 - inside / wall), ", ".join(f"{e.key[6:]} {e.self_cpu_time_total / 1e6 / wall:.0%}" for e in top)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="+", default=["ring8", "grid25"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--levers", action="store_true", help="also each option of LEVERS flipped")
    ap.add_argument("--write", metavar="MD", help="also write the table with its command and hardware to MD")
    a = ap.parse_args()
    from gankit.hardware import describe
    print(f"hardware: {describe(torch.device('cpu'))}")
    rows = {}
    for recipe in a.recipes:
        rows[(recipe, "default")] = make(recipe, [])
        for flip in (LEVERS if a.levers else []):
            parts, cfg = make(recipe, flip.split())
            if cfg != rows[(recipe, "default")][1]:  # a lever the recipe already has is no row
                rows[(recipe, flip)] = parts, cfg
    for parts, cfg in rows.values():  # warm-up
        gankit_steps(parts, cfg, 30)
    best = dict.fromkeys(rows, 0.0)
    for r in range(a.rounds):
        for key, (parts, cfg) in rows.items():
            t = time.perf_counter()
            gankit_steps(parts, cfg, a.steps)
            rate = a.steps / (time.perf_counter() - t)
            best[key] = max(best[key], rate)
            print(f"round {r}: {key[0]} {key[1]:24s} {rate:7.0f} steps/s", flush=True)
    table = ["| recipe | row | steps/s | vs default | outside operators | most self time |", "|---|---|---|---|---|---|"]
    for (recipe, row), (parts, cfg) in rows.items():
        share, top = outside_share(parts, cfg)
        sps, base = best[(recipe, row)], best[(recipe, "default")]
        table.append(f"| {recipe} | {row} | {sps:.0f} | {sps / base:.2f}× | {share:.0%} | {top} |")
    print("\n" + "\n".join(table))
    if a.write:
        from gankit.bench import results_fragment, write_results
        note = (f"The best of {a.rounds} rounds of {a.steps} steps of each recipe's own iteration, alternating, after a warm-up; "
                "\"outside operators\" is the share of the wall time of 100 profiled steps not spent in the self time "
                "of any aten:: operator (Python, module calls, autograd bookkeeping).")
        write_results(a.write, results_fragment("\n".join(table), precision="each recipe's own precision, each lever "
                                                "as named", note=note))


if __name__ == "__main__":
    main()
