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


def build(family: str, img_shape: Tuple[int, ...], c_dim: int, z_dim: int,
          args: Dict[str, Any], d_pca: int = 0) -> Tuple[nn.Module, nn.Module]:
    """Build (G, D) for `family`; `args` are checked against the builder's keyword arguments. `d_pca` > 0
    adds D's head on that many principal components (pca_head.py; unfit until `D.fit(images)`)."""
    fn = FAMILIES.get(family)
    params = inspect.signature(fn).parameters
    allowed = [p for p in params if p not in ("img_shape", "c_dim", "z_dim")]
    for key in args:
        if key not in allowed:
            raise GankitError(f"unknown config key 'model.args.{key}' for family '{family}'"
                              f"{did_you_mean(key, allowed)}; valid: {', '.join(allowed)}")
    try:
        G, D = fn(tuple(img_shape), c_dim=c_dim, z_dim=z_dim, **args)
        if d_pca:
            D = PCAHead(D, img_shape, d_pca)
    except (TypeError, ValueError) as e:
        raise GankitError(f"model '{family}' with args {args}: {e}") from None
    return G, D


def family_args(family: str) -> Dict[str, Any]:
    """Default keyword arguments of a family's builder (documentation, `gankit recipes -v`)."""
    params = inspect.signature(FAMILIES.get(family)).parameters
    return {k: p.default for k, p in params.items() if k not in ("img_shape", "c_dim", "z_dim")}


# Register the families (import for side effects).
from gankit.nets import dcgan, keras_dcgan, mlp, resnet  # noqa: E402,F401
