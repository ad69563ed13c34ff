"""The seasonal naive forecast: repeat the last full season."""

from __future__ import annotations

import torch

from moesuite.timeseries.models._base import MODELS, Forecaster

__all__ = ["SeasonalNaiveForecaster"]


@MODELS.register("seasonal-naive", help="repeat the last season (period 24)")
class SeasonalNaiveForecaster(Forecaster):
    """``y[t + h] = x[t + h - m * ceil(h / m)]``: the last full season repeated (period ``m``).

    Examples:
        >>> import torch
        >>> x = torch.arange(6.0).reshape(1, 6, 1)
        >>> SeasonalNaiveForecaster(1, 6, 5, period=3)(x).flatten().tolist()
        [3.0, 4.0, 5.0, 3.0, 4.0]
    """

    trainable = False
    any_horizon = True

    def __init__(self, n_channels: int, lookback: int, horizon: int, period: int = 24):
        super().__init__()
        self._store_config(
            {"n_channels": n_channels, "lookback": lookback, "horizon": horizon, "period": period}
        )
        if not 1 <= period <= lookback:
            raise ValueError(f"period must be between 1 and lookback={lookback}, got {period}.")
        self.n_channels, self.lookback, self.horizon, self.period = (
            n_channels,
            lookback,
            horizon,
            period,
        )

    def forecast(
        self, x: torch.Tensor, horizon: int, *covariates: torch.Tensor | None
    ) -> torch.Tensor:
        idx = self.lookback - self.period + torch.arange(horizon, device=x.device) % self.period
        return x[:, idx]
