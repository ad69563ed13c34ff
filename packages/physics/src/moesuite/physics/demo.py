"""``moesuite demo`` rows of the physics domain: EvidenceMoE vs a dense network, MixER vs baselines.

Both parts are smoke-size runs (about a minute each on 2 CPU cores): they show that the systems
train and score end to end, not their benchmark figures (the README's tables).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from moesuite.core.training import torch_threads

__all__ = ["run_demo", "evidence_rows", "mixer_rows"]


def _rows(
    task: str,
    model: str,
    metrics: tuple[tuple[str, str], ...],
    values: dict[str, Any],
    seconds: float,
    note: str = "",
) -> list[dict[str, Any]]:
    """One demo row per ``(metric title, key)`` of ``metrics``."""
    return [
        {
            "domain": "physics",
            "task": task,
            "model": model,
            "metric": metric,
            "value": round(float(values[key]), 4),
            "seconds": seconds,
            "note": note,
        }
        for metric, key in metrics
    ]


def evidence_rows(out_dir: Path, seed: int = 0) -> list[dict[str, Any]]:
    """EvidenceMoE vs the dense baseline on a small simulated FLiDAR set (2.5k signals)."""
    from moesuite.physics.data.flidar import SimulationConfig, simulate_dataset
    from moesuite.physics.evidence.config import EvidenceTrainConfig
    from moesuite.physics.evidence.evaluate import metrics_of, truth
    from moesuite.physics.evidence.plots import plot_pred_vs_true
    from moesuite.physics.evidence.training import fit_and_predict

    out_dir = Path(out_dir)
    tc = EvidenceTrainConfig(n_train=2500, n_val=500, epochs=6, seed=seed)
    cfg = SimulationConfig()
    train_ds = simulate_dataset(tc.n_train, cfg, seed=seed)
    val_ds = simulate_dataset(tc.n_val, cfg, seed=seed + 1)
    test_ds = simulate_dataset(1000, cfg, seed=seed + 2)
    task = "FLiDAR depth & lifetime (2.5k simulated, 6 epochs)"
    metrics = (
        ("NRMSE depth", "nrmse_depth"),
        ("NRMSE lifetime", "nrmse_tau"),
        ("90% coverage depth", "coverage90_depth"),
    )
    rows = []
    with torch.random.fork_rng():
        for model in ("evidence", "evidence-dense"):
            start = time.perf_counter()
            pred, scored, info = fit_and_predict(model, train_ds, val_ds, test_ds, tc)
            seconds = round(time.perf_counter() - start, 1)
            m = metrics_of(pred, scored)
            plot_pred_vs_true(
                truth(scored),
                pred.mean,
                pred.lower,
                pred.upper,
                out_dir / "plots" / f"flidar_pred_vs_true_{model}.png",
                f"{model} (demo)",
            )
            rows += _rows(task, model, metrics, m, seconds, f"{info['params']} params")
    return rows


def mixer_rows(out_dir: Path) -> list[dict[str, Any]]:
    """MixER vs both baselines on three small families (4 environments each, 12 epochs)."""
    from moesuite.physics.mixer.adapt import AdaptConfig
    from moesuite.physics.mixer.evaluate import evaluate_model
    from moesuite.physics.mixer.plots import plot_expert_assignment
    from moesuite.physics.mixer.training import (
        QUICK_FAMILIES,
        MixERTrainConfig,
        default_num_experts,
        prepare_data,
        train_model,
    )

    out_dir = Path(out_dir)
    metrics = (
        ("in-domain MSE", "mse_in_domain"),
        ("adaptation MSE", "mse_adapt"),
        ("family ARI", "ari"),
    )
    rows = []
    with torch.random.fork_rng():
        gen = {"n_train_envs": 4, "n_adapt_envs": 2, "n_times": 12}
        dataset, _ = prepare_data(QUICK_FAMILIES, None, 0, **gen)
        tc = MixERTrainConfig(epochs=12, steps_per_epoch=10, curriculum=0.3, warmup=0.0)
        adapt = AdaptConfig(steps=100, starts=default_num_experts(len(dataset.families)))
        task = f"ODE families ({', '.join(dataset.families)})"
        for model in ("mixer", "mixer-shared", "mixer-gradgate"):
            net, _system, seconds = train_model(model, dataset, train_config=tc)
            start = time.perf_counter()
            evaluation = evaluate_model(net, dataset, adapt)
            seconds += time.perf_counter() - start
            plot_expert_assignment(
                out_dir / "plots" / f"mixer_expert_assignment_{model}.png",
                dataset.families,
                dataset.train.family,
                evaluation.experts,
                net.num_experts,
                f"{model} (demo)",
            )
            rows += _rows(task, model, metrics, evaluation.metrics, round(seconds, 1))
    return rows


def run_demo(out_dir: Path) -> list[dict[str, Any]]:
    """EvidenceMoE vs the dense baseline, then MixER vs its baselines; about two minutes.

    Rows have keys ``domain, task, model, metric, value, seconds, note``; plots go to
    ``out_dir/plots``.
    """
    out_dir = Path(out_dir)
    with torch_threads(1):
        return evidence_rows(out_dir) + mixer_rows(out_dir)
