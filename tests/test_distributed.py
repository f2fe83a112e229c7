"""torchrun / DDP on CPU (gloo), 2 processes, against a single process on the same global batch."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import gankit
from gankit import checkpoint
from gankit.config import load_config

TINY = ["model.args.g_width=8", "model.args.d_width=8", "train.log_every=2", "train.sample_every=1000",
        "train.device=cpu", "train.amp=off"]  # fp32: the ranks are compared with one process to 1e-5


def torchrun(out, recipe, overrides, nproc=2, extra=(), wait=True, resume=None):
    """`gankit train` under torchrun on CPU: a recipe into `out`, or (`resume`) that run continued."""
    start = ["--resume", str(resume)] if resume else ["--recipe", recipe, "--out", str(out)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *extra,
           "-m", "gankit", "train", *start, "--quiet", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def ghost_batchnorm(monkeypatch, chunks):
    """BatchNorm over `chunks` equal slices of the batch: what per-rank BatchNorm computes under DDP."""
    forward = torch.nn.BatchNorm2d.forward

    def per_chunk(self, x):
        return torch.cat([forward(self, part) for part in x.chunk(chunks)])
    monkeypatch.setattr(torch.nn.BatchNorm2d, "forward", per_chunk)


def before_instance_norm(net):
    """Names of the biases of convolutions followed by an InstanceNorm: the norm subtracts them again, so their
    gradient is zero in exact arithmetic and only rounding noise in practice."""
    names = []
    for prefix, module in net.named_modules():
        kids = list(module.named_children())
        for (name, conv), (_, norm) in zip(kids, kids[1:]):
            if isinstance(conv, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and conv.bias is not None \
                    and isinstance(norm, torch.nn.InstanceNorm2d):
                names.append(f"{prefix}.{name}.bias" if prefix else f"{name}.bias")
    return set(names)


def assert_same_weights(a, b, atol, lr=2e-4):
    """Parameters equal to `atol` (+ 1e-4 relative), except for at most 1 in 10,000 elements per net: a
    gradient that cancels to ~1e-6 of its typical size has no sign the two summation orders agree on, and
    Adam's normalised step turns that rounding into up to 2 x lr (measured: one element of 215,000 at width 32).
    Biases whose gradient is zero in exact arithmetic (`before_instance_norm`) get that bound, 2 x lr a step."""
    sa, sb = checkpoint.load(a / "checkpoints" / "last.pt"), checkpoint.load(b / "checkpoints" / "last.pt")
    assert sa["step"] == sb["step"] and sa["nimg"] == sb["nimg"]
    noise_only = before_instance_norm(gankit.load(a, ema=False))
    for net in ("G", "D", "G_ema"):
        assert (sa[net] is None) == (sb[net] is None)
        for k in noise_only & set(sa[net] or {}) if net != "D" else ():
            assert (sa[net][k] - sb[net][k]).abs().max() <= 2 * lr * sa["step"], (net, k)
        params = {k: v for k, v in (sa[net] or {}).items()
                  if v.is_floating_point() and "running" not in k and not (net != "D" and k in noise_only)}
        far = {k: int((~torch.isclose(v, sb[net][k], rtol=1e-4, atol=atol)).sum()) for k, v in params.items()}
        total = sum(v.numel() for v in params.values())
        assert sum(far.values()) <= total // 10_000, f"{net}: elements beyond {atol}: {far}"


@pytest.mark.parametrize("recipe,over", [
    ("dcgan", ["model.args.d_norm=batch"]),                                   # BatchNorm in G and D
    ("wgan-gp", ["model.args.g_batch_norm=false", "train.n_critic=2"]),       # gradient penalty, double backward
    ("dcgan", ["model.conditional=false", "train.pack=2"]),                   # PacGAN: D judges packs per rank
    ("acgan", []),                                                            # D's class head, in both steps
    ("inpaint", ["model.args.dropout=0"]),                                    # an image-to-image task: holes
    #                                          drawn for the global batch, L1 on them, the U-Net and PatchGAN
    ("cut", ["model.args.blocks=1", "task.patches=32"]),                      # unpaired: domain B's batches,
    #                                          patch positions drawn per image, PatchNCE per image
])
def test_two_processes_equal_one_process_on_the_global_batch(tmp_path, monkeypatch, recipe, over):
    """From one state (3 steps of one process), 2 processes of batch 8 take the step that 1 process of batch 16
    takes (and resume across world sizes on the way).
    One step from one state, not several from the start: the two runs round differently, and a trajectory
    carries that rounding into the next steps' activations, where it can cross a LeakyReLU's kink. Measured
    for acgan (AMD EPYC with AVX2, and a Xeon with AMX): after 1 step the two agree to 1e-8 in G's gradient
    norm, but at step 2 one input of D's second LeakyReLU lies 1.4e-7 from 0 while the runs differ there by
    8e-7; its slope flips between 1 and 0.2, G's gradient moves by 2e-4 and Adam's normalised steps make that
    62,510 of G's first 86,240 weights apart by step 4, at any thread count. Within one step the runs differ
    by their gradients' rounding alone."""
    steps = ["train.ckpt_every=1000", *TINY, *over]
    ghost_batchnorm(monkeypatch, 2)  # what per-rank BatchNorm computes
    start = gankit.train(load_config(recipe, overrides=["train.batch_size=16", "train.steps=3", *steps,
                                                        f"out={tmp_path / 'start'}"]), quiet=True)
    ddp, single = (shutil.copytree(start, tmp_path / name) for name in ("ddp", "single"))
    r = torchrun(None, recipe, ["train.batch_size=8", "train.steps=4"], resume=ddp)
    assert r.returncode == 0, r.stdout + r.stderr
    gankit.train(load_config(recipe, overrides=["train.batch_size=16", "train.steps=4", *steps, f"out={tmp_path}"]),
                 resume=single, quiet=True)
    assert_same_weights(ddp, single, atol=1e-5)
    stats = (ddp / "stats.jsonl").read_text().splitlines()
    assert '"step": 4' in stats[-1] and '"nimg": ' in stats[-1] and gankit.load(ddp) is not None


