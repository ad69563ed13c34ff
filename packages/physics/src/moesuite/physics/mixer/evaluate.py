"""Scoring MixER and its baselines: in-domain and adaptation MSE, family recovery (ARI), runs.

* **in-domain MSE**: trajectories from *new initial conditions* of the training environments
  (split ``test``), integrated with the learned contexts;
* **adaptation MSE**: new environments (split ``adapt_test``) after fitting a fresh context
  per environment on its few ``adapt`` trajectories (:func:`~.adapt.adapt_contexts`);
* **ARI**: adjusted Rand index between the gate's expert per training environment and the
  environment's true family (scikit-learn's ``adjusted_rand_score``); ``ari_adapt`` does the
  same for the adapted contexts of the new environments.

MSEs are in the families' scaled units, over the real state dimensions and all ``T`` times,
averaged per environment first, then over environments. :func:`evaluate` re-scores a run
directory written by ``train``; :data:`COMPARE_COLUMNS` are the columns of ``compare``'s table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from moesuite.core.training import read_json, run_directory
from moesuite.physics.data.odes import (
    EnvironmentSet,
    GenerationConfig,
    ODEBenchConfig,
    ODEDataset,
    generate,
    generate_odebench,
    load_dataset,
)
from moesuite.physics.mixer.adapt import AdaptConfig, adapt_contexts, frozen
from moesuite.physics.mixer.model import MixERConfig, MixERModel
from moesuite.physics.mixer.plots import plot_expert_assignment, plot_trajectories
from moesuite.physics.mixer.registry import MODELS
from moesuite.physics.mixer.trajectories import TrajectoryBatch, trajectory_mse

__all__ = [
    "COMPARE_COLUMNS",
    "Evaluation",
    "adjusted_rand_index",
    "dataset_from_record",
    "evaluate",
    "evaluate_model",
    "load_model",
    "predict",
    "write_plots",
]

#: ``(metric key, column title)`` of the side-by-side table
COMPARE_COLUMNS = (
    ("model", "model"),
    ("num_experts", "experts"),
    ("mse_in_domain", "in-domain MSE"),
    ("mse_adapt", "adaptation MSE"),
    ("ari", "ARI"),
    ("params", "params"),
    ("train_seconds", "train s"),
)


def adjusted_rand_index(labels_true: Any, labels_pred: Any) -> float:
    """ARI of two labelings (1: identical partitions up to renaming; ~0: chance).

    Examples:
        >>> adjusted_rand_index([0, 0, 1, 1], [3, 3, 7, 7])
        1.0
    """
    return float(adjusted_rand_score(np.asarray(labels_true), np.asarray(labels_pred)))


@dataclass
class Evaluation:
    """Metrics and the arrays behind them (for plots).

    Attributes:
        metrics: scalar and per-family figures (JSON-ready).
        pred_test: ``[E, m, T, D]`` predictions of the in-domain test trajectories.
        pred_adapt: ``[A, m, T, D]`` predictions of the adaptation test trajectories.
        experts: ``[E]`` expert of each training environment.
        experts_adapt: ``[A]`` expert of each adapted environment.
    """

    metrics: dict[str, Any]
    pred_test: np.ndarray
    pred_adapt: np.ndarray
    experts: np.ndarray
    experts_adapt: np.ndarray


@torch.no_grad()
def predict(
    model: MixERModel, envs: EnvironmentSet, which: str, context: torch.Tensor | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``envs.<which>`` (``fit`` or ``test``) from its initial states.

    Returns ``(pred[G, n, T, D], per-environment MSE[G])``.
    """
    batch = TrajectoryBatch.from_numpy(getattr(envs, which), envs.dt, envs.mask)
    with frozen(model):
        y0, T = batch.y[:, :, 0], batch.y.shape[2]
        pred = model(y0, batch.dt, T, batch.mask, context=context).output
    per = trajectory_mse(pred, batch.y, batch.mask)
    return pred.numpy(), per.numpy()


