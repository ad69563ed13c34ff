"""Test metrics and the side-by-side report: MSE/MAE per horizon, routing, runs on any CSV.

:func:`evaluate_horizons` scores a forecaster on every window of a split at each horizon
(errors per forecast step on the standardised scale, routing by patch position for MoE layers;
a model that forecasts any horizon is rolled out once per window); :func:`evaluate_run` does it
for a trained run directory on any CSV with the run's columns; :func:`result_rows`,
:func:`average_rows` and :func:`format_table` turn runs into the comparison table.
"""

from __future__ import annotations

import contextlib
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
    "evaluate_horizons",
    "horizons_summary",
    "sample_windows",
    "evaluate_run",
    "check_compatible",
    "result_rows",
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
        windows: windows scored.
        routing: per MoE layer, ``[N, E]`` assignment counts by patch position and expert.
        routing_stats: per MoE layer, mean of :func:`moesuite.core.stats.routing_summary`
            over batches.
    """

    sq: np.ndarray
    abs: np.ndarray
    count: int = 0
    windows: int = 0
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
def evaluate_horizons(
    model: Forecaster,
    dm: ForecastDataModule,
    split: str,
    horizons: Sequence[int],
    stride: int = 1,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[int, ForecastErrors]:
    """Score ``model`` on ``split`` at every horizon, each on its own complete window set.

    The windows of horizon ``h`` are all windows of the split with ``h`` future steps (every
    one scored, no dropped last batch). A model that forecasts any horizon is rolled out once
    per window, as far as the longest horizon that window belongs to, and every shorter
    horizon is scored on the first steps of that same forecast; a direct model is scored at
    its own horizon only. ``stride`` > 1 scores every ``stride``-th window (a cheaper
    validation estimate). ``batch_size`` windows go through the model at once: the figures do
    not depend on it (each window is forecast alone), the peak memory grows with it (see
    ``docs/experiments.md``).

    Returns:
        ``{h: ForecastErrors}`` (routing recorded over all passes of all windows).
    """
    hs = sorted({int(h) for h in horizons})
    if not getattr(model, "any_horizon", False) and hs != [model.horizon]:
        raise ValueError(f"a direct forecaster is scored at its horizon {model.horizon}, got {hs}.")
    n_windows = {h: len(dm.dataset(split, h)) for h in hs}
    errors = {h: ForecastErrors(np.zeros(h), np.zeros(h)) for h in hs}
    was_training = model.training
    model.eval()
    routing: dict[str, torch.Tensor] = {}
    stats: dict[str, list[dict[str, float]]] = {}
    n_patches = getattr(model, "n_patches", None)

    def observe(name: str, layer: nn.Module, out: Any) -> None:
        # each MoE layer call is summarised at once and nothing of it is kept: a roll-out makes
        # ceil(H / H_o) passes per batch, and keeping all their router outputs grows with the
        # horizon and the batch
        stats.setdefault(name, []).append(routing_summary(out))
        if n_patches:
            plan = out.plan
            E = plan.num_experts
            flat = (plan.token_idx % n_patches) * E + plan.expert_idx
            c = torch.bincount(flat, minlength=n_patches * E).reshape(n_patches, E)
            routing[name] = routing.get(name, torch.zeros_like(c)) + c

    groups = []  # (horizon to roll out, window indices needing exactly that horizon)
    for j, h in enumerate(reversed(hs)):
        lo = 0 if j == 0 else n_windows[hs[len(hs) - j]]
        groups.append((h, [i for i in range(lo, n_windows[h]) if i % stride == 0]))
    batches = [
        (h, idx[k : k + batch_size]) for h, idx in groups for k in range(0, len(idx), batch_size)
    ]
    if progress:
        batches = track(batches, description=f"evaluating {split}", transient=True)
    recorder = RoutingRecorder(model, on_record=observe)
    recorder.start()
    try:
        for h, idx in batches:
            ds = dm.dataset(split, h)
            items = [ds[i] for i in idx]
            b = {k: torch.stack([it[k] for it in items]) for k in items[0]}
            pred = as_moe_output(model(b["x"], b["z_past"], b["z_future"], h)).output
            err = (pred - b["y"]).double()
            del pred
            for g in hs:
                if g <= h:
                    errors[g].sq += (err[:, :g] ** 2).sum((0, 2)).numpy()
                    errors[g].abs += err[:, :g].abs().sum((0, 2)).numpy()
                    errors[g].count += err.shape[0] * err.shape[2]
                    errors[g].windows += err.shape[0]
    finally:
        recorder.stop()
        model.train(was_training)
    if any(e.count == 0 for e in errors.values()):
        raise ValueError(f"no {split} windows to score at horizons {hs}.")
    for e in errors.values():
        e.routing = {k: v.numpy() for k, v in routing.items()}
        e.routing_stats = {k: _mean_dicts(v) for k, v in stats.items()}
    return errors


def horizons_summary(errors: dict[int, ForecastErrors], stride: int = 1) -> dict[str, Any]:
    """JSON-ready ``{"by_horizon": {h: {mse, mae, windows}}, "mse", "mae", "routing"}``.

    ``mse``/``mae`` are the averages over the horizons.
    """
    by_h = {
        str(h): {"mse": e.mse(), "mae": e.mae(), "windows": e.windows} for h, e in errors.items()
    }
    first = next(iter(errors.values()))
    return {
        "by_horizon": by_h,
        "mse": float(np.mean([v["mse"] for v in by_h.values()])),
        "mae": float(np.mean([v["mae"] for v in by_h.values()])),
        "stride": stride,
        "routing": first.routing_stats,
    }


def _mean_dicts(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def sample_windows(
    model: Forecaster,
    dm: ForecastDataModule,
    split: str,
    n: int = 3,
    horizon: int | None = None,
    index: int | None = None,
) -> list[dict[str, np.ndarray]]:
    """``n`` evenly spaced windows of ``split`` (or the window ``index``) with the forecast."""
    h = horizon or model.horizon
    ds = dm.dataset(split, h)
    out = []
    model.eval()
    picks = [index] if index is not None else np.linspace(0, len(ds) - 1, n).astype(int)
    with torch.no_grad():
        for i in picks:
            b = ds[int(i)]
            pred = model.predict(b["x"][None], b["z_past"][None], b["z_future"][None], h)[0]
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
    horizons = config.get("horizons") or [cfg.horizon]
    if not model.any_horizon:
        horizons = [cfg.horizon]
    with contextlib.ExitStack() as stack:
        if split == "test":  # a trained run's evaluation is a final evaluation
            stack.enter_context(dm.final_evaluation())
        errors = evaluate_horizons(model, dm, split, horizons, progress=progress)
        samples = sample_windows(model, dm, split, horizon=max(horizons))
    last = errors[max(horizons)]
    metrics = {
        "run_dir": str(run_dir),
        "data": table.name,
        "split": split,
        "lookback": cfg.lookback,
        "horizons": horizons,
        "windows": {str(h): e.windows for h, e in errors.items()},
        split: horizons_summary(errors),
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
            samples,
            run.plot_path("forecast_vs_truth"),
            channel_name=table.columns[-1],
            title=f"{config['model']} on {table.name} ({split}, standardised)",
        )
        if last.routing:
            plot_expert_usage_by_position(last.routing, run.plot_path("expert_usage_by_position"))
    return path, metrics


def result_rows(metrics: dict[str, Any], run_dir: Path | None = None) -> list[dict[str, Any]]:
    """One flat row per horizon of a run's ``metrics.json`` (test and validation figures)."""
    rows = []
    for h, test in metrics["test"]["by_horizon"].items():
        val = metrics["val"]["by_horizon"][h]
        rows.append(
            {
                "model": metrics["model"],
                "data": metrics["data"],
                "lookback": metrics["lookback"],
                "seed": metrics.get("seed", 0),
                "horizon": int(h),
                "mse": test["mse"],
                "mae": test["mae"],
                "test_windows": test["windows"],
                "val_mse": val["mse"],
                "val_windows": val["windows"],
                "val_stride": metrics["val"]["stride"],
                "params": metrics["parameters"],
                "epochs_run": metrics["epochs_run"],
                "train_seconds": round(metrics["train_seconds"], 1),
                "seconds": round(metrics["seconds"], 1),
                "run_dir": str(run_dir) if run_dir else None,
            }
        )
    return rows


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
