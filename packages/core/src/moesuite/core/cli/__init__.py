"""The umbrella ``moesuite`` command.

Core commands: ``info``, ``bench``, ``demo``. Every installed domain package registers its
Typer app under the entry-point group ``moesuite.cli`` and is mounted as a sub-command
(``moesuite timeseries train ...``); the same app is also the domain's own script
(``moesuite-timeseries train ...``).
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from moesuite.core.cli.bench import bench
from moesuite.core.cli.common import typer_factory
from moesuite.core.cli.demo import demo
from moesuite.core.cli.info import info

__all__ = ["app", "build_app", "main"]


def build_app() -> typer.Typer:
    """The ``moesuite`` app with core commands and every installed domain mounted."""
    root = typer_factory(
        name="moesuite",
        help=(
            "Mixture-of-Experts models for time series, streams, physics and vision, "
            "on one shared core."
        ),
    )
    root.command()(info)
    root.command()(bench)
    root.command()(demo)
    for ep in sorted(entry_points(group="moesuite.cli"), key=lambda e: e.name):
        try:
            sub = ep.load()
        except Exception as exc:  # a broken domain must not take the whole CLI down
            print(f"warning: could not load the {ep.name!r} commands ({exc})", file=sys.stderr)
            continue
        root.add_typer(sub, name=ep.name)
    return root


def __getattr__(name: str) -> typer.Typer:
    # ``app`` is built on first use, not at import: a domain's CLI module imports
    # ``moesuite.core.cli.common`` (and so this package) while it is itself half imported, and
    # mounting the domains at that moment would import it a second time.
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    build_app()()
