"""Train one forecaster into a run directory, with the core's trainer plumbing; resume one.

:func:`train_forecaster` validates the inputs (data, model name, window sizes) *before* the run
directory is created, trains with :class:`moesuite.core.training.MoESystem` and
:func:`~moesuite.core.training.make_trainer` (early stopping on the validation task loss, best
and last checkpoints), reloads the best weights, and writes::

    config.json                  the ForecastTrainConfig, model arguments, data columns, scalers
    metrics.json                 test/val MSE and MAE (standardised) per horizon, routing stats
    checkpoints/best.ckpt        Lightning checkpoints (trainable models; last.ckpt for --resume)
    checkpoints/model.pt         the model's state_dict (what eval/forecast load)
    logs/                        per-step CSV and per-epoch JSON lines
    plots/forecast_vs_truth.png  test windows
    plots/expert_usage_by_position.png  (MoE models)

The training step (:func:`forecast_step`) adds the model's router aux losses to the task loss
and logs both. A run interrupted by Ctrl+C keeps its directory (marked ``INTERRUPTED``) and
:func:`resume_forecaster` continues it in place from its last checkpoint.
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from moesuite.core.training import (
    INTERRUPTED,
    MoESystem,
    OptimConfig,
    RunDirectory,
    default_run_path,
    fit,
    make_trainer,
    read_json,
    resume_run_directory,
    run_directory,
    seed_everything,
    torch_threads,
)
from moesuite.timeseries.config import (
    ForecastTrainConfig,
    build_datamodule,
    build_model,
    load_table,
    n_parameters,
)
from moesuite.timeseries.data import ForecastDataModule, SeriesTable
from moesuite.timeseries.evaluate import (
    average_rows,
    describe_errors,
    evaluate_model,
    format_table,
    result_row,
    sample_windows,
)
from moesuite.timeseries.models import MODELS, Forecaster, as_moe_output, model_options
from moesuite.timeseries.plots import (
    plot_comparison,
    plot_expert_usage_by_position,
    plot_forecasts,
)

__all__ = [
    "ForecastTrainConfig",
    "TrainResult",
    "train_forecaster",
    "resume_forecaster",
    "compare_models",
    "run_comparison",
    "forecast_step",
    "ForecastSystem",
]

#: the metric early stopping and the best checkpoint follow: the task loss, aux losses excluded
MONITOR = "val/task_loss"


class ForecastSystem(MoESystem):
    """:class:`MoESystem` whose epoch metrics are averaged over the processes of a DDP run.

    Under DDP each process sees a share of the validation windows; without ``sync_dist`` early
    stopping and the best checkpoint would follow rank 0's share only (and Lightning warns
    about it). On one process nothing changes.
    """

    def log(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("sync_dist", self.trainer.world_size > 1)
        super().log(name, value, *args, **kwargs)


@dataclass
class TrainResult:
    """What a training run produced (on a DDP worker rank: ``metrics`` is empty)."""

    run_dir: Path
    metrics: dict[str, Any]
    model: Forecaster
    seconds: float


def forecast_step(
    model: nn.Module, batch: dict[str, torch.Tensor], loss: str = "mse"
) -> dict[str, torch.Tensor]:
    """The step function for :class:`MoESystem`: forecast the window, score it, add aux losses.

    Returns ``loss = task_loss + aux_loss`` (what is minimised and logged), the task loss,
    the routers' weighted aux losses (0 for models without routers), MSE and MAE.
    """
    out = as_moe_output(model(batch["x"], batch["z_past"], batch["z_future"]))
    pred = out.output
    err = pred - batch["y"]
    mse, mae = (err**2).mean(), err.abs().mean()
    if loss == "mse":
        task = mse
    elif loss == "mae":
        task = mae
    else:
        task = nn.functional.huber_loss(pred, batch["y"])
    aux = out.aux_loss
    return {
        "loss": task + aux,
        "task_loss": task,
        "aux_loss": aux,
        "mse": mse,
        "mae": mae,
        "batch_size": int(pred.shape[0]),
    }


def train_forecaster(
    cfg: ForecastTrainConfig,
    out: str | Path | None = None,
    progress: bool = True,
    runs_root: str | Path = "runs",
    lightning: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data`` (or the generator) and write a run directory.

    Args:
        cfg: the run's settings.
        out: run directory to create (default ``runs/timeseries/<model>/<timestamp>``).
        progress: show a progress bar.
        runs_root: parent of default run directories.
        lightning: ``accelerator``/``devices``/``strategy`` for the trainer (see
            :func:`moesuite.core.cli.common.lightning_kwargs`; Lightning's ``auto`` by default).
        callbacks: extra Lightning callbacks.

    Raises:
        FileNotFoundError, ValueError: bad data, model name, option or window sizes; raised
            before any directory is created.
    """
    with torch_threads(cfg.threads):
        start = time.perf_counter()
        MODELS.get(cfg.model)  # unknown names fail first
        table = load_table(cfg)
        dm = build_datamodule(cfg, table)
        seed_everything(cfg.seed)
        model = build_model(cfg, dm)
        path = (
            Path(out) if out is not None else default_run_path(runs_root, "timeseries", cfg.model)
        )
        with run_directory(path, keep_interrupted=True) as run:
            run.write_config(
                {
                    "train": asdict(cfg),
                    "model": cfg.model,
                    "model_class": type(model).__name__,
                    "model_config": model.get_config(),
                    "parameters": n_parameters(model),
                    "data": _describe_data(table, dm),
                }
            )
            return _fit_and_report(
                cfg, model, dm, table, run, start, progress, lightning, callbacks
            )


