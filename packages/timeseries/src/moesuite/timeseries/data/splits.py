"""Standard train/validation/test splits and train-statistics scaling.

The protocol of the Informer / Autoformer / PatchTST code (Time-Series-Library
``data_provider/data_loader.py``): ETT hourly files use 12/4/4 months of 30 days
(8640/2880/2880 rows; ETTm files four times that), other files 70/10/20 of their rows. The
validation and test ranges start ``lookback`` rows early so that their first window has a full
input; windows never cross a range end. Every column is standardised with the mean and standard
deviation of the training range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "split_borders", "detect_protocol", "StandardScaler", "PROTOCOLS"]

PROTOCOLS = ("auto", "ett-hour", "ett-minute", "ratio")


@dataclass(frozen=True)
class Split:
    """Row ranges ``[start, stop)`` of the three splits (inputs included), plus the scaling range.

    Attributes:
        train, val, test: ``(start, stop)`` rows; ``val``/``test`` start ``lookback`` rows before
            the first forecast target.
        protocol: the protocol that produced them.
    """

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]
    protocol: str

    def rows(self, name: str) -> tuple[int, int]:
        """The ``(start, stop)`` of split ``name`` (``train``, ``val`` or ``test``)."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}.")
        return getattr(self, name)


def detect_protocol(name: str) -> str:
    """``ett-hour`` for ETTh* files, ``ett-minute`` for ETTm*, else ``ratio``."""
    upper = name.upper()
    if upper.startswith("ETTH"):
        return "ett-hour"
    if upper.startswith("ETTM"):
        return "ett-minute"
    return "ratio"


def split_borders(
    n_rows: int, lookback: int, horizon: int, protocol: str = "ratio", name: str = ""
) -> Split:
    """Row ranges of the standard splits.

    Args:
        n_rows: rows in the file.
        lookback: input length ``L`` (val/test start ``L`` rows early).
        horizon: forecast length ``H`` (each split must hold at least one window).
        protocol: ``auto`` (from ``name``), ``ett-hour``, ``ett-minute`` or ``ratio`` (70/10/20).
        name: file name for ``auto``.

    Examples:
        >>> s = split_borders(17420, lookback=336, horizon=96, protocol="ett-hour")
        >>> s.train, s.val, s.test
        ((0, 8640), (8304, 11520), (11184, 14400))
        >>> split_borders(1000, lookback=24, horizon=12).test
        (776, 1000)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    for label, v in (("lookback", lookback), ("horizon", horizon)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{label} must be a positive int, got {v!r}.")
    if protocol == "auto":
        protocol = detect_protocol(name)
    if protocol.startswith("ett"):
        per_month = 30 * 24 * (4 if protocol == "ett-minute" else 1)
        b_train, b_val, b_test = 12 * per_month, 16 * per_month, 20 * per_month
        if n_rows < b_test:
            raise ValueError(
                f"the {protocol} protocol needs {b_test} rows (12/4/4 months), the data has "
                f"{n_rows}; use --protocol ratio."
            )
    else:
        n_train, n_test = int(n_rows * 0.7), int(n_rows * 0.2)
        b_train, b_val, b_test = n_train, n_rows - n_test, n_rows
    split = Split(
        train=(0, b_train),
        val=(b_train - lookback, b_val),
        test=(b_val - lookback, b_test),
        protocol=protocol,
    )
    need = lookback + horizon
    for part in ("train", "val", "test"):
        start, stop = split.rows(part)
        if start < 0 or stop - start < need:
            raise ValueError(
                f"too few rows: the {part} split has {stop - max(start, 0)} rows of {n_rows} but "
                f"lookback + horizon = {lookback} + {horizon} = {need} are needed per window; use "
                "more rows or a shorter --lookback/--horizon."
            )
    return split


class StandardScaler:
    """Per-column standardisation with statistics of the training rows only.

    Examples:
        >>> import numpy as np
        >>> s = StandardScaler().fit(np.array([[0.0], [2.0]]))
        >>> s.transform(np.array([[4.0]])).tolist(), s.inverse_transform(np.array([[3.0]])).tolist()
        ([[3.0]], [[4.0]])
    """

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None):
        self.mean = None if mean is None else np.asarray(mean, np.float64)
        self.std = None if std is None else np.asarray(std, np.float64)

    def fit(self, x: np.ndarray) -> StandardScaler:
        """Compute column means and standard deviations (constant columns get std 1)."""
        x = np.asarray(x, np.float64)
        self.mean = x.mean(0) if len(x) else np.zeros(x.shape[1])
        std = x.std(0) if len(x) else np.ones(x.shape[1])
        self.std = np.where(std > 1e-8, std, 1.0)
        return self

    def _check(self) -> None:
        if self.mean is None or self.std is None:
            raise ValueError("StandardScaler is not fitted; call fit(train_rows) first.")

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std``."""
        self._check()
        return ((np.asarray(x, np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """``x * std + mean``."""
        self._check()
        return (np.asarray(x, np.float64) * self.std + self.mean).astype(np.float32)

    def state(self) -> dict[str, list[float]]:
        """JSON-able statistics (for the run's ``config.json``)."""
        self._check()
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
