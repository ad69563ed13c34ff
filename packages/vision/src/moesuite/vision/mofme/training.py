"""Train a restorer into a run directory with the core's trainer; resume one; load one.

:func:`train_restorer` checks the data and the model options *before* the run directory is
created, trains with :class:`moesuite.core.training.MoESystem` (L1 loss plus the routers' aux
losses, AdamW, linear warm-up then cosine decay per epoch, the best checkpoint chosen on the
validation L1 loss), reloads the best weights and writes::

    config.json              "system": "mofme", "model", the TrainConfig, the model's arguments
    metrics.json             validation PSNR/SSIM per weather, parameters, training time
    checkpoints/best.ckpt    Lightning checkpoints (last.ckpt for --resume)
    checkpoints/model.pt     the best weights (what eval and restore load)
    logs/                    per-step CSV and per-epoch JSON lines
    plots/validation.png     degraded | restored | clean validation crops

Data: clean photos under synthesised weather (default: the shared CBSD68 + McMaster sets; a
folder of yours with ``--data``), or paired ``degraded/`` + ``clean/`` folders with ``--data``.
Every twelfth image (or pair) is held out for validation. The perceptual (VGG) term of the
paper's loss is left out: it needs pretrained weights, which are never downloaded here.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from moesuite.core.training import (
    MoESystem,
    OptimConfig,
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
from moesuite.vision.data.paired import is_paired_folder, load_pairs
from moesuite.vision.data.paths import shared_path
from moesuite.vision.data.restoration import (
    TRAIN_SETS,
    EpochSampler,
    PairedCrops,
    WeatherCrops,
    load_folder_images,
    materialise,
)
from moesuite.vision.mofme.model import MODELS, Restorer, create_model

__all__ = [
    "TrainConfig",
    "TrainResult",
    "restore_step",
    "build_data",
    "train_restorer",
    "resume_restorer",
    "load_run",
]

#: the metric the best checkpoint follows: the validation L1 loss, aux losses excluded
MONITOR = "val/task_loss"
#: every n-th image (or pair) of the training data is held out for validation
HOLDOUT_EVERY = 12


@dataclass(kw_only=True)
class TrainConfig:
    """A training run (saved as ``config.json["train"]``).

    Attributes:
        model: registered model name (``moesuite.vision.mofme.model.MODELS``).
        data: a folder of clean photos, or one with ``degraded/`` and ``clean/`` subfolders;
            ``None``: the shared CBSD68 + McMaster photos.
        crop: side of the square training crops (and the default tile at inference).
        batch_size: crops per step.
        steps: optimiser steps in total.
        steps_per_epoch: steps between validations and checkpoints (one cosine step each).
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        warmup_epochs: epochs of linear warm-up before the cosine decay.
        val_crops: fixed validation crops (a third per weather for synthesised data).
        seed: seed of initialisation and crops.
        threads: torch threads while training (``None``: torch's setting).
        model_options: restorer arguments over the model's preset (``None`` values ignored).
    """

    model: str = "mofme"
    data: str | None = None
    crop: int = 48
    batch_size: int = 16
    steps: int = 300
    steps_per_epoch: int = 25
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    val_crops: int = 48
    seed: int = 0
    threads: int | None = 1
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("crop", "batch_size", "steps", "steps_per_epoch", "val_crops"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.data is not None:
            self.data = str(self.data)
        # a run shorter than one epoch is one epoch of all its steps (so it is validated)
        self.steps_per_epoch = min(self.steps_per_epoch, self.steps)
        self.model_options = {k: v for k, v in self.model_options.items() if v is not None}

    @property
    def epochs(self) -> int:
        """Epochs of ``steps_per_epoch`` steps needed for ``steps`` steps."""
        return math.ceil(self.steps / self.steps_per_epoch)


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    model: Restorer


def restore_step(model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
    """The training step: restore the degraded crops, L1 to the clean ones, plus aux losses."""
    degraded, clean = batch[0], batch[1]
    out = model(degraded)
    task = (out.output - clean).abs().mean()
    aux = out.aux_loss
    return {
        "loss": task + aux,
        "task_loss": task,
        "aux_loss": aux,
        "batch_size": int(degraded.shape[0]),
    }


def build_data(cfg: TrainConfig) -> tuple[Dataset, EpochSampler, Dataset, str]:
    """Training crops, their sampler, the fixed validation crops and a description of the data."""
    per_epoch = cfg.steps_per_epoch * cfg.batch_size
    size = per_epoch * cfg.epochs
    if cfg.data is not None and is_paired_folder(cfg.data):
        pairs = load_pairs(cfg.data)
        if len(pairs) < 2:
            raise ValueError(f"{cfg.data}: needs at least 2 pairs (one is held out).")
        held = _holdout(len(pairs))
        val = [p for p, h in zip(pairs, held, strict=True) if h]
        train = [p for p, h in zip(pairs, held, strict=True) if not h]
        train_ds: Dataset = PairedCrops(train, cfg.crop, size, seed=cfg.seed)
        val_ds: Dataset = PairedCrops(val, cfg.crop, cfg.val_crops, seed=10**6, augment=False)
        source = f"{cfg.data} (paired: {len(train)} train, {len(val)} validation)"
    else:
        if cfg.data is not None:
            folders = [Path(cfg.data)]
        else:
            folders = [shared_path("images", s) for s in TRAIN_SETS]
        images = load_folder_images(folders, min_size=cfg.crop)
        if len(images) < 2:
            raise ValueError(f"{folders[0]}: needs at least 2 images (one is held out).")
        held = _holdout(len(images))
        val_imgs = [im for im, h in zip(images, held, strict=True) if h]
        train_imgs = [im for im, h in zip(images, held, strict=True) if not h]
        train_ds = WeatherCrops(train_imgs, cfg.crop, size, seed=cfg.seed)
        val_ds = WeatherCrops(val_imgs, cfg.crop, cfg.val_crops, seed=10**6, augment=False)
        names = ", ".join(str(f) for f in folders)
        source = f"{names} ({len(train_imgs)} train, {len(val_imgs)} validation images)"
    return train_ds, EpochSampler(per_epoch, seed=cfg.seed), materialise(val_ds), source


def _holdout(n: int) -> list[bool]:
    """Which of ``n`` items are validation: every twelfth (the 7th, 19th, ...), else the last."""
    held = [i % HOLDOUT_EVERY == HOLDOUT_EVERY // 2 for i in range(n)]
    if not any(held):
        held[-1] = True
    return held


def _check_model(cfg: TrainConfig) -> Restorer:
    if cfg.model not in MODELS:
        raise ValueError(
            f"unknown model {cfg.model!r}; expected one of {MODELS.list()} (see `list`)."
        )
    return create_model(cfg.model, **cfg.model_options)


def train_restorer(
    cfg: TrainConfig,
    *,
    out: str | Path | None = None,
    device: str = "auto",
    devices: str | int = "auto",
    strategy: str = "auto",
    quiet: bool = False,
) -> TrainResult:
    """Train ``cfg.model`` into a new run directory (default ``runs/vision/<model>/<stamp>``)."""
    from moesuite.core.cli.common import lightning_kwargs

    with torch_threads(cfg.threads):
        seed_everything(cfg.seed)
        model = _check_model(cfg)  # bad options fail before anything is written
        data = build_data(cfg)
        path = Path(out) if out is not None else default_run_path("runs", "vision", cfg.model)
        with run_directory(path, keep_interrupted=True) as run:
            run.write_config(_config(cfg, model))
            return _fit_and_report(
                cfg, model, data, run, None, lightning_kwargs(device, str(devices), strategy), quiet
            )


def resume_restorer(
    run_dir: str | Path,
    *,
    device: str = "auto",
    devices: str | int = "auto",
    strategy: str = "auto",
    quiet: bool = False,
) -> TrainResult:
    """Continue an interrupted run in place from its last checkpoint."""
    from moesuite.core.cli.common import lightning_kwargs

    config = resumable_config(run_dir, expect={"system": "mofme"})
    cfg = TrainConfig(**config["train"])
    with torch_threads(cfg.threads):
        seed_everything(cfg.seed)
        model = _check_model(cfg)
        data = build_data(cfg)
        with resume_run_directory(run_dir) as run:
            return _fit_and_report(
                cfg,
                model,
                data,
                run,
                Path(run_dir),
                lightning_kwargs(device, str(devices), strategy),
                quiet,
            )


def _config(cfg: TrainConfig, model: Restorer) -> dict[str, Any]:
    return {"system": "mofme", "model": cfg.model, "train": asdict(cfg), "restorer": model.config()}


def _fit_and_report(cfg, model, data, run, resume, lightning, quiet) -> TrainResult:
    from moesuite.vision.mofme.evaluate import count_parameters, validation_report

    train_ds, sampler, val_ds, source = data
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=True)
    val_loader = DataLoader(val_ds, batch_size=cfg.batch_size)
    optim = OptimConfig(
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        schedule="cosine",
        warmup_epochs=min(cfg.warmup_epochs, cfg.epochs - 1),
    )
    system = MoESystem(model, restore_step, optim, max_epochs=cfg.epochs)
    trainer = make_trainer(
        run.path,
        max_epochs=cfg.epochs,
        max_steps=cfg.steps,
        seed=cfg.seed,
        progress=not quiet,
        monitor=MONITOR,
        log_every_n_steps=max(1, min(10, cfg.steps_per_epoch)),
        **lightning,
    )
    start = time.perf_counter()
    fit(trainer, system, train_loader, val_loader, resume=resume)
    seconds = time.perf_counter() - start
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best and Path(best).is_file():
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    model.eval()
    torch.save(model.state_dict(), run.file("checkpoints/model.pt"))
    report = validation_report(model, val_ds, run.plot_path("validation"))
    metrics = {
        "model": cfg.model,
        "data": source,
        "steps": int(trainer.global_step),
        "train_seconds": round(seconds, 1),
        "parameters": count_parameters(model),
        **report,
    }
    run.write_metrics(metrics)
    return TrainResult(run.final_path, metrics, model)


def load_run(run_dir: str | Path) -> tuple[Restorer, dict[str, Any]]:
    """The trained restorer of a run directory (eval mode) and its ``config.json``."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json")
    if not isinstance(config, dict) or config.get("system") != "mofme":
        raise ValueError(f"{run_dir}: not a MoFME run (config.json names another system).")
    weights = run_dir / "checkpoints" / "model.pt"
    if not weights.is_file():
        raise FileNotFoundError(
            f"{run_dir}: no checkpoints/model.pt (was the training finished? resume it with "
            f"`moesuite vision train {config.get('model', 'mofme')} --resume {run_dir}`)."
        )
    model = Restorer(**config["restorer"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval(), config
