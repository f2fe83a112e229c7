"""`gankit bench toy2d | stacked-mnist`: mode-collapse benchmarks over several seeds, beside published numbers.

toy2d protocol (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018; GDPP, Elfeki et al. 2019): 2,500
samples; a sample is high quality within 3 standard deviations of its nearest mode; a mode is captured
when it is nearest to at least one high-quality sample; reverse KL of the mode histogram to uniform.
Ring: 8 modes on a circle of radius 2, std 0.02. Grid: 25 modes at {-4,-2,0,2,4}^2, std 0.05.

stacked-mnist protocol (Metz et al. 2017; VEEGAN; PacGAN Table 3): 26,000 samples; each channel read by
the digit classifier; modes = distinct 3-digit codes of 1,000; KL of the code histogram to uniform.
"""
from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from gankit.hardware import describe
from gankit.rejection import REFIT_BATCH

BENCHES = {"toy2d": ["ring8", "grid25"], "stacked-mnist": ["stacked-mnist"]}
PUBLISHED = {  # (method, modes, high-quality % (2D) or KL to uniform (Stacked MNIST)) as the papers report them
    "ring8": [("GDPP (Elfeki et al. 2019, Table 1)", 8.0, 71.7)],
    "grid25": [("GDPP (Elfeki et al. 2019, Table 1)", 24.8, 68.5), ("PacGAN4 (Lin et al. 2018)", 24.8, None),
               ("VEEGAN (Srivastava et al. 2017, Table 1)", 24.6, 40.0)],
    "stacked-mnist": [("DCGAN (PacGAN Table 3)", 99.0, 3.40), ("VEEGAN (PacGAN Table 3)", 150.0, 2.95),
                      ("PacDCGAN2 (Lin et al. 2018, Table 3)", 1000.0, 0.06), ("DDGAN (Xiao et al. 2022)", 1000.0, 0.071),
                      ("R3GAN (Huang et al. 2024, 8 GPUs)", 1000.0, 0.029)],
}


def run(bench: str, seeds: int = 5, out: str = "runs-bench", overrides: Optional[List[str]] = None,
        recipes: Optional[List[str]] = None, drs: bool = False, drs_refit: int = 0,
        drs_refit_batch: int = REFIT_BATCH, device: str = "auto") -> Dict[str, List[dict]]:
    """Train each recipe of `bench` with seeds 0..seeds-1 and evaluate it by the bench's protocol; with
    `drs` also evaluate the same run sampled by discriminator rejection (rejection.py), as "NAME +DRS"
    (its seconds: training plus the rejection sampling), its D first refit for `drs_refit` steps of
    `drs_refit_batch` samples. Each result holds its wall `seconds` and `cpu_seconds`, the CPU time of this
    process summed over its threads (on 2 threads up to twice the wall time; OMP_NUM_THREADS=1 makes them equal)."""
    import gankit
    from gankit.config import load_config
    from gankit.data import build_dataset
    from gankit.evaluate import drs_sampler, evaluate, run_discriminator
    results: Dict[str, List[dict]] = {}
    drs_row = " +DRS"  # the row name's suffix for the DRS evaluation, e.g. " +DRS, D refit 2000 steps"
    if drs_refit:
        drs_row += f", D refit {drs_refit} steps" + (f" of {drs_refit_batch}" if drs_refit_batch != REFIT_BATCH else "")
    for name in recipes or BENCHES[bench]:
        for seed in range(seeds):
            cfg = load_config(name, overrides=[f"train.seed={seed}", f"out={out}", f"train.device={device}",
                                               *(overrides or [])])
            t, cpu = time.perf_counter(), time.process_time()
            run_dir = gankit.train(cfg, quiet=True)
            G, ds = gankit.load(run_dir, device=device), build_dataset(cfg.data)
            r = evaluate(G, ds, seed=1000 + seed)
            r.update(seconds=time.perf_counter() - t, cpu_seconds=time.process_time() - cpu)
            _say(results, name, seed, r)
            if drs:
                t_drs, cpu_drs = time.perf_counter(), time.process_time()
                D = run_discriminator(run_dir, G, ds, drs_refit, drs_refit_batch, device=device)
                sampler = drs_sampler(G, D)
                r_drs = evaluate(G, ds, seed=1000 + seed, sampler=sampler)
                r_drs.update(seconds=r["seconds"] + time.perf_counter() - t_drs, acceptance=sampler.acceptance,
                             cpu_seconds=r["cpu_seconds"] + time.process_time() - cpu_drs)
                _say(results, name + drs_row, seed, r_drs)
    return results


def _say(results: Dict[str, List[dict]], name: str, seed: int, r: dict) -> None:
    results.setdefault(name, []).append(r)
    hq = f"{100 * r['hq']:.1f}% HQ, " if "hq" in r else ""
    acc = f", acceptance {r['acceptance']:.3f}" if "acceptance" in r else ""
    print(f"{name} seed {seed}: {r['modes']} modes, {hq}KL {r['kl']:.4f}, {r['seconds']:.0f} s "
          f"({r['cpu_seconds']:.0f} CPU-s){acc}", flush=True)


def results_fragment(table: str, command: Optional[str] = None, precision: str = "fp32 (train.amp=off)",
                     note: str = "") -> str:
    """A measured table as a docs/results/*.md fragment: the command that regenerates it (default: this
    process's own command line), the hardware it ran on, the training precision, then the table."""
    if command is None:
        args = shlex.join(sys.argv[1:])
        command = f"gankit {args}" if Path(sys.argv[0]).name == "gankit" else f"python {shlex.join(sys.argv[:1])} {args}"
        if "OMP_NUM_THREADS" in os.environ:  # part of how the numbers were made (one thread: CPU s = wall s)
            command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    lines = [f"Command: `{command.strip()}`", "", f"Hardware: {describe()}; training in {precision}", ""]
    return "\n".join(lines + ([note, ""] if note else []) + [table, ""])


def write_results(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    print(f"wrote {path}")


def _ms(values: List[float], digits: int = 2) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}"


def report(results: Dict[str, List[dict]]) -> str:
    lines = ["| data | method | modes | high quality % | KL to uniform | s / run | CPU s / run |",
             "|---|---|---|---|---|---|---|"]
    names = list(results)
    for i, key in enumerate(names):
        rows, name = results[key], key.split(" ")[0]  # "grid25 +DRS" is data grid25
        hq = _ms([100 * r["hq"] for r in rows]) if "hq" in rows[0] else "n/a"
        how = f"gankit `{name}`{key[len(name):].replace(' +DRS', ' + DRS')} ({len(rows)} seeds)"
        lines.append(f"| {name} | {how} | {_ms([r['modes'] for r in rows])} | "
                     f"{hq} | {_ms([r['kl'] for r in rows], 3)} | {np.mean([r['seconds'] for r in rows]):.0f} | "
                     f"{np.mean([r['cpu_seconds'] for r in rows]):.0f} |")
        if i + 1 < len(names) and names[i + 1].split(" ")[0] == name:
            continue  # the published numbers after the last gankit row of this data
        for method, modes, extra in PUBLISHED.get(name, []):
            hq, kl = (extra, "n/a") if name in ("ring8", "grid25") else ("n/a", extra)
            lines.append(f"| {name} | {method} | {modes} | {hq if hq is not None else 'n/a'} | {kl} | | |")
    return "\n".join(lines)
