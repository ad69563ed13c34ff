"""Train a diffusion model of :mod:`moesuite.vision.promoe` into a run directory; resume one.

The core's plumbing does the work: :class:`~moesuite.core.training.MoESystem` with
:class:`DiffusionStep` (task loss + the routers' ``aux_loss``, both logged), the core trainer
(checkpoints, per-step CSV and per-epoch JSON metrics, RNG state, ``--device/--devices/
--strategy``), :class:`EMACallback` (diffusers ``EMAModel``, kept in the checkpoints so a resumed
run continues its average) and atomic run directories. After training, the EMA weights are
saved (``checkpoints/ema.pt``) and evaluated (:mod:`moesuite.vision.promoe.evaluate`)::

    runs/vision/<model>/<timestamp>/
      config.json             system, model, objective, model_config, data, train
      metrics.json            losses, FID/KID/precision/recall/accuracy per cfg, MI, params, FLOPs
      checkpoints/            best.ckpt, last.ckpt (Lightning, for --resume), ema.pt
      logs/                   metrics.csv (per step), metrics.jsonl (per epoch)
      plots/                  samples_cfg1.0.png, samples_cfg1.5.png
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from moesuite.core.training import (
    MoESystem,
    OptimConfig,
    RunDirectory,
    default_run_path,
    fit,
    make_trainer,
    read_json,
    resumable_config,
    resume_run_directory,
    run_directory,
    seed_everything,
    torch_threads,
)
from moesuite.vision.promoe.data import ImageData, load_data
from moesuite.vision.promoe.diffusion import Objective, make_objective
from moesuite.vision.promoe.registry import MODELS, build_model

__all__ = [
    "TrainConfig",
    "DiffusionStep",
    "EMACallback",
    "train_diffusion",
    "resume_diffusion",
    "load_run",
]

MONITOR = "val/task_loss"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run.

    Attributes:
        model: a registered model (``moesuite vision list``).
        objective: ``"rf"`` (rectified flow) or ``"ddpm"``.
        data: ``None`` (scikit-learn digits), a folder of MNIST idx files or of class
            subfolders.
        steps: optimiser steps (default: 1000 on images of 16 pixels or less, else 3000),
            rounded up to whole epochs of equal length; ``epochs`` instead when given.
        epochs: passes over the training images (overrides ``steps``).
        batch_size: images per step.
        lr: AdamW learning rate (constant, as in the ProMoE code; higher than its 1e-4 for
            budgets of a few thousand steps).
        grad_clip: gradient-norm clip (0.5 in the ProMoE code).
        ema_decay: EMA decay (diffusers ``EMAModel`` with its ``(1 + n) / (10 + n)`` warm-up).
        experts: routed experts per MoE layer (model default if ``None``).
        patch_size: patch side (default: 2 for images of 16 pixels or less, else 4).
        seed: seed of weights, data order, noise and label dropout.
        threads: torch threads (``None``: unchanged).
        eval_steps: sampling steps of the evaluation after training.
        eval_per_class: generated images per class for the evaluation (default: as many as
            the held-out images per class).
        eval_cfgs: guidance scales evaluated.
    """

    model: str = "promoe"
    objective: str = "rf"
    data: str | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 64
    lr: float = 2e-3
    grad_clip: float = 0.5
    ema_decay: float = 0.999
    experts: int | None = None
    patch_size: int | None = None
    seed: int = 0
    threads: int | None = None
    eval_steps: int = 25
    eval_per_class: int | None = None
    eval_cfgs: tuple[float, ...] = (1.0, 1.5)

    def __post_init__(self) -> None:
        for name in ("steps", "epochs", "experts", "patch_size", "eval_per_class"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value!r}.")
        if self.batch_size < 1 or self.eval_steps < 1:
            raise ValueError("--batch-size and the evaluation steps must be >= 1.")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}.")
        if any(not c >= 0 for c in self.eval_cfgs):
            raise ValueError(f"guidance scales must be >= 0, got {self.eval_cfgs}.")


class DiffusionStep:
    """``step(model, batch)``: the diffusion loss of a batch plus the routers' aux loss.

    Training batches are ``(x0, y)`` (noise and time drawn here); validation batches carry
    fixed ``(x0, y, noise, time)`` so the validation loss is deterministic.
    """

    def __init__(self, objective: Objective):
        self.objective = objective

    def __call__(self, model: torch.nn.Module, batch: Sequence[torch.Tensor]) -> dict:
        if len(batch) == 2:
            x0, y = batch
            noise = torch.randn_like(x0)
            time_ = self.objective.sample_time(x0.shape[0]).to(x0.device)
        else:
            x0, y, noise, time_ = batch
        x_t, t, target = self.objective.corrupt(x0, noise, time_)
        out = model(x_t, t, y)
        task = F.mse_loss(out.output, target)
        loss = task + out.aux_loss
        logs = {f"aux_{k}": v for k, v in out.aux_terms().items()}
        return {"loss": loss, "task_loss": task, "aux_loss": out.aux_loss.detach(), **logs}


