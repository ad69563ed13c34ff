"""Public entry points of the FLiDAR side: train, evaluate, predict, demo rows.

* :func:`train` fits EvidenceMoE or a baseline on simulated (or given) histograms with the core's
  trainer and writes an atomic run directory (``config.json``, ``metrics.json``,
  ``checkpoints/model.pt`` + Lightning's ``best.ckpt``, ``logs/``, ``plots/*.png``);
* :func:`evaluate` scores a run directory on a dataset and writes ``eval/``;
* :func:`fit_and_predict` is what the benchmark and the demo call (no run directory).

Models: ``evidence`` (EvidenceMoE), ``evidence-dense`` (one MLP, equal parameters),
``evidence-softmax`` (plain softmax-gated MoE, equal parameters), ``evidence-lsq`` (least-squares
fit of the forward model; nothing to train).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moesuite.core.training import (
    MoESystem,
    OptimConfig,
    default_run_path,
    make_trainer,
    read_json,
    run_directory,
    seed_everything,
)
from moesuite.physics.evidence.baselines import (
    DenseEvidential,
    SoftmaxMoE,
    dense_width_for,
    moe_width_for,
)
from moesuite.physics.evidence.critics import CRITIC_TARGETS
from moesuite.physics.evidence.data import (
    KNOWN_OPTICS,
    TargetScaler,
    features,
    known_columns,
    make_loader,
    to_batch,
)
from moesuite.physics.evidence.lsq import lsq_fit
from moesuite.physics.evidence.metrics import ranking_scores, score, spearman
from moesuite.physics.evidence.model import EvidenceMoE
from moesuite.physics.evidence.nig import NIG, student_t_interval
from moesuite.physics.evidence.plots import (
    plot_example_histograms,
    plot_nrmse_vs,
    plot_pred_vs_true,
)
from moesuite.physics.flidar import (
    TARGETS,
    FLiDARDataset,
    SimulationConfig,
    load_npz,
    simulate_dataset,
)

__all__ = ["MODELS", "TrainConfig", "Prediction", "build_model", "fit_model", "predict", "fit_and_predict", "metrics_of",
           "train", "evaluate", "load_model", "demo_rows"]

MODELS = ("evidence", "evidence-dense", "evidence-softmax", "evidence-lsq")
_CLASSES: dict[str, type[nn.Module]] = {"EvidenceMoE": EvidenceMoE, "DenseEvidential": DenseEvidential,
                                        "SoftmaxMoE": SoftmaxMoE}


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training settings (the quick defaults run in a few minutes on 2 CPU cores).

    Attributes:
        n_train: simulated training signals (ignored with ``--data``).
        n_val: validation signals (simulated, or split off ``--data``).
        epochs: training epochs.
        batch_size: signals per step.
        lr: peak AdamW learning rate (cosine schedule).
        seed: data, initialisation and batching seed.
        d_hidden: EvidenceMoE expert width; the baselines get the same parameter count.
        physics_weight: weight of EvidenceMoE's windowed physics loss.
        lsq_max_nfev: residual evaluations per least-squares fit.
        lsq_max_signals: signals fitted by least squares when scoring (it runs ~15/s).
        known_optics: the "known optics" setting: the estimators are given the optical
            properties, refractive index and IRF width of each signal (measured separately in
            practice); ``False`` (the default) leaves them as unknown nuisances.
        expert_inputs: EvidenceMoE's ``"full"`` (default) or ``"window"`` expert inputs.
        critic_target: the critics' training target, ``"argmin"`` (one-hot on the closest
            expert, default) or ``"softmin"`` (graded by relative error; see
            :func:`~moesuite.physics.evidence.critics.critic_loss`).
    """

    n_train: int = 6000
    n_val: int = 1000
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    d_hidden: int = 128
    physics_weight: float = 0.05
    lsq_max_nfev: int = 40
    lsq_max_signals: int = 300
    known_optics: bool = False
    expert_inputs: str = "full"
    critic_target: str = "argmin"

    @property
    def known(self) -> tuple[str, ...]:
        """Parameter names fed to the estimators."""
        return KNOWN_OPTICS if self.known_optics else ()

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "epochs", "batch_size", "d_hidden", "lsq_max_nfev", "lsq_max_signals"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}.")
        if self.expert_inputs not in ("full", "window"):
            raise ValueError(f"expert_inputs must be 'full' or 'window', got {self.expert_inputs!r}.")
        if self.critic_target not in CRITIC_TARGETS:
            raise ValueError(f"critic_target must be one of {CRITIC_TARGETS}, got {self.critic_target!r}.")
        if not self.lr > 0 or not self.physics_weight >= 0:
            raise ValueError(f"lr must be > 0 and physics_weight >= 0, got {self.lr!r}, {self.physics_weight!r}.")


