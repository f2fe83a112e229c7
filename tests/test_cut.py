"""Unpaired translation one way (CUT): the patch features of its G, exact PatchNCE values against the
reference's formula, the task's terms, a short training that can fail, bit-exact resume, and the one-way
errors of translate and export."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit import checkpoint
from gankit.cli import main
from gankit.config import DataConfig, TaskConfig
from gankit.data import build_dataset
from gankit.evaluate import map_scores
from gankit.nets import build_translator
from gankit.nets.img2img import PatchFeatures
from gankit.unpaired import Contrastive, patch_nce
from gankit.trainer import train

TINY = ["model.args.g_width=8", "model.args.d_width=8", "model.args.blocks=1", "train.batch_size=8",
        "train.sample_every=1000", "train.ckpt_every=1000", "train.device=cpu", "task.patches=32"]


def cut_g(shape=(1, 28, 28), blocks=3, seed=0):
    torch.manual_seed(seed)
    return build_translator("cut", shape, shape, shape, {"g_width": 8, "d_width": 8, "blocks": blocks})


# --- the net and the loss ---------------------------------------------------------------------------------------
def test_the_training_pass_samples_the_same_positions_in_the_input_and_the_output():
    G, _ = cut_g()
    assert isinstance(G, PatchFeatures) and len(G.taps) == len(G.heads) == 5  # input, 2 downs, 2 blocks
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    u = torch.rand(3, len(G.taps), 28 * 28)
    out, q, k = G(x, patches=u, n_patches=64)
    torch.testing.assert_close(out, G(x))  # the translation is the plain forward's (InstanceNorm: no state)
    assert [t.shape[1] for t in q] == [64, 64, 49, 49, 49]  # 28x28, 14x14, then 7x7 = 49 positions, all taken
    for qt, kt in zip(q, k):
        assert qt.shape == kt.shape and qt.shape[-1] == 256
        torch.testing.assert_close(qt.norm(dim=-1), torch.ones(qt.shape[:2]))
    ids = u[:, 0].argsort(1)[:, :64]  # tap 0 is the input image: its patches are pixels
    pixels = x.flatten(2).gather(2, ids[:, None]).transpose(1, 2)  # (3, 64, 1)
    torch.testing.assert_close(k[0], F.normalize(G.heads[0](pixels), dim=-1))
    torch.testing.assert_close(q[0], F.normalize(G.heads[0](out.flatten(2).gather(2, ids[:, None]).transpose(1, 2)),
                                                 dim=-1))
    (sum(t.sum() for t in q) + out.sum()).backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert G.one_way("AtoB") is G.gen
    with pytest.raises(ValueError, match="AtoB only"):
        G.one_way("BtoA")


def test_patch_nce_has_exact_values_and_equals_the_reference_formula():
    q = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one image, two patches
    want = -1 / 0.5 + np.log(np.exp(1 / 0.5) + 1.0)  # each patch: its own k at 1, the other at 0
    torch.testing.assert_close(patch_nce(q, q.clone(), 0.5), torch.tensor([want], dtype=torch.float32))
    assert patch_nce(q, q.flip(1), 0.5) > patch_nce(q, q, 0.5)  # patches matched to the wrong place cost more
    torch.manual_seed(0)
    q, k = F.normalize(torch.randn(3, 16, 8), dim=-1), F.normalize(torch.randn(3, 16, 8), dim=-1)
    # the reference (CUT's PatchNCELoss, negatives from the same image): [l_pos, l_neg with its diagonal at
    # -10] / T, cross entropy toward index 0
    l_pos = (q * k).sum(-1, keepdim=True)
    l_neg = torch.bmm(q, k.transpose(1, 2)).masked_fill(torch.eye(16, dtype=torch.bool), -10.0)
    logits = torch.cat([l_pos, l_neg], -1).flatten(0, 1) / 0.07
    ref = F.cross_entropy(logits, torch.zeros(48, dtype=torch.long), reduction="none").view(3, 16).mean(1)
    torch.testing.assert_close(patch_nce(q, k, 0.07), ref)
    q.requires_grad_(True), k.requires_grad_(True)
    patch_nce(q, k, 0.07).sum().backward()
    assert q.grad is not None and k.grad is None  # k is the fixed target


def test_the_task_weighs_the_identity_term_as_configured():
    torch.manual_seed(0)
    q = [F.normalize(torch.randn(4, 6, 5), dim=-1) for _ in range(2)]  # 2 images of A, then 2 of B
    k = [F.normalize(torch.randn(4, 6, 5), dim=-1) for _ in range(2)]
    batch = {"source": torch.zeros(2, 1, 4, 4), "q": q, "k": k}
    per_image = (patch_nce(q[0], k[0], 0.07) + patch_nce(q[1], k[1], 0.07)) / 2  # the mean over the taps
    for w in (0.0, 1.0, 0.5):
        task = Contrastive(TaskConfig(name="cut", nce=2.0, identity=w), (1, 4, 4))
        b = {**batch, "q": q if w else [t[:2] for t in q], "k": k if w else [t[:2] for t in k]}
        want = 2.0 * (per_image[:2].mean() + w * per_image[2:].mean()) / (1 + w)
        torch.testing.assert_close(task.g_terms(b, None)["nce"], want)
    assert Contrastive(TaskConfig(name="cut"), (1, 4, 4)).g_terms(batch, None) == {}


# --- training ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    """The cut recipe, shortened."""
    out = tmp_path_factory.mktemp("cut")
    over = ["train.steps=400", "train.log_every=50", "train.sample_every=200", "train.ckpt_every=1000",
            "train.device=cpu", f"out={out}"]
    return train(gankit.load_config("cut", overrides=over), quiet=True)


def test_a_short_cut_moves_a_toward_b_and_keeps_the_digits(cut_run):
    assert main(["eval", str(cut_run), "--device", "cpu"]) == 0
    got = json.loads((cut_run / "eval.json").read_text())
    G = gankit.load(cut_run)
    train_ds, held = G.task.split(build_dataset(DataConfig(name="mnist2digits")))
    base = map_scores(lambda x, direction: x, held, train_ds, directions=("AtoB",))
    assert set(base) == {"AtoB/fid", "AtoB/labels", "fid", "n_A", "n_B"}
    assert got["AtoB/fid"] < base["AtoB/fid"] / 2, (got, base)  # far closer to domain B than before
    assert got["AtoB/labels"] > base["AtoB/labels"] + 0.05, (got, base)  # and read as their digits more often
    assert "BtoA/fid" not in got and "AtoB/cycle_l1" not in got


def test_the_run_directory_of_a_cut_run(cut_run, tmp_path, capsys):
    rows = [json.loads(line) for line in (cut_run / "stats.jsonl").read_text().splitlines()]
    assert "loss/g_nce" in rows[-1] and rows[-1]["loss/g_nce"] < rows[0]["loss/g_nce"]  # patches found again
    assert (cut_run / "progress.gif").is_file() and (cut_run / "samples" / "step_000400.png").is_file()
    G = gankit.load(cut_run)
    assert isinstance(G, PatchFeatures) and isinstance(G.task, Contrastive)
    assert checkpoint.load(cut_run / "checkpoints" / "last.pt")["G_ema"] is not None
    ds = build_dataset(DataConfig(name="mnist2digits"))
    np.save(tmp_path / "a.npy", ds.images(slice(4)).numpy())
    assert main(["translate", str(cut_run), str(tmp_path / "a.npy"), "--out", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), G(ds.images(slice(4))).detach().numpy(), atol=1e-5)
    capsys.readouterr()
    assert main(["translate", str(cut_run), str(tmp_path / "a.npy"), "--out", str(tmp_path / "c.npy"),
                 "--direction", "BtoA"]) == 2
    assert "learned A to B only" in capsys.readouterr().err
    assert main(["export", str(cut_run), "--format", "onnx", "--direction", "BtoA", "--out",
                 str(tmp_path / "g.onnx")]) == 2
    assert "learned A to B only" in capsys.readouterr().err


def test_cut_resume_is_bit_exact(make_cfg):
    """G with its patch heads, D, the EMA and domain B's order continue exactly, and so do the patch draws."""
    over = [*TINY, "train.lr_decay=none"]
    straight = train(make_cfg("cut", *over, steps=6), quiet=True)
    half = train(make_cfg("cut", *over, steps=3), quiet=True)
    resumed = train(make_cfg("cut", *over, steps=6), resume=half, quiet=True)
    a, b = checkpoint.load(straight / "checkpoints" / "last.pt"), checkpoint.load(resumed / "checkpoints" / "last.pt")
    assert any(key.startswith("heads.") for key in a["G"])
    for net in ("G", "D", "G_ema"):
        for key, v in a[net].items():
            assert torch.equal(v, b[net][key]), (net, key)
