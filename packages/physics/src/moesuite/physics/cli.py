"""``moesuite physics``: simulate FLiDAR data, train, evaluate and compare EvidenceMoE and MixER.

Two systems share the app; a model name says which one a command is about (``list`` shows
them): the FLiDAR models (EvidenceMoE and its baselines, on fluorescence-LiDAR histograms) and
the ODE models (MixER and its baselines, on families of ODEs). Examples::

    moesuite physics list
    moesuite physics simulate --n 2000 --out runs/flidar-data
    moesuite physics train evidence --data runs/flidar-data/dataset.npz --epochs 5
    moesuite physics train mixer --families lotka_volterra,van_der_pol,lorenz
    moesuite physics train evidence --resume runs/physics/evidence/<timestamp>
    moesuite physics eval runs/physics/evidence/<timestamp>
    moesuite physics compare --model evidence --model evidence-dense
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from moesuite.core.cli.common import (
    DeviceOption,
    DevicesOption,
    EpochsOption,
    ExpertsOption,
    ModelArg,
    ModelsOption,
    QuietOption,
    ResumeOption,
    RunArg,
    SeedOption,
    StrategyOption,
    data_option,
    lightning_kwargs,
    out_option,
    typer_factory,
)

app = typer_factory(
    "physics",
    "Physics MoE systems: EvidenceMoE (fluorescence LiDAR) and MixER (families of ODEs).",
)

#: the two systems, in the order ``list`` prints them
SYSTEMS = ("evidence", "mixer")
_SYSTEM_TITLES = {
    "evidence": "FLiDAR models (EvidenceMoE and its baselines; data: `simulate`)",
    "mixer": "ODE models (MixER and its baselines; data: the ODE families below)",
}

ThreadsOption = Annotated[
    int,
    typer.Option(
        "--threads",
        min=1,
        help="torch threads while the command runs (default 1: these small models run "
        "fastest on one thread of a shared CPU).",
    ),
]
FamiliesOption = Annotated[
    str | None,
    typer.Option(
        "--families",
        help="ODE models: families, comma-separated or 'all' (`list` shows them; default: "
        "three of them, or every family of --data), or 'odebench2d' (the MixER authors' ten "
        "ODEBench-2D families on their environment grid).",
    ),
]
NTrainOption = Annotated[
    int | None,
    typer.Option("--n-train", min=1, help="FLiDAR models: simulated training signals."),
]
KnownOpticsOption = Annotated[
    bool,
    typer.Option(
        "--known-optics",
        help="FLiDAR models: also give the estimators each signal's optics and IRF width.",
    ),
]
ExpertInputsOption = Annotated[
    str | None,
    typer.Option(
        "--expert-inputs",
        help="FLiDAR models: EvidenceMoE's early and late experts read only their 'window' "
        "of the signal (default) or the 'full' signal.",
    ),
]


#: ``simulate``'s range options: flag -> (simulation parameter, what it is, default range)
RANGE_OPTIONS = {
    "--depth": ("depth_mm", "the inclusion depth, mm", "1,20"),
    "--lifetime": ("tau_ns", "the fluorescence lifetime, ns", "0.3,2"),
    "--absorption": ("mua_ex", "the absorption coefficient mu_a, 1/mm", "0.005,0.05"),
    "--scattering": ("musp_ex", "the reduced scattering coefficient mu_s', 1/mm", "0.5,2"),
    "--refractive-index": ("n", "the refractive index", "1.33,1.44"),
    "--irf-fwhm": ("irf_fwhm_ns", "the IRF width (FWHM), ns", "0.1,0.3"),
    "--photons": ("photons", "the photon count, sampled log-uniformly", "1000,100000"),
    "--background": ("background", "the uniform background fraction", "0,0.05"),
}


def _range_option(flag: str) -> Any:
    _, what, default = RANGE_OPTIONS[flag]
    text = f"Sampling range of {what} (default {default})."
    return Annotated[str | None, typer.Option(flag, metavar="LO,HI", help=text)]


def parse_ranges(given: dict[str, str | None]) -> dict[str, tuple[float, float]]:
    """``{"--depth": "1,20", ...}`` -> ``{"depth_mm": (1.0, 20.0), ...}`` (unset ones skipped).

    Examples:
        >>> parse_ranges({"--depth": "1, 25", "--photons": None})
        {'depth_mm': (1.0, 25.0)}
    """
    out = {}
    for flag, text in given.items():
        if text is None:
            continue
        try:
            lo, hi = (float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(
                f"{flag}: expected LO,HI (two numbers separated by a comma), got {text!r}."
            ) from None
        if not lo <= hi:
            raise ValueError(f"{flag}: LO must not exceed HI, got {text!r}.")
        out[RANGE_OPTIONS[flag][0]] = (lo, hi)
    return out


DepthRange = _range_option("--depth")
LifetimeRange = _range_option("--lifetime")
AbsorptionRange = _range_option("--absorption")
ScatteringRange = _range_option("--scattering")
IndexRange = _range_option("--refractive-index")
IRFRange = _range_option("--irf-fwhm")
PhotonsRange = _range_option("--photons")
BackgroundRange = _range_option("--background")

SimulateOut = out_option("Run directory to create (default: runs/physics/simulate/<timestamp>).")
TrainData = data_option(
    "Training data: a FLiDAR .npz (`simulate`) or an ODE-families .npz; "
    "generated when omitted (a validation split is held out of FLiDAR data)."
)
TrainOut = out_option("Run directory to create (default: runs/physics/<model>/<timestamp>).")
EvalData = data_option(
    "Data to score the run on: a FLiDAR .npz with the run's bin count, or an ODE .npz "
    "with the run's training environments (default: a fresh simulated FLiDAR test set, "
    "or the run's own ODE data)."
)
EvalOut = out_option("Where to write the results (default: <RUN>/eval).")
CompareData = data_option(
    "Data for every model: a FLiDAR .npz (a fifth is the test set) or an ODE-families "
    ".npz; generated when omitted."
)
CompareOut = out_option("Run directory to create (default: runs/physics/compare/<timestamp>).")


def _registries() -> dict[str, Any]:
    from moesuite.physics.evidence.registry import MODELS as EVIDENCE
    from moesuite.physics.mixer.registry import MODELS as MIXER

    return {"evidence": EVIDENCE, "mixer": MIXER}


def _system(model: str) -> str:
    """``"evidence"`` or ``"mixer"``: the system whose registry holds ``model``."""
    registries = _registries()
    for name, registry in registries.items():
        if model in registry:
            return name
    valid = [n for registry in registries.values() for n in registry.list()]
    raise ValueError(f"unknown model {model!r}; expected one of {valid}.")


def _refuse(system: str, **given: Any) -> None:
    """Refuse options that belong to the other system (those given a value)."""
    used = sorted("--" + k.replace("_", "-") for k, v in given.items() if v not in (None, False))
    if used:
        other = "ODE" if system == "evidence" else "FLiDAR"
        verb = "apply" if len(used) > 1 else "applies"
        raise ValueError(f"{', '.join(used)} {verb} to the {other} models only.")


def _rank() -> int:
    from lightning.pytorch.utilities import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0))


def _echo_metrics(metrics: dict[str, Any]) -> None:
    keys = (
        "nrmse_depth",
        "nrmse_tau",
        "coverage90_depth",
        "coverage90_tau",
        "mse_in_domain",
        "mse_adapt",
        "ari",
    )
    typer.echo("  ".join(f"{k}={metrics[k]:.4f}" for k in keys if k in metrics))


@app.command("list")
def list_() -> None:
    """List the models of both systems and the ODE families, with one line each."""
    from moesuite.physics.data.odes import FAMILIES, ODEBENCH_FAMILIES, list_families

    for name, registry in _registries().items():
        typer.echo(f"{_SYSTEM_TITLES[name]}:")
        for model, text in registry.help().items():
            typer.echo(f"  {model:<18} {text}")
    typer.echo("ODE families (--families, comma-separated, or 'all'):")
    helps = FAMILIES.help()
    for family in list_families():
        typer.echo(f"  {family:<18} {helps[family]}")
    typer.echo("--families odebench2d: the MixER authors' ten ODEBench-2D families:")
    for family, text in ODEBENCH_FAMILIES.help().items():
        typer.echo(f"  {family:<22} {text}")


@app.command()
def simulate(
    n: Annotated[int, typer.Option("--n", min=1, help="Number of histograms.")] = 2000,
    n_bins: Annotated[int, typer.Option("--n-bins", help="TCSPC bins.")] = 256,
    bin_width_ns: Annotated[
        float, typer.Option("--bin-width-ns", help="Bin width in ns.")
    ] = 0.0488,
    irf: Annotated[
        Path | None,
        typer.Option("--irf", help="Measured IRF (.npy or text, one value per bin)."),
    ] = None,
    independent_emission: Annotated[
        bool,
        typer.Option("--independent-emission", help="Sample the emission optics independently."),
    ] = False,
    seed: SeedOption = 0,
    out: SimulateOut = None,
    depth: DepthRange = None,
    lifetime: LifetimeRange = None,
    absorption: AbsorptionRange = None,
    scattering: ScatteringRange = None,
    refractive_index: IndexRange = None,
    irf_fwhm: IRFRange = None,
    photons: PhotonsRange = None,
    background: BackgroundRange = None,
) -> None:
    """Simulate a FLiDAR dataset (dataset.npz) with a plot of example histograms.

    Every sampling range of the simulator has an option (LO,HI), e.g. a test set outside the
    training ranges: `simulate --photons 300,1000` or `simulate --scattering 2,3`.
    """
    from moesuite.core.training import default_run_path, run_directory
    from moesuite.physics.data.flidar import (
        SimulationConfig,
        load_irf,
        save_npz,
        simulate_dataset,
    )
    from moesuite.physics.evidence.plots import plot_example_histograms

    given = dict(zip(RANGE_OPTIONS, (depth, lifetime, absorption, scattering,
                                     refractive_index, irf_fwhm, photons, background),
                     strict=True))  # fmt: skip
    config = SimulationConfig(
        n_bins=n_bins,
        bin_width_ns=bin_width_ns,
        independent_emission=independent_emission,
        ranges=parse_ranges(given),
    )
    irf_arr = load_irf(irf, n_bins) if irf is not None else None
    final = out or default_run_path("runs", "physics", "simulate")
    with run_directory(final) as run:
        ds = simulate_dataset(n, config, seed=seed, irf=irf_arr)
        save_npz(ds, run.file("dataset.npz"))
        record = {"n": n, "seed": seed, "irf": str(irf) if irf else None}
        run.write_config({"command": "simulate", **record, "simulation": config.to_dict()})
        totals = ds.signals.sum(1)
        depth, tau = ds.column("depth_mm"), ds.column("tau_ns")
        run.write_metrics(
            {
                "n_signals": len(ds),
                "photons_mean": float(totals.mean()),
                "photons_min": float(totals.min()),
                "photons_max": float(totals.max()),
                "depth_mm_range": [float(depth.min()), float(depth.max())],
                "tau_ns_range": [float(tau.min()), float(tau.max())],
            }
        )
        plot_example_histograms(ds, run.plot_path("example_histograms"))
    typer.echo(f"wrote {len(ds)} histograms to {final / 'dataset.npz'}")


@app.command()
def train(
    model: ModelArg,
    data: TrainData = None,
    out: TrainOut = None,
    seed: SeedOption = 0,
    epochs: EpochsOption = None,
    experts: ExpertsOption = None,
    threads: ThreadsOption = 1,
    device: DeviceOption = "auto",
    devices: DevicesOption = "auto",
    strategy: StrategyOption = "auto",
    resume: ResumeOption = None,
    quiet: QuietOption = False,
    families: FamiliesOption = None,
    n_train: NTrainOption = None,
    known_optics: KnownOpticsOption = False,
    expert_inputs: ExpertInputsOption = None,
) -> None:
    """Train a model and write a run directory (`list` shows the models)."""
    from moesuite.core.training import read_json, torch_threads

    system = _system(model)
    common = {"data": data, "epochs": epochs, "seed": seed, "out": out, "progress": not quiet}
    common.update(resume=resume, lightning=lightning_kwargs(device, devices, strategy))
    if system == "mixer":
        _refuse(system, n_train=n_train, known_optics=known_optics, expert_inputs=expert_inputs)
        from moesuite.physics.mixer.training import train as run

        specific = {"families": families, "num_experts": experts}
    else:
        _refuse(system, families=families, experts=experts)
        from moesuite.physics.evidence.training import train as run

        specific = {"n_train": n_train, "known_optics": known_optics or None}
        specific["expert_inputs"] = expert_inputs
    with torch_threads(threads):
        path = run(model, **common, **specific)
    if _rank() == 0:  # under DDP every process runs the command; rank 0 wrote the run directory
        _echo_metrics(read_json(path / "metrics.json"))
        typer.echo(f"run directory: {path}")


@app.command("eval")
def evaluate(
    run: RunArg,
    data: EvalData = None,
    out: EvalOut = None,
    n_test: Annotated[
        int,
        typer.Option("--n-test", min=1, help="FLiDAR runs without --data: simulated test signals."),
    ] = 2000,
    threads: ThreadsOption = 1,
    quiet: QuietOption = False,
) -> None:
    """Evaluate a run directory (NRMSE and coverage, or MSE and ARI); writes <RUN>/eval."""
    from moesuite.core.training import read_json, torch_threads

    if not Path(run).is_dir():
        raise FileNotFoundError(
            f"{run}: no such run directory (expected one written by `moesuite physics train`)."
        )
    model = read_json(Path(run) / "config.json").get("model")
    try:
        system = _system(model)
    except ValueError:
        raise ValueError(f"{run}/config.json: {model!r} is not a physics model.") from None
    with torch_threads(threads):
        if system == "mixer":
            from moesuite.physics.mixer.evaluate import evaluate as evaluate_mixer

            metrics = evaluate_mixer(run, data=data, out=out)
        else:
            from moesuite.physics.evidence.evaluate import evaluate as evaluate_evidence

            metrics = evaluate_evidence(run, data=data, n_test=n_test, out=out, progress=not quiet)
    _echo_metrics(metrics)
    typer.echo(f"results in {out or Path(run) / 'eval'}")


@app.command()
def compare(
    model: ModelsOption = None,
    data: CompareData = None,
    out: CompareOut = None,
    seed: SeedOption = 0,
    epochs: EpochsOption = None,
    experts: ExpertsOption = None,
    threads: ThreadsOption = 1,
    quiet: QuietOption = False,
    families: FamiliesOption = None,
    n_train: NTrainOption = None,
    known_optics: KnownOpticsOption = False,
) -> None:
    """Train models of one system on the same data and budget; print the side-by-side table."""
    from moesuite.core.training import torch_threads

    models = list(dict.fromkeys(model or []))
    if not models:
        raise ValueError("--model: give the models to compare, repeating --model (`list`).")
    systems = {m: _system(m) for m in models}
    if len(set(systems.values())) > 1:
        raise ValueError(
            f"--model: {models} mix FLiDAR and ODE models; compare models of one system."
        )
    system = systems[models[0]]
    common = {"data": data, "epochs": epochs, "seed": seed, "out": out, "progress": not quiet}
    if system == "mixer":
        _refuse(system, n_train=n_train, known_optics=known_optics)
        from moesuite.physics.mixer.training import compare as run

        specific = {"families": families, "num_experts": experts}
    else:
        _refuse(system, families=families, experts=experts)
        from moesuite.physics.evidence.training import compare as run

        specific = {"n_train": n_train, "known_optics": known_optics or None}
    with torch_threads(threads):
        path, _ = run(models, **common, **specific)
    typer.echo((path / "comparison.md").read_text().rstrip())
    typer.echo(f"run directory: {path}")


def main() -> None:
    """Entry point of the ``moesuite-physics`` script."""
    app()
