"""DLinear (Zeng et al., AAAI 2023): moving-average decomposition and two linear maps over time."""

from __future__ import annotations

import torch
from torch import nn

from moesuite.timeseries.models._base import MODELS, Forecaster

__all__ = ["DLinear"]


@MODELS.register("dlinear", help="DLinear: moving-average decomposition + two linear maps")
class DLinear(Forecaster):
    """``y = W_s seasonal + W_t trend``, ``trend = moving_average(x)``, ``seasonal = x - trend``.

    The published configuration (cure-lab/LTSF-Linear): kernel 25 with replicate padding,
    weights shared across channels (``individual=False``), no instance normalisation, default
    ``nn.Linear`` initialisation (the reference's constant ``1/L`` initialisation is commented
    out); covariates are not used.

    Args:
        n_channels: ``C``.
        lookback: ``L``.
        horizon: ``H``.
        kernel_size: odd moving-average window.
        individual: one pair of linear maps per channel.

    Shapes:
        ``x [B, L, C] -> [B, H, C]``.

    Examples:
        >>> import torch
        >>> m = DLinear(n_channels=2, lookback=48, horizon=12)
        >>> tuple(m(torch.randn(3, 48, 2)).shape)
        (3, 12, 2)
    """

    def __init__(
        self,
        n_channels: int,
        lookback: int,
        horizon: int,
        kernel_size: int = 25,
        individual: bool = False,
    ):
        super().__init__()
        self._store_config(
            {
                "n_channels": n_channels,
                "lookback": lookback,
                "horizon": horizon,
                "kernel_size": kernel_size,
                "individual": individual,
            }
        )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}.")
        self.n_channels, self.lookback, self.horizon = n_channels, lookback, horizon
        self.kernel_size, self.individual = kernel_size, individual
        n = n_channels if individual else 1
        self.seasonal = nn.ModuleList(nn.Linear(lookback, horizon) for _ in range(n))
        self.trend = nn.ModuleList(nn.Linear(lookback, horizon) for _ in range(n))

    def decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, L, C] -> (seasonal, trend)``, each ``[B, L, C]``."""
        half = (self.kernel_size - 1) // 2
        padded = torch.cat([x[:, :1].expand(-1, half, -1), x, x[:, -1:].expand(-1, half, -1)], 1)
        trend = nn.functional.avg_pool1d(
            padded.transpose(1, 2), self.kernel_size, stride=1
        ).transpose(1, 2)
        return x - trend, trend

    def forecast(
        self, x: torch.Tensor, horizon: int, *covariates: torch.Tensor | None
    ) -> torch.Tensor:
        seasonal, trend = (t.transpose(1, 2) for t in self.decompose(x))  # [B, C, L]
        if self.individual:
            y = torch.stack(
                [
                    self.seasonal[c](seasonal[:, c]) + self.trend[c](trend[:, c])
                    for c in range(self.n_channels)
                ],
                1,
            )
        else:
            y = self.seasonal[0](seasonal) + self.trend[0](trend)
        return y.transpose(1, 2)[:, :horizon]
