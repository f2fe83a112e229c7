import pytest
import yaml

from gankit.config import (Config, config_from_plain, dump_yaml, load_config, parse_override,
                           recipe_names)
from gankit.registry import GankitError


def test_default_recipe_is_dcgan_on_bundled_data():
    cfg = load_config()
    assert cfg.recipe == "dcgan" and cfg.data.name == "mnist-5k" and cfg.model.family == "dcgan"


def test_every_seed_system_has_a_recipe():
    expected = {"seed-mlp", "seed-mlp64", "seed-dcgan", "seed-keras-dcgan", "lsgan", "wgan", "wgan-gp", "cgan",
                "dcgan", "ring8", "grid25"}
    assert expected <= set(recipe_names())


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_loads_with_description(name):
    cfg = load_config(name)
    assert cfg.recipe == name and cfg.description


def test_override_parsing_types():
    assert parse_override("train.steps=20") == {"train": {"steps": 20}}
    cfg = load_config("dcgan", overrides=["train.steps=7", "model.args.g_width=16", "train.lr_g=1e-3"])
    assert cfg.train.steps == 7 and cfg.model.args["g_width"] == 16 and cfg.train.lr_g == 0.001


@pytest.mark.parametrize("override, words", [
    ("train.stpes=5", ["train.stpes", "steps"]),
    ("trian.steps=5", ["trian", "train"]),
    ("train.steps=abc", ["train.steps", "integer"]),
    ("train.steps=-3", ["train.steps", "positive"]),
    ("train.opt=adamw", ["train.opt", "adam", "rmsprop"]),
    ("train.channels_last=maybe", ["train.channels_last", "true or false"]),
    ("train.lr_g=0", ["train.lr_g", "positive"]),
])
def test_bad_config_fails_loudly(override, words):
    with pytest.raises(GankitError) as e:
        load_config("dcgan", overrides=[override])
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_unknown_key_suggests_closest():
    with pytest.raises(GankitError, match="did you mean 'steps'"):
        load_config("dcgan", overrides=["train.stpes=5"])


def test_unknown_recipe_lists_choices():
    with pytest.raises(GankitError, match="did you mean 'dcgan'.*choose from"):
        load_config("dcgn")


def test_yaml_file_is_a_delta_over_a_recipe(tmp_path):
    f = tmp_path / "my.yaml"
    f.write_text("recipe: wgan-gp\ntrain: {steps: 11}\n")
    cfg = load_config(file=str(f))
    assert cfg.recipe == "wgan-gp" and cfg.train.steps == 11 and cfg.loss.gp == 10.0


def test_yaml_file_without_recipe_is_a_delta_over_defaults(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("model: {family: mlp}\ntrain: {steps: 3}\n")
    cfg = load_config(file=str(f))
    assert cfg.recipe == "mine" and cfg.model.family == "mlp" and cfg.train.steps == 3


def test_config_round_trips_through_yaml():
    cfg = load_config("cgan", overrides=["train.steps=5"])
    again = config_from_plain(yaml.safe_load(dump_yaml(cfg)))
    assert again == cfg and isinstance(again, Config)


def test_off_and_on_words_are_choices_not_booleans(tmp_path):
    """YAML 1.1 reads a bare `off` as false: train.amp=off (an override or a YAML file) still means 'off'."""
    assert load_config("dcgan", overrides=["train.amp=off"]).train.amp == "off"
    (tmp_path / "c.yaml").write_text("recipe: dcgan\ntrain: {amp: off}\n")
    assert load_config(file=str(tmp_path / "c.yaml")).train.amp == "off"
    with pytest.raises(GankitError, match="train.amp"):
        load_config("dcgan", overrides=["train.amp=true"])  # a real boolean is still refused
