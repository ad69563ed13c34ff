"""Test metrics and the side-by-side report: MSE/MAE per horizon, routing, runs on any CSV.

:func:`evaluate_model` scores a forecaster on evaluation batches (errors per forecast step on
the standardised scale, routing by patch position for MoE layers); :func:`evaluate_run` does it
for a trained run directory on any CSV with the run's columns; :func:`result_row`,
:func:`average_rows` and :func:`format_table` turn runs into the comparison table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import track
from torch import nn

from moesuite.core.recorder import RoutingRecorder
from moesuite.core.stats import routing_summary
from moesuite.core.training import default_run_path, run_directory
from moesuite.timeseries.config import build_datamodule, load_run, load_table
from moesuite.timeseries.data import ForecastDataModule, SeriesTable
from moesuite.timeseries.models import Forecaster, as_moe_output
from moesuite.timeseries.plots import plot_expert_usage_by_position, plot_forecasts

__all__ = [
    "STANDARD_HORIZONS",
    "ForecastErrors",
    "evaluate_model",
    "describe_errors",
    "sample_windows",
    "evaluate_run",
    "check_compatible",
    "result_row",
    "average_rows",
    "format_table",
]

STANDARD_HORIZONS = (96, 192, 336, 720)
SPLITS = ("train", "val", "test")


@dataclass
class ForecastErrors:
    """Error sums per forecast step, accumulated over windows and channels.

    Attributes:
        sq: ``[H]`` summed squared errors per step.
        abs: ``[H]`` summed absolute errors per step.
        count: values summed per step (windows x channels).
        routing: per MoE layer, ``[N, E]`` assignment counts by patch position and expert.
        routing_stats: per MoE layer, mean of :func:`moesuite.core.stats.routing_summary`
            over batches.
    """

    sq: np.ndarray
    abs: np.ndarray
    count: int = 0
    routing: dict[str, np.ndarray] = field(default_factory=dict)
    routing_stats: dict[str, dict[str, float]] = field(default_factory=dict)

    def mse(self, horizon: int | None = None) -> float:
        """MSE over the first ``horizon`` steps (all by default)."""
        h = horizon or len(self.sq)
        return float(self.sq[:h].sum() / (self.count * h))

    def mae(self, horizon: int | None = None) -> float:
        """MAE over the first ``horizon`` steps (all by default)."""
        h = horizon or len(self.abs)
        return float(self.abs[:h].sum() / (self.count * h))

    def summary(self, horizons: Iterable[int] = STANDARD_HORIZONS) -> dict[str, object]:
        """``{"mse", "mae", "by_horizon": {h: {"mse", "mae"}}}``.

        Sub-horizons shorter than the forecast use the same windows' first steps.
        """
        H = len(self.sq)
        hs = sorted({h for h in horizons if h < H} | {H})
        return {
            "mse": self.mse(),
            "mae": self.mae(),
            "by_horizon": {str(h): {"mse": self.mse(h), "mae": self.mae(h)} for h in hs},
        }


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    batches: Iterable[dict[str, torch.Tensor]],
    n_patches: int | None = None,
    progress: bool = False,
) -> ForecastErrors:
    """Run ``model`` over evaluation batches and accumulate errors and routing.

    Args:
        model: a forecaster (``model(x, z_past, z_future)``: a ``[B, H, C]`` forecast or a
            :class:`~moesuite.core.output.MoEOutput` holding one).
        batches: dicts with ``x``, ``y``, ``z_past``, ``z_future`` (a DataLoader).
        n_patches: ``N`` tokens per series, to attribute routed tokens to patch positions
            (the MoE layers see ``B * C * N`` tokens in that order).
        progress: show a progress bar over the batches.
    """
    was_training = model.training
    model.eval()
    sq = ab = None
    count = 0
    routing: dict[str, torch.Tensor] = {}
    stats: dict[str, list[dict[str, float]]] = {}
    recorder = RoutingRecorder(model, detach=True)
    if progress:
        batches = track(batches, description="evaluating", transient=True)
    try:
        for batch in batches:
            recorder.clear()
            recorder.start()
            pred = as_moe_output(model(batch["x"], batch["z_past"], batch["z_future"])).output
            recorder.stop()
            err = pred - batch["y"]
            s, a = (err**2).sum((0, 2)).double(), err.abs().sum((0, 2)).double()
            sq = s if sq is None else sq + s
            ab = a if ab is None else ab + a
            count += err.shape[0] * err.shape[2]
            for rec in recorder.records:
                plan = rec.output.plan
                stats.setdefault(rec.name, []).append(routing_summary(rec.output))
                if n_patches:
                    E = plan.num_experts
                    flat = (plan.token_idx % n_patches) * E + plan.expert_idx
                    c = torch.bincount(flat, minlength=n_patches * E).reshape(n_patches, E)
                    routing[rec.name] = routing.get(rec.name, torch.zeros_like(c)) + c
    finally:
        recorder.stop()
        model.train(was_training)
    if sq is None or ab is None:
        raise ValueError("no evaluation windows: the split is empty.")
    return ForecastErrors(
        sq=sq.numpy(),
        abs=ab.numpy(),
        count=count,
        routing={k: v.numpy() for k, v in routing.items()},
        routing_stats={k: _mean_dicts(v) for k, v in stats.items()},
    )


def _mean_dicts(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def describe_errors(errors: ForecastErrors) -> dict[str, Any]:
    """JSON-ready metrics and routing statistics."""
    return {**errors.summary(), "routing": errors.routing_stats}


def sample_windows(
    model: Forecaster, dm: ForecastDataModule, split: str, n: int = 3
) -> list[dict[str, np.ndarray]]:
    """``n`` evenly spaced windows of ``split`` with the model's forecast (for plots)."""
    ds = dm.dataset(split)
    out = []
    model.eval()
    with torch.no_grad():
        for i in np.linspace(0, len(ds) - 1, n).astype(int):
            b = ds[int(i)]
            pred = model.predict(b["x"][None], b["z_past"][None], b["z_future"][None])[0]
            out.append({"x": b["x"].numpy(), "y": b["y"].numpy(), "pred": pred.numpy()})
    return out


