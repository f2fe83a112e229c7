"""Exports: ONNX Runtime gives torch's outputs for every family and every image-to-image task's G; the
TorchScript and torch.export files reload and agree; the hub folder round-trips and carries its card."""
import json
import shutil

import numpy as np
import pytest
import torch
import yaml

import gankit
from gankit.cli import main
from gankit.export import Portable, save
from gankit.loading import generator_from
from gankit.nets import FAMILIES
from gankit.registry import GankitError
from gankit.sample import latents
from test_nets import SHAPES

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

NOISE_CASES = [(f, s, c) for f in FAMILIES.names() for s in SHAPES[f] for c in (0, 10)]
TASK_CASES = [("pix2pix", {"name": "translate", "input": "edges"}, (1, 28, 28)),
              ("pix2pix", {"name": "translate", "input": "edges"}, (3, 32, 32)),
              ("pix2pix", {"name": "inpaint"}, (1, 28, 28)),
              ("pix2pix", {"name": "inpaint"}, (3, 16, 16)),
              ("srresnet", {"name": "sr", "scale": 4}, (1, 28, 28)),
              ("srresnet", {"name": "sr", "scale": 4}, (3, 32, 32)),
              ("cyclegan", {"name": "cycle"}, (1, 28, 28)),
              ("cyclegan", {"name": "cycle"}, (3, 32, 32)),
              ("cut", {"name": "cut"}, (1, 28, 28))]


def noise_g(family, shape, c_dim, seed=0):
    torch.manual_seed(seed)
    meta = {"family": family, "img_shape": list(shape), "c_dim": c_dim, "z_dim": 16, "args": {}, "d_pca": 0,
            "class_names": [str(k) for k in range(c_dim)], "data": "test", "task": {"name": "noise"},
            "in_shape": [16], "d_shape": list(shape)}
    return randomise(generator_from(meta))


def task_g(family, task, shape, seed=0):
    torch.manual_seed(seed)
    c, side = shape[0], shape[1]
    in_shape = {"translate": (c, side, side), "inpaint": (c + 1, side, side),
                "sr": (c, side // 4, side // 4), "cycle": shape, "cut": shape}[task["name"]]
    d_shape = (c + in_shape[0], side, side) if task["name"] == "translate" else shape
    args = {"g_width": 8, "d_width": 8, **({"blocks": 2} if family in ("srresnet", "cyclegan", "cut") else {})}
    meta = {"family": family, "img_shape": list(shape), "c_dim": 0, "z_dim": 0, "args": args, "d_pca": 0,
            "class_names": [], "data": "test", "task": task, "in_shape": list(in_shape), "d_shape": list(d_shape)}
    return randomise(generator_from(meta))


def randomise(G):
    """Give BatchNorm running statistics other than (0, 1), so that eval-mode normalisation is exercised."""
    for m in G.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return G.eval()


def onnx_matches(G, tmp_path, n=5):
    path = save(G, "onnx", tmp_path / "g.onnx")
    module = Portable(G).eval()
    inputs = module.example(n)  # another batch size than the exported example: the batch is dynamic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {k: v.numpy() for k, v in zip(names, inputs)})[0]
    with torch.no_grad():
        want = module(*inputs).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4
    return path, names


@pytest.mark.parametrize("family, shape, c_dim", NOISE_CASES)
def test_onnx_equals_torch_for_every_family(family, shape, c_dim, tmp_path):
    G = noise_g(family, shape, c_dim)
    path, names = onnx_matches(G, tmp_path)
    assert names == (["z", "class"] if c_dim else ["z"])
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["img_shape"]) == list(shape) and json.loads(meta["z_dim"]) == 16
    assert json.loads(meta["class_names"]) == [str(k) for k in range(c_dim)] and meta["opset"] == "17"
    assert onnx.load(str(path)).opset_import[0].version == 17


@pytest.mark.parametrize("family, task, shape", TASK_CASES)
def test_onnx_equals_torch_for_every_image_to_image_task(family, task, shape, tmp_path):
    _, names = onnx_matches(task_g(family, task, shape), tmp_path)
    assert names == (["image", "mask"] if task["name"] == "inpaint" else ["image"])


def test_an_unpaired_run_exports_each_direction(tmp_path):
    G = task_g("cyclegan", {"name": "cycle"}, (1, 28, 28))
    x = Portable(G).example(3)[0]
    for direction in ("AtoB", "BtoA"):
        path = save(G, "onnx", tmp_path / f"{direction}.onnx", direction=direction)
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
        with torch.no_grad():
            want = G(x, direction=direction).numpy()
        assert np.abs(got - want).max() <= 1e-4
        assert {p.key: p.value for p in onnx.load(str(path)).metadata_props}["direction"] == direction
    assert not np.allclose(*(G(x, direction=d).detach().numpy() for d in ("AtoB", "BtoA")))  # two nets
    with pytest.raises(GankitError, match="AtoB or BtoA"):
        save(G, "onnx", tmp_path / "x.onnx", direction="sideways")
    with pytest.raises(GankitError, match="for unpaired runs"):
        save(task_g("srresnet", {"name": "sr", "scale": 4}, (1, 28, 28)), "onnx", tmp_path / "y.onnx", direction="AtoB")


def test_onnx_inpainting_keeps_the_known_pixels(tmp_path):
    G = task_g("pix2pix", {"name": "inpaint"}, (1, 16, 16))
    session = ort.InferenceSession(str(save(G, "onnx", tmp_path / "g.onnx")), providers=["CPUExecutionProvider"])
    x, m = Portable(G).example(3)
    y = session.run(None, {"image": x.numpy(), "mask": m.numpy()})[0]
    known = m.numpy() == 0
    assert np.abs(y - x.numpy())[np.broadcast_to(known, y.shape)].max() < 1e-6


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
@pytest.mark.parametrize("make", [lambda: noise_g("dcgan", (1, 28, 28), 10), lambda: noise_g("mlp", (1, 28, 28), 0),
                                  lambda: task_g("pix2pix", {"name": "inpaint"}, (1, 28, 28)),
                                  lambda: task_g("srresnet", {"name": "sr", "scale": 4}, (1, 28, 28))],
                         ids=["dcgan-cond", "mlp", "inpaint", "sr"])
def test_torchscript_and_exported_files_reload_and_agree(fmt, make, tmp_path):
    G = make()
    path = save(G, fmt, tmp_path / f"g.{'pt' if fmt == 'torchscript' else 'pt2'}")
    module = Portable(G).eval()
    inputs = module.example(3)
    extra = {"gankit.json": ""}
    if fmt == "torchscript":
        loaded = torch.jit.load(str(path), _extra_files=extra)
    else:
        loaded = torch.export.load(str(path), extra_files=extra).module()
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs), module(*inputs), atol=1e-5, rtol=1e-5)
    assert json.loads(extra["gankit.json"])["img_shape"] == json.dumps(list(G.img_shape))


