"""The learning-rate schedule: exact factors, and the optimizers really run at them."""
import json
import math

import pytest

from gankit.config import TrainConfig
from gankit.schedule import lr_scale
from gankit.trainer import train


def test_constant_by_default():
    assert [lr_scale(s, TrainConfig(steps=10)) for s in (1, 5, 10)] == [1.0, 1.0, 1.0]


def test_warmup_then_linear_and_cosine_decay():
    t = TrainConfig(steps=10, lr_warmup=4, lr_decay="linear")
    assert [lr_scale(s, t) for s in (1, 2, 4, 7, 10)] == pytest.approx([0.25, 0.5, 1.0, 0.5, 0.0])
    c = TrainConfig(steps=10, lr_warmup=0, lr_decay="cosine")
    assert lr_scale(5, c) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_scale(10, c) == pytest.approx(0.0, abs=1e-12)
    assert lr_scale(3, TrainConfig(steps=10, lr_warmup=6)) == pytest.approx(0.5)


def test_a_held_lr_then_linear_decay_as_cyclegan():
    t = TrainConfig(steps=10, lr_decay="linear", lr_hold=0.5)  # constant for 5 steps, then to 0 at step 10
    assert [lr_scale(s, t) for s in (1, 5, 6, 8, 10)] == pytest.approx([1.0, 1.0, 0.8, 0.4, 0.0])


def test_training_uses_the_schedule(make_cfg, monkeypatch):
    import torch
    seen = []
    step = torch.optim.Adam.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)
    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    cfg = make_cfg("ring8", "train.lr_warmup=2", "train.lr_decay=linear", "train.lr_g=0.1", "train.lr_d=0.2",
                   steps=4)
    run = train(cfg, quiet=True)
    # per step: D then G; factors 0.5, 1, 0.5, 0
    assert seen == pytest.approx([0.1, 0.05, 0.2, 0.1, 0.1, 0.05, 0.0, 0.0])
    assert [json.loads(r)["step"] for r in (run / "stats.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