def check_compatible(
    table: SeriesTable, config: dict[str, Any], model: Forecaster, source: str
) -> None:
    """Raise ``ValueError`` unless ``table`` has as many target columns as the run's model."""
    if table.n_channels != model.n_channels:
        raise ValueError(
            f"{source}: {table.n_channels} target columns {table.columns}, but the run was "
            f"trained on {model.n_channels} ({config['data']['columns']}); pass a CSV with the "
            "same columns."
        )


def evaluate_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    split: str = "test",
    out: str | Path | None = None,
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Evaluate a trained run on ``split`` of ``data`` (default: the data it was trained on).

    The CSV is split and standardised by the standard protocol (its own training statistics)
    with the run's lookback, horizon and columns. Writes ``out`` (default
    ``runs/timeseries/eval/<timestamp>``) with ``config.json``, ``metrics.json`` and plots.
    """
    if split not in SPLITS:
        raise ValueError(f"--split must be 'train', 'val' or 'test', got {split!r}.")
    cfg, config, model = load_run(run_dir)
    table = load_table(cfg, data)
    check_compatible(table, config, model, str(data or cfg.data or "the generator"))
    dm = build_datamodule(cfg, table)
    expected = config["model_config"].get("n_covariates", dm.n_covariates)
    if dm.n_covariates != expected:
        raise ValueError(
            f"{data}: {dm.n_covariates} covariate columns ({dm.covariate_names}) but the run "
            f"expects {expected} ({config['data']['covariate_columns']})."
        )
    loader = torch.utils.data.DataLoader(dm.dataset(split), batch_size=2 * cfg.batch_size)
    errors = evaluate_model(model, loader, getattr(model, "n_patches", None), progress)
    metrics = {
        "run_dir": str(run_dir),
        "data": table.name,
        "split": split,
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "windows": len(dm.dataset(split)),
        split: describe_errors(errors),
    }
    path = Path(out) if out is not None else default_run_path("runs", "timeseries", "eval")
    with run_directory(path) as run:
        run.write_config(
            {
                "command": "eval",
                "run_dir": str(run_dir),
                "data": str(data) if data else cfg.data,
                "split": split,
                "train": asdict(cfg),
            }
        )
        run.write_metrics(metrics)
        plot_forecasts(
            sample_windows(model, dm, split),
            run.plot_path("forecast_vs_truth"),
            channel_name=table.columns[-1],
            title=f"{config['model']} on {table.name} ({split}, standardised)",
        )
        if errors.routing:
            plot_expert_usage_by_position(errors.routing, run.plot_path("expert_usage_by_position"))
    return path, metrics


def result_row(metrics: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The flat row of one run's ``metrics.json``."""
    return {
        "model": metrics["model"],
        "data": metrics["data"],
        "lookback": metrics["lookback"],
        "horizon": metrics["horizon"],
        "mse": metrics["test"]["mse"],
        "mae": metrics["test"]["mae"],
        "val_mse": metrics["val"]["mse"],
        "params": metrics["parameters"],
        "epochs_run": metrics["epochs_run"],
        "seconds": round(metrics["seconds"], 1),
        "run_dir": str(run_dir) if run_dir else None,
    }


def average_rows(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model: mean test MSE and MAE over its horizons, and how many horizons."""
    out: dict[str, dict[str, float]] = {}
    for m in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == m]
        out[m] = {
            "mse": sum(r["mse"] for r in mine) / len(mine),
            "mae": sum(r["mae"] for r in mine) / len(mine),
            "n_horizons": len(mine),
        }
    return out


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one row per model, MSE/MAE per horizon and their average.

    A model run at fewer horizons than the table has gets its average over those, marked
    ``(k/n H)``.

    Examples:
        >>> rows = [{"model": "naive", "horizon": 24, "mse": 1.0, "mae": 0.5, "params": 0}]
        >>> print(format_table(rows))
        | model | H=24 MSE | H=24 MAE | avg MSE | avg MAE | params (max) |
        |---|---|---|---|---|---|
        | naive | 1.000 | 0.500 | 1.000 | 0.500 | 0 |
    """
    horizons = sorted({int(r["horizon"]) for r in rows})
    head = ["model", *[f"H={h} {k}" for h in horizons for k in ("MSE", "MAE")]]
    head += ["avg MSE", "avg MAE", "params (max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, a in average_rows(rows).items():
        cells = [m]
        for h in horizons:
            r = next((r for r in rows if r["model"] == m and int(r["horizon"]) == h), None)
            cells += [f"{r['mse']:.3f}", f"{r['mae']:.3f}"] if r else ["", ""]
        params = max(int(r.get("params", 0)) for r in rows if r["model"] == m)
        n = int(a["n_horizons"])
        note = "" if n == len(horizons) else f" ({n}/{len(horizons)} H)"
        cells += [f"{a['mse']:.3f}{note}", f"{a['mae']:.3f}{note}", str(params)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
