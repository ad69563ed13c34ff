"""Forecast heads: a horizon-free Fourier-basis linear head, and PatchTST's flatten head.

:class:`BasisHead` writes a forecast over ``H`` steps as ``y(t) = sum_k a_k phi_k(t)``
(``t = 0 .. H-1``) with the fixed harmonic basis ``phi(t) = [cos(2 pi k t / T), sin(2 pi k t /
T)]``, ``k = 0 .. K-1``, of a base period ``T`` (``period``). The coefficients ``a in R^{2K}``
are a linear map of the input (e.g. a channel's normalised lookback). It is a low-rank linear
head whose horizon-side factor is computed from the step index instead of stored per step, so
none of its weights depends on ``H``: one model forecasts any horizon, a prefix of a long
forecast equals the short forecast, and beyond ``T`` steps the forecast repeats with period
``T``. The coefficient map starts at zero (the forecast starts at the lookback mean after
RevIN): with the default initialisation the unnormalised basis makes training unstable.

:class:`FlattenHead` is PatchTST's: ``N * d -> H`` linearly, ``N d H`` weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["fourier_basis", "BasisHead", "FlattenHead"]


def fourier_basis(
    horizon: int, n_frequencies: int, period: float, device: torch.device | None = None
) -> torch.Tensor:
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
        in_features: ``F`` (e.g. the lookback ``L``).
        n_frequencies: ``K`` harmonics (``2 K`` coefficients).
        period: base period ``T`` in steps.
        dropout: dropout on the input.
        n_experts: ``E`` linear forecasters mixed by a gate.

    Examples:
        >>> import torch
        >>> head = BasisHead(10, n_frequencies=4, period=16.0)
        >>> x = torch.randn(3, 10)
        >>> tuple(head(x, 7).shape), torch.allclose(head(x, 20)[:, :7], head(x, 7))
        ((3, 7), True)
    """

    def __init__(
        self,
        in_features: int,
        n_frequencies: int = 96,
        period: float = 384.0,
        dropout: float = 0.0,
        n_experts: int = 1,
    ):
        super().__init__()
        if n_frequencies < 1 or period <= 0:
            raise ValueError(
                f"basis needs n_frequencies >= 1 and period > 0, got {n_frequencies}, {period}."
            )
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
            raise ValueError(
                f"a BasisHead with {self.n_experts} experts needs a gate [B', {self.n_experts}]."
            )
        return torch.einsum("be,bek->bk", gate, c.reshape(c.shape[0], self.n_experts, -1))

    def forward(
        self, x: torch.Tensor, horizon: int, gate: torch.Tensor | None = None
    ) -> torch.Tensor:
        phi = fourier_basis(horizon, self.n_frequencies, self.period, x.device)
        return self.coefficients(x, gate) @ phi.T


class FlattenHead(nn.Module):
    """PatchTST's head: flatten the ``N`` tokens and map ``N * d -> H`` linearly.

    Shapes:
        ``tokens [B', N, d] -> [B', H]`` (``horizon`` at most the one it was built for).

    Examples:
        >>> import torch
        >>> tuple(FlattenHead(n_patches=5, d_model=8, horizon=12)(torch.randn(3, 5, 8), 12).shape)
        (3, 12)
    """

    def __init__(self, n_patches: int, d_model: int, horizon: int, dropout: float = 0.0):
        super().__init__()
        self.horizon = horizon
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(n_patches * d_model, horizon)

    def forward(self, tokens: torch.Tensor, horizon: int) -> torch.Tensor:
        if horizon > self.horizon:
            raise ValueError(
                f"this flatten head forecasts at most {self.horizon} steps, asked for {horizon}."
            )
        return self.linear(self.drop(tokens.flatten(1)))[:, :horizon]
