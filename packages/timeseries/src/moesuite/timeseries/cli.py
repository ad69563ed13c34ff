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

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

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

#: what `train` builds without a MODEL, and `compare` compares without --model (the benchmark's)
DEFAULT_MODEL = "mohets"
DEFAULT_COMPARISON = ("naive", "seasonal-naive", "dlinear", "nlinear", "patchtst", "mohets")

EpochsOption = Annotated[
    int | None,
    typer.Option(
        "--epochs",
        min=1,
        help="Maximum epochs (default: the model's recipe; early stopping may stop sooner).",
    ),
]
LookbackOption = Annotated[int, typer.Option("--lookback", min=1, help="Input length L.")]
HorizonOption = Annotated[
    int,
    typer.Option(
        "--horizon",
        min=1,
        help="Forecast length H (a model that forecasts any horizon is also scored at 96, "
        "192, 336 and 720 when they fit).",
    ),
]
HorizonsOption = Annotated[
    list[int] | None,
    typer.Option(
        "--horizon",
        min=1,
        help="A forecast length H; repeat for several (default: 96, 192, 336, 720 with "
        "--data, 24 on the generator).",
    ),
]
CompareLookbackOption = Annotated[
    int | None,
    typer.Option("--lookback", min=1, help="Input length L (default: 336 with --data, else 96)."),
]
PatienceOption = Annotated[
    int | None,
    typer.Option(
        "--patience",
        min=0,
        help="Early-stopping patience in epochs (default: the model's recipe; 0: off).",
    ),
]
DFfOption = Annotated[
    int | None,
    typer.Option("--d-ff", min=1, help="Hidden width of the feed-forward networks and experts."),
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
    int | None,
    typer.Option(
        "--batch-size", min=1, help="Training batch size per device (default: the recipe's)."
    ),
]
LrOption = Annotated[
    float | None,
    typer.Option("--lr", min=0.0, help="Peak learning rate (default: the recipe's)."),
]
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


#: the options `train` and `compare` share (name, annotation, default), in --help order
SETTINGS = (
    ("target", TargetOption, "all"),
    ("covariates", CovariatesOption, None),
    ("known_covariates", KnownOption, None),
    ("timestamp", TimestampOption, None),
    ("no_calendar", NoCalendarOption, False),
    ("epochs", EpochsOption, None),
    ("batch_size", BatchSizeOption, None),
    ("lr", LrOption, None),
    ("patience", PatienceOption, None),
    ("limit_train_batches", LimitBatchesOption, None),
    ("d_model", DModelOption, None),
    ("d_ff", DFfOption, None),
    ("experts", ExpertsOption, None),
    ("threads", ThreadsOption, 1),
    ("seed", SeedOption, 0),
    ("device", DeviceOption, "auto"),
)


