"""Prepared data sets (prepared.py): a folder decoded once into uint8, trained from in memory or by index
from the file, with the same batches either way; mirrored images; bad input is one line and exit 2."""
import json

import numpy as np
import pytest
import torch

from gankit import checkpoint
from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import Batches, build_dataset
from gankit.prepared import DiskImages, StreamImages
from gankit.registry import GankitError
from gankit.trainer import train

SMALL = ["model.args.g_width=8", "model.args.d_width=8", "train.batch_size=8"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of odd images: mixed sizes, RGBA, 16-bit grey, CMYK and one broken file."""
    from PIL import Image
    root = tmp_path_factory.mktemp("photos")
    (root / "cats").mkdir()
    (root / "dogs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / "cats" / f"c{i:02d}.png")
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "dogs" / f"d{i:02d}.png")
    clear = np.zeros((16, 16, 4), dtype=np.uint8)  # fully transparent: white once flattened
    Image.fromarray(clear, "RGBA").save(root / "cats" / "alpha.png")
    Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16)).save(root / "dogs" / "deep.png")
    Image.fromarray(np.full((16, 16, 3), 40, dtype=np.uint8)).convert("CMYK").save(root / "dogs" / "print.jpg")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    return root


@pytest.fixture(scope="module")
def data(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "d"
    assert main(["data", "prepare", str(folder), "--out", str(out), "--resolution", "16", "--quiet",
                 "--workers", "1"]) == 0
    return out


def test_prepare_reports_and_converts_what_it_finds(data):
    meta = json.loads((data / "dataset.json").read_text())
    assert meta["count"] == 27 and meta["files"] == 28 and meta["shape"] == [3, 16, 16]
    assert meta["class_names"] == ["cats", "dogs"]
    assert meta["skipped"] == ["dogs/broken.png (UnidentifiedImageError)"]
    assert (meta["resized"], meta["alpha"], meta["16-bit"], meta["cmyk"]) == (12, 1, 1, 1)
    images = np.load(data / "images.npy", mmap_mode="r")
    labels = np.load(data / "labels.npy")
    assert images.shape == (27, 3, 16, 16) and images.dtype == np.uint8
    assert labels.tolist() == [0] * 13 + [1] * 14
    assert (images[0] == 255).all()  # cats/alpha.png (sorted before c00..c11): transparent -> white
    assert (images[13 + 12] == 255).all()  # dogs/deep.png: 65535 of 16 bits -> 255
    assert abs(int(images[13 + 13].astype(int).mean()) - 40) <= 3  # dogs/print.jpg, CMYK -> RGB, grey 40


def test_a_file_backed_set_gives_the_batches_of_the_same_set_in_memory(data):
    ram = build_dataset(DataConfig(name="prepared", root=str(data), in_memory=True))
    disk = build_dataset(DataConfig(name="prepared", root=str(data), in_memory=False))
    assert ram.pixels.dtype == torch.uint8 and isinstance(disk.pixels, DiskImages)
    for xflip in (False, True):
        a, b = Batches(ram, 8, "cpu", 3, xflip=xflip), Batches(disk, 8, "cpu", 3, xflip=xflip)
        for _ in range(9):
            (xa, ca), (xb, cb) = next(a), next(b)
            assert torch.equal(xa, xb) and torch.equal(ca, cb)
            assert xa.dtype == torch.float32 and xa.min() >= -1 and xa.max() <= 1
    held = build_dataset(DataConfig(name="prepared", root=str(data), in_memory=False, held_out=2), "held_out")
    assert isinstance(held.pixels, DiskImages) and len(held) == 4
    torch.testing.assert_close(held.x, ram.x[held.pixels.index], rtol=0, atol=0)


def test_a_streamed_folder_gives_the_batches_of_the_prepared_set(folder, data, make_cfg, tmp_path):
    ram = build_dataset(DataConfig(name="prepared", root=str(data), in_memory=True))
    with pytest.warns(UserWarning, match="broken.png"):  # its header is unreadable: a counted skip
        stream = build_dataset(DataConfig(name="folder", root=str(folder), resolution=16, stream=True, workers=2))
    assert isinstance(stream.pixels, StreamImages) and stream.class_names == ram.class_names
    told, prefetch = [], stream.pixels.prefetch
    stream.pixels.prefetch = lambda key: (told.append(tuple(key.tolist())), prefetch(key))
    a, b = Batches(ram, 8, "cpu", 5, xflip=True), Batches(stream, 8, "cpu", 5, xflip=True)
    for _ in range(9):  # past the end of an epoch (27 images x 2 / 8)
        (xa, ca), (xb, cb) = next(a), next(b)
        assert torch.equal(xa, xb) and torch.equal(ca, cb)
    assert len(told) == len(set(told)) == 10  # 6 batches an epoch, each announced once but each epoch's first
    assert 0 < len(stream.pixels._ahead) <= StreamImages.AHEAD  # the next batches are on their way
    run = train(make_cfg("dcgan", *SMALL, "data.name=folder", f"data.root={folder}", "data.resolution=16",
                         "data.stream=true", "data.workers=1", steps=2), quiet=True)
    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == 2
    from PIL import Image  # a file whose header reads but whose pixels are cut off fails with its name
    (tmp_path / "cut").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "cut" / "a.png")
    whole = (tmp_path / "cut" / "a.png").read_bytes()
    (tmp_path / "cut" / "a.png").write_bytes(whole[:len(whole) // 2])
    cut = build_dataset(DataConfig(name="folder", root=str(tmp_path / "cut"), resolution=16, stream=True, workers=1))
    with pytest.raises(GankitError, match="a.png: cannot be decoded"):
        cut.pixels[torch.tensor([0])]


def test_xflip_doubles_the_epoch_with_mirror_images(data):
    ds = build_dataset(DataConfig(name="prepared", root=str(data)))
    n = len(ds)
    batches = Batches(ds, n, "cpu", 0, xflip=True)
    seen = torch.cat([next(batches)[0], next(batches)[0]])  # one epoch: 2n draws
    originals = ds.x
    flat = lambda t: {tuple(r.flatten().tolist()) for r in t}  # noqa: E731
    assert flat(seen) == flat(originals) | flat(originals.flip(-1))
    with pytest.raises(Exception, match="xflip"):
        Batches(build_dataset(DataConfig(name="ring8")), 8, "cpu", 0, xflip=True)


def test_train_from_a_prepared_file_then_resume_bit_exactly(data, make_cfg):
    over = [*SMALL, "data.name=prepared", f"data.root={data}", "data.in_memory=false", "data.xflip=true"]
    straight = train(make_cfg("dcgan", *over, steps=6), quiet=True)
    half = train(make_cfg("dcgan", *over, steps=3), quiet=True)
    resumed = train(make_cfg("dcgan", *over, steps=6), resume=half, quiet=True)
    a = checkpoint.load(straight / "checkpoints" / "last.pt")
    b = checkpoint.load(resumed / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    for part in ("G", "D", "G_ema"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), (part, k)
    rows = [json.loads(line) for line in (straight / "stats.jsonl").read_text().splitlines()]
    shares = [r["time/data_share"] for r in rows if "time/data_share" in r]
    assert len(shares) == 6 and all(0 < v < 1 for v in shares)  # reading from the file takes some of the time
    meta = json.loads((straight / "generator.json").read_text())
    assert meta["img_shape"] == [3, 16, 16] and meta["class_names"] == ["cats", "dogs"]
    # --class takes the folder's class names
    assert main(["sample", str(straight), "--class", "dogs", "--n", "2", "--out", str(straight / "d.png")]) == 0
    assert main(["sample", str(straight), "--class", "1", "--n", "2", "--out", str(straight / "d1.png")]) == 0


def test_bad_prepared_data_is_one_line_and_exit_2(data, folder, tmp_path, capsys):
    import shutil
    run = ["train", "--recipe", "dcgan", "--quiet", "train.steps=1", "train.device=cpu", *SMALL,
           f"out={tmp_path / 'runs'}", "data.name=prepared"]
    cut = tmp_path / "cut"
    shutil.copytree(data, cut)
    with open(cut / "images.npy", "r+b") as f:
        f.truncate(3000)
    changed = tmp_path / "changed"
    shutil.copytree(data, changed)
    with open(changed / "images.npy", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    cases = [(run + [f"data.root={cut}"], "truncated"),
             (run + [f"data.root={changed}"], "do not match the hash"),
             (run + [f"data.root={folder}"], "not a prepared data set"),
             (run + [f"data.root={data}", "data.resolution=32"], "prepared at 16x16"),
             (["data", "prepare", str(folder), "--out", str(tmp_path / "n"), "--resolution", "100"], "not supported"),
             (["data", "prepare", str(folder), "--out", str(data)], "not empty"),
             (["data", "prepare", str(tmp_path / "none"), "--out", str(tmp_path / "m")], "not a folder")]
    for argv, words in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, (argv, err)


def test_class_that_is_not_a_class_is_exit_2(data, make_cfg, capsys):
    run = train(make_cfg("dcgan", *SMALL, "data.name=prepared", f"data.root={data}", steps=1), quiet=True)
    for name in ("birds", "2", "-1"):
        assert main(["sample", str(run), "--class", name]) == 2
        err = capsys.readouterr().err.strip()
        assert "not a class" in err and "cats, dogs" in err


def test_bundled_images_are_held_as_bytes():
    ds = build_dataset(DataConfig(name="mnist-5k"))
    assert ds.pixels.dtype == torch.uint8 and ds.pixels.shape == (5000, 1, 28, 28)
    x = ds.x
    assert x.dtype == torch.float32 and torch.equal(x, ds.pixels.float() / 127.5 - 1)
