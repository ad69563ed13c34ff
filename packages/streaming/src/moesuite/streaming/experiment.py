"""Models x streams, prequentially, into one run directory (what ``run`` and ``compare`` call).

Layout of the run directory::

    config.json                       models, streams, n, seed, window
    metrics.json                      one row per (stream, model) + windows and expert usage
    checkpoints/<stream>__<model>.pkl the trained river model (pickle)
    plots/<stream>_accuracy.png       windowed accuracy of every model, drifts marked
    plots/<stream>__<model>_experts.png  DriftMoE expert usage over time

Everything is validated (model names, stream names, files) before any run directory exists,
and the directory only appears once every run has finished (core ``run_directory``).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moesuite.streaming.evaluate import prequential
from moesuite.streaming.files import read_table
from moesuite.streaming.models import create_model, list_models
from moesuite.streaming.streams import NamedStream, make_stream, stream_info

__all__ = ["ExperimentConfig", "run_experiment", "build_stream"]


@dataclass
class ExperimentConfig:
    """What to run. ``data``/``target`` replace ``streams`` with one user file."""

    models: list[str] = field(default_factory=lambda: ["driftmoe-data"])
    streams: list[str] = field(default_factory=lambda: ["sea_abrupt"])
    n_samples: int | None = 5000
    seed: int = 0
    window: int | None = None
    data: Path | None = None
    target: str | None = None
    model_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("models: give at least one model; see `moesuite streaming list`.")
        for m in self.models:
            if m not in list_models():
                raise KeyError(f"--model {m!r} is unknown; expected one of {list_models()}.")
        if (self.data is None) != (self.target is None):
            raise ValueError("--data and --target go together: pass the file and the name of its label column.")
        if self.data is None:
            if not self.streams:
                raise ValueError("streams: give at least one stream; see `moesuite streaming list`.")
            for s in self.streams:
                stream_info(s)
        if self.n_samples is not None and self.n_samples < 1:
            raise ValueError(f"--n must be >= 1 (instances to evaluate), got {self.n_samples}.")
        if self.window is not None and self.window < 1:
            raise ValueError(f"--window must be >= 1, got {self.window}.")


def build_stream(cfg: ExperimentConfig, name: str | None) -> NamedStream:
    """The named stream, or the user's file (cut to ``n_samples``)."""
    if cfg.data is not None:
        s = read_table(cfg.data, cfg.target)
        if cfg.n_samples is not None and s.n_samples is not None:
            s.n_samples = min(s.n_samples, cfg.n_samples)
        return s
    return make_stream(name, cfg.n_samples, seed=cfg.seed)


def run_experiment(
    cfg: ExperimentConfig,
    run_path: Path,
    progress: Callable[[str, int | None], Callable[[int], None]] | None = None,
) -> list[dict[str, Any]]:
    """Run every model on every stream into ``run_path``; returns the summary rows.

    Args:
        cfg: what to run (validated on construction).
        run_path: run directory to create (must not exist).
        progress: ``progress(label, total) -> on_step(n)`` factory, or ``None``.
    """
    from moesuite.core.training import run_directory
    from moesuite.streaming.plots import plot_expert_usage, plot_windowed_accuracy

    stream_names = [None] if cfg.data is not None else cfg.streams
    # open every stream once up front: a bad file or name fails before the directory exists
    for name in stream_names:
        build_stream(cfg, name)
    rows: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    with run_directory(run_path) as run:
        run.write_config({**_jsonable_cfg(cfg)})
        for name in stream_names:
            curves: dict[str, list] = {}
            for model_name in cfg.models:
                stream = build_stream(cfg, name)
                window = cfg.window or max(50, (stream.n_samples or 10_000) // 50)
                model = create_model(model_name, seed=cfg.seed, **cfg.model_params.get(model_name, {}))
                on_step = progress(f"{stream.name} / {model_name}", stream.n_samples) if progress else None
                r = prequential(model, stream, window=window, on_step=on_step)
                row = {"stream": stream.name, "model": model_name, "n": r.n, "accuracy": r.accuracy,
                       "kappa": r.kappa, "kappa_m": r.kappa_m, "kappa_t": r.kappa_t,
                       "throughput": r.throughput, "seconds": r.seconds}
                if hasattr(model, "expert_usage"):
                    row["expert_load_max_over_mean"] = _imbalance(model.expert_usage())
                rows.append(row)
                details.append({**row, "windows": r.windows, "expert_usage": r.expert_usage,
                                "drift_points": stream.drift_points, "window": window,
                                "resets": getattr(model, "n_resets_", None)})
                curves[model_name] = r.windows
                with open(run.checkpoint_dir / f"{stream.name}__{model_name}.pkl", "wb") as fh:
                    pickle.dump(model, fh)
                if r.expert_usage:
                    plot_expert_usage(r.expert_usage, run.plot_path(f"{stream.name}__{model_name}_experts.png"),
                                      window, stream.drift_points,
                                      title=f"{model_name} on {stream.name}: expert usage per window")
            plot_windowed_accuracy(curves, run.plot_path(f"{stream.name}_accuracy.png"), stream.drift_points,
                                   title=f"{stream.name}: windowed prequential accuracy")
        run.write_metrics({"rows": rows, "runs": details})
    return rows


def _imbalance(counts: list[int]) -> float:
    """Core routing statistic: max/mean expert usage (1.0 balanced, ``E`` collapsed)."""
    import torch

    from moesuite.core.stats import load_imbalance

    return load_imbalance(torch.tensor(counts, dtype=torch.float64))


def _jsonable_cfg(cfg: ExperimentConfig) -> dict[str, Any]:
    return {"models": cfg.models, "streams": cfg.streams if cfg.data is None else [],
            "n_samples": cfg.n_samples, "seed": cfg.seed, "window": cfg.window,
            "data": str(cfg.data) if cfg.data else None, "target": cfg.target,
            "model_params": {k: {p: repr(v) for p, v in d.items()} for k, d in cfg.model_params.items()}}


def summarize(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of the rows (for logs)."""
    lines = [f"{'stream':<20} {'model':<14} {'acc':>7} {'kappa':>7} {'inst/s':>9}"]
    for r in rows:
        lines.append(f"{r['stream']:<20} {r['model']:<14} {r['accuracy']:7.4f} {r['kappa']:7.3f} {r['throughput']:9.0f}")
    return "\n".join(lines)
