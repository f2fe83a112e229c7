"""Configuration: frozen dataclasses with defaults in code; recipes and files are small YAML deltas.

Resolution order: defaults -> recipe (``recipes/<name>.yaml``) -> user YAML file -> ``key=value`` overrides.
Every key is checked against the schema and every value against its type; a typo fails loudly with the
closest valid key. The resolved config is saved as ``config.yaml`` in the run directory and inside every
checkpoint, so a run can always be rebuilt from its own files.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional

import yaml

from gankit.registry import GankitError, did_you_mean

RECIPE_DIR = Path(__file__).parent / "recipes"


@dataclass(frozen=True)
class DataConfig:
    name: str = "mnist-5k"      # registered data set (see `gankit.data.DATASETS`)
    root: str = "data"          # download dir (torchvision sets) or image folder (`folder`)
    download: bool = True       # torchvision sets: fetch when missing
    resolution: int = 0         # 0 = the data set's own; else resize to resolution x resolution
    channels: int = 0           # folder only: 0 = auto (RGB if any colour image), 1 or 3
    crop: int = 0               # train on random crop x crop patches, a new position each time an image is
    #                             drawn, so images of any size work (folder, photos: data.resolution then
    #                             resizes the shorter side, 0 keeps it); 0 = whole images
    held_out: int = 0           # images of each class set aside, never trained on (the real test images of
    #                             `gankit eval --metrics cas`); a fixed choice (seed 0); 0 = none
    per_class: int = 0          # train on this many images of each class (a fixed, class-balanced subset of
    #                             what is not held out; smaller k nests inside larger); 0 = all
    xflip: bool = False         # also train on every image mirrored left-right (doubles the data set)
    in_memory: Literal[False, True, "auto"] = "auto"  # prepared: read the file into memory (as bytes), or by
    #                             index from disk; auto: into memory when it takes at most a quarter of the
    #                             memory available (prepared.MEMORY_SHARE)
    stream: bool = False        # folder: decode each batch from the files as it is drawn, a few batches ahead,
    #                             instead of all images at start (for folders too big or slow to prepare)
    workers: int = 0            # data.stream: decoding processes; 0 = the cores, at most 8


@dataclass(frozen=True)
class ModelConfig:
    family: str = "dcgan"       # registered family (see `gankit.nets.FAMILIES`)
    z_dim: int = 100
    conditional: Literal[False, True, "auto"] = False  # class labels into G and D (c_dim = the data's classes);
    #                                                 auto: when the data set has labels, else unconditional
    args: Dict[str, Any] = field(default_factory=dict)  # the family builder's keyword arguments
    d_pca: int = 0              # D also judges the images' first K whitened principal components with an MLP
    #                             (nets/pca_head.py; evens out how often G draws each kind of image); 0 = off


@dataclass(frozen=True)
class LossConfig:
    name: str = "bce"           # registered loss (see `gankit.losses.LOSSES`)
    gp: float = 0.0             # WGAN-GP gradient penalty weight on D (Gulrajani et al. 2017: 10)
    r1: float = 0.0             # R1 penalty weight gamma on D (Mescheder et al. 2018)
    r1_every: int = 1           # lazy R1 (and R2): apply every k D steps, scaled by k (StyleGAN2: 16)
    r2: float = 0.0             # R2 penalty weight on D at G's samples (Mescheder et al. 2018; R3GAN: = r1)
    clip: float = 0.0           # WGAN weight clipping of D's parameters to [-clip, clip] (Arjovsky: 0.01)
    acgan: float = 0.0          # ACGAN auxiliary class loss weight (Odena et al. 2017; needs d_cond=aux)


@dataclass(frozen=True)
class TaskConfig:
    name: str = "noise"         # registered task (see `gankit.tasks.TASKS`): noise | translate | sr | inpaint | cycle | cut
    input: str = ""             # translate without pairs: how inputs come from targets ("edges": Sobel)
    scale: int = 4              # sr: the downscaling factor (a power of 2)
    l1: float = 0.0             # weight of the L1 reconstruction loss in G's loss (pix2pix: 100)
    l2: float = 0.0             # weight of the L2 (MSE) reconstruction loss
    perceptual: float = 0.0     # sr: weight of the feature loss in the data's bundled classifier features
    adv: float = 1.0            # weight of the adversarial term in G's loss (SRGAN: 1e-3; 0: reconstruction only)
    pretrain_steps: int = 0     # G steps on the reconstruction loss alone before D joins (SRGAN)
    cycle: float = 0.0          # cycle: weight of the cycle-consistency L1 (CycleGAN: 10), A -> B -> A and, unless
    #                             cycle_b says otherwise, B -> A -> B
    cycle_b: float = -1.0       # cycle: weight of the B -> A -> B cycle (the reference's lambda_B); < 0: `cycle`
    identity: float = 0.0       # cycle: weight of the identity L1 as a share of its cycle weight (CycleGAN: 0.5); cut: of
    #                             the identity PatchNCE on B -> G(B) beside A -> G(A) (CUT: 1, FastCUT: 0)
    pool: int = 0               # cycle: fakes kept per D, half of D's fakes drawn from them (CycleGAN: 50)
    nce: float = 0.0            # cut: weight of the PatchNCE loss (CUT: 1, FastCUT: 10)
    patches: int = 256          # cut: patches sampled per image at each feature tap (CUT: 256)
    nce_t: float = 0.07         # cut: temperature of the PatchNCE loss (CUT: 0.07)
    d_mask: bool = False        # inpaint: D sees the mask beside the image (DeepFill v2's SN-PatchGAN, Yu et al. 2019)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000           # G updates
    batch_size: int = 64        # per process; under torchrun the global batch is batch_size x world size
    n_critic: int = 1           # D updates per G update
    opt: Literal["adam", "rmsprop"] = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_kimg: float = 0.0       # half-life of the EMA of G in thousands of images; 0 = no EMA
    seed: int = 0
    device: str = "auto"        # auto | cpu | cuda | cuda:N
    max_minutes: float = 0.0    # stop early after this much wall time (0 = no limit)
    log_every: int = 50
    sample_every: int = 250
    ckpt_every: int = 500
    eval_every: int = 0         # evaluate (classifier-feature FID, classes) every N steps; 0 = never
    eval_n: int = 2000          # generated samples per evaluation during training
    on_nan: Literal["stop", "skip"] = "stop"
    amp: Literal["off", "bf16", "auto"] = "off"
    channels_last: bool = False
    reuse_fake: bool = False    # G step reuses the D step's z (one fewer sampling; same fake batch)
    fused_opt: bool = True      # foreach/fused optimizer kernels where torch has them
    sync_bn: bool = False       # torchrun on CUDA: BatchNorm statistics over the global batch (SyncBatchNorm)
    compile: bool = False       # torch.compile G and D for training (graphs that fail to compile run eagerly)
    augment: str = ""           # what D sees (real and fake) goes through: a DiffAugment policy, e.g.
    #                             "color,translation,cutout" (augment.py), or "ada" (ada.py); "" = nothing
    ada_target: float = 0.6     # ada: the r_t = E[sign(D(real))] that p is steered to (Karras et al. 2020)
    ada_kimg: float = 500.0     # ada: thousands of images over which p can move from 0 to 1
    pack: int = 1               # PacGAN: D judges packs of this many samples (Lin et al. 2018); 1 = off
    lr_warmup: int = 0          # linear learning-rate warm-up over this many G steps (0 = none)
    lr_decay: Literal["none", "linear", "cosine"] = "none"  # after warm-up, decay to 0 at train.steps
    lr_hold: float = 0.0        # with lr_decay: the share of train.steps at a constant lr first (CycleGAN: 0.5)


@dataclass(frozen=True)
class Config:
    recipe: str = "custom"
    description: str = ""
    out: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------------------
def recipe_names() -> List[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise GankitError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise GankitError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise GankitError(f"{path}: expected a mapping of config keys at the top level")
    return data


def recipe_delta(name: str) -> Dict[str, Any]:
    if name not in recipe_names():
        raise GankitError(f"unknown recipe '{name}'{did_you_mean(name, recipe_names())}; "
                          f"choose from {', '.join(recipe_names())}")
    delta = read_yaml(RECIPE_DIR / f"{name}.yaml")
    delta["recipe"] = name
    return delta


def parse_override(text: str) -> Dict[str, Any]:
    """'train.steps=2000' -> {'train': {'steps': 2000}} (the value is parsed as YAML)."""
    if "=" not in text:
        raise GankitError(f"override '{text}' is not of the form key=value (e.g. train.steps=2000)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    out: Dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def merge(base: Dict[str, Any], delta: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in delta.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "args":
            out[k] = merge(out[k], v)
        elif k == "args" and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _check_value(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and ("off" if not value else "on") in choices:
            value = "off" if not value else "on"  # YAML 1.1 reads a bare off / on as a boolean
        if not any(value == ch and type(value) is type(ch) for ch in choices):  # True is not 1
            names = [str(ch).lower() if isinstance(ch, bool) else ch for ch in choices]
            raise GankitError(f"{key}: '{value}' is not allowed{did_you_mean(str(value), names)}; "
                              f"choose from {', '.join(names)}")
        return value
    if origin in (dict, Dict) or tp is dict:
        if not isinstance(value, dict):
            raise GankitError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise GankitError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GankitError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads '1e-3' (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GankitError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise GankitError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type, data: Dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a (possibly partial) dict; unknown keys and wrong types raise GankitError."""
    if not isinstance(data, dict):
        raise GankitError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = prefix + str(key)
        if key not in names:
            raise GankitError(f"unknown config key '{full}'{did_you_mean(str(key), names)}; "
                              f"valid keys here: {', '.join(prefix + n for n in names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_dict(tp, value, full + ".")
        else:
            kwargs[key] = _check_value(full, value, tp)
    return cls(**kwargs)


def load_config(recipe: Optional[str] = None, file: Optional[str] = None,
                overrides: Optional[List[str]] = None) -> Config:
    """Defaults <- recipe <- file <- overrides. With neither recipe nor file, the default recipe `dcgan`."""
    delta: Dict[str, Any] = {}
    if file is not None:
        file_delta = read_yaml(Path(file))
        base = file_delta.pop("recipe", recipe)
        delta = merge(recipe_delta(base), file_delta) if base else file_delta
        if not base:
            delta.setdefault("recipe", Path(file).stem)
    else:
        delta = recipe_delta(recipe or "dcgan")
    for text in overrides or []:
        delta = merge(delta, parse_override(text))
    cfg = from_dict(Config, delta)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Value checks that types alone cannot express; each names the key."""
    t = cfg.train
    positive = {"train.steps": t.steps, "train.batch_size": t.batch_size, "train.n_critic": t.n_critic,
                "train.log_every": t.log_every, "train.sample_every": t.sample_every,
                "train.ckpt_every": t.ckpt_every, "model.z_dim": cfg.model.z_dim,
                "loss.r1_every": cfg.loss.r1_every, "train.pack": t.pack, "task.patches": cfg.task.patches,
                "task.nce_t": cfg.task.nce_t}
    for key, v in positive.items():
        if v <= 0:
            raise GankitError(f"{key} must be positive, got {v}")
    for key, v in {"train.lr_g": t.lr_g, "train.lr_d": t.lr_d}.items():
        if not v > 0:
            raise GankitError(f"{key} must be positive, got {v}")
    loss = cfg.loss
    for key, v in {"train.eval_every": t.eval_every, "loss.gp": loss.gp, "loss.r1": loss.r1, "loss.r2": loss.r2,
                   "loss.clip": loss.clip, "loss.acgan": loss.acgan, "train.ema_kimg": t.ema_kimg,
                   "train.max_minutes": t.max_minutes, "train.lr_warmup": t.lr_warmup,
                   "model.d_pca": cfg.model.d_pca, "task.l1": cfg.task.l1, "task.l2": cfg.task.l2,
                   "task.perceptual": cfg.task.perceptual, "task.adv": cfg.task.adv,
                   "task.pretrain_steps": cfg.task.pretrain_steps, "task.cycle": cfg.task.cycle,
                   "task.identity": cfg.task.identity, "task.pool": cfg.task.pool, "task.nce": cfg.task.nce,
                   "data.crop": cfg.data.crop}.items():
        if v < 0:
            raise GankitError(f"{key} must be >= 0, got {v}")
    if cfg.task.scale < 2 or cfg.task.scale & (cfg.task.scale - 1):
        raise GankitError(f"task.scale must be a power of 2 (2, 4, 8), got {cfg.task.scale}")
    if t.batch_size % t.pack:
        raise GankitError(f"train.batch_size={t.batch_size} must be a multiple of train.pack={t.pack}")
    if t.eval_n < 2:
        raise GankitError(f"train.eval_n must be at least 2, got {t.eval_n}")
    if not 0 <= t.lr_hold < 1:
        raise GankitError(f"train.lr_hold is a share of train.steps in [0, 1), got {t.lr_hold}")
    if not (0 <= t.beta1 < 1 and 0 <= t.beta2 < 1):
        raise GankitError(f"train.beta1/beta2 must lie in [0, 1), got {t.beta1}, {t.beta2}")


def resume_config(run_dir: Path, overrides: Optional[List[str]] = None) -> Config:
    """The saved config.yaml of a run, with `key=value` overrides (e.g. a larger train.steps)."""
    if not (Path(run_dir) / "config.yaml").is_file():
        raise GankitError(f"--resume {run_dir}: not a run directory (no config.yaml)")
    delta = read_yaml(Path(run_dir) / "config.yaml")
    for text in overrides or []:
        delta = merge(delta, parse_override(text))
    cfg = from_dict(Config, delta)
    validate(cfg)
    return cfg


def config_from_plain(data: Dict[str, Any]) -> Config:
    """Rebuild a Config saved with `Config.to_dict()` (checkpoints, config.yaml)."""
    cfg = from_dict(Config, data)
    validate(cfg)
    return cfg


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
