"""Run directories, written atomically: a temp directory that is renamed only on success.

Layout (``runs/<domain>/<model>/<timestamp>/``)::

    config.json      everything needed to rebuild the model and the data
    metrics.json     final figures
    checkpoints/     Lightning checkpoint(s) and/or ``model.pt``
    logs/            per-step CSV metrics (Lightning CSVLogger) and metrics.jsonl per epoch
    plots/*.png      figures

If anything raises while the run is being written, the temp directory is removed and no run
directory is left behind, except that a training run interrupted by the user (Ctrl+C, or a
``SystemExit``) keeps its checkpoints: with ``keep_interrupted=True`` the directory is moved to
its final place with an ``INTERRUPTED`` file, and ``train --resume RUN`` continues it in place
(:func:`resume_run_directory`). In a multi-process (DDP) launch every rank runs the command, but
only rank 0 writes the run directory; the other ranks write into a private temporary directory
that is removed afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "INTERRUPTED",
    "RunDirectory",
    "run_directory",
    "resume_run_directory",
    "resumable_config",
    "default_run_path",
    "to_jsonable",
    "read_json",
]

#: the file that marks a run directory whose training was interrupted (resumable)
INTERRUPTED = "INTERRUPTED"


def _rank() -> int:
    from lightning.fabric.utilities.rank_zero import _get_rank

    return _get_rank() or 0


def default_run_path(root: str | Path, domain: str, model: str) -> Path:
    """``root/domain/model/<YYYYmmdd-HHMMSS>`` (suffixed ``-1``, ``-2``... if it exists)."""
    base = Path(root) / domain / model / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, i = base, 0
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, paths, tensors, numpy values and non-finite floats to JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # torch / numpy
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    return str(obj)


def read_json(path: str | Path) -> Any:
    """Read a JSON file, with a clear error naming it when missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a moesuite run directory file).")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from None


def resumable_config(
    run_dir: str | Path,
    expect: dict[str, Any] | None = None,
    given: dict[str, Any] | None = None,
    finished_ok: bool = False,
) -> dict[str, Any]:
    """The ``config.json`` of an interrupted ``train`` run, checked before it is resumed.

    Every domain's ``train --resume RUN`` calls this first, so a bad ``RUN`` gets the same clear
    error everywhere and nothing is written.

    Args:
        run_dir: the run directory given to ``--resume``.
        expect: config entries the run must have, e.g. ``{"system": "promoe"}``.
        given: command options that a resumed run cannot change (name -> value; ``None`` means
            not given): any that is set is refused, since the run keeps its own settings.
        finished_ok: accept a finished run too (to continue it to a new total of epochs).

    Raises:
        FileNotFoundError: not a run directory written by ``train``, or no last checkpoint.
        ValueError: a config entry differs from ``expect``, an option of ``given`` is set, or
            the run finished (no ``INTERRUPTED`` file).

    Examples:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> resumable_config(run)
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...: not a run directory written by `train` (no config.json); ...
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not (run_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{run_dir}: not a run directory written by `train` (no config.json); cannot resume."
        )
    config = read_json(run_dir / "config.json")
    for key, value in (expect or {}).items():
        if config.get(key) != value:
            raise ValueError(
                f"--resume {run_dir}: its {key} is {config.get(key)!r}, not {value!r}; "
                "resume a run with the command that trains it."
            )
    set_options = sorted(k for k, v in (given or {}).items() if v is not None)
    if set_options:
        raise ValueError(
            f"{', '.join(set_options)}: --resume continues {run_dir} with the settings in its "
            "config.json; drop these options."
        )
    if not finished_ok and not (run_dir / INTERRUPTED).is_file():
        raise ValueError(
            f"{run_dir}: this run was not interrupted (no {INTERRUPTED} file); nothing to resume."
        )
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise FileNotFoundError(
            f"{run_dir}: no checkpoints/last.ckpt to resume from (interrupted before the first "
            "checkpoint: start it again)."
        )
    return config


class RunDirectory:
    """A run being written. Write into :attr:`path`; it becomes :attr:`final_path` on success."""

    def __init__(self, path: Path, final_path: Path):
        self.path = path
        self.final_path = final_path

    def file(self, name: str) -> Path:
        """Path of a file inside the run (parent directories created)."""
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def plot_path(self, name: str) -> Path:
        """``plots/<name>.png``."""
        return self.file(f"plots/{name if name.endswith('.png') else name + '.png'}")

    @property
    def checkpoint_dir(self) -> Path:
        """``checkpoints/``."""
        return self.file("checkpoints/.keep").parent

    @property
    def log_dir(self) -> Path:
        """``logs/``."""
        return self.file("logs/.keep").parent

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` (made JSON-safe) as indented JSON."""
        p = self.file(name)
        p.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")
        return p

    def write_config(self, config: Any) -> Path:
        """``config.json``."""
        return self.write_json("config.json", config)

    def write_metrics(self, metrics: Any) -> Path:
        """``metrics.json``."""
        return self.write_json("metrics.json", metrics)


