"""``moesuite physics``: simulate FLiDAR data, train EvidenceMoE / MixER and their baselines, evaluate.

Examples::

    moesuite physics simulate --n 2000 --out runs/flidar-data
    moesuite physics train evidence --data runs/flidar-data/dataset.npz --epochs 5
    moesuite physics train evidence-dense              # baselines: evidence-dense, evidence-softmax, evidence-lsq
    moesuite physics train mixer --families lotka_volterra,van_der_pol,lorenz
    moesuite physics eval runs/physics/evidence/<timestamp>
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moesuite.core.cli.common import (
    DataOption,
    EpochsOption,
    OutOption,
    QuietOption,
    SeedOption,
    typer_factory,
)

app = typer_factory("physics", "Physics MoE systems: EvidenceMoE (fluorescence LiDAR) and MixER (families of ODEs).")

ThreadsOption = Annotated[
    int, typer.Option("--threads", min=1, help="torch threads (1 is fastest for these small models on a shared CPU).")
]

EVIDENCE_MODELS = ("evidence", "evidence-dense", "evidence-softmax", "evidence-lsq")
MIXER_MODELS = ("mixer", "mixer-shared", "mixer-gradgate")


@app.command()
def simulate(
    n: Annotated[int, typer.Option("--n", min=1, help="Number of histograms.")] = 2000,
    n_bins: Annotated[int, typer.Option("--n-bins", help="TCSPC bins.")] = 256,
    bin_width_ns: Annotated[float, typer.Option("--bin-width-ns", help="Bin width in ns.")] = 0.0488,
    irf: Annotated[Path | None, typer.Option("--irf", help="Measured IRF (.npy or text, n_bins values).")] = None,
    independent_emission: Annotated[bool, typer.Option("--independent-emission",
                                                       help="Sample emission optics independently.")] = False,
    seed: SeedOption = 0,
    out: OutOption = None,
) -> None:
    """Simulate a FLiDAR dataset (dataset.npz) with a plot of example histograms."""
    from moesuite.core.training import default_run_path, run_directory
    from moesuite.physics.evidence.plots import plot_example_histograms
    from moesuite.physics.flidar import SimulationConfig, load_irf, save_npz, simulate_dataset

    config = SimulationConfig(n_bins=n_bins, bin_width_ns=bin_width_ns, independent_emission=independent_emission)
    irf_arr = load_irf(irf, n_bins) if irf is not None else None
    final = out or default_run_path("runs", "physics", "simulate")
    with run_directory(final) as run:
        ds = simulate_dataset(n, config, seed=seed, irf=irf_arr)
        save_npz(ds, run.file("dataset.npz"))
        run.write_config({"command": "simulate", "n": n, "seed": seed, "irf": str(irf) if irf else None,
                          "simulation": config.to_dict()})
        totals = ds.signals.sum(1)
        run.write_metrics({"n_signals": len(ds), "photons_mean": float(totals.mean()),
                           "photons_min": float(totals.min()), "photons_max": float(totals.max()),
                           "depth_mm_range": [float(ds.column("depth_mm").min()), float(ds.column("depth_mm").max())],
                           "tau_ns_range": [float(ds.column("tau_ns").min()), float(ds.column("tau_ns").max())]})
        plot_example_histograms(ds, run.plot_path("example_histograms"))
    typer.echo(f"wrote {len(ds)} histograms to {final / 'dataset.npz'}")


@app.command()
def train(
    model: Annotated[str, typer.Argument(help=f"One of {', '.join(EVIDENCE_MODELS + MIXER_MODELS)}.")],
    data: DataOption = None,
    epochs: EpochsOption = None,
    n_train: Annotated[int | None, typer.Option("--n-train", min=1,
                                                help="Simulated training signals (evidence models).")] = None,
    known_optics: Annotated[bool, typer.Option("--known-optics",
                                               help="Give the estimators each signal's optics (evidence models).")] = False,
    expert_inputs: Annotated[str | None, typer.Option("--expert-inputs",
                                                      help="EvidenceMoE experts read the 'full' signal or their 'window'.")] = None,
    families: Annotated[str | None, typer.Option("--families", help="ODE families, comma-separated or 'all' (mixer models).")] = None,
    num_experts: Annotated[int | None, typer.Option("--num-experts", min=1, help="MixER experts (mixer models).")] = None,
    seed: SeedOption = 0,
    out: OutOption = None,
    quiet: QuietOption = False,
    threads: ThreadsOption = 1,
) -> None:
    """Train EvidenceMoE, MixER or one of their baselines; writes a run directory."""
    from moesuite.core.training import torch_threads

    with torch_threads(threads):
        path = _train(model, data, epochs, n_train, known_optics, expert_inputs, families, num_experts, seed, out, quiet)
    _report(path)


def _train(model: str, data: Path | None, epochs: int | None, n_train: int | None, known_optics: bool,
           expert_inputs: str | None, families: str | None, num_experts: int | None, seed: int, out: Path | None,
           quiet: bool) -> Path:
    if model in MIXER_MODELS:
        if n_train is not None or known_optics or expert_inputs is not None:
            raise ValueError(f"--n-train/--known-optics/--expert-inputs apply to the evidence models, not {model!r}.")
        from moesuite.physics.mixer import api as mixer_api

        path = mixer_api.train(model, families=families, epochs=epochs, seed=seed, out=out, data=data,
                               progress=not quiet, num_experts=num_experts)
    elif model in EVIDENCE_MODELS:
        if families is not None or num_experts is not None:
            raise ValueError(f"--families/--num-experts apply to the mixer models, not {model!r}.")
        from moesuite.physics.evidence import api as evidence_api

        path = evidence_api.train(model, data=data, epochs=epochs, n_train=n_train, seed=seed, out=out,
                                  progress=not quiet, known_optics=known_optics, expert_inputs=expert_inputs)
    else:
        raise ValueError(f"unknown model {model!r}; expected one of {list(EVIDENCE_MODELS + MIXER_MODELS)}.")
    return path


@app.command("eval")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `moesuite physics train`.")],
    data: DataOption = None,
    n_test: Annotated[int, typer.Option("--n-test", min=1, help="Simulated test signals (evidence, no --data).")] = 2000,
    out: OutOption = None,
    threads: ThreadsOption = 1,
) -> None:
    """Evaluate a run directory (NRMSE and coverage, or MSE and ARI); writes <run>/eval."""
    from moesuite.core.training import read_json, torch_threads

    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory (expected one written by `moesuite physics train`).")
    model = read_json(Path(run_dir) / "config.json").get("model")
    if model in MIXER_MODELS:
        from moesuite.physics.mixer import api as mixer_api

        with torch_threads(threads):
            metrics = mixer_api.evaluate(run_dir, data=data, out=out)
        keys = ("mse_in_domain", "mse_adapt", "ari")
    elif model in EVIDENCE_MODELS:
        from moesuite.physics.evidence import api as evidence_api

        with torch_threads(threads):
            metrics = evidence_api.evaluate(run_dir, data=data, n_test=n_test, out=out)
        keys = ("nrmse_depth", "nrmse_tau", "coverage90_depth", "coverage90_tau")
    else:
        raise ValueError(f"{run_dir}/config.json: model {model!r} is not a physics model.")
    typer.echo("  ".join(f"{k}={metrics[k]:.4f}" for k in keys))
    typer.echo(f"results in {out or Path(run_dir) / 'eval'}")


def _report(path: Path) -> None:
    from moesuite.core.training import read_json

    metrics = read_json(path / "metrics.json")
    keys = [k for k in ("nrmse_depth", "nrmse_tau", "coverage90_depth", "coverage90_tau", "mse_in_domain",
                        "mse_adapt", "ari") if k in metrics]
    typer.echo("  ".join(f"{k}={metrics[k]:.4f}" for k in keys))
    typer.echo(f"run directory: {path}")


def main() -> None:
    """Entry point of the ``moesuite-physics`` script."""
    app()
