"""Device, precision and multi-process paths that a CPU can show: bf16 autocast with every penalty, the
on_nan=skip decision shared by the ranks, the stop check at the log cadence, bf16 detection per device,
RNG state of the training device only, noise drawn on the CPU, data placement, SyncBatchNorm refusals."""
import contextlib
import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gankit import checkpoint, distributed, hardware
from gankit.data import data_home
from gankit.distributed import SharedNoise, World
from gankit.registry import GankitError
from gankit.trainer import build_parts, train

SMALL = ["model.args.g_width=8", "model.args.d_width=8", "train.batch_size=8"]


@pytest.mark.parametrize("recipe,extra,penalties", [
    ("dcgan", ["loss.r1=1", "loss.r2=1"], ["reg/r1", "reg/r2"]),
    ("wgan-gp", ["train.n_critic=1"], ["reg/gp"]),
    ("acgan", [], ["reg/acgan", "reg_g/acgan"]),
    ("pix2pix-edges", ["loss.r1=1"], ["reg/r1", "loss/g_l1"]),  # D sees (input, image) pairs
    ("inpaint", [], ["loss/g_l1"]),
])
def test_bf16_autocast_trains_with_every_penalty(make_cfg, monkeypatch, recipe, extra, penalties):
    """Under bf16 autocast G's fakes are bf16; the penalties run D in fp32 outside autocast, so they must get
    fp32 inputs (this raised 'Input type (c10::BFloat16) and bias type (float) should be the same')."""
    monkeypatch.setattr(hardware, "bf16_units", lambda: ["avx512_bf16"])  # bf16 forced on any CPU
    cfg = make_cfg(recipe, "train.amp=bf16", *SMALL, *extra, steps=2)
    assert build_parts(cfg).amp is True
    run = train(cfg, quiet=True)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("loss/d", "loss/g", *penalties):
        assert all(isinstance(r[key], float) for r in rows), key


def _skip_worker(rank, init_file, out_dir):
    from types import SimpleNamespace
    from gankit.trainer import finite_or_skip
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        p = SimpleNamespace(cfg=SimpleNamespace(train=SimpleNamespace(on_nan="skip")), skipped=0,
                            world=World(rank, 2), device=torch.device("cpu"))
        bad = torch.tensor(float("nan") if rank == 1 else 1.0)  # only rank 1 sees a NaN
        first = finite_or_skip(p, bad)
        second = finite_or_skip(p, torch.tensor(2.0))  # all finite: every rank steps
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"first": first, "second": second, "skipped": p.skipped}, f)
    finally:
        dist.destroy_process_group()


def test_on_nan_skip_is_decided_by_all_ranks_together(tmp_path):
    """One rank skipping backward() while the other enters DDP's all-reduce would hang: both must skip."""
    mp.spawn(_skip_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert got == [{"first": False, "second": True, "skipped": 1}] * 2


def test_max_minutes_is_checked_at_the_log_cadence_only(make_cfg, monkeypatch):
    calls = []
    real = distributed.any_true

    def counting(flag, world, device=None):
        calls.append(flag)
        return real(flag, world, device)
    monkeypatch.setattr(distributed, "any_true", counting)
    train(make_cfg("dcgan", *SMALL, "train.max_minutes=60", "train.log_every=3", steps=7), quiet=True)
    assert len(calls) == 3  # steps 3, 6 and the last one, 7; not every step


def test_native_bf16_on_cuda_asks_that_device_without_emulation(monkeypatch):
    seen = {}

    @contextlib.contextmanager
    def on_device(device):
        seen["device"] = device
        yield

    def supported(including_emulation=True):
        seen["including_emulation"] = including_emulation
        return False  # a V100 / T4: bf16 only by emulation
    monkeypatch.setattr(torch.cuda, "device", on_device)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert hardware.native_bf16(torch.device("cuda", 1)) is False
    assert seen == {"device": torch.device("cuda", 1), "including_emulation": False}
    from gankit.trainer import resolve_amp
    with pytest.warns(UserWarning, match="no native bf16 on this cuda"):
        assert resolve_amp("bf16", torch.device("cuda", 1)) is False
    assert resolve_amp("auto", torch.device("cuda", 1)) is False


def test_native_bf16_on_cpu_follows_the_bf16_units(monkeypatch):
    monkeypatch.setattr(hardware, "bf16_units", lambda: [])
    assert hardware.native_bf16(torch.device("cpu")) is False
    monkeypatch.setattr(hardware, "bf16_units", lambda: ["amx_bf16"])
    assert hardware.native_bf16(torch.device("cpu")) is True


@pytest.mark.parametrize("flags, isa, units", [
    ("fpu sse2 avx avx2 fma", "AVX2", []),                                       # AMD EPYC (Zen 3)
    ("sse2 avx avx2 avx512f avx512_bf16", "AVX-512", ["avx512_bf16"]),            # AMD EPYC (Zen 4)
    ("sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16", "AVX-512", ["amx_bf16", "avx512_bf16"]),  # Xeon, AMX
    ("fp asimd", "", [])])                                                        # not x86
def test_describe_names_the_vector_instructions_and_bf16_units(monkeypatch, flags, isa, units):
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: f"model name\t: Some CPU\nflags\t\t: {flags}\n")
    assert hardware.vector_isa() == isa and hardware.bf16_units() == units
    line = hardware.describe()
    assert line.startswith("Some CPU, ") and f"bf16 units: {', '.join(units) or 'none'}," in line
    assert (f", {isa}, bf16 units" in line) if isa else (" cores, bf16 units" in line)


