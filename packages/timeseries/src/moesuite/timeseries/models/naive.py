"""The naive forecast: repeat the last value (the parameter-free floor every model must beat)."""

from __future__ import annotations

import torch

from moesuite.timeseries.models._base import MODELS, Forecaster

__all__ = ["NaiveForecaster"]


@MODELS.register("naive", help="repeat the last value")
class NaiveForecaster(Forecaster):
    """``y[t + h] = x[t]`` for every step of the horizon.

    Examples:
        >>> import torch
        >>> NaiveForecaster(1, 3, 2)(torch.tensor([[[1.0], [2.0], [5.0]]])).flatten().tolist()
        [5.0, 5.0]
    """

    trainable = False
    any_horizon = True

    def __init__(self, n_channels: int, lookback: int, horizon: int):
        super().__init__()
        self._store_config({"n_channels": n_channels, "lookback": lookback, "horizon": horizon})
        self.n_channels, self.lookback, self.horizon = n_channels, lookback, horizon

    def forecast(
        self, x: torch.Tensor, horizon: int, *covariates: torch.Tensor | None
    ) -> torch.Tensor:
        return x[:, -1:].expand(-1, horizon, -1).clone()
