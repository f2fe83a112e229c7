"""Multi-process training on torch.distributed + DistributedDataParallel: the only module that touches
torch.distributed. Launched by torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment); without
it, the world has one process, every function here is a no-op and training runs the same code.

What DDP means for a GAN here (the pitfalls the PyTorch issue tracker documents):
- G and D get separate DDP wrappers (one wrapper for both leaves parameters unused in each phase) with
  `broadcast_buffers=False`: D runs on real and on fake before one backward, and a buffer broadcast at the
  second forward would modify BatchNorm statistics saved for the first (pytorch#22095; stylegan2-ada does
  the same). D's forward in the G step goes to the unwrapped D with its weights frozen, so no reducer
  waits for gradients that never come.
- Gradient penalties (double backward) call the wrapped D; the penalty's `autograd.grad` asks only for
  the input gradient, so each parameter gets its gradient once, in the one backward (pytorch#47562, #63812).
- `train.batch_size` is per rank; the global batch is batch_size x world size. Data, latents and penalty
  draws come from streams shared by all ranks, each rank taking its slice of the global draw: the result
  does not depend on how the global batch is split (up to BatchNorm statistics, which are per rank unless
  `train.sync_bn`, CUDA only).
- Only rank 0 writes (run directory, checkpoints, samples, logs); statistics are averaged over ranks.
"""
from __future__ import annotations

import datetime
import inspect
import os
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn

from gankit.registry import GankitError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init(device_name: str) -> World:
    """Join the process group that torchrun describes in the environment (a no-op without torchrun)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        if cuda:  # a launcher may give each process one GPU (SLURM --gpus-per-task=1): LOCAL_RANK > count
            torch.cuda.set_device(local % torch.cuda.device_count())
        # torchrun's store outlives a restart (--max-restarts): keys of the dead attempt would send the new
        # workers to old addresses ("connection refused", pytorch#167288), so each attempt gets its own prefix.
        from torch.distributed.rendezvous import rendezvous
        store, _, _ = next(rendezvous("env://", rank, size))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group("nccl" if cuda else "gloo", store=dist.PrefixStore(f"gankit/{attempt}", store),
                                rank=rank, world_size=size, timeout=datetime.timedelta(minutes=30))
    return World(rank, size, local)


def device_for(world: World, device: torch.device) -> torch.device:
    """One GPU per process: cuda means cuda:(LOCAL_RANK mod the visible GPUs) under torchrun, so that a
    launcher that shows each process only its own GPU works as well as one that shows them all."""
    if world.active and device.type == "cuda":
        return torch.device("cuda", world.local_rank % max(torch.cuda.device_count(), 1))
    return device


def wrap(module: nn.Module, world: World, device: torch.device, sync_bn: bool = False) -> nn.Module:
    """The module DDP-wrapped for training (rank 0's weights broadcast to all), or itself in a world of one."""
    if not world.active:
        return module
    if sync_bn:
        check_sync_bn(device)
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
               else {"broadcast_buffers": False})  # the older name (torch < 2.13)
    return ddp(module, device_ids=ids, **no_sync)


def check_sync_bn(device: torch.device, D: Optional[nn.Module] = None, double_backward: bool = False) -> None:
    """train.sync_bn needs CUDA, and torch's SyncBatchNorm has no double backward, so it cannot sit in a D
    that a gradient penalty (R1, R2, GP) differentiates twice: refused with one line rather than failing
    inside the first penalty."""
    if device.type != "cuda":
        raise GankitError("train.sync_bn=true needs CUDA (torch's SyncBatchNorm does not run on CPU); "
                          "use train.sync_bn=false on CPU")
    if double_backward and D is not None and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules()):
        raise GankitError("train.sync_bn=true with loss.gp/r1/r2: SyncBatchNorm has no double backward, and "
                          "this D has BatchNorm; use train.sync_bn=false, or a D without BatchNorm "
                          "(e.g. model.args.d_norm=spectral)")


def mean(values: torch.Tensor, world: World) -> torch.Tensor:
    """Average a tensor over ranks (the input is left as it was)."""
    if not world.active:
        return values
    out = values.clone()
    dist.all_reduce(out)
    return out.div_(world.size)


def average_buffers(module: nn.Module, world: World) -> None:
    """Average floating buffers (BatchNorm running statistics) over ranks, so that every rank's EMA of G
    copies the same statistics."""
    if not world.active:
        return
    bufs = [b for b in module.buffers() if b.is_floating_point()]
    if bufs:
        flat = torch.cat([b.reshape(-1) for b in bufs])
        dist.all_reduce(flat)
        flat /= world.size
        for b, v in zip(bufs, flat.split([b.numel() for b in bufs])):
            b.copy_(v.view_as(b))


def any_true(flag, world: World, device: Optional[torch.device] = None) -> bool:
    """The same decision on every rank: True when any rank says True. `flag`: a bool, or a tensor (its
    device is used). The all-reduce runs on `device` (NCCL serves CUDA tensors only); one host sync."""
    if not world.active:
        return bool(flag)
    if torch.is_tensor(flag):
        t = flag.detach().reshape(-1)[:1].float()
    else:
        t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def peer_lost(error: BaseException, world: World) -> bool:
    """Whether an error from a collective means another worker died (or the network between them)."""
    words = ("onnect", "peer", "Gloo", "gloo", "NCCL", "imed out", "Broken pipe")
    return world.active and any(w in str(error) for w in words)


def broadcast(obj: Any, world: World) -> Any:
    """Rank 0's Python object on every rank (run directory, checkpoint state)."""
    if not world.active:
        return obj
    box: List[Any] = [obj if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def launched_rank() -> int:
    """This process's rank as the launcher set it (0 outside torchrun); readable before init."""
    return int(os.environ.get("RANK", "0"))


def restart_id() -> Optional[str]:
    """Under a torchrun restart (--max-restarts), the id of the job being restarted; else None."""
    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0:
        return os.environ.get("TORCHELASTIC_RUN_ID")
    return None


def job_id() -> Optional[str]:
    """torchrun's id of this job (the same across its restarts), or None outside torchrun."""
    return os.environ.get("TORCHELASTIC_RUN_ID") if "TORCHELASTIC_RUN_ID" in os.environ else None


class SharedNoise:
    """Random draws shared by all ranks: each call draws the global batch from one generator (the same
    state on every rank) and returns this rank's slice, moved to `device`. `n` is the per-rank count.
    The generator is a CPU one: its state loads on any machine (a CUDA generator's state does not fit a
    CPU one, nor the reverse), so a checkpoint resumes across devices, and CPU and GPU runs of the same
    seed draw the same latents."""

    def __init__(self, gen: torch.Generator, world: World):
        self.gen, self.world = gen, world

    def _slice(self, t: torch.Tensor, n: int) -> torch.Tensor:
        return t[self.world.rank * n:(self.world.rank + 1) * n] if self.world.active else t

    def randn(self, n: int, *shape: int, device=None, dtype=None) -> torch.Tensor:
        return self._moved(torch.randn(n * self.world.size, *shape, dtype=dtype, generator=self.gen), n, device)

    def rand(self, n: int, *shape: int, device=None, dtype=None) -> torch.Tensor:
        return self._moved(torch.rand(n * self.world.size, *shape, dtype=dtype, generator=self.gen), n, device)

    def _moved(self, t: torch.Tensor, n: int, device) -> torch.Tensor:
        t = self._slice(t, n)
        return t if device is None else t.to(device, non_blocking=True)
