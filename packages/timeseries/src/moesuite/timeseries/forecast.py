"""Forecast past the end of a CSV with a trained run, in the data's own units and timestamps.

Unlike evaluation (windows inside the data, scored against the truth), a forecast starts
after the last row: the last ``lookback`` rows are standardised with the *run's* training
statistics, future calendar features come from the continued timestamps, and the forecast is
returned in the original units with its future timestamps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from moesuite.core.training import default_run_path, run_directory
from moesuite.timeseries.config import load_run, load_table
from moesuite.timeseries.data import StandardScaler, calendar_features
from moesuite.timeseries.evaluate import check_compatible
from moesuite.timeseries.plots import plot_forecasts

__all__ = ["forecast_run", "future_timestamps"]


def future_timestamps(stamps: pd.DatetimeIndex, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` timestamps after ``stamps``, at their step (or their inferred calendar).

    Examples:
        >>> stamps = pd.date_range("2021-01-01", periods=5, freq="h")
        >>> [str(t) for t in future_timestamps(stamps, 2)]
        ['2021-01-01 05:00:00', '2021-01-01 06:00:00']
    """
    tail = stamps[-min(len(stamps), 50) :]
    steps = tail[1:] - tail[:-1]
    if len(steps) and (steps == steps[0]).all():
        step = steps[0]
    else:  # irregular or calendar-based (monthly...) timestamps: let pandas name the frequency
        inferred = pd.infer_freq(tail)
        step = pd.tseries.frequencies.to_offset(inferred) if inferred else steps[-1]
    return pd.DatetimeIndex([stamps[-1] + step * (i + 1) for i in range(horizon)])


def forecast_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    horizon: int | None = None,
    out: str | Path | None = None,
) -> tuple[Path, pd.DataFrame]:
    """Forecast ``horizon`` steps after the last row of ``data`` with a trained run.

    Writes ``forecast.csv`` (timestamp + target columns, original units) and
    ``plots/forecast.png`` into ``out`` (default ``runs/timeseries/forecast/<timestamp>``).
    """
    cfg, config, model = load_run(run_dir)
    H = horizon or cfg.horizon
    if H > cfg.horizon and not model.any_horizon:
        raise ValueError(
            f"--horizon {H}: this {config['model']} run forecasts at most {cfg.horizon} steps."
        )
    table = load_table(cfg, data)
    check_compatible(table, config, model, str(data or cfg.data or "the generator"))
    if len(table) < cfg.lookback:
        raise ValueError(
            f"{data}: {len(table)} rows, but the model needs lookback = {cfg.lookback} rows."
        )
    if table.known_covariates:
        raise ValueError(
            "forecast with user covariates known in the future needs their future values, which "
            "a CSV ending at the last observation does not hold; train without --known-covariates."
        )
    scaler = StandardScaler(**config["data"]["scaler"])
    x = scaler.transform(table.values[-cfg.lookback :])
    blocks = []
    cov_state = config["data"]["covariate_scaler"]
    if cov_state is not None:
        blocks.append(StandardScaler(**cov_state).transform(table.covariates[-cfg.lookback :]))
    future = future_timestamps(table.timestamps, H)
    z_future = np.zeros((H, 0), np.float32)
    if cfg.calendar:
        cal, _ = calendar_features(table.timestamps.append(future))
        blocks.append(cal[-cfg.lookback - H : -H])
        z_future = cal[-H:]
    z_past = np.concatenate(blocks, 1) if blocks else np.zeros((cfg.lookback, 0), np.float32)
    inputs = [torch.as_tensor(a)[None] for a in (x, z_past, z_future)]
    with torch.no_grad():
        pred = model.predict(*inputs, horizon=H)[0]
    values = scaler.inverse_transform(pred.numpy())
    frame = pd.DataFrame(values, columns=table.columns)
    frame.insert(0, "date", future)
    path = Path(out) if out is not None else default_run_path("runs", "timeseries", "forecast")
    with run_directory(path) as run:
        frame.to_csv(run.file("forecast.csv"), index=False)
        run.write_config(
            {
                "command": "forecast",
                "run_dir": str(run_dir),
                "data": str(data) if data else cfg.data,
                "horizon": H,
            }
        )
        run.write_metrics(
            {"horizon": H, "first_timestamp": str(future[0]), "last_timestamp": str(future[-1])}
        )
        plot_forecasts(
            [
                {
                    "x": table.values[-cfg.lookback :],
                    "y": np.full_like(values, np.nan),
                    "pred": values,
                }
            ],
            run.plot_path("forecast"),
            channel_name=table.columns[-1],
            title=f"{config['model']}: forecast of {H} steps after {table.timestamps[-1]}",
        )
    return path, frame
