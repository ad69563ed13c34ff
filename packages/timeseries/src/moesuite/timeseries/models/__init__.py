"""Forecasting models: MoHETS, PatchTST (its dense ablation), DLinear and naive baselines."""

from moesuite.timeseries.models._base import Forecaster
from moesuite.timeseries.models._registry import (
    ModelSpec,
    create_model,
    list_models,
    model_spec,
    register_model,
)
from moesuite.timeseries.models.basis import BasisHead, fourier_basis
from moesuite.timeseries.models.decoders import ConvPatchDecoder, FlattenHead
from moesuite.timeseries.models.dlinear import DLinear
from moesuite.timeseries.models.mohe import (
    DepthwiseConvExpert,
    FourierExpert,
    SpectralExpert,
    build_mohe_layer,
)
from moesuite.timeseries.models.mohets import MoHETS
from moesuite.timeseries.models.naive import NaiveForecaster, SeasonalNaiveForecaster
from moesuite.timeseries.models.revin import RevIN

__all__ = [
    "BasisHead",
    "ConvPatchDecoder",
    "DLinear",
    "DepthwiseConvExpert",
    "FlattenHead",
    "Forecaster",
    "FourierExpert",
    "MoHETS",
    "ModelSpec",
    "NaiveForecaster",
    "RevIN",
    "SeasonalNaiveForecaster",
    "SpectralExpert",
    "build_mohe_layer",
    "create_model",
    "fourier_basis",
    "list_models",
    "model_spec",
    "register_model",
]
