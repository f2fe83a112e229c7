"""The training loop: the only place that knows the step order.

Per step: ``n_critic`` D updates (real and fake logits -> d_loss + due penalties; clipping after the
update), then one G update with D frozen, then the EMA of G. Statistics are queued as tensors and reduced
once per ``log_every`` (no host sync in the hot loop); samples, checkpoints and exports happen at their
own cadences. Families, losses and regularizers differ by the objects passed in, never by branches here.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch
import torch.nn as nn

from gankit import distributed, hardware, nets
from gankit.ada import ADA
from gankit.augment import DiffAugment
from gankit.config import Config
from gankit.data import Batches, Dataset, build_dataset
from gankit.distributed import SharedNoise, World
from gankit.losses import LOSSES, Loss
from gankit.nets.layers import Packed, packed_shape
from gankit.registry import GankitError
from gankit.regularizers import Regularizer, build_regularizers
from gankit.rundir import evaluate_now, finish, open_run, refresh, restore, save_checkpoint, save_pictures
from gankit.schedule import lr_scale, set_lr
from gankit.stats import Stats
from gankit.tasks import TASKS, Task, build_task


Augment = Union[DiffAugment, ADA]


def build_augment(cfg: Config, world_size: int = 1) -> Optional[Augment]:
    """train.augment: "" (none), "ada" (adaptive, ada.py) or a DiffAugment policy (augment.py)."""
    t = cfg.train
    if t.augment == "ada":
        return ADA(t.ada_target, t.ada_kimg, t.batch_size * world_size)
    return DiffAugment(t.augment) if t.augment else None


def resolve_amp(mode: str, device: torch.device) -> bool:
    """bf16 autocast on/off. 'auto' turns it on where the hardware has native bf16; an explicit 'bf16'
    on hardware without it falls back to fp32 with a warning (emulated bf16 is slower than fp32)."""
    if mode == "off":
        return False
    native = hardware.native_bf16(device)
    if mode == "bf16" and not native:
        warnings.warn(f"train.amp=bf16: no native bf16 on this {device.type}; training in fp32", stacklevel=2)
    return native


def make_optimizer(params, lr: float, cfg: Config) -> torch.optim.Optimizer:
    t = cfg.train
    if t.opt == "rmsprop":  # WGAN (Arjovsky et al. 2017)
        return torch.optim.RMSprop(params, lr=lr, foreach=t.fused_opt or None)
    fast = {"fused": True} if t.fused_opt else {"foreach": False}
    return torch.optim.Adam(params, lr=lr, betas=(t.beta1, t.beta2), **fast)


@dataclass
class Parts:
    """Everything the loop touches, built from a Config in one place (`build_parts`). G and D are the
    plain nets (saved, sampled, evaluated); G_train and D_train what the loop calls: DDP wrappers of the
    same nets under torchrun (see `distribute`), the nets themselves otherwise."""
    cfg: Config
    device: torch.device
    ds: Dataset
    G: nn.Module
    D: nn.Module
    G_ema: Optional[nn.Module]
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer
    loss: Loss
    regs: List[Regularizer]
    batches: Batches
    noise: torch.Generator
    amp: bool
    ema_beta: float
    world: World = World()
    task: Optional[Task] = None  # what a batch holds, what G is fed, what D sees (tasks.py)
    held_out: Optional[Dataset] = None  # image-to-image tasks: the fixed evaluation split
    augment: Optional[Augment] = None
    G_train: Optional[nn.Module] = None
    D_train: Optional[nn.Module] = None
    D_reg: Optional[nn.Module] = None  # D_train uncompiled, for penalties (see distribute)
    shared: Optional[SharedNoise] = None  # draws from `noise`, this rank's slice (set in build_parts)
    skipped: int = 0
    d_steps: int = 0
    best_fid: float = math.inf
    meta: dict = field(default_factory=dict)


def build_parts(cfg: Config, ds: Optional[Dataset] = None, world: World = World()) -> Parts:
    device = distributed.device_for(world, hardware.pick_device(cfg.train.device))
    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed % 2**32)
    loss = LOSSES.get(cfg.loss.name)
    nets.builder(cfg.model.family, translator=not TASKS.get(cfg.task.name).has_latent)  # a bad name fails before
    #                                                                                 any data is loaded
    ds = ds or build_dataset(cfg.data)
    task = build_task(cfg.task, ds, cfg.model.z_dim)
    if cfg.model.conditional is True and not (ds.num_classes and task.has_latent):
        raise GankitError(f"model.conditional=true but data set '{ds.name}' has no labels" if task.has_latent else
                          f"model.conditional=true: task.name={cfg.task.name} takes no class labels")
    c_dim = ds.num_classes if cfg.model.conditional and task.has_latent else 0  # "auto": the data's classes
    ds, held_out = task.split(ds)
    augment = build_augment(cfg, world.size)
    if augment is not None and not ds.is_image:
        raise GankitError(f"train.augment works on images; '{ds.name}' is not images")
    if cfg.train.eval_every and ds.is_image and ds.c is None and task.has_latent:
        raise GankitError(f"train.eval_every needs a labelled data set for its classifier features; "
                          f"'{ds.name}' has no labels")
    G, D = build_nets(cfg, ds, c_dim, task)
    if task.features is not None:  # the feature loss's classifier, frozen, on the training device
        task.features = task.features.to(device)
    if cfg.train.sync_bn and world.active:
        distributed.check_sync_bn(device, D, double_backward=bool(cfg.loss.gp or cfg.loss.r1 or cfg.loss.r2))
    G, D = G.to(device), D.to(device)
    if device.type == "cuda":  # fixed shapes: let cuDNN pick its fastest kernels; TF32 matmuls in fp32 runs
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    if cfg.train.channels_last and ds.is_image:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.train.ema_kimg > 0 else None
    global_batch = cfg.train.batch_size * world.size
    ema_beta = 0.5 ** (global_batch / (cfg.train.ema_kimg * 1000)) if G_ema is not None else 0.0
    torch.manual_seed(cfg.train.seed + world.rank)  # per-rank global RNG; the nets above are rank 0's on all
    meta = {"family": cfg.model.family, "img_shape": list(ds.img_shape), "c_dim": c_dim,
            "z_dim": cfg.model.z_dim, "args": cfg.model.args, "d_pca": cfg.model.d_pca,
            "class_names": list(ds.class_names),
            "data": cfg.data.name, "task": dataclasses.asdict(cfg.task), "in_shape": list(task.in_shape()),
            "d_shape": list(task.d_shape())}
    p = Parts(cfg, device, ds, G, D, G_ema,
                 make_optimizer(G.parameters(), cfg.train.lr_g, cfg),
                 make_optimizer(D.parameters(), cfg.train.lr_d, cfg),
                 loss, build_regularizers(cfg.loss),
                 Batches(ds, cfg.train.batch_size, device, cfg.train.seed, world.rank, world.size, cfg.data.xflip),
                 torch.Generator().manual_seed(cfg.train.seed + 1),  # CPU: see SharedNoise
                 resolve_amp(cfg.train.amp, device), ema_beta, world, task, held_out, augment, G, D, meta=meta)
    p.shared = SharedNoise(p.noise, world)  # the same generator object: restore() keeps it in step
    return p


def build_nets(cfg: Config, ds: Dataset, c_dim: int, task: Task):
    """G and D of the config's family; with train.pack > 1, D judges packs (PacGAN); with model.d_pca, D's
    principal-component head is fit on the data's images; loss.acgan needs a D with an auxiliary classifier.
    Image-to-image tasks build a translator family for the task's input, output and D shapes."""
    m, pack = cfg.model, cfg.train.pack
    if not task.has_latent:
        if pack > 1 or m.d_pca or cfg.loss.acgan:
            raise GankitError(f"task.name={cfg.task.name}: train.pack, model.d_pca and loss.acgan are for "
                              f"noise-to-image models; remove them")
        return nets.build_translator(m.family, task.in_shape(), ds.img_shape, task.d_shape(), m.args, task.two_way)
    if m.d_pca and (pack > 1 or not ds.is_image):
        raise GankitError("model.d_pca needs images and a D of single samples (train.pack=1); "
                          f"got data '{ds.name}' with train.pack={pack}")
    G, D = nets.build(m.family, ds.img_shape, c_dim, m.z_dim, m.args, m.d_pca)
    if m.d_pca:
        D.fit(ds.x, seed=cfg.train.seed)
    if pack > 1:
        if c_dim:
            raise GankitError("train.pack (PacGAN) is for unconditional models; set model.conditional=false")
        D = Packed(nets.build(m.family, packed_shape(ds.img_shape, pack), 0, m.z_dim, m.args)[1], pack)
    aux = getattr(D, "aux", None)
    if cfg.loss.acgan and aux is None:
        raise GankitError("loss.acgan needs a conditional model whose D has an auxiliary classifier: "
                          "model.conditional=true model.args.d_cond=aux (family dcgan)")
    if not cfg.loss.acgan and aux is not None:  # an untrained head (and DDP refuses it)
        raise GankitError("model.args.d_cond=aux gives D a class head that only loss.acgan trains; "
                          "set loss.acgan (e.g. 1.0) or d_cond=projection")
    return G, D


