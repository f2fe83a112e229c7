"""Image-to-image nets: the pix2pix U-Net, SRResNet, CycleGAN's ResNet G (and CUT's, with its patch heads),
and the PatchGAN discriminator (registry TRANSLATORS).

A translator family registers `build(in_shape, out_shape, d_shape, **args) -> (G, D)`, all three shapes
coming from the task (tasks.py): G maps (N, *in_shape) -> (N, *out_shape) in [-1, 1] and has attributes
`in_shape`, `img_shape` (= out_shape), `z_dim` = 0, `c_dim` = 0; D maps (N, *d_shape) -> (N, P) raw patch
logits (P >= 1 judged patches per image, higher = more real). Like every net here they know nothing of losses.

Unpaired translation (task `cycle`) trains two of each: `build_two_way` pairs G_AB with G_BA (`TwoWay`) and
D_A with D_B (`TwoDomains`), so the loop still holds one G, one D and one optimizer each (as CycleGAN's
reference code chains both nets' parameters into one Adam). CUT (task `cut`) translates one way; its G
(`PatchFeatures`) also returns the projected patch features its contrastive loss compares.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit.nets.dcgan import base_size
from gankit.nets.layers import dcgan_init
from gankit.registry import Registry

TRANSLATORS = Registry("image-to-image family")


class UNet(nn.Module):
    """pix2pix's U-Net (Isola et al. 2017): stride-2 4x4 convs down (LeakyReLU 0.2, BatchNorm), a 3x3
    bottleneck, transposed convs up (ReLU, BatchNorm) with skip connections, Tanh out; dropout 0.5 in the
    innermost up blocks is G's only noise, as in the paper. The depth is the number of halvings the side
    allows (28 -> 14 -> 7: 2; 32: 5), at most `max_depth` (8 reaches 1x1 at 256 px)."""

    def __init__(self, in_shape, out_shape, width: int = 64, max_width: int = 512, max_depth: int = 8,
                 dropout: float = 0.5):
        super().__init__()
        self.in_shape, self.img_shape, self.z_dim, self.c_dim = tuple(in_shape), tuple(out_shape), 0, 0
        depth = min(base_size(in_shape[1])[1], max_depth)
        chs = [min(width * 2 ** i, max_width) for i in range(depth)]
        self.down = nn.ModuleList([nn.Conv2d(in_shape[0], chs[0], 4, 2, 1)])
        for i in range(1, depth):
            self.down.append(nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(chs[i - 1], chs[i], 4, 2, 1, bias=False),
                                           nn.BatchNorm2d(chs[i])))
        self.mid = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(chs[-1], chs[-1], 3, 1, 1, bias=False),
                                 nn.BatchNorm2d(chs[-1]))
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # innermost first; input: h and its skip, concatenated
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * chs[0], out_shape[0], 4, 2, 1),
                                             nn.Tanh()))
            else:
                noise = [nn.Dropout(dropout)] if depth - 1 - i < 3 and dropout else []
                self.up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * chs[i], chs[i - 1], 4, 2, 1, bias=False),
                                             nn.BatchNorm2d(chs[i - 1]), *noise))

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        skips, h = [], x  # x: (N, *in_shape)
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.mid(h)
        for block, skip in zip(self.up, reversed(skips)):
            h = block(torch.cat([h, skip], 1))
        return h  # (N, *out_shape)


class ResidualBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3 + identity, no BatchNorm (BasicSR's MSRResNet block)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.ReLU(), nn.Conv2d(ch, ch, 3, 1, 1))

    def forward(self, x):
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet (Ledig et al. 2017) as BasicSR's MSRResNet draws it: conv in, `blocks` residual blocks
    without BatchNorm, x2 sub-pixel (PixelShuffle) stages up to the scale, conv out, added to the bilinear
    upsampling of the input, clamped to [-1, 1]."""

    def __init__(self, in_shape, out_shape, width: int = 64, blocks: int = 16):
        super().__init__()
        self.in_shape, self.img_shape, self.z_dim, self.c_dim = tuple(in_shape), tuple(out_shape), 0, 0
        scale = out_shape[1] // in_shape[1]
        if scale * in_shape[1] != out_shape[1] or scale & (scale - 1) or scale < 2:
            raise ValueError(f"srresnet upsamples by a power of 2; got {in_shape} -> {out_shape}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_shape[0], width, 3, 1, 1), nn.ReLU())
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        ups = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.ReLU()]
        self.up = nn.Sequential(*ups, nn.Conv2d(width, out_shape[0], 3, 1, 1))
        nn.init.zeros_(self.up[-1].weight)  # starts as the bilinear upsampling
        nn.init.zeros_(self.up[-1].bias)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        h = self.head(x)
        return (base + self.up(h + self.body(h))).clamp(-1, 1)  # (N, *out_shape)


