import pytest

from gankit.config import load_config


@pytest.fixture(scope="session", autouse=True)
def feature_cache(request, tmp_path_factory):
    """One cache of feature classifiers for the whole test run, so that each is trained once, and never the
    user's: pytest's own cache folder when it has one (kept between local runs), else a fresh folder."""
    cache = getattr(request.config, "cache", None)
    path = cache.mkdir("gankit") if cache is not None else tmp_path_factory.mktemp("gankit-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("GANKIT_CACHE", str(path))
    yield path
    mp.undo()


# Overrides that make any recipe train in a second or two on CPU.
FAST = ["train.log_every=1", "train.sample_every=2", "train.ckpt_every=2", "train.device=cpu"]


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg(recipe, *overrides) -> Config writing runs under tmp_path."""
    def make(recipe="dcgan", *overrides, steps=2):
        return load_config(recipe, overrides=[*FAST, f"train.steps={steps}", f"out={tmp_path / 'runs'}",
                                              *overrides])
    return make
