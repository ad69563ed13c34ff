"""Scoring FLiDAR estimates: predictions with intervals, metrics, plots, saved runs, side by side.

* :func:`predict` runs a trained network on a dataset (physical units, 90% intervals);
* :func:`metrics_of` scores a :class:`Prediction` (NRMSE under three normalisations, MAE,
  interval coverage, and for EvidenceMoE the critics' rank correlations);
* :func:`evaluate` re-scores a run directory written by ``train`` and writes ``eval/``;
* :data:`COMPARE_COLUMNS` are the columns of the side-by-side table of ``compare``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moesuite.core.output import MoEOutput
from moesuite.core.training import read_json, run_directory
from moesuite.physics.data.flidar import (
    TARGETS,
    FLiDARDataset,
    SimulationConfig,
    load_npz,
    simulate_dataset,
)
from moesuite.physics.evidence.config import EvidenceTrainConfig
from moesuite.physics.evidence.experts import WINDOWS
from moesuite.physics.evidence.features import TargetScaler, features, known_columns
from moesuite.physics.evidence.lsq import LSQResult
from moesuite.physics.evidence.metrics import ranking_scores, score, spearman
from moesuite.physics.evidence.model import EvidenceMoE, EvidenceOutput
from moesuite.physics.evidence.nig import NIG, student_t_interval
from moesuite.physics.evidence.plots import plot_expert_wins, plot_nrmse_vs, plot_pred_vs_true
from moesuite.physics.evidence.registry import MODELS, NETWORKS

__all__ = [
    "COMPARE_COLUMNS",
    "Prediction",
    "predict",
    "from_lsq",
    "truth",
    "metrics_of",
    "write_plots",
    "load_model",
    "evaluate",
]

#: ``(metric key, column title)`` of the side-by-side table
COMPARE_COLUMNS = (
    ("model", "model"),
    ("nrmse_depth", "NRMSE depth"),
    ("nrmse_tau", "NRMSE tau"),
    ("coverage90_depth", "90% cov. depth"),
    ("coverage90_tau", "90% cov. tau"),
    ("n_signals", "n test"),
    ("params", "params"),
    ("train_seconds", "train s"),
)


@dataclass(frozen=True)
class Prediction:
    """``mean, lower, upper`` ``[N, 2]`` in physical units (depth mm, tau ns); model extras."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def _scale_of(net: nn.Module, config: SimulationConfig) -> TargetScaler:
    if isinstance(net, EvidenceMoE):
        return TargetScaler(net.scale_low, net.scale_high)  # type: ignore[arg-type]
    return TargetScaler.from_config(config)


@torch.no_grad()
def predict(
    net: nn.Module,
    ds: FLiDARDataset,
    level: float = 0.9,
    chunk: int = 4096,
    known: tuple[str, ...] = (),
    trained_on: SimulationConfig | None = None,
) -> Prediction:
    """Means and central ``level`` intervals of a trained network on ``ds`` (physical units).

    ``known``: parameter names the network was trained with as inputs (known-optics setting).
    ``trained_on``: the simulation config of the training data (its ranges scale the targets
    and the known inputs; default ``ds.config``, which is only right when ``ds`` was simulated
    over the training ranges: pass it for test sets outside them).
    """
    net.eval()
    train_config = trained_on or ds.config
    x = features(ds.signals, known_columns(ds.params, train_config, known))
    scaler = _scale_of(net, train_config)
    parts: dict[str, list[np.ndarray]] = {}

    def add(key: str, value: torch.Tensor | np.ndarray) -> None:
        parts.setdefault(key, []).append(
            value.double().numpy() if isinstance(value, torch.Tensor) else value
        )

    for s in range(0, x.shape[0], chunk):
        out = net(x[s : s + chunk])
        out = out.output if isinstance(out, MoEOutput) else out
        nig: NIG = out.nig if isinstance(out, EvidenceOutput) else out
        lo, hi = student_t_interval(nig, level)
        add("mean", nig.gamma)
        add("lower", lo)
        add("upper", hi)
        add("epistemic", nig.epistemic)
        if isinstance(out, EvidenceOutput):
            add("reliability", out.critic.reliability)
            add("expert_mean", out.experts.gamma)
            add("weights", out.weights)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    extras = {k: v for k, v in cat.items() if k not in ("mean", "lower", "upper")}
    if "expert_mean" in extras:
        extras["expert_mean"] = scaler.decode(extras["expert_mean"])
    extras["epistemic"] = extras["epistemic"] * scaler.span**2
    return Prediction(
        scaler.decode(cat["mean"]),
        scaler.decode(cat["lower"]),
        scaler.decode(cat["upper"]),
        extras,
    )


def from_lsq(res: LSQResult) -> Prediction:
    """The :class:`Prediction` of a least-squares fit."""
    return Prediction(res.mean, res.lower, res.upper, {"nfev": res.nfev.astype(float)})


