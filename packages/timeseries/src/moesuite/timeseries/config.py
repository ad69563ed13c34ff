"""A training run's settings, and what rebuilds its data and model from them or from its run.

:class:`ForecastTrainConfig` is saved in every run's ``config.json``; :func:`load_table`,
:func:`build_datamodule` and :func:`build_model` turn it into the data and the model, and
:func:`load_run` rebuilds a trained model from a run directory (for ``eval``, ``forecast`` and
``train --resume``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from moesuite.core.training import INTERRUPTED, read_json
from moesuite.timeseries.data import ForecastDataModule, SeriesTable, load_csv, make_synthetic
from moesuite.timeseries.models import MODELS, Forecaster, create_model
from moesuite.timeseries.recipes import Recipe, recipe_for

__all__ = [
    "ForecastTrainConfig",
    "LOSSES",
    "load_table",
    "build_datamodule",
    "build_model",
    "n_parameters",
    "load_run",
]

LOSSES = ("mse", "mae", "huber")


@dataclass(kw_only=True)
class ForecastTrainConfig:
    """Everything a training run needs (saved as ``config.json["train"]``).

    Attributes:
        model: registered model name (``moesuite.timeseries.models.MODELS.list()``).
        data: CSV path; ``None`` uses the built-in generator.
        target: ``"all"`` or comma-separated target columns.
        covariates: comma-separated covariate columns (not forecast).
        known_covariates: covariates whose future values are known (subset of ``covariates``).
        timestamp: timestamp column (auto-detected when ``None``).
        calendar: add calendar covariates from the timestamps (known in the future).
        protocol: split protocol (``auto``: ETT 12/4/4 months for ETT files, else 70/10/20).
        lookback: input length ``L``.
        horizon: forecast length ``H`` (a model that forecasts any horizon is trained once
            and evaluated at every standard horizon that fits, and at ``H``).
        epochs, patience, batch_size, lr, weight_decay, loss: overrides of the model's
            training recipe (:mod:`~moesuite.timeseries.recipes`); ``None`` keeps the
            recipe's value. ``patience`` 0 turns early stopping off.
        limit_train_batches: cap on optimiser steps per epoch (``None``: all).
        limit_val_batches: cap on validation batches (``None``: all).
        seed: seed for initialisation and batching.
        synthetic_steps: rows of the generated series (generator only).
        synthetic_channels: channels of the generated series (generator only).
        model_options: model constructor overrides (``None`` values keep model defaults).
        eval_horizons: the horizons a model that forecasts any horizon is scored at (default:
            the standard horizons that fit, and ``horizon``).
        train_stride: train on every ``train_stride``-th training window (a reduced budget).
        val_stride: score every ``val_stride``-th validation window after training (default:
            8 for a model rolled out to every horizon, 1 otherwise).
        test_stride: score every ``test_stride``-th test window in the final evaluation (1,
            the protocol: every window; more is a reduced budget, the same windows for
            every model).
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
    epochs: int | None = None
    patience: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    loss: str | None = None
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    seed: int = 0
    synthetic_steps: int = 3000
    synthetic_channels: int = 4
    model_options: dict[str, Any] = field(default_factory=dict)
    threads: int | None = 1
    eval_horizons: list[int] | None = None
    train_stride: int = 1
    val_stride: int | None = None
    test_stride: int = 1

    def __post_init__(self) -> None:
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}.")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if self.data is not None:
            self.data = str(self.data)
        for k in ("train_stride", "val_stride", "test_stride"):
            if getattr(self, k) is not None and getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}.")

    def recipe(self) -> Recipe:
        """The model's recipe with this config's overrides applied."""
        base = recipe_for(self.model)
        over = {
            k: getattr(self, k)
            for k in ("epochs", "batch_size", "lr", "weight_decay", "loss")
            if getattr(self, k) is not None
        }
        if self.patience is not None:
            over["patience"] = self.patience or None
        return replace(base, **over)


def load_table(cfg: ForecastTrainConfig, data: str | Path | None = None) -> SeriesTable:
    """The CSV named by ``data`` (or ``cfg.data``) read with ``cfg``'s columns, or the generator."""
    path = data if data is not None else cfg.data
    if path is None:
        return make_synthetic(cfg.synthetic_steps, cfg.synthetic_channels, seed=0)
    return load_csv(
        path,
        target=cfg.target,
        covariates=cfg.covariates,
        known_covariates=cfg.known_covariates,
        timestamp=cfg.timestamp,
    )


def build_datamodule(
    cfg: ForecastTrainConfig, table: SeriesTable, horizon: int | None = None
) -> ForecastDataModule:
    """Windows of ``table`` as ``cfg`` describes them, batched as the model's recipe says.

    The loader's batches are the recipe's micro-batches (``batch_size / recipe.passes()``
    windows); the trainer accumulates ``passes()`` of them into one optimiser step.

    ``horizon`` future steps per window (default ``cfg.horizon``).
    """
    recipe = cfg.recipe()
    dm = ForecastDataModule(
        table,
        lookback=cfg.lookback,
        horizon=horizon or cfg.horizon,
        protocol=cfg.protocol,
        batch_size=recipe.batch_size // recipe.passes(),
        covariates=True,
        calendar=cfg.calendar,
        seed=cfg.seed,
        train_stride=cfg.train_stride,
    )
    dm.drop_last = recipe.drop_last
    return dm


def build_model(cfg: ForecastTrainConfig, dm: ForecastDataModule) -> Forecaster:
    """The model ``cfg`` names, sized for ``dm``'s channels, covariates and windows."""
    return create_model(
        cfg.model,
        n_channels=dm.n_channels,
        lookback=cfg.lookback,
        horizon=cfg.horizon,
        n_covariates=dm.n_covariates,
        n_known=dm.n_known,
        **cfg.model_options,
    )


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_run(run_dir: str | Path) -> tuple[ForecastTrainConfig, dict[str, Any], Forecaster]:
    """Rebuild a trained model from its run directory: ``(config, config.json, model)``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"{run_dir}: no such run directory (expected the --out of a `train` run)."
        )
    config = read_json(run_dir / "config.json")
    weights = run_dir / "checkpoints" / "model.pt"
    if "train" not in config or not weights.is_file():
        hint = (
            " (interrupted: continue it with `train --resume`)"
            if (run_dir / INTERRUPTED).is_file()
            else ""
        )
        raise FileNotFoundError(
            f"{weights}: missing; {run_dir} is not a finished timeseries `train` run{hint}."
        )
    try:
        cfg = ForecastTrainConfig(**config["train"])
        model = MODELS.get(config["model"]).obj(**config["model_config"])
    except TypeError as exc:  # an option this version no longer has
        raise ValueError(
            f"{run_dir}: written by an older moesuite-timeseries ({exc}); train it again."
        ) from None
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    return cfg, config, model
