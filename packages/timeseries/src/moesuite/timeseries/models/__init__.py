"""Forecasting models, one file each, registered in :data:`MODELS` (a core ``Registry``).

Models: :mod:`~.mohets` (MoHETS and two ablations), :mod:`~.patchtst` (its dense ablation),
:mod:`~.dlinear`, :mod:`~.naive`, :mod:`~.seasonal_naive`. Building blocks: :mod:`~.revin`,
:mod:`~.encoder` (patching, encoder block), :mod:`~.mohe` (the MoHE layer's experts),
:mod:`~.heads` (Fourier-basis and flatten heads).

Examples:
    >>> MODELS.list("mohets*")
    ['mohets', 'mohets-flatten', 'mohets-nocov']
    >>> m = create_model("dlinear", n_channels=2, lookback=48, horizon=24, kernel_size=None)
    >>> type(m).__name__, m.kernel_size
    ('DLinear', 25)
"""

from __future__ import annotations

import inspect
from typing import Any

from moesuite.timeseries.models import patchtst as _patchtst  # noqa: F401  (registers it)
from moesuite.timeseries.models._base import MODELS, Forecaster, as_moe_output
from moesuite.timeseries.models.dlinear import DLinear
from moesuite.timeseries.models.encoder import EncoderBlock, PatchEmbedding
from moesuite.timeseries.models.heads import BasisHead, FlattenHead, fourier_basis
from moesuite.timeseries.models.mohe import (
    DepthwiseConvExpert,
    FourierExpert,
    build_mohe_layer,
    create_forecast_router,
)
from moesuite.timeseries.models.mohets import MoHETS
from moesuite.timeseries.models.naive import NaiveForecaster
from moesuite.timeseries.models.revin import RevIN
from moesuite.timeseries.models.seasonal_naive import SeasonalNaiveForecaster

__all__ = [
    "MODELS",
    "BasisHead",
    "DLinear",
    "DepthwiseConvExpert",
    "EncoderBlock",
    "FlattenHead",
    "Forecaster",
    "FourierExpert",
    "MoHETS",
    "NaiveForecaster",
    "PatchEmbedding",
    "RevIN",
    "SeasonalNaiveForecaster",
    "as_moe_output",
    "build_mohe_layer",
    "create_forecast_router",
    "create_model",
    "model_options",
    "fourier_basis",
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
