"""NLinear (Zeng et al., AAAI 2023): subtract the last value, a linear map over time, add it."""

from __future__ import annotations

import torch
from torch import nn

from moesuite.timeseries.models._base import MODELS, Forecaster

__all__ = ["NLinear"]


@MODELS.register("nlinear", help="NLinear: last-value normalised linear map over time")
class NLinear(Forecaster):
    """``y = W (x - x_L) + b + x_L`` per channel, ``W`` shared by the channels (LTSF-Linear).

    Args:
        n_channels: ``C``.
        lookback: ``L``.
        horizon: ``H``.
        individual: one linear map per channel.

    Shapes:
        ``x [B, L, C] -> [B, H, C]``.

    Examples:
        >>> import torch
        >>> m = NLinear(n_channels=2, lookback=4, horizon=3)
        >>> with torch.no_grad():
        ...     _ = m.linear[0].weight.zero_(), m.linear[0].bias.zero_()
        >>> m(torch.tensor([[[1.0, 2.0]] * 4])).tolist()[0]  # a zero map forecasts the last value
        [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
    """

    def __init__(self, n_channels: int, lookback: int, horizon: int, individual: bool = False):
        super().__init__()
        self._store_config(locals())
        self.n_channels, self.lookback, self.horizon = n_channels, lookback, horizon
        self.individual = individual
        self.linear = nn.ModuleList(
            nn.Linear(lookback, horizon) for _ in range(n_channels if individual else 1)
        )

    def forecast(
        self, x: torch.Tensor, horizon: int, *covariates: torch.Tensor | None
    ) -> torch.Tensor:
        last = x[:, -1:].detach()
        z = (x - last).transpose(1, 2)  # [B, C, L]
        if self.individual:
            y = torch.stack([lin(z[:, c]) for c, lin in enumerate(self.linear)], 1)
        else:
            y = self.linear[0](z)
        return y.transpose(1, 2)[:, :horizon] + last
