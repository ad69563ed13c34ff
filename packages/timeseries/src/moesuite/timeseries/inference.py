"""Use a trained run directory: evaluate it on any CSV/split, or forecast past the end of a CSV."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from moesuite.core.training import default_run_path, run_directory
from moesuite.timeseries.data import SeriesTable, StandardScaler, calendar_features
from moesuite.timeseries.evaluation import evaluate_model
from moesuite.timeseries.models import Forecaster
from moesuite.timeseries.plots import plot_expert_usage_by_position, plot_forecasts
from moesuite.timeseries.training import (
    build_datamodule,
    describe_errors,
    load_run,
    load_table,
    torch_threads,
)

__all__ = ["evaluate_run", "forecast_run"]


def _check_compatible(table: SeriesTable, config: dict[str, Any], model: Forecaster, source: str) -> None:
    cols = config["data"]["columns"]
    if table.n_channels != model.n_channels:
        raise ValueError(
            f"{source}: {table.n_channels} target columns {table.columns}, but the run was trained on "
            f"{model.n_channels} ({cols}); pass a CSV with the same columns."
        )


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, split: str = "test",
                 out: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Evaluate a trained run on ``split`` of ``data`` (default: the data it was trained on).

    The CSV is split and standardised by the standard protocol (its own training statistics)
    with the run's lookback, horizon and columns. Writes ``out`` (default
    ``runs/timeseries/eval/<timestamp>``) with ``config.json``, ``metrics.json`` and plots.
    """
    cfg, config, model = load_run(run_dir)
    if split not in ("train", "val", "test"):
        raise ValueError(f"--split must be 'train', 'val' or 'test', got {split!r}.")
    table = load_table(cfg, data)
    _check_compatible(table, config, model, str(data or cfg.data or "the generator"))
    dm = build_datamodule(cfg, table)
    if dm.n_covariates != config["model_config"].get("n_covariates", dm.n_covariates):
        raise ValueError(
            f"{data}: {dm.n_covariates} covariate columns ({dm.covariate_names}) but the run expects "
            f"{config['model_config']['n_covariates']} ({config['data']['covariate_columns']})."
        )
    loader = torch.utils.data.DataLoader(dm.dataset(split), batch_size=2 * cfg.batch_size)
    with torch_threads(cfg.threads):
        errors = evaluate_model(model, loader, getattr(model, "n_patches", None))
    metrics = {"run_dir": str(run_dir), "data": table.name, "split": split, "lookback": cfg.lookback,
               "horizon": cfg.horizon, "windows": len(dm.dataset(split)), split: describe_errors(errors)}
    path = Path(out) if out is not None else default_run_path("runs", "timeseries", "eval")
    with run_directory(path) as run:
        run.write_config({"command": "eval", "run_dir": str(run_dir), "data": str(data) if data else cfg.data,
                          "split": split, "train": asdict(cfg)})
        run.write_metrics(metrics)
        ds = dm.dataset(split)
        windows = []
        with torch.no_grad():
            for i in np.linspace(0, len(ds) - 1, 3).astype(int):
                b = ds[int(i)]
                pred = model(b["x"][None], b["z_past"][None], b["z_future"][None])[0]
                windows.append({"x": b["x"].numpy(), "y": b["y"].numpy(), "pred": pred.numpy()})
        plot_forecasts(windows, run.plot_path("forecast_vs_truth"), channel_name=table.columns[-1],
                       title=f"{config['model']} on {table.name} ({split}, standardised)")
        if errors.routing:
            plot_expert_usage_by_position(errors.routing, run.plot_path("expert_usage_by_position"))
    return path, metrics


def _future_timestamps(stamps: pd.DatetimeIndex, horizon: int) -> pd.DatetimeIndex:
    tail = stamps[-min(len(stamps), 50):]
    steps = tail[1:] - tail[:-1]
    if len(steps) and (steps == steps[0]).all():
        step = steps[0]
    else:  # irregular or calendar-based (monthly...) timestamps: let pandas name the frequency
        freq = pd.tseries.frequencies.to_offset(pd.infer_freq(tail).freqstr) if pd.infer_freq(tail) else None
        step = freq if freq is not None else steps[-1]
    return pd.DatetimeIndex([stamps[-1] + step * (i + 1) for i in range(horizon)])


def forecast_run(run_dir: str | Path, data: str | Path | None = None, horizon: int | None = None,
                 out: str | Path | None = None) -> tuple[Path, pd.DataFrame]:
    """Forecast ``horizon`` steps after the last row of ``data`` with a trained run.

    The last ``lookback`` rows are standardised with the *run's* training statistics and the
    forecast is returned in the original units. Writes ``forecast.csv`` (timestamp + target
    columns) and ``plots/forecast.png`` into ``out`` (default ``runs/timeseries/forecast/<timestamp>``).
    """
    cfg, config, model = load_run(run_dir)
    H = horizon or cfg.horizon
    if H > cfg.horizon and not model.any_horizon:
        raise ValueError(f"--horizon {H}: this {config['model']} run forecasts at most {cfg.horizon} steps.")
    table = load_table(cfg, data)
    _check_compatible(table, config, model, str(data or cfg.data or "the generator"))
    if len(table) < cfg.lookback:
        raise ValueError(f"{data}: {len(table)} rows, but the model needs lookback = {cfg.lookback} rows of input.")
    if table.known_covariates:
        raise ValueError("forecast with user covariates known in the future needs their future values, which a "
                         "CSV ending at the last observation does not hold; train without --known-covariates.")
    scaler = StandardScaler(**config["data"]["scaler"])
    x = scaler.transform(table.values[-cfg.lookback:])
    blocks = []
    cov_state = config["data"]["covariate_scaler"]
    if cov_state is not None:
        blocks.append(StandardScaler(**cov_state).transform(table.covariates[-cfg.lookback:]))
    future = _future_timestamps(table.timestamps, H)
    z_future = np.zeros((H, 0), np.float32)
    if cfg.calendar:
        cal, _ = calendar_features(table.timestamps.append(future))
        blocks.append(cal[-cfg.lookback - H : -H])
        z_future = cal[-H:]
    z_past = np.concatenate(blocks, 1) if blocks else np.zeros((cfg.lookback, 0), np.float32)
    with torch.no_grad():
        pred = model(torch.as_tensor(x)[None], torch.as_tensor(z_past)[None], torch.as_tensor(z_future)[None], horizon=H)[0]
    values = scaler.inverse_transform(pred.numpy())
    frame = pd.DataFrame(values, columns=table.columns)
    frame.insert(0, "date", future)
    path = Path(out) if out is not None else default_run_path("runs", "timeseries", "forecast")
    with run_directory(path) as run:
        frame.to_csv(run.file("forecast.csv"), index=False)
        run.write_config({"command": "forecast", "run_dir": str(run_dir), "data": str(data) if data else cfg.data,
                          "horizon": H})
        run.write_metrics({"horizon": H, "first_timestamp": str(future[0]), "last_timestamp": str(future[-1])})
        plot_forecasts([{"x": table.values[-cfg.lookback:], "y": np.full_like(values, np.nan), "pred": values}],
                       run.plot_path("forecast"), channel_name=table.columns[-1],
                       title=f"{config['model']}: forecast of {H} steps after {table.timestamps[-1]}")
    return path, frame
