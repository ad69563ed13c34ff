"""``moesuite streaming train|eval|compare|list``: DriftMoE and river baselines on drifting streams.

    moesuite streaming list
    moesuite streaming train driftmoe-data --stream sea_abrupt --n 5000
    moesuite streaming eval runs/streaming/driftmoe-data/<timestamp>
    moesuite streaming compare --model driftmoe-data --model arf --stream led_gradual --n 20000
    moesuite streaming train driftmoe-data --data elec.csv --target class
    moesuite streaming compare --stream river:RandomTree --stream-arg drift_at=0.5 --n 20000

River learns in one prequential (test-then-train) pass on the CPU: ``train`` has no epochs,
devices or resume; ``eval`` continues a saved model on new instances.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from moesuite.core.cli.common import (
    ExpertsOption,
    ModelArg,
    ModelsOption,
    QuietOption,
    RunArg,
    SeedOption,
    ThreadsOption,
    data_option,
    out_option,
    typer_factory,
)

__all__ = ["app", "main"]

app = typer_factory(
    name="streaming",
    help="DriftMoE (router + Hoeffding-tree experts) on drifting streams, with river baselines.",
)


StreamOption = Annotated[
    str | None,
    typer.Option(
        "--stream",
        help="A registered stream or river:NAME, any river dataset or generator (`list` shows "
        "them; default: the one it marks *).",
    ),
]
StreamArgOption = Annotated[
    list[str] | None,
    typer.Option(
        "--stream-arg",
        help="KEY=VALUE for a river:NAME stream, repeatable: an argument of the river class, "
        "drift_at=P / drift_width=W (a generator in drift), after.KEY=VALUE (the concept after "
        "the drift).",
    ),
]
EvalStreamOption = Annotated[
    str | None,
    typer.Option(
        "--stream",
        help="A registered stream or river:NAME to continue on (`list` shows them; default: "
        "RUN's own stream).",
    ),
]
StreamsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--stream",
        help="A registered stream or river:NAME; repeat for several (`list` shows them; "
        "default: the one it marks *).",
    ),
]
NOption = Annotated[
    int | None,
    typer.Option(
        "--n",
        min=1,
        help="Instances per stream (default: 5,000 of a generated stream, all of a real "
        "stream or file).",
    ),
]
TargetOption = Annotated[
    str | None, typer.Option("--target", help="The label column of the --data file.")
]
TrainDataOption = data_option(
    "A CSV or ARFF file to learn from instead of a stream (with --target)."
)
CompareDataOption = data_option("A CSV or ARFF file to run instead of the streams (with --target).")
EvalDataOption = data_option(
    "A CSV or ARFF file to continue on (with --target; default: RUN's own stream)."
)
TrainOutOption = out_option("Run directory to create (default: runs/streaming/MODEL/<timestamp>).")
CompareOutOption = out_option(
    "Run directory to create (default: runs/streaming/compare/<timestamp>)."
)
EvalOutOption = out_option(
    "Run directory to create (default: runs/streaming/<RUN's model>-eval/<timestamp>)."
)
EvalNOption = Annotated[
    int | None,
    typer.Option(
        "--n",
        min=1,
        help="Instances (default: on RUN's own stream, as many as RUN learnt of a generated "
        "stream or the rest of a real stream or file; on --stream or --data, as for `train`).",
    ),
]


def _progress(quiet: bool) -> tuple[Any, Any]:
    """A rich progress bar and its ``progress(label, total)`` factory (``None``s when quiet)."""
    if quiet:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )

    def factory(label: str, total: int | None):
        task = bar.add_task(label, total=total)
        return lambda n: bar.update(task, completed=n)

    return bar, factory


def _with_progress(quiet: bool, threads: int | None, work) -> Any:
    """Run ``work(progress)`` with a progress bar (unless quiet) and ``threads`` torch threads."""
    from moesuite.core.training import torch_threads

    bar, factory = _progress(quiet)
    with torch_threads(threads):
        if bar is None:
            return work(None)
        with bar:
            return work(factory)


def _print_rows(rows: list[dict[str, Any]], path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if Console().is_terminal else 140)
    table = Table(title=f"prequential results; run directory {path}")
    for col in ("stream", "model", "n", "accuracy", "kappa", "kappa_m", "kappa_t", "inst/s"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["stream"],
            r["model"],
            str(r["n"]),
            f"{r['accuracy']:.4f}",
            f"{r['kappa']:.3f}",
            f"{r['kappa_m']:.3f}",
            f"{r['kappa_t']:.3f}",
            f"{r['throughput']:.0f}",
        )
    console.print(table)


def _experts_params(models: list[str], experts: int | None) -> dict[str, dict[str, Any]]:
    """``--experts`` as constructor arguments of the models that route between experts."""
    from moesuite.streaming.models import has_router

    if experts is None:
        return {}
    return {m: {"n_experts": experts} for m in models if has_router(m)}


@app.command()
def train(
    model: ModelArg,
    stream: StreamOption = None,
    stream_arg: StreamArgOption = None,
    data: TrainDataOption = None,
    target: TargetOption = None,
    n: NOption = None,
    seed: SeedOption = 0,
    experts: ExpertsOption = None,
    threads: ThreadsOption = None,
    out: TrainOutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Learn MODEL on a stream, test-then-train (one pass), and save it for `eval`."""
    from moesuite.core.training import default_run_path
    from moesuite.streaming.data import DEFAULT_STREAM, StreamSource
    from moesuite.streaming.models import MODELS, has_router
    from moesuite.streaming.training import train as train_model

    MODELS.get(model)  # an unknown name is an error before anything else
    if experts is not None and not has_router(model):
        raise ValueError(f"--experts: {model!r} has no experts to count; drop --experts.")
    if stream is None and data is None:
        stream = DEFAULT_STREAM
    source = StreamSource(stream, data, target, n, seed, args=tuple(stream_arg or ()))
    path = out or default_run_path("runs", "streaming", model)
    row = _with_progress(
        quiet,
        threads,
        lambda progress: train_model(
            model, source, path, seed, {"n_experts": experts}, progress=progress
        ),
    )
    _print_rows([row], path)


