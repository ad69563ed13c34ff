"""Train one forecaster into a run directory, with the core's trainer plumbing; resume one.

:func:`train_forecaster` validates the inputs (data, model name, window sizes) *before* the run
directory is created, trains with :class:`moesuite.core.training.MoESystem` and
:func:`~moesuite.core.training.make_trainer` (early stopping on the validation task loss, best
and last checkpoints), reloads the best weights, and writes::

    config.json                  the ForecastTrainConfig, its recipe, model arguments, data, scalers
    metrics.json                 test/val MSE and MAE (standardised) per horizon, routing stats
    checkpoints/best.ckpt        Lightning checkpoints (trainable models; last.ckpt for --resume)
    checkpoints/model.pt         the model's state_dict (what eval/forecast load)
    logs/                        per-step CSV and per-epoch JSON lines
    plots/forecast_vs_truth.png  test windows
    plots/expert_usage_by_position.png  (MoE models)

Each model trains with its recipe (:mod:`~moesuite.timeseries.recipes`; config values
override it). The training step (:func:`forecast_step`) scores the model's training output
against its target (:meth:`~moesuite.timeseries.models.Forecaster.training_pair`), adds the
routers' aux losses and logs both; early stopping and the best checkpoint follow the validation
MSE of the forecast. Only then are the test windows opened, once, for the final evaluation at
every horizon the model serves. A run interrupted by Ctrl+C keeps its directory (marked
``INTERRUPTED``) and :func:`resume_forecaster` continues it in place from its last checkpoint.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from moesuite.core.training import (
    MoESystem,
    RunDirectory,
    default_run_path,
    fit,
    make_trainer,
    resumable_config,
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
from moesuite.timeseries.data.splits import split_borders
from moesuite.timeseries.evaluate import (
    STANDARD_HORIZONS,
    average_rows,
    evaluate_horizons,
    format_table,
    horizons_summary,
    result_rows,
    sample_windows,
)
from moesuite.timeseries.models import MODELS, Forecaster, model_options
from moesuite.timeseries.plots import (
    plot_comparison,
    plot_expert_usage_by_position,
    plot_forecasts,
)
from moesuite.timeseries.recipes import Recipe, lr_factor

__all__ = [
    "ForecastTrainConfig",
    "TrainResult",
    "train_forecaster",
    "resume_forecaster",
    "compare_models",
    "run_comparison",
    "forecast_step",
    "RecipeSystem",
    "eval_horizons",
]

#: the metric early stopping and the best checkpoint follow: the validation forecast's MSE
MONITOR = "val/mse"
#: validation windows scored per roll-out model when choosing a lookback (every 8th)
VAL_STRIDE_ANY_HORIZON = 8


class RecipeSystem(MoESystem):
    """:class:`MoESystem` whose optimiser and learning-rate schedule follow a :class:`Recipe`.

    Adam(W) with the recipe's betas and weight decay; the schedule (:func:`lr_factor`) is
    applied per step, so per-epoch schedules change at epoch boundaries and the warm-up and
    cosine of MoHETS move every step.
    """

    def __init__(self, model: nn.Module, step_fn: Callable[..., Any], recipe: Recipe):
        super().__init__(model, step_fn, max_epochs=recipe.epochs)
        self.recipe = recipe

    def configure_optimizers(self) -> Any:
        r = self.recipe
        opt = torch.optim.AdamW(
            self.model.parameters(), lr=r.lr, betas=r.betas, weight_decay=r.weight_decay
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = max(total // max(r.epochs, 1), 1)

        def factor(step: int) -> float:
            return lr_factor(r, step, step // per_epoch, total)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@dataclass
class TrainResult:
    """What a training run produced (on a DDP worker rank: ``metrics`` is empty)."""

    run_dir: Path
    metrics: dict[str, Any]
    model: Forecaster
    seconds: float


def forecast_step(
    model: Forecaster, batch: dict[str, torch.Tensor], loss: str = "mse", delta: float = 1.0
) -> dict[str, torch.Tensor]:
    """The step function for :class:`MoESystem`: the model's training output, its loss, aux.

    Returns ``loss = task_loss + aux_loss`` (what is minimised), the task loss on the model's
    training target, the routers' weighted aux losses (0 for models without routers), and the
    MSE and MAE of the forecast of ``y`` (the last ``H`` steps of the output: early stopping
    and the best checkpoint follow ``val/mse``).
    """
    out, target = model.training_pair(batch)
    pred = out.output
    if loss == "mse":
        task = nn.functional.mse_loss(pred, target)
    elif loss == "mae":
        task = nn.functional.l1_loss(pred, target)
    else:
        task = nn.functional.huber_loss(pred, target, delta=delta)
    err = pred[:, -batch["y"].shape[1] :] - batch["y"]
    aux = out.aux_loss
    return {
        "loss": task + aux,
        "task_loss": task,
        "aux_loss": aux,
        "mse": (err**2).mean(),
        "mae": err.abs().mean(),
        "batch_size": int(pred.shape[0]),
    }


def eval_horizons(cfg: ForecastTrainConfig, model: Forecaster, dm: ForecastDataModule) -> list[int]:
    """The horizons a trained model is scored at.

    A direct model: its horizon. A model that forecasts any horizon: every standard horizon
    (96, 192, 336, 720) whose windows fit in the validation and test splits, and ``cfg.horizon``.
    """
    if not model.any_horizon:
        return [cfg.horizon]
    if cfg.eval_horizons:
        return sorted({int(h) for h in cfg.eval_horizons} | {cfg.horizon})

    def fits(h: int) -> bool:
        try:
            split_borders(len(dm.table), cfg.lookback, h, dm.split.protocol, dm.table.name)
        except ValueError:
            return False
        return True

    return sorted({h for h in STANDARD_HORIZONS if fits(h)} | {cfg.horizon})


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
        dm, model = _data_and_model(cfg, table)
        horizons = eval_horizons(cfg, model, dm)
        path = (
            Path(out) if out is not None else default_run_path(runs_root, "timeseries", cfg.model)
        )
        with run_directory(path, keep_interrupted=True) as run:
            run.write_config(
                {
                    "train": asdict(cfg),
                    "recipe": asdict(cfg.recipe()),
                    "horizons": horizons,
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
    config = resumable_config(run_dir)
    if "train" not in config:
        raise ValueError(f"{run_dir}: not a `train` run directory (its config has no 'train').")
    cfg = ForecastTrainConfig(**config["train"])
    with torch_threads(cfg.threads):
        start = time.perf_counter()
        table = load_table(cfg)
        dm, model = _data_and_model(cfg, table)
        with resume_run_directory(run_dir) as run:
            return _fit_and_report(
                cfg, model, dm, table, run, start, progress, lightning, callbacks, resume=True
            )


def _data_and_model(
    cfg: ForecastTrainConfig, table: SeriesTable
) -> tuple[ForecastDataModule, Forecaster]:
    """The model (seeded) and the data module of its training windows.

    Raises ``ValueError`` (before anything is trained or written) when the horizon's windows
    do not fit the data.
    """
    build_datamodule(cfg, table)  # the requested horizon must fit every split
    dm = build_datamodule(cfg, table)
    seed_everything(cfg.seed)
    model = build_model(cfg, dm)
    h = model.train_horizon(cfg.horizon)
    if h != dm.horizon:
        dm = build_datamodule(cfg, table, horizon=h)
    return dm, model


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
    batch = dm.batch_size * cfg.recipe().passes()  # one optimiser step's windows
    steps = math.ceil(len(dm.dataset("train")) / (batch * n_devices))
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
    recipe = cfg.recipe()
    passes = recipe.passes()  # micro-batches per optimiser step (the loader yields them)
    limit = cfg.limit_train_batches
    if isinstance(limit, int):  # a limit counts optimiser steps
        limit *= passes
    if model.trainable:
        trainer = make_trainer(
            run.path,
            max_epochs=recipe.epochs,
            seed=cfg.seed,
            progress=progress,
            monitor=MONITOR,
            early_stopping_patience=recipe.patience,
            limit_train_batches=limit,
            limit_val_batches=cfg.limit_val_batches,
            gradient_clip_val=recipe.grad_clip,
            accumulate_grad_batches=passes,
            callbacks=callbacks,
            log_every_n_steps=_log_interval(cfg, dm, lightning),
            **(lightning or {}),
        )
        system = RecipeSystem(
            model,
            functools.partial(forecast_step, loss=recipe.loss, delta=recipe.huber_delta),
            recipe,
        )
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
    horizons = eval_horizons(cfg, model, dm)
    stride = cfg.val_stride or (VAL_STRIDE_ANY_HORIZON if model.any_horizon else 1)
    val = evaluate_horizons(model, dm, "val", horizons, stride=stride)
    train_seconds = time.perf_counter() - start
    with dm.final_evaluation():  # the only place the test windows are read
        test = evaluate_horizons(
            model, dm, "test", horizons, stride=cfg.test_stride, progress=progress
        )
        samples = sample_windows(model, dm, "test", horizon=max(horizons))
    metrics = {
        "model": cfg.model,
        "data": table.name,
        "lookback": cfg.lookback,
        "horizon": cfg.horizon,
        "horizons": horizons,
        "protocol": dm.split.protocol,
        "seed": cfg.seed,
        "test": horizons_summary(test, cfg.test_stride),
        "val": horizons_summary(val, stride),
        "parameters": n_parameters(model),
        "epochs_run": epochs_run,
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - start,
    }
    run.write_metrics(metrics)
    channel = len(table.columns) - 1
    plot_forecasts(
        samples,
        run.plot_path("forecast_vs_truth"),
        channel=channel,
        channel_name=table.columns[channel],
        title=f"{cfg.model} on {table.name}: test windows (standardised)",
    )
    last = test[max(horizons)]
    if last.routing:
        plot_expert_usage_by_position(
            last.routing,
            run.plot_path("expert_usage_by_position"),
            title=f"{cfg.model}: expert usage by patch position (test)",
        )
    return TrainResult(run.final_path, metrics, model, metrics["seconds"])


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
    """Train and test every model at every horizon on ``base``'s data, each with its recipe.

    A model that forecasts any horizon is trained once and scored at every horizon; the
    others are trained per horizon. All inputs are validated (model names, options, data,
    window sizes at every horizon) before anything is trained. Each run is written to
    ``runs_dir/<model>-L<lookback>[-H<horizon>]``.

    Args:
        models: registered model names.
        base: shared settings (``model`` and ``horizon`` are replaced per run; ``None``
            training settings keep each model's recipe, as the benchmark does); each model
            gets the ``model_options`` it takes, and an option no model takes is an error.
        horizons: forecast lengths.
        runs_dir: parent of the per-run directories.
        progress: progress bars.
        on_row: called with each result row as soon as it exists.
        jsonl: append each row as a JSON line to this file as soon as it exists.
        lightning: ``accelerator``/``devices``/``strategy`` for every run's trainer.

    Returns:
        One row per (model, horizon), see :func:`~moesuite.timeseries.evaluate.result_rows`.
    """
    if not models or not horizons:
        raise ValueError("give at least one model and one horizon.")
    hs = sorted({int(h) for h in horizons})
    accepted = {m: model_options(m) for m in models}
    unused = sorted(k for k in base.model_options if not any(k in a for a in accepted.values()))
    if unused:
        raise ValueError(f"model options {unused} are taken by none of the models {list(models)}.")
    table = load_table(base)
    for h in hs:
        build_datamodule(replace(base, horizon=h), table)  # raises on too few rows
    rows = []
    for m in models:
        options = {k: v for k, v in base.model_options.items() if k in accepted[m]}
        any_horizon = getattr(MODELS.get(m).obj, "any_horizon", False)
        for h in [max(hs)] if any_horizon else hs:
            cfg = replace(base, model=m, horizon=h, model_options=options, eval_horizons=hs)
            suffix = "" if any_horizon else f"-H{h}"
            out = Path(runs_dir) / f"{m}-L{base.lookback}{suffix}"
            result = train_forecaster(cfg, out=out, progress=progress, lightning=lightning)
            for row in result_rows(result.metrics, result.run_dir):
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
