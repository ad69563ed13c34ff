"""Several models on the same data, splits, normalisation and budget: one row per (model, horizon)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from moesuite.timeseries.models import model_spec
from moesuite.timeseries.training import TrainConfig, build_datamodule, load_table, train_forecaster

__all__ = ["compare_models", "result_row", "format_table", "average_rows"]


def result_row(metrics: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """The flat row of one run's ``metrics.json``."""
    return {
        "model": metrics["model"], "data": metrics["data"], "lookback": metrics["lookback"],
        "horizon": metrics["horizon"], "mse": metrics["test"]["mse"], "mae": metrics["test"]["mae"],
        "val_mse": metrics["val"]["mse"], "params": metrics["parameters"], "epochs_run": metrics["epochs_run"],
        "seconds": round(metrics["seconds"], 1), "run_dir": str(run_dir) if run_dir else None,
    }


def compare_models(
    models: Sequence[str],
    base: TrainConfig,
    horizons: Sequence[int],
    runs_dir: str | Path,
    progress: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    jsonl: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Train and test every model at every horizon with ``base``'s data and budget.

    All inputs are validated (model names, data, window sizes at the longest horizon) before
    anything is trained. Each run is written to ``runs_dir/<model>-L<lookback>-H<horizon>``.

    Args:
        models: registered model names.
        base: shared settings (``model`` and ``horizon`` are replaced per run); each model
            gets the ``model_options`` it takes (e.g. ``d_model`` reaches MoHETS and PatchTST,
            not DLinear), and an option no model takes is an error.
        horizons: forecast lengths.
        runs_dir: parent of the per-run directories.
        progress: progress bars.
        on_row: called with each result row as soon as it exists (it may add entries).
        jsonl: append each row as a JSON line to this file as soon as it exists.
    """
    if not models or not horizons:
        raise ValueError("give at least one model and one horizon.")
    accepted = {m: set(inspect.signature(model_spec(m).cls.__init__).parameters) for m in models}
    unused = sorted(k for k in base.model_options if not any(k in a for a in accepted.values()))
    if unused:
        raise ValueError(f"model options {unused} are taken by none of the models {list(models)}.")
    table = load_table(base)
    for h in horizons:
        build_datamodule(replace(base, horizon=int(h)), table)  # raises on too few rows
    rows = []
    for h in horizons:
        for m in models:
            options = {k: v for k, v in base.model_options.items() if k in accepted[m]}
            cfg = replace(base, model=m, horizon=int(h), model_options=options)
            result = train_forecaster(cfg, out=Path(runs_dir) / f"{m}-L{base.lookback}-H{h}", progress=progress)
            row = result_row(result.metrics, result.run_dir)
            rows.append(row)
            if on_row is not None:
                on_row(row)
            if jsonl is not None:
                with Path(jsonl).open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
    return rows


def average_rows(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model: mean test MSE and MAE over its horizons, and how many horizons."""
    out: dict[str, dict[str, float]] = {}
    for m in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == m]
        out[m] = {"mse": sum(r["mse"] for r in mine) / len(mine), "mae": sum(r["mae"] for r in mine) / len(mine),
                  "n_horizons": len(mine)}
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
    head = ["model", *[f"H={h} {k}" for h in horizons for k in ("MSE", "MAE")], "avg MSE", "avg MAE", "params (max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    avg = average_rows(rows)
    for m, a in avg.items():
        cells = [m]
        for h in horizons:
            r = next((r for r in rows if r["model"] == m and int(r["horizon"]) == h), None)
            cells += [f"{r['mse']:.3f}", f"{r['mae']:.3f}"] if r else ["", ""]
        params = max(int(r.get("params", 0)) for r in rows if r["model"] == m)
        note = "" if a["n_horizons"] == len(horizons) else f" ({int(a['n_horizons'])}/{len(horizons)} H)"
        cells += [f"{a['mse']:.3f}{note}", f"{a['mae']:.3f}{note}", str(params)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
