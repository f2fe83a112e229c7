"""Own data at scale: `gankit data prepare` throughput, then training from the prepared file read by index
from disk (data.in_memory=false) against the same file held in memory as bytes (data.in_memory=true).

    python benchmarks/data.py --write docs/results/data.md        # 50,000 images, 128x128x3
    python benchmarks/data.py --n 2000 --steps 20                # a quick look

The images are synthetic (smooth random colour fields, PNG, ten class folders), written by the benchmark
under --work. Each training run is its own `gankit train` process (the default recipe at 128 px), so its
peak resident memory (ru_maxrss) is its own. A third run streams the PNG folder itself (data.stream, its
workers decoding each batch a few batches ahead). The data time is the trainer's `time/data_share` in
stats.jsonl (host time drawing batches over wall time), averaged over the logs after the first; the step
time is 1 / its img/s x batch. The model's bytes are G and D's parameters in fp32 with Adam's two moments,
G's gradients, D's and G's EMA copy (what training holds whatever the data).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from gankit.bench import results_fragment, write_results

SMALL = 640  # the reference run: the same training on a data set too small to matter
RSS = ("import resource, sys\n"
       "from gankit.cli import main\n"
       "try:\n"
       "    main(sys.argv[1:])\n"
       "finally:\n"
       "    print(f'peak_rss_kib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', flush=True)\n")


def _write_images(job) -> int:
    """Write images start..stop: a random 8x8 colour field, bicubic to the side, plus a little noise."""
    from PIL import Image
    root, start, stop, side, classes = job
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        big = np.asarray(small.resize((side, side), Image.BICUBIC), dtype=np.int16)
        big = np.clip(big + rng.integers(-8, 9, big.shape), 0, 255).astype(np.uint8)
        folder = Path(root) / f"class{i % classes}"
        Image.fromarray(big).save(folder / f"{i:06d}.png", compress_level=1)
    return stop - start


def write_folder(root: Path, n: int, side: int, classes: int = 10, workers: int = 2) -> float:
    for k in range(classes):
        (root / f"class{k}").mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    step = 1000
    jobs = [(str(root), s, min(s + step, n), side, classes) for s in range(0, n, step)]
    with ProcessPoolExecutor(workers) as pool:
        sum(pool.map(_write_images, jobs))
    return time.perf_counter() - t


def drop_page_cache() -> bool:
    """Ask the kernel to forget cached file pages (root only); False where it is not allowed."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def model_bytes(data: Path) -> int:
    from gankit import nets
    from gankit.config import load_config
    meta = json.loads((data / "dataset.json").read_text())
    m = load_config("dcgan").model
    G, D = nets.build(m.family, tuple(meta["shape"]), len(meta["class_names"]), m.z_dim, m.args, m.d_pca)
    g, d = (sum(p.numel() for p in net.parameters()) for net in (G, D))
    return 4 * (g * 5 + d * 4)  # G: weights, grads, 2 moments, EMA; D: weights, grads, 2 moments