class ResnetGenerator(nn.Module):
    """CycleGAN's G (Zhu et al. 2017, after Johnson et al. 2016): reflection-padded 7x7 conv, `downs` stride-2
    3x3 convs down (the reference: 2), `blocks` residual blocks (reflection padding, InstanceNorm without
    affine parameters, as the reference code), as many transposed convs up, a 7x7 conv and Tanh. Same size in
    and out; the side must be a multiple of 2^downs (28 -> 14 -> 7 works). The reference uses 9 blocks at
    256 px and 6 at 128."""

    def __init__(self, in_shape, out_shape, width: int = 64, blocks: int = 6, downs: int = 2):
        super().__init__()
        self.in_shape, self.img_shape, self.z_dim, self.c_dim = tuple(in_shape), tuple(out_shape), 0, 0
        if in_shape[1:] != out_shape[1:] or in_shape[1] % 2 ** downs or in_shape[2] % 2 ** downs:
            raise ValueError(f"the CycleGAN G keeps the size, a multiple of {2 ** downs}; got {in_shape} -> {out_shape}")
        norm = lambda ch: nn.InstanceNorm2d(ch)  # noqa: E731  (affine=False, no running statistics)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_shape[0], width, 7), norm(width), nn.ReLU()]
        # CUT's feature taps, indices into self.net (-1: the input image), as the reference's layers 0, 4, 8,
        # 12, 16: the input, each downsampling conv, the 1st and the 5th residual block (the last, if fewer)
        self.taps, self.tap_channels = [-1], [in_shape[0]]
        for k in (2 ** i for i in range(downs)):
            self.taps.append(len(layers))
            self.tap_channels.append(width * 2 * k)
            layers += [nn.Conv2d(width * k, width * 2 * k, 3, 2, 1), norm(width * 2 * k), nn.ReLU()]
        if blocks:
            self.taps += sorted({len(layers), len(layers) + min(4, blocks - 1)})
            self.tap_channels += [width * 2 ** downs] * (len(self.taps) - len(self.tap_channels))
        layers += [ReflectResBlock(width * 2 ** downs) for _ in range(blocks)]
        for k in (2 ** i for i in range(downs, 0, -1)):
            layers += [nn.ConvTranspose2d(width * k, width * k // 2, 3, 2, 1, output_padding=1),
                       norm(width * k // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_shape[0], 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(x)  # (N, *out_shape)


class PatchFeatures(nn.Module):
    """CUT's G (Park et al. 2020): a `ResnetGenerator` whose encoder features at its `taps` are sampled at
    patch positions and projected, each tap by its own MLP head (Linear, ReLU, Linear to `head_dim`), then
    L2-normalised: the reference's PatchSampleF. `G(x)` translates. The training pass `G(x, patches=u)`
    takes x (M, C, H, W) and u (M, T, H*W) uniform draws (T = len(G.taps)): at tap t, with H_t*W_t positions,
    image i's patches are the first min(n_patches, H_t*W_t) of u[i, t, :H_t*W_t].argsort(). It returns
    (G(x), q, k), q[t] and k[t] (M, P_t, head_dim) the projected features of G(x) and of x at the same
    positions, all in one forward (DDP's contract). The reference taps the reflection-padded input; the
    input itself is tapped here, so that no tap has more than H*W positions (the padding repeats border
    pixels)."""

    def __init__(self, gen: ResnetGenerator, head_dim: int = 256):
        super().__init__()
        if gen.in_shape != gen.img_shape:
            raise ValueError(f"CUT reads its output with its own encoder, so input and output need one shape; got "
                             f"{gen.in_shape} -> {gen.img_shape}")
        self.gen = gen
        self.in_shape, self.img_shape, self.z_dim, self.c_dim = gen.in_shape, gen.img_shape, 0, 0
        self.taps = list(gen.taps)
        self.heads = nn.ModuleList([nn.Sequential(nn.Linear(ch, head_dim), nn.ReLU(), nn.Linear(head_dim, head_dim))
                                    for ch in gen.tap_channels])

    def one_way(self, direction: str = "AtoB") -> nn.Module:
        """The translator alone (translate, export): CUT learns A -> B only."""
        if direction != "AtoB":
            raise ValueError(f"CUT translates AtoB only, got {direction!r}")
        return self.gen

    def encode(self, x: torch.Tensor):
        """-> (features at each tap, the encoder's output after the last tap)."""
        feats, h = ([x] if self.taps[0] == -1 else []), x
        for i, layer in enumerate(self.gen.net[: self.taps[-1] + 1]):
            h = layer(h)
            if i in self.taps:
                feats.append(h)
        return feats, h

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, patches: Optional[torch.Tensor] = None,
                n_patches: int = 256):
        if patches is None:
            return self.gen(x)  # (N, *img_shape)
        k_feats, h = self.encode(x)
        out = self.gen.net[self.taps[-1] + 1:](h)
        q_feats, _ = self.encode(out)
        q, k = [], []
        for t, (fq, fk, head) in enumerate(zip(q_feats, k_feats, self.heads)):
            ch, positions = fq.shape[1], fq.shape[2] * fq.shape[3]
            ids = patches[:, t, :positions].argsort(1)[:, :min(n_patches, positions)]  # (M, P)
            at = ids[:, None].expand(-1, ch, -1)
            q.append(F.normalize(head(fq.flatten(2).gather(2, at).transpose(1, 2)), dim=-1))  # (M, P, head_dim)
            k.append(F.normalize(head(fk.flatten(2).gather(2, at).transpose(1, 2)), dim=-1))
        return out, q, k


class ReflectResBlock(nn.Module):
    """CycleGAN's residual block: (reflection pad, 3x3 conv, InstanceNorm) twice, ReLU between, + identity."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


class PatchGAN(nn.Module):
    """PatchGAN D (Isola et al. 2017): stride-2 4x4 convs (64, 128, 256, ... channels; LeakyReLU 0.2;
    BatchNorm, or InstanceNorm as CycleGAN's, after the first), one stride-1 conv, then a 1-channel conv: one
    raw logit per patch. The number of stride-2 layers scales with the image (28-32 px: 2, 64: 3, at most 3
    as pix2pix's 70x70 D), so small images are still judged patch by patch. -> (N, P) logits."""

    def __init__(self, in_shape, width: int = 64, max_width: int = 512, layers: int = 0, norm: str = "batch"):
        super().__init__()
        if norm not in ("batch", "instance"):
            raise ValueError(f"d_norm must be batch or instance, got {norm!r}")
        n = layers or min(3, max(1, round(math.log2(in_shape[1])) - 3))
        chs = [min(width * 2 ** i, max_width) for i in range(n + 1)]
        body = [nn.Conv2d(in_shape[0], chs[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        layer_norm = nn.BatchNorm2d if norm == "batch" else nn.InstanceNorm2d
        for i in range(1, n + 1):
            stride = 2 if i < n else 1
            body += [nn.Conv2d(chs[i - 1], chs[i], 4, stride, 1, bias=False), layer_norm(chs[i]), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*body, nn.Conv2d(chs[-1], 1, 4, 1, 1))

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(x).flatten(1)  # (N, P)


@TRANSLATORS.register("pix2pix")
def pix2pix(in_shape: Tuple[int, ...], out_shape: Tuple[int, ...], d_shape: Tuple[int, ...], g_width: int = 64,
            d_width: int = 64, max_width: int = 512, dropout: float = 0.5, d_layers: int = 0):
    """U-Net G + PatchGAN D (pix2pix; inpainting uses it with the mask as an extra input channel)."""
    G, D = UNet(in_shape, out_shape, g_width, max_width, dropout=dropout), PatchGAN(d_shape, d_width, max_width, d_layers)
    dcgan_init(G)
    dcgan_init(D)
    return G, D


@TRANSLATORS.register("srresnet")
def srresnet(in_shape: Tuple[int, ...], out_shape: Tuple[int, ...], d_shape: Tuple[int, ...], g_width: int = 64,
             blocks: int = 16, d_width: int = 64, max_width: int = 512, d_layers: int = 0):
    """SRResNet G + PatchGAN D (SRGAN, Ledig et al. 2017)."""
    D = PatchGAN(d_shape, d_width, max_width, d_layers)
    dcgan_init(D)
    return SRResNet(in_shape, out_shape, g_width, blocks), D


@TRANSLATORS.register("cyclegan")
def cyclegan(in_shape: Tuple[int, ...], out_shape: Tuple[int, ...], d_shape: Tuple[int, ...], g_width: int = 64,
             blocks: int = 6, downs: int = 2, d_width: int = 64, max_width: int = 512, d_layers: int = 0):
    """CycleGAN's ResNet G + a PatchGAN D with InstanceNorm (Zhu et al. 2017), normal(0, 0.02) init."""
    G = ResnetGenerator(in_shape, out_shape, g_width, blocks, downs)
    D = PatchGAN(d_shape, d_width, max_width, d_layers, norm="instance")
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return G, D


@TRANSLATORS.register("cut")
def cut(in_shape: Tuple[int, ...], out_shape: Tuple[int, ...], d_shape: Tuple[int, ...], g_width: int = 64,
        blocks: int = 6, downs: int = 2, d_width: int = 64, max_width: int = 512, d_layers: int = 0,
        head_dim: int = 256):
    """CUT (Park et al. 2020): CycleGAN's ResNet G with the patch heads of its contrastive loss
    (`PatchFeatures`), a PatchGAN D with InstanceNorm; the reference's xavier-normal init, gain 0.02."""
    G = PatchFeatures(ResnetGenerator(in_shape, out_shape, g_width, blocks, downs), head_dim)
    D = PatchGAN(d_shape, d_width, max_width, d_layers, norm="instance")
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.xavier_normal_(m.weight, gain=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return G, D


# --- two directions, two domains (unpaired translation) ----------------------------------------------------------
DIRECTIONS = ("AtoB", "BtoA")


class TwoWay(nn.Module):
    """G_AB and G_BA as one module. `G(x)` translates A -> B, `G(x, direction="BtoA")` B -> A; the training
    pass `G(x, direction="cycle")` takes x = (a, b) stacked on the batch ((2N, C, H, W): N images of A, then N
    of B) and returns, stacked alike, (G_BA(b), G_AB(a)) | (G_BA(G_AB(a)), G_AB(G_BA(b))) | (G_BA(a), G_AB(b)):
    the fakes of domain A then B, their cycle reconstructions, and the identity maps (the last only with
    `identity`). One forward for everything keeps DDP's one-forward-per-backward contract."""

    def __init__(self, ab: nn.Module, ba: nn.Module):
        super().__init__()
        self.ab, self.ba = ab, ba
        self.in_shape, self.img_shape, self.z_dim, self.c_dim = ab.in_shape, ab.img_shape, 0, 0

    def one_way(self, direction: str) -> nn.Module:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        return self.ab if direction == "AtoB" else self.ba

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None, direction: str = "AtoB",
                identity: bool = False) -> torch.Tensor:
        if direction != "cycle":
            return self.one_way(direction)(x)
        a, b = x.chunk(2)
        fake_b, fake_a = self.ab(a), self.ba(b)
        out = [fake_a, fake_b, self.ba(fake_b), self.ab(fake_a)]
        if identity:
            out += [self.ba(a), self.ab(b)]
        return torch.cat(out)


class TwoDomains(nn.Module):
    """D_A and D_B as one module: x (2N, ...) = N images judged as domain A, then N as domain B -> (2N, P)."""

    def __init__(self, d_a: nn.Module, d_b: nn.Module):
        super().__init__()
        self.d_a, self.d_b = d_a, d_b

    def forward(self, x: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        a, b = x.chunk(2)
        return torch.cat([self.d_a(a), self.d_b(b)])


def build_two_way(fn, shape: Tuple[int, ...], args) -> Tuple[nn.Module, nn.Module]:
    """(TwoWay(G_AB, G_BA), TwoDomains(D_A, D_B)) from a translator builder, both domains of `shape`."""
    g_ab, d_b = fn(shape, shape, shape, **args)
    g_ba, d_a = fn(shape, shape, shape, **args)
    return TwoWay(g_ab, g_ba), TwoDomains(d_a, d_b)