def distribute(p: Parts) -> None:
    """The nets the loop calls: under torchrun G and D wrapped in DDP (after any restore: DDP starts
    from rank 0's weights); with train.compile, torch.compile'd. Penalties get D uncompiled (D_reg): they
    differentiate it twice, which compiled graphs (aot_autograd) cannot."""
    p.G_train = maybe_compile(distributed.wrap(p.G, p.world, p.device, p.cfg.train.sync_bn), p.cfg.train.compile)
    p.D_reg = distributed.wrap(p.D, p.world, p.device, p.cfg.train.sync_bn)
    p.D_train = maybe_compile(p.D_reg, p.cfg.train.compile)


def maybe_compile(module: nn.Module, on: bool) -> nn.Module:
    """torch.compile'd, with dynamo's suppress_errors on (process-wide): a graph that fails to compile runs
    eagerly with a warning instead of stopping the run; the run banner says so."""
    if not on:
        return module
    import torch._dynamo
    torch._dynamo.config.suppress_errors = True
    return torch.compile(module)


def for_d(p: Parts, x: torch.Tensor) -> torch.Tensor:
    """What D sees: x through DiffAugment when the recipe has it (real and fake alike)."""
    return p.augment(x, p.shared.rand) if p.augment is not None else x


# --- one step ---------------------------------------------------------------------------------------------
def finite_or_skip(p: Parts, loss: torch.Tensor) -> bool:
    """With train.on_nan=skip, drop an update whose loss is not finite (costs one sync per update). Under
    torchrun the ranks decide together: one rank skipping the backward while the others enter DDP's
    gradient all-reduce would hang them."""
    if p.cfg.train.on_nan == "skip" and distributed.any_true(~torch.isfinite(loss.detach()), p.world):
        p.skipped += 1
        return False
    return True


