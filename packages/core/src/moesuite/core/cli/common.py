"""What every moesuite CLI shares: the app factory, option aliases and one-line errors.

Domain apps are built with :func:`typer_factory` and use the ``Annotated`` aliases below so
that ``--seed``, ``--out``, ``--data``, ``--device`` and ``--epochs`` read the same everywhere.
Commands registered on such an app turn known errors (bad values, missing files, malformed
data) into one line on stderr, ``error: <what> (<input>): <expected>``, and exit code 2;
set ``MOESUITE_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "CLIError",
    "MoeTyper",
    "typer_factory",
    "handle_errors",
    "SeedOption",
    "OutOption",
    "DataOption",
    "DeviceOption",
    "EpochsOption",
    "QuietOption",
    "USER_ERRORS",
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
            typer.echo(f"error: {message}", err=True)
            typer.echo("(run with MOESUITE_DEBUG=1 for the traceback)", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


class MoeTyper(typer.Typer):
    """A ``typer.Typer`` whose commands report user errors as one line (see module docs)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(handle_errors(fn))
            return fn

        return deco


def typer_factory(name: str, help: str) -> MoeTyper:
    """The Typer app every moesuite CLI uses (help on no arguments, plain exceptions)."""
    return MoeTyper(
        name=name,
        help=help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )


SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (runs are deterministic given it).")]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Run directory to create (default: runs/<domain>/<model>/<timestamp>)."),
]
DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Your own data file; the built-in generator is used when omitted."),
]
DeviceOption = Annotated[str, typer.Option("--device", help="'auto', 'cpu' or 'cuda'.")]
EpochsOption = Annotated[int | None, typer.Option("--epochs", min=1, help="Training epochs (model default if omitted).")]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
