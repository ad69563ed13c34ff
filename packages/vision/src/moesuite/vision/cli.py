"""``moesuite vision`` (also ``moesuite-vision``): ProMoE, MoFME and AdvMoE from one command line.

Examples::

    moesuite vision list                                    # systems and their models
    moesuite vision train promoe --objective rf             # quick default on scikit-learn digits
    moesuite vision sample runs/vision/promoe/<stamp> --class 3 --cfg 1.5 --steps 50 --out grid.png
    moesuite vision train mofme                             # all-weather restoration, small crops
    moesuite vision restore runs/vision/mofme/<stamp> photo.jpg --out restored/
    moesuite vision train advmoe --scheme advmoe            # robust MoE-CNN on digits
    moesuite vision attack runs/vision/advmoe/<stamp> --eps 0.3 --steps 10 --restarts 1
    moesuite vision compare --model promoe --model dit --objective rf

Every verb dispatches to the system that owns the model (``train``, ``compare``) or that wrote the
run directory (``eval``, ``sample``, ``restore``, ``attack``); an option that does not apply to
that system is one ``error:`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    ThreadsOption,
    data_option,
    out_option,
    typer_factory,
)

__all__ = ["app", "main"]

app = typer_factory(
    "vision",
    "Vision MoE: ProMoE (diffusion transformers), MoFME (deweathering), AdvMoE (robust CNNs).",
)

TrainData = data_option(
    "Your data: MNIST idx files or a folder of class-labelled images (ProMoE, AdvMoE), a folder of "
    "clean images or paired degraded/ and clean/ folders (MoFME). Default: the system's quick data."
)
EvalData = data_option(
    "Data to evaluate on (default: the held-out data of the run's own training data)."
)
StepsTrain = Annotated[
    int | None, typer.Option("--steps", min=1, help="Optimiser steps (instead of --epochs).")
]
BatchOption = Annotated[
    int | None,
    typer.Option("--batch-size", min=1, help="Training batch size (model default if omitted)."),
]
LrOption = Annotated[float | None, typer.Option("--lr", min=0.0, help="Peak learning rate (> 0).")]
ObjectiveOption = Annotated[
    str | None, typer.Option("--objective", help="ProMoE: 'rf' (rectified flow) or 'ddpm'.")
]
SchemeOption = Annotated[
    str | None, typer.Option("--scheme", help="AdvMoE: 'advmoe', 'joint' or 'dense' training.")
]
RoutingOption = Annotated[
    str | None, typer.Option("--routing", help="AdvMoE: 'shared' or 'per_layer' routers.")
]
EpsOption = Annotated[
    float | None, typer.Option("--eps", min=0.0, help="L-infinity attack radius (AdvMoE).")
]
ModulationOption = Annotated[
    str | None, typer.Option("--modulation", help="MoFME: 'vector' or 'linear' FiLM experts.")
]
UarOption = Annotated[
    bool | None, typer.Option("--uar/--no-uar", help="MoFME: uncertainty-aware router on or off.")
]
PatchOption = Annotated[
    int | None,
    typer.Option("--patch-size", min=1, help="ProMoE: patch side (must divide the image sides)."),
]
CfgOption = Annotated[
    float | None, typer.Option("--cfg", min=0.0, help="Classifier-free guidance scale (ProMoE).")
]
SampleSteps = Annotated[
    int | None, typer.Option("--steps", min=1, help="Sampling (ProMoE) or attack (AdvMoE) steps.")
]
RestartsOption = Annotated[
    int | None, typer.Option("--restarts", min=1, help="PGD random restarts (AdvMoE).")
]


def _report(result) -> None:
    typer.echo(result.summary)
    typer.echo(f"run directory: {result.run_dir}")


@app.command()
def train(
    model: ModelArg = "promoe",
    data: TrainData = None,
    epochs: EpochsOption = None,
    steps: StepsTrain = None,
    batch_size: BatchOption = None,
    lr: LrOption = None,
    experts: ExpertsOption = None,
    objective: ObjectiveOption = None,
    scheme: SchemeOption = None,
    routing: RoutingOption = None,
    eps: EpsOption = None,
    modulation: ModulationOption = None,
    uar: UarOption = None,
    patch_size: PatchOption = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    devices: DevicesOption = "auto",
    strategy: StrategyOption = "auto",
    resume: ResumeOption = None,
    seed: SeedOption = 0,
    out: out_option("Run directory to create (default: runs/vision/<model>/<timestamp>).") = None,
    quiet: QuietOption = False,
) -> None:
    """Train a model (see `list`) and write a run directory."""
    from moesuite.vision.systems import call, system_for_model

    system = system_for_model(model)
    _report(
        call(
            system.train,
            system,
            model,
            data=data,
            epochs=epochs,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            experts=experts,
            objective=objective,
            scheme=scheme,
            routing=routing,
            eps=eps,
            modulation=modulation,
            uar=uar,
            patch_size=patch_size,
            threads=threads,
            device=device,
            devices=devices,
            strategy=strategy,
            resume=resume,
            seed=seed,
            out=out,
            quiet=quiet,
        )
    )


@app.command("eval")
def evaluate(
    run: RunArg,
    data: EvalData = None,
    cfg: CfgOption = None,
    steps: SampleSteps = None,
    eps: EpsOption = None,
    restarts: RestartsOption = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    out: out_option("Directory for the evaluation (default: RUN/eval-<timestamp>).") = None,
    quiet: QuietOption = False,
) -> None:
    """Evaluate a trained run with its system's metrics; writes an evaluation directory."""
    from moesuite.vision.systems import call, system_for_run

    system = system_for_run(run)
    _report(
        call(
            system.evaluate,
            system,
            run,
            data=data,
            cfg=cfg,
            steps=steps,
            eps=eps,
            restarts=restarts,
            threads=threads,
            device=device,
            seed=seed,
            out=out,
            quiet=quiet,
        )
    )


