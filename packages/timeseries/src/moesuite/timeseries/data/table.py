"""A multivariate series with timestamps, read from the CSV format people have.

The format (ETT, Weather, Electricity, Traffic, M4 exports): one timestamp column and numeric
columns, one row per time step, oldest first. :func:`load_csv` validates it and returns a
:class:`SeriesTable`: the *target* columns (what is forecast), the *covariate* columns (exogenous
inputs, not forecast) and the timestamps. Calendar covariates derived from the timestamps are
computed by :func:`calendar_features` (always known in the future).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SeriesTable", "load_csv", "calendar_features", "TIMESTAMP_NAMES"]

#: column names recognised as the timestamp column (case-insensitive), in this order
TIMESTAMP_NAMES = ("date", "timestamp", "datetime", "time", "ds")


@dataclass
class SeriesTable:
    """A multivariate time series.

    Attributes:
        timestamps: ``[T]`` datetimes, strictly increasing.
        values: ``[T, C]`` float32 target columns.
        columns: the ``C`` target names.
        covariates: ``[T, Cz]`` float32 exogenous columns (``Cz`` may be 0).
        covariate_columns: the ``Cz`` covariate names.
        known_covariates: names (a subset of ``covariate_columns``) whose *future* values are
            known when forecasting (e.g. a planned schedule); the others are only seen in the past.
        name: a label (the file stem, or ``"synthetic"``).
    """

    timestamps: pd.DatetimeIndex
    values: np.ndarray
    columns: list[str]
    covariates: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    covariate_columns: list[str] = field(default_factory=list)
    known_covariates: list[str] = field(default_factory=list)
    name: str = "series"

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim != 2:
            raise ValueError(f"values must be [T, C], got shape {self.values.shape}.")
        T = self.values.shape[0]
        if self.covariates.size == 0:
            self.covariates = np.zeros((T, 0), np.float32)
        self.covariates = np.asarray(self.covariates, dtype=np.float32)
        if self.covariates.shape[0] != T or len(self.timestamps) != T:
            raise ValueError(
                f"timestamps ({len(self.timestamps)}), values ({T}) and covariates "
                f"({self.covariates.shape[0]}) must have the same number of rows."
            )
        if len(self.columns) != self.values.shape[1]:
            raise ValueError(
                f"columns has {len(self.columns)} names for {self.values.shape[1]} value columns."
            )
        if len(self.covariate_columns) != self.covariates.shape[1]:
            raise ValueError("covariate_columns must name every covariate column.")
        unknown = sorted(set(self.known_covariates) - set(self.covariate_columns))
        if unknown:
            raise ValueError(
                f"known_covariates {unknown} are not covariate columns {self.covariate_columns}."
            )

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_channels(self) -> int:
        """``C``, the number of forecast columns."""
        return self.values.shape[1]


def _find_timestamp(df: pd.DataFrame, path: Path, timestamp: str | None) -> str:
    if timestamp is not None:
        if timestamp not in df.columns:
            raise ValueError(
                f"{path}: no column {timestamp!r} for --timestamp; columns are {list(df.columns)}."
            )
        return timestamp
    lower = {str(c).lower(): c for c in df.columns}
    for name in TIMESTAMP_NAMES:
        if name in lower:
            return lower[name]
    raise ValueError(
        f"{path}: no timestamp column; expected one named {'/'.join(TIMESTAMP_NAMES)} "
        f"(or pass --timestamp COL), got columns {list(df.columns)}."
    )


def _parse_columns(spec: str | Sequence[str] | None) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [s.strip() for s in spec.split(",") if s.strip()]
    return list(spec)


def load_csv(
    path: str | Path,
    target: str | Sequence[str] = "all",
    covariates: str | Sequence[str] | None = None,
    known_covariates: str | Sequence[str] | None = None,
    timestamp: str | None = None,
) -> SeriesTable:
    r"""Read a forecasting CSV (timestamp column + numeric columns) into a :class:`SeriesTable`.

    Missing values inside a column are filled by linear interpolation in time (then the
    nearest value at the ends); a column with no values at all is an error.

    Args:
        path: the CSV file.
        target: ``"all"`` (every numeric column that is not a covariate) or column names
            (a list or a comma-separated string).
        covariates: exogenous input columns (not forecast).
        known_covariates: covariates whose future values are known at forecast time.
        timestamp: the timestamp column (default: the first of :data:`TIMESTAMP_NAMES`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no timestamp column, unparseable or unsorted timestamps, unknown,
            non-numeric or all-missing columns, or fewer than 2 rows.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "tiny.csv"
        >>> rows = ["date,a,b", "2020-01-01 00:00,1,2", "2020-01-01 01:00,,4"]
        >>> rows.append("2020-01-01 02:00,3,6")
        >>> _ = p.write_text("\n".join(rows) + "\n")
        >>> t = load_csv(p, covariates="b")
        >>> t.columns, t.covariate_columns, t.values[:, 0].tolist()
        (['a'], ['b'], [1.0, 2.0, 3.0])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file (expected a CSV with a timestamp column and numeric columns)."
        )
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]}).") from None
    if len(df) < 2:
        raise ValueError(
            f"{path}: {len(df)} data rows; a time series needs at least lookback + horizon rows."
        )
    ts_col = _find_timestamp(df, path, timestamp)
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(df[ts_col], format="mixed"))
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{path}: column {ts_col!r} is not parseable as timestamps ({exc})."
        ) from None
    if stamps.hasnans:
        raise ValueError(
            f"{path}: column {ts_col!r} has {int(stamps.isna().sum())} missing timestamps."
        )
    if not stamps.is_monotonic_increasing or stamps.has_duplicates:
        raise ValueError(
            f"{path}: timestamps in {ts_col!r} must be strictly increasing "
            "(sort the file, drop duplicates)."
        )
    others = [c for c in df.columns if c != ts_col]
    cov = _parse_columns(covariates)
    known = _parse_columns(known_covariates)
    bad_known = sorted(set(known) - set(cov))
    if bad_known:
        raise ValueError(
            f"--known-covariates {bad_known} must also be listed in --covariates {cov}."
        )
    tgt = [c for c in others if c not in cov] if target == "all" else _parse_columns(target)
    for c in [*tgt, *cov]:
        if c not in df.columns or c == ts_col:
            raise ValueError(f"{path}: no data column {c!r}; columns are {others}.")
    if not tgt:
        raise ValueError(f"{path}: no target column left (target={target!r}, covariates={cov}).")
    overlap = sorted(set(tgt) & set(cov))
    if overlap:
        raise ValueError(
            f"columns {overlap} are both target and covariate; a column is one or the other."
        )

    def numeric(cols: list[str]) -> np.ndarray:
        out = np.zeros((len(df), len(cols)), np.float64)
        for j, c in enumerate(cols):
            col = pd.to_numeric(df[c], errors="coerce")
            n_bad = int(col.isna().sum() - df[c].isna().sum())
            if n_bad:
                example = df[c][col.isna() & df[c].notna()].iloc[0]
                raise ValueError(
                    f"{path}: column {c!r} is not numeric ({n_bad} values like {example!r}); "
                    "expected numbers."
                )
            if col.isna().all():
                raise ValueError(
                    f"{path}: column {c!r} has no values (all missing); drop it or fill it."
                )
            out[:, j] = col.interpolate(limit_direction="both").to_numpy()
        return out

    return SeriesTable(
        timestamps=stamps,
        values=numeric(tgt),
        columns=tgt,
        covariates=numeric(cov),
        covariate_columns=cov,
        known_covariates=known,
        name=path.stem,
    )


def calendar_features(timestamps: pd.DatetimeIndex) -> tuple[np.ndarray, list[str]]:
    """Time features in ``[-0.5, 0.5]`` (the Informer/Autoformer ``timeF`` encoding).

    Hour of day, day of week, day of month and day of year; features that are constant over
    the timestamps (e.g. hour for daily data) are dropped.

    Returns:
        ``([T, F] float32, names)``.

    Examples:
        >>> import pandas as pd
        >>> f, names = calendar_features(pd.date_range("2020-01-01", periods=48, freq="h"))
        >>> f.shape, names
        ((48, 4), ['hour', 'weekday', 'monthday', 'yearday'])
    """
    ts = pd.DatetimeIndex(timestamps)
    feats = {
        "hour": ts.hour / 23.0 - 0.5,
        "weekday": ts.day_of_week / 6.0 - 0.5,
        "monthday": (ts.day - 1) / 30.0 - 0.5,
        "yearday": (ts.day_of_year - 1) / 365.0 - 0.5,
    }
    names = [k for k, v in feats.items() if np.ptp(np.asarray(v)) > 0]
    if not names:
        return np.zeros((len(ts), 0), np.float32), []
    return np.stack([np.asarray(feats[k], np.float32) for k in names], axis=1), names
