"""The Trainer every domain uses (progress, checkpoints, CSV/JSON metrics, seed) and ``fit``.

:func:`make_trainer` builds a Lightning ``Trainer`` the moesuite way; its ``accelerator``,
``devices`` and ``strategy`` come straight from the CLI's ``--device``, ``--devices`` and
``--strategy`` (see :func:`moesuite.core.cli.common.lightning_kwargs`), so a domain's training
runs on GPUs or with DDP/FSDP without code of its own. :func:`fit` runs ``trainer.fit`` with
Lightning's start-up chatter silenced for the duration only, and resumes from a run
directory's last checkpoint when asked (weights, optimiser, scheduler, loop position and, with
:class:`~moesuite.core.training.callbacks.RNGStateCallback`, the random generators).
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, RichProgressBar, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger

from moesuite.core.training.callbacks import (
    JSONMetricsCallback,
    RNGStateCallback,
    RoutingStatsCallback,
    RunCheckpoint,
)

__all__ = ["make_trainer", "fit", "last_checkpoint", "seed_everything", "quiet_lightning"]

#: Lightning loggers whose INFO lines (GPU/TPU available, seed set...) a moesuite command hides
_CHATTY = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric",
)


def seed_everything(seed: int) -> int:
    """Seed python, numpy and torch (and dataloader workers) quietly."""
    return L.seed_everything(seed, workers=True, verbose=False)


@contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Hide Lightning's informational start-up lines inside the block; restore the levels after.

    Examples:
        >>> import logging
        >>> before = logging.getLogger("lightning.fabric").level
        >>> with quiet_lightning():
        ...     logging.getLogger("lightning.fabric").level == logging.WARNING
        True
        >>> logging.getLogger("lightning.fabric").level == before
        True
    """
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _CHATTY]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


def last_checkpoint(run_dir: str | Path) -> Path:
    """``run_dir/checkpoints/last.ckpt``, with a clear error when the run has none."""
    path = Path(run_dir) / "checkpoints" / "last.ckpt"
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(
            f"{run_dir}: no such run directory (expected one written by `train`)."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{run_dir}: no checkpoints/last.ckpt to resume from (was it written by `train`?)."
        )
    return path


