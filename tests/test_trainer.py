"""Training runs for real: every recipe trains, the run directory holds every artefact, resume is exact,
and a short run on the 8-Gaussian ring learns most of its modes."""
import json
import math

import pytest
import torch

import gankit
from gankit.config import load_config, recipe_names
from gankit.data import build_dataset, ring8_means
from gankit.losses import LOSSES
from gankit.metrics.toy2d import N_SAMPLES, mode_stats
from gankit.registry import GankitError
from gankit.trainer import train

SMALL = {"dcgan": ["model.args.g_width=8", "model.args.d_width=8"]}


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_trains_a_few_steps(make_cfg, name):
    cfg = make_cfg(name, "train.batch_size=16", steps=2)
    run = train(cfg, quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(isinstance(r["loss/g"], float) for r in rows)
    assert all(isinstance(r["loss/d"], float) for r in rows if r["step"] > cfg.task.pretrain_steps)
    G = gankit.load(run)
    if G.task.has_latent:
        x = gankit.sample(G, 4)
    else:  # an image-to-image recipe: translate held-out targets
        from gankit.tasks import translate
        held = G.task.split(build_dataset(cfg.data))[1].x[:4]  # photos hold out 3
        x = translate(G, G.task, held, from_targets=True)[0]
        assert x.shape == held.shape
    assert x.shape[1:] == G.img_shape and len(x) in (3, 4) and torch.isfinite(x).all()


def test_run_directory_has_every_artefact(make_cfg):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    cfg = make_cfg("dcgan", *SMALL["dcgan"], steps=4)
    run = train(cfg, quiet=True)
    for name in ["config.yaml", "stats.jsonl", "progress.gif", "losses.png", "checkpoints/last.pt",
                 "generator.safetensors", "generator.json", "samples/step_000000.png", "samples/step_000004.png"]:
        assert (run / name).is_file(), name
    assert run.name.endswith("-dcgan")
    assert load_config(file=str(run / "config.yaml")).train.steps == 4
    row = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    for key in ["step", "nimg", "loss/d", "loss/g", "logits/real", "logits/fake", "time/img_per_s",
                "time/elapsed_s"]:
        assert key in row
    assert row["nimg"] == 4 * cfg.train.batch_size
    ea = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0})
    ea.Reload()
    assert {"loss/d", "loss/g", "logits/real"} <= set(ea.Tags()["scalars"])
    assert [e.step for e in ea.Scalars("loss/d")] == [1, 2, 3, 4]
    assert "samples" in ea.Tags()["images"]
    meta = json.loads((run / "generator.json").read_text())
    assert meta["family"] == "dcgan" and meta["img_shape"] == [1, 28, 28] and meta["ema"] is True


def weights(run):
    from gankit import checkpoint
    s = checkpoint.load(run / "checkpoints" / "last.pt")
    return s["G"], s["D"], s["G_ema"], s["step"]


@pytest.mark.parametrize("recipe, extra", [("dcgan", SMALL["dcgan"]), ("wgan-gp", SMALL["dcgan"]),
                                           ("dcgan", [*SMALL["dcgan"], "model.d_pca=16"])])
def test_resume_is_bit_exact(make_cfg, tmp_path, recipe, extra):
    straight = train(make_cfg(recipe, *extra, steps=6), quiet=True)
    half = train(make_cfg(recipe, *extra, steps=3), quiet=True)
    resumed = train(make_cfg(recipe, *extra, steps=6), resume=half, quiet=True)
    assert resumed == half
    a, b = weights(straight), weights(resumed)
    assert a[3] == b[3] == 6
    for sa, sb in zip(a[:3], b[:3]):
        if sa is None:
            assert sb is None
            continue
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k


def test_resume_refuses_shape_change(make_cfg):
    run = train(make_cfg("dcgan", *SMALL["dcgan"], steps=2), quiet=True)
    with pytest.raises(GankitError, match="model.args"):
        train(make_cfg("dcgan", "model.args.g_width=16", "model.args.d_width=8", steps=4), resume=run,
              quiet=True)


