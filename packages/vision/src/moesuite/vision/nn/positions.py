"""Fixed 2-D sine-cosine position embeddings (MAE, DiT).

Half the channels encode the column, half the row, each as ``[sin(pos * omega), cos(pos * omega)]``
with ``omega_i = 10000^(-i / (d / 4))``.
"""

from __future__ import annotations

import torch

__all__ = ["sincos_1d", "sincos_2d"]


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """``[M] -> [M, dim]``: ``[sin(pos * omega_i) | cos(pos * omega_i)]``, ``dim`` even."""
    if dim % 2:
        raise ValueError(f"dim must be even for sin-cos embeddings, got {dim}.")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = positions.double().reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([out.sin(), out.cos()], dim=1).float()


def sincos_2d(dim: int, height: int, width: int | None = None) -> torch.Tensor:
    """``[height * width, dim]`` embeddings of a row-major token grid (``dim`` divisible by 4).

    The first half of the channels encodes the column, the second the row, in the order DiT's
    ``get_2d_sincos_pos_embed`` produces (its ``meshgrid(grid_w, grid_h)`` puts columns first).

    Examples:
        >>> pe = sincos_2d(8, 3)
        >>> tuple(pe.shape), [round(v, 4) for v in pe[0].tolist()]
        ((9, 8), [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])
        >>> bool((pe[1, :4] == pe[0, :4]).all()), bool((pe[1, 4:] == pe[0, 4:]).all())
        (False, True)
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 for 2-D sin-cos embeddings, got {dim}.")
    width = height if width is None else width
    rows = torch.arange(height).repeat_interleave(width)
    cols = torch.arange(width).repeat(height)
    return torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)