def resume_forecaster(
    run_dir: str | Path,
    progress: bool = True,
    lightning: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> TrainResult:
    """Continue an interrupted :func:`train_forecaster` run in place from its last checkpoint.

    The run's ``config.json`` rebuilds the model and the data; Lightning restores the weights,
    optimiser, scheduler and loop position, the core's callback the random generators, and the
    data module its shuffling generator, so the resumed run ends where the uninterrupted run
    would have.

    Raises:
        FileNotFoundError: ``run_dir`` is not a run directory with a last checkpoint.
        ValueError: the run was not interrupted (nothing to resume).
    """
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    if "train" not in config:
        raise ValueError(f"{run_dir}: not a `train` run directory (its config has no 'train').")
    if not (run_dir / INTERRUPTED).is_file():
        raise ValueError(
            f"{run_dir}: this run was not interrupted (no {INTERRUPTED} file); "
            "there is nothing to resume."
        )
    cfg = ForecastTrainConfig(**config["train"])
    with torch_threads(cfg.threads):
        start = time.perf_counter()
        table = load_table(cfg)
        dm = build_datamodule(cfg, table)
        seed_everything(cfg.seed)
        model = build_model(cfg, dm)
        with resume_run_directory(run_dir) as run:
            return _fit_and_report(
                cfg, model, dm, table, run, start, progress, lightning, callbacks, resume=True
            )


def _describe_data(table: SeriesTable, dm: ForecastDataModule) -> dict[str, Any]:
    return {
        "name": table.name,
        "rows": len(table),
        "columns": table.columns,
        "covariate_columns": dm.covariate_names,
        "n_known": dm.n_known,
        "split": asdict(dm.split),
        "scaler": dm.scaler.state(),
        "covariate_scaler": dm.covariate_scaler.state() if dm.covariate_scaler else None,
        "last_timestamp": str(table.timestamps[-1]),
    }


def _log_interval(
    cfg: ForecastTrainConfig, dm: ForecastDataModule, lightning: dict[str, Any] | None
) -> int:
    """Log every 10 steps, or once per epoch when an epoch (per device) has fewer steps."""
    devices = (lightning or {}).get("devices", 1)
    n_devices = len(devices) if isinstance(devices, list) else devices
    n_devices = n_devices if isinstance(n_devices, int) and n_devices > 0 else 1
    steps = math.ceil(len(dm.dataset("train")) / (cfg.batch_size * n_devices))
    if isinstance(cfg.limit_train_batches, int):
        steps = min(steps, cfg.limit_train_batches)
    return max(1, min(10, steps))


def _fit_and_report(
    cfg: ForecastTrainConfig,
    model: Forecaster,
    dm: ForecastDataModule,
    table: SeriesTable,
    run: RunDirectory,
    start: float,
    progress: bool,
    lightning: dict[str, Any] | None,
    callbacks: Sequence[L.Callback],
    resume: bool = False,
) -> TrainResult:
    """Fit (trainable models), reload the best weights, evaluate, write metrics and plots."""
    epochs_run = 0
    if model.trainable:
        trainer = make_trainer(
            run.path,
            max_epochs=cfg.epochs,
            seed=cfg.seed,
            progress=progress,
            monitor=MONITOR,
            early_stopping_patience=cfg.patience,
            limit_train_batches=cfg.limit_train_batches,
            limit_val_batches=cfg.limit_val_batches,
            gradient_clip_val=1.0,
            callbacks=callbacks,
            log_every_n_steps=_log_interval(cfg, dm, lightning),
            **(lightning or {}),
        )
        system = ForecastSystem(
            model,
            functools.partial(forecast_step, loss=cfg.loss),
            OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, schedule="cosine"),
            max_epochs=cfg.epochs,
        )
        with warnings.catch_warnings():
            # Lightning 2.6 calls a torch pytree API that torch 2.14 deprecated (not our code)
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            # the windows are in-memory tensors: loader worker processes would only cost time
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            fit(trainer, system, datamodule=dm, resume=run.path if resume else None)
        if trainer.global_rank != 0:  # a DDP worker: rank 0 evaluates and writes the run
            return TrainResult(run.path, {}, model, time.perf_counter() - start)
        epochs_run = trainer.current_epoch
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if best:
            state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
            model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    model.cpu()
    torch.save(model.state_dict(), run.file("checkpoints/model.pt"))
    test = evaluate_model(model, dm.test_dataloader(), getattr(model, "n_patches", None))
    val = evaluate_model(model, dm.val_dataloader())
    seconds = time.perf_counter() - start
    metrics = {
        "model": cfg.model,
        "data": table.name,
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "protocol": dm.split.protocol,
        "test": describe_errors(test),
        "val": val.summary(),
        "parameters": n_parameters(model),
        "epochs_run": epochs_run,
        "seconds": seconds,
        "test_windows": len(dm.dataset("test")),
    }
    run.write_metrics(metrics)
    channel = len(table.columns) - 1
    plot_forecasts(
        sample_windows(model, dm, "test"),
        run.plot_path("forecast_vs_truth"),
        channel=channel,
        channel_name=table.columns[channel],
        title=f"{cfg.model} on {table.name}: test windows (standardised)",
    )
    if test.routing:
        plot_expert_usage_by_position(
            test.routing,
            run.plot_path("expert_usage_by_position"),
            title=f"{cfg.model}: expert usage by patch position (test)",
        )
    return TrainResult(run.final_path, metrics, model, seconds)


