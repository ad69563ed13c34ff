"""The Trainer factory every domain uses: progress bar, checkpoint, CSV/JSON metrics, seed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import (
    EarlyStopping,
    ModelCheckpoint,
    RichProgressBar,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger

from moesuite.core.training.callbacks import JSONMetricsCallback, MoEAuxLossCallback

__all__ = ["make_trainer", "seed_everything"]


def seed_everything(seed: int) -> int:
    """Seed python, numpy and torch (and dataloader workers) quietly."""
    return L.seed_everything(seed, workers=True, verbose=False)


def make_trainer(
    run_dir: str | Path | None = None,
    *,
    max_epochs: int = 10,
    max_steps: int = -1,
    seed: int = 0,
    progress: bool = True,
    monitor: str = "val/loss",
    early_stopping_patience: int | None = None,
    aux_loss: bool | MoEAuxLossCallback = True,
    callbacks: Sequence[L.Callback] = (),
    accelerator: str = "auto",
    devices: int | str = "auto",
    precision: str | None = None,
    gradient_clip_val: float | None = None,
    limit_train_batches: int | float | None = None,
    limit_val_batches: int | float | None = None,
    log_every_n_steps: int = 10,
    quiet: bool = True,
    **trainer_kwargs,
) -> L.Trainer:
    """Build a Lightning ``Trainer`` configured the moesuite way.

    Args:
        run_dir: run directory (``RunDirectory.path``); checkpoints go to ``checkpoints/``,
            per-step metrics to ``logs/metrics.csv`` and per-epoch metrics to
            ``logs/metrics.jsonl``. ``None`` writes nothing.
        max_epochs: epochs to train.
        max_steps: step cap (-1: none).
        seed: seeds python/numpy/torch before anything is built.
        progress: show a rich progress bar (a plain one when not on a terminal).
        monitor: metric for the best checkpoint and early stopping.
        early_stopping_patience: stop after this many epochs without improvement of
            ``monitor`` (``None``: never).
        aux_loss: add routers' aux losses and log routing statistics
            (:class:`MoEAuxLossCallback`); pass an instance to configure it.
        callbacks: extra callbacks.
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``...
        devices: Lightning devices.
        precision: Lightning precision (``None``: 32-bit).
        gradient_clip_val: clip gradient norm.
        limit_train_batches: Lightning's batch limit per epoch.
        limit_val_batches: Lightning's batch limit per validation.
        log_every_n_steps: logging interval.
        quiet: silence Lightning's informational start-up messages.
        **trainer_kwargs: passed to ``lightning.Trainer``.
    """
    seed_everything(seed)
    if quiet:
        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    cbs: list[L.Callback] = list(callbacks)
    if aux_loss:
        cbs.append(aux_loss if isinstance(aux_loss, MoEAuxLossCallback) else MoEAuxLossCallback())
    if progress:
        cbs.append(_progress_bar())
    if early_stopping_patience is not None:
        cbs.append(EarlyStopping(monitor=monitor, patience=early_stopping_patience, mode="min"))
    logger: CSVLogger | bool = False
    if run_dir is not None:
        run_dir = Path(run_dir)
        cbs.append(
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints", filename="best", monitor=monitor, mode="min",
                save_top_k=1, save_last=False, enable_version_counter=False,
            )
        )
        cbs.append(JSONMetricsCallback(run_dir / "logs" / "metrics.jsonl"))
        logger = CSVLogger(save_dir=str(run_dir), name="", version="logs")
    return L.Trainer(
        max_epochs=max_epochs,
        max_steps=max_steps,
        accelerator=accelerator,
        devices=devices,
        precision=precision,
        logger=logger,
        callbacks=cbs,
        enable_checkpointing=run_dir is not None,
        enable_progress_bar=progress,
        enable_model_summary=False,
        gradient_clip_val=gradient_clip_val,
        limit_train_batches=limit_train_batches,
        limit_val_batches=limit_val_batches,
        log_every_n_steps=log_every_n_steps,
        num_sanity_val_steps=0,
        default_root_dir=str(run_dir) if run_dir is not None else None,
        **trainer_kwargs,
    )


def _progress_bar() -> L.Callback:
    import sys

    if sys.stdout.isatty():
        return RichProgressBar(leave=True)
    return TQDMProgressBar(refresh_rate=50)
