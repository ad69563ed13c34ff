"""``moesuite timeseries`` (also ``moesuite-timeseries``): train, eval, compare, list, forecast.

Examples::

    moesuite timeseries list
    moesuite timeseries train mohets                            # built-in generator
    moesuite timeseries train dlinear --data ETTh1.csv --lookback 336 --horizon 96
    moesuite timeseries train --resume runs/timeseries/mohets/<timestamp>
    moesuite timeseries eval runs/timeseries/mohets/<timestamp> --data other.csv
    moesuite timeseries forecast runs/timeseries/mohets/<timestamp> --data recent.csv
    moesuite timeseries compare --model naive --model dlinear --data ETTh1.csv --horizon 96
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moesuite.core.cli.common import (
    DeviceOption,
    DevicesOption,
    ExpertsOption,
    ModelArg,
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

__all__ = ["app", "main"]

app = typer_factory(
    "timeseries",
    "Long-horizon forecasting with a Mixture of Heterogeneous Experts, and its baselines.",
)

#: what `train` builds without a MODEL, and `compare` compares without --model
DEFAULT_MODEL = "mohets"
DEFAULT_COMPARISON = ("naive", "dlinear", "patchtst", "mohets")

EpochsOption = Annotated[
    int | None,
    typer.Option(
        "--epochs", min=1, help="Training epochs (default 6; early stopping may stop sooner)."
    ),
]
LookbackOption = Annotated[int, typer.Option("--lookback", min=1, help="Input length L.")]
HorizonOption = Annotated[int, typer.Option("--horizon", min=1, help="Forecast length H.")]
HorizonsOption = Annotated[
    list[int] | None,
    typer.Option("--horizon", min=1, help="A forecast length H; repeat for several (default 24)."),
]
TargetOption = Annotated[
    str, typer.Option("--target", help="'all' or comma-separated target columns.")
]
CovariatesOption = Annotated[
    str | None,
    typer.Option("--covariates", help="Comma-separated covariate columns (inputs, not forecast)."),
]
KnownOption = Annotated[
    str | None,
    typer.Option(
        "--known-covariates",
        help="Covariates whose future values are known (a subset of --covariates).",
    ),
]
TimestampOption = Annotated[
    str | None,
    typer.Option(
        "--timestamp", help="Timestamp column (default: date/timestamp/datetime/time/ds)."
    ),
]
NoCalendarOption = Annotated[
    bool, typer.Option("--no-calendar", help="Do not add calendar covariates.")
]
BatchSizeOption = Annotated[
    int, typer.Option("--batch-size", min=1, help="Training batch size (per device).")
]
LrOption = Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate.")]
LimitBatchesOption = Annotated[
    int | None,
    typer.Option("--limit-train-batches", min=1, help="Training batches per epoch (default: all)."),
]
DModelOption = Annotated[
    int | None,
    typer.Option("--d-model", min=1, help="Token width of the patch-encoder models."),
]
ThreadsOption = Annotated[
    int,
    typer.Option(
        "--threads",
        min=1,
        help="torch threads while the command runs (1 is fastest for these small models on a "
        "shared CPU).",
    ),
]
RunDataOption = data_option(
    "CSV with the run's columns (default: the data the run was trained on)."
)
TrainDataOption = data_option(
    "Your own CSV (a timestamp column and numeric columns); the built-in generator if omitted."
)
TrainOutOption = out_option(
    "Run directory to create (default: runs/timeseries/<model>/<timestamp>)."
)
EvalOutOption = out_option("Directory to write (default: runs/timeseries/eval/<timestamp>).")
ForecastOutOption = out_option(
    "Directory for forecast.csv and its plot (default: runs/timeseries/forecast/<timestamp>)."
)
CompareOutOption = out_option(
    "Directory for the table, plot and every run (default: runs/timeseries/compare/<timestamp>)."
)
CompareModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="A model to include; repeat for several (default: the README benchmark's models; "
        "`list` shows every name).",
    ),
]
EvalQuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]


@app.command("list")
def list_models() -> None:
    """List the models with what each one is."""
    from moesuite.timeseries.models import MODELS

    helps = MODELS.help()
    width = max(map(len, helps))
    for name, text in helps.items():
        typer.echo(f"{name:<{width}}  {text}")


@app.command()
def train(
    ctx: typer.Context,
    model: ModelArg = None,
    data: TrainDataOption = None,
    lookback: LookbackOption = 96,
    horizon: HorizonOption = 24,
    target: TargetOption = "all",
    covariates: CovariatesOption = None,
    known_covariates: KnownOption = None,
    timestamp: TimestampOption = None,
    no_calendar: NoCalendarOption = False,
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = 64,
    lr: LrOption = 1e-3,
    limit_train_batches: LimitBatchesOption = None,
    d_model: DModelOption = None,
    experts: ExpertsOption = None,
    threads: ThreadsOption = 1,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    devices: DevicesOption = "auto",
    strategy: StrategyOption = "auto",
    resume: ResumeOption = None,
    out: TrainOutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train MODEL (default: the package's own system) and write a run directory.

    With --resume RUN, continue an interrupted run in place: its config.json rebuilds the model
    and the data, so only --device/--devices/--strategy/--threads/--quiet may be given with it.
    """
    from moesuite.timeseries.training import (
        ForecastTrainConfig,
        resume_forecaster,
        train_forecaster,
    )

    lightning = lightning_kwargs(device, devices, strategy)
    try:
        if resume is not None:
            _check_resume(ctx, resume, model)
            result = resume_forecaster(resume, progress=not quiet, lightning=lightning)
        else:
            cfg = ForecastTrainConfig(
                model=model or DEFAULT_MODEL,
                data=str(data) if data else None,
                target=target,
                covariates=covariates,
                known_covariates=known_covariates,
                timestamp=timestamp,
                calendar=not no_calendar,
                lookback=lookback,
                horizon=horizon,
                epochs=epochs or ForecastTrainConfig.epochs,
                batch_size=batch_size,
                lr=lr,
                limit_train_batches=limit_train_batches,
                seed=seed,
                model_options={"d_model": d_model, "num_experts": experts},
                threads=threads,
            )
            result = train_forecaster(cfg, out=out, progress=not quiet, lightning=lightning)
    except (KeyboardInterrupt, SystemExit):
        typer.echo(
            "interrupted: continue with `moesuite timeseries train --resume RUN` (RUN: the run "
            "directory, marked INTERRUPTED)",
            err=True,
        )
        raise typer.Exit(130) from None
    if not result.metrics:  # a DDP worker process: rank 0 reports
        return
    m, t = result.metrics, result.metrics["test"]
    typer.echo(
        f"{m['model']} on {m['data']} (L={m['lookback']}, H={m['horizon']}): test MSE "
        f"{t['mse']:.4f}  MAE {t['mae']:.4f}  params {m['parameters']}  ({result.seconds:.0f} s)"
    )
    typer.echo(f"run directory: {result.run_dir}")