@app.command("eval")
def eval_(
    run: RunArg,
    stream: EvalStreamOption = None,
    stream_arg: StreamArgOption = None,
    data: EvalDataOption = None,
    target: TargetOption = None,
    n: EvalNOption = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed of a generated stream (default: RUN's seed + 1, new instances)."
        ),
    ] = None,
    threads: ThreadsOption = None,
    out: EvalOutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Load the model RUN saved and continue it test-then-train on a stream (new instances)."""
    from moesuite.streaming.evaluate import evaluate_run

    path, rows = _with_progress(
        quiet,
        threads,
        lambda progress: evaluate_run(
            run, out, stream, data, target, n, seed, tuple(stream_arg or ()), progress=progress
        ),
    )
    _print_rows(rows, path)


@app.command()
def compare(
    model: ModelsOption = None,
    stream: StreamsOption = None,
    stream_arg: StreamArgOption = None,
    data: CompareDataOption = None,
    target: TargetOption = None,
    n: NOption = None,
    seed: SeedOption = 0,
    experts: Annotated[
        int | None,
        typer.Option(
            "--experts",
            min=1,
            help="Number of experts of the models that route between experts (model "
            "default if omitted).",
        ),
    ] = None,
    threads: ThreadsOption = None,
    out: CompareOutOption = None,
    quiet: QuietOption = False,
) -> None:
    """Models side by side on the same streams and seed: table, metrics.json, plots, models.

    Without --model, the models `list` marks * are compared.
    """
    from moesuite.core.training import default_run_path
    from moesuite.streaming.data import DEFAULT_STREAM, StreamSource
    from moesuite.streaming.data.river_streams import is_river
    from moesuite.streaming.evaluate import DEFAULT_COMPARE
    from moesuite.streaming.evaluate import compare as compare_models
    from moesuite.streaming.models import MODELS

    models = list(model or DEFAULT_COMPARE)
    for m in models:
        MODELS.get(m)
    args = tuple(stream_arg or ())
    if args and not any(is_river(s) for s in stream or []):
        raise ValueError(
            f"--stream-arg {args[0]}: stream arguments go with a river stream (--stream "
            "river:NAME); `moesuite streaming list` shows them."
        )
    if data is not None:
        sources = [StreamSource(s, data, target, n, seed) for s in stream or [None]]
    else:
        sources = [
            StreamSource(s, None, target, n, seed, args=args if is_river(s) else ())
            for s in stream or [DEFAULT_STREAM]
        ]
    path = out or default_run_path("runs", "streaming", "compare")
    rows = _with_progress(
        quiet,
        threads,
        lambda progress: compare_models(
            models, sources, path, seed, _experts_params(models, experts), progress=progress
        ),
    )
    _print_rows(rows, path)


@app.command("list")
def list_() -> None:
    """List the models and streams: the registries and river's datasets and generators."""
    from moesuite.streaming.data import DEFAULT_STREAM, STREAMS, river_streams, stream_kind
    from moesuite.streaming.evaluate import DEFAULT_COMPARE
    from moesuite.streaming.models import MODELS

    typer.echo("models (* = compared when `compare` gets no --model):")
    for name, text in MODELS.help().items():
        mark = "*" if name in DEFAULT_COMPARE else " "
        typer.echo(f"  {name:<20}{mark} {text}")
    typer.echo("streams (* = the default --stream):")
    for name, text in STREAMS.help().items():
        mark = "*" if name == DEFAULT_STREAM else " "
        typer.echo(f"  {name:<20}{mark} {stream_kind(name):<10} {text}")
    typer.echo("river streams (--stream river:NAME, arguments with --stream-arg KEY=VALUE):")
    for name, (_, kind, text) in river_streams().items():
        typer.echo(f"  {name:<21} {kind:<10} {text}")
    typer.echo("  (or your own file: --data PATH.csv|.arff --target COLUMN)")


def main() -> None:
    """Console-script entry point (``moesuite-streaming``)."""
    app()
