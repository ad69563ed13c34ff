"""Training EvidenceMoE and its baselines with the core's ``MoESystem`` and trainer.

* :func:`training_step` is the loss of one batch: the model's task terms plus its routers' aux
  losses (only the softmax-gated baseline has a router), both logged;
* :func:`fit_model` trains one network and restores its best validation epoch;
* :func:`fit_and_predict` trains (or, for least squares, fits) and predicts a test set: what
  the benchmark, ``compare`` and the demo call;
* :func:`train` writes a run directory (``config.json``, ``metrics.json``,
  ``checkpoints/model.pt`` + Lightning's ``best.ckpt``/``last.ckpt``, ``logs/``,
  ``plots/*.png``) and continues an interrupted one (``resume``);
* :func:`compare` trains several models on the same data and writes the side-by-side table.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from moesuite.core.output import MoEOutput
from moesuite.core.training import (
    MoESystem,
    OptimConfig,
    default_run_path,
    fit,
    make_trainer,
    run_directory,
    seed_everything,
)
from moesuite.physics._runs import markdown_table, open_run, resumed_config, write_run_config
from moesuite.physics.data.flidar import FLiDARDataset, SimulationConfig, load_npz, simulate_dataset
from moesuite.physics.evidence.config import EvidenceTrainConfig
from moesuite.physics.evidence.evaluate import (
    COMPARE_COLUMNS,
    Prediction,
    from_lsq,
    metrics_of,
    predict,
    truth,
    write_plots,
)
from moesuite.physics.evidence.features import TargetScaler, make_loader, to_batch
from moesuite.physics.evidence.lsq import LeastSquaresFit
from moesuite.physics.evidence.plots import plot_example_histograms, plot_nrmse_vs
from moesuite.physics.evidence.registry import MODELS, parameter_count

__all__ = [
    "EvidenceTrainConfig",
    "training_step",
    "build_model",
    "fit_model",
    "fit_and_predict",
    "prepare_data",
    "train",
    "compare",
]


def training_step(model: nn.Module, batch: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Loss of one batch ``(x, y, counts, params)``, with every term the step logs.

    ``loss = task_loss + aux_loss``: the model's own terms (evidential, critic and physics
    losses) plus the weighted aux losses of its routers, which a model with routers returns in
    a :class:`~moesuite.core.output.MoEOutput` (zero for the models without one).
    """
    x, y, counts, params = batch
    out = model(x)
    moe = out if isinstance(out, MoEOutput) else MoEOutput(out)
    terms = model.loss_terms(moe.output, y, counts, params)
    task = terms.pop("task")
    aux = moe.aux_loss
    return {"loss": task + aux, "task_loss": task, "aux_loss": aux, **terms}


def build_model(model: str, config: SimulationConfig, tc: EvidenceTrainConfig) -> Any:
    """A fresh estimator for ``model`` (networks match EvidenceMoE's parameter count)."""
    return MODELS.create(model, d_in=config.n_bins + 1 + len(tc.known), config=config, tc=tc)


