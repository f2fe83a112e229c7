import pytest

from gankit.config import load_config

# Overrides that make any recipe train in a second or two on CPU.
FAST = ["train.log_every=1", "train.sample_every=2", "train.ckpt_every=2", "train.device=cpu"]


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(recipe, *overrides) -> Config writing runs under tmp_path."""
    def make(recipe="dcgan", *overrides, steps=2):
        return load_config(recipe, overrides=[*FAST, f"train.steps={steps}", f"out={tmp_path / 'runs'}",
                                              *overrides])
    return make