def with_settings(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` the :data:`SETTINGS` options in place of its ``settings`` parameter.

    The command receives them as one dict, ``settings``; Typer sees them as ordinary options
    (the wrapper's signature and annotations list them), so both commands spell and document
    them the same way.
    """
    sig = inspect.signature(command)
    hints = typing.get_type_hints(command, include_extras=True)
    params = [p.replace(annotation=hints[p.name]) for p in sig.parameters.values()]
    at = [p.name for p in params].index("settings")
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    shared = [inspect.Parameter(n, kind, default=d, annotation=a) for n, a, d in SETTINGS]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        settings = {n: kwargs.pop(n) for n, _, _ in SETTINGS}
        return command(*args, settings=settings, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params[:at] + shared + params[at + 1 :])
    hints.pop("settings")
    wrapper.__annotations__ = {**hints, **{n: a for n, a, _ in SETTINGS}}
    del wrapper.__wrapped__  # Typer must read the wrapper's signature, not the command's
    return wrapper


def _train_config(settings: dict[str, Any], **fields: Any) -> Any:
    """The :class:`ForecastTrainConfig` of the shared settings and the command's own fields."""
    from moesuite.timeseries.training import ForecastTrainConfig

    s = settings
    options = {"d_model": s["d_model"], "d_ff": s["d_ff"], "num_experts": s["experts"]}
    data = fields.pop("data", None)
    return ForecastTrainConfig(
        data=str(data) if data else None,
        target=s["target"],
        covariates=s["covariates"],
        known_covariates=s["known_covariates"],
        timestamp=s["timestamp"],
        calendar=not s["no_calendar"],
        epochs=s["epochs"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        patience=s["patience"],
        limit_train_batches=s["limit_train_batches"],
        seed=s["seed"],
        model_options={k: v for k, v in options.items() if v is not None},
        threads=s["threads"],
        **fields,
    )


@app.command("list")
def list_models() -> None:
    """List the models with what each one is."""
    from moesuite.timeseries.models import MODELS

    helps = MODELS.help()
    width = max(map(len, helps))
    for name, text in helps.items():
        typer.echo(f"{name:<{width}}  {text}")


@app.command()
@with_settings
def train(
    ctx: typer.Context,
    model: ModelArg = None,
    data: TrainDataOption = None,
    lookback: LookbackOption = 96,
    horizon: HorizonOption = 24,
    settings: dict | None = None,
    devices: DevicesOption = "auto",
    strategy: StrategyOption = "auto",
    resume: ResumeOption = None,
    out: TrainOutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train MODEL (default: the package's own system) with its recipe; write a run.

    Each model trains with its authors' recipe (optimiser, schedule, batch, epochs, early
    stopping, loss) unless --epochs/--batch-size/--lr/--patience override it.
    With --resume RUN, continue an interrupted run in place: its config.json rebuilds the model
    and the data, so only --device/--devices/--strategy/--threads/--quiet may be given with it.
    """
    from moesuite.timeseries.training import resume_forecaster, train_forecaster

    lightning = lightning_kwargs(settings["device"], devices, strategy)
    try:
        if resume is not None:
            _check_resume(ctx, resume, model)
            result = resume_forecaster(resume, progress=not quiet, lightning=lightning)
        else:
            cfg = _train_config(settings, model=model or DEFAULT_MODEL, data=data,
                                lookback=lookback, horizon=horizon)  # fmt: skip
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
    m = result.metrics
    for h, t in m["test"]["by_horizon"].items():
        typer.echo(
            f"{m['model']} on {m['data']} (L={m['lookback']}, H={h}): test MSE {t['mse']:.4f}  "
            f"MAE {t['mae']:.4f}  params {m['parameters']}"
        )
    typer.echo(f"trained and evaluated in {result.seconds:.0f} s")
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
@with_settings
def compare(
    models: CompareModelsOption = None,
    data: TrainDataOption = None,
    lookback: CompareLookbackOption = None,
    horizons: HorizonsOption = None,
    settings: dict | None = None,
    out: CompareOutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train and test several models on the same data and splits, each with its own recipe.

    With no training option given, every model is trained exactly as in the package's
    benchmark (benchmarks/timeseries/bench_ett.py): its authors' recipe, selection on
    validation, every test window scored. Writes one table, its rows and every run.
    """
    from moesuite.timeseries.evaluate import STANDARD_HORIZONS
    from moesuite.timeseries.training import run_comparison

    base = _train_config(settings, data=data, lookback=lookback or (336 if data else 96))
    hs = horizons or (_fitting(base, STANDARD_HORIZONS) if data else [24])
    base.horizon = max(hs)
    path, table = run_comparison(
        models or list(DEFAULT_COMPARISON),
        base,
        hs,
        out=out,
        progress=not quiet,
        lightning=lightning_kwargs(settings["device"]),
    )
    typer.echo(table)
    typer.echo(f"run directory: {path}")


def _fitting(base: object, horizons: tuple[int, ...]) -> list[int]:
    """The horizons whose windows fit every split of ``base``'s data (at least the shortest)."""
    from dataclasses import replace

    from moesuite.timeseries.config import build_datamodule, load_table

    table = load_table(base)
    fits = []
    for h in horizons:
        try:
            build_datamodule(replace(base, horizon=h), table)
        except ValueError:
            break
        fits.append(h)
    return fits or [min(horizons)]


def main() -> None:
    """Console-script entry point (``moesuite-timeseries``)."""
    app()


if __name__ == "__main__":  # `python -m moesuite.timeseries.cli`, as DDP re-launches it
    main()
