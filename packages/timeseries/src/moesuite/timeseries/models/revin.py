"""Reversible instance normalisation (RevIN, Kim et al. 2022)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RevIN"]


class RevIN(nn.Module):
    """Normalise each series of a batch by its own lookback statistics, and undo it at the output.

    ``normalize(x)`` subtracts the per-sample, per-channel mean over time and divides by the
    standard deviation (then applies an optional learnable affine map); ``denormalize(y)``
    inverts exactly that with the statistics of the last ``normalize`` call.

    Args:
        n_channels: ``C``.
        affine: learn a per-channel scale and shift.
        eps: variance floor.

    Shapes:
        ``x [B, L, C] -> [B, L, C]``; ``y [B, H, C] -> [B, H, C]``.

    Examples:
        >>> import torch
        >>> rev = RevIN(3)
        >>> x = torch.randn(2, 10, 3) * 5 + 7
        >>> torch.allclose(rev.denormalize(rev.normalize(x)), x, atol=1e-4)
        True
    """

    def __init__(self, n_channels: int, affine: bool = True, eps: float = 1e-5):
        super().__init__()
        self.n_channels, self.affine, self.eps = n_channels, affine, eps
        if affine:
            self.weight = nn.Parameter(torch.ones(n_channels))
            self.bias = nn.Parameter(torch.zeros(n_channels))
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Store the statistics of ``x [B, L, C]`` and return it normalised."""
        self._mean = x.mean(1, keepdim=True).detach()
        self._std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + self.eps).detach()
        x = (x - self._mean) / self._std
        if self.affine:
            x = x * self.weight + self.bias
        return x

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`normalize` on ``y [B, H, C]``."""
        if self._mean is None or self._std is None:
            raise RuntimeError("RevIN.denormalize called before normalize.")
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * self._std + self._mean
