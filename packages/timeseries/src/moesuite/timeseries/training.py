"""Train and evaluate one forecaster into a run directory, with the core's trainer plumbing.

:func:`train_forecaster` validates the inputs (data, model name, window sizes) *before* the run
directory is created, trains with :class:`moesuite.core.training.MoESystem` and
:func:`~moesuite.core.training.make_trainer` (early stopping on ``val/loss``, best checkpoint,
router aux losses through the core callback), reloads the best weights, and writes::

    config.json                  the TrainConfig, model arguments, data columns and scalers
    metrics.json                 test/val MSE and MAE (standardised) per horizon, routing stats
    checkpoints/best.ckpt        Lightning checkpoint (trainable models)
    checkpoints/model.pt         the model's state_dict (what eval/forecast load)
    logs/                        per-step CSV and per-epoch JSON lines
    plots/forecast_vs_truth.png  test windows
    plots/expert_usage_by_position.png  (MoE models)
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moesuite.core.training import (
    MoESystem,
    OptimConfig,
    default_run_path,
    make_trainer,
    read_json,
    run_directory,
    seed_everything,
    torch_threads,
)
from moesuite.timeseries.data import ForecastDataModule, SeriesTable, load_csv, make_synthetic
from moesuite.timeseries.evaluation import ForecastErrors, evaluate_model
from moesuite.timeseries.models import Forecaster, create_model, model_spec
from moesuite.timeseries.plots import plot_expert_usage_by_position, plot_forecasts

__all__ = ["TrainConfig", "TrainResult", "train_forecaster", "torch_threads", "forecast_step", "load_table", "build_datamodule",
           "load_run", "LOSSES"]

LOSSES = ("mse", "mae", "huber")


@dataclass(kw_only=True)
class TrainConfig:
    """Everything a training run needs (saved as ``config.json["train"]``).

    Attributes:
        model: registered model name (see ``moesuite.timeseries.models.list_models()``).
        data: CSV path; ``None`` uses the built-in generator.
        target: ``"all"`` or comma-separated target columns.
        covariates: comma-separated covariate columns (not forecast).
        known_covariates: covariates whose future values are known (subset of ``covariates``).
        timestamp: timestamp column (auto-detected when ``None``).
        calendar: add calendar covariates from the timestamps (known in the future).
        protocol: split protocol (``auto``: ETT 12/4/4 months for ETT files, else 70/10/20).
        lookback: input length ``L``.
        horizon: forecast length ``H``.
        epochs: maximum epochs.
        patience: early-stopping patience on ``val/loss`` (``None``: off).
        batch_size: training batch size.
        lr: peak learning rate (cosine schedule).
        weight_decay: AdamW weight decay.
        loss: ``mse``, ``mae`` or ``huber`` on the standardised scale.
        limit_train_batches: cap on training batches per epoch (``None``: all).
        limit_val_batches: cap on validation batches (``None``: all).
        seed: seed for initialisation and batching.
        synthetic_steps: rows of the generated series (generator only).
        synthetic_channels: channels of the generated series (generator only).
        model_options: model constructor overrides (``None`` values keep model defaults).
        threads: torch intra-op threads while this run trains and evaluates (restored
            afterwards; ``None`` keeps torch's setting). Small models on a shared CPU run
            fastest with 1: more threads spin against other processes.
    """

    model: str = "mohets"
    data: str | None = None
    target: str = "all"
    covariates: str | None = None
    known_covariates: str | None = None
    timestamp: str | None = None
    calendar: bool = True
    protocol: str = "auto"
    lookback: int = 96
    horizon: int = 24
    epochs: int = 6
    patience: int | None = 3
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: str = "mse"
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    seed: int = 0
    synthetic_steps: int = 3000
    synthetic_channels: int = 4
    model_options: dict[str, Any] = field(default_factory=dict)
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}.")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if self.data is not None:
            self.data = str(self.data)


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    model: Forecaster
    seconds: float


def forecast_step(model: nn.Module, batch: dict[str, torch.Tensor], loss: str = "mse") -> dict[str, torch.Tensor]:
    """The step function for :class:`MoESystem`: forecast the window and score it."""
    pred = model(batch["x"], batch["z_past"], batch["z_future"])
    err = pred - batch["y"]
    mse, mae = (err**2).mean(), err.abs().mean()
    if loss == "mse":
        value = mse
    elif loss == "mae":
        value = mae
    else:
        value = nn.functional.huber_loss(pred, batch["y"])
    return {"loss": value, "mse": mse, "mae": mae, "batch_size": int(pred.shape[0])}


def load_table(cfg: TrainConfig, data: str | Path | None = None) -> SeriesTable:
    """The CSV named by ``data`` (or ``cfg.data``) read with ``cfg``'s columns, or the generator."""
    path = data if data is not None else cfg.data
    if path is None:
        return make_synthetic(cfg.synthetic_steps, cfg.synthetic_channels, seed=0)
    return load_csv(path, target=cfg.target, covariates=cfg.covariates, known_covariates=cfg.known_covariates,
                    timestamp=cfg.timestamp)


def build_datamodule(cfg: TrainConfig, table: SeriesTable) -> ForecastDataModule:
    """Windows of ``table`` as ``cfg`` describes them."""
    return ForecastDataModule(
        table, lookback=cfg.lookback, horizon=cfg.horizon, protocol=cfg.protocol, batch_size=cfg.batch_size,
        covariates=True, calendar=cfg.calendar, seed=cfg.seed,
    )


def _build_model(cfg: TrainConfig, dm: ForecastDataModule) -> Forecaster:
    return create_model(
        cfg.model, n_channels=dm.n_channels, lookback=cfg.lookback, horizon=cfg.horizon,
        n_covariates=dm.n_covariates, n_known=dm.n_known, **cfg.model_options,
    )


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _sample_windows(model: Forecaster, dm: ForecastDataModule, split: str, n: int = 3) -> list[dict[str, np.ndarray]]:
    ds = dm.dataset(split)
    idx = np.linspace(0, len(ds) - 1, n).astype(int)
    out = []
    model.eval()
    with torch.no_grad():
        for i in idx:
            b = ds[int(i)]
            pred = model(b["x"][None], b["z_past"][None], b["z_future"][None])[0]
            out.append({"x": b["x"].numpy(), "y": b["y"].numpy(), "pred": pred.numpy()})
    return out


def describe_errors(errors: ForecastErrors) -> dict[str, Any]:
    """JSON-ready test metrics and routing statistics."""
    return {**errors.summary(), "routing": errors.routing_stats}



def train_forecaster(cfg: TrainConfig, out: str | Path | None = None, progress: bool = True,
                     runs_root: str | Path = "runs") -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data`` (or the generator) and write a run directory.

    Args:
        cfg: the run's settings.
        out: run directory to create (default ``runs/timeseries/<model>/<timestamp>``).
        progress: show a progress bar.
        runs_root: parent of default run directories.

    Raises:
        FileNotFoundError, ValueError: bad data, model name, option or window sizes; raised
            before any directory is created.
    """
    with torch_threads(cfg.threads):
        return _train(cfg, out, progress, runs_root)


def _train(cfg: TrainConfig, out: str | Path | None, progress: bool, runs_root: str | Path) -> TrainResult:
    start = time.perf_counter()
    model_spec(cfg.model)  # unknown names fail first
    table = load_table(cfg)
    dm = build_datamodule(cfg, table)
    seed_everything(cfg.seed)
    model = _build_model(cfg, dm)
    path = Path(out) if out is not None else default_run_path(runs_root, "timeseries", cfg.model)
    with run_directory(path) as run:
        run.write_config({
            "train": asdict(cfg), "model": cfg.model, "model_class": type(model).__name__,
            "model_config": model.get_config(), "parameters": n_parameters(model),
            "data": {
                "name": table.name, "rows": len(table), "columns": table.columns,
                "covariate_columns": dm.covariate_names, "n_known": dm.n_known,
                "split": asdict(dm.split), "scaler": dm.scaler.state(),
                "covariate_scaler": dm.covariate_scaler.state() if dm.covariate_scaler else None,
                "last_timestamp": str(table.timestamps[-1]),
            },
        })
        epochs_run = 0
        if model.trainable:
            trainer = make_trainer(
                run.path, max_epochs=cfg.epochs, seed=cfg.seed, progress=progress,
                early_stopping_patience=cfg.patience, limit_train_batches=cfg.limit_train_batches,
                limit_val_batches=cfg.limit_val_batches, gradient_clip_val=1.0,
            )
            system = MoESystem(model, functools.partial(forecast_step, loss=cfg.loss),
                               OptimConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, schedule="cosine"),
                               max_epochs=cfg.epochs)
            trainer.fit(system, datamodule=dm)
            epochs_run = trainer.current_epoch
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            if best:
                state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
                model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
        torch.save(model.state_dict(), run.file("checkpoints/model.pt"))
        n_patches = getattr(model, "n_patches", None)
        test = evaluate_model(model, dm.test_dataloader(), n_patches)
        val = evaluate_model(model, dm.val_dataloader())
        seconds = time.perf_counter() - start
        metrics = {
            "model": cfg.model, "data": table.name, "lookback": cfg.lookback, "horizon": cfg.horizon,
            "protocol": dm.split.protocol, "test": describe_errors(test), "val": val.summary(),
            "parameters": n_parameters(model), "epochs_run": epochs_run, "seconds": seconds,
            "test_windows": len(dm.dataset("test")),
        }
        run.write_metrics(metrics)
        channel = len(table.columns) - 1
        plot_forecasts(_sample_windows(model, dm, "test"), run.plot_path("forecast_vs_truth"), channel=channel,
                       channel_name=table.columns[channel], title=f"{cfg.model} on {table.name}: test windows (standardised)")
        if test.routing:
            plot_expert_usage_by_position(test.routing, run.plot_path("expert_usage_by_position"),
                                          title=f"{cfg.model}: expert usage by patch position (test)")
    return TrainResult(run.path, metrics, model, seconds)


def load_run(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any], Forecaster]:
    """Rebuild a trained model from a run directory: ``(TrainConfig, config.json, model)``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory (expected the --out of a `train` run).")
    config = read_json(run_dir / "config.json")
    weights = run_dir / "checkpoints" / "model.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing; {run_dir} is not a complete timeseries run directory.")
    cfg = TrainConfig(**config["train"])
    spec = model_spec(config["model"])
    model = spec.cls(**config["model_config"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    return cfg, config, model
