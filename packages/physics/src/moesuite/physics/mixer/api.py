"""Public entry points used by the ``moesuite physics`` CLI, the demo and the benchmarks.

* :func:`train` trains MixER or a baseline on generated (or given) ODE families and writes an
  atomic run directory (``config.json``, ``metrics.json``, ``checkpoints/model.pt``, logs,
  ``plots/*.png``);
* :func:`evaluate` re-evaluates a run directory (optionally on another ``.npz`` of the same
  environments) and writes ``eval/``;
* :func:`demo_rows` is the quick side-by-side for ``moesuite demo``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from moesuite.core.training import (
    default_run_path,
    make_trainer,
    read_json,
    run_directory,
    seed_everything,
)
from moesuite.physics.mixer.adapt import AdaptConfig
from moesuite.physics.mixer.baselines import MODELS, model_config
from moesuite.physics.mixer.evaluate import Evaluation, evaluate_model
from moesuite.physics.mixer.model import MixERConfig, MixERModel
from moesuite.physics.mixer.plots import plot_expert_assignment, plot_trajectories
from moesuite.physics.mixer.training import MixERSystem, TrainConfig, TrajectoryBatch, make_loader
from moesuite.physics.odes import (
    GenerationConfig,
    ODEDataset,
    generate,
    load_dataset,
    parse_families,
)

__all__ = [
    "MODELS",
    "QUICK_FAMILIES",
    "QUICK_EPOCHS",
    "default_num_experts",
    "prepare_data",
    "train_model",
    "train",
    "evaluate",
    "write_plots",
    "demo_rows",
]

#: families of the quick default (one 3-D chaotic, two 2-D oscillators)
QUICK_FAMILIES = "lotka_volterra,van_der_pol,lorenz"
#: epochs of the quick default (each epoch is ``steps_per_epoch`` outer steps)
QUICK_EPOCHS = 20


def default_num_experts(num_families: int) -> int:
    """Experts of MixER: one per family, and 3 for a single family (the paper's high-data caveat)."""
    return num_families if num_families > 1 else 3


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {list(MODELS)}.")


def prepare_data(families: str | None, data: Path | None, seed: int = 0, **generation: Any) -> tuple[ODEDataset, dict[str, Any]]:
    """The dataset to train on and a JSON record of where it came from.

    With ``data``, the ``.npz`` is loaded and ``families`` (``None`` or ``"all"``: all of the
    file's families) selects some of its families. Otherwise the families are generated
    (``None``: :data:`QUICK_FAMILIES`) with :class:`~moesuite.physics.odes.GenerationConfig`
    fields in ``generation``.
    """
    if data is not None:
        ds = load_dataset(data)
        if families not in (None, "all"):
            wanted = [f.strip() for f in str(families).split(",") if f.strip()]
            ds = ds.subset(wanted)
        return ds, {"path": str(Path(data).resolve()), "families": list(ds.families)}
    gen = GenerationConfig(families=parse_families(families or QUICK_FAMILIES), seed=seed, **generation)
    record = dataclasses.asdict(gen)
    record["families"] = list(gen.families)
    return generate(gen), {"path": None, "generation": record}


def _dataset_from_record(record: dict[str, Any]) -> ODEDataset:
    if record.get("path"):
        ds = load_dataset(record["path"])
        return ds.subset(record["families"]) if record.get("families") else ds
    gen = dict(record["generation"])
    gen["families"] = tuple(gen["families"])
    return generate(GenerationConfig(**gen))


def train_model(
    model: str,
    dataset: ODEDataset,
    *,
    num_experts: int | None = None,
    train_config: TrainConfig | None = None,
    model_overrides: dict[str, Any] | None = None,
    run_path: Path | None = None,
    progress: bool = False,
) -> tuple[MixERModel, MixERSystem, float]:
    """Build and train one model on ``dataset.train`` with the core's trainer.

    Returns ``(model, system, seconds)``.
    """
    _check_model(model)
    tc = train_config or TrainConfig()
    E = num_experts or default_num_experts(len(dataset.families))
    seed_everything(tc.seed)
    cfg = model_config(model, state_dim=dataset.state_dim, num_envs=dataset.train.num_envs, num_experts=E,
                       **(model_overrides or {}))
    net = MixERModel(cfg)
    system = MixERSystem(net, tc)
    batch = TrajectoryBatch.from_numpy(dataset.train.fit, dataset.train.dt, dataset.train.mask)
    trainer = make_trainer(run_path, max_epochs=tc.epochs, seed=tc.seed, progress=progress, aux_loss=False,
                           monitor="train/mse_epoch", log_every_n_steps=tc.steps_per_epoch)
    start = time.perf_counter()
    trainer.fit(system, make_loader(batch, tc.steps_per_epoch))
    return net, system, time.perf_counter() - start


def write_plots(directory: Path, dataset: ODEDataset, evaluation: Evaluation, model: str) -> list[Path]:
    """``trajectories_in_domain.png``, ``trajectories_adapt.png`` and ``expert_assignment.png``."""
    directory = Path(directory)
    return [
        plot_trajectories(directory / "trajectories_in_domain.png", dataset.families, dataset.train,
                          evaluation.pred_test, "test", f"{model}: in-domain test (new initial conditions)"),
        plot_trajectories(directory / "trajectories_adapt.png", dataset.families, dataset.adapt,
                          evaluation.pred_adapt, "test", f"{model}: adapted to unseen environments"),
        plot_expert_assignment(directory / "expert_assignment.png", dataset.families, dataset.train.family,
                               evaluation.experts, evaluation.metrics["num_experts"],
                               f"{model}: expert chosen per training environment (ARI {evaluation.metrics['ari']:.2f})"),
    ]


def train(
    model: str,
    *,
    families: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    data: Path | None = None,
    progress: bool = True,
    num_experts: int | None = None,
) -> Path:
    """Train ``model`` and write a run directory; returns its path.

    Args:
        model: one of :data:`MODELS` (``mixer``, ``mixer-shared``, ``mixer-gradgate``).
        families: comma-separated family names or ``"all"``; ``None``: :data:`QUICK_FAMILIES`
            (or, with ``data``, every family in the file).
        epochs: training epochs (``None``: :data:`QUICK_EPOCHS`).
        seed: seeds data generation, initialisation and the gate updates.
        out: run directory to create (default ``runs/physics/<model>/<timestamp>``).
        data: an ``.npz`` written by :func:`moesuite.physics.odes.save_dataset`.
        progress: show the progress bar.
        num_experts: experts of MixER (default: one per family).

    Raises:
        ValueError: unknown model or family, bad epochs, malformed data (clear message).
    """
    _check_model(model)
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
    dataset, data_record = prepare_data(families, data, seed)
    E = num_experts or default_num_experts(len(dataset.families))
    tc = TrainConfig(epochs=epochs or QUICK_EPOCHS, seed=seed)
    adapt = AdaptConfig(seed=seed, starts=E)  # the same starts for MixER and both baselines
    final = Path(out) if out is not None else default_run_path("runs", "physics", model)
    with run_directory(final) as run:
        net, system, seconds = train_model(model, dataset, num_experts=E, train_config=tc, run_path=run.path,
                                           progress=progress)
        torch.save({"state_dict": net.state_dict(), "config": dataclasses.asdict(net.config)},
                   run.checkpoint_dir / "model.pt")
        start = time.perf_counter()
        evaluation = evaluate_model(net, dataset, adapt)
        metrics = dict(evaluation.metrics, train_seconds=round(seconds, 2),
                       eval_seconds=round(time.perf_counter() - start, 2), gate_updates=system.gate_updates)
        run.write_config({
            "model": model, "domain": "physics", "task": "parametric ODE families (MixER)",
            "families": list(dataset.families), "num_experts": E, "seed": seed,
            "model_config": dataclasses.asdict(net.config), "train_config": dataclasses.asdict(tc),
            "adapt_config": dataclasses.asdict(adapt), "data": data_record,
        })
        run.write_metrics(metrics)
        write_plots(run.path / "plots", dataset, evaluation, model)
    return final


def evaluate(run_dir: Path, *, data: Path | None = None, out: Path | None = None) -> dict[str, Any]:
    """Evaluate a run directory written by :func:`train`; writes ``metrics.json`` and plots.

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
        raise FileNotFoundError(f"{run_dir}: no such run directory (expected one written by `moesuite physics train`).")
    config = read_json(run_dir / "config.json")
    if config.get("model") not in MODELS:
        raise ValueError(f"{run_dir}/config.json: model {config.get('model')!r} is not a MixER model {list(MODELS)}.")
    ckpt_path = run_dir / "checkpoints" / "model.pt"
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{ckpt_path}: no such checkpoint (the run directory is incomplete).")
    if data is not None:
        dataset = load_dataset(data)
        if list(dataset.families) != list(config["families"]):
            dataset = dataset.subset(config["families"])
    else:
        dataset = _dataset_from_record(config["data"])
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    net = MixERModel(MixERConfig(**ckpt["config"]))
    net.load_state_dict(ckpt["state_dict"])
    adapt = AdaptConfig(**config.get("adapt_config", {}))
    start = time.perf_counter()
    evaluation = evaluate_model(net, dataset, adapt)
    metrics = dict(evaluation.metrics, eval_seconds=round(time.perf_counter() - start, 2))
    target = Path(out) if out is not None else run_dir / "eval"
    with run_directory(target, overwrite=True) as res:
        res.write_metrics(metrics)
        write_plots(res.path / "plots", dataset, evaluation, config["model"])
    return metrics


def demo_rows(out_dir: Path) -> list[dict[str, Any]]:
    """MixER vs both baselines on three small families; rows for ``moesuite demo``.

    Rows have keys ``domain, task, model, metric, value, seconds`` (three metrics per model:
    in-domain MSE, adaptation MSE, ARI). Plots go to ``out_dir/plots/mixer_*``.
    """
    out_dir = Path(out_dir)
    with torch.random.fork_rng():
        dataset, _ = prepare_data(QUICK_FAMILIES, None, 0, n_train_envs=4, n_adapt_envs=2, n_times=12)
        tc = TrainConfig(epochs=12, steps_per_epoch=10, curriculum=0.3, warmup=0.0)
        adapt = AdaptConfig(steps=100, starts=default_num_experts(len(dataset.families)))
        rows = []
        for model in MODELS:
            net, _system, seconds = train_model(model, dataset, train_config=tc)
            start = time.perf_counter()
            evaluation = evaluate_model(net, dataset, adapt)
            seconds += time.perf_counter() - start
            plot_expert_assignment(out_dir / "plots" / f"mixer_expert_assignment_{model}.png", dataset.families,
                                   dataset.train.family, evaluation.experts, net.num_experts, f"{model} (demo)")
            task = f"ODE families ({', '.join(dataset.families)})"
            for metric, key in (("in-domain MSE", "mse_in_domain"), ("adaptation MSE", "mse_adapt"), ("family ARI", "ari")):
                rows.append({"domain": "physics", "task": task, "model": model, "metric": metric,
                             "value": round(float(evaluation.metrics[key]), 4), "seconds": round(seconds, 1)})
    return rows
