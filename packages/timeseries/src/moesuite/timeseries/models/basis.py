"""A horizon-free linear forecast head: coefficients on a fixed Fourier basis of the forecast step.

A forecast over ``H`` steps is written ``y(t) = sum_k a_k phi_k(t)`` (``t = 0 .. H-1``) with the
fixed harmonic basis ``phi(t) = [cos(2 pi k t / T), sin(2 pi k t / T)]``, ``k = 0 .. K-1``, of a
base period ``T`` (``period``). The coefficients ``a in R^{2K}`` are a linear map of the input
(the flattened encoder tokens, or the normalised lookback). This is a low-rank linear head
``N d -> H`` whose horizon-side factor is computed from the step index instead of stored per
step, so none of its weights depends on ``H``: one model forecasts any horizon, a prefix of a
long forecast equals the short forecast, and beyond ``T`` steps the forecast repeats with
period ``T``.

With ``T = 384`` and ``K = 96`` (periods 384 down to 4 steps: the daily cycle of hourly data and
its harmonics are exact members) the head fitted ETTh1 better than a direct ``L -> H`` linear map
in a 200-step check (see the package README). The coefficient map starts at zero (the forecast
starts at the lookback mean after RevIN), which matters: with the default initialisation the
unnormalised basis made training unstable. A learned basis (MLP of Fourier features with
learnable frequencies) was slower to train and worse.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["fourier_basis", "BasisHead"]


def fourier_basis(horizon: int, n_frequencies: int, period: float, device: torch.device | None = None) -> torch.Tensor:
    """``[horizon, 2 K]``: ``cos`` then ``sin`` of ``2 pi k t / period`` for ``k = 0 .. K-1``.

    Examples:
        >>> b = fourier_basis(6, 3, 12.0)
        >>> tuple(b.shape), b[:, 0].tolist()  # k = 0: the constant
        ((6, 6), [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    """
    t = torch.arange(horizon, device=device, dtype=torch.float32)
    k = torch.arange(n_frequencies, device=device, dtype=torch.float32)
    angle = 2 * math.pi * t[:, None] * k[None] / period
    return torch.cat([torch.cos(angle), torch.sin(angle)], -1)


class BasisHead(nn.Module):
    """``[B', F] -> [B', H]``: ``y = fourier_basis(H) @ (W drop(x) + b)`` for any ``H``.

    With ``n_experts = E > 1`` it is a mixture of ``E`` such linear forecasters (as in MoLE,
    Ni et al. 2024): ``forward(x, H, gate)`` mixes their coefficients with ``gate [B', E]``
    (rows summing to one), which equals mixing their forecasts.

    Args:
        in_features: ``F`` (e.g. ``N * d_model`` flattened tokens, or the lookback ``L``).
        n_frequencies: ``K`` harmonics (``2 K`` coefficients).
        period: base period ``T`` in steps.
        dropout: dropout on the input (PatchTST's head dropout).
        n_experts: ``E`` linear forecasters mixed by a gate.

    Examples:
        >>> import torch
        >>> head = BasisHead(10, n_frequencies=4, period=16.0)
        >>> x = torch.randn(3, 10)
        >>> tuple(head(x, 7).shape), torch.allclose(head(x, 20)[:, :7], head(x, 7))
        ((3, 7), True)
    """

    def __init__(self, in_features: int, n_frequencies: int = 96, period: float = 384.0, dropout: float = 0.0,
                 n_experts: int = 1):
        super().__init__()
        if n_frequencies < 1 or period <= 0:
            raise ValueError(f"basis needs n_frequencies >= 1 and period > 0, got {n_frequencies}, {period}.")
        if n_experts < 1:
            raise ValueError(f"n_experts must be >= 1, got {n_experts}.")
        self.n_frequencies, self.period, self.n_experts = n_frequencies, float(period), n_experts
        self.drop = nn.Dropout(dropout)
        self.coef = nn.Linear(in_features, n_experts * 2 * n_frequencies)
        nn.init.zeros_(self.coef.weight)
        nn.init.zeros_(self.coef.bias)

    def coefficients(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        """The ``[B', 2 K]`` basis coefficients (mixed over the experts with ``gate [B', E]``)."""
        c = self.coef(self.drop(x))
        if self.n_experts == 1:
            return c
        if gate is None:
            raise ValueError(f"a BasisHead with {self.n_experts} experts needs a gate [B', {self.n_experts}].")
        return torch.einsum("be,bek->bk", gate, c.reshape(c.shape[0], self.n_experts, -1))

    def forward(self, x: torch.Tensor, horizon: int, gate: torch.Tensor | None = None) -> torch.Tensor:
        phi = fourier_basis(horizon, self.n_frequencies, self.period, x.device)
        return self.coefficients(x, gate) @ phi.T