class EMACallback(L.Callback):
    """Exponential moving average of the weights (diffusers ``EMAModel``), checkpointed.

    Args:
        decay: the EMA decay (reached after diffusers' ``(1 + n) / (10 + n)`` warm-up).
    """

    def __init__(self, decay: float = 0.999):
        self.decay = decay
        self.ema = None
        self._pending: dict | None = None

    def _model(self, pl_module: L.LightningModule) -> torch.nn.Module:
        return getattr(pl_module, "model", pl_module)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from diffusers.training_utils import EMAModel

        if self.ema is None:
            self.ema = EMAModel(self._model(pl_module).parameters(), decay=self.decay)
        if self._pending is not None:
            self.ema.load_state_dict(self._pending)
            self._pending = None
        self.ema.to(pl_module.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.ema.step(self._model(pl_module).parameters())

    def state_dict(self) -> dict[str, Any]:
        return self.ema.state_dict() if self.ema is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        if self.ema is not None:
            self.ema.load_state_dict(state_dict)
        else:
            self._pending = state_dict

    def averaged(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """``model``'s state dict with the averaged parameters (``model`` is left unchanged)."""
        self.ema.store(model.parameters())
        self.ema.copy_to(model.parameters())
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        self.ema.restore(model.parameters())
        return state


class _Data(L.LightningDataModule):
    """Shuffled training batches (seeded generator, checkpointed) and a fixed validation set."""

    def __init__(self, data: ImageData, objective: Objective, batch_size: int, seed: int):
        super().__init__()
        self.batch_size = min(batch_size, data.train_images.shape[0])
        self.generator = torch.Generator().manual_seed(seed)
        self.train_set = TensorDataset(data.train_images * 2 - 1, data.train_labels)
        g = torch.Generator().manual_seed(10_000 + seed)
        n = min(512, data.held_images.shape[0])
        x0 = data.held_images[:n] * 2 - 1
        self.val_set = TensorDataset(
            x0,
            data.held_labels[:n],
            torch.randn(x0.shape, generator=g),
            objective.sample_time(n, generator=g),
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            generator=self.generator,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.generator.set_state(state_dict["generator"])


def _budget(cfg: TrainConfig, data: ImageData, batches_per_epoch: int) -> tuple[int, int]:
    """``(epochs, batches per epoch)``: ``steps`` rounded up to whole epochs.

    Epochs may be shortened to split ``steps`` evenly, so that every epoch ends with a validation.
    """
    if cfg.epochs is not None:
        return cfg.epochs, batches_per_epoch
    steps = cfg.steps or (1000 if max(data.image_size) <= 16 else 3000)
    epochs = math.ceil(steps / batches_per_epoch)
    return epochs, math.ceil(steps / epochs)


def prepare(cfg: TrainConfig) -> tuple[ImageData, Objective, torch.nn.Module]:
    """Check every input and build the data, objective and model (nothing is written)."""
    MODELS.get(cfg.model)
    objective = make_objective(cfg.objective)
    data = load_data(cfg.data)
    seed_everything(cfg.seed)
    model = build_model(cfg.model, data, experts=cfg.experts, patch_size=cfg.patch_size)
    return data, objective, model


def train_diffusion(
    cfg: TrainConfig,
    out: str | Path | None = None,
    progress: bool = True,
    runs_root: str | Path = "runs",
    feature_dir: str | Path | None = None,
    lightning: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[Path, dict]:
    """Train ``cfg.model`` with ``cfg.objective`` and write (and evaluate) a run directory.

    Args:
        cfg: the run's settings.
        out: run directory to create (default ``runs/vision/<model>/<timestamp>``).
        progress: show progress bars.
        runs_root: parent of default run directories.
        feature_dir: cache of feature networks (default: see :func:`feature_cache`).
        lightning: ``accelerator``/``devices``/``strategy`` for the trainer.
        callbacks: extra Lightning callbacks.

    Returns:
        ``(run directory, metrics)``.

    Raises:
        FileNotFoundError, ValueError: bad model, objective, data or sizes, before anything is
            written.
    """
    with torch_threads(cfg.threads):
        data, objective, model = prepare(cfg)
        path = Path(out) if out is not None else default_run_path(runs_root, "vision", cfg.model)
        with run_directory(path, keep_interrupted=True) as run:
            run.write_config(
                {
                    "system": "promoe",
                    "model": cfg.model,
                    "objective": cfg.objective,
                    "model_class": type(model).__name__,
                    "model_config": model_config(model),
                    "data": data.describe(),
                    "train": asdict(cfg),
                    "feature_dir": str(feature_cache(feature_dir)),
                }
            )
            metrics = _fit_and_report(
                cfg,
                data,
                objective,
                model,
                run,
                progress,
                lightning,
                callbacks,
                feature_dir,
            )
        return run.final_path, metrics


def resume_diffusion(
    run_dir: str | Path,
    progress: bool = True,
    lightning: dict[str, Any] | None = None,
    threads: int | None = None,
) -> tuple[Path, dict]:
    """Continue an interrupted :func:`train_diffusion` run in place from its last checkpoint."""
    run_dir = Path(run_dir)
    config = resumable_config(run_dir, expect={"system": "promoe"})
    train = dict(config["train"])
    train["eval_cfgs"] = tuple(train["eval_cfgs"])
    cfg = TrainConfig(**train)
    if threads is not None:
        cfg = replace(cfg, threads=threads)
    with torch_threads(cfg.threads):
        data, objective, model = prepare(cfg)
        with resume_run_directory(run_dir) as run:
            metrics = _fit_and_report(
                cfg,
                data,
                objective,
                model,
                run,
                progress,
                lightning,
                (),
                config.get("feature_dir"),
                resume=True,
            )
        return run_dir, metrics


def feature_cache(feature_dir: str | Path | None = None) -> Path:
    """Where feature networks are cached (never inside the repository).

    ``feature_dir`` if given, else ``$MOESUITE_CACHE_DIR/vision/feature-nets`` or
    ``~/.cache/moesuite/vision/feature-nets``.
    """
    if feature_dir is not None:
        return Path(feature_dir)
    root = os.environ.get("MOESUITE_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "moesuite"
    return base / "vision" / "feature-nets"


def model_config(model: torch.nn.Module) -> dict[str, Any]:
    """The constructor arguments of a model (stored under their own names)."""
    import inspect

    names = []
    for cls in type(model).__mro__:
        if cls is torch.nn.Module:
            break
        names += [p for p in inspect.signature(cls.__init__).parameters if p not in ("self",)]
    return {n: getattr(model, n) for n in dict.fromkeys(names) if hasattr(model, n)}


def _fit_and_report(
    cfg: TrainConfig,
    data: ImageData,
    objective: Objective,
    model: torch.nn.Module,
    run: RunDirectory,
    progress: bool,
    lightning: dict[str, Any] | None,
    callbacks: Sequence[L.Callback],
    feature_dir: str | Path | None,
    resume: bool = False,
) -> dict:
    from moesuite.vision.promoe.evaluate import evaluate_model, write_sample_grids

    start = time.perf_counter()
    dm = _Data(data, objective, cfg.batch_size, cfg.seed)
    per_epoch = len(dm.train_set) // dm.batch_size
    max_epochs, batches = _budget(cfg, data, per_epoch)
    ema = EMACallback(cfg.ema_decay)
    trainer = make_trainer(
        run.path,
        max_epochs=max_epochs,
        limit_train_batches=batches,
        seed=cfg.seed,
        progress=progress,
        monitor=MONITOR,
        gradient_clip_val=cfg.grad_clip,
        callbacks=[ema, *callbacks],
        log_every_n_steps=min(10, batches),
        check_val_every_n_epoch=1,
        **(lightning or {}),
    )
    system = MoESystem(model, DiffusionStep(objective), OptimConfig(lr=cfg.lr), max_epochs)
    fit(trainer, system, datamodule=dm, resume=run.path if resume else None)
    if trainer.global_rank != 0:  # a DDP worker: rank 0 evaluates and writes the run
        return {}
    train_seconds = time.perf_counter() - start
    model.cpu()
    state = ema.averaged(model)
    torch.save(state, run.file("checkpoints/ema.pt"))
    model.load_state_dict(state)
    logged = trainer.callback_metrics
    metrics: dict[str, Any] = {
        "model": cfg.model,
        "objective": cfg.objective,
        "data": data.name,
        "steps": int(trainer.global_step),
        "train_seconds": train_seconds,
        "final_val_task_loss": float(logged["val/task_loss"])
        if "val/task_loss" in logged
        else None,
    }
    report, samples = evaluate_model(
        model,
        objective,
        data,
        feature_dir=feature_cache(feature_dir),
        cfgs=cfg.eval_cfgs,
        steps=cfg.eval_steps,
        per_class=cfg.eval_per_class,
        seed=cfg.seed,
        progress=progress,
    )
    metrics.update(report)
    write_sample_grids(run, samples, data.num_classes)
    run.write_metrics(metrics)
    return metrics


def load_run(run_dir: str | Path) -> tuple[dict, torch.nn.Module, Objective]:
    """``(config, model with its EMA weights, objective)`` of a finished training run."""
    from moesuite.vision.promoe.registry import model_from_config

    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    if config.get("system") != "promoe":
        raise ValueError(f"{run_dir} is not a ProMoE run (its config.json names another system).")
    weights = run_dir / "checkpoints" / "ema.pt"
    if not weights.is_file():
        raise FileNotFoundError(
            f"{run_dir}: no checkpoints/ema.pt (the run did not finish; `train --resume` it)."
        )
    model = model_from_config(config)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return config, model.eval(), make_objective(config["objective"])
