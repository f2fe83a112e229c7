"""Training statistics: `Stats.report(name, tensor)` in the hot loop (no host sync), `flush(step)` at the
log cadence reduces everything with one sync and writes `stats.jsonl` and TensorBoard scalars."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional

import torch


class Stats:
    def __init__(self, run_dir: Optional[Path], tensorboard: bool = True, world=None):
        """run_dir None: reduce only, write nothing (ranks other than 0). world: average over ranks."""
        self.world = world
        self._pending: Dict[str, List[torch.Tensor]] = defaultdict(list)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writer = None
        if self.run_dir is not None and tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(self.run_dir))

    def report(self, name: str, value) -> None:
        """Queue a value (tensor or number); detached, never synced here."""
        self._pending[name].append(value.detach().float() if torch.is_tensor(value) else torch.tensor(float(value)))

    def reduce(self) -> Dict[str, float]:
        """Means of everything reported since the last call: one device->host copy."""
        if not self._pending:
            return {}
        names = list(self._pending)
        means = torch.stack([torch.stack([v.to(self._pending[names[0]][0].device).reshape(()) for v in vals]).mean()
                             for vals in self._pending.values()])
        if self.world is not None:
            from gankit import distributed
            means = distributed.mean(means, self.world)
        means = means.tolist()
        self._pending.clear()
        return dict(zip(names, means))

    def write(self, step: int, values: Dict[str, float]) -> None:
        if self.run_dir is None:
            return
        row = {"step": step, **{k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}}
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                if math.isfinite(v):
                    self.writer.add_scalar(k, v, step)

    def image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        """grid: (3, H, W) in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(tag, grid, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_stats(path: Path) -> List[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
