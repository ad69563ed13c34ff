"""FLiDAR datasets: histograms, their parameters and the simulation config, with ``.npz`` I/O.

File layout (``format = "moesuite.physics.flidar/1"``)::

    signals      [N, n_bins] float32   photon counts per bin (>= 0)
    params       [N, 10]     float64   columns PARAM_NAMES (optional for your own measurements)
    param_names  [10]        str
    config       str                   JSON of SimulationConfig (n_bins must match signals)
    irf          [n_bins]    float64   optional measured IRF
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moesuite.physics.data.flidar.config import PARAM_NAMES, SimulationConfig, validate_params
from moesuite.physics.data.flidar.forward import simulate_counts
from moesuite.physics.data.flidar.sampling import sample_params

__all__ = ["FLiDARDataset", "simulate_dataset", "save_npz", "load_npz", "load_irf"]

_FORMAT = "moesuite.physics.flidar/1"


@dataclass(frozen=True)
class FLiDARDataset:
    """Histograms with their parameters.

    Attributes:
        signals: ``[N, n_bins]`` float32 photon counts.
        params: ``[N, len(PARAM_NAMES)]`` float64 or ``None`` (unlabelled measurements).
        config: the time grid (and ranges the data were drawn from).
        irf: optional measured IRF ``[n_bins]``.
    """

    signals: np.ndarray
    params: np.ndarray | None
    config: SimulationConfig
    irf: np.ndarray | None = None

    def __post_init__(self) -> None:
        s = np.asarray(self.signals)
        if s.ndim != 2 or s.shape[0] < 1:
            raise ValueError(
                f"signals: expected a [N, n_bins] array with N >= 1, got shape {s.shape}."
            )
        if s.shape[1] != self.config.n_bins:
            raise ValueError(
                f"signals have {s.shape[1]} bins but the config says n_bins={self.config.n_bins}; "
                "the bin counts must match."
            )
        if not np.all(np.isfinite(s)) or (s < 0).any():
            raise ValueError("signals: photon counts must be finite and >= 0.")
        object.__setattr__(self, "signals", s.astype(np.float32, copy=False))
        if self.params is not None:
            p = validate_params(self.params)
            if p.shape[0] != s.shape[0]:
                raise ValueError(
                    f"params has {p.shape[0]} rows but signals has {s.shape[0]}; they must match."
                )
            object.__setattr__(self, "params", p)
        if self.irf is not None and np.asarray(self.irf).shape != (self.config.n_bins,):
            raise ValueError(
                f"irf: expected shape ({self.config.n_bins},), got {np.asarray(self.irf).shape}."
            )

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    def column(self, name: str) -> np.ndarray:
        """One parameter column by name."""
        if self.params is None:
            raise ValueError(
                "this dataset has no params (unlabelled measurements); it cannot be scored."
            )
        if name not in PARAM_NAMES:
            raise KeyError(f"unknown parameter {name!r}; expected one of {list(PARAM_NAMES)}.")
        return self.params[:, PARAM_NAMES.index(name)]

    def subset(self, idx: np.ndarray | slice) -> FLiDARDataset:
        """Rows ``idx`` as a new dataset."""
        return FLiDARDataset(
            self.signals[idx],
            None if self.params is None else self.params[idx],
            self.config,
            self.irf,
        )


def simulate_dataset(
    n: int, config: SimulationConfig | None = None, seed: int = 0, irf: np.ndarray | None = None
) -> FLiDARDataset:
    """Sample ``n`` parameter sets and simulate their noisy histograms.

    Examples:
        >>> ds = simulate_dataset(5, SimulationConfig(n_bins=64, bin_width_ns=0.195), seed=0)
        >>> len(ds), ds.signals.shape
        (5, (5, 64))
    """
    config = config or SimulationConfig()
    rng = np.random.default_rng(seed)
    params = sample_params(n, config, rng)
    return FLiDARDataset(simulate_counts(params, config, rng, irf=irf), params, config, irf)


def save_npz(dataset: FLiDARDataset, path: str | Path) -> Path:
    """Write ``dataset`` to ``path`` (``.npz``, compressed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "format": np.array(_FORMAT),
        "signals": dataset.signals,
        "param_names": np.array(PARAM_NAMES),
        "config": np.array(json.dumps(dataset.config.to_dict())),
    }
    if dataset.params is not None:
        arrays["params"] = dataset.params
    if dataset.irf is not None:
        arrays["irf"] = np.asarray(dataset.irf, dtype=np.float64)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_npz(path: str | Path, require_params: bool = True) -> FLiDARDataset:
    """Read and validate a dataset written by :func:`save_npz` (or by hand in that layout).

    Args:
        path: the ``.npz`` file.
        require_params: refuse files without ``params`` (needed to train or score).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ``.npz``, missing arrays, mismatched bin counts, unphysical
            parameters, negative counts (one line naming the file and the problem).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file (expected a FLiDAR .npz from `moesuite physics simulate`)."
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a readable .npz file (not a zip archive); expected a FLiDAR dataset "
            "written by `moesuite physics simulate`."
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})."
        ) from None
    if "signals" not in data:
        raise ValueError(
            f"{path}: missing array 'signals' (found {sorted(data)}); expected a FLiDAR dataset."
        )
    if "config" in data:
        try:
            config = SimulationConfig.from_dict(json.loads(str(data["config"])))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(
                f"{path}: 'config' is not a valid simulation config JSON ({exc})."
            ) from None
    else:
        signals = np.asarray(data["signals"])
        config = SimulationConfig(n_bins=int(signals.shape[-1]) if signals.ndim == 2 else 0)
    params = data.get("params")
    if params is None and require_params:
        raise ValueError(
            f"{path}: missing array 'params' (ground truth, columns {list(PARAM_NAMES)}) "
            "needed here."
        )
    if (
        params is not None
        and "param_names" in data
        and tuple(str(x) for x in data["param_names"]) != PARAM_NAMES
    ):
        raise ValueError(
            f"{path}: param_names {list(map(str, data['param_names']))} differ from "
            f"{list(PARAM_NAMES)}."
        )
    try:
        return FLiDARDataset(data["signals"], params, config, data.get("irf"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_irf(path: str | Path, n_bins: int) -> np.ndarray:
    """A measured IRF from ``.npy`` or a one-column text file with ``n_bins`` values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such IRF file (expected .npy or text with {n_bins} values)."
        )
    try:
        irf = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: cannot read the IRF ({exc}).") from None
    irf = np.asarray(irf, dtype=np.float64).reshape(-1)
    if irf.shape[0] != n_bins or not np.all(np.isfinite(irf)) or (irf < 0).any() or irf.sum() <= 0:
        raise ValueError(
            f"{path}: IRF must hold {n_bins} finite non-negative values (not all zero), "
            f"got {irf.shape[0]} values."
        )
    return irf
