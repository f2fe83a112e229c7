"""The standard FID feature extractor: Inception-v3 with the TensorFlow FID weights (2015-12-05), in
torch-fidelity's port, the network torchmetrics' FID/KID/IS use. Features: the 2048-d pool layer; IS
logits: the 1008-way head without bias ("logits_unbiased"), as torch-fidelity computes IS.

The weights come from torch-fidelity's release page on first use (cached by torch.hub), or from a file
given with `--inception-weights PATH`. Offline with neither, this is a one-line error that names the
offline alternative (`--features classifier`); it never falls back silently.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional, Tuple

import torch

from gankit.registry import GankitError

WEIGHTS_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth")


def _safe_check(path: Path) -> str:
    """Refuse anything but a plain tensor state dict (torch-fidelity itself unpickles without limits);
    returns a short hash of the file, the cache key of real features computed with it."""
    if not path.is_file():
        raise GankitError(f"--inception-weights {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; all mean "not a plain weights file"
        raise GankitError(f"--inception-weights {path} is not a plain PyTorch state dict "
                          f"({type(e).__name__}); expected {WEIGHTS_URL.rsplit('/', 1)[-1]}") from None
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise GankitError(f"--inception-weights {path} does not hold Inception-v3 FID weights (no fc.weight)")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Inception:
    """(N, C, H, W) in [-1, 1], C = 1 or 3, any size -> (features (N, 2048), logits (N, 1008)), float64."""

    def __init__(self, weights: Optional[str] = None, device: str = "cpu"):
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError:
            raise GankitError("--features inception needs torch-fidelity (pip install torch-fidelity)") from None
        path = Path(weights) if weights else None
        self.key = f"inception-{_safe_check(path)}" if path else "inception-tf2015"
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                                   feature_extractor_weights_path=str(path) if path else None)
        except (OSError, RuntimeError, ValueError) as e:  # URLError is an OSError; bad shapes a RuntimeError
            first = (str(e).splitlines() or [type(e).__name__])[0]
            where = f"from {path}" if path else "(offline? they download on first use)"
            raise GankitError(f"could not load the Inception-v3 FID weights {where}: {first[:160]}; pass "
                              f"--inception-weights PATH ({WEIGHTS_URL}) or use --features classifier "
                              f"(works offline)") from None
        self.device = torch.device(device)
        self.net.to(self.device)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, batch: int = 100) -> Tuple[torch.Tensor, torch.Tensor]:
        feats, logits = [], []
        for i in range(0, len(x), batch):
            u8 = ((x[i:i + batch].float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            if u8.shape[1] == 1:
                u8 = u8.expand(-1, 3, -1, -1)
            f, lg = self.net(u8.to(self.device))
            feats.append(f.double().cpu())
            logits.append(lg.double().cpu())
        return torch.cat(feats), torch.cat(logits)
