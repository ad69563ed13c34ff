"""Forecasting models, one file each, registered in :data:`MODELS` (a core ``Registry``).

Models: :mod:`~.mohets` (MoHETS: ``mohets`` the authors' Tiny size, ``mohets-small``, the
ablation ``mohets-nocov``), :mod:`~.patchtst`, :mod:`~.dlinear`, :mod:`~.nlinear`,
:mod:`~.naive`, :mod:`~.seasonal_naive`. Building blocks: :mod:`~.revin` (instance
normalisation), :mod:`~.blocks` (patching, un-patch decoder, rotary grouped-query attention,
DropPath), :mod:`~.mohe` (the MoHE layer's experts).

Examples:
    >>> MODELS.list("mohets*")
    ['mohets', 'mohets-nocov', 'mohets-small']
    >>> m = create_model("dlinear", n_channels=2, lookback=48, horizon=24, kernel_size=None)
    >>> type(m).__name__, m.kernel_size
    ('DLinear', 25)
"""

from __future__ import annotations

import inspect
from typing import Any

from moesuite.timeseries.models._base import MODELS, Forecaster, as_moe_output
from moesuite.timeseries.models.blocks import (
    GroupedQueryAttention,
    PatchEmbedding,
    UnPatchDecoder,
    apply_rotary,
)
from moesuite.timeseries.models.dlinear import DLinear
from moesuite.timeseries.models.mohe import (
    DepthwiseConvFeedForward,
    FANFeedForward,
    build_mohe_layer,
    create_forecast_router,
)
from moesuite.timeseries.models.mohets import MoHETS
from moesuite.timeseries.models.naive import NaiveForecaster
from moesuite.timeseries.models.nlinear import NLinear
from moesuite.timeseries.models.patchtst import PatchTST
from moesuite.timeseries.models.revin import RevIN
from moesuite.timeseries.models.seasonal_naive import SeasonalNaiveForecaster

__all__ = [
    "MODELS",
    "DLinear",
    "DepthwiseConvFeedForward",
    "FANFeedForward",
    "Forecaster",
    "GroupedQueryAttention",
    "MoHETS",
    "NLinear",
    "NaiveForecaster",
    "PatchEmbedding",
    "PatchTST",
    "RevIN",
    "SeasonalNaiveForecaster",
    "UnPatchDecoder",
    "apply_rotary",
    "as_moe_output",
    "build_mohe_layer",
    "create_forecast_router",
    "create_model",
    "model_options",
]

#: the data-dependent arguments :func:`create_model` fills in from the data
DATA_ARGUMENTS = ("n_channels", "lookback", "horizon", "n_covariates", "n_known")


def model_options(name: str) -> set[str]:
    """The constructor options of model ``name`` a user may set (data arguments excluded)."""
    params = inspect.signature(MODELS.get(name).obj).parameters
    return {p for p in params if p not in ("self", *DATA_ARGUMENTS)}


def create_model(
    name: str,
    *,
    n_channels: int,
    lookback: int,
    horizon: int,
    n_covariates: int = 0,
    n_known: int = 0,
    **options: Any,
) -> Forecaster:
    """Build model ``name`` for data of ``n_channels`` and the given windows.

    The data arguments reach the models that take them (a naive forecast takes no
    covariates); ``None`` options keep the model's defaults (so CLI defaults never override
    them), and an option the model does not take is a ``ValueError`` naming the ones it does.
    """
    entry = MODELS.get(name)
    params = inspect.signature(entry.obj).parameters
    data = dict(
        n_channels=n_channels,
        lookback=lookback,
        horizon=horizon,
        n_covariates=n_covariates,
        n_known=n_known,
    )
    unknown = sorted(k for k, v in options.items() if v is not None and k not in params)
    if unknown:
        raise ValueError(
            f"model {name!r} has no option {unknown[0]!r}; its options are "
            f"{sorted(model_options(name))}."
        )
    return entry.build(**{k: v for k, v in data.items() if k in params}, **options)