def truth(ds: FLiDARDataset) -> np.ndarray:
    """``[N, 2]`` true (depth mm, tau ns)."""
    return np.stack([ds.column(t) for t in TARGETS], axis=1)


def metrics_of(pred: Prediction, ds: FLiDARDataset) -> dict[str, Any]:
    """:func:`~.metrics.score` plus, for EvidenceMoE, the critics' Spearman correlations."""
    y = truth(ds)
    m = score(y, pred.mean, pred.lower, pred.upper)
    if "reliability" in pred.extras:
        err = np.abs(pred.extras["expert_mean"] - y[:, None, :])
        for j, name in enumerate(("depth", "tau")):
            # reliability should be high where the expert's error is low
            ranks = ranking_scores(pred.extras["reliability"][:, :, j], err[:, :, j])
            m[f"critic_spearman_{name}"] = ranks["pooled"]
            m[f"critic_spearman_within_{name}"] = ranks["within"]
            m[f"critic_spearman_relative_{name}"] = ranks["relative"]
            m[f"critic_top1_{name}"] = ranks["top1"]
            total_err = np.abs(pred.mean[:, j] - y[:, j])
            m[f"uncertainty_spearman_{name}"] = spearman(pred.extras["epistemic"][:, j], total_err)
        m["expert_weight_mean"] = pred.extras["weights"].mean(0).tolist()
    return m


def write_plots(directory: Path, model: str, pred: Prediction, ds: FLiDARDataset) -> None:
    """``pred_vs_true.png``, ``nrmse_vs_depth_photons.png`` (and EvidenceMoE's ``expert_wins.png``).

    ``expert_wins.png``: which expert is closest, and which the critics rank first, over depth
    x lifetime (the experts' temporal specialisation).
    """
    y = truth(ds)
    plot_pred_vs_true(
        y,
        pred.mean,
        pred.lower,
        pred.upper,
        Path(directory) / "pred_vs_true.png",
        f"{model}: predicted vs true (90% intervals)",
    )
    plot_nrmse_vs(
        y,
        {model: pred.mean},
        ds.column("depth_mm"),
        ds.signals.sum(1),
        Path(directory) / "nrmse_vs_depth_photons.png",
        f"{model}: NRMSE vs depth and photon count",
    )
    if "reliability" in pred.extras:
        plot_expert_wins(
            y,
            pred.extras["expert_mean"],
            pred.extras["reliability"],
            tuple(WINDOWS),
            Path(directory) / "expert_wins.png",
            f"{model}: which expert wins where",
        )


def load_model(run_dir: Path) -> nn.Module:
    """The network saved by ``train`` in ``run_dir/checkpoints/model.pt``."""
    path = Path(run_dir) / "checkpoints" / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (the run directory is incomplete).")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    try:
        net = NETWORKS.create(ckpt.get("class", ""), **ckpt["kwargs"])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def evaluate(
    run_dir: Path,
    *,
    data: Path | None = None,
    n_test: int = 2000,
    out: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score a run directory of ``train`` on ``data`` (or a fresh simulated test set).

    Writes ``metrics.json`` and ``plots/`` into ``out`` (default ``<run_dir>/eval``).

    Args:
        run_dir: a run directory written by :func:`~.training.train`.
        data: a FLiDAR ``.npz`` with the run's bin count; default: ``n_test`` signals simulated
            over the run's ranges with a seed the training never used.
        n_test: simulated test signals (without ``data``).
        out: where to write (replaced atomically).
        progress: progress bar of the least-squares fit.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"{run_dir}: no such run directory (expected one written by `moesuite physics train`)."
        )
    config = read_json(run_dir / "config.json")
    model = config.get("model")
    MODELS.get(model)
    tc = EvidenceTrainConfig(**config["train_config"])
    sim = SimulationConfig.from_dict(config["simulation"])
    if data is not None:
        ds = load_npz(data)
        if ds.config.n_bins != sim.n_bins:
            raise ValueError(
                f"{data}: {ds.config.n_bins} bins but the run was trained on {sim.n_bins}; "
                "the bin counts must match."
            )
    else:
        ds = simulate_dataset(n_test, sim, seed=int(config.get("seed", 0)) + 12345)
    if model == "evidence-lsq":
        res, scored = MODELS.create(model, d_in=0, config=sim, tc=tc).fit(ds, progress)
        pred = from_lsq(res)
    else:
        pred, scored = predict(load_model(run_dir), ds, known=tc.known, trained_on=sim), ds
    source = str(data) if data else f"simulated n={n_test}"
    metrics = {"split": "test", "data": source, **metrics_of(pred, scored)}
    target = Path(out) if out is not None else run_dir / "eval"
    with run_directory(target, overwrite=True) as res_dir:
        res_dir.write_metrics(metrics)
        write_plots(res_dir.path / "plots", model, pred, scored)
    return metrics
