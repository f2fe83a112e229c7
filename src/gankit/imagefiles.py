"""Data sets read from image files (a folder of images, aligned pairs), the bundled natural photos, and the
images that `gankit translate` reads. Each is decoded and checked once, when the data set is built, and kept
as uint8 (see data.py); a broken file is a counted skip or a one-line error before training starts."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from gankit.config import DataConfig
from gankit.data import DATASETS, Dataset, cropped, from_uint8
from gankit.registry import GankitError

# --- folders of images ------------------------------------------------------------------------------------
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _open_image(path: Path, channels: int):
    """Decode one file fully and convert to 'L' or 'RGB' (8-bit). Raises on anything unreadable."""
    from PIL import Image
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse bombs, don't just warn
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                peak = 65535.0 if arr.max() > 255 else 255.0
                im = Image.fromarray((arr * (255.0 / peak)).round().astype(np.uint8), "L")
            elif im.mode in ("RGBA", "LA", "P", "PA"):  # composite transparency on white
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, rgba).convert("RGB")
            elif im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            is_colour = im.mode == "RGB"
            return im.convert("RGB" if channels == 3 else "L") if channels else im, is_colour


@DATASETS.register("folder")
def folder(cfg: DataConfig) -> Dataset:
    """Every image under `data.root` (recursively), resized (shorter side) and centre-cropped to
    `data.resolution` (default 64). Sub-folders become class labels when there are two or more.
    Unreadable files are counted and skipped with one warning; no usable image at all is an error."""
    root = Path(cfg.root)
    if not root.is_dir():
        raise GankitError(f"data.root '{root}' is not a directory (data.name=folder needs a folder of images)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise GankitError(f"no image files ({', '.join(sorted(IMAGE_EXTS))}) under '{root}'")
    if cfg.stream:
        return _folder_stream(cfg, root, files)
    res = cfg.resolution or 64
    decoded, bad = [], []
    for p in files:
        try:
            decoded.append((p, *_open_image(p, cfg.channels)))
        except Exception as e:  # PIL raises many types for broken files; each one is a skip
            bad.append(f"{p.name} ({type(e).__name__})")
    _skipped(bad, files, [p for p, _, _ in decoded], root)
    channels = cfg.channels or (3 if any(colour for _, _, colour in decoded) else 1)
    c, k, class_names = _folder_labels([p for p, _, _ in decoded], root)
    if cfg.crop:  # whole images (the shorter side resized to data.resolution when it is set), cropped on the fly
        images = tuple(_square(im, channels, cfg.resolution, square=False) for _, im, _ in decoded)
        return cropped("folder", images, cfg.crop, c, k, class_names, [p.stem for p, _, _ in decoded])
    x = torch.stack([_square(im, channels, res) for _, im, _ in decoded])
    return Dataset("folder", x, c, k, class_names)


def _skipped(bad: list, files: list, kept: list, root: Path) -> None:
    """One warning for the unreadable files of a folder; none readable at all is an error."""
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image(s) of {len(files)} under '{root}': "
                      + ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""), stacklevel=4)
    if not kept:
        raise GankitError(f"none of the {len(files)} image files under '{root}' could be read")


def _folder_labels(paths: list, root: Path) -> tuple:
    """(labels, number of classes, class names) from the sub-folders, when there are two or more."""
    parents = sorted({p.parent for p in paths})
    if len(parents) < 2:
        return None, 0, ()
    index = {d: i for i, d in enumerate(parents)}
    return (torch.tensor([index[p.parent] for p in paths]), len(parents),
            tuple(str(d.relative_to(root)) for d in parents))


def _folder_stream(cfg: DataConfig, root: Path, files: list) -> Dataset:
    """data.stream: only the files' headers are read now; each batch is decoded as it is drawn, by
    data.workers processes, a few batches ahead (prepared.StreamImages). A header that cannot be read is a
    counted skip; a file that fails later, in its full decode, stops the run with its name."""
    from gankit.prepared import GREY_MODES, StreamImages, read_headers
    if cfg.crop:
        raise GankitError("data.stream decodes whole images to data.resolution; for random crops prepare the "
                          "folder (gankit data prepare --crop random) or train without data.stream")
    heads = read_headers(files)
    kept, modes = [p for p, h in zip(files, heads) if h], [h[0] for h in heads if h]
    _skipped([f"{p.name} (unreadable header)" for p, h in zip(files, heads) if not h], files, kept, root)
    channels = cfg.channels or (3 if any(m not in GREY_MODES for m in modes) else 1)
    c, k, class_names = _folder_labels(kept, root)
    pixels = StreamImages(kept, channels, cfg.resolution or 64, cfg.workers)
    return Dataset("folder", pixels, c, k, class_names)


def _square(im, channels: int, res: int, square: bool = True) -> torch.Tensor:
    """A decoded PIL image -> (C, res, res) uint8: converted to `channels`, resized (shorter side) and
    centre-cropped (`square`); res 0 keeps its size."""
    from torchvision.transforms import functional as TF
    t = TF.pil_to_tensor(im.convert("RGB" if channels == 3 else "L"))  # (C, H, W) uint8
    t = TF.resize(t, res, antialias=True) if res else t
    return TF.center_crop(t, [res, res]) if res and square else t


# --- natural photos, bundled -------------------------------------------------------------------------------
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field",
          "immunohistochemistry", "retina", "china", "flower")
PHOTOS_HELD_OUT = ("chelsea", "coffee", "china")  # a cat's fur, a cup and saucer, a temple among trees


def bundled_photo(name: str) -> np.ndarray:
    """One bundled colour photo, (H, W, 3) uint8: scikit-image's `skimage.data` or scikit-learn's samples."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        return load_sample_image(f"{name}.jpg")
    import skimage.data
    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(skimage.data, name)()