def train_run(data: Path, out: Path, in_memory: bool, steps: int, log_every: int, side: int) -> dict:
    """One training run from `data`: a prepared set (held in memory or not), or a folder of images streamed."""
    source = (["data.name=prepared", f"data.in_memory={str(in_memory).lower()}"] if (data / "dataset.json").exists()
              else ["data.name=folder", "data.stream=true", f"data.resolution={side}"])
    over = [*source, f"data.root={data}", f"train.steps={steps}", f"train.log_every={log_every}", f"train.sample_every={10 * steps}",
            f"train.ckpt_every={10 * steps}", f"out={out}"]
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RSS, "train", "--recipe", "dcgan", "--quiet", *over],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode:
        sys.exit(f"training failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    rss = int(done.stdout.rsplit("peak_rss_kib=", 1)[1].split()[0]) * 1024
    run = max(out.iterdir(), key=lambda p: p.stat().st_mtime)
    logs = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    logs = [r for r in logs if "time/data_share" in r][1:]  # the first holds the start-up
    rate = float(np.mean([r["time/img_per_s"] for r in logs]))
    return {"data_share": float(np.mean([r["time/data_share"] for r in logs])), "img_per_s": rate,
            "rss": rss, "wall": wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--work", default="runs-data-bench", help="where the images, the prepared file and the runs go")
    ap.add_argument("--write", metavar="MD", help="also write the table with its command and hardware to MD")
    a = ap.parse_args()
    from gankit.prepared import prepare
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    folder, data = work / "images", work / "prepared"
    write_s = write_folder(folder, a.n, a.side)
    print(f"wrote {a.n:,} PNGs in {write_s:.0f} s", flush=True)
    meta = prepare(folder, data, resolution=a.side, workers=os.cpu_count() or 1, progress=False)
    file_bytes = (data / "images.npy").stat().st_size
    print(f"prepared {meta['count']:,} images in {meta['seconds']:.1f} s: {meta['images_per_s']:,.0f} images/s, "
          f"{file_bytes / 2**30:.2f} GiB", flush=True)
    small_folder, small = work / "images-small", work / "prepared-small"  # the footprint without the data
    write_folder(small_folder, SMALL, a.side)
    small_meta = prepare(small_folder, small, resolution=a.side, workers=os.cpu_count() or 1, progress=False)
    shutil.rmtree(small_folder)
    model = model_bytes(data)
    cold = drop_page_cache()
    rows = []
    for label, where, in_memory, m in (("read by index from disk", data, False, meta),
                                       ("in memory (bytes)", data, True, meta),
                                       (f"streamed from the {meta['count']:,} PNGs (`data.stream`)", folder, False,
                                        meta),
                                       (f"{SMALL} images in memory: the training footprint", small, True, small_meta)):
        r = train_run(where, work / "runs", in_memory, a.steps, a.log_every, a.side)
        size = (where / "images.npy").stat().st_size if where != folder else sum(
            f.stat().st_size for f in folder.rglob("*.png"))
        rows.append((label, size, m, r))
        print(f"{label}: data share {100 * r['data_share']:.2f}%, {r['img_per_s']:.0f} img/s, "
              f"peak RSS {r['rss'] / 2**30:.2f} GiB", flush=True)
    batch = 64
    shutil.rmtree(folder)
    table = ["| data | images | files GiB | data time / step time | step ms | peak RSS GiB |",
             "|---|---|---|---|---|---|"]
    for label, size, m, r in rows:
        table.append(f"| {label} | {m['count']:,} | {size / 2**30:.2f} | {100 * r['data_share']:.2f}% | "
                     f"{1000 * batch / r['img_per_s']:.0f} | {r['rss'] / 2**30:.2f} |")
    table += ["", f"`gankit data prepare`: {meta['images_per_s']:,.0f} images/s ({meta['count']:,} PNGs of "
                  f"{a.side}x{a.side}x3 in {meta['seconds']:.0f} s). The model's own bytes (weights, gradients, Adam "
                  f"moments, EMA): {model / 2**30:.3f} GiB."]
    table = "\n".join(table)
    print("\n" + table)
    note = (f"{meta['count']:,} synthetic {a.side}x{a.side}x3 PNGs in 10 class folders, prepared with "
            f"{os.cpu_count()} workers; then the default recipe (`dcgan`, batch {batch}) for {a.steps} steps "
            f"from the prepared file, each run in its own process (peak RSS: its ru_maxrss). The last row is the "
            f"same training on {SMALL} images, what the process holds without the data (torch, the model, its "
            f"activations). "
            + ("The page cache was dropped before the disk run; " if cold else
               "The page cache could not be dropped here; ")
            + "either way each run checks the file's SHA-256 at start, which reads it once, so batches then come "
              "from the page cache while it has room: the resident memory of the process does not hold them.")
    if a.write:
        write_results(a.write, results_fragment(table, precision="the default (train.amp=auto)", note=note))


if __name__ == "__main__":
    main()
