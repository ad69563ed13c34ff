"""The model registry: names -> (class, preset arguments), written once at import.

The factory ignores ``None`` overrides (so CLI defaults never override model defaults) and
rejects arguments a model does not take.
"""

from __future__ import annotations

import fnmatch
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

from moesuite.timeseries.models._base import Forecaster
from moesuite.timeseries.models.dlinear import DLinear
from moesuite.timeseries.models.mohets import MoHETS
from moesuite.timeseries.models.naive import NaiveForecaster, SeasonalNaiveForecaster

__all__ = ["ModelSpec", "register_model", "list_models", "create_model", "model_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its class, preset arguments and a one-line description."""

    name: str
    cls: type[Forecaster]
    preset: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, cls: type[Forecaster], description: str, **preset: Any) -> None:
    """Register ``name`` (warns when a name is registered twice)."""
    if name in _REGISTRY:
        warnings.warn(f"model {name!r} registered twice; the later one wins.", stacklevel=2)
    _REGISTRY[name] = ModelSpec(name, cls, dict(preset), description)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style wildcard.

    Examples:
        >>> list_models("mohets*")
        ['mohets', 'mohets-flatten', 'mohets-mlp', 'mohets-nocov']
    """
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name`` (``ValueError`` naming the choices when unknown)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {list_models()}.")
    return _REGISTRY[name]


def create_model(
    name: str, *, n_channels: int, lookback: int, horizon: int, n_covariates: int = 0, n_known: int = 0,
    **overrides: Any,
) -> Forecaster:
    """Build a registered model for data of ``n_channels`` and the given windows.

    Examples:
        >>> m = create_model("dlinear", n_channels=2, lookback=48, horizon=24, n_covariates=3, kernel_size=None)
        >>> type(m).__name__, m.kernel_size
        ('DLinear', 25)
    """
    spec = model_spec(name)
    params = inspect.signature(spec.cls.__init__).parameters
    data = {"n_channels": n_channels, "lookback": lookback, "horizon": horizon,
            "n_covariates": n_covariates, "n_known": n_known}
    kwargs = {k: v for k, v in data.items() if k in params}
    kwargs.update(spec.preset)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in params:
            allowed = sorted(p for p in params if p not in ("self", *data))
            raise ValueError(f"model {name!r} has no option {key!r}; its options are {allowed}.")
        kwargs[key] = value
    return spec.cls(**kwargs)


register_model("naive", NaiveForecaster, "repeat the last value")
register_model("seasonal-naive", SeasonalNaiveForecaster, "repeat the last season (period 24)")
register_model("dlinear", DLinear, "DLinear: decomposition + two linear maps")
register_model("patchtst", MoHETS, "PatchTST: same encoder, dense FFN, flatten head, no covariates",
               ffn="dense", head="flatten", covariates=False, lookback_skip=False, head_scale=1.0)
register_model("mohets", MoHETS, "MoHETS: MoHE layers (conv shared + Fourier routed), covariates, conv decoder")
register_model("mohets-nocov", MoHETS, "MoHETS without covariates", covariates=False)
register_model("mohets-mlp", MoHETS, "MoHETS with homogeneous MLP experts", expert="mlp")
register_model("mohets-flatten", MoHETS, "MoHETS with PatchTST's flatten head (no lookback experts)", head="flatten",
               lookback_skip=False, head_scale=1.0)