@contextmanager
def run_directory(
    path: str | Path, overwrite: bool = False, keep_interrupted: bool = False
) -> Iterator[RunDirectory]:
    """Create the run directory ``path`` atomically.

    Files are written into a hidden sibling ``.<name>.tmp-<pid>`` which is renamed to ``path``
    when the block exits normally and deleted (with any parents this call created) when it
    raises.

    Args:
        path: the final run directory (see :func:`default_run_path`).
        overwrite: replace an existing ``path`` instead of refusing.
        keep_interrupted: on ``KeyboardInterrupt``/``SystemExit``, keep what was written (as
            ``path`` with an ``INTERRUPTED`` file) so that training can be resumed.

    Examples:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> with run_directory(root / "run") as run:
        ...     _ = run.write_metrics({"mse": 0.5})
        >>> sorted(p.name for p in (root / "run").iterdir())
        ['metrics.json']
        >>> try:
        ...     with run_directory(root / "failed") as run:
        ...         _ = run.write_metrics({"mse": 0.5}); raise RuntimeError("boom")
        ... except RuntimeError:
        ...     pass
        >>> sorted(p.name for p in root.iterdir())
        ['run']
    """
    final = Path(path)
    if _rank() != 0:  # a DDP worker: rank 0 writes the run directory
        with _scratch() as run:
            yield run
        return
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: run directory already exists; choose another --out.")
    created = []
    parent = final.parent
    while not parent.exists():
        created.append(parent)
        parent = parent.parent
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    run = RunDirectory(tmp, final)
    try:
        yield run
    except (KeyboardInterrupt, SystemExit):
        if (
            keep_interrupted
            and (tmp / "checkpoints").is_dir()
            and any((tmp / "checkpoints").iterdir())
        ):
            (tmp / INTERRUPTED).write_text(
                "training was interrupted; continue it with `train --resume <this directory>`\n"
            )
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            run.path = final
        else:
            _discard(tmp, created)
        raise
    except BaseException:
        _discard(tmp, created)
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    run.path = final


def _discard(tmp: Path, created: list[Path]) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    for d in created:  # innermost first
        try:
            d.rmdir()
        except OSError:
            break


@contextmanager
def _scratch() -> Iterator[RunDirectory]:
    scratch = Path(tempfile.mkdtemp(prefix="moesuite-rank-"))
    try:
        yield RunDirectory(scratch, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def resume_run_directory(path: str | Path) -> Iterator[RunDirectory]:
    """Reopen a run directory written by ``train`` to continue it in place (``--resume``).

    The ``INTERRUPTED`` marker is removed when the block finishes; if it raises, the directory
    is left as it was (its checkpoints still resumable).
    """
    final = Path(path)
    if not final.is_dir() or not (final / "config.json").is_file():
        raise FileNotFoundError(
            f"{final}: not a run directory written by `train` (no config.json); cannot resume."
        )
    if _rank() != 0:
        with _scratch() as run:
            yield run
        return
    run = RunDirectory(final, final)
    yield run
    (final / INTERRUPTED).unlink(missing_ok=True)
