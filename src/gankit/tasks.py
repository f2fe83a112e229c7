"""Tasks: what a batch holds, what G is fed, what D sees, which extra terms G gets and what the pictures show.
The trainer calls these and has no branch on the task's name; noise-to-image is one task among them.

    batch = task.batch(real, c, noise)           # dict: "real" (target), "c" (class into G and D, or None), ...
    fake = task.generate(G, batch, noise)        # G's output for the batch, (N, *img_shape) in [-1, 1]
    real_d, fake_d = task.d_inputs(batch, fake)  # what D judges (pix2pix: the input beside the image)
    terms = task.g_terms(batch, fake)            # {name: weighted loss} added to G's adversarial loss

`noise` draws random numbers (`randn`, `rand`; the trainer's distributed.SharedNoise, so draws are exact on
resume and independent of how a batch is split over processes). Image-to-image tasks (seed 001: image
translation, super-resolution, inpainting) pair a reconstruction loss, stable but blurry, with the
adversarial one, sharp but unstable; `task.adv` weighs the latter and `task.pretrain_steps` trains G on the
reconstruction alone first (SRGAN). They hold out a fixed split of the data for evaluation (`split`).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.config import TaskConfig
from gankit.registry import GankitError, Registry

TASKS = Registry("task")
Tensor = torch.Tensor
HELD_OUT = 500  # images of a data set held out for evaluation by the image-to-image tasks (at most a tenth)


# --- derivations: the task's input from a target image ------------------------------------------------------
SOBEL = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def edges(x: Tensor) -> Tensor:
    """Sobel edge map (gradient magnitude of the grey image in [0, 1], halved and clipped to [0, 1]),
    returned in [-1, 1], one channel. x: (N, C, H, W) in [-1, 1] -> (N, 1, H, W)."""
    grey = (x.float().mean(1, keepdim=True) + 1) / 2
    k = torch.stack([SOBEL, SOBEL.t()])[:, None].to(x.device)  # (2, 1, 3, 3)
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), k)
    return (g.pow(2).sum(1, keepdim=True).sqrt() / 2).clamp(0, 1) * 2 - 1


def downscale(x: Tensor, scale: int) -> Tensor:
    """x4 (or x`scale`) bicubic downscaling with antialiasing, clipped to [-1, 1]."""
    return F.interpolate(x.float(), scale_factor=1 / scale, mode="bicubic", antialias=True,
                         align_corners=False).clamp(-1, 1)


def centre_square(side: int, device="cpu") -> Tensor:
    """(side, side) mask of the centre square of half the side (Context Encoders' region), 1 = hole."""
    m = torch.zeros(side, side, device=device)
    m[side // 4: side // 4 + side // 2, side // 4: side // 4 + side // 2] = 1
    return m


def holes(n: int, side: int, noise, device) -> Tensor:
    """(n, 1, side, side) masks, 1 = hole: a quarter of them the centre square of half the side (Context
    Encoders' region), the rest one or two axis-aligned rectangles with sides of 25-60% of the image side."""
    u = noise.rand(n, 10, device=device)  # every draw, used or not: a fixed count per image
    lo, hi = 0.25 * side, 0.60 * side
    rows = torch.arange(side, device=device)
    mask = torch.zeros(n, side, side, device=device)
    for r in range(2):
        h, w = lo + (hi - lo) * u[:, 4 * r], lo + (hi - lo) * u[:, 4 * r + 1]  # (n,)
        top, left = (side - h) * u[:, 4 * r + 2], (side - w) * u[:, 4 * r + 3]
        inside = ((rows[None, :, None] >= top[:, None, None]) & (rows[None, :, None] < (top + h)[:, None, None])
                  & (rows[None, None, :] >= left[:, None, None]) & (rows[None, None, :] < (left + w)[:, None, None]))
        keep = (u[:, 8] < 0.5) | (r == 0)  # the second rectangle for half of them
        mask = torch.maximum(mask, (inside & keep[:, None, None]).float())
    mask = torch.where((u[:, 9] < 0.25)[:, None, None], centre_square(side, device), mask)
    return mask[:, None]


def reconstruction(cfg: TaskConfig, fake: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """{'l1': cfg.l1 * mean |fake - target|, 'l2': cfg.l2 * mean (fake - target)^2}, the terms whose weight is
    non-zero; `weight` (N, 1, H, W) (e.g. the hole) restricts each image's mean to where it is 1, and the
    images' means are averaged, so that a batch split over processes gives the same loss."""
    diff = (fake.float() - target.float())

    def norm(t):
        if weight is None:
            return t.mean()
        w = weight.float()
        return ((t * w).sum((1, 2, 3)) / (w.sum((1, 2, 3)) * t.shape[1]).clamp_min(1)).mean()
    terms = {}
    if cfg.l1:
        terms["l1"] = cfg.l1 * norm(diff.abs())
    if cfg.l2:
        terms["l2"] = cfg.l2 * norm(diff.pow(2))
    return terms


# --- the tasks ------------------------------------------------------------------------------------------------
class Task:
    """Base: noise-free image-to-image behaviour shared by the tasks below (see the module docstring)."""
    name = ""
    has_latent = False
    any_size = False  # G takes images of any size (fully convolutional, no size-bound draws): evaluation of a
    #                   data.crop run then reads its held-out images whole
    unpaired = False  # trains on two unpaired domains (Dataset.b): cycle, cut
    two_way = False   # G and D are pairs (nets.img2img.TwoWay, TwoDomains): unpaired translation both ways
    features: Optional[nn.Module] = None  # sr with task.perceptual: the frozen classifier body (build_task)

    def __init__(self, cfg: TaskConfig, img_shape: Tuple[int, ...], z_dim: int = 0):
        self.cfg, self.img_shape, self.z_dim = cfg, tuple(img_shape), z_dim

    # shapes the nets are built for (from the data, in one place)
    def in_shape(self) -> Tuple[int, ...]:
        return self.img_shape

    def d_shape(self) -> Tuple[int, ...]:
        return self.img_shape

    def whole_size(self, h: int, w: int) -> Tuple[int, int]:
        """The largest image size up to h x w that this task's G takes whole (`any_size` tasks)."""
        return h, w

    def split(self, ds):
        """(training set, held-out set): the images the data set holds out itself (`ds.test`, photos), else a
        fixed tenth (at most HELD_OUT images), the same for every seed."""
        from gankit.data import subset
        if ds.test:
            test = torch.tensor(sorted(ds.test))
            rest = torch.tensor([i for i in range(len(ds)) if i not in ds.test])
            return subset(ds, rest), subset(ds, test)
        n_test = min(HELD_OUT, max(len(ds) // 10, 1))
        perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
        return subset(ds, perm[n_test:]), subset(ds, perm[:n_test])

    def inputs(self, real: Tensor, noise) -> Dict[str, Tensor]:
        """What G is fed, derived from the targets (as in training; `gankit translate --from-targets`)."""
        raise NotImplementedError

    def batch(self, real: Tensor, c: Optional[Tensor], noise, a: Optional[Tensor] = None) -> dict:
        return {"real": real, "c": None, **({"input": a} if a is not None else self.inputs(real, noise))}

    def g_input(self, batch: dict) -> Tensor:
        return batch["input"]

    def generate(self, G: nn.Module, batch: dict, noise) -> Tensor:
        return G(self.g_input(batch))

    def d_inputs(self, batch: dict, fake: Tensor) -> Tuple[Tensor, Tensor]:
        return batch["real"], fake

    def g_terms(self, batch: dict, fake: Tensor) -> Dict[str, Tensor]:
        return reconstruction(self.cfg, fake, batch["real"])

    def history(self, fake: Tensor, noise) -> Tensor:
        """The fakes the D step learns from (detached): this batch's, or (CycleGAN) some from a pool."""
        return fake

    def parts(self, logits: Tensor) -> Dict[str, Tensor]:
        """Named parts of a batch's logits whose losses are logged apart (the two domains of `cycle`)."""
        return {}

    def state_dict(self) -> dict:
        """State that training changes and a checkpoint keeps (the pools of `cycle`)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def shown_input(self, batch: dict) -> Tensor:
        """The input as a picture of the target's size and channels (the first row of the grids)."""
        x = batch["input"][:, : self.img_shape[0]]
        if x.shape[-1] != self.img_shape[-1]:
            x = F.interpolate(x, size=self.img_shape[1:], mode="nearest")
        return x.expand(-1, self.img_shape[0], -1, -1) if x.shape[1] == 1 else x


@TASKS.register("noise")
class Noise(Task):
    """Noise (and a class) to image: G(z, c), D(x, c) on real and generated images, no extra terms."""
    has_latent = True

    def in_shape(self):
        return (self.z_dim,)

    def split(self, ds):
        return ds, None  # every image trains; metrics compare with the whole data set

    def batch(self, real, c, noise, a=None):
        return {"real": real, "c": c}

    def generate(self, G, batch, noise):
        return G(noise.randn(batch["real"].shape[0], self.z_dim, device=batch["real"].device), batch["c"])

    def g_terms(self, batch, fake):
        return {}


@TASKS.register("translate")
class Translate(Task):
    """Paired translation (pix2pix, Isola et al. 2017): G(input) -> target; D judges (input, image) pairs, so
    it asks whether the image fits its input; L1 to the target (pix2pix: lambda_L1 = 100). Inputs are the
    data's own pairs (`data.name=pairs`) or derived from the targets (`task.input=edges`: Sobel edges)."""

    def __init__(self, cfg, img_shape, z_dim=0, in_channels: Optional[int] = None):
        super().__init__(cfg, img_shape, z_dim)
        self.in_channels = in_channels or (1 if cfg.input == "edges" else img_shape[0])

    def in_shape(self):
        return (self.in_channels, *self.img_shape[1:])

    def d_shape(self):
        return (self.in_channels + self.img_shape[0], *self.img_shape[1:])

    def inputs(self, real, noise):
        if self.cfg.input != "edges":
            raise GankitError("this translation run learnt from given pairs (data.name=pairs): its inputs cannot "
                              "be derived from targets; give the inputs themselves (without --from-targets)")
        return {"input": edges(real)}

    def d_inputs(self, batch, fake):
        a = batch["input"].to(fake.dtype)
        return torch.cat([a.to(batch["real"].dtype), batch["real"]], 1), torch.cat([a, fake], 1)


@TASKS.register("sr")
class SuperResolution(Task):
    """Super-resolution (SRGAN, Ledig et al. 2017): G(downscaled target) -> target; D judges images alone;
    reconstruction (L1/L2) and optionally a feature loss in the bundled classifier's features (`task.perceptual`)."""
    any_size = True

    def in_shape(self):
        c, h, w = self.img_shape
        if h % self.cfg.scale or w % self.cfg.scale:
            raise GankitError(f"task.scale={self.cfg.scale} does not divide the image size {h}x{w}; "
                              f"use data.resolution (or data.crop) a multiple of it")
        return (c, h // self.cfg.scale, w // self.cfg.scale)

    def whole_size(self, h, w):
        return h // self.cfg.scale * self.cfg.scale, w // self.cfg.scale * self.cfg.scale

    def inputs(self, real, noise):
        return {"input": downscale(real, self.cfg.scale).to(real.dtype)}

    def g_terms(self, batch, fake):
        terms = reconstruction(self.cfg, fake, batch["real"])
        if self.cfg.perceptual:
            f_fake, f_real = self.features(fake.float()), self.features(batch["real"].float())
            terms["perceptual"] = self.cfg.perceptual * F.mse_loss(f_fake, f_real.detach())
        return terms


@TASKS.register("inpaint")
class Inpaint(Task):
    """Inpainting (Context Encoders, Pathak et al. 2016): G sees the image with holes (set to 0) and the mask as
    an extra channel; its output is composed into the known pixels, so only the holes are G's; the
    reconstruction loss is on the holes. D judges the composed images (a global D; Iizuka et al. 2017), and
    with `task.d_mask` the mask beside them, so that it is told where to look (DeepFill v2, Yu et al. 2019)."""

    def in_shape(self):
        return (self.img_shape[0] + 1, *self.img_shape[1:])

    def d_shape(self):
        return (self.img_shape[0] + int(self.cfg.d_mask), *self.img_shape[1:])

    def inputs(self, real, noise, mask: Optional[Tensor] = None):
        m = holes(real.shape[0], real.shape[-1], noise, real.device) if mask is None else mask.to(real.device)
        m = m.to(real.dtype)
        return {"input": torch.cat([real * (1 - m), m], 1), "mask": m}

    def batch(self, real, c, noise, a=None):
        return {"real": real, "c": None, **self.inputs(real, noise)}

    def generate(self, G, batch, noise):
        m = batch["mask"]
        return m * G(batch["input"]) + (1 - m) * batch["real"]

    def d_inputs(self, batch, fake):
        if not self.cfg.d_mask:
            return batch["real"], fake
        m = batch["mask"]
        return torch.cat([batch["real"], m.to(batch["real"].dtype)], 1), torch.cat([fake, m.to(fake.dtype)], 1)

    def g_terms(self, batch, fake):
        return reconstruction(self.cfg, fake, batch["real"], weight=batch["mask"])


def build_task(cfg: TaskConfig, ds, z_dim: int) -> Task:
    """The config's task for data set `ds` (a paired set fixes the translation's input channels)."""
    cls = TASKS.get(cfg.name)
    if getattr(ds, "b", None) is not None and not cls.unpaired:
        raise GankitError(f"data set '{ds.name}' holds two unpaired domains: train it with task.name=cycle "
                          f"(--recipe cyclegan) or task.name=cut (--recipe cut)")
    if cls is Noise:
        return Noise(cfg, ds.img_shape, z_dim)
    if not ds.is_image:
        raise GankitError(f"task.name={cfg.name} translates images; data set '{ds.name}' is not images")
    if cls is Translate:
        a = getattr(ds, "a", None)
        if a is None and cfg.input != "edges":
            raise GankitError("task.name=translate needs pairs (data.name=pairs data.root=DIR) or inputs derived "
                              "from the targets (task.input=edges)")
        task = Translate(cfg, ds.img_shape, in_channels=a.shape[1] if a is not None else None)
    else:
        task = cls(cfg, ds.img_shape)
    if cfg.perceptual:
        if cls is not SuperResolution or ds.c is None:
            raise GankitError("task.perceptual needs task.name=sr on labelled images (the feature loss reads the "
                              "data's bundled classifier; no VGG weights are downloaded)")
        from gankit.metrics.classifier import get_classifier
        task.features = get_classifier(ds)[0].body.requires_grad_(False)
    return task


def task_from_meta(meta: dict) -> Task:
    """The task a run trained (as its generator.json / checkpoint meta records it)."""
    cfg = TaskConfig(**meta.get("task", {}))
    cls = TASKS.get(cfg.name)
    if cls is Noise:
        return Noise(cfg, tuple(meta["img_shape"]), meta["z_dim"])
    if cls is Translate:
        return Translate(cfg, tuple(meta["img_shape"]), in_channels=meta["in_shape"][0])
    return cls(cfg, tuple(meta["img_shape"]))


@torch.inference_mode()
def translate(G: nn.Module, task: Task, images: Tensor, from_targets: bool = False, mask: Optional[Tensor] = None,
              seed: int = 0, chunk: int = 256, direction: str = "AtoB") -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """G's outputs for `images` (N, C, H, W) in [-1, 1], in eval mode, in chunks. `from_targets`: the images
    are targets and G's inputs are derived from them as in training (downscale, edges, holes). Inpainting
    always reads the images and their holes (`mask`, (N, 1, H, W), 1 = hole; drawn from the task's holes
    with `seed` when None). Unpaired runs translate in `direction` (AtoB or BtoA).
    -> (outputs, G's inputs, masks or None), on G's device."""
    from gankit.distributed import SharedNoise, World
    if task.unpaired and not task.two_way and direction != "AtoB":
        raise GankitError(f"this run translates one way, A to B (task.name={task.cfg.name}); {direction} is not "
                          f"one it learned")
    if task.unpaired:
        G = G.one_way(direction)
    device = next(G.parameters()).device
    noise = SharedNoise(torch.Generator().manual_seed(seed), World())
    was_training = G.training
    G.eval()
    outs, ins, masks = [], [], []
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].to(device).float()
        if isinstance(task, Inpaint):
            m = mask[i:i + chunk] if mask is not None else None
            batch = {"real": x, "c": None, **task.inputs(x, noise, m)}
            masks.append(batch["mask"])
        else:
            batch = {"real": x, "c": None, **(task.inputs(x, noise) if from_targets else {"input": x})}
        outs.append(task.generate(G, batch, noise).float())
        ins.append(batch["input"])
    G.train(was_training)
    return torch.cat(outs), torch.cat(ins), torch.cat(masks) if masks else None


def example_grid(G: nn.Module, task: Task, held_out, n: int = 8) -> Tensor:
    """Rows input | output | target for the first `n` held-out images (fixed inputs and holes): (3n, C, H, W).
    Unpaired runs: rows A | G_AB(A) | G_BA(G_AB(A)) and B | G_BA(B) | G_AB(G_BA(B)): (6n, C, H, W); one way
    (cut): A | G(A) | real images of B."""
    if task.two_way:
        rows = []
        first = slice(n)
        for x, there, back in ((held_out.images(first), "AtoB", "BtoA"), (held_out.b.images(first), "BtoA", "AtoB")):
            y = translate(G, task, x, direction=there)[0]
            rows += [x.cpu(), y.cpu(), translate(G, task, y, direction=back)[0].cpu()]
        return torch.cat(rows)
    x = held_out.images(slice(n))
    if task.unpaired:
        return torch.cat([x.cpu(), translate(G, task, x)[0].cpu(), held_out.b.images(slice(n)).cpu()])
    if held_out.a is not None:
        fake, a, m = translate(G, task, held_out.a[:n])
    else:
        fake, a, m = translate(G, task, x, from_targets=True)
    shown = task.shown_input({"input": a})
    return torch.cat([shown.cpu(), fake.cpu(), x.cpu()])


from gankit import unpaired  # noqa: E402,F401  (registers the unpaired tasks: cycle, cut)
