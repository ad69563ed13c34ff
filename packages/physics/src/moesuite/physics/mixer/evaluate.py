"""Metrics of a trained model: in-domain MSE, adaptation MSE and family recovery (ARI).

* **in-domain MSE**: trajectories from *new initial conditions* of the training environments
  (split ``test``), integrated with the learned contexts;
* **adaptation MSE**: new environments (split ``adapt_test``) after fitting a fresh context
  per environment on its few ``adapt`` trajectories (:func:`~moesuite.physics.mixer.adapt.adapt_contexts`);
* **ARI**: adjusted Rand index between the gate's expert per training environment and the
  environment's true family (scikit-learn's ``adjusted_rand_score``); ``ari_adapt`` does the
  same for the adapted contexts of the new environments.

MSEs are in the families' scaled units, over the real state dimensions and all ``T`` times,
averaged per environment first, then over environments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from moesuite.physics.mixer.adapt import AdaptConfig, adapt_contexts, frozen
from moesuite.physics.mixer.model import MixERModel
from moesuite.physics.mixer.training import TrajectoryBatch, trajectory_mse
from moesuite.physics.odes import EnvironmentSet, ODEDataset

__all__ = ["Evaluation", "evaluate_model", "predict", "adjusted_rand_index"]


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
def predict(model: MixERModel, envs: EnvironmentSet, which: str, context: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``envs.<which>`` (``fit`` or ``test``) from its initial states.

    Returns ``(pred[G, n, T, D], per-environment MSE[G])``.
    """
    batch = TrajectoryBatch.from_numpy(getattr(envs, which), envs.dt, envs.mask)
    with frozen(model):
        pred, _ = model(batch.y[:, :, 0], batch.dt, batch.y.shape[2], batch.mask, context=context)
    per = trajectory_mse(pred, batch.y, batch.mask)
    return pred.numpy(), per.numpy()


def _per_family(values: np.ndarray, family: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    return {name: float(values[family == i].mean()) for i, name in enumerate(names) if (family == i).any()}


def evaluate_model(model: MixERModel, dataset: ODEDataset, adapt: AdaptConfig | None = None) -> Evaluation:
    """All metrics of ``model`` on ``dataset`` (whose training environments it was trained on).

    Args:
        model: a trained model with ``dataset.train.num_envs`` contexts.
        dataset: the data it was trained on.
        adapt: adaptation settings.
    """
    if model.contexts.shape[0] != dataset.train.num_envs:
        raise ValueError(
            f"the model has {model.contexts.shape[0]} environment contexts but the dataset has "
            f"{dataset.train.num_envs} training environments: evaluate on the data it was trained on."
        )
    if model.config.state_dim != dataset.state_dim:
        raise ValueError(f"the model expects state size {model.config.state_dim}, the dataset has {dataset.state_dim}.")
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