def make_trainer(
    run_dir: str | Path | None = None,
    *,
    max_epochs: int = 10,
    max_steps: int = -1,
    seed: int = 0,
    progress: bool = True,
    monitor: str = "val/loss",
    early_stopping_patience: int | None = None,
    routing_stats: bool | RoutingStatsCallback = True,
    callbacks: Sequence[L.Callback] = (),
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    strategy: str = "auto",
    precision: str | None = None,
    gradient_clip_val: float | None = None,
    limit_train_batches: int | float | None = None,
    limit_val_batches: int | float | None = None,
    log_every_n_steps: int = 10,
    quiet: bool = True,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """Build a Lightning ``Trainer`` configured the moesuite way.

    Args:
        run_dir: run directory (``RunDirectory.path``); checkpoints go to ``checkpoints/``
            (``best.ckpt`` by ``monitor`` and ``last.ckpt`` after every epoch, for ``--resume``),
            per-step metrics to ``logs/metrics.csv`` and per-epoch metrics to
            ``logs/metrics.jsonl``. ``None`` writes nothing.
        max_epochs: epochs to train.
        max_steps: step cap (-1: none).
        seed: seeds python/numpy/torch before anything is built.
        progress: show a progress bar (rich on a terminal, plain otherwise).
        monitor: metric for the best checkpoint and early stopping.
        early_stopping_patience: stop after this many epochs without improvement of
            ``monitor`` (``None``: never).
        routing_stats: log routing statistics and update aux-free biases
            (:class:`RoutingStatsCallback`); pass an instance to configure it.
        callbacks: extra callbacks.
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``... (the CLI's ``--device``).
        devices: Lightning devices (the CLI's ``--devices``).
        strategy: Lightning strategy, e.g. ``"ddp"`` (the CLI's ``--strategy``).
        precision: Lightning precision (``None``: 32-bit).
        gradient_clip_val: clip gradient norm.
        limit_train_batches: Lightning's batch limit per epoch.
        limit_val_batches: Lightning's batch limit per validation.
        log_every_n_steps: logging interval.
        quiet: hide Lightning's informational start-up lines (levels restored afterwards).
        **trainer_kwargs: passed to ``lightning.Trainer``.
    """
    seed_everything(seed)
    cbs: list[L.Callback] = list(callbacks)
    if routing_stats:
        cbs.append(
            routing_stats
            if isinstance(routing_stats, RoutingStatsCallback)
            else RoutingStatsCallback()
        )
    if progress:
        cbs.append(
            TQDMProgressBar(refresh_rate=50)
            if not sys.stdout.isatty()
            else RichProgressBar(leave=True)
        )
    if early_stopping_patience is not None:
        cbs.append(EarlyStopping(monitor=monitor, patience=early_stopping_patience, mode="min"))
    logger: CSVLogger | bool = False
    if run_dir is not None:
        run_dir = Path(run_dir)
        cbs.append(
            RunCheckpoint(
                dirpath=run_dir / "checkpoints",
                filename="best",
                monitor=monitor,
                mode="min",
                save_top_k=1,
                save_last=True,
                enable_version_counter=False,
            )
        )
        cbs.append(RNGStateCallback())
        cbs.append(JSONMetricsCallback(run_dir / "logs" / "metrics.jsonl"))
        logger = CSVLogger(save_dir=str(run_dir), name="", version="logs")
    with quiet_lightning(quiet):
        return L.Trainer(
            max_epochs=max_epochs,
            max_steps=max_steps,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
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


def fit(
    trainer: L.Trainer,
    system: L.LightningModule,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    *,
    datamodule: L.LightningDataModule | None = None,
    resume: str | Path | None = None,
    quiet: bool = True,
) -> L.Trainer:
    """``trainer.fit(...)``, resuming from ``resume/checkpoints/last.ckpt`` if a run dir is given.

    Lightning's start-up lines are hidden for the call only. A resumed run writes into the same
    run directory (the per-step CSV of the interrupted part is kept as ``logs/metrics.part<N>.csv``;
    ``logs/metrics.jsonl`` simply continues); the warnings Lightning gives because that directory
    already holds checkpoints and logs (expected when resuming) are not shown.

    Args:
        trainer: from :func:`make_trainer`.
        system: the LightningModule (usually :class:`~moesuite.core.training.MoESystem`).
        train_dataloaders: training loader(s) (or use ``datamodule``).
        val_dataloaders: validation loader(s).
        datamodule: a LightningDataModule instead of loaders.
        resume: a run directory whose last checkpoint to continue from.
        quiet: hide Lightning's informational lines.
    """
    ckpt = last_checkpoint(resume) if resume is not None else None
    if ckpt is not None:
        # Lightning's CSV logger starts metrics.csv afresh: keep the interrupted part beside it
        csv = Path(resume) / "logs" / "metrics.csv"
        if csv.is_file():
            part = 1
            while (kept := csv.with_name(f"metrics.part{part}.csv")).exists():
                part += 1
            csv.rename(kept)
    with quiet_lightning(quiet), warnings.catch_warnings():
        # Lightning 2.6 calls torch's deprecated pytree LeafSpec API on every fit (not our code)
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        # our loaders hold in-memory tensors: worker processes would only add start-up time
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        if val_dataloaders is None and datamodule is None:
            # training without validation data was asked for: MoESystem's validation_step idles
            idle = r".*`validation_step` but have no `val_dataloader`.*"
            warnings.filterwarnings("ignore", message=idle)
        if ckpt is not None:
            warnings.filterwarnings(
                "ignore", message=r".*Checkpoint directory .* exists and is not empty.*"
            )
            warnings.filterwarnings(
                "ignore", message=r".*Experiment logs directory .* exists and is not empty.*"
            )
            # the first checkpoint after resuming mid-interval precedes any validation of this fit
            warnings.filterwarnings("ignore", message=r".*could not find the monitored key.*")
        if train_dataloaders is not None:
            for cb in trainer.callbacks:
                if isinstance(cb, RNGStateCallback):
                    cb.track(train_dataloaders)
        kwargs: dict[str, Any] = {"ckpt_path": str(ckpt) if ckpt is not None else None}
        if ckpt is not None:
            kwargs["weights_only"] = (
                False  # our own checkpoint: it also holds RNG states (numpy arrays)
            )
        if datamodule is not None:
            trainer.fit(system, datamodule=datamodule, **kwargs)
        else:
            trainer.fit(system, train_dataloaders, val_dataloaders, **kwargs)
    return trainer
