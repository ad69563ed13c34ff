"""Trajectories as tensors: a batch of environments, the masked trajectory MSE, the loader.

Index legend: ``G`` environments, ``n`` trajectories each, ``T`` times, ``D`` padded state size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["TrajectoryBatch", "trajectory_mse", "make_loader"]


@dataclass
class TrajectoryBatch:
    """Trajectories of ``G`` environments: ``y[G, n, T, D]``, ``dt[G]``, ``mask[G, D]`` (float)."""

    y: torch.Tensor
    dt: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def from_numpy(cls, y: Any, dt: Any, mask: Any) -> TrajectoryBatch:
        """Build from numpy arrays (float32 tensors)."""
        return cls(
            torch.as_tensor(y, dtype=torch.float32),
            torch.as_tensor(dt, dtype=torch.float32),
            torch.as_tensor(mask, dtype=torch.float32),
        )

    def first(self, n: int) -> TrajectoryBatch:
        """The first ``n`` trajectories of every environment."""
        return TrajectoryBatch(self.y[:, :n], self.dt, self.mask)

    def until(self, n_times: int) -> TrajectoryBatch:
        """The first ``n_times`` observations of every trajectory."""
        return TrajectoryBatch(self.y[:, :, :n_times], self.dt, self.mask)

    def repeat(self, k: int) -> TrajectoryBatch:
        """Each environment repeated ``k`` times in a row (``[G * k, ...]``)."""
        return TrajectoryBatch(
            *(t.repeat_interleave(k, dim=0) for t in (self.y, self.dt, self.mask))
        )


def trajectory_mse(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[G]`` mean squared error per environment over its real state dimensions.

    ``pred``/``true`` are ``[G, ..., D]``; ``mask`` is ``[G, D]``. The first time (the given
    initial condition) is included; it contributes zero error.

    Examples:
        >>> pred, true = torch.zeros(2, 1, 3, 2), torch.ones(2, 1, 3, 2)
        >>> trajectory_mse(pred, true, torch.tensor([[1.0, 1.0], [1.0, 0.0]])).tolist()
        [1.0, 1.0]
    """
    m = mask.reshape(mask.shape[0], *([1] * (pred.dim() - 2)), mask.shape[1]).to(pred.dtype)
    sq = ((pred - true) ** 2 * m).flatten(1).sum(1)
    count = m.expand_as(pred).flatten(1).sum(1)
    return sq / count


class _Repeat(Dataset):
    def __init__(self, batch: TrajectoryBatch, length: int):
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> TrajectoryBatch:
        return self.batch


def make_loader(batch: TrajectoryBatch, steps_per_epoch: int) -> DataLoader:
    """A loader yielding the whole training split ``steps_per_epoch`` times per epoch."""
    return DataLoader(_Repeat(batch, steps_per_epoch), batch_size=None, shuffle=False)