def d_step(p: Parts, batch: dict, stats: Stats, keep_fake: bool):
    """One D update on the task's batch. Returns the fake batch, with G's graph when `keep_fake` (reused by
    the G step)."""
    c = batch["c"]
    with torch.autocast(p.device.type, torch.bfloat16, enabled=p.amp):
        with torch.set_grad_enabled(keep_fake):
            fake = p.task.generate(p.G_train, batch, p.shared)  # (N, *img_shape)
        real, seen_fake = p.task.d_inputs(batch, p.task.history(fake.detach(), p.shared))
        real, seen_fake = for_d(p, real), for_d(p, seen_fake)
        real_logits = p.D_train(real, c).float()  # (N,)
        if isinstance(p.augment, ADA):
            p.augment.observe(real_logits, p.world)  # D's overfitting signal steers p
        fake_logits = p.D_train(seen_fake, c).float()
        d_loss = p.loss.d_loss(real_logits, fake_logits)
        fake_parts = p.task.parts(fake_logits.detach())
        for name, part in p.task.parts(real_logits.detach()).items():  # e.g. the two domains of `cycle`
            stats.report(f"loss/d_{name}", p.loss.d_loss(part, fake_parts[name]))
    total = d_loss
    for reg in p.regs:  # outside autocast, in fp32 (a second derivative in bf16 keeps few of its bits)
        if reg.due(p.d_steps):
            pen = reg.penalty(p.D_reg, real.float(), seen_fake.float(), c, p.shared)
            stats.report(f"reg/{reg.name}", pen)
            total = total + pen
    p.d_steps += 1
    if finite_or_skip(p, total):
        p.d_opt.zero_grad(set_to_none=True)
        total.backward()
        p.d_opt.step()
        for reg in p.regs:
            reg.after_step(p.D)
    stats.report("loss/d", d_loss)
    stats.report("logits/real", real_logits.mean())
    stats.report("logits/fake", fake_logits.mean())
    stats.report("prob/real", torch.sigmoid(real_logits).mean())
    stats.report("prob/fake", torch.sigmoid(fake_logits).mean())
    return fake if keep_fake else None


