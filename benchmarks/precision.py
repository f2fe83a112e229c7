"""fp32 against bf16 autocast at equal steps: does a recipe's quality hold in bf16? Each recipe trains for
its own steps (or --steps) once per seed in fp32 (train.amp=off) and once in bf16 (train.amp=bf16), and
is scored by what `gankit eval` reports for it: FID with the classifier features for images (10,000
samples), modes / high-quality share / reverse KL for the 2D mixtures, the task's held-out metrics for the
image-to-image recipes, label preservation and FID per direction for the unpaired ones.

    python benchmarks/precision.py --recipes dcgan --seeds 0 1 2
    python benchmarks/precision.py --recipes ring8 grid25 --seeds 0 1 2 --write docs/results/precision-2d.md
    python benchmarks/precision.py --recipes pix2pix-edges srgan-x4 inpaint --steps 2000 --write docs/results/precision-img2img.md
    python benchmarks/precision.py --recipes cyclegan cut --steps 1000 --write docs/results/precision-unpaired.md

bf16 holds when its mean lies within the fp32 seeds' range (the run-to-run spread), and the table shows
both so that the reader can judge. Runs go to --out (default runs-precision/). bf16 only means something
where the hardware has it: on a CPU without bf16 units the benchmark refuses.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import gankit
from gankit.bench import results_fragment, write_results
from gankit.config import load_config
from gankit.evaluate import evaluate_run
from gankit.hardware import native_bf16, pick_device

# the figures each kind of run is judged by (lower is better, except where marked): a mode count alone
# says little once every run finds every mode, so the 2D rows also give the high-quality share and the KL,
# and the image-to-image rows PSNR and the share of outputs read as their target's digit
HEADLINE = {"fid": "FID", "modes": "modes (higher)"}
ALSO = {"hq": "high quality % (higher)", "kl": "reverse KL", "psnr": "PSNR dB (higher)",
        "accuracy": "digit accuracy % (higher)", "AtoB/labels": "A→B labels % (higher)",
        "BtoA/labels": "B→A labels % (higher)", "AtoB/fid": "A→B FID", "BtoA/fid": "B→A FID"}
SCALE = {"hq": 100.0, "accuracy": 100.0, "AtoB/labels": 100.0, "BtoA/labels": 100.0}


def headline(m: dict) -> str:
    for key in HEADLINE:
        if key in m:
            return key
    raise KeyError(f"no headline metric among {sorted(m)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="+", default=["dcgan"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=0, help="0: each recipe's own steps")
    ap.add_argument("--n", type=int, default=10000, help="samples per evaluation (image recipes)")
    ap.add_argument("--out", default="runs-precision")
    ap.add_argument("--write", metavar="MD", help="also write the table with its command and hardware to MD")
    a = ap.parse_args()
    if not native_bf16(pick_device("auto")):
        raise SystemExit("precision.py: this machine has no native bf16; its bf16 would be emulated")
    rows = []
    for name in a.recipes:
        runs = {}
        for amp in ("off", "bf16"):
            for seed in a.seeds:
                over = [f"out={a.out}", f"train.seed={seed}", f"train.amp={amp}"]
                over += [f"train.steps={a.steps}"] if a.steps else []
                cfg = load_config(name, overrides=over)
                t = time.perf_counter()
                run = gankit.train(cfg, quiet=True)
                wall = time.perf_counter() - t
                m = evaluate_run(run, a.n, ["fid", "kid", "pr", "dc"])
                runs.setdefault(amp, []).append((m, wall))
                key = headline(m)
                print(f"{name} amp={amp} seed={seed}: {cfg.train.steps} steps, {wall:.0f} s, {key} {m[key]:.3f}",
                      flush=True)
        rows.append((name, cfg.train.steps, runs))
    table = markdown(rows, a.seeds)
    print("\n" + table)
    if a.write:
        write_results(a.write, results_fragment(table, precision="fp32 and bf16 autocast, as each row says"))


def markdown(rows, seeds) -> str:
    lines = [f"| recipe | steps | precision | metric | {' | '.join(f'seed {s}' for s in seeds)} | mean | train s / run |",
             "|---|---|---|---|" + "---|" * len(seeds) + "---|---|"]
    for name, steps, runs in rows:
        m0 = runs["off"][0][0]
        first = headline(m0)
        for key, title in [(first, HEADLINE[first]), *((k, t) for k, t in ALSO.items() if k in m0)]:
            for amp, label in (("off", "fp32"), ("bf16", "bf16")):
                values = [m[key] * SCALE.get(key, 1.0) for m, _ in runs[amp]]
                wall = np.mean([w for _, w in runs[amp]])
                lines.append(f"| {name} | {steps} | {label} | {title} | "
                             + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.3f} | {wall:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