def test_nan_stops_with_message_and_keeps_checkpoint(make_cfg):
    cfg = make_cfg("dcgan", *SMALL["dcgan"], "train.lr_d=1e30", "train.lr_g=1e30", "train.ckpt_every=1",
                   steps=30)
    with pytest.raises(GankitError, match=r"(became nan|non-finite).*step \d+"):
        train(cfg, quiet=True)
    from pathlib import Path

    from gankit import checkpoint
    last = sorted(Path(cfg.out).iterdir())[-1] / "checkpoints" / "last.pt"
    state = checkpoint.load(last)  # the last good checkpoint: whole and finite
    assert state["step"] < 30


def test_full_disk_during_checkpoint_keeps_previous(make_cfg, monkeypatch):
    import errno
    from pathlib import Path

    from gankit import checkpoint
    real_save, calls = torch.save, []

    def save_until_disk_full(obj, f):
        calls.append(1)
        if len(calls) >= 3:  # step 0 and step 2 fit, step 4 meets a full disk half-way
            f.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, f)

    monkeypatch.setattr(checkpoint.torch, "save", save_until_disk_full)
    cfg = make_cfg("dcgan", *SMALL["dcgan"], steps=6)
    with pytest.raises(GankitError, match="No space left on device.*previous file is intact"):
        train(cfg, quiet=True)
    run = sorted(Path(cfg.out).iterdir())[-1]
    assert checkpoint.load(run / "checkpoints" / "last.pt")["step"] == 2
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]


def test_ring8_learns_most_modes(make_cfg):
    cfg = make_cfg("ring8", "train.log_every=100", "train.sample_every=1000", "train.ckpt_every=1000",
                   steps=1500)
    G = gankit.load(train(cfg, quiet=True))
    result = mode_stats(gankit.sample(G, N_SAMPLES, seed=1), ring8_means(), 0.02)
    assert result["modes"] >= 6, result


@pytest.mark.parametrize("loss", LOSSES.names())
@pytest.mark.parametrize("extra", [[], ["loss.r1=1.0", "loss.r1_every=2", "loss.r2=1.0"], ["loss.gp=10.0"],
                                   ["model.args.d_norm=spectral"]])
