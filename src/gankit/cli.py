"""`gankit` command line: parses, calls the API, prints. No logic lives here.
Every user error is one line on stderr and exit status 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from gankit.registry import GankitError


def cmd_train(a: argparse.Namespace) -> int:
    from gankit.config import load_config, resume_config
    from gankit.distributed import launched_rank
    from gankit.trainer import train
    files = [x for x in a.items if x.endswith((".yaml", ".yml")) and "=" not in x]
    overrides = [x for x in a.items if x not in files]
    if len(files) > 1:
        raise GankitError(f"give at most one config file, got {', '.join(files)}")
    for flag, key in (("device", "train.device"), ("seed", "train.seed"), ("out", "out")):
        if getattr(a, flag) is not None:
            overrides.append(f"{key}={getattr(a, flag)}")
    if a.resume:
        cfg = resume_config(Path(a.resume), overrides)
    else:
        cfg = load_config(recipe=a.recipe, file=files[0] if files else None, overrides=overrides)
    run_dir = train(cfg, resume=Path(a.resume) if a.resume else None, quiet=a.quiet)
    if launched_rank() != 0:  # under torchrun, rank 0 speaks for the job
        return 0
    last = sorted((run_dir / "samples").glob("step_*.png"))
    print(f"\nrun directory: {run_dir}")
    print("worth opening:")
    for name, what in ((last[-1].relative_to(run_dir) if last else None, "final samples (fixed latents)"),
                       ("progress.gif", "samples over training"), ("losses.png", "D and G loss curves"),
                       ("stats.jsonl", "all logged statistics"), ("generator.safetensors", "exported G")):
        if name is not None and (run_dir / name).exists():
            print(f"  {run_dir / name}  ({what})")
    print(f"  tensorboard --logdir {run_dir.parent}")
    return 0


def _load_g(a: argparse.Namespace):
    from gankit import load
    G = load(a.run, ema=a.ema, device=a.device)
    if not G.task.has_latent:
        raise GankitError(f"{a.run} translates images (task {G.task.cfg.name}): it has no latent to sample; "
                          f"use gankit translate RUN INPUT --out OUT")
    if a.cls is not None:
        a.cls = class_index(G, a.cls)
    return G


def class_index(G, name: str) -> int:
    """--class: a class name of the run's data (a folder's sub-folder) or an integer label."""
    if not G.c_dim:
        raise GankitError("--class needs a conditional model (recipe cgan or model.conditional=true)")
    names = list(getattr(G, "meta", {}).get("class_names") or [])
    if name in names:
        return names.index(name)
    if name.lstrip("-").isdigit() and 0 <= int(name) < G.c_dim:
        return int(name)
    shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "") if names else f"0..{G.c_dim - 1}"
    raise GankitError(f"--class {name} is not a class of this model; choose from {shown}")


def cmd_sample(a: argparse.Namespace) -> int:
    from gankit.sample import sample, save_per_class, save_samples
    if a.n <= 0:
        raise GankitError(f"--n must be positive, got {a.n}")
    G = _load_g(a)
    if a.per_class is not None:
        from gankit.evaluate import check_per_class
        check_per_class(G, a.per_class, "--per-class")
        if a.drs or a.cls is not None:
            raise GankitError("--per-class draws every class; drop --drs and --class")
        out = save_per_class(G, a.per_class, Path(a.out), a.format, a.seed)
        print(f"{a.per_class} samples of each of {G.c_dim} classes -> {out}")
        return 0
    if a.drs:
        from gankit.evaluate import run_discriminator
        from gankit.rejection import drs_sample
        D = run_discriminator(Path(a.run), G, refit_steps=a.drs_refit, refit_batch=a.drs_refit_batch,
                              device=a.device)
        x, info = drs_sample(G, D, a.n, a.seed, a.cls, a.drs_shift)
        print(f"DRS: kept {100 * info['acceptance']:.1f}% of {info['draws']} draws")
    else:
        x = sample(G, a.n, seed=a.seed, c=a.cls)
    out = save_samples(x, Path(a.out), a.format)
    print(f"{a.n} samples -> {out}")
    return 0


def cmd_interpolate(a: argparse.Namespace) -> int:
    from gankit.sample import interpolate, save_grid
    if a.rows <= 0 or a.steps < 2:
        raise GankitError("--rows must be positive and --steps at least 2")
    G = _load_g(a)
    if len(G.img_shape) != 3:
        raise GankitError("interpolate draws image grids; this generator makes 2D points")
    save_grid(interpolate(G, a.rows, a.steps, a.seed, a.cls), Path(a.out), nrow=a.steps)
    print(f"{a.rows} interpolation rows x {a.steps} steps -> {a.out}")
    return 0


def cmd_translate(a: argparse.Namespace) -> int:
    from gankit import load
    from gankit.sample import translate_files
    n = translate_files(load(a.run, ema=a.ema, device=a.device), Path(a.input), Path(a.out), mask=a.mask,
                        seed=a.seed, from_targets=a.from_targets, save_inputs=a.save_inputs, save_masks=a.save_masks,
                        direction=a.direction)
    print(f"{n} image(s) translated -> {a.out}")
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from gankit.evaluate import evaluate_run
    if a.n <= 1:
        raise GankitError(f"--n must be at least 2, got {a.n}")
    result = evaluate_run(Path(a.run), a.n, [m.strip() for m in a.metrics.split(",") if m.strip()],
                          a.features, a.ema, inception_weights=a.inception_weights, drs=a.drs,
                          drs_shift=a.drs_shift, drs_refit=a.drs_refit, drs_refit_batch=a.drs_refit_batch,
                          device=a.device, test_data=real_test_config(a), per_class=a.per_class)
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:{width}s}  {v:.4f}" if isinstance(v, float) else f"{k:{width}s}  {v}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from gankit.bench import augment, augment_report, report, results_fragment, run, write_results
    seeds = a.seeds if a.seeds is not None else 3 if a.name == "augment" else 5
    if seeds < 1:
        raise GankitError(f"--seeds must be positive, got {seeds}")
    if a.name == "augment":
        test = real_test_config(a)
        if a.gen_per_class < 1 or min(a.k) < 1:
            raise GankitError("--k and --gen-per-class must be at least 1")
        results = augment(a.k, seeds, a.minutes, a.gen_per_class, test, out=a.out, overrides=a.overrides,
                          device=a.device)
        table = augment_report(results, a.gen_per_class, f"{a.test_data} (all of it)" if test else
                               "100 images of each class that mnist-5k sets aside (data.held_out=100)")
    else:
        table = report(run(a.name, seeds, out=a.out, overrides=a.overrides, drs=a.drs, drs_refit=a.drs_refit,
                           drs_refit_batch=a.drs_refit_batch, device=a.device))
    print(table)
    if a.write:
        write_results(a.write, results_fragment(table))
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from gankit.export import export
    out = export(a.run, a.format, Path(a.out), ema=a.ema, opset=a.opset, direction=a.direction)
    print(f"{a.format} -> {out}")
    return 0


def cmd_recipes(a: argparse.Namespace) -> int:
    from gankit.config import load_config, recipe_names
    for name in recipe_names():
        cfg = load_config(name)
        print(f"{name:18s} {cfg.description}")
        if a.verbose:
            print(f"{'':18s} family={cfg.model.family} loss={cfg.loss.name} data={cfg.data.name} "
                  f"steps={cfg.train.steps} batch={cfg.train.batch_size}")
    return 0


def add_drs(p: argparse.ArgumentParser, shift: bool = True) -> None:
    p.add_argument("--drs", action="store_true",
                   help="discriminator rejection sampling (Azadi et al. 2019): keep samples by D's density ratio")
    if shift:
        p.add_argument("--drs-shift", type=float, metavar="Q",
                       help="DRS: shift F by its Q quantile per batch to accept more (paper: 0.95); default none")
    p.add_argument("--drs-refit", type=int, default=0, metavar="STEPS",
                   help="DRS: first train a copy of D alone for STEPS more BCE steps against the sampled G, so "
                        "its logit estimates log p_data/p_G (a D trained with R1, another loss or for the "
                        "non-EMA G does not); default 0")
    p.add_argument("--drs-refit-batch", type=int, default=1024, metavar="N",
                   help="DRS: real and generated samples per refit step (default 1024; smaller is faster, "
                        "for image nets on a CPU especially)")


def _add_train(sub) -> None:
    """train: a recipe, a YAML delta, overrides, resume."""
    t = sub.add_parser("train", help="train a recipe (default: dcgan on the bundled mnist-5k)")
    t.add_argument("items", nargs="*", help="an optional config.yaml, then key=value overrides")
    t.add_argument("--recipe", help="recipe name (see `gankit recipes`)")
    t.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    t.add_argument("--seed", type=int)
    t.add_argument("--out", help="parent directory for run directories (default runs)")
    t.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(fn=cmd_train)


def _add_sampling(sub) -> None:
    """sample and interpolate: images from a noise-to-image G."""
    for name, fn, hlp in (("sample", cmd_sample, "sample images from a trained generator"),
                          ("interpolate", cmd_interpolate, "rows of spherical latent interpolations")):
        s = sub.add_parser(name, help=hlp)
        s.add_argument("run", help="run directory, checkpoint (.pt) or generator.safetensors")
        s.add_argument("--out", default=f"{name}.png" if name == "interpolate" else "samples.png")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--class", dest="cls", metavar="NAME", help="conditional models: a class name of the run's "
                                                                   "data (a sub-folder) or an integer label")
        s.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                       help="use the EMA generator when the run has one")
        s.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
        if name == "sample":
            s.add_argument("--n", type=int, default=64)
            s.add_argument("--format", choices=["png", "png-dir", "npy"], default="png")
            s.add_argument("--per-class", type=int, metavar="N",
                           help="conditional runs: N samples of each class (png-dir: one sub-folder per class "
                                "name, a labelled folder data.name=folder reads; npy: OUT and OUT-labels.npy; "
                                "png: a grid, one row per class); replaces --n")
            add_drs(s)
        else:
            s.add_argument("--rows", type=int, default=8)
            s.add_argument("--steps", type=int, default=10)
        s.set_defaults(fn=fn)


def _add_translate(sub) -> None:
    """translate: images through an image-to-image G."""
    tr = sub.add_parser("translate", help="image-to-image runs: translate images (pix2pix, SR, inpainting, CycleGAN)")
    tr.add_argument("run", help="run directory, checkpoint (.pt) or generator.safetensors")
    tr.add_argument("input", help="an image file, a folder of images, or a .npy array")
    tr.add_argument("--out", required=True, help=".npy (float32 in [-1, 1]), .png (input | output grid) or a folder")
    tr.add_argument("--mask", help="inpainting: .npy (N, H, W) or (N, 1, H, W), 1 = hole (default: drawn, --seed)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--direction", help="unpaired runs: AtoB (default) or BtoA")
    tr.add_argument("--from-targets", action="store_true",
                    help="INPUT holds target images: derive G's inputs from them as in training, then translate")
    tr.add_argument("--save-inputs", metavar="NPY", help="write G's inputs (float32) to this .npy")
    tr.add_argument("--save-masks", metavar="NPY", help="inpainting: write the holes used to this .npy")
    tr.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
    tr.add_argument("--device", default="auto")
    tr.set_defaults(fn=cmd_translate)


def _add_eval(sub) -> None:
    """eval: metrics of a run, CAS included."""
    e = sub.add_parser("eval", help="FID, KID, IS, precision/recall, density/coverage, classes (offline)")
    e.add_argument("run", help="run directory, checkpoint (.pt) or generator.safetensors")
    e.add_argument("--metrics", default="fid,kid,is,pr,dc,classes",
                   help="comma-separated; also cas: the Classification Accuracy Score (conditional runs)")
    e.add_argument("--features", default="classifier", choices=["classifier", "inception"])
    e.add_argument("--inception-weights", metavar="PATH",
                   help="Inception-v3 FID weights file (weights-inception-2015-12-05-6726825d.pth) for offline use")
    e.add_argument("--n", type=int, default=10000, help="generated samples")
    e.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
    e.add_argument("--device", default="auto", help="where G, D and the feature extractor run: auto | cpu | cuda:N")
    e.add_argument("--per-class", type=int, metavar="N",
                   help="cas: generated (and real) images of each class (default: the smallest class's count)")
    add_test_data(e, "cas and image-to-image runs", "the images the run's data held out (data.held_out), or an "
                  "image-to-image run's held-out split. An image-to-image run translates them as targets "
                  "(--from-targets) and writes eval-NAME.json")
    add_drs(e)
    e.set_defaults(fn=cmd_eval)


def _add_bench(sub) -> None:
    """bench: benchmarks over several seeds."""
    b = sub.add_parser("bench", help="benchmarks over several seeds, beside published numbers")
    b.add_argument("name", choices=["toy2d", "stacked-mnist", "augment"])
    b.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 5; augment 3)")
    b.add_argument("--out", default="runs-bench")
    b.add_argument("--device", default="auto", help="training and evaluation device: auto | cpu | cuda:N")
    b.add_argument("--write", metavar="MD", help="also write the table, its command and the hardware to MD "
                                                 "(docs/results/*.md; python benchmarks/results.py assembles them)")
    add_drs(b, shift=False)
    b.add_argument("--k", type=int, nargs="+", default=[10, 50, 100, 500],
                   help="augment: real images of each class to train on (default 10 50 100 500)")
    b.add_argument("--minutes", type=float, default=3.0, help="augment: GAN training wall time a run (default 3)")
    b.add_argument("--gen-per-class", type=int, default=500, help="augment: generated images of each class (500)")
    add_test_data(b, "augment", "100 of each class that mnist-5k sets aside")
    b.add_argument("overrides", nargs="*", help="key=value applied to every run")
    b.set_defaults(fn=cmd_bench)


def _add_export(sub) -> None:
    """export: G for other runtimes."""
    x = sub.add_parser("export", help="G as ONNX, TorchScript, torch.export or a Hugging Face Hub folder")
    x.add_argument("run", help="run directory, checkpoint (.pt), generator.safetensors or hub folder")
    x.add_argument("--format", required=True, metavar="FORMAT", help="onnx | torchscript | exported | hub")
    x.add_argument("--out", required=True, help="the file to write (a folder for hub)")
    x.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                   help="the EMA weights when the run has them (default); --no-ema: the raw G")
    x.add_argument("--opset", type=int, default=17, help="onnx: the opset (default 17)")
    x.add_argument("--direction", help="unpaired runs: AtoB (default) or BtoA (a hub folder keeps both)")
    x.set_defaults(fn=cmd_export)


def cmd_data(a: argparse.Namespace) -> int:
    from gankit import prepared
    meta = prepared.prepare(Path(a.folder), Path(a.out), a.resolution, a.crop, a.channels, a.workers,
                            progress=not a.quiet)
    print(prepared.describe(meta, Path(a.out)))
    return 0


def _add_data(sub) -> None:
    """data prepare: a folder decoded once into a prepared data set."""
    d = sub.add_parser("data", help="prepare a folder of images for training (uint8, read by index)")
    ds = d.add_subparsers(dest="action", required=True)
    pr = ds.add_parser("prepare", help="decode FOLDER once into DATA (images.npy, labels.npy, dataset.json)")
    pr.add_argument("folder", help="images, any sizes; sub-folders become class labels")
    pr.add_argument("--out", required=True, metavar="DATA", help="the new folder to write")
    pr.add_argument("--resolution", type=int, default=0,
                    help="side of the square images, 8-256 or 28 (default: the largest at most the median shorter side)")
    pr.add_argument("--crop", default="center", choices=["center", "random", "none"],
                    help="shorter side resized to the resolution, then a centre or random square; none: squeezed")
    pr.add_argument("--channels", type=int, default=0, help="1 or 3 (default: 3 when any image is colour)")
    pr.add_argument("--workers", type=int, default=0, help="decoding processes (default: the cores, at most 8)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.set_defaults(fn=cmd_data)


def add_test_data(p: argparse.ArgumentParser, what: str, default: str) -> None:
    p.add_argument("--test-data", metavar="NAME", help=f"{what}: the real test images, a data set (e.g. mnist-test: "
                                                       f"MNIST's test digits, none of them in mnist-5k); default: {default}")
    p.add_argument("--test-root", metavar="DIR", help=f"{what}: data.root of --test-data")


def real_test_config(a: argparse.Namespace):
    """--test-data / --test-root as a DataConfig, or None."""
    from gankit.config import DataConfig
    return DataConfig(name=a.test_data, **({"root": a.test_root} if a.test_root else {})) if a.test_data else None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gankit", description="Train, sample and evaluate GANs.")
    sub = p.add_subparsers(dest="cmd", required=True)
    for add in (_add_train, _add_sampling, _add_translate, _add_eval, _add_bench, _add_export, _add_data):
        add(sub)
    r = sub.add_parser("recipes", help="list the recipes")
    r.add_argument("-v", "--verbose", action="store_true")
    r.set_defaults(fn=cmd_recipes)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if extra:  # overrides may come after options: `gankit train --recipe x train.steps=5`, same for bench
        if args.cmd not in ("train", "bench") or any(x.startswith("-") for x in extra):
            p.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.cmd == "train":
            args.items += extra
        else:
            args.overrides += extra
    try:
        return args.fn(args)
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return 2