def fit_model(
    model: str,
    train_ds: FLiDARDataset,
    val_ds: FLiDARDataset,
    tc: EvidenceTrainConfig,
    run_path: Path | None = None,
    progress: bool = False,
    *,
    resume: Path | None = None,
    lightning: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> tuple[nn.Module, float]:
    """Train network ``model``; returns ``(net, seconds)``.

    The best validation epoch's weights are restored at the end. With ``run_path`` the
    checkpoints and logs go there (without, to a temporary directory). The training loader's
    shuffling generator is checkpointed by the core's ``fit``, so a resumed run draws the same
    batches as an uninterrupted one.

    Args:
        model: a network of :data:`~.registry.MODELS` (not ``evidence-lsq``).
        train_ds: training signals.
        val_ds: validation signals (best-epoch selection).
        tc: the settings.
        run_path: the run directory being written.
        progress: show a progress bar.
        resume: an interrupted run directory to continue from its last checkpoint.
        lightning: ``accelerator``/``devices``/``strategy`` for the trainer.
        callbacks: extra Lightning callbacks.
    """
    seed_everything(tc.seed)
    net = build_model(model, train_ds.config, tc)
    if not isinstance(net, nn.Module):
        raise ValueError(f"{model} is not a network; use fit_and_predict for it.")
    scaler = TargetScaler.from_config(train_ds.config)
    train_batch = to_batch(train_ds, scaler, tc.known)
    train_loader = make_loader(train_batch, tc.batch_size, shuffle=True, seed=tc.seed)
    val_loader = make_loader(to_batch(val_ds, scaler, tc.known), 1024, shuffle=False)
    optim = OptimConfig(lr=tc.lr, schedule="cosine", weight_decay=1e-4)
    system = MoESystem(net, training_step, optim, max_epochs=tc.epochs)
    with ExitStack() as stack:
        if run_path is None:
            run_path = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        trainer = make_trainer(
            run_path,
            max_epochs=tc.epochs,
            seed=tc.seed,
            progress=progress,
            monitor="val/loss",
            gradient_clip_val=1.0,
            callbacks=list(callbacks),
            **(lightning or {}),
        )
        # log every 20 steps, or once per epoch when an epoch (per process) has fewer batches
        per_process = len(train_loader) // max(1, trainer.world_size)
        trainer.log_every_n_steps = max(1, min(20, per_process))
        start = time.perf_counter()
        fit(trainer, system, train_loader, val_loader, resume=resume)
        seconds = time.perf_counter() - start
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        if best:
            state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
            net.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    net.eval()
    return net, seconds


def fit_and_predict(
    model: str,
    train_ds: FLiDARDataset,
    val_ds: FLiDARDataset,
    test_ds: FLiDARDataset,
    tc: EvidenceTrainConfig,
    progress: bool = False,
) -> tuple[Prediction, FLiDARDataset, dict[str, Any]]:
    """Train (unless least squares) and predict ``test_ds``; returns ``(pred, scored_ds, info)``.

    No run directory: the best validation epoch's weights are used. Least squares scores the
    first ``tc.lsq_max_signals`` test signals (``scored_ds``).
    """
    estimator = build_model(model, train_ds.config, tc)
    if isinstance(estimator, LeastSquaresFit):
        res, scored = estimator.fit(test_ds, progress)
        return from_lsq(res), scored, {"train_seconds": 0.0, "params": estimator.num_params}
    net, seconds = fit_model(model, train_ds, val_ds, tc, None, progress)
    start = time.perf_counter()
    pred = predict(net, test_ds, known=tc.known)
    info = {
        "train_seconds": seconds,
        "predict_seconds": time.perf_counter() - start,
        "params": parameter_count(net),
    }
    return pred, test_ds, info


def _holdout(ds: FLiDARDataset, n: int, seed: int) -> tuple[FLiDARDataset, FLiDARDataset]:
    """``(rest, held out)``: a random ``min(n, N / 5)`` signals (at least one) held out."""
    perm = np.random.default_rng(seed).permutation(len(ds))
    k = max(1, min(n, len(ds) // 5))
    return ds.subset(perm[k:]), ds.subset(perm[:k])


def prepare_data(
    data: Path | None, tc: EvidenceTrainConfig
) -> tuple[FLiDARDataset, FLiDARDataset, dict[str, Any]]:
    """``(train, validation, record)``: ``data`` split, or signals simulated from ``tc.seed``.

    With ``data`` (a FLiDAR ``.npz``) a random ``min(n_val, N / 5)`` signals are held out for
    validation; without, ``n_train`` and ``n_val`` signals are simulated over the default
    ranges (seeds ``seed`` and ``seed + 1``). ``record`` says where the data came from.
    """
    if data is not None:
        ds = load_npz(data)
        if len(ds) < 4:
            raise ValueError(f"{data}: {len(ds)} signals is too few to train on (need at least 4).")
        train_ds, val_ds = _holdout(ds, tc.n_val, tc.seed)
        record = {"path": str(Path(data).resolve()), "n_train": len(train_ds), "n_val": len(val_ds)}
        return train_ds, val_ds, record
    cfg = SimulationConfig()
    train_ds = simulate_dataset(tc.n_train, cfg, seed=tc.seed)
    val_ds = simulate_dataset(tc.n_val, cfg, seed=tc.seed + 1)
    record = {"path": None, "simulation": cfg.to_dict(), "n_train": tc.n_train, "n_val": tc.n_val}
    return train_ds, val_ds, record


def _train_config(seed: int, **settings: Any) -> EvidenceTrainConfig:
    fields = {k: v for k, v in settings.items() if v is not None}
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(EvidenceTrainConfig)})
    if unknown:
        raise ValueError(
            f"unknown training settings {unknown}; expected EvidenceTrainConfig fields."
        )
    return EvidenceTrainConfig(**{**fields, "seed": seed})


def train(
    model: str,
    *,
    data: Path | None = None,
    epochs: int | None = None,
    n_train: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    progress: bool = True,
    resume: Path | None = None,
    lightning: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
    **overrides: Any,
) -> Path:
    """Train ``model`` (a name of :data:`~.registry.MODELS`) and write a run directory.

    Args:
        model: ``moesuite physics list`` shows the names.
        data: a FLiDAR ``.npz`` (``moesuite physics simulate``); a validation split is held out.
            Default: simulate ``n_train`` + ``n_val`` signals over the default ranges.
        epochs: training epochs (default :class:`EvidenceTrainConfig`'s).
        n_train: simulated training signals.
        seed: seed of the data, initialisation and batching.
        out: run directory (default ``runs/physics/<model>/<timestamp>``).
        progress: show progress.
        resume: an interrupted run directory of ``model`` to continue (its own settings are
            used; ``data``, ``epochs``, ``n_train``, ``out`` and ``overrides`` must be unset).
        lightning: ``accelerator``/``devices``/``strategy`` for the trainer.
        callbacks: extra Lightning callbacks.
        **overrides: other :class:`EvidenceTrainConfig` fields (``None`` values are ignored).

    Returns:
        The run directory.
    """
    MODELS.get(model)
    if resume is not None:
        given = dict(overrides, data=data, epochs=epochs, n_train=n_train, out=out)
        config = resumed_config(resume, model, **given)
        tc = EvidenceTrainConfig(**config["train_config"])
        path = config["data"].get("path")
        data, seed = (Path(path) if path else None), tc.seed
    else:
        tc = _train_config(seed, **overrides, epochs=epochs, n_train=n_train)
    train_ds, val_ds, record = prepare_data(data, tc)  # validates the data before writing
    estimator = build_model(model, train_ds.config, tc)
    with open_run(model, out, resume) as run:
        final = run.final_path
        write_run_config(
            run,
            model,
            "FLiDAR depth and lifetime (EvidenceMoE)",
            seed=seed,
            train_config=dataclasses.asdict(tc),
            simulation=train_ds.config.to_dict(),
            data=record,
        )
        if isinstance(estimator, LeastSquaresFit):
            res, scored = estimator.fit(val_ds, progress)
            pred = from_lsq(res)
            info: dict[str, Any] = {"train_seconds": 0.0}
            note = {"model": model, "note": "least squares has no weights"}
            run.write_json("checkpoints/model.json", note)
        else:
            net, seconds = fit_model(
                model,
                train_ds,
                val_ds,
                tc,
                run.path,
                progress,
                resume=resume,
                lightning=lightning,
                callbacks=callbacks,
            )
            saved = {
                "class": type(net).__name__,
                "kwargs": net.init_kwargs(),
                "state_dict": net.state_dict(),
            }
            torch.save(saved, run.checkpoint_dir / "model.pt")
            pred, scored = predict(net, val_ds, known=tc.known), val_ds
            info = {"train_seconds": round(seconds, 2), "params": parameter_count(net)}
        run.write_metrics({"split": "validation", **metrics_of(pred, scored), **info})
        write_plots(run.path / "plots", model, pred, scored)
        plot_example_histograms(val_ds, run.plot_path("example_histograms"))
    return final


def compare(
    models: Sequence[str],
    *,
    data: Path | None = None,
    epochs: int | None = None,
    n_train: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    progress: bool = True,
    **overrides: Any,
) -> tuple[Path, list[dict[str, Any]]]:
    """Train ``models`` with the same data and budget and score them on the same test signals.

    The test set is a random fifth of ``data`` (the rest is split as by :func:`train`), or
    1,000 signals simulated with seed ``seed + 2``; networks are selected on the validation
    split only. Writes ``comparison.md``, ``metrics.json`` (every model's metrics),
    ``config.json`` and ``plots/nrmse_vs_depth_photons.png`` into ``out`` (default
    ``runs/physics/compare/<timestamp>``).

    Returns:
        ``(run directory, one row of metrics per model)``.
    """
    for model in models:
        MODELS.get(model)
    tc = _train_config(seed, **overrides, epochs=epochs, n_train=n_train)
    if data is not None:
        pool, test_ds = _holdout(load_npz(data), 10**9, seed + 2)
        if len(pool) < 4:
            raise ValueError(
                f"{data}: {len(pool) + len(test_ds)} signals is too few to compare on."
            )
        train_ds, val_ds = _holdout(pool, tc.n_val, tc.seed)
        record = {"path": str(Path(data).resolve()), "n_test": len(test_ds)}
    else:
        train_ds, val_ds, record = prepare_data(None, tc)
        test_ds = simulate_dataset(1000, train_ds.config, seed=seed + 2)
    final = Path(out) if out is not None else default_run_path("runs", "physics", "compare")
    rows, means = [], {}
    with run_directory(final) as run:
        settings = {"train_config": dataclasses.asdict(tc), "data": record}
        run.write_config({"command": "compare", "models": list(models), **settings})
        for model in models:
            pred, scored, info = fit_and_predict(model, train_ds, val_ds, test_ds, tc, progress)
            rows.append({"model": model, **metrics_of(pred, scored), **info})
            means[model] = pred.mean
        run.write_metrics({"split": "test", "models": rows})
        (run.path / "comparison.md").write_text(markdown_table(rows, COMPARE_COLUMNS) + "\n")
        n = min(len(m) for m in means.values())  # least squares scores the first signals only
        sub = test_ds.subset(slice(0, n))
        plot_nrmse_vs(
            truth(sub),
            {k: v[:n] for k, v in means.items()},
            sub.column("depth_mm"),
            sub.signals.sum(1),
            run.plot_path("nrmse_vs_depth_photons"),
            f"FLiDAR: NRMSE vs depth and photons ({n} test signals)",
        )
    return final, rows
