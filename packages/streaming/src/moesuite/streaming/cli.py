"""``moesuite streaming run|compare|list``: DriftMoE and river baselines on drifting streams.

moesuite streaming list
moesuite streaming run --model driftmoe-data --stream sea_abrupt --n 5000
moesuite streaming compare --model driftmoe-data --model arf --stream led_gradual --n 20000
moesuite streaming run --data elec.csv --target class
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moesuite.core.cli.common import DataOption, OutOption, QuietOption, SeedOption, typer_factory

__all__ = ["app", "main"]

app = typer_factory(name="streaming", help="DriftMoE (router + Hoeffding-tree experts) on drifting streams, with river baselines.")

NOption = Annotated[int, typer.Option("--n", help="Instances per stream (real streams and files are cut to it).")]
TargetOption = Annotated[str | None, typer.Option("--target", help="Label column of --data.")]
WindowOption = Annotated[int | None, typer.Option("--window", help="Window of the windowed accuracy (default n/50).")]
ExpertsOption = Annotated[int | None, typer.Option("--experts", help="DriftMoE: number of experts (model default if omitted).")]
TopKOption = Annotated[int | None, typer.Option("--top-k", help="DriftMoE: experts combined per prediction.")]


def _progress(quiet: bool):
    """A rich progress factory for :func:`run_experiment` (``None`` when quiet)."""
    if quiet:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())

    def factory(label: str, total: int | None):
        task = bar.add_task(label, total=total)
        return lambda n: bar.update(task, completed=n)

    return bar, factory


def _run(models: list[str], streams: list[str], n: int, seed: int, window: int | None, data: Path | None,
         target: str | None, out: Path | None, quiet: bool, experts: int | None, top_k: int | None, label: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from moesuite.core.training import default_run_path
    from moesuite.streaming.experiment import ExperimentConfig, run_experiment

    drift_params = {"n_experts": experts, "top_k": top_k}
    params = {m: {k: v for k, v in drift_params.items() if v is not None} for m in models if m.startswith("driftmoe")}
    cfg = ExperimentConfig(models=models, streams=streams, n_samples=n, seed=seed, window=window,
                           data=data, target=target, model_params=params)
    path = out or default_run_path("runs", "streaming", label)
    bar, factory = _progress(quiet)
    if bar is not None:
        with bar:
            rows = run_experiment(cfg, path, factory)
    else:
        rows = run_experiment(cfg, path, None)
    console = Console(width=None if Console().is_terminal else 140)
    table = Table(title=f"prequential results; run directory {path}")
    for col in ("stream", "model", "n", "accuracy", "kappa", "kappa_m", "kappa_t", "inst/s"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["stream"], r["model"], str(r["n"]), f"{r['accuracy']:.4f}", f"{r['kappa']:.3f}",
                      f"{r['kappa_m']:.3f}", f"{r['kappa_t']:.3f}", f"{r['throughput']:.0f}")
    console.print(table)


@app.command()
def run(
    model: Annotated[str, typer.Option("--model", help="Model name (see `list`).")] = "driftmoe-data",
    stream: Annotated[str, typer.Option("--stream", help="Stream name (see `list`); ignored with --data.")] = "sea_abrupt",
    n: NOption = 5000,
    seed: SeedOption = 0,
    window: WindowOption = None,
    data: DataOption = None,
    target: TargetOption = None,
    experts: ExpertsOption = None,
    top_k: TopKOption = None,
    out: OutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Evaluate one model on one stream prequentially (test-then-train) into a run directory."""
    _run([model], [stream], n, seed, window, data, target, out, quiet, experts, top_k, label=model)


@app.command()
def compare(
    model: Annotated[list[str] | None, typer.Option("--model", help="Models (repeat; default driftmoe-data, ht, arf).")] = None,
    stream: Annotated[list[str] | None, typer.Option("--stream", help="Streams (repeat; default sea_abrupt).")] = None,
    n: NOption = 5000,
    seed: SeedOption = 0,
    window: WindowOption = None,
    data: DataOption = None,
    target: TargetOption = None,
    experts: ExpertsOption = None,
    top_k: TopKOption = None,
    out: OutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Models x streams side by side (same stream, same seed): table, metrics.json and plots."""
    _run(model or ["driftmoe-data", "ht", "arf"], stream or ["sea_abrupt"], n, seed, window, data, target, out,
         quiet, experts, top_k, label="compare")


@app.command("list")
def list_(
    kind: Annotated[str | None, typer.Option("--kind", help="Only streams of this kind: synthetic, real.")] = None,
) -> None:
    """List the streams and models."""
    from moesuite.streaming.models import list_models, model_description
    from moesuite.streaming.streams import list_streams, stream_info

    if kind is not None and kind not in ("synthetic", "real"):
        raise ValueError(f"--kind must be 'synthetic' or 'real', got {kind!r}.")
    typer.echo("streams:")
    for s in list_streams(kind=kind):
        info = stream_info(s)
        typer.echo(f"  {s:<20} {info.kind:<10} {info.description}")
    typer.echo("  (or your own file: --data PATH.csv|.arff --target COLUMN)")
    typer.echo("models:")
    for m in list_models():
        typer.echo(f"  {m:<20} {model_description(m)}")


def main() -> None:
    """Console-script entry point (``moesuite-streaming``)."""
    app()