# --- a trained run: the command line, the hub folder, bad input --------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "--recipe", "cgan", "train.steps=4", "train.batch_size=16", "model.args.g_width=8",
                 "model.args.d_width=8", "train.ema_kimg=0.05", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    run = next(out.iterdir())
    (run / "eval.json").write_text(json.dumps({"fid": 12.5, "cond_acc": 0.75, "n": 100}))
    return run


def test_export_command_writes_each_format(run, tmp_path, capsys):
    for fmt, name in (("onnx", "g.onnx"), ("torchscript", "g.pt"), ("exported", "g.pt2")):
        assert main(["export", str(run), "--format", fmt, "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 1000
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    z = latents(4, 100, seed=3).numpy()
    got = session.run(None, {"z": z, "class": np.arange(4)})[0]
    G = gankit.load(run)
    with torch.no_grad():
        want = G(torch.from_numpy(z), torch.arange(4)).numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_export_keeps_the_ema_weights_unless_asked(run, tmp_path):
    for flag, name in (([], "ema"), (["--no-ema"], "raw")):
        assert main(["export", str(run / "checkpoints" / "last.pt"), "--format", "hub", "--out", str(tmp_path / name),
                     *flag]) == 0
    ema, raw = gankit.load(tmp_path / "ema"), gankit.load(tmp_path / "raw")
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    for key, value in ema.state_dict().items():
        torch.testing.assert_close(value, state["G_ema"][key])
        torch.testing.assert_close(raw.state_dict()[key], state["G"][key])
    assert any(not torch.equal(state["G"][k], state["G_ema"][k]) for k in state["G"])


def test_hub_folder_round_trips_and_carries_its_card(run, tmp_path):
    hub = tmp_path / "hub"
    assert main(["export", str(run), "--format", "hub", "--out", str(hub)]) == 0
    assert {p.name for p in hub.iterdir()} == {"config.json", "model.safetensors", "README.md", "samples.png"}
    config = json.loads((hub / "config.json").read_text())
    assert config["library_name"] == "gankit" and config["family"] == "dcgan" and config["c_dim"] == 10
    G_run, G_hub = gankit.load(run), gankit.load(hub)
    torch.testing.assert_close(gankit.sample(G_hub, 12, seed=5), gankit.sample(G_run, 12, seed=5))
    card = (hub / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "gankit" and front["license"] == "mit" and "gan" in front["tags"]
    assert "mnist" in front["datasets"]
    assert "| fid | 12.5000 |" in card and "| cond_acc | 0.7500 |" in card and "![samples](samples.png)" in card
    assert "gankit.load(" in card and "recipe: cgan" in card


def test_export_bad_input_is_one_line_exit_2(run, tmp_path, capsys):
    no_export = tmp_path / "unfinished"
    shutil.copytree(run, no_export)
    (no_export / "generator.safetensors").unlink()
    cases = [(["export", str(no_export), "--format", "onnx", "--out", str(tmp_path / "g.onnx")], "checkpoints/last.pt"),
             (["export", str(run), "--format", "tflite", "--out", str(tmp_path / "g")], "unknown export format"),
             (["export", str(run), "--format", "onnx", "--out", str(tmp_path / "no" / "such" / "g.onnx")],
              "not a writable folder")]
    hub = tmp_path / "hub"
    save(gankit.load(run), "hub", hub)
    foreign = tmp_path / "foreign"
    shutil.copytree(hub, foreign)
    (foreign / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    missing = tmp_path / "missing"
    shutil.copytree(hub, missing)
    (missing / "config.json").unlink()
    wrong = tmp_path / "wrong"
    shutil.copytree(hub, wrong)
    config = json.loads((wrong / "config.json").read_text())
    config["args"]["g_width"] = 16
    (wrong / "config.json").write_text(json.dumps(config))
    cases += [(["sample", str(foreign)], "not a gankit config"), (["sample", str(missing)], "no config.json"),
              (["sample", str(wrong)], "do not fit the model")]
    for args, words in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and words in err[0], (args, err)


def test_hub_names_fail_in_one_line_offline_or_without_the_package(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(GankitError, match="huggingface_hub|Hugging Face Hub"):
        gankit.load("hf:nobody/no-such-gankit-model")