def test_rng_state_holds_the_training_device_only_and_reads_the_older_list_format():
    cpu = checkpoint.rng_state(torch.device("cpu"))
    assert cpu["cuda"] is None
    before = torch.rand(3)
    older = {**cpu, "cuda": []}  # the earlier format: one state per visible GPU (none here)
    torch.rand(5)
    checkpoint.set_rng_state(older, torch.device("cpu"))
    torch.testing.assert_close(torch.rand(3), before)


def test_shared_noise_is_drawn_on_the_cpu_and_moved_to_the_device():
    """A CPU generator's state loads anywhere (CPU <-> CUDA resume), and both devices draw the same latents."""
    gen = torch.Generator().manual_seed(5)
    z = SharedNoise(gen, World()).randn(4, 3, device="meta")
    assert z.device.type == "meta" and z.shape == (4, 3)
    want = torch.randn(4, 3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(SharedNoise(torch.Generator().manual_seed(5), World()).randn(4, 3, device="cpu"), want)


def test_training_noise_generator_is_a_cpu_one(make_cfg):
    assert build_parts(make_cfg("dcgan", *SMALL)).noise.device.type == "cpu"


def test_data_stays_on_the_host_when_it_would_crowd_the_gpu():
    gpu = torch.device("cuda", 0)
    assert data_home(40, gpu, free_bytes=100) == gpu
    assert data_home(60, gpu, free_bytes=100) == torch.device("cpu")
    assert data_home(10 ** 12, torch.device("cpu")) == torch.device("cpu")


def test_one_gpu_per_process_launchers_map_local_rank_onto_the_visible_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert distributed.device_for(World(3, 4, 3), torch.device("cuda")) == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert distributed.device_for(World(3, 4, 3), torch.device("cuda")) == torch.device("cuda", 3)


def test_sync_bn_is_refused_where_it_cannot_work():
    bn_d = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    plain_d = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3))
    cuda = torch.device("cuda", 0)
    with pytest.raises(GankitError, match="no double backward"):
        distributed.check_sync_bn(cuda, bn_d, double_backward=True)
    distributed.check_sync_bn(cuda, plain_d, double_backward=True)  # nothing to convert: fine
    distributed.check_sync_bn(cuda, bn_d, double_backward=False)    # no penalty: fine
    with pytest.raises(GankitError, match="needs CUDA"):
        distributed.check_sync_bn(torch.device("cpu"))


def test_any_true_outside_torchrun_reads_bools_and_tensors():
    assert distributed.any_true(True, World()) is True
    assert distributed.any_true(torch.tensor(False), World()) is False


def test_compiled_runs_say_so_in_the_banner(make_cfg, capsys):
    train(make_cfg("ring8", "train.compile=true", steps=2), quiet=False)
    assert "compiled (a graph that fails to compile runs eagerly" in capsys.readouterr().out
