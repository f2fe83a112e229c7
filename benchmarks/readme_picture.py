"""The README's picture: samples of the default recipe, one column per class (docs/img/samples.png).

    python benchmarks/readme_picture.py              # trains the default recipe for 3 minutes
    python benchmarks/readme_picture.py --run RUN    # or takes such a run (benchmarks/quality.py's dcgan run)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import gankit
from gankit.sample import save_grid

OUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "samples.png"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", help="a finished run of the default recipe (default: train one now)")
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    run = Path(a.run) if a.run else gankit.train(gankit.load_config("dcgan", overrides=[
        "out=runs-picture", "train.max_minutes=3", "train.steps=1000000"]))
    G = gankit.load(run)
    cols = G.c_dim or 10
    x = gankit.sample(G, a.rows * cols, seed=0)  # conditional: sample i is of class i % cols
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    save_grid(x, Path(a.out), nrow=cols)
    print(f"{len(x)} samples of {run} -> {a.out}")


if __name__ == "__main__":
    main()