#: what `train --resume` may be given: how to run, not what to train
_RESUME_OPTIONS = {"ctx", "model", "resume", "threads", "device", "devices", "strategy", "quiet"}


def _check_resume(ctx: typer.Context, resume: Path, model: str | None) -> None:
    from moesuite.core.training import read_json

    given = [
        f"--{name.replace('_', '-')}"
        for name in ctx.params
        if name not in _RESUME_OPTIONS
        and getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    ]
    if given:
        raise ValueError(
            f"--resume continues {resume} as it was configured; drop {', '.join(given)}."
        )
    trained = read_json(Path(resume) / "config.json").get("model")
    if model is not None and model != trained:
        raise ValueError(f"--resume {resume} is a {trained!r} run, not {model!r}.")


@app.command("eval")
def evaluate(
    run: RunArg,
    data: RunDataOption = None,
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "test",
    threads: ThreadsOption = 1,
    out: EvalOutOption = None,
    quiet: EvalQuietOption = False,
) -> None:
    """Evaluate a trained run on a split of its data or of another CSV; writes a directory."""
    from moesuite.core.training import torch_threads
    from moesuite.timeseries.evaluate import evaluate_run

    with torch_threads(threads):
        path, metrics = evaluate_run(run, data=data, split=split, out=out, progress=not quiet)
    m = metrics[split]
    typer.echo(f"{split} MSE {m['mse']:.4f}  MAE {m['mae']:.4f}  ({metrics['windows']} windows)")
    typer.echo(f"run directory: {path}")


@app.command()
def forecast(
    run: RunArg,
    data: RunDataOption = None,
    horizon: Annotated[
        int | None,
        typer.Option("--horizon", min=1, help="Steps to forecast (default: the run's horizon)."),
    ] = None,
    threads: ThreadsOption = 1,
    out: ForecastOutOption = None,
) -> None:
    """Forecast past the last row of a CSV; writes forecast.csv (original units) and a plot."""
    from moesuite.core.training import torch_threads
    from moesuite.timeseries.forecast import forecast_run

    with torch_threads(threads):
        path, frame = forecast_run(run, data=data, horizon=horizon, out=out)
    typer.echo(
        f"forecast of {len(frame)} steps ({frame.iloc[0, 0]} .. {frame.iloc[-1, 0]}): "
        f"{path / 'forecast.csv'}"
    )


@app.command()
def compare(
    models: CompareModelsOption = None,
    data: TrainDataOption = None,
    lookback: LookbackOption = 96,
    horizons: HorizonsOption = None,
    target: TargetOption = "all",
    covariates: CovariatesOption = None,
    known_covariates: KnownOption = None,
    timestamp: TimestampOption = None,
    no_calendar: NoCalendarOption = False,
    epochs: EpochsOption = None,
    limit_train_batches: LimitBatchesOption = None,
    d_model: DModelOption = None,
    experts: ExpertsOption = None,
    threads: ThreadsOption = 1,
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
    out: CompareOutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train and test several models on the same data, splits and budget: one table and plot."""
    from moesuite.timeseries.training import ForecastTrainConfig, run_comparison

    hs = horizons or [24]
    options = {"d_model": d_model, "num_experts": experts}
    base = ForecastTrainConfig(
        data=str(data) if data else None,
        target=target,
        covariates=covariates,
        known_covariates=known_covariates,
        timestamp=timestamp,
        calendar=not no_calendar,
        lookback=lookback,
        horizon=max(hs),
        epochs=epochs or ForecastTrainConfig.epochs,
        limit_train_batches=limit_train_batches,
        seed=seed,
        model_options={k: v for k, v in options.items() if v is not None},
        threads=threads,
    )
    path, table = run_comparison(
        models or list(DEFAULT_COMPARISON),
        base,
        hs,
        out=out,
        progress=not quiet,
        lightning=lightning_kwargs(device),
    )
    typer.echo(table)
    typer.echo(f"run directory: {path}")


def main() -> None:
    """Console-script entry point (``moesuite-timeseries``)."""
    app()


if __name__ == "__main__":  # `python -m moesuite.timeseries.cli`, as DDP re-launches it
    main()
