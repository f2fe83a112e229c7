"""Unpaired translation tasks (registered in tasks.TASKS): CycleGAN's `cycle`, both ways, and CUT's `cut`,
one way. Both train on a data set with two domains (`Dataset.b`, domains.py); their nets are in
nets/img2img.py (TwoWay and TwoDomains; PatchFeatures)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gankit.registry import GankitError
from gankit.tasks import TASKS, Task

Tensor = torch.Tensor


class Unpaired(Task):
    """Base of the unpaired tasks: two domains, each with its own held-out split; G's input is an image of
    its source domain."""
    unpaired = True

    def split(self, ds):
        """Each domain's own held-out split (as `Task.split`); the training and held-out sets keep theirs in `.b`."""
        if ds.b is None:
            raise GankitError(f"task.name={self.cfg.name} translates between two domains; data set '{ds.name}' has "
                              f"one (use data.name=unpaired data.root=DIR with A/ and B/, or mnist2digits)")
        train_a, held_a = Task.split(self, ds)
        train_b, held_b = Task.split(self, ds.b)
        train_a.b, held_a.b = train_b, held_b
        return train_a, held_a

    def inputs(self, real, noise):
        return {"input": real}  # a direction's input is an image of its source domain


@TASKS.register("cycle")
class Cycle(Unpaired):
    """Unpaired translation (CycleGAN, Zhu et al. 2017): G_AB and G_BA, D_A and D_B (one module each:
    nets.img2img.TwoWay, TwoDomains), trained on a batch of A and a batch of B stacked; D judges real (a, b)
    against fakes (G_BA(b), G_AB(a)), half of them drawn from a pool of the last `task.pool` fakes per D (the
    reference's ImagePool: per process under torchrun); G adds the L1 of the cycle reconstructions, weighted
    lambda_A = `task.cycle` for a -> b -> a and lambda_B = `task.cycle_b` (by default the same) for b -> a -> b,
    and `task.identity` x lambda_A x L1 of G_BA(a) ~ a, `task.identity` x lambda_B x L1 of G_AB(b) ~ b, as the
    reference weighs them. Each term is the mean of the two domains' means: the reference's sum over the two
    directions, halved (Adam does not see the factor). Where one domain holds information the other cannot
    (texture on B, say), its cycle can only be met by hiding that information in the other domain's images;
    a smaller weight for that cycle spares the translation from it. Data: two domains (`data.name=unpaired`,
    mnist2digits, ...)."""
    two_way = True

    def __init__(self, cfg, img_shape, z_dim=0):
        super().__init__(cfg, img_shape, z_dim)
        self.pools = [None, None]  # (k, C, H, W) fakes of domain A and of domain B

    def batch(self, real, c, noise, b=None):
        return {"real": torch.cat([real, b]), "c": None}

    def generate(self, G, batch, noise):
        if "input" in batch:  # one direction (translate, export): G is that direction's net
            return G(batch["input"])
        x = batch["real"]
        out = G(x, None, direction="cycle", identity=bool(self.cfg.identity))
        n = x.shape[0]
        batch["rec"], batch["idt"] = out[n:2 * n], (out[2 * n:] if self.cfg.identity else None)
        return out[:n]  # fakes of A then of B, matching real (a, b) in D = TwoDomains(D_A, D_B)

    def weights(self):
        """(lambda_A, lambda_B): the weights of the cycles that start in A and in B."""
        return self.cfg.cycle, self.cfg.cycle if self.cfg.cycle_b < 0 else self.cfg.cycle_b

    def g_terms(self, batch, fake):
        real, terms = batch["real"].float(), {}
        wa, wb = self.weights()

        def l1(x):  # the two domains' mean L1 to real, weighted lambda_A and lambda_B, averaged
            err_a, err_b = (x.float() - real).abs().chunk(2)
            return (wa * err_a.mean() + wb * err_b.mean()) / 2

        if wa or wb:
            terms["cycle"] = l1(batch["rec"])
        if batch.get("idt") is not None:
            terms["identity"] = self.cfg.identity * l1(batch["idt"])
        return terms

    def parts(self, logits):
        a, b = logits.chunk(2)
        return {"A": a, "B": b}

    def history(self, fake, noise):
        if not self.cfg.pool:
            return fake
        return torch.cat([self._query(k, part, noise) for k, part in enumerate(fake.chunk(2))])

    def _query(self, k: int, images: Tensor, noise) -> Tensor:
        """The reference ImagePool's query: fill the pool first; then each image is, with probability 1/2,
        swapped for a random stored one (which it replaces). Two draws per image, used or not."""
        u = noise.rand(len(images), 2).tolist()  # CPU: no device sync per image
        pool = self.pools[k]
        pool = images.new_empty((0, *images.shape[1:])) if pool is None else pool.to(images.device, images.dtype)
        out = []
        for img, (swap, pick) in zip(images, u):
            if len(pool) < self.cfg.pool:
                pool = torch.cat([pool, img[None]])
                out.append(img)
            elif swap > 0.5:
                j = min(int(pick * self.cfg.pool), self.cfg.pool - 1)
                out.append(pool[j].clone())
                pool[j] = img
            else:
                out.append(img)
        self.pools[k] = pool
        return torch.stack(out)

    def state_dict(self):
        return {"pools": [None if p is None else p.detach().cpu() for p in self.pools]}

    def load_state_dict(self, state):
        self.pools = list(state.get("pools", [None, None]))