@app.command()
def compare(
    model: ModelsOption = None,
    data: TrainData = None,
    epochs: EpochsOption = None,
    steps: StepsTrain = None,
    batch_size: BatchOption = None,
    experts: ExpertsOption = None,
    objective: ObjectiveOption = None,
    scheme: SchemeOption = None,
    eps: EpsOption = None,
    modulation: ModulationOption = None,
    uar: UarOption = None,
    patch_size: PatchOption = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", min=1, help="Seeds per model (0, 1, ...).")
    ] = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    out: out_option("Run directory to create (default: runs/vision/compare/<timestamp>).") = None,
    quiet: QuietOption = False,
) -> None:
    """Train and evaluate several models of one system at equal budget; one table."""
    from moesuite.vision.systems import call, system_for_model

    if not model:
        raise ValueError(
            "--model: give at least two models to compare (repeat --model; see `list`)."
        )
    systems = {system_for_model(m).name for m in model}
    if len(systems) != 1:
        raise ValueError(
            f"--model: models of different systems ({sorted(systems)}) cannot share one table."
        )
    system = system_for_model(model[0])
    _report(
        call(
            system.compare,
            system,
            list(model),
            data=data,
            epochs=epochs,
            steps=steps,
            batch_size=batch_size,
            experts=experts,
            objective=objective,
            scheme=scheme,
            eps=eps,
            modulation=modulation,
            uar=uar,
            patch_size=patch_size,
            seeds=seeds,
            threads=threads,
            device=device,
            seed=seed,
            out=out,
            quiet=quiet,
        )
    )


@app.command("list")
def list_() -> None:
    """The vision systems and the models each trains."""
    from moesuite.vision.systems import systems

    for name in systems().list():
        system = systems().create(name)
        typer.echo(f"{name}: {system.help}")
        for model, text in system.models.help().items():
            typer.echo(f"  {model:<16} {text}")


def _own_verb(verb: str, run: Path, **options) -> None:
    from moesuite.vision.systems import call, system_for_run

    system = system_for_run(run)
    if verb not in system.verbs:
        owners = "a system that has it"
        raise ValueError(
            f"{run} is a {system.name} run; `{verb}` needs {owners} (see `moesuite vision list`)."
        )
    _report(call(system.verbs[verb], system, run, **options))


@app.command()
def sample(
    run: RunArg,
    class_: Annotated[
        list[int] | None,
        typer.Option("--class", min=0, help="Class label(s) to sample (repeat; default all)."),
    ] = None,
    cfg: CfgOption = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Sampling steps.")] = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Samples per class.")] = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    out: out_option("PNG grid to write (default: RUN/samples/<timestamp>.png).") = None,
) -> None:
    """ProMoE: generate images of given classes from a trained diffusion run; writes a PNG grid."""
    _own_verb(
        "sample",
        run,
        classes=class_,
        cfg=cfg,
        steps=steps,
        n=n,
        threads=threads,
        device=device,
        seed=seed,
        out=out,
    )


@app.command()
def restore(
    run: RunArg,
    images: Annotated[
        Path, typer.Argument(metavar="IMAGE_OR_FOLDER", help="An image or a folder of images.")
    ],
    tile: Annotated[
        int | None, typer.Option("--tile", min=1, help="Tile size for images of any size.")
    ] = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    out: out_option("Folder for the restored images (default: <input>-restored/).") = None,
) -> None:
    """MoFME: restore a degraded image (or every image of a folder), any size, by tiles."""
    _own_verb("restore", run, images=images, tile=tile, threads=threads, device=device, out=out)


@app.command()
def attack(
    run: RunArg,
    eps: EpsOption = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="PGD steps.")] = None,
    restarts: RestartsOption = None,
    data: EvalData = None,
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
    out: out_option("Directory for the attack report (default: RUN/attack-<timestamp>).") = None,
) -> None:
    """AdvMoE: robust accuracy of a trained run under PGD (whole model and router-only)."""
    _own_verb(
        "attack",
        run,
        eps=eps,
        steps=steps,
        restarts=restarts,
        data=data,
        threads=threads,
        device=device,
        seed=seed,
        out=out,
    )


def main() -> None:
    """Console-script entry point (``moesuite-vision``)."""
    app()
