"""`gankit bench toy2d | stacked-mnist | augment`: benchmarks over several seeds, beside published numbers.

toy2d protocol (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018; GDPP, Elfeki et al. 2019): 2,500
samples; a sample is high quality within 3 standard deviations of its nearest mode; a mode is captured
when it is nearest to at least one high-quality sample; reverse KL of the mode histogram to uniform.
Ring: 8 modes on a circle of radius 2, std 0.02. Grid: 25 modes at {-4,-2,0,2,4}^2, std 0.05.

stacked-mnist protocol (Metz et al. 2017; VEEGAN; PacGAN Table 3): 26,000 samples; each channel read by
the digit classifier; modes = distinct 3-digit codes of 1,000; KL of the code histogram to uniform.

augment protocol (generated data for classifiers, metrics/cas.py): for k real images of each class (a fixed,
class-balanced subset of mnist-5k), train the default conditional recipe on those k x 10 images, then train
the gankit classifier on (a) the k real images of each class, (b) those plus M generated of each class (the
real images repeated to M, so that both weigh alike), (c) the M generated alone (CAS), and test each on
real images that neither saw.
"""
from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

from gankit.hardware import describe
from gankit.rejection import REFIT_BATCH

if TYPE_CHECKING:
    from gankit.config import DataConfig

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


AUGMENT_KS = (10, 50, 100, 500)


def augment(ks=AUGMENT_KS, seeds: int = 3, minutes: float = 3.0, gen_per_class: int = 500,
            test: Optional["DataConfig"] = None, held_out: int = 100, out: str = "runs-bench",
            overrides: Optional[List[str]] = None, device: str = "auto") -> Dict[int, List[dict]]:
    """For each k and seed: the default recipe trained on k images of each class for `minutes` (data.per_class=k),
    then classifiers (a) real, (b) real + `gen_per_class` generated, (c) generated, tested on `test` (a
    DataConfig), or without one on `held_out` images of each class that mnist-5k sets aside (then k <= 500 -
    held_out). -> {k: [per-seed dicts of accuracies (a, b, c), GAN seconds]}."""
    import torch
    import gankit
    from gankit.config import load_config
    from gankit.data import build_dataset
    from gankit.metrics.cas import labels_for, train_on
    from gankit.metrics.classifier import accuracy
    from gankit.sample import sample
    data = [] if test else [f"data.held_out={held_out}"]
    test_ds = build_dataset(test) if test else build_dataset(load_config("dcgan", overrides=data).data, "held_out")
    results: Dict[int, List[dict]] = {}
    for k in ks:
        for seed in range(seeds):
            cfg = load_config("dcgan", overrides=[*data, f"data.per_class={k}", f"train.seed={seed}", f"out={out}",
                                                  f"train.device={device}", f"train.max_minutes={minutes}",
                                                  "train.steps=1000000", "train.batch_size=" + str(min(64, 10 * k)),
                                                  *(overrides or [])])
            real = build_dataset(cfg.data)
            t = time.perf_counter()
            G = gankit.load(gankit.train(cfg, quiet=True), device=device)
            seconds = time.perf_counter() - t
            labels = labels_for(gen_per_class, real.num_classes)
            fake = sample(G, len(labels), seed=1000 + seed, c=labels).cpu()
            reps = -(-gen_per_class // k)  # (b) repeats the real images to weigh as much as the generated ones
            both_x, both_c = torch.cat([real.x.repeat(reps, 1, 1, 1), fake]), torch.cat([real.c.repeat(reps), labels])
            r = {"seconds": seconds}
            for key, (x, c) in {"real": (real.x, real.c), "real+gen": (both_x, both_c), "gen": (fake, labels)}.items():
                r[key] = accuracy(train_on(x, c, real.num_classes, seed), test_ds.x, test_ds.c)
            results.setdefault(k, []).append(r)
            print(f"k={k} seed {seed}: real {100 * r['real']:.2f}%, real+gen {100 * r['real+gen']:.2f}%, "
                  f"gen {100 * r['gen']:.2f}% ({seconds:.0f} s of GAN training)", flush=True)
    return results


def augment_report(results: Dict[int, List[dict]], gen_per_class: int, test_name: str) -> str:
    lines = [f"| real / class | (a) real only | (b) real + {gen_per_class} generated / class | "
             f"(c) generated only (CAS) | (b) - (a) | GAN s / run |", "|---|---|---|---|---|---|"]
    for k, rows in results.items():
        gain = [100 * (r["real+gen"] - r["real"]) for r in rows]
        lines.append(f"| {k} | {_ms([100 * r['real'] for r in rows])} | {_ms([100 * r['real+gen'] for r in rows])} | "
                     f"{_ms([100 * r['gen'] for r in rows])} | {_ms(gain)} | "
                     f"{np.mean([r['seconds'] for r in rows]):.0f} |")
    return "\n".join(lines + ["", f"Accuracy (%) on {test_name}, mean ± std over {len(rows)} seeds (GAN and "
                                  f"classifier seed alike)."])


def _say(results: Dict[str, List[dict]], name: str, seed: int, r: dict) -> None:
    results.setdefault(name, []).append(r)
    hq = f"{100 * r['hq']:.1f}% HQ, " if "hq" in r else ""
    acc = f", acceptance {r['acceptance']:.3f}" if "acceptance" in r else ""
    print(f"{name} seed {seed}: {r['modes']} modes, {hq}KL {r['kl']:.4f}, {r['seconds']:.0f} s "
          f"({r['cpu_seconds']:.0f} CPU-s){acc}", flush=True)


def training_precision(recipe: str, cfg) -> str:
    """How `cfg` (a config of `recipe`) trains on this machine, for a fragment's header: 'bf16 autocast for
    RECIPE (train.amp=auto)' where bf16 is native, else 'fp32 for RECIPE (...)'."""
    from gankit.hardware import pick_device
    from gankit.trainer import resolve_amp
    bf16 = resolve_amp(cfg.train.amp, pick_device(cfg.train.device))
    return f"{'bf16 autocast' if bf16 else 'fp32'} for {recipe} (train.amp={cfg.train.amp})"


def finished_run(out: Path, cfg, any_steps: bool = False) -> Path:
    """The newest run under `out` trained with `cfg` that wrote its generator (a benchmark's `--reuse`: score
    it instead of training it again); `any_steps`: with whatever train.steps its schedule was fitted to."""
    import dataclasses

    from gankit.config import load_config
    for path in sorted(Path(out).glob(f"*-{cfg.recipe}"), reverse=True):
        if not (path / "generator.json").is_file():
            continue
        saved = load_config(file=str(path / "config.yaml"))
        want = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=saved.train.steps)) \
            if any_steps else cfg
        if saved == want:
            return path
    raise SystemExit(f"--reuse: no finished run of {cfg.recipe} with this row's config under {out}")


def elapsed_s(run: Path) -> float:
    """The training seconds a finished run logged last (`time/elapsed_s` in its stats.jsonl)."""
    from gankit.stats import read_stats
    return [r for r in read_stats(Path(run) / "stats.jsonl") if "time/elapsed_s" in r][-1]["time/elapsed_s"]


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