def test_every_loss_and_regularizer_trains(make_cfg, loss, extra):
    cfg = make_cfg("seed-mlp", "data.name=digits", "train.batch_size=32", f"loss.name={loss}", *extra, steps=3)
    run = train(cfg, quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(isinstance(r["loss/d"], float) for r in rows)
    if extra and extra[0].startswith("loss.r1"):
        assert "reg/r1" in rows[0] and "reg/r1" not in rows[1]  # lazy: every second D step
        assert "reg/r2" in rows[0] and "reg/r2" not in rows[1]
    if extra and extra[0].startswith("loss.gp"):
        assert all(r["reg/gp"] >= 0 for r in rows)


def test_compile_option_trains_and_saves_plain_weights(make_cfg):
    """train.compile=true: the loop calls torch.compile'd nets; checkpoints hold the plain nets' keys. R1's
    double backward (which compiled graphs cannot do) runs on the uncompiled D."""
    from gankit import checkpoint
    cfg = make_cfg("ring8", "train.compile=true", "loss.r1=1.0", steps=3)
    run = train(cfg, quiet=True)
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["step"] == 3 and not any("_orig_mod" in k for k in state["G"])


@pytest.mark.parametrize("native", [False, True])
def test_amp_bf16_falls_back_with_a_warning_without_native_bf16(make_cfg, monkeypatch, native):
    """Without bf16 units train.amp=bf16 warns and trains in fp32; with them (faked here) it autocasts."""
    from gankit import trainer as tr
    monkeypatch.setattr(tr.hardware, "bf16_units", lambda: ["avx512_bf16"] if native else [])
    cfg = make_cfg("dcgan", "train.amp=bf16", "train.batch_size=8", steps=2)
    if native:
        assert tr.build_parts(cfg).amp is True
        run = train(cfg, quiet=True)
    else:
        with pytest.warns(UserWarning, match="no native bf16"):
            assert tr.build_parts(cfg).amp is False
        with pytest.warns(UserWarning, match="training in fp32"):
            run = train(cfg, quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and all(isinstance(rows[-1][k], float) for k in ("loss/d", "loss/g"))


@pytest.mark.parametrize("units", [[], ["amx_bf16"]])
def test_amp_auto_is_bf16_exactly_where_it_is_native(make_cfg, monkeypatch, units):
    """train.amp=auto: bf16 autocast on a CPU with bf16 units, fp32 (and no warning) on one without; the
    fp32 path is forced here whatever CPU runs the test."""
    import warnings
    from gankit import trainer as tr
    monkeypatch.setattr(tr.hardware, "bf16_units", lambda: units)
    cfg = make_cfg("dcgan", "train.amp=auto", "train.batch_size=8", steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert tr.build_parts(cfg).amp is bool(units)
        run = train(cfg, quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and all(math.isfinite(rows[-1][k]) for k in ("loss/d", "loss/g"))


def test_default_is_conditional_on_labelled_data_only(make_cfg, tmp_path):
    """model.conditional=auto: class labels in when the data has them (digits), unconditional without
    (a flat folder of images)."""
    from PIL import Image
    from gankit.trainer import build_parts
    labelled = build_parts(make_cfg("dcgan", "data.name=digits"))
    assert labelled.G.c_dim == 10 and labelled.meta["c_dim"] == 10
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.fromarray((torch.rand(8, 8) * 255).byte().numpy(), "L").save(flat / f"{i}.png")
    unlabelled = ["data.name=folder", f"data.root={flat}", "data.resolution=8", "train.batch_size=4"]
    assert build_parts(make_cfg("dcgan", *unlabelled)).G.c_dim == 0
    with pytest.raises(GankitError, match="no labels"):
        build_parts(make_cfg("dcgan", *unlabelled, "model.conditional=true"))
    with pytest.raises(GankitError, match="conditional: 'maybe' is not allowed"):
        make_cfg("dcgan", "model.conditional=maybe")


def test_pacgan_packing_trains_and_d_sees_packs(make_cfg):
    from gankit.nets.layers import Packed
    from gankit.trainer import build_parts
    p = build_parts(make_cfg("ring8", "train.pack=4"))
    assert isinstance(p.D, Packed) and p.D(torch.randn(8, 2)).shape == (2,)
    run = train(make_cfg("ring8", "train.pack=4", "loss.r1=1.0", steps=3), quiet=True)
    assert len((run / "stats.jsonl").read_text().splitlines()) == 3
    with pytest.raises(GankitError, match="multiple of train.pack"):
        make_cfg("ring8", "train.pack=3")
    with pytest.raises(GankitError, match="unconditional"):
        build_parts(make_cfg("dcgan", "data.name=digits", "train.pack=2"))


def test_acgan_trains_both_nets_through_the_class_term(make_cfg):
    run = train(make_cfg("acgan", "data.name=digits", "train.batch_size=16", *SMALL["dcgan"], steps=2), quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all(r["reg/acgan"] > 0 and r["reg_g/acgan"] > 0 for r in rows)
    with pytest.raises(GankitError, match="auxiliary classifier"):
        train(make_cfg("dcgan", "data.name=digits", "loss.acgan=1.0"), quiet=True)
    with pytest.raises(GankitError, match="only loss.acgan trains"):  # a class head nothing trains
        train(make_cfg("acgan", "data.name=digits", "loss.acgan=0"), quiet=True)


@pytest.mark.parametrize("side", [128, 256])
def test_trains_at_128_and_256_px_and_rebuilds_from_the_checkpoint(make_cfg, side):
    """The bundled photos at 128 and 256 px: a few steps, then G rebuilt from its checkpoint alone."""
    import gankit
    cfg = make_cfg("dcgan", "data.name=photos", f"data.resolution={side}", "train.batch_size=4",
                   "model.args.g_width=8", "model.args.d_width=8", "data.xflip=true", steps=2)
    run = train(cfg, quiet=True)
    G = gankit.load(run / "checkpoints" / "last.pt", ema=False)
    assert tuple(G.img_shape) == (3, side, side)
    x = gankit.sample(G, 2, seed=0)
    assert x.shape == (2, 3, side, side) and x.abs().max() <= 1
    saved = gankit.checkpoint.load(run / "checkpoints" / "last.pt")["G"]
    assert all(torch.equal(G.state_dict()[k], v) for k, v in saved.items())
