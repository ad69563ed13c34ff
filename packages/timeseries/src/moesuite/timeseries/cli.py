"""``moesuite timeseries`` (also ``moesuite-timeseries``): train, eval, forecast, compare.

Examples::

    moesuite timeseries train                                   # MoHETS on the built-in generator
    moesuite timeseries train dlinear --data ETTh1.csv --lookback 336 --horizon 96
    moesuite timeseries train mohets --data my.csv --target OT --covariates temp,load --known-covariates load
    moesuite timeseries eval runs/timeseries/mohets/<timestamp> --data other.csv
    moesuite timeseries forecast runs/timeseries/mohets/<timestamp> --data recent.csv
    moesuite timeseries compare --models naive,dlinear,patchtst,mohets --data ETTh1.csv --horizons 96,192
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

__all__ = ["app", "main"]

app = typer_factory("timeseries", "MoHETS long-horizon forecasting (Mixture of Heterogeneous Experts) and baselines.")

ModelArg = Annotated[str, typer.Argument(help="Model: mohets, mohets-nocov, mohets-mlp, mohets-flatten, patchtst, dlinear, naive, seasonal-naive.")]
LookbackOption = Annotated[int, typer.Option("--lookback", min=1, help="Input length L.")]
HorizonOption = Annotated[int, typer.Option("--horizon", min=1, help="Forecast length H.")]
TargetOption = Annotated[str, typer.Option("--target", help="'all' or comma-separated target columns.")]
CovariatesOption = Annotated[str | None, typer.Option("--covariates", help="Comma-separated covariate columns (inputs, not forecast).")]
KnownOption = Annotated[str | None, typer.Option("--known-covariates", help="Covariates whose future values are known (subset of --covariates).")]
ThreadsOption = Annotated[int, typer.Option("--threads", min=1, help="torch threads while training (1 is fastest for small models on a shared CPU).")]
TimestampOption = Annotated[str | None, typer.Option("--timestamp", help="Timestamp column (default: date/timestamp/datetime/time/ds).")]


def _parse_ints(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}.") from None
    if not values or min(values) < 1:
        raise ValueError(f"{name} must list positive integers, got {text!r}.")
    return values


@app.command()
def train(
    model: ModelArg = "mohets",
    data: DataOption = None,
    lookback: LookbackOption = 96,
    horizon: HorizonOption = 24,
    target: TargetOption = "all",
    covariates: CovariatesOption = None,
    known_covariates: KnownOption = None,
    timestamp: TimestampOption = None,
    no_calendar: Annotated[bool, typer.Option("--no-calendar", help="Do not add calendar covariates.")] = False,
    epochs: EpochsOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Training batch size.")] = 64,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate.")] = 1e-3,
    limit_train_batches: Annotated[int | None, typer.Option("--limit-train-batches", min=1, help="Batches per epoch.")] = None,
    d_model: Annotated[int | None, typer.Option("--d-model", min=1, help="Token width (MoHETS/PatchTST).")] = None,
    threads: ThreadsOption = 1,
    seed: SeedOption = 0,
    out: OutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train a forecaster (default: MoHETS on the built-in generator) and write a run directory."""
    from moesuite.timeseries.training import TrainConfig, train_forecaster

    cfg = TrainConfig(
        model=model, data=str(data) if data else None, target=target, covariates=covariates,
        known_covariates=known_covariates, timestamp=timestamp, calendar=not no_calendar, lookback=lookback,
        horizon=horizon, epochs=epochs or TrainConfig.epochs, batch_size=batch_size, lr=lr,
        limit_train_batches=limit_train_batches, seed=seed, model_options={"d_model": d_model}, threads=threads,
    )
    result = train_forecaster(cfg, out=out, progress=not quiet)
    t = result.metrics["test"]
    typer.echo(f"{model} on {result.metrics['data']} (L={lookback}, H={horizon}): test MSE {t['mse']:.4f}  "
               f"MAE {t['mae']:.4f}  params {result.metrics['parameters']}  ({result.seconds:.0f} s)")
    typer.echo(f"run directory: {result.run_dir}")


@app.command("eval")
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `train`.")],
    data: DataOption = None,
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "test",
    out: OutOption = None,
) -> None:
    """Evaluate a trained run on a CSV (default: its training data) and split; writes a run directory."""
    from moesuite.timeseries.inference import evaluate_run

    path, metrics = evaluate_run(run_dir, data=data, split=split, out=out)
    m = metrics[split]
    typer.echo(f"{split} MSE {m['mse']:.4f}  MAE {m['mae']:.4f}  ({metrics['windows']} windows)")
    typer.echo(f"run directory: {path}")


@app.command()
def forecast(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `train`.")],
    data: DataOption = None,
    horizon: Annotated[int | None, typer.Option("--horizon", min=1, help="Steps to forecast (default: the run's).")] = None,
    out: OutOption = None,
) -> None:
    """Forecast past the last row of a CSV; writes forecast.csv and a plot."""
    from moesuite.timeseries.inference import forecast_run

    path, frame = forecast_run(run_dir, data=data, horizon=horizon, out=out)
    typer.echo(f"forecast of {len(frame)} steps ({frame.iloc[0, 0]} .. {frame.iloc[-1, 0]}): {path / 'forecast.csv'}")


@app.command()
def compare(
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names.")] = "naive,dlinear,patchtst,mohets",
    data: DataOption = None,
    lookback: LookbackOption = 96,
    horizons: Annotated[str, typer.Option("--horizons", help="Comma-separated horizons.")] = "24",
    target: TargetOption = "all",
    covariates: CovariatesOption = None,
    known_covariates: KnownOption = None,
    epochs: EpochsOption = None,
    limit_train_batches: Annotated[int | None, typer.Option("--limit-train-batches", min=1, help="Batches per epoch.")] = None,
    d_model: Annotated[int | None, typer.Option("--d-model", min=1, help="Token width (MoHETS/PatchTST).")] = None,
    threads: ThreadsOption = 1,
    seed: SeedOption = 0,
    out: OutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Train and test several models on the same data, splits and budget; one table and plot."""
    from moesuite.core.training import default_run_path, run_directory
    from moesuite.timeseries.compare import average_rows, compare_models, format_table
    from moesuite.timeseries.plots import plot_comparison
    from moesuite.timeseries.training import TrainConfig

    names = [m.strip() for m in models.split(",") if m.strip()]
    hs = _parse_ints(horizons, "--horizons")
    base = TrainConfig(
        data=str(data) if data else None, target=target, covariates=covariates, known_covariates=known_covariates,
        lookback=lookback, horizon=max(hs), epochs=epochs or TrainConfig.epochs,
        limit_train_batches=limit_train_batches, seed=seed,
        model_options={"d_model": d_model} if d_model else {}, threads=threads,
    )
    path = out or default_run_path("runs", "timeseries", "compare")
    with run_directory(path) as run:
        rows = compare_models(names, base, hs, run.path / "runs", progress=not quiet, jsonl=run.file("results.jsonl"))
        for r in rows:  # point at the final directory, not the temporary one being written
            r["run_dir"] = str(Path(path) / Path(r["run_dir"]).relative_to(run.path))
        table = format_table(rows)
        run.write_config({"command": "compare", "models": names, "horizons": hs, "base": base})
        run.write_metrics({"rows": rows, "average": average_rows(rows)})
        run.file("table.md").write_text(table + "\n")
        plot_comparison(rows, run.plot_path("comparison_mse"), title=f"test MSE, lookback {lookback}")
    typer.echo(table)
    typer.echo(f"run directory: {path}")


def main() -> None:
    """Console-script entry point (``moesuite-timeseries``)."""
    app()
