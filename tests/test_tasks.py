"""Image-to-image tasks: contracts of the translator nets, exact reconstruction losses, each task's input
derivation on hand-made images, short trainings that beat their trivial baselines on held-out digits,
`gankit translate` round trips, bit-exact resume of a pix2pix run, and the one-line errors."""
import json

import numpy as np
import pytest
import torch

import gankit
from gankit import checkpoint
from gankit.cli import main
from gankit.config import DataConfig, TaskConfig
from gankit.data import DATASETS, build_dataset
from gankit.distributed import SharedNoise, World
from gankit.evaluate import translation_scores
from gankit.nets import build_translator
from gankit.nets.img2img import TRANSLATORS
from gankit.registry import GankitError
from gankit.tasks import TASKS, Inpaint, SuperResolution, Translate, downscale, edges, holes, reconstruction
from gankit.trainer import train

SMALL = ["model.args.g_width=8", "model.args.d_width=8", "train.batch_size=16"]
SIDES = [8, 16, 28, 32, 64]


def noise(seed=0):
    return SharedNoise(torch.Generator().manual_seed(seed), World())


# --- nets -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", TRANSLATORS.names())
@pytest.mark.parametrize("side", SIDES)
def test_translator_contract(family, side):
    torch.manual_seed(0)
    if family == "srresnet":
        in_shape, out_shape, d_shape, args = (3, side // 4, side // 4), (3, side, side), (3, side, side), {"blocks": 2}
    elif family == "cyclegan":
        in_shape, out_shape, d_shape, args = (2, side, side), (1, side, side), (1, side, side), {"blocks": 1}
    elif family == "cut":  # G reads its output with its own encoder: one shape in and out
        in_shape, out_shape, d_shape, args = (3, side, side), (3, side, side), (3, side, side), {"blocks": 1}
    else:
        in_shape, out_shape, d_shape, args = (2, side, side), (1, side, side), (3, side, side), {}
    G, D = build_translator(family, in_shape, out_shape, d_shape, {"g_width": 8, "d_width": 8, **args})
    assert tuple(G.in_shape) == in_shape and tuple(G.img_shape) == out_shape and G.z_dim == 0 == G.c_dim
    x = torch.rand(4, *in_shape) * 2 - 1
    y = G(x)
    assert y.shape == (4, *out_shape) and y.min() >= -1 and y.max() <= 1
    judged = torch.cat([x, y], 1) if family == "pix2pix" else y
    logits = D(judged)
    assert logits.dim() == 2 and logits.shape[0] == 4 and logits.shape[1] >= 1
    heads = 0  # cut: its patch heads work in the training pass only
    if family == "cut":
        heads = sum(t.sum() for t in G(x, patches=torch.rand(4, len(G.taps), side * side))[1])
    (logits.sum() + y.sum() + heads).backward()
    for name, p in list(G.named_parameters()) + list(D.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    G2, D2 = build_translator(family, in_shape, out_shape, d_shape, {"g_width": 8, "d_width": 8, **args})
    G2.load_state_dict(G.state_dict()), D2.load_state_dict(D.state_dict())
    for net in (G, G2, D, D2):
        net.eval()
    torch.testing.assert_close(G2(x), G(x))
    torch.testing.assert_close(D2(judged.detach()), D(judged.detach()))


def test_patchgan_is_still_a_patch_judge_on_small_images():
    for side in (28, 32, 64, 256):
        _, D = build_translator("pix2pix", (1, side, side), (1, side, side), (2, side, side), {"d_width": 8})
        assert D(torch.zeros(1, 2, side, side)).shape[1] > 1, side  # many patches, not one global logit


def test_noise_families_and_translators_do_not_mix():
    with pytest.raises(GankitError, match="maps noise to images"):
        build_translator("dcgan", (1, 28, 28), (1, 28, 28), (2, 28, 28), {})
    with pytest.raises(GankitError, match="unknown config key 'model.args.nope'"):
        build_translator("pix2pix", (1, 28, 28), (1, 28, 28), (2, 28, 28), {"nope": 1})


# --- losses and derivations -------------------------------------------------------------------------------------
def test_reconstruction_losses_have_exact_values():
    fake = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]]])
    real = torch.tensor([[[[0.0, -1.0], [0.0, 0.0]]]])
    terms = reconstruction(TaskConfig(l1=100.0, l2=2.0), fake, real)
    torch.testing.assert_close(terms["l1"], torch.tensor(100.0 * 1.5 / 4))
    torch.testing.assert_close(terms["l2"], torch.tensor(2.0 * 1.25 / 4))
    hole = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])  # only the left column counts
    torch.testing.assert_close(reconstruction(TaskConfig(l1=1.0), fake, real, hole)["l1"], torch.tensor(0.75))
    # two images, holes of 1 and 3 pixels, errors 1 and 0: the mean of the images' means (the same however the
    # batch is split over processes), not the pooled 1/4
    two_fake, two_real = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]]), torch.zeros(2, 1, 2, 2)
    two_holes = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 0.0]]]])
    torch.testing.assert_close(reconstruction(TaskConfig(l1=1.0), two_fake, two_real, two_holes)["l1"],
                               torch.tensor(0.5))
    assert reconstruction(TaskConfig(), fake, real) == {}