def test_sync_bn_on_cpu_is_a_clear_error(tmp_path):
    r = torchrun(tmp_path, "dcgan", ["train.steps=2", "train.batch_size=8", "train.sync_bn=true", *TINY])
    assert r.returncode != 0 and "sync_bn=true needs CUDA" in r.stdout + r.stderr


def _worker_pids(launcher_pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == launcher_pid:
                        kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _wait_for_step(run_parent, step, proc, timeout=300):
    """The run directory once its log has reached `step` (or passed it between two looks)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        for stats in run_parent.glob("*/stats.jsonl"):
            lines = stats.read_text().splitlines()
            if len(lines) > 1 and json.loads(lines[-2])["step"] >= step:  # the last line may be half-written
                return stats.parent
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    raise AssertionError("training did not reach the step in time")


@pytest.mark.parametrize("restarts", [0, 1])
def test_killing_a_worker(tmp_path, restarts):
    """Without restarts the job ends with a clear message and a resumable checkpoint; with
    --max-restarts=1 torchrun restarts the workers, which resume the same run directory and finish."""
    steps = 600  # enough that the kill (at step 20) lands mid-run on a fast machine: a checkpoint every 10 steps
    over = [f"train.steps={steps}", "train.batch_size=8", "train.ckpt_every=10", *TINY]
    proc = torchrun(tmp_path, "dcgan", over, extra=[f"--max-restarts={restarts}"], wait=False)
    try:
        run = _wait_for_step(tmp_path, 20, proc)
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2
        os.kill(max(workers), signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(list(tmp_path.iterdir())) == 1, out  # the same run directory, never a second one
    last = checkpoint.load(run / "checkpoints" / "last.pt")
    if restarts == 0:
        assert proc.returncode != 0
        assert "SIGKILL" in out or "Signal 9" in out, out  # torchrun names the worker that died
        assert f"--resume {run}" in out, out  # the survivor says how to go on
        assert 10 <= last["step"] < steps
        resumed = gankit.train(load_config("dcgan", overrides=[*over, "train.steps=" + str(last["step"] + 4),
                                                                f"out={tmp_path}"]), resume=run, quiet=True)
        assert checkpoint.load(resumed / "checkpoints" / "last.pt")["step"] == last["step"] + 4
    else:
        assert proc.returncode == 0, out
        assert last["step"] == steps
        rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
        assert rows[-1]["step"] == steps
        restarts_seen = sum(b["time/elapsed_s"] < a["time/elapsed_s"] for a, b in zip(rows, rows[1:]))
        assert restarts_seen == 1  # the clock of the run restarted once, in the same run directory


def test_shared_noise_gives_each_rank_its_slice_of_the_global_draw():
    from gankit.distributed import SharedNoise, World
    single = SharedNoise(torch.Generator().manual_seed(3), World())
    ranks = [SharedNoise(torch.Generator().manual_seed(3), World(rank=r, size=2)) for r in range(2)]
    for _ in range(3):
        want_n, want_u = single.randn(8, 5), single.rand(8, 1, 1, 1)
        got = [(s.randn(4, 5), s.rand(4, 1, 1, 1)) for s in ranks]
        assert torch.equal(want_n, torch.cat([g[0] for g in got])) and torch.equal(want_u, torch.cat([g[1] for g in got]))
