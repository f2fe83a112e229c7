"""Prepared data sets: a folder of images decoded once into uint8 NCHW, trained from without decoding again.

`gankit data prepare FOLDER --out DATA` writes DATA/ with:
- ``images.npy``: (N, C, R, R) uint8, a plain numpy array file (uncompressed, so image i lies at a fixed
  offset and any batch is a gather by index; `np.load(..., mmap_mode="r")` opens it too);
- ``labels.npy``: (N,) int64 class indices, when the folder has two or more sub-folders (one class each);
- ``dataset.json``: count, shape, class names, the SHA-256 of the image and label bytes, and the report of
  the preparation (files skipped as unreadable and why, images resized, alpha, 16-bit and CMYK conversions).

Why a .npy and not StyleGAN2-ADA's zip of PNGs or an HDF5 file: a zip of PNGs needs a decode per image per
epoch (DataLoader workers); HDF5 needs h5py; a raw array is read by offset with no decode and no new
dependency, at the cost of disk space (no compression).

`data.name=prepared data.root=DATA` trains from it. The file is read into memory as bytes when it takes at
most MEMORY_SHARE of the memory available (`data.in_memory=auto`); else each batch is read by index from
the file (`DiskImages`, with `os.pread`, so the process's resident memory does not grow with the file).
Either way the batches are the same and the data order is one generator state (data.Batches).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from gankit import hardware
from gankit.config import DataConfig
from gankit.data import DATASETS, Dataset
from gankit.imagefiles import IMAGE_EXTS
from gankit.registry import GankitError

FORMAT = "gankit-prepared/1"
RESOLUTIONS = (8, 16, 28, 32, 64, 128, 256)  # what every image family builds for
CROPS = ("center", "random", "none")
MEMORY_SHARE = 0.25  # data.in_memory=auto: into memory when the images take at most this share of free memory
BACKGROUND = (255, 255, 255)  # transparent pixels are flattened onto white
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
CHUNK = 1 << 24


class DiskImages:
    """(N, C, H, W) uint8 images in a .npy file, read by index: `images[idx]` -> uint8 tensor. Nothing is
    held in memory but the rows asked for. `take(idx)` is the subset `idx` (still on disk)."""

    def __init__(self, path: Path, index: Optional[np.ndarray] = None):
        self.path = Path(path)
        self.offset, shape = npy_layout(self.path)
        self.rows = shape[0]
        self.row_bytes = int(np.prod(shape[1:]))
        self.index = np.arange(self.rows) if index is None else np.asarray(index, dtype=np.int64)
        self.shape = torch.Size((len(self.index), *shape[1:]))
        self.dtype = torch.uint8
        self._fd: Optional[int] = None

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, idx) -> "DiskImages":
        return DiskImages(self.path, self.index[np.asarray(idx, dtype=np.int64)])

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, slice):
            rows = self.index[key]
        else:
            key = key.cpu().numpy() if torch.is_tensor(key) else np.asarray(key)
            rows = self.index[key.astype(np.int64)]
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        flat = out.reshape(len(rows), -1)
        for j, r in enumerate(rows.tolist()):
            view = memoryview(flat[j])
            got = os.preadv(self._fd, [view], self.offset + r * self.row_bytes)
            if got != self.row_bytes:
                raise GankitError(f"{self.path}: image {r} is cut short; the file is truncated (prepare it again)")
        return torch.from_numpy(out)

    def __getstate__(self):
        return {**self.__dict__, "_fd": None}

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


class StreamImages:
    """(N, C, R, R) uint8 images decoded from their files when they are asked for (`data.stream=true`):
    `images[idx]` -> uint8 tensor, with the conversions of `gankit data prepare` (centre crop). `workers`
    processes decode; `prefetch(idx)` starts on a batch that will be asked for (data.Batches announces the
    next few of its epoch), so decoding overlaps the training step. Nothing but the files' names is held."""

    AHEAD = 4  # batches decoded ahead at most

    def __init__(self, files: List[Path], channels: int, resolution: int, workers: int = 0,
                 index: Optional[np.ndarray] = None):
        self.files, self.channels, self.resolution = list(files), channels, resolution
        self.workers = workers or min(hardware.cores(), 8)
        self.index = np.arange(len(self.files)) if index is None else np.asarray(index, dtype=np.int64)
        self.shape = torch.Size((len(self.index), channels, resolution, resolution))
        self.dtype = torch.uint8
        self._pool: Optional[ProcessPoolExecutor] = None
        self._ahead: Dict[bytes, list] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, idx) -> "StreamImages":
        return StreamImages(self.files, self.channels, self.resolution, self.workers,
                            self.index[np.asarray(idx, dtype=np.int64)])

    def _rows(self, key) -> np.ndarray:
        if isinstance(key, slice):
            return self.index[key]
        key = key.cpu().numpy() if torch.is_tensor(key) else np.asarray(key)
        return self.index[key.astype(np.int64)]

    def _submit(self, rows: np.ndarray) -> list:
        """The decoding of `rows`, split over the workers: a list of futures of (n_i, C, R, R) arrays."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers)
        jobs = [(self.files[r], self.channels, self.resolution, "center", int(r)) for r in rows.tolist()]
        size = -(-len(jobs) // self.workers)
        return [self._pool.submit(_decode_all, jobs[i:i + size]) for i in range(0, len(jobs), size)]

    def prefetch(self, key) -> None:
        rows = self._rows(key)
        if rows.tobytes() not in self._ahead:
            while len(self._ahead) >= self.AHEAD:  # oldest first: an announced batch that never came
                self._ahead.pop(next(iter(self._ahead)))
            self._ahead[rows.tobytes()] = self._submit(rows)

    def __getitem__(self, key) -> torch.Tensor:
        rows = self._rows(key)
        futures = self._ahead.pop(rows.tobytes(), None) or self._submit(rows)
        parts = [f.result() for f in futures]
        return torch.from_numpy(np.concatenate(parts) if parts else
                                np.empty((0, *self.shape[1:]), dtype=np.uint8))

    def __getstate__(self):
        return {**self.__dict__, "_pool": None, "_ahead": {}}

    def __del__(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _decode_all(jobs: list) -> np.ndarray:
    """Decode files in a worker process; a file that fails to decode is a one-line error naming it."""
    out = []
    for job in jobs:
        arr, notes = _decode(job)
        if arr is None:
            raise GankitError(f"{job[0]}: cannot be decoded ({notes}); `gankit data prepare` skips such files "
                              f"and lists them")
        out.append(arr)
    return np.stack(out)


def npy_layout(path: Path) -> Tuple[int, Tuple[int, ...]]:
    """(byte offset of the data, shape) of a uint8 C-order .npy file; anything else is a one-line error."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except (OSError, ValueError) as e:
        raise GankitError(f"{path}: not a readable numpy array file ({e}); prepare the data again") from None
    if dtype != np.uint8 or fortran or len(shape) != 4:
        raise GankitError(f"{path}: expected (N, C, H, W) uint8 images, got {dtype} {shape}")
    return offset, tuple(shape)