def test_psnr_is_torchmetrics_per_image_and_an_exact_match_scores_its_ceiling():
    from torchmetrics.functional.image import peak_signal_noise_ratio
    from gankit.evaluate import PSNR_MAX, translation_scores
    torch.manual_seed(0)
    target = torch.rand(3, 1, 8, 8) * 2 - 1
    fake = (target + 0.1 * torch.randn_like(target)).clamp(-1, 1)
    want = peak_signal_noise_ratio(fake, target, data_range=2.0, reduction="none", dim=(1, 2, 3)).mean()
    assert translation_scores(fake, target)["psnr"] == pytest.approx(float(want), rel=1e-5)
    assert translation_scores(target, target)["psnr"] == pytest.approx(PSNR_MAX) == pytest.approx(58.92, abs=0.01)
    both = torch.cat([fake[:1], target[1:2]]), target[:2]  # one exact image no longer makes the mean infinite
    got = translation_scores(*both)["psnr"]
    assert got == pytest.approx((float(peak_signal_noise_ratio(fake[:1], target[:1], data_range=2.0)) + PSNR_MAX) / 2,
                                rel=1e-5)


def test_edges_of_a_hand_made_square():
    x = -torch.ones(1, 1, 8, 8)
    x[..., 2:6, 2:6] = 1.0  # a white square on black
    e = edges(x)
    assert e.shape == (1, 1, 8, 8)
    assert torch.all(e[..., 0, :] == -1) and torch.all(e[..., 3:5, 3:5] == -1)  # flat regions: no edge
    assert torch.all(e[..., 2, 3:5] == 1) and torch.all(e[..., 1, 3:5] == 1)  # both sides of the border


def test_downscale_is_the_antialiased_bicubic_of_the_spec():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    want = torch.nn.functional.interpolate(x, scale_factor=0.25, mode="bicubic", antialias=True,
                                           align_corners=False).clamp(-1, 1)
    torch.testing.assert_close(downscale(x, 4), want)
    assert downscale(torch.full((1, 1, 8, 8), 0.5), 4).allclose(torch.tensor(0.5))


def test_holes_follow_their_distribution():
    m = holes(4000, 28, noise(), "cpu")
    assert m.shape == (4000, 1, 28, 28) and set(m.unique().tolist()) <= {0.0, 1.0}
    centre = torch.zeros(28, 28)
    centre[7:21, 7:21] = 1
    is_centre = (m[:, 0] == centre).flatten(1).all(1)
    assert 0.2 < is_centre.float().mean() < 0.3  # a quarter are Context Encoders' centre square
    area = m[~is_centre].mean((1, 2, 3))
    assert area.min() >= 0.25 ** 2 * 0.8 and area.max() <= 2 * 0.6 ** 2  # one or two rectangles of 25-60% sides
    torch.testing.assert_close(holes(10, 28, noise(3), "cpu"), holes(10, 28, noise(3), "cpu"))  # seeded


