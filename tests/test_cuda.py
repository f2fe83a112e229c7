"""CUDA-only checks, skipped where no GPU is visible: every family trains on the GPU in fp32 and bf16 with
evaluation during training and a penalty; resume is bit-exact on one GPU with deterministic algorithms; a
CPU checkpoint resumes on the GPU; two NCCL processes equal one process on the global batch."""
import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS; read when CUDA starts

import pytest  # noqa: E402
import torch  # noqa: E402

import gankit  # noqa: E402
from gankit import checkpoint  # noqa: E402
from gankit.config import load_config  # noqa: E402
from gankit.stats import read_stats  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TINY = ["train.log_every=1", "train.sample_every=1000", "train.ckpt_every=1000", "train.batch_size=16"]
FAMILIES = [("seed-mlp", []), ("dcgan", ["model.args.g_width=8", "model.args.d_width=8"]),
            ("seed-keras-dcgan", []), ("sngan", ["model.args.g_width=16", "model.args.d_width=16"])]


def cfg(tmp_path, recipe, *over, steps=4, device="cuda"):
    return load_config(recipe, overrides=[*TINY, f"train.steps={steps}", f"train.device={device}",
                                          f"out={tmp_path}", *over])


@pytest.mark.parametrize("amp", ["off", "bf16"])
@pytest.mark.parametrize("recipe,over", FAMILIES)
def test_every_family_trains_on_cuda_with_eval_and_a_penalty(tmp_path, recipe, over, amp):
    run = gankit.train(cfg(tmp_path, recipe, *over, f"train.amp={amp}", "loss.r1=1", "train.eval_every=2",
                           "train.eval_n=200"), quiet=True)
    rows = read_stats(run / "stats.jsonl")
    assert any("metric/fid" in r for r in rows) and all(isinstance(r.get("loss/d", 0.0), float) for r in rows)
    x = gankit.sample(gankit.load(run, device="cuda"), 8)
    assert x.is_cuda and torch.isfinite(x).all()


def test_resume_is_bit_exact_on_one_gpu_with_deterministic_algorithms(tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        over = ["model.args.g_width=8", "model.args.d_width=8", "train.ckpt_every=3"]
        straight = gankit.train(cfg(tmp_path / "a", "dcgan", *over, steps=6), quiet=True)
        half = gankit.train(cfg(tmp_path / "b", "dcgan", *over, steps=3), quiet=True)
        resumed = gankit.train(cfg(tmp_path / "b", "dcgan", *over, steps=6), resume=half, quiet=True)
    finally:
        torch.use_deterministic_algorithms(False)
    a = checkpoint.load(straight / "checkpoints" / "last.pt")
    b = checkpoint.load(resumed / "checkpoints" / "last.pt")
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"


def test_a_cpu_checkpoint_resumes_on_cuda(tmp_path):
    over = ["model.args.g_width=8", "model.args.d_width=8", "train.ckpt_every=3"]
    half = gankit.train(cfg(tmp_path, "dcgan", *over, steps=3, device="cpu"), quiet=True)
    resumed = gankit.train(cfg(tmp_path, "dcgan", *over, steps=6, device="cuda"), resume=half, quiet=True)
    assert checkpoint.load(resumed / "checkpoints" / "last.pt")["step"] == 6


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_nccl_processes_equal_one_process_on_the_global_batch(tmp_path, monkeypatch):
    from test_distributed import assert_same_weights, ghost_batchnorm, torchrun
    steps = ["train.steps=4", "train.ckpt_every=1000", "model.args.g_width=8", "model.args.d_width=8",
             "train.log_every=2", "train.sample_every=1000", "train.device=cuda"]
    r = torchrun(tmp_path / "ddp", "dcgan", ["train.batch_size=8", *steps])
    assert r.returncode == 0, r.stdout + r.stderr
    ghost_batchnorm(monkeypatch, 2)
    single = gankit.train(load_config("dcgan", overrides=["train.batch_size=16", *steps,
                                                          f"out={tmp_path / 'single'}"]), quiet=True)
    assert_same_weights(next((tmp_path / "ddp").iterdir()), single, atol=1e-4)
