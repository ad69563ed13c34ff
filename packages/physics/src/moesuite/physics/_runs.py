"""Run directories of the physics commands (new, or interrupted ones to resume) and tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from moesuite.core.training import (
    RunDirectory,
    default_run_path,
    resumable_config,
    resume_run_directory,
    run_directory,
)

__all__ = ["open_run", "write_run_config", "resumed_config", "markdown_table"]


@contextmanager
def open_run(name: str, out: Path | None, resume: Path | None) -> Iterator[RunDirectory]:
    """The run directory of a ``train``: ``resume`` reopened in place, or a new one.

    A new run goes to ``out`` (default ``runs/physics/<name>/<timestamp>``), written atomically
    and kept with an ``INTERRUPTED`` marker if training is interrupted (Ctrl+C), so that
    ``train --resume`` can continue it.
    """
    if resume is not None:
        with resume_run_directory(resume) as run:
            yield run
        return
    final = Path(out) if out is not None else default_run_path("runs", "physics", name)
    with run_directory(final, keep_interrupted=True) as run:
        yield run


def write_run_config(run: RunDirectory, model: str, task: str, **fields: Any) -> None:
    """``config.json`` of a ``train`` run: the model, the domain, the task and ``fields``."""
    run.write_config({"model": model, "domain": "physics", "task": task, **fields})


def resumed_config(resume: Path, model: str, **given: Any) -> dict[str, Any]:
    """``config.json`` of an interrupted run to continue with ``model`` (core's checks).

    Args:
        resume: the interrupted run directory.
        model: the model named on the command line (must be the run's).
        **given: settings passed along with ``--resume``; any that is not ``None`` is refused,
            since a resumed run keeps the settings it was started with.

    Raises:
        FileNotFoundError: not a run directory, or no checkpoint to resume from.
        ValueError: another model, new settings, or a run that finished.
    """
    return resumable_config(resume, expect={"model": model}, given=given)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of ``rows`` with ``(key, title)`` columns (floats to 4 decimals).

    Examples:
        >>> rows = [{"model": "a", "mse": 0.12345}]
        >>> print(markdown_table(rows, [("model", "model"), ("mse", "MSE")]))
        | model | MSE |
        |---|---|
        | a | 0.1235 |
    """

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        return "-" if value is None else str(value)

    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)