def _sha256(paths: List[Path], offsets: List[int], into: Optional[np.ndarray] = None) -> str:
    """SHA-256 of the bytes of each file from its offset on, read in chunks (optionally copied `into` a
    flat uint8 buffer as they pass: the images read into memory and checked in one pass)."""
    h, pos = hashlib.sha256(), 0
    for path, offset in zip(paths, offsets):
        with open(path, "rb") as f:
            f.seek(offset)
            while chunk := f.read(CHUNK):
                h.update(chunk)
                if into is not None and path == paths[0]:
                    into[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
                    pos += len(chunk)
    return h.hexdigest()


# --- reading --------------------------------------------------------------------------------------------
def read_meta(root: Path) -> Dict:
    meta_path = Path(root) / "dataset.json"
    if not meta_path.is_file():
        raise GankitError(f"'{root}' is not a prepared data set (no dataset.json); make one with "
                          f"gankit data prepare FOLDER --out {root}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise GankitError(f"{meta_path}: not valid JSON ({e}); prepare the data again") from None
    if meta.get("format") != FORMAT:
        raise GankitError(f"{meta_path}: format '{meta.get('format')}' is not {FORMAT}; prepare the data again")
    return meta


@DATASETS.register("prepared")
def prepared(cfg: DataConfig) -> Dataset:
    """A data set made by `gankit data prepare` (this module) under `data.root`: checked against its
    dataset.json (size and SHA-256), then held in memory as bytes or read by index from the file."""
    root = Path(cfg.root)
    meta = read_meta(root)
    images = root / "images.npy"
    offset, shape = npy_layout(images)
    count, want = int(meta["count"]), tuple(meta["shape"])
    if shape != (count, *want):
        raise GankitError(f"{images} holds {shape}, but dataset.json says ({count}, {', '.join(map(str, want))}); "
                          f"prepare the data again")
    nbytes = count * int(np.prod(want))
    if images.stat().st_size < offset + nbytes:
        raise GankitError(f"{images} is truncated ({images.stat().st_size - offset:,} of {nbytes:,} image bytes); "
                          f"prepare the data again")
    if cfg.resolution and cfg.resolution != want[-1]:
        raise GankitError(f"'{root}' is prepared at {want[-1]}x{want[-1]}, not data.resolution={cfg.resolution}; "
                          f"prepare it again with --resolution {cfg.resolution} (or drop data.resolution)")
    if cfg.crop:
        raise GankitError(f"data.crop does not apply to a prepared data set (its images are {want[-1]}x{want[-1]}); "
                          f"prepare it with --crop random, or train on data.name=folder data.crop={cfg.crop}")
    labels_path = root / "labels.npy"
    files, offsets = [images], [offset]
    if meta.get("class_names"):
        files.append(labels_path)
        offsets.append(0)
    in_memory = cfg.in_memory if cfg.in_memory != "auto" else nbytes <= MEMORY_SHARE * hardware.available_memory()
    buffer = np.empty(nbytes, dtype=np.uint8) if in_memory else None
    if _sha256(files, offsets, buffer) != meta["sha256"]:
        raise GankitError(f"'{root}': the images or labels do not match the hash in dataset.json (changed or "
                          f"damaged since they were prepared); prepare the data again")
    pixels = torch.from_numpy(buffer.reshape(count, *want)) if in_memory else DiskImages(images)
    c, names = None, tuple(meta.get("class_names") or ())
    if names:
        c = torch.from_numpy(np.load(labels_path, allow_pickle=False).astype(np.int64))
    return Dataset("prepared", pixels, c, len(names), names)


# --- writing --------------------------------------------------------------------------------------------
def _header(f, count: int, shape: Tuple[int, ...]) -> int:
    np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (count, *shape)})
    return f.tell()