def g_step(p: Parts, batch: dict, stats: Stats, fake: Optional[torch.Tensor], adversarial: bool = True) -> None:
    """One G update through a frozen D; `fake` is the D step's batch when reused, else generated anew; the
    real batch is judged too only for a relativistic loss; the task's terms (reconstruction) are added, and
    without `adversarial` (SRGAN's pretraining) they are G's whole loss. D is called unwrapped: frozen, it
    has no gradients for a DDP reducer to wait for."""
    p.D.requires_grad_(False)
    c = batch["c"]
    with torch.autocast(p.device.type, torch.bfloat16, enabled=p.amp):
        if fake is None:
            fake = p.task.generate(p.G_train, batch, p.shared)
        g_loss = fake.new_zeros((), dtype=torch.float32)
        if adversarial:
            real, fake_d = p.task.d_inputs(batch, fake)
            seen = for_d(p, fake_d)
            paired = (p.D(for_d(p, real), c).float(),) if p.loss.g_needs_real else ()
            fake_logits = p.D(seen, c).float()
            g_loss = p.loss.g_loss(fake_logits, *paired)
            real_parts = p.task.parts(paired[0].detach()) if paired else {}
            for name, part in p.task.parts(fake_logits.detach()).items():
                stats.report(f"loss/g_adv_{name}", p.loss.g_loss(part, *([real_parts[name]] if paired else [])))
            if p.cfg.task.adv != 1.0:
                stats.report("loss/g_adv", g_loss)
                g_loss = p.cfg.task.adv * g_loss
            for reg in p.regs:
                extra = reg.g_penalty(p.D, seen, c)
                if extra is not None:
                    stats.report(f"reg_g/{reg.name}", extra)
                    g_loss = g_loss + extra
        for name, term in p.task.g_terms(batch, fake).items():
            stats.report(f"loss/g_{name}", term)
            g_loss = g_loss + term
    if finite_or_skip(p, g_loss):
        p.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        p.g_opt.step()
    p.D.requires_grad_(True)
    stats.report("loss/g", g_loss)