def test_each_task_derives_its_inputs_from_a_hand_made_image():
    x = -torch.ones(1, 1, 8, 8)
    x[..., 2:6, 2:6] = 1.0
    sr = SuperResolution(TaskConfig(name="sr", scale=4), (1, 8, 8))
    assert sr.inputs(x, noise())["input"].shape == (1, 1, 2, 2) and sr.in_shape() == (1, 2, 2)
    tr = Translate(TaskConfig(name="translate", input="edges"), (1, 8, 8))
    torch.testing.assert_close(tr.inputs(x, noise())["input"], edges(x))
    assert tr.d_shape() == (2, 8, 8)
    inp = Inpaint(TaskConfig(name="inpaint"), (1, 8, 8))
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    got = inp.inputs(x, noise(), mask)
    assert got["input"].shape == (1, 2, 8, 8) and torch.equal(got["input"][:, 1:], mask)
    assert torch.all(got["input"][:, :1][mask.bool()] == 0) and torch.equal(got["input"][:, :1][~mask.bool()], x[~mask.bool()])
    composed = inp.generate(lambda a: torch.full((1, 1, 8, 8), 0.3), {**got, "real": x}, noise())
    assert torch.all(composed[mask.bool()] == 0.3) and torch.equal(composed[~mask.bool()], x[~mask.bool()])
    assert inp.d_shape() == (1, 8, 8) and inp.d_inputs({**got, "real": x}, composed)[1] is composed
    told = Inpaint(TaskConfig(name="inpaint", d_mask=True), (1, 8, 8))  # D sees the mask beside the image
    real_d, fake_d = told.d_inputs({**got, "real": x}, composed)
    assert told.d_shape() == (2, 8, 8) == real_d.shape[1:] == fake_d.shape[1:]
    assert torch.equal(real_d, torch.cat([x, mask], 1)) and torch.equal(fake_d, torch.cat([composed, mask], 1))


def test_every_task_is_registered():
    assert set(TASKS.names()) == {"noise", "translate", "sr", "inpaint", "cycle", "cut"}


# --- training that can fail -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each bundled task trained briefly (on 2 cores: about half a minute each)."""
    out = tmp_path_factory.mktemp("img2img")
    common = ["train.log_every=50", "train.sample_every=1000", "train.ckpt_every=1000", "train.device=cpu",
              f"out={out}"]
    runs = {}
    for recipe, over in (("pix2pix-edges", ["train.steps=300"]),
                         ("srgan-x4", ["train.steps=300", "task.pretrain_steps=200"]),
                         ("inpaint", ["train.steps=300"])):
        runs[recipe] = train(gankit.load_config(recipe, overrides=[*common, *over]), quiet=True)
    return runs


def _held_out(run):
    G = gankit.load(run)
    ds = build_dataset(DataConfig())
    return G, G.task.split(ds)[1]


def test_short_pix2pix_beats_its_input_and_the_mean_digit(trained):
    G, held = _held_out(trained["pix2pix-edges"])
    from gankit.tasks import translate
    fake = translate(G, G.task, held.x, from_targets=True)[0]
    l1 = (fake - held.x).abs().mean()
    mean_digit = held.x.mean(0, keepdim=True).expand_as(held.x)
    assert l1 < (edges(held.x) - held.x).abs().mean() and l1 < (mean_digit - held.x).abs().mean()


def test_short_srgan_beats_bicubic_upsampling(trained):
    G, held = _held_out(trained["srgan-x4"])
    from gankit.tasks import translate
    fake = translate(G, G.task, held.x, from_targets=True)[0]
    bicubic = torch.nn.functional.interpolate(downscale(held.x, 4), scale_factor=4, mode="bicubic",
                                              align_corners=False).clamp(-1, 1)
    assert translation_scores(fake, held.x)["psnr"] > translation_scores(bicubic, held.x)["psnr"] + 1.0


def test_short_inpainting_beats_a_mean_fill(trained):
    G, held = _held_out(trained["inpaint"])
    from gankit.tasks import translate
    fake, _, m = translate(G, G.task, held.x, seed=1)
    known = 1 - m
    fill = (held.x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)  # each image's mean
    mean_fill = m * fill + known * held.x
    err = lambda y: ((y - held.x).abs() * m).sum() / m.sum()  # noqa: E731
    assert err(fake) < 0.9 * err(mean_fill)