def read_headers(files: List[Path]) -> List[Optional[Tuple[str, int]]]:
    """(mode, shorter side) of each file from its header alone, without decoding it; None if unreadable."""
    from PIL import Image
    out: List[Optional[Tuple[str, int]]] = []
    for p in files:
        try:
            with Image.open(p) as im:
                out.append((im.mode, min(im.size)))
        except Exception:  # PIL raises many types for broken files
            out.append(None)
    return out


def _decode(job) -> tuple:
    """One file -> ((C, R, R) uint8 array, notes) or (None, 'reason'). Runs in worker processes."""
    path, channels, res, crop, seed = job
    from PIL import Image
    from torchvision.transforms import functional as TF
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit: scaled to 8 bits
                    arr = np.asarray(im, dtype=np.float64)
                    peak = 65535.0 if arr.max() > 255 else 255.0
                    im = Image.fromarray((arr * (255.0 / peak)).round().clip(0, 255).astype(np.uint8), "L")
                    notes.append("16-bit")
                elif im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    rgba = im.convert("RGBA")
                    im = Image.alpha_composite(Image.new("RGBA", rgba.size, (*BACKGROUND, 255)), rgba)
                    notes.append("alpha")
                elif im.mode == "CMYK":
                    notes.append("cmyk")
                im = im.convert("RGB" if channels == 3 else "L")
    except Exception as e:  # PIL raises many types for broken files; each one is a counted skip
        return None, type(e).__name__
    t = TF.pil_to_tensor(im)
    if tuple(t.shape[-2:]) != (res, res):
        notes.append("resized")
    if crop == "none":
        t = TF.resize(t, [res, res], antialias=True)
    else:
        t = TF.resize(t, res, antialias=True)
        if crop == "center":
            t = TF.center_crop(t, [res, res])
        else:  # a random square, from a stream seeded by the file's position
            g = np.random.default_rng(seed)
            top, left = (int(g.integers(0, s - res + 1)) for s in t.shape[-2:])
            t = t[:, top:top + res, left:left + res]
    return t.numpy(), notes


