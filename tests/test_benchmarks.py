"""The benchmark scripts drive the trainer's own code: a short run of each path they time."""
import importlib.util
from pathlib import Path

import pytest
import torch

SPEED = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


def load_speed():
    spec = importlib.util.spec_from_file_location("speed_benchmark", SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speed_benchmark_trains_through_the_trainers_step():
    speed = load_speed()
    parts, cfg = speed.make_gankit("cpu", 8, ["model.args.g_width=8", "model.args.d_width=8", "train.n_critic=2"])
    before = [q.clone() for q in parts.G.parameters()]
    ema_before = [q.clone() for q in parts.G_ema.parameters()]
    speed.gankit_steps(parts, cfg, 2)
    assert parts.d_steps == 4  # n_critic D steps per iteration, as in the trainer's loop
    assert any(not torch.equal(a, b) for a, b in zip(before, parts.G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(ema_before, parts.G_ema.parameters()))


@pytest.mark.parametrize("units", [["avx512_bf16"], []])
def test_the_recipe_table_times_each_recipe_in_fp32_and_bf16_where_it_is_native(monkeypatch, units):
    from gankit import hardware
    monkeypatch.setattr(hardware, "bf16_units", lambda: units)  # either CPU, whatever runs the test
    speed = load_speed()
    table = speed.recipe_table(["srgan-x4"], rounds=1, steps=1, device=torch.device("cpu"))
    row = table.splitlines()[-1].split(" | ")
    assert row[:4] == ["| srgan-x4", "srresnet", "64", "28"]  # the recipe's own nets, batch and size
    assert float(row[4]) > 0
    if units:
        assert float(row[5]) > 0 and row[6].endswith("× |")
    else:  # train.amp=bf16 would train in fp32 there: no row to time
        assert row[5] == "no bf16 units" and row[6] == " |"


def test_precision_rows_exist_only_where_bf16_is_native():
    speed = load_speed()
    assert speed.amp_levers(default_amp=True, native=True) == ["train.amp=off"]
    assert "train.amp=bf16" in speed.amp_levers(default_amp=False, native=True)
    assert speed.amp_levers(default_amp=False, native=False) == []
