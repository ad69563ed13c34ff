r"""What every moesuite CLI shares: the app factory, the shared options and one-line errors.

Every domain app is built with :func:`typer_factory` and offers the same verbs (``train MODEL``,
``eval RUN``, ``compare --model A --model B``, ``list``, plus its own) with the same option
names, taken from the aliases below: ``--data``, ``--out``, ``--seed``, ``--epochs``,
``--experts``, ``--threads``, ``--device``, ``--devices``, ``--strategy``, ``--resume``,
``--quiet``. Model names are never typed into help strings: commands validate them against the
domain's registry and ``list`` prints them.

Every rejected value is one line on stderr and exit code 2, whether Typer rejects it (an
out-of-range ``--epochs 0``, an unknown option) or the command does (a missing file, an
unknown model): ``error: <what> (<input>): <expected>``. Set ``MOESUITE_DEBUG=1`` to see the
traceback instead.

Examples:
    >>> from typer.testing import CliRunner
    >>> app = typer_factory("toy", "A toy domain.")
    >>> @app.command()
    ... def train(epochs: EpochsOption = None, seed: SeedOption = 0) -> None:
    ...     print(f"epochs={epochs} seed={seed}")
    >>> @app.command("list")
    ... def list_() -> None:
    ...     print("nothing")
    >>> CliRunner().invoke(app, ["train", "--epochs", "2"]).output
    'epochs=2 seed=0\n'
    >>> result = CliRunner().invoke(app, ["train", "--epochs", "0"])
    >>> result.exit_code, result.output.strip()
    (2, "error: Invalid value for '--epochs': Input should be greater than or equal to 1")
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

__all__ = [
    "CLIError",
    "MoeGroup",
    "MoeTyper",
    "typer_factory",
    "handle_errors",
    "USER_ERRORS",
    "data_option",
    "out_option",
    "threads_option",
    "ModelArg",
    "ModelsOption",
    "RunArg",
    "DataOption",
    "OutOption",
    "SeedOption",
    "EpochsOption",
    "ExpertsOption",
    "ThreadsOption",
    "DeviceOption",
    "DevicesOption",
    "StrategyOption",
    "ResumeOption",
    "QuietOption",
    "lightning_kwargs",
]


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


#: exceptions that mean "bad input", shown as one line instead of a traceback
USER_ERRORS: tuple[type[BaseException], ...] = (
    CLIError,
    ValueError,
    TypeError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    FloatingPointError,
)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command so user errors print one line and exit 2 (traceback with MOESUITE_DEBUG=1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            if os.environ.get("MOESUITE_DEBUG") == "1":
                raise
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            typer.echo(f"error: {_one_line(message)}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


class MoeGroup(TyperGroup):
    """A Typer group whose usage errors (bad or unknown options) are one ``error:`` line."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        from typer._click import exceptions as click_exc

        try:
            rv = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except click_exc.NoArgsIsHelpError as exc:
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except click_exc.ClickException as exc:
            if not standalone_mode:
                raise
            typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
            sys.exit(2)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("aborted", err=True)
            sys.exit(1)
        if standalone_mode:
            # non-standalone mode returns the code of a ``typer.Exit``; a command returns None
            sys.exit(rv if isinstance(rv, int) else 0)
        return rv


class MoeTyper(typer.Typer):
    """A ``typer.Typer`` whose commands report user errors as one line (see module docs)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("cls", MoeGroup)
        super().__init__(*args, **kwargs)

    def command(
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(handle_errors(fn))
            return fn

        return deco


def typer_factory(name: str, help: str) -> MoeTyper:
    """The Typer app every moesuite CLI uses (help on no arguments, one-line errors)."""
    return MoeTyper(
        name=name,
        help=help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )


def data_option(help: str) -> Any:
    """``--data PATH`` with a help text true for the command it is on."""
    return Annotated[Path | None, typer.Option("--data", help=help)]


def out_option(help: str) -> Any:
    """``--out DIR`` with a help text true for the command it is on."""
    return Annotated[Path | None, typer.Option("--out", help=help)]


def threads_option(help: str) -> Any:
    """``--threads N`` with a help text true for the command's default."""
    return Annotated[int | None, typer.Option("--threads", min=1, help=help)]


def _check_device(value: str) -> str:
    if value not in ("auto", "cpu", "cuda", "gpu", "mps"):
        raise typer.BadParameter(f"{value!r} is not one of 'auto', 'cpu', 'cuda', 'mps'.")
    return value


def _check_devices(value: str) -> str:
    text = value.strip()
    if text == "auto" or text == "-1":
        return text
    parts = [p for p in text.split(",") if p.strip()]
    if (
        not parts
        or not all(p.strip().isdigit() for p in parts)
        or (len(parts) == 1 and int(parts[0]) < 1)
    ):
        raise typer.BadParameter(
            f"{value!r} is not 'auto', a positive count, or a list of device indices like 0,1."
        )
    return text


ModelArg = Annotated[
    str, typer.Argument(metavar="MODEL", help="The model (`list` shows every name).")
]
ModelsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model", help="A model to include; repeat for several (`list` shows every name)."
    ),
]
RunArg = Annotated[Path, typer.Argument(metavar="RUN", help="A run directory written by `train`.")]
DataOption = data_option("Your own data file; the built-in generator is used when omitted.")
OutOption = out_option("Run directory to create (default: runs/<domain>/<model>/<timestamp>).")
SeedOption = Annotated[
    int, typer.Option("--seed", help="Random seed (runs are deterministic given it).")
]
EpochsOption = Annotated[
    int | None, typer.Option("--epochs", min=1, help="Training epochs (model default if omitted).")
]
ExpertsOption = Annotated[
    int | None,
    typer.Option("--experts", min=1, help="Number of routed experts (model default if omitted)."),
]
ThreadsOption = threads_option("torch threads while the command runs (default: torch's).")
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        callback=_check_device,
        help="'auto', 'cpu', 'cuda' or 'mps' (Lightning accelerator).",
    ),
]
DevicesOption = Annotated[
    str,
    typer.Option(
        "--devices",
        callback=_check_devices,
        help="Lightning devices: 'auto', a count (2) or indices (0,1).",
    ),
]
StrategyOption = Annotated[
    str,
    typer.Option("--strategy", help="Lightning strategy: 'auto', 'ddp', 'ddp_spawn', 'fsdp', ..."),
]
ResumeOption = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        metavar="RUN",
        help="Continue an interrupted `train` run from its last checkpoint.",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]


def lightning_kwargs(
    device: str = "auto", devices: str = "auto", strategy: str = "auto"
) -> dict[str, Any]:
    """``accelerator``, ``devices``, ``strategy`` for :func:`moesuite.core.training.make_trainer`.

    Examples:
        >>> lightning_kwargs("cpu", "2", "ddp")
        {'accelerator': 'cpu', 'devices': 2, 'strategy': 'ddp'}
        >>> lightning_kwargs("cuda", "0,1")
        {'accelerator': 'gpu', 'devices': [0, 1], 'strategy': 'auto'}
    """
    accelerator = {"cuda": "gpu"}.get(device, device)
    text = str(devices).strip()
    parsed: int | str | list[int]
    if text in ("auto", "-1"):
        parsed = "auto" if text == "auto" else -1
    elif "," in text:
        parsed = [int(p) for p in text.split(",") if p.strip()]
    else:
        parsed = int(text)
    return {"accelerator": accelerator, "devices": parsed, "strategy": strategy}