def patch_nce(q: Tensor, k: Tensor, t: float) -> Tensor:
    """CUT's PatchNCE loss (Park et al. 2020), per image: q, k (M, P, C) L2-normalised features of P patches of
    the output and of the input at the same positions; each q patch must pick out its own k patch among the
    image's P (InfoNCE, temperature t; the other patches of the same image are the negatives, the
    reference's default). k is a fixed target (detached). In fp32. -> (M,) the mean over patches."""
    with torch.autocast(q.device.type, enabled=False):
        q, k = q.float(), k.detach().float()
        logits = torch.bmm(q, k.transpose(1, 2)) / t  # (M, P, P): positives on the diagonal
        target = torch.arange(q.shape[1], device=q.device).repeat(q.shape[0])
        return F.cross_entropy(logits.flatten(0, 1), target, reduction="none").view(q.shape[0], -1).mean(1)


@TASKS.register("cut")
class Contrastive(Unpaired):
    """Unpaired translation one way, A -> B (CUT, Park et al. 2020): one G (nets.img2img.PatchFeatures), one D
    on domain B, and instead of a second G and a cycle, `task.nce` x the PatchNCE loss between patches of
    G(a) and of a at the same positions, in G's own encoder features at its taps (`patch_nce`, averaged
    over the taps; `task.patches` per image and tap, temperature `task.nce_t`). With `task.identity` the
    same loss on b -> G(b) joins, weighted `identity` to A's 1, the two averaged (the reference's nce_idt:
    identity 1; FastCUT: 0). The patch positions are drawn per image from the shared stream."""

    def batch(self, real, c, noise, b=None):
        return {"real": b, "c": None, "source": real}  # D judges domain B; G translates the batch of A

    def generate(self, G, batch, noise):
        if "input" in batch:  # translate, export: images of A
            return G(batch["input"])
        a, b = batch["source"], batch["real"]
        taps, hw = len(getattr(G, "module", G).taps), a.shape[-2] * a.shape[-1]  # G may be DDP-wrapped
        u = [noise.rand(len(a), taps, hw, device=a.device)]  # per image, so a split batch draws the same
        if self.cfg.identity:
            u.append(noise.rand(len(b), taps, hw, device=b.device))
        x = torch.cat([a, b]) if self.cfg.identity else a
        out, batch["q"], batch["k"] = G(x, patches=torch.cat(u), n_patches=self.cfg.patches)
        return out[:len(a)]  # G(a): the fakes of domain B

    def g_terms(self, batch, fake):
        if not self.cfg.nce:
            return {}
        per_image = torch.stack([patch_nce(q, k, self.cfg.nce_t) for q, k in zip(batch["q"], batch["k"])]).mean(0)
        n, w = len(batch["source"]), self.cfg.identity
        nce = per_image[:n].mean() if not w else (per_image[:n].mean() + w * per_image[n:].mean()) / (1 + w)
        return {"nce": self.cfg.nce * nce}