def test_run_directory_of_a_translation_run(trained):
    run = trained["pix2pix-edges"]
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert {"loss/d", "loss/g", "loss/g_l1"} <= set(rows[-1])
    for name in ("progress.gif", "losses.png", "generator.safetensors", "samples/step_000300.png"):
        assert (run / name).is_file(), name
    G = gankit.load(run)
    assert isinstance(G.task, Translate) and G.task.cfg.input == "edges"


def test_eval_reports_the_task_metrics(trained, capsys):
    assert main(["eval", str(trained["inpaint"]), "--device", "cpu"]) == 0
    got = json.loads((trained["inpaint"] / "eval.json").read_text())
    for key in ("psnr", "ssim", "l1", "fid", "accuracy", "centre_psnr", "centre_accuracy"):
        assert key in got, key
    assert got["n"] == 500 and 0 <= got["accuracy"] <= 1


def test_eval_scores_other_targets_given_as_test_data(trained, tmp_path, capsys):
    """--test-data: the run's held-out digits, written as MNIST's test files, score what the held-out split
    scores (eval-mnist-test.json); images of another shape are refused in one line."""
    import gzip
    run = trained["inpaint"]
    _, held = _held_out(run)
    digits, n = ((held.x[:, 0] + 1) * 127.5).round().to(torch.uint8).numpy(), len(held)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(k.to_bytes(4, "big") for k in (n, 28, 28)) + digits.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") +
                                                      bytes(held.c.tolist()))
    assert main(["eval", str(run), "--device", "cpu"]) == 0
    assert main(["eval", str(run), "--device", "cpu", "--test-data", "mnist-test", "--test-root", str(tmp_path)]) == 0
    base = json.loads((run / "eval.json").read_text())
    got = json.loads((run / "eval-mnist-test.json").read_text())
    assert got.keys() == base.keys() and got["n"] == n and "accuracy" in got
    for key in base:
        assert got[key] == pytest.approx(base[key], rel=1e-6), key
    capsys.readouterr()
    assert main(["eval", str(run), "--device", "cpu", "--test-data", "digits"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds images of shape (1, 8, 8)" in err


def test_super_resolution_on_crops_of_photos_is_scored_on_whole_held_out_photos(tmp_path, capsys):
    """photos-x4 at a small size: random crops of 8 photos (shorter side 96) train G, and eval scores each of
    the 3 held-out photos whole. G starts as the bilinear upsampling; 80 steps of L1 must beat it on each."""
    pytest.importorskip("skimage")
    over = ["data.resolution=96", "data.crop=32", "model.args.g_width=16", "model.args.blocks=2",
            "train.batch_size=8", "train.steps=80", "task.pretrain_steps=80", "train.lr_g=1e-3",
            "train.sample_every=1000", "train.ckpt_every=1000", "train.device=cpu", f"out={tmp_path}"]
    run = train(gankit.load_config("photos-x4", overrides=over), quiet=True)
    assert main(["eval", str(run), "--device", "cpu"]) == 0
    got = json.loads((run / "eval.json").read_text())
    G = gankit.load(run)
    held = G.task.split(build_dataset(DataConfig(name="photos", resolution=96, crop=32)))[1]
    from gankit.evaluate import whole_images
    for name, x in whole_images(G.task, held):
        assert x.shape[-2] == 96 and x.shape[-1] % 4 == 0 and x.shape[-1] > 96  # whole, not a crop
        bilinear = torch.nn.functional.interpolate(downscale(x, 4), scale_factor=4, mode="bilinear",
                                                   align_corners=False).clamp(-1, 1)
        assert got[f"psnr/{name}"] > translation_scores(bilinear, x)["psnr"] + 0.1, name
    assert got["n"] == 3 and "fid" not in got


def test_super_resolution_and_inpainting_train_on_a_folder_of_photos_of_any_size(tmp_path, capsys):
    from PIL import Image
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for k, (h, w) in enumerate([(40, 52), (33, 64), (48, 48), (70, 36), (44, 41)] * 2):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"p{k}.png")
    common = ["--out", str(tmp_path / "runs"), "--quiet", "data.name=folder", f"data.root={tmp_path / 'photos'}",
              "data.crop=32", *SMALL, "train.steps=3", "train.sample_every=1000", "train.device=cpu"]
    assert main(["train", "--recipe", "srgan-x4", *common, "model.args.blocks=1", "task.pretrain_steps=1"]) == 0
    assert main(["train", "--recipe", "inpaint", *common]) == 0
    sr, inpaint = sorted((tmp_path / "runs").iterdir())
    assert gankit.load(sr).task.img_shape == (3, 32, 32) == gankit.load(inpaint).task.img_shape
    # super-resolution takes a whole photo of any size; inpainting the crop size it trained on
    assert main(["translate", str(sr), str(tmp_path / "photos" / "p1.png"), "--out", str(tmp_path / "big.npy")]) == 0
    assert np.load(tmp_path / "big.npy").shape == (1, 3, 132, 256)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "one.png")
    assert main(["translate", str(inpaint), str(tmp_path / "one.png"), "--out", str(tmp_path / "filled.npy")]) == 0
    assert np.load(tmp_path / "filled.npy").shape == (1, 3, 32, 32)
    capsys.readouterr()
    assert main(["train", "--recipe", "inpaint", *common, "data.crop=36"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.crop=36 is larger than the smallest image" in err and "p1: 33x64" in err


# --- gankit translate -----------------------------------------------------------------------------------------
def test_translate_round_trips_file_folder_and_npy(trained, tmp_path):
    from PIL import Image
    run = trained["pix2pix-edges"]
    digits = build_dataset(DataConfig()).x[:3]
    u8 = ((edges(digits)[:, 0] + 1) * 127.5).round().byte().numpy()  # (3, 28, 28) uint8 edge maps
    np.save(tmp_path / "in.npy", u8)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(u8):
        Image.fromarray(img).save(folder / f"e{i}.png")
    assert main(["translate", str(run), str(tmp_path / "in.npy"), "--out", str(tmp_path / "a.npy")]) == 0
    assert main(["translate", str(run), str(folder), "--out", str(tmp_path / "b")]) == 0
    assert main(["translate", str(run), str(folder / "e1.png"), "--out", str(tmp_path / "c.npy")]) == 0
    assert main(["translate", str(run), str(tmp_path / "in.npy"), "--out", str(tmp_path / "grid.png")]) == 0
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (3, 1, 28, 28) and a.dtype == np.float32 and a.min() >= -1 and a.max() <= 1
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["e0.png", "e1.png", "e2.png"]
    np.testing.assert_allclose(np.load(tmp_path / "c.npy")[0], a[1], atol=1e-5)  # the same image, any route
    assert (tmp_path / "grid.png").is_file()


def test_translate_from_targets_derives_inputs_as_training_does(trained, tmp_path):
    digits = build_dataset(DataConfig()).x[:4]
    np.save(tmp_path / "t.npy", digits.numpy())
    run = trained["inpaint"]
    assert main(["translate", str(run), str(tmp_path / "t.npy"), "--out", str(tmp_path / "o.npy"), "--from-targets",
                 "--save-inputs", str(tmp_path / "i.npy"), "--save-masks", str(tmp_path / "m.npy"), "--seed", "3"]) == 0
    m = np.load(tmp_path / "m.npy")
    torch.testing.assert_close(torch.from_numpy(m), holes(4, 28, noise(3), "cpu"))
    inputs = np.load(tmp_path / "i.npy")
    assert inputs.shape == (4, 2, 28, 28) and np.array_equal(inputs[:, 1:], m)
    out = np.load(tmp_path / "o.npy")
    np.testing.assert_allclose(out * (1 - m), digits.numpy() * (1 - m), atol=1e-6)  # known pixels kept
    assert main(["translate", str(run), str(tmp_path / "t.npy"), "--out", str(tmp_path / "o2.npy"),
                 "--mask", str(tmp_path / "m.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "o2.npy"), out, atol=1e-5)  # the same holes given back


def test_translate_and_sample_refuse_the_wrong_runs(trained, tmp_path, capsys):
    np.save(tmp_path / "rgb.npy", np.zeros((2, 28, 28, 3), np.uint8))
    np.save(tmp_path / "bad_mask.npy", np.zeros((2, 14, 14), np.float32))
    np.save(tmp_path / "two.npy", np.zeros((2, 28, 28), np.uint8))
    cases = [
        (["sample", str(trained["pix2pix-edges"])], "no latent to sample"),
        (["translate", str(trained["pix2pix-edges"]), str(tmp_path / "rgb.npy"), "--out", str(tmp_path / "x.npy")],
         "3 channel"),
        (["translate", str(trained["inpaint"]), str(tmp_path / "two.npy"), "--out", str(tmp_path / "x.npy"),
          "--mask", str(tmp_path / "bad_mask.npy")], "--mask"),
    ]
    for argv, words in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_translate_refuses_a_noise_to_image_run(make_cfg, tmp_path, capsys):
    run = train(make_cfg("dcgan", *SMALL, steps=1), quiet=True)
    np.save(tmp_path / "two.npy", np.zeros((2, 28, 28), np.uint8))
    assert main(["translate", str(run), str(tmp_path / "two.npy"), "--out", str(tmp_path / "x.npy")]) == 2
    assert "use gankit sample" in capsys.readouterr().err


# --- resume, pairs and bad input --------------------------------------------------------------------------------
def test_pix2pix_resume_is_bit_exact(make_cfg):
    """Dropout (G's noise) and the data order continue exactly; no lr decay, whose end the step count sets."""
    over = [*SMALL, "train.ckpt_every=3", "train.lr_decay=none"]
    straight = train(make_cfg("pix2pix-edges", *over, steps=6), quiet=True)
    half = train(make_cfg("pix2pix-edges", *over, steps=3), quiet=True)
    resumed = train(make_cfg("pix2pix-edges", *over, steps=6), resume=half, quiet=True)
    a, b = (checkpoint.load(r / "checkpoints" / "last.pt") for r in (straight, resumed))
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"


def _pairs(root, n=20, size=(28, 28), side_by_side=False):
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 255, size, dtype=np.uint8)
        b = 255 - a
        if side_by_side:
            Image.fromarray(np.concatenate([a, b], 1)).save(root / f"{i:03d}.png")
        else:
            Image.fromarray(a).save(root / "A" / f"{i:03d}.png")
            Image.fromarray(b).save(root / "B" / f"{i:03d}.png")


@pytest.mark.parametrize("side_by_side", [False, True])
def test_pairs_in_both_layouts_train(make_cfg, tmp_path, side_by_side):
    root = tmp_path / "pairs"
    (root / "A").mkdir(parents=True), (root / "B").mkdir()
    _pairs(root, side_by_side=side_by_side)
    if side_by_side:
        (root / "A").rmdir(), (root / "B").rmdir()
    ds = DATASETS.get("pairs")(DataConfig(name="pairs", root=str(root)))
    assert ds.x.shape == ds.a.shape == (20, 1, 28, 28)
    torch.testing.assert_close(ds.a, -ds.x, atol=1e-6, rtol=0)  # B = 255 - A
    run = train(make_cfg("pix2pix-edges", *SMALL, "data.name=pairs", f"data.root={root}", "task.input=",
                         "train.batch_size=8", steps=2), quiet=True)
    assert gankit.load(run).in_shape == (1, 28, 28)


def test_bad_pairs_are_one_line_errors(tmp_path):
    from PIL import Image
    root = tmp_path / "pairs"
    (root / "A").mkdir(parents=True), (root / "B").mkdir()
    _pairs(root, n=3)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(root / "A" / "lonely.png")
    with pytest.raises(GankitError, match="has no partner"):
        DATASETS.get("pairs")(DataConfig(name="pairs", root=str(root)))
    (root / "A" / "lonely.png").unlink()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(root / "B" / "000.png")
    with pytest.raises(GankitError, match="differs in size"):
        DATASETS.get("pairs")(DataConfig(name="pairs", root=str(root)))


def test_task_configs_that_cannot_work_are_refused(make_cfg):
    with pytest.raises(GankitError, match="takes no class labels"):
        train(make_cfg("pix2pix-edges", "model.conditional=true", steps=1), quiet=True)
    with pytest.raises(GankitError, match="needs pairs"):
        train(make_cfg("pix2pix-edges", "task.input=", steps=1), quiet=True)
    with pytest.raises(GankitError, match="does not divide"):
        train(make_cfg("srgan-x4", "task.scale=8", steps=1), quiet=True)
    with pytest.raises(GankitError, match="translates images"):
        train(make_cfg("dcgan", "model.family=pix2pix", steps=1), quiet=True)