def train_step(p: Parts, stats: Stats, step: int = 1) -> None:
    """One iteration of the loop: n_critic D steps, a G step, the EMA update (benchmarks/speed.py times it).
    Up to task.pretrain_steps, G learns from the task's reconstruction terms alone and D waits (SRGAN)."""
    t, fake = p.cfg.train, None
    adversarial = step > p.cfg.task.pretrain_steps
    for i in range(t.n_critic):
        real, c, *pair = next(p.batches)
        if t.channels_last and real.dim() == 4:  # the nets are channels_last: no layout change in conv 1
            real = real.contiguous(memory_format=torch.channels_last)
        batch = p.task.batch(real, c, p.shared, *pair)
        if adversarial:
            fake = d_step(p, batch, stats, keep_fake=t.reuse_fake and i == t.n_critic - 1)
    g_step(p, batch, stats, fake, adversarial)
    if p.G_ema is not None:
        update_ema(p.G_ema, p.G, p.ema_beta, p.world)


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float, world: World = World()) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters; buffers (BatchNorm statistics) copied,
    averaged over ranks first under torchrun (parameters are equal on every rank after DDP's update)."""
    distributed.average_buffers(G, world)
    ema_p, g_p = list(G_ema.parameters()), list(G.parameters())
    torch._foreach_lerp_(ema_p, g_p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


# --- the loop ---------------------------------------------------------------------------------------------
class Stopped(Exception):
    """SIGTERM (torchrun stopping the other workers, a scheduler's kill): end like Ctrl-C."""


@contextlib.contextmanager
def sigterm_raises():
    """Within: SIGTERM raises Stopped (so the loop ends with its message); the old handler after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Stopped("SIGTERM")
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def log_step(p: Parts, stats: Stats, step: int, nimg: int, rate: float, elapsed: float, run_dir: Path,
             data_share: float = 0.0) -> dict:
    """Reduce the queued statistics (one sync, averaged over ranks), write them, stop on a NaN loss.
    `data_share`: the part of the wall time since the last log spent drawing batches."""
    values = stats.reduce()
    if isinstance(p.augment, ADA):
        values.update(p.augment.stats())
    values.update({"nimg": nimg, "time/img_per_s": rate, "time/elapsed_s": elapsed, "time/data_share": data_share,
                   "train/skipped": p.skipped})
    bad = [k for k in ("loss/d", "loss/g") if not math.isfinite(values.get(k, 0.0))]
    stats.write(step, values)
    if bad:
        raise GankitError(f"{bad[0]} became {values[bad[0]]} at step {step}; stopped. Last good "
                          f"checkpoint: {run_dir / 'checkpoints' / 'last.pt'} (try a lower lr, "
                          f"or train.on_nan=skip)")
    return values


def train(cfg: Config, resume: Optional[Path] = None, quiet: bool = False) -> Path:
    """Train a GAN as described by `cfg`; returns the run directory. `resume`: a run dir to continue.
    Under torchrun every process calls this; see distributed.py."""
    world = distributed.init(cfg.train.device)
    try:
        return _train(cfg, resume, quiet or not world.main, world)
    finally:
        distributed.shutdown(world)


def _train(cfg: Config, resume: Optional[Path], quiet: bool, world: World) -> Path:
    from tqdm import tqdm
    run_dir, state = open_run(cfg, resume, world)
    p = build_parts(cfg, world=world)
    start, nimg = (0, 0) if state is None else restore(p, state)
    distribute(p)
    if state is not None and world.main:
        refresh(run_dir, cfg)
    t, main = cfg.train, world.main
    stats = Stats(run_dir if main else None, world=world)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    say(f"run {run_dir}: {cfg.recipe} | {cfg.model.family} on {p.ds.name} {p.ds.img_shape} x{len(p.ds)} "
        f"| {p.device}{' bf16' if p.amp else ''}{f' x{world.size} processes' if world.active else ''}"
        f"{' | compiled (a graph that fails to compile runs eagerly: see warnings)' if t.compile else ''} "
        f"| steps {start}->{t.steps}")
    if start == 0 and main:  # a run is resumable from its first moment
        save_pictures(p, run_dir, 0, stats)
        save_checkpoint(p, run_dir, 0, 0)
    bar = tqdm(total=t.steps, initial=start, disable=quiet, mininterval=1 if sys.stderr.isatty() else 30,
               dynamic_ncols=True, file=sys.stderr)
    global_batch = t.batch_size * world.size
    t0, seen, last_log, last_data = time.perf_counter(), 0, time.perf_counter(), p.batches.seconds
    step = start
    with sigterm_raises():
        try:
            for step in range(start + 1, t.steps + 1):
                if t.lr_warmup or t.lr_decay != "none":
                    set_lr((p.g_opt, p.d_opt), (t.lr_g, t.lr_d), lr_scale(step, t))
                train_step(p, stats, step)
                nimg += t.n_critic * global_batch
                seen += t.n_critic * global_batch
                bar.update(1)
                logged = step % t.log_every == 0 or step == t.steps
                if logged:
                    now = time.perf_counter()
                    span = max(now - last_log, 1e-9)
                    values = log_step(p, stats, step, nimg, seen / span, now - t0, run_dir,
                                      (p.batches.seconds - last_data) / span)
                    seen, last_log, last_data = 0, now, p.batches.seconds
                    shown = (("D", "loss/d", ".3f"), ("G", "loss/g", ".3f"), ("D(x)", "prob/real", ".2f"),
                             ("D(G(z))", "prob/fake", ".2f"))  # D's are absent while G pretrains (task.pretrain_steps)
                    bar.set_postfix_str(" ".join(f"{name} {values[k]:{fmt}}" for name, k, fmt in shown if k in values)
                                        + f" {values['time/img_per_s']:.0f} img/s", refresh=False)
                if main and step % t.sample_every == 0:
                    save_pictures(p, run_dir, step, stats)
                if main and t.eval_every and step % t.eval_every == 0:
                    evaluate_now(p, run_dir, step, nimg, stats)
                if main and step % t.ckpt_every == 0:
                    save_checkpoint(p, run_dir, step, nimg)
                if t.max_minutes and logged and distributed.any_true(  # one sync, at the log cadence
                        time.perf_counter() - t0 > 60 * t.max_minutes, world, p.device):
                    say(f"\ntrain.max_minutes={t.max_minutes} reached at step {step}")
                    break
        except (KeyboardInterrupt, Stopped, RuntimeError) as e:  # a half-done step is not saved
            with contextlib.suppress(Stopped):  # torchrun's SIGTERM to the survivors may land while closing
                bar.close()
                stats.close()
            if isinstance(e, RuntimeError) and not distributed.peer_lost(e, world):
                raise
            why = {KeyboardInterrupt: "interrupted", Stopped: "stopped by SIGTERM"}.get(
                type(e), f"rank {world.rank} lost contact with another worker ({str(e).splitlines()[0][:100]})")
            raise GankitError(f"{why} at step {step}; continue with: gankit train --resume {run_dir}") from None
    bar.close()
    if main:
        if step % t.sample_every:
            save_pictures(p, run_dir, step, stats)
        finish(p, run_dir, step, nimg)
    distributed.barrier(world)
    stats.close()
    say(f"done: {step} steps, {nimg} images in {time.perf_counter() - t0:.0f} s")
    return run_dir