@dataclass(frozen=True)
class Prediction:
    """``mean, lower, upper`` ``[N, 2]`` in physical units (depth mm, tau ns); model extras."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {list(MODELS)}.")


def build_model(model: str, d_in: int, config: SimulationConfig, tc: TrainConfig) -> nn.Module:
    """A fresh network for ``model`` (the baselines match EvidenceMoE's parameter count)."""
    _check_model(model)
    if model == "evidence-lsq":
        raise ValueError("evidence-lsq is a per-signal fit, not a network; use fit_and_predict/lsq_fit.")
    scaler = TargetScaler.from_config(config)
    moe = EvidenceMoE(d_in, config.to_dict(), scaler.low, scaler.high, d_hidden=tc.d_hidden,
                      physics_weight=tc.physics_weight, expert_inputs=tc.expert_inputs,
                      critic_target=tc.critic_target)
    if model == "evidence":
        return moe
    budget = sum(p.numel() for p in moe.parameters())
    if model == "evidence-dense":
        return DenseEvidential(d_in, dense_width_for(d_in, budget))
    return SoftmaxMoE(d_in, d_hidden=moe_width_for(d_in, budget))


def _step(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    return model.losses(*batch)


def fit_model(model: str, train_ds: FLiDARDataset, val_ds: FLiDARDataset, tc: TrainConfig,
              run_path: Path | None = None, progress: bool = False) -> tuple[nn.Module, float]:
    """Train ``model`` with the core's ``MoESystem``/``make_trainer``; returns ``(net, seconds)``.

    The weights of the best validation epoch are restored at the end.
    """
    seed_everything(tc.seed)
    scaler = TargetScaler.from_config(train_ds.config)
    net = build_model(model, train_ds.config.n_bins + 1 + len(tc.known), train_ds.config, tc)
    train_loader = make_loader(to_batch(train_ds, scaler, tc.known), tc.batch_size, shuffle=True, seed=tc.seed)
    val_loader = make_loader(to_batch(val_ds, scaler, tc.known), 1024, shuffle=False)
    system = MoESystem(net, _step, OptimConfig(lr=tc.lr, schedule="cosine", weight_decay=1e-4), max_epochs=tc.epochs)
    trainer = make_trainer(run_path, max_epochs=tc.epochs, seed=tc.seed, progress=progress, monitor="val/loss",
                           gradient_clip_val=1.0, log_every_n_steps=20)
    start = time.perf_counter()
    trainer.fit(system, train_loader, val_loader)
    seconds = time.perf_counter() - start
    best = getattr(trainer.checkpoint_callback, "best_model_path", "") if run_path is not None else ""
    if best:
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        net.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    net.eval()
    return net, seconds


@torch.no_grad()
def predict(net: nn.Module, ds: FLiDARDataset, level: float = 0.9, chunk: int = 4096,
            known: tuple[str, ...] = ()) -> Prediction:
    """Means and central ``level`` intervals of a trained network on ``ds`` (physical units).

    ``known``: parameter names the network was trained with as inputs (known-optics setting).
    """
    net.eval()
    x = features(ds.signals, known_columns(ds.params, ds.config, known))
    low, high = _scale_of(net, ds.config)
    scaler = TargetScaler(low, high)
    parts: dict[str, list[np.ndarray]] = {}
    for s in range(0, x.shape[0], chunk):
        out = net(x[s : s + chunk])
        nig: NIG = out.nig if hasattr(out, "nig") else out
        lo, hi = student_t_interval(nig, level)
        parts.setdefault("mean", []).append(nig.gamma.double().numpy())
        parts.setdefault("lower", []).append(lo)
        parts.setdefault("upper", []).append(hi)
        parts.setdefault("epistemic", []).append(nig.epistemic.double().numpy())
        if hasattr(out, "critic"):
            parts.setdefault("reliability", []).append(out.critic.reliability.double().numpy())
            parts.setdefault("expert_mean", []).append(out.experts.gamma.double().numpy())
            parts.setdefault("weights", []).append(out.weights.double().numpy())
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    extras = {k: v for k, v in cat.items() if k not in ("mean", "lower", "upper")}
    if "expert_mean" in extras:
        extras["expert_mean"] = scaler.decode(extras["expert_mean"])
    extras["epistemic"] = extras["epistemic"] * scaler.span**2
    return Prediction(scaler.decode(cat["mean"]), scaler.decode(cat["lower"]), scaler.decode(cat["upper"]), extras)


def _scale_of(net: nn.Module, config: SimulationConfig) -> tuple[tuple[float, float], tuple[float, float]]:
    if isinstance(net, EvidenceMoE):
        return net.scale_low, net.scale_high  # type: ignore[return-value]
    s = TargetScaler.from_config(config)
    return s.low, s.high


def _lsq_predict(ds: FLiDARDataset, tc: TrainConfig, progress: bool) -> tuple[Prediction, FLiDARDataset]:
    sub = ds.subset(slice(0, min(len(ds), tc.lsq_max_signals)))
    res = lsq_fit(sub, max_nfev=tc.lsq_max_nfev, progress=progress, known_optics=tc.known_optics)
    return Prediction(res.mean, res.lower, res.upper, {"nfev": res.nfev.astype(float)}), sub


def _truth(ds: FLiDARDataset) -> np.ndarray:
    return np.stack([ds.column(t) for t in TARGETS], axis=1)


def metrics_of(pred: Prediction, ds: FLiDARDataset) -> dict[str, Any]:
    """:func:`~.metrics.score` plus, for EvidenceMoE, the critics' Spearman correlations."""
    y = _truth(ds)
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


def fit_and_predict(model: str, train_ds: FLiDARDataset, val_ds: FLiDARDataset, test_ds: FLiDARDataset,
                    tc: TrainConfig, progress: bool = False) -> tuple[Prediction, FLiDARDataset, dict[str, Any]]:
    """Train (unless least squares) and predict on ``test_ds``; returns ``(pred, scored_ds, info)``."""
    _check_model(model)
    if model == "evidence-lsq":
        pred, sub = _lsq_predict(test_ds, tc, progress)
        return pred, sub, {"train_seconds": 0.0, "params": 3 if tc.known_optics else 5}
    net, seconds = fit_model(model, train_ds, val_ds, tc, None, progress)
    start = time.perf_counter()
    pred = predict(net, test_ds, known=tc.known)
    return pred, test_ds, {"train_seconds": seconds, "predict_seconds": time.perf_counter() - start,
                           "params": sum(p.numel() for p in net.parameters())}


def _prepare(data: Path | None, tc: TrainConfig) -> tuple[FLiDARDataset, FLiDARDataset, dict[str, Any]]:
    if data is not None:
        ds = load_npz(data)
        if len(ds) < 4:
            raise ValueError(f"{data}: {len(ds)} signals is too few to train on (need at least 4).")
        perm = np.random.default_rng(tc.seed).permutation(len(ds))
        n_val = max(1, min(tc.n_val, len(ds) // 5))
        return (ds.subset(perm[n_val:]), ds.subset(perm[:n_val]),
                {"path": str(Path(data).resolve()), "n_train": len(ds) - n_val, "n_val": n_val})
    cfg = SimulationConfig()
    train_ds = simulate_dataset(tc.n_train, cfg, seed=tc.seed)
    val_ds = simulate_dataset(tc.n_val, cfg, seed=tc.seed + 1)
    return train_ds, val_ds, {"path": None, "simulation": cfg.to_dict(), "n_train": tc.n_train, "n_val": tc.n_val}


def _write_plots(directory: Path, model: str, pred: Prediction, ds: FLiDARDataset) -> None:
    y = _truth(ds)
    plot_pred_vs_true(y, pred.mean, pred.lower, pred.upper, directory / "pred_vs_true.png",
                      f"{model}: predicted vs true (90% intervals)")
    plot_nrmse_vs(y, {model: pred.mean}, ds.column("depth_mm"), ds.signals.sum(1), directory / "nrmse_vs_depth_photons.png",
                  f"{model}: NRMSE vs depth and photon count")


def train(model: str, *, data: Path | None = None, epochs: int | None = None, n_train: int | None = None,
          seed: int = 0, out: Path | None = None, progress: bool = True, **overrides: Any) -> Path:
    """Train ``model`` (one of :data:`MODELS`) and write a run directory; returns its path.

    Args:
        model: ``evidence``, ``evidence-dense``, ``evidence-softmax`` or ``evidence-lsq``.
        data: a FLiDAR ``.npz`` (``moesuite physics simulate``); a validation split is held out.
            Default: simulate ``n_train`` + ``n_val`` signals over the default ranges.
        epochs: training epochs (default :class:`TrainConfig`'s).
        n_train: simulated training signals.
        seed: seed of the data, initialisation and batching.
        out: run directory (default ``runs/physics/<model>/<timestamp>``).
        progress: show progress.
        **overrides: other :class:`TrainConfig` fields (``None`` values are ignored).
    """
    _check_model(model)
    fields = {k: v for k, v in dict(overrides, epochs=epochs, n_train=n_train).items() if v is not None}
    unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; expected TrainConfig fields.")
    tc = TrainConfig(**{**fields, "seed": seed})
    train_ds, val_ds, record = _prepare(data, tc)  # validates the data before anything is written
    final = Path(out) if out is not None else default_run_path("runs", "physics", model)
    with run_directory(final) as run:
        if model == "evidence-lsq":
            pred, scored = _lsq_predict(val_ds, tc, progress)
            info: dict[str, Any] = {"train_seconds": 0.0}
            run.write_json("checkpoints/model.json", {"model": model, "note": "least squares has no weights"})
        else:
            net, seconds = fit_model(model, train_ds, val_ds, tc, run.path, progress)
            torch.save({"class": type(net).__name__, "kwargs": net.init_kwargs(), "state_dict": net.state_dict()},
                       run.checkpoint_dir / "model.pt")
            pred, scored = predict(net, val_ds, known=tc.known), val_ds
            info = {"train_seconds": round(seconds, 2), "params": sum(p.numel() for p in net.parameters())}
        metrics = {"split": "validation", **metrics_of(pred, scored), **info}
        run.write_config({"model": model, "domain": "physics", "task": "FLiDAR depth and lifetime (EvidenceMoE)",
                          "seed": seed, "train_config": dataclasses.asdict(tc),
                          "simulation": train_ds.config.to_dict(), "data": record})
        run.write_metrics(metrics)
        _write_plots(run.path / "plots", model, pred, scored)
        plot_example_histograms(val_ds, run.plot_path("example_histograms"))
    return final


def load_model(run_dir: Path) -> nn.Module:
    """The network saved by :func:`train` in ``run_dir/checkpoints/model.pt``."""
    path = Path(run_dir) / "checkpoints" / "model.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (the run directory is incomplete).")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cls = _CLASSES.get(ckpt.get("class", ""))
    if cls is None:
        raise ValueError(f"{path}: unknown model class {ckpt.get('class')!r}; expected one of {list(_CLASSES)}.")
    net = cls(**ckpt["kwargs"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def evaluate(run_dir: Path, *, data: Path | None = None, n_test: int = 2000, out: Path | None = None,
             progress: bool = False) -> dict[str, Any]:
    """Score a run directory of :func:`train` on ``data`` (or a fresh simulated test set).

    Writes ``metrics.json`` and ``plots/`` into ``out`` (default ``<run_dir>/eval``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory (expected one written by `moesuite physics train`).")
    config = read_json(run_dir / "config.json")
    model = config.get("model")
    _check_model(model)
    tc = TrainConfig(**config["train_config"])
    sim = SimulationConfig.from_dict(config["simulation"])
    if data is not None:
        ds = load_npz(data)
        if ds.config.n_bins != sim.n_bins:
            raise ValueError(f"{data}: {ds.config.n_bins} bins but the run was trained on {sim.n_bins}; "
                             "the bin counts must match.")
    else:
        ds = simulate_dataset(n_test, sim, seed=int(config.get("seed", 0)) + 12345)
    if model == "evidence-lsq":
        pred, scored = _lsq_predict(ds, tc, progress)
    else:
        pred, scored = predict(load_model(run_dir), ds, known=tc.known), ds
    metrics = {"split": "test", "data": str(data) if data else f"simulated n={n_test}", **metrics_of(pred, scored)}
    target = Path(out) if out is not None else run_dir / "eval"
    with run_directory(target, overwrite=True) as res:
        res.write_metrics(metrics)
        _write_plots(res.path / "plots", model, pred, scored)
    return metrics


def demo_rows(out_dir: Path, seed: int = 0) -> list[dict[str, Any]]:
    """EvidenceMoE vs the dense baseline on a small simulated set (rows for ``moesuite demo``)."""
    out_dir = Path(out_dir)
    tc = TrainConfig(n_train=2500, n_val=500, epochs=6, seed=seed)
    cfg = SimulationConfig()
    train_ds = simulate_dataset(tc.n_train, cfg, seed=seed)
    val_ds = simulate_dataset(tc.n_val, cfg, seed=seed + 1)
    test_ds = simulate_dataset(1000, cfg, seed=seed + 2)
    rows = []
    with torch.random.fork_rng():
        for model in ("evidence", "evidence-dense"):
            start = time.perf_counter()
            pred, scored, info = fit_and_predict(model, train_ds, val_ds, test_ds, tc)
            seconds = round(time.perf_counter() - start, 1)
            m = metrics_of(pred, scored)
            plot_pred_vs_true(_truth(scored), pred.mean, pred.lower, pred.upper,
                              out_dir / "plots" / f"flidar_pred_vs_true_{model}.png", f"{model} (demo)")
            task = "FLiDAR depth & lifetime (2.5k simulated, 6 epochs)"
            for metric, key in (("NRMSE depth", "nrmse_depth"), ("NRMSE lifetime", "nrmse_tau"),
                                ("90% coverage depth", "coverage90_depth")):
                rows.append({"domain": "physics", "task": task, "model": model, "metric": metric,
                             "value": round(float(m[key]), 4), "seconds": seconds,
                             "note": f"{info['params']} params"})
    return rows
