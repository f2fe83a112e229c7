"""Model families: each registers `build(img_shape, c_dim, z_dim, **args) -> (G, D)`.

The seams every family keeps (checked by the contract tests over `FAMILIES`):
- ``G(z, c=None) -> x``: z (N, z_dim); c (N,) int64 class labels or None; x (N, *img_shape) in [-1, 1]
  (2D-point families may be unbounded). G has attributes ``z_dim``, ``c_dim``, ``img_shape``.
- ``D(x, c=None) -> logits``: (N,) raw logits, higher = more real; no sigmoid inside. A D built with an
  auxiliary classifier (dcgan ``d_cond="aux"``) also answers ``D(x, c, classify=True) -> (N, c_dim)``.
Nets know nothing about losses. ``img_shape`` and ``c_dim`` come from the data set, in one place: `build`.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple

import torch.nn as nn

from gankit.nets.pca_head import PCAHead
from gankit.registry import GankitError, Registry, did_you_mean

FAMILIES = Registry("model family")


DATA_ARGS = ("img_shape", "c_dim", "z_dim", "in_shape", "out_shape", "d_shape")  # injected, not configured


def _check_args(fn, family: str, args: Dict[str, Any]) -> None:
    allowed = [p for p in inspect.signature(fn).parameters if p not in DATA_ARGS]
    for key in args:
        if key not in allowed:
            raise GankitError(f"unknown config key 'model.args.{key}' for family '{family}'"
                              f"{did_you_mean(key, allowed)}; valid: {', '.join(allowed)}")


def builder(name: str, translator: bool = False):
    """The builder registered as `name`: a noise-to-image family, or with `translator` an image-to-image one
    (nets/img2img.py); a name of the other kind is a one-line error that says which kind it is."""
    if translator and name in FAMILIES and name not in TRANSLATORS:
        raise GankitError(f"model.family={name} maps noise to images; image-to-image tasks need one of "
                          f"{', '.join(TRANSLATORS.names())}")
    if not translator and name in TRANSLATORS and name not in FAMILIES:
        raise GankitError(f"model.family={name} translates images: use it with an image-to-image task "
                          f"(task.name=translate, sr or inpaint), or a noise family: {', '.join(FAMILIES.names())}")
    return (TRANSLATORS if translator else FAMILIES).get(name)


def build(family: str, img_shape: Tuple[int, ...], c_dim: int, z_dim: int,
          args: Dict[str, Any], d_pca: int = 0) -> Tuple[nn.Module, nn.Module]:
    """Build (G, D) for `family`; `args` are checked against the builder's keyword arguments. `d_pca` > 0
    adds D's head on that many principal components (pca_head.py; unfit until `D.fit(images)`)."""
    fn = builder(family)
    _check_args(fn, family, args)
    try:
        G, D = fn(tuple(img_shape), c_dim=c_dim, z_dim=z_dim, **args)
        if d_pca:
            D = PCAHead(D, img_shape, d_pca)
    except (TypeError, ValueError) as e:
        raise GankitError(f"model '{family}' with args {args}: {e}") from None
    return G, D


def build_translator(family: str, in_shape: Tuple[int, ...], out_shape: Tuple[int, ...], d_shape: Tuple[int, ...],
                     args: Dict[str, Any], two_way: bool = False) -> Tuple[nn.Module, nn.Module]:
    """(G, D) of an image-to-image family (img2img.py): G maps in_shape -> out_shape, D judges d_shape.
    `two_way` (unpaired translation): G_AB with G_BA and D_A with D_B, every shape `in_shape`."""
    fn = builder(family, translator=True)
    _check_args(fn, family, args)
    try:
        if two_way:
            from gankit.nets.img2img import build_two_way
            return build_two_way(fn, tuple(in_shape), args)
        return fn(tuple(in_shape), tuple(out_shape), tuple(d_shape), **args)
    except (TypeError, ValueError) as e:
        raise GankitError(f"model '{family}' with args {args}: {e}") from None


def family_args(family: str) -> Dict[str, Any]:
    """Default keyword arguments of a family's builder (documentation, `gankit recipes -v`)."""
    params = inspect.signature((TRANSLATORS if family in TRANSLATORS else FAMILIES).get(family)).parameters
    return {k: p.default for k, p in params.items() if k not in DATA_ARGS}


# Register the families (import for side effects).
from gankit.nets import dcgan, keras_dcgan, mlp, resnet  # noqa: E402,F401
from gankit.nets.img2img import TRANSLATORS  # noqa: E402
