"""Unpaired data sets for CycleGAN: two domains, each with its own images, labels and count (`Dataset.b`).
Registered in `data.DATASETS` like every data set; `two_domains` brings both to one shape."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankit.config import DataConfig
from gankit.data import DATASETS, Dataset, digits, mnist_5k
from gankit.imagefiles import IMAGE_EXTS, bundled_photo, colour_channels, load_images_as
from gankit.registry import GankitError


def two_domains(name: str, a: Dataset, b: Dataset) -> Dataset:
    """Domains A (`x`) and B (`b`) of an unpaired data set; a grey side is repeated to RGB when the other is
    colour, so both G's map between images of one shape (and the identity loss applies)."""
    if a.x.shape[-2:] != b.x.shape[-2:]:
        raise GankitError(f"'{name}': domain A is {tuple(a.x.shape[-2:])} and B {tuple(b.x.shape[-2:])}; "
                          f"set data.resolution")
    ch = max(a.x.shape[1], b.x.shape[1])
    a.x, b.x = (t.expand(-1, ch, -1, -1).contiguous() if t.shape[1] != ch else t for t in (a.x, b.x))
    a.name, b.name = name, f"{name}-B"
    a.b = b
    return a


UNPAIRED_LAYOUTS = (("A", "B"), ("trainA", "trainB"))


@DATASETS.register("unpaired")
def unpaired(cfg: DataConfig) -> Dataset:
    """Two folders of unpaired images under `data.root`: `A/` and `B/`, or CycleGAN's `trainA/` and `trainB/`
    (then `testA/` and `testB/`, when present, are the held-out split). Any counts; resized (shorter side) and
    centre-cropped to data.resolution (0: the images' own size, which must agree); grey and colour sides meet
    in RGB (`two_domains`)."""
    root = Path(cfg.root)
    found = [(a, b) for a, b in UNPAIRED_LAYOUTS if (root / a).is_dir() and (root / b).is_dir()]
    if not root.is_dir() or not found:
        raise GankitError(f"data.name=unpaired needs data.root with folders A/ and B/ (or trainA/ and trainB/); "
                          f"'{root}' has neither")
    dir_a, dir_b = found[0]
    listing = lambda d: sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTS) if d.is_dir() else []  # noqa: E731
    sides = []
    for train_dir, test_dir in ((dir_a, "testA"), (dir_b, "testB")):
        train, test = listing(root / train_dir), listing(root / test_dir) if train_dir.startswith("train") else []
        if not train:
            raise GankitError(f"{root / train_dir} holds no images ({', '.join(sorted(IMAGE_EXTS))}); both domains need some")
        sides.append((train + test, tuple(range(len(train), len(train) + len(test)))))
    ch = cfg.channels or max(colour_channels(files) for files, _ in sides)
    (fa, ta), (fb, tb) = sides
    a, b = (Dataset("unpaired", load_images_as(f, ch, cfg.resolution), None, test=t) for f, t in ((fa, ta), (fb, tb)))
    return two_domains("unpaired", a, b)


@DATASETS.register("mnist2digits")
def mnist2digits(cfg: DataConfig) -> Dataset:
    """Unpaired: A = mnist-5k, B = scikit-learn's 1,797 8x8 digits (values 0..16 x 255/16 -> [-1, 1], resized
    to 28x28 bilinearly, align_corners=False, no antialias): two collections of handwriting with a visible
    style gap, as MNIST <-> USPS. Labels are kept to measure translations, never shown to the model."""
    b = digits(cfg)
    b.x = F.interpolate(b.x, size=(28, 28), mode="bilinear", align_corners=False).clamp(-1, 1)
    return two_domains("mnist2digits", mnist_5k(cfg), b)


MNISTM_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
                 "immunohistochemistry")  # the bundled colour photos with texture everywhere (not hubble, retina)


@DATASETS.register("mnist2photodigits")
def mnist2photodigits(cfg: DataConfig, seed: int = 0) -> Dataset:
    """Unpaired: A = mnist-5k, B = the same digits made the way MNIST-M is (Ganin & Lempitsky 2015): |patch -
    digit| per channel, the digit binarised to {0, 255} in three channels, the patch a random 28x28 crop
    (seed 0) of one of `MNISTM_PHOTOS` (instead of BSDS500). Colour and texture: a style-transfer task."""
    a = mnist_5k(cfg)
    digit = ((a.pixels > 127).to(torch.int16) * 255).expand(-1, 3, -1, -1)
    try:
        photos = [torch.from_numpy(np.array(bundled_photo(n))).permute(2, 0, 1).to(torch.int16) for n in MNISTM_PHOTOS]
    except ModuleNotFoundError as e:
        raise GankitError(f"data set 'mnist2photodigits' reads the photos bundled with scikit-image ({e}); "
                          f"pip install scikit-image") from None
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(photos), (len(digit),), generator=g)
    corner = torch.rand(len(digit), 2, generator=g)
    patches = []
    for k, (fy, fx) in zip(which.tolist(), corner.tolist()):
        im = photos[k]
        top, left = int(fy * (im.shape[1] - 27)), int(fx * (im.shape[2] - 27))
        patches.append(im[:, top:top + 28, left:left + 28])
    b = (torch.stack(patches) - digit).abs().float() / 127.5 - 1
    names = tuple(str(i) for i in range(10))
    return two_domains("mnist2photodigits", a, Dataset("mnist2photodigits", b, a.c.clone(), 10, names))