def prepare(folder: Path, out: Path, resolution: int = 0, crop: str = "center", channels: int = 0,
            workers: int = 0, progress: bool = True) -> Dict:
    """Decode every image under `folder` once into `out` (see the module docstring) and return its
    dataset.json. resolution 0 = the largest of RESOLUTIONS at most the images' median shorter side."""
    from tqdm import tqdm
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise GankitError(f"'{folder}' is not a folder of images")
    if crop not in CROPS:
        raise GankitError(f"--crop {crop}: choose from {', '.join(CROPS)}")
    if resolution and resolution not in RESOLUTIONS:
        raise GankitError(f"--resolution {resolution} is not supported; choose from {', '.join(map(str, RESOLUTIONS))}")
    if channels not in (0, 1, 3):
        raise GankitError(f"--channels {channels}: use 1 (grey), 3 (colour) or 0 (colour if any image is)")
    if out.exists() and any(out.iterdir()):
        raise GankitError(f"'{out}' exists and is not empty; give a new --out")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise GankitError(f"no image files ({', '.join(sorted(IMAGE_EXTS))}) under '{folder}'")
    t0 = time.perf_counter()
    heads = read_headers(files)
    modes = [h[0] if h else "" for h in heads]  # an unreadable header is counted when the decode fails below
    sides = [h[1] for h in heads if h]
    channels = channels or (3 if any(m and m not in GREY_MODES for m in modes) else 1)
    if not resolution:
        side = int(np.median(sides)) if sides else RESOLUTIONS[0]
        resolution = max([r for r in RESOLUTIONS if r <= side] or [RESOLUTIONS[0]])
    shape = (channels, resolution, resolution)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(p, channels, resolution, crop, i) for i, p in enumerate(files)]
    workers = workers or min(hardware.cores(), 8)
    kept, skipped, counts = [], [], {"resized": 0, "alpha": 0, "16-bit": 0, "cmyk": 0}
    h = hashlib.sha256()
    images = out / "images.npy"
    with open(images, "wb") as f:
        offset = _header(f, len(files), shape)
        pool = ProcessPoolExecutor(workers) if workers > 1 else None
        results = pool.map(_decode, jobs, chunksize=32) if pool else map(_decode, jobs)
        try:
            for p, (arr, notes) in tqdm(zip(files, results), total=len(files), desc="prepare", unit="img",
                                        disable=not progress):
                if arr is None:
                    skipped.append(f"{p.relative_to(folder)} ({notes})")
                    continue
                data = arr.tobytes()
                f.write(data)
                h.update(data)
                kept.append(p)
                for note in notes:
                    counts[note] += 1
        finally:
            if pool:
                pool.shutdown()
    if not kept:
        raise GankitError(f"none of the {len(files)} image files under '{folder}' could be read")
    if len(kept) < len(files):  # rewrite the header with the count kept (same length, or move the data)
        _fix_count(images, offset, len(kept), shape)
    parents = sorted({p.parent for p in kept})
    class_names = [str(d.relative_to(folder)) for d in parents] if len(parents) > 1 else []
    if class_names:
        index = {d: i for i, d in enumerate(parents)}
        labels = np.array([index[p.parent] for p in kept], dtype=np.int64)
        np.save(out / "labels.npy", labels)
        h.update(open(out / "labels.npy", "rb").read())
    seconds = time.perf_counter() - t0
    meta = {"format": FORMAT, "count": len(kept), "shape": list(shape), "class_names": class_names,
            "sha256": h.hexdigest(), "source": str(folder.resolve()), "crop": crop,
            "background": list(BACKGROUND), "files": len(files), "skipped": skipped, **counts,
            "seconds": round(seconds, 2), "images_per_s": round(len(files) / seconds, 1)}
    (out / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _fix_count(images: Path, offset: int, count: int, shape: Tuple[int, ...]) -> None:
    import io
    buf = io.BytesIO()
    if _header(buf, count, shape) == offset:
        with open(images, "r+b") as f:
            f.write(buf.getvalue())
        return
    tmp = images.with_suffix(".tmp")  # the header changed length: copy the data behind the new one
    with open(images, "rb") as src, open(tmp, "wb") as dst:
        dst.write(buf.getvalue())
        src.seek(offset)
        while chunk := src.read(CHUNK):
            dst.write(chunk)
    tmp.replace(images)


def describe(meta: Dict, out: Path) -> str:
    """The report of a preparation, as `gankit data prepare` prints it."""
    c, r = meta["shape"][0], meta["shape"][-1]
    lines = [f"prepared {meta['count']:,} of {meta['files']:,} images ({c}x{r}x{r}"
             + (f", {len(meta['class_names'])} classes" if meta["class_names"] else ", no labels")
             + f") in {meta['seconds']:.1f} s ({meta['images_per_s']:,.0f} images/s) -> {out}"]
    if meta["skipped"]:
        lines.append(f"skipped {len(meta['skipped'])} unreadable: " + ", ".join(meta["skipped"][:10])
                     + (" ..." if len(meta["skipped"]) > 10 else "") + " (all listed in dataset.json)")
    notes = [f"{meta['resized']:,} resized to {r}x{r} ({meta['crop']} crop)" if meta["resized"] else "",
             f"{meta['alpha']:,} with alpha flattened onto white" if meta["alpha"] else "",
             f"{meta['16-bit']:,} converted from 16 bits" if meta["16-bit"] else "",
             f"{meta['cmyk']:,} converted from CMYK" if meta["cmyk"] else ""]
    if any(notes):
        lines.append("; ".join(n for n in notes if n))
    lines.append(f"train on it: gankit train data.name=prepared data.root={out}")
    return "\n".join(lines)