@DATASETS.register("photos")
def photos(cfg: DataConfig) -> Dataset:
    """The 11 colour photos that ship inside scikit-image's wheel (`skimage.data`: astronaut, chelsea, coffee,
    rocket, motorcycle_left/right, hubble_deep_field, immunohistochemistry, retina) and scikit-learn's (china,
    flower), 300-1411 px on a side: offline natural images for super-resolution and inpainting. Image-to-image
    tasks hold out chelsea, coffee and china (`PHOTOS_HELD_OUT`) and train on the other 8. With data.crop the
    photos keep their size (or their shorter side becomes data.resolution) and training draws random crops;
    without it each is resized and centre-cropped to data.resolution (default 256)."""
    try:
        raw = [torch.from_numpy(np.array(bundled_photo(n))).permute(2, 0, 1) for n in PHOTOS]
    except ModuleNotFoundError as e:
        raise GankitError(f"data set 'photos' reads the photos bundled with scikit-image ({e}); "
                          f"pip install scikit-image") from None
    from torchvision.transforms import functional as TF
    test = [PHOTOS.index(n) for n in PHOTOS_HELD_OUT]
    if cfg.crop:
        images = tuple(TF.resize(t, cfg.resolution, antialias=True) if cfg.resolution else t for t in raw)
        return cropped("photos", images, cfg.crop, names=PHOTOS, test=test)
    res = cfg.resolution or 256
    x = torch.stack([TF.center_crop(TF.resize(t, res, antialias=True), [res, res]) for t in raw])
    return Dataset("photos", x, None, names=PHOTOS, test=tuple(test))


def load_images_as(files, channels: int, res: int) -> torch.Tensor:
    """Decoded images (N, C, res, res) in [-1, 1], resized (shorter side) and centre-cropped."""
    out = [_square(_open_image(p, channels)[0], channels, res) for p in files]
    if len({t.shape for t in out}) > 1:
        raise GankitError(f"the images under {Path(files[0]).parent} differ in size; set data.resolution")
    return torch.stack(out).float() / 127.5 - 1


