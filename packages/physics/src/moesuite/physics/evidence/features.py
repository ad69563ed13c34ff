"""From FLiDAR datasets to tensors: input features, normalised targets, loaders.

Features of a histogram ``c[n_bins]`` with ``N = sum(c)`` photons: the variance-stabilised
shape ``sqrt(c / N * n_bins)`` (Poisson noise becomes roughly uniform across bins) followed by
``log10(N) / 5``, so ``d_in = n_bins + 1``. With ``known`` parameter names (the "known optics"
setting: tissue optics and IRF measured separately), their values scaled to ``[0, 1]`` by the
simulation ranges are appended. Targets ``(depth_mm, tau_ns)`` are mapped to
``[0, 1]`` by the simulation ranges (:class:`TargetScaler`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from moesuite.physics.data.flidar import PARAM_NAMES, TARGETS, FLiDARDataset, SimulationConfig

#: parameters given to the estimators in the "known optics" setting
KNOWN_OPTICS: tuple[str, ...] = ("mua_ex", "musp_ex", "mua_em", "musp_em", "n", "irf_fwhm_ns")

__all__ = [
    "KNOWN_OPTICS",
    "features",
    "known_columns",
    "TargetScaler",
    "FLiDARBatch",
    "to_batch",
    "make_loader",
]


def known_columns(
    params: np.ndarray | None, config: SimulationConfig, known: tuple[str, ...]
) -> np.ndarray:
    """``[N, len(known)]`` known parameters scaled by the simulation ranges (a constant -> 0)."""
    if not known:
        return np.zeros((0 if params is None else params.shape[0], 0))
    if params is None:
        raise ValueError(
            f"this model needs the known parameters {list(known)} but the dataset has no params."
        )
    cols = []
    for name in known:
        lo, hi = config.ranges.get(name, config.ranges.get(name.replace("_em", "_ex"), (0.0, 1.0)))
        v = params[:, PARAM_NAMES.index(name)]
        cols.append((v - lo) / (hi - lo) if hi > lo else np.zeros_like(v))
    return np.stack(cols, axis=1)


def features(signals: np.ndarray, extra: np.ndarray | None = None) -> torch.Tensor:
    """``[N, n_bins]`` counts (+ ``extra[N, k]``) -> ``[N, n_bins + 1 + k]`` float32 features.

    Examples:
        >>> features(np.full((2, 4), 25.0)).tolist()[0]
        [1.0, 1.0, 1.0, 1.0, 0.4]
    """
    s = np.asarray(signals, dtype=np.float64)
    total = s.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        i = int(np.flatnonzero(total[:, 0] <= 0)[0])
        raise ValueError(f"signals[{i}] has no photons; every histogram needs at least one count.")
    shape = np.sqrt(s / total * s.shape[1])
    parts = [shape, np.log10(total) / 5.0] + (
        [np.asarray(extra, dtype=np.float64)] if extra is not None else []
    )
    return torch.tensor(np.concatenate(parts, axis=1), dtype=torch.float32)


@dataclass(frozen=True)
class TargetScaler:
    """Affine map of ``(depth_mm, tau_ns)`` to ``[0, 1]`` over the simulation ranges."""

    low: tuple[float, float]
    high: tuple[float, float]

    @classmethod
    def from_config(cls, config: SimulationConfig) -> TargetScaler:
        lo = tuple(float(config.ranges[t][0]) for t in TARGETS)
        hi = tuple(float(config.ranges[t][1]) for t in TARGETS)
        if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
            hi = tuple(max(h, lo_ + 1e-3) for lo_, h in zip(lo, hi, strict=True))
        return cls(lo, hi)  # type: ignore[arg-type]

    @property
    def span(self) -> np.ndarray:
        return np.asarray(self.high) - np.asarray(self.low)

    def encode(self, y: np.ndarray) -> np.ndarray:
        return (np.asarray(y) - np.asarray(self.low)) / self.span

    def decode(self, z: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        if isinstance(z, torch.Tensor):
            return z * torch.as_tensor(self.span, dtype=z.dtype) + torch.as_tensor(
                self.low, dtype=z.dtype
            )
        return np.asarray(z) * self.span + np.asarray(self.low)


@dataclass(frozen=True)
class FLiDARBatch:
    """Tensors of a dataset.

    ``x[N, d_in]``, ``y[N, 2]`` (scaled), ``counts[N, n_bins]``, ``params[N, 10]``.
    """

    x: torch.Tensor
    y: torch.Tensor
    counts: torch.Tensor
    params: torch.Tensor


def to_batch(ds: FLiDARDataset, scaler: TargetScaler, known: tuple[str, ...] = ()) -> FLiDARBatch:
    """Tensors for training/evaluation (``ds`` must carry params)."""
    if ds.params is None:
        raise ValueError("the dataset has no params; training and scoring need the ground truth.")
    y = np.stack([ds.column(t) for t in TARGETS], axis=1)
    return FLiDARBatch(
        x=features(ds.signals, known_columns(ds.params, ds.config, known)),
        y=torch.tensor(scaler.encode(y), dtype=torch.float32),
        counts=torch.tensor(ds.signals, dtype=torch.float32),
        params=torch.tensor(ds.params, dtype=torch.float32),
    )


def make_loader(batch: FLiDARBatch, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` yielding ``(x, y, counts, params)`` tuples."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        TensorDataset(batch.x, batch.y, batch.counts, batch.params),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=g if shuffle else None,
    )