def compare_models(
    models: Sequence[str],
    base: ForecastTrainConfig,
    horizons: Sequence[int],
    runs_dir: str | Path,
    progress: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    jsonl: str | Path | None = None,
    lightning: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train and test every model at every horizon with ``base``'s data and budget.

    All inputs are validated (model names, data, window sizes at every horizon) before
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
        lightning: ``accelerator``/``devices``/``strategy`` for every run's trainer.

    Returns:
        One row per (horizon, model), see :func:`~moesuite.timeseries.evaluate.result_row`.
    """
    if not models or not horizons:
        raise ValueError("give at least one model and one horizon.")
    accepted = {m: model_options(m) for m in models}
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
            out = Path(runs_dir) / f"{m}-L{base.lookback}-H{h}"
            result = train_forecaster(cfg, out=out, progress=progress, lightning=lightning)
            row = result_row(result.metrics, result.run_dir)
            rows.append(row)
            if on_row is not None:
                on_row(row)
            if jsonl is not None:
                with Path(jsonl).open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
    return rows


def run_comparison(
    models: Sequence[str],
    base: ForecastTrainConfig,
    horizons: Sequence[int],
    out: str | Path | None = None,
    progress: bool = False,
    lightning: dict[str, Any] | None = None,
) -> tuple[Path, str]:
    """:func:`compare_models` into one directory: every run, the table, the rows and a plot.

    Writes ``out`` (default ``runs/timeseries/compare/<timestamp>``) atomically::

        runs/<model>-L<lookback>-H<horizon>/   each model's run directory
        table.md                              the Markdown table (also returned)
        results.jsonl, metrics.json           one row per run (``run_dir`` points into ``runs/``)
        plots/comparison_mse.png              test MSE by horizon and model

    Returns:
        The directory and the table.
    """
    path = Path(out) if out is not None else default_run_path("runs", "timeseries", "compare")
    with run_directory(path) as run:
        rows = compare_models(
            models, base, horizons, run.path / "runs", progress=progress, lightning=lightning
        )
        for r in rows:  # the runs move with the directory: record where they will be
            r["run_dir"] = str(path / Path(r["run_dir"]).relative_to(run.path))
        table = format_table(rows)
        run.write_config(
            {"command": "compare", "models": list(models), "horizons": list(horizons), "base": base}
        )
        run.write_metrics({"rows": rows, "average": average_rows(rows)})
        run.file("results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        run.file("table.md").write_text(table + "\n")
        plot_comparison(
            rows, run.plot_path("comparison_mse"), title=f"test MSE, lookback {base.lookback}"
        )
    return path, table