def _per_family(values: np.ndarray, family: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    return {
        name: float(values[family == i].mean())
        for i, name in enumerate(names)
        if (family == i).any()
    }


def evaluate_model(
    model: MixERModel, dataset: ODEDataset, adapt: AdaptConfig | None = None
) -> Evaluation:
    """All metrics of ``model`` on ``dataset`` (whose training environments it was trained on).

    Args:
        model: a trained model with ``dataset.train.num_envs`` contexts.
        dataset: the data it was trained on.
        adapt: adaptation settings.
    """
    if model.contexts.shape[0] != dataset.train.num_envs:
        raise ValueError(
            f"the model has {model.contexts.shape[0]} environment contexts but the dataset has "
            f"{dataset.train.num_envs} training environments: evaluate on the data it was "
            "trained on."
        )
    if model.config.state_dim != dataset.state_dim:
        raise ValueError(
            f"the model expects state size {model.config.state_dim}, "
            f"the dataset has {dataset.state_dim}."
        )
    _, train_mse = predict(model, dataset.train, "fit")
    pred_test, test_mse = predict(model, dataset.train, "test")
    batch = TrajectoryBatch.from_numpy(dataset.adapt.fit, dataset.adapt.dt, dataset.adapt.mask)
    ctx, _fit = adapt_contexts(model, batch, adapt)
    pred_adapt, adapt_mse = predict(model, dataset.adapt, "test", context=ctx)
    with torch.no_grad():
        experts = model.assignments().numpy()
        experts_adapt = model.assignments(ctx).numpy()
    fam, fam_a = dataset.train.family, dataset.adapt.family
    metrics: dict[str, Any] = {
        "mse_in_domain": float(test_mse.mean()),
        "mse_adapt": float(adapt_mse.mean()),
        "mse_train": float(train_mse.mean()),
        "ari": adjusted_rand_index(fam, experts),
        "ari_adapt": adjusted_rand_index(fam_a, experts_adapt),
        "experts_used": int(len(np.unique(experts))),
        "num_experts": model.num_experts,
        "params": int(sum(p.numel() for p in model.parameters())),
        "per_family": {
            "mse_in_domain": _per_family(test_mse, fam, dataset.families),
            "mse_adapt": _per_family(adapt_mse, fam_a, dataset.families),
        },
    }
    return Evaluation(metrics, pred_test, pred_adapt, experts, experts_adapt)


def write_plots(
    directory: Path, dataset: ODEDataset, evaluation: Evaluation, model: str
) -> list[Path]:
    """``trajectories_in_domain.png``, ``trajectories_adapt.png`` and ``expert_assignment.png``."""
    directory = Path(directory)
    ari = evaluation.metrics["ari"]
    return [
        plot_trajectories(
            directory / "trajectories_in_domain.png",
            dataset.families,
            dataset.train,
            evaluation.pred_test,
            "test",
            f"{model}: in-domain test (new initial conditions)",
        ),
        plot_trajectories(
            directory / "trajectories_adapt.png",
            dataset.families,
            dataset.adapt,
            evaluation.pred_adapt,
            "test",
            f"{model}: adapted to unseen environments",
        ),
        plot_expert_assignment(
            directory / "expert_assignment.png",
            dataset.families,
            dataset.train.family,
            evaluation.experts,
            evaluation.metrics["num_experts"],
            f"{model}: expert chosen per training environment (ARI {ari:.2f})",
        ),
    ]


def dataset_from_record(record: dict[str, Any]) -> ODEDataset:
    """The dataset a run was trained on, from the ``data`` record of its ``config.json``."""
    if record.get("path"):
        ds = load_dataset(record["path"])
        return ds.subset(record["families"]) if record.get("families") else ds
    if "odebench" in record:
        return generate_odebench(ODEBenchConfig(**record["odebench"]))
    gen = dict(record["generation"])
    gen["families"] = tuple(gen["families"])
    return generate(GenerationConfig(**gen))


def load_model(run_dir: Path) -> MixERModel:
    """The model saved by ``train`` in ``run_dir/checkpoints/model.pt``."""
    path = Path(run_dir) / "checkpoints" / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (the run directory is incomplete).")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    net = MixERModel(MixERConfig(**ckpt["config"]))
    net.load_state_dict(ckpt["state_dict"])
    return net


def evaluate(run_dir: Path, *, data: Path | None = None, out: Path | None = None) -> dict[str, Any]:
    """Evaluate a run directory written by ``train``; writes ``metrics.json`` and plots.

    Args:
        run_dir: the run directory.
        data: optional ``.npz`` with the *same training environments* (e.g. other initial
            conditions or adaptation environments); default: the run's own data.
        out: directory for the results (default ``<run_dir>/eval``; replaced atomically).

    Returns:
        The metrics (``mse_in_domain``, ``mse_adapt``, ``ari``, ...).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"{run_dir}: no such run directory (expected one written by `moesuite physics train`)."
        )
    config = read_json(run_dir / "config.json")
    MODELS.get(config.get("model"))
    net = load_model(run_dir)
    if data is not None:
        dataset = load_dataset(data)
        if list(dataset.families) != list(config["families"]):
            dataset = dataset.subset(config["families"])
    else:
        dataset = dataset_from_record(config["data"])
    adapt = AdaptConfig(**config.get("adapt_config", {}))
    start = time.perf_counter()
    evaluation = evaluate_model(net, dataset, adapt)
    metrics = dict(evaluation.metrics, eval_seconds=round(time.perf_counter() - start, 2))
    target = Path(out) if out is not None else run_dir / "eval"
    with run_directory(target, overwrite=True) as res:
        res.write_metrics(metrics)
        write_plots(res.path / "plots", dataset, evaluation, config["model"])
    return metrics