@DATASETS.register("pairs")
def pairs(cfg: DataConfig) -> Dataset:
    """Aligned pairs for translation under `data.root`: folders `A/` and `B/` with matching file names, or
    pix2pix's layout (each file holds A | B side by side). A is the input, B the target; `data.resolution`
    resizes both (default: their own size, which must agree)."""
    from PIL import Image
    root = Path(cfg.root)
    if not root.is_dir():
        raise GankitError(f"data.root '{root}' is not a directory (data.name=pairs needs A/ and B/, or A|B files)")
    listing = lambda d: {p.name: p for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_EXTS}  # noqa: E731
    if (root / "A").is_dir() and (root / "B").is_dir():
        a_files, b_files = listing(root / "A"), listing(root / "B")
        lonely = sorted(set(a_files) ^ set(b_files))
        if lonely:
            side = "A" if lonely[0] in a_files else "B"
            raise GankitError(f"{root / side / lonely[0]} has no partner in {root / ('B' if side == 'A' else 'A')}/ "
                              f"({len(lonely)} unpaired file(s)); give each image the same name on both sides")
        names = sorted(a_files)
        bad = [k for k in names if Image.open(a_files[k]).size != Image.open(b_files[k]).size]
        if bad:
            raise GankitError(f"pair '{bad[0]}' differs in size between A/ and B/ ({len(bad)} pair(s)); "
                              f"give A and B of each pair the same size")
        ch = cfg.channels
        a = load_images_as([a_files[k] for k in names], ch or colour_channels(a_files.values()), cfg.resolution)
        b = load_images_as([b_files[k] for k in names], ch or colour_channels(b_files.values()), cfg.resolution)
    else:
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise GankitError(f"no pairs under '{root}': give folders A/ and B/, or A|B side-by-side image files")
        both = load_images_as(files, cfg.channels or colour_channels(files), 0)
        if both.shape[-1] % 2:
            raise GankitError(f"{files[0]}: an A|B file must have an even width, A and B side by side")
        half = both.shape[-1] // 2
        a, b = both[..., :half], both[..., half:]
        if cfg.resolution:
            size = (cfg.resolution, cfg.resolution)
            a, b = (F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False) for t in (a, b))
    if a.shape[-2:] != b.shape[-2:]:
        raise GankitError(f"inputs are {tuple(a.shape[-2:])} and targets {tuple(b.shape[-2:])}; set data.resolution")
    return Dataset("pairs", b.clamp(-1, 1).contiguous(), None, a=a.clamp(-1, 1).contiguous())


def colour_channels(files) -> int:
    """3 when any of the files is colour, else 1."""
    return 3 if any(_open_image(p, 0)[1] for p in files) else 1


# --- images in, for gankit translate ----------------------------------------------------------------------
def load_images(path: Path, channels: int = 0) -> Tuple[torch.Tensor, list]:
    """An image file, a folder of images, or a .npy array (float32 in [-1, 1] shaped (N, C, H, W), or uint8
    shaped (N, H, W) / (N, H, W, C)) -> ((N, C, H, W) float32 in [-1, 1], names). `channels` 1 or 3
    converts decoded images (0: as they are)."""
    path = Path(path)
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise GankitError(f"cannot read {path} as a numpy array ({e})") from None
        if arr.dtype == np.uint8 and arr.ndim in (3, 4):
            x = from_uint8(arr, np.zeros(len(arr)), path.stem).x
        elif arr.dtype.kind == "f" and arr.ndim == 4:
            x = torch.from_numpy(arr.astype(np.float32))
            if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
                raise GankitError(f"{path}: float images must lie in [-1, 1] (got {float(x.min()):.3g}..{float(x.max()):.3g})")
        else:
            raise GankitError(f"{path}: expected float32 (N, C, H, W) in [-1, 1] or uint8 (N, H, W) / (N, H, W, C), "
                              f"got {arr.dtype} {arr.shape}")
        return x, [f"{i:06d}" for i in range(len(x))]
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    else:
        raise GankitError(f"{path}: no such file or folder")
    if not files:
        raise GankitError(f"no image files under '{path}'")
    return load_images_as(files, channels or colour_channels(files), 0), [p.stem for p in files]
