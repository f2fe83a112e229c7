"""`gankit eval`: metrics of a trained generator against its real data.

Features: `classifier` (default; works offline, see metrics/classifier.py) or `inception` (the standard
FID Inception-v3, see metrics/inception.py; its weights download on first use or come from
--inception-weights). Class statistics and conditional accuracy always use the digit classifier.
Stacked MNIST and the 2D mixtures get their mode-counting protocols instead of image metrics.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit import checkpoint
from gankit.config import DataConfig, from_dict
from gankit.data import Dataset, build_dataset, MIXTURES
from gankit.metrics import classifier as clf
from gankit.metrics.scores import all_image_metrics
from gankit.metrics.stacked import N_SAMPLES as N_STACKED, mode_stats as stacked_mode_stats
from gankit.metrics.toy2d import N_SAMPLES, mode_stats
from gankit.registry import GankitError
from gankit.rejection import REFIT_BATCH, drs_sample, refit
from gankit.sample import sample  # conditional G: classes 0..K-1 in turn

METRICS = ("fid", "kid", "is", "pr", "dc", "classes")
EXTRA_METRICS = ("cas",)  # asked for by name: CAS trains two classifiers (metrics/cas.py)
FEATURES = ("classifier", "inception")


def get_extractor(features: str, ds: Dataset, inception_weights: Optional[str] = None, quiet: bool = True,
                  device="cpu"):
    """'classifier' | 'inception' -> a callable x -> (features, logits) with a `key` for caching, on `device`."""
    if features == "classifier":
        return clf.Features(*clf.get_classifier(ds, quiet=quiet, device=device))
    if features == "inception":
        from gankit.metrics.inception import Inception
        return Inception(inception_weights, device=device)
    raise GankitError(f"unknown features '{features}'; choose from {', '.join(FEATURES)}")


def real_features(extractor, ds: Dataset) -> tuple:
    """Features and logits of the real images, cached under the user cache dir by extractor and data hash."""
    path = clf.cache_dir() / f"features-{ds.name}-{extractor.key}-{clf.data_hash(ds)}.pt"
    if path.is_file():
        state = checkpoint.load(path)
        return state["features"], state["logits"]
    feats, logits = extractor(ds.x)
    checkpoint.save(path, {"features": feats, "logits": logits})
    return feats, logits


def evaluate(G: nn.Module, ds: Dataset, n: int = 10000, metrics: Sequence[str] = METRICS,
             features: str = "classifier", seed: int = 123, quiet: bool = True,
             inception_weights: Optional[str] = None,
             sampler: Optional[Callable[[int, int], torch.Tensor]] = None, device=None,
             test: Optional[Dataset] = None, per_class: Optional[int] = None) -> Dict[str, float]:
    """Metrics of G against `ds`. 2D mixtures and Stacked MNIST get their mode protocols instead.
    `sampler(n, seed)` draws the samples (default `sample(G, n, seed)`; e.g. DRS, see rejection.py).
    The feature extractor runs on `device` (default: G's), so samples never cross devices to be read.
    "cas" (metrics/cas.py) needs a conditional G and `test`, real images that G never saw; it draws
    `per_class` samples of each class (default: as many as `ds`'s smallest class holds)."""
    sampler = sampler or (lambda n_, seed_: sample(G, n_, seed_))
    device = device if device is not None else next(G.parameters()).device
    if not ds.is_image:
        if ds.name not in MIXTURES:
            raise GankitError(f"no metrics for 2D data set '{ds.name}'")
        means_fn, std = MIXTURES[ds.name]
        return mode_stats(sampler(N_SAMPLES, seed), means_fn(), std)
    if ds.name == "stacked-mnist":
        return stacked_modes(sampler(N_STACKED, seed), quiet, device)
    unknown = [m for m in metrics if m not in METRICS + EXTRA_METRICS]
    if unknown:
        raise GankitError(f"unknown metric '{unknown[0]}'; choose from {', '.join(METRICS + EXTRA_METRICS)}")
    out: Dict[str, float] = {}
    if "cas" in metrics:
        out.update(cas_of(G, ds, test, per_class, seed, device))
        metrics = [m for m in metrics if m != "cas"]
    if not metrics:
        return {**out, "features": features}
    ext = get_extractor(features, ds, inception_weights, quiet, device)
    x = sampler(n, seed)
    real_f, _ = real_features(ext, ds)
    fake_f, fake_logits = ext(x)
    class_logits = fake_logits
    if features != "classifier" and ds.c is not None and ds.is_image:
        digit = clf.Features(*clf.get_classifier(ds, quiet=quiet, device=device))
        class_logits = digit(x)[1]
        out["classifier_accuracy"] = digit.accuracy
    out.update(all_image_metrics(real_f, fake_f, fake_logits, ds.c, ds.num_classes, tuple(metrics),
                                 class_logits=class_logits))
    if G.c_dim and G.c_dim == ds.num_classes and ds.c is not None:  # is a sample of class k classified as k?
        out["cond_acc"] = float((class_logits.argmax(1) == torch.arange(n) % G.c_dim).double().mean())
    if features == "classifier":
        out["classifier_accuracy"] = ext.accuracy
    return {**out, "n": n, "features": features}


def cas_of(G: nn.Module, ds: Dataset, test: Optional[Dataset], per_class: Optional[int] = None, seed: int = 123,
           device=None) -> Dict[str, float]:
    """CAS, its real-data twin and GAN-test (metrics/cas.py) of a conditional G trained on `ds`, tested on
    `test`; `per_class` samples of each class drawn with latents from `seed`."""
    from gankit.metrics.cas import cas
    check_per_class(G, per_class, "--metrics cas")
    if test is None:
        raise GankitError("CAS tests on real images that G never saw: give --test-data (e.g. mnist-test, with "
                          "--test-root), or train with data.held_out=N to set N of each class aside")
    if ds.c is None or test.c is None or test.num_classes != G.c_dim or test.img_shape != ds.img_shape:
        raise GankitError(f"CAS needs labelled test images shaped like the training data {ds.img_shape} with "
                          f"its {G.c_dim} classes; '{test.name}' is {test.img_shape} with {test.num_classes}")
    return cas(lambda labels: sample(G, len(labels), seed, c=labels), ds, test, per_class,
               device=device if device is not None else next(G.parameters()).device)


def check_per_class(G: nn.Module, per_class: Optional[int], what: str) -> None:
    """`what` (--metrics cas, --per-class) draws samples class by class: a conditional G only, a count >= 1."""
    if not G.c_dim:
        raise GankitError(f"{what} draws samples of each class, and this generator is unconditional; train "
                          f"with model.conditional=true (or auto, on labelled data)")
    if per_class is not None and per_class < 1:
        raise GankitError(f"--per-class must be at least 1, got {per_class}")


QUANTISATION_MSE = (2 / 255) ** 2 / 12  # the MSE of rounding [-1, 1] to 8 bits: PSNR's ceiling
PSNR_MAX = 10 * math.log10(4.0 / QUANTISATION_MSE)


def translation_scores(fake: torch.Tensor, target: torch.Tensor, labels: Optional[torch.Tensor] = None,
                       ext=None, real_f: Optional[torch.Tensor] = None, prefix: str = "") -> Dict[str, float]:
    """Image-to-image metrics of outputs against their targets (both (N, C, H, W) in [-1, 1]): PSNR and SSIM
    (torchmetrics, data range 2), L1; with a classifier `ext`, FID of the outputs to the real targets'
    features `real_f` and the share of outputs read as their target's label. PSNR is averaged over images,
    each image's MSE floored at 8-bit quantisation's, (2/255)^2 / 12: an output that matches its target
    (a hole over background) scores PSNR_MAX = 58.9 dB, not infinity."""
    from torchmetrics.functional.image import structural_similarity_index_measure
    from gankit.metrics.scores import fid
    fake, target = fake.float().cpu(), target.float().cpu()
    mse = (fake - target).pow(2).flatten(1).mean(1).clamp_min(QUANTISATION_MSE)
    out = {"psnr": float((10 * torch.log10(4.0 / mse)).mean()),
           "ssim": float(structural_similarity_index_measure(fake, target, data_range=2.0)),
           "l1": float((fake - target).abs().mean())}
    if ext is not None:
        fake_f, logits = ext(fake)
        out["fid"] = fid(real_f, fake_f)
        if labels is not None:
            out["accuracy"] = float((logits.argmax(1) == labels.cpu()).double().mean())
    return {f"{prefix}{k}": v for k, v in out.items()}


def evaluate_translation(G: nn.Module, task, held_out: Dataset, features_of: Optional[Dataset] = None,
                         seed: int = 123) -> Dict[str, float]:
    """A translation run on its held-out split: inputs derived from the held-out targets as in training
    (or the split's own pairs), then `translation_scores`; FID and digit accuracy in the classifier
    features of `features_of` (the training data) when it has labels. Inpainting also reports the centre
    square of half the side (`centre_*`)."""
    from gankit.tasks import Inpaint, centre_square, translate
    if held_out.full is not None and task.any_size:
        return whole_image_scores(G, task, held_out, seed)
    if task.unpaired:
        return unpaired_scores(G, task, held_out, features_of)
    ext, real_f = None, None
    if features_of is not None and features_of.c is not None:
        ext = get_extractor("classifier", features_of, device=next(G.parameters()).device)
        real_f = ext(held_out.x)[0]
    src = held_out.a if held_out.a is not None else held_out.x
    fake, _, _ = translate(G, task, src, from_targets=held_out.a is None, seed=seed)
    out = translation_scores(fake, held_out.x, held_out.c, ext, real_f)
    if isinstance(task, Inpaint):
        centre = centre_square(held_out.x.shape[-1]).expand(len(held_out), 1, -1, -1)
        fake, _, _ = translate(G, task, held_out.x, mask=centre, seed=seed)
        out.update(translation_scores(fake, held_out.x, held_out.c, ext, real_f, prefix="centre_"))
    return {**out, "n": len(held_out)}


def unpaired_scores(G: nn.Module, task, held_out: Dataset, features_of: Optional[Dataset] = None) -> Dict[str, float]:
    """An unpaired run on each domain's held-out images, per direction it learned (`AtoB/...`, `BtoA/...`):
    `map_scores` of its G's and, both ways, `cycle_l1`, the mean |G_BA(G_AB(a)) - a| (and the reverse)."""
    from gankit.tasks import translate
    move = lambda x, direction: translate(G, task, x, direction=direction)[0]  # noqa: E731
    return map_scores(move, held_out, features_of, cycle=task.two_way, device=next(G.parameters()).device,
                      directions=("AtoB", "BtoA") if task.two_way else ("AtoB",))


def map_scores(move, held_out: Dataset, features_of: Optional[Dataset] = None, cycle: bool = False,
               device="cpu", directions=("AtoB", "BtoA")) -> Dict[str, float]:
    """A map between the two domains of an unpaired split, `move(x, "AtoB" | "BtoA") -> images`, per direction:
    with labelled domains, in the classifier features of the *target* domain's training images (`features_of`
    and its `.b`), `labels`, the share of translations read as their source image's label (label preservation,
    as CyCADA and UNIT report MNIST <-> USPS), and `fid` to the target domain's held-out images; with `cycle`,
    `cycle_l1` of the map there and back. `fid` alone: the mean of the directions' FIDs."""
    from gankit.metrics.scores import fid
    out: Dict[str, float] = {}
    domains = {"A": (held_out, features_of), "B": (held_out.b, features_of.b if features_of is not None else None)}
    for src, dst in (("A", "B"), ("B", "A")):
        (x, _), (target, target_train) = domains[src], domains[dst]
        there, back = f"{src}to{dst}", f"{dst}to{src}"
        if there not in directions:
            continue
        fake = move(x.x, there)
        if cycle:
            out[f"{there}/cycle_l1"] = float((move(fake, back).cpu() - x.x).abs().mean())
        if target_train is not None and target_train.c is not None and x.c is not None:
            ext = get_extractor("classifier", target_train, device=device)
            fake_f, logits = ext(fake)
            out[f"{there}/fid"] = fid(ext(target.x)[0], fake_f)
            out[f"{there}/labels"] = float((logits.argmax(1).cpu() == x.c).double().mean())
    fids = [v for k, v in out.items() if k.endswith("/fid")]
    if fids:  # the mean over the directions: what train.eval_every keeps checkpoints/best.pt by
        out["fid"] = sum(fids) / len(fids)
    return {**out, "n_A": len(held_out), "n_B": len(held_out.b)}


def whole_images(task, held_out: Dataset) -> list:
    """The held-out whole images of a data.crop data set as targets (1, C, H, W) in [-1, 1], each cut to a
    size the task takes (`task.whole_size`, top-left kept), with their names."""
    out = []
    for i, im in enumerate(held_out.full):
        h, w = task.whole_size(*im.shape[-2:])
        x = im[None, :, :h, :w]
        out.append((held_out.names[i] if held_out.names else f"{i:06d}",
                    x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float()))
    return out


def whole_image_scores(G: nn.Module, task, held_out: Dataset, seed: int = 123, outputs=None) -> Dict[str, float]:
    """PSNR, SSIM and L1 of G on each held-out image at its own size (inputs derived as in training), as
    `<metric>/<image name>` and their means over the images; `outputs(x) -> images` scores another map of
    each target x instead (a baseline)."""
    from gankit.tasks import translate
    if outputs is None:
        outputs = lambda x: translate(G, task, x, from_targets=True, seed=seed)[0]  # noqa: E731
    out: Dict[str, float] = {}
    for name, x in whole_images(task, held_out):
        out.update({f"{k}/{name}": v for k, v in translation_scores(outputs(x), x).items()})
    for k in ("psnr", "ssim", "l1"):
        vals = [v for key, v in out.items() if key.startswith(k + "/")]
        out[k] = sum(vals) / len(vals)
    return {**out, "n": len(held_out)}


def stacked_modes(x: torch.Tensor, quiet: bool = True, device="cpu") -> Dict[str, float]:
    """Stacked MNIST: each channel read by the mnist-5k digit classifier; mode = its 3-digit code."""
    digit, acc = clf.get_classifier(build_dataset(DataConfig(name="mnist-5k")), quiet=quiet, device=device)
    if x.shape[-1] != 28:
        x = F.interpolate(x.float(), size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
    d = [clf.embed(digit, x[:, k:k + 1])[1].argmax(1) for k in range(3)]
    return {**stacked_mode_stats(100 * d[0] + 10 * d[1] + d[2]), "classifier_accuracy": acc}


def real_vs_real(ds: Dataset, metrics: Sequence[str] = ("fid", "kid", "pr", "dc")) -> Dict[str, float]:
    """The floor: metrics between two random halves of the real data (F0 for FID)."""
    ext = get_extractor("classifier", ds, quiet=False)
    feats, logits = real_features(ext, ds)
    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    a, b = perm[: len(ds) // 2], perm[len(ds) // 2:]
    return all_image_metrics(feats[a], feats[b], logits[b], ds.c[a], ds.num_classes, tuple(metrics))


def evaluate_run(path: Path, n: int, metrics: Sequence[str], features: str = "classifier",
                 ema: bool = True, data: Optional[DataConfig] = None,
                 inception_weights: Optional[str] = None, drs: bool = False,
                 drs_shift: Optional[float] = None, drs_refit: int = 0,
                 drs_refit_batch: int = REFIT_BATCH, device: str = "auto",
                 test_data: Optional[DataConfig] = None, per_class: Optional[int] = None) -> Dict[str, float]:
    """Evaluate a run directory / checkpoint / export on `device` (auto: CUDA when present); writes
    eval.json (eval-drs.json with `drs`: samples by discriminator rejection, with D refit for `drs_refit`
    steps of `drs_refit_batch` first; see rejection.py). CAS tests on `test_data`, by default the images
    the run's data held out (data.held_out)."""
    from gankit.loading import load_generator
    G = load_generator(Path(path), ema=ema, device=device)
    ds = build_dataset(data) if data else run_dataset(Path(path))
    test = None
    if "cas" in metrics:
        check_per_class(G, per_class, "--metrics cas")
        held = (data or run_data_config(Path(path)))
        test = build_dataset(test_data) if test_data else build_dataset(held, "held_out") if held.held_out else None
    if not G.task.has_latent:  # image-to-image: the run's held-out split
        if drs or features != "classifier":
            raise GankitError("image-to-image runs are evaluated on their held-out split with the classifier "
                              "features; drop --drs and --features")
        train_ds, held_out = G.task.split(ds)
        name = "eval.json"
        if test_data is not None:  # other targets than the held-out split, e.g. MNIST's 10,000 test digits
            held_out, name = translation_test_set(G.task, train_ds, test_data), f"eval-{test_data.name}.json"
        result = evaluate_translation(G, G.task, held_out, features_of=train_ds)
        if Path(path).is_dir():
            (Path(path) / name).write_text(json.dumps(result, indent=2))
        return result
    sampler = None
    if drs:
        D = run_discriminator(Path(path), G, ds, drs_refit, drs_refit_batch, device=str(next(G.parameters()).device))
        sampler = drs_sampler(G, D, drs_shift)
    result = evaluate(G, ds, n, metrics, features, quiet=False,
                      inception_weights=inception_weights, sampler=sampler, test=test, per_class=per_class)
    if drs:
        result.update(drs_acceptance=sampler.acceptance, drs_refit=drs_refit)
        if drs_refit:
            result["drs_refit_batch"] = drs_refit_batch
    if Path(path).is_dir():
        (Path(path) / ("eval-drs.json" if drs else "eval.json")).write_text(json.dumps(result, indent=2))
    return result


def translation_test_set(task, train_ds: Dataset, test_data: DataConfig) -> Dataset:
    """`test_data` as the targets of a paired image-to-image run: its inputs are derived from them as in
    training (`gankit translate --from-targets`), and its labels, if any, score digit accuracy."""
    if task.unpaired:
        raise GankitError("--test-data scores paired image-to-image runs; an unpaired run is scored on each "
                          "domain's held-out split: drop --test-data")
    if train_ds.full is not None:
        raise GankitError("a run trained on crops (data.crop) is scored on its held-out whole images: drop "
                          "--test-data")
    test = build_dataset(test_data)
    if not test.is_image or tuple(test.img_shape) != tuple(train_ds.img_shape):
        raise GankitError(f"--test-data {test_data.name} holds images of shape {tuple(test.img_shape)}, the run "
                          f"trained on {tuple(train_ds.img_shape)}: give a data set of the run's image shape")
    if test.num_classes != train_ds.num_classes:
        test.c = None  # labels the run's classifier does not know: score without digit accuracy
    return test


def run_discriminator(path: Path, G: nn.Module, ds: Optional[Dataset] = None, refit_steps: int = 0,
                      refit_batch: int = REFIT_BATCH, device: str = "cpu") -> nn.Module:
    """The run's D for DRS; with `refit_steps`, a copy refit against G on `ds` (default: the run's data),
    `refit_batch` real and generated samples a step."""
    from gankit.loading import load_discriminator
    D = load_discriminator(Path(path), device)
    if not refit_steps:
        return D
    return refit(G, D, ds if ds is not None else run_dataset(Path(path)), refit_steps, batch=refit_batch)


def drs_sampler(G: nn.Module, D: nn.Module, shift: Optional[float] = None):
    """A `sampler` for `evaluate` that draws by DRS; its `acceptance` attribute holds the last rate."""

    def sampler(n: int, seed: int) -> torch.Tensor:
        x, info = drs_sample(G, D, n, seed, shift=shift)
        sampler.acceptance = info["acceptance"]
        return x
    sampler.acceptance = float("nan")
    return sampler


def run_data_config(path: Path) -> DataConfig:
    """The data config a run (directory, checkpoint or export) was trained with, from its config.yaml."""
    from gankit.config import read_yaml
    from gankit.loading import run_dir_of
    cfg_path = run_dir_of(path) / "config.yaml"
    if not cfg_path.is_file():
        raise GankitError(f"cannot tell which data {path} was trained on (no config.yaml beside it)")
    return from_dict(DataConfig, read_yaml(cfg_path).get("data", {}), "data.")


def run_dataset(path: Path) -> Dataset:
    """The data set a run (directory, checkpoint or export) was trained on."""
    return build_dataset(run_data_config(path))
