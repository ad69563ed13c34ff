"""Run directories, written atomically: a temp directory that is renamed only on success.

Layout (``runs/<domain>/<model>/<timestamp>/``)::

    config.json      everything needed to rebuild the model and the data
    metrics.json     final figures
    checkpoints/     Lightning checkpoint(s) and/or ``model.pt``
    logs/            per-step CSV metrics (Lightning CSVLogger) and metrics.jsonl per epoch
    plots/*.png      figures

If anything raises while the run is being written, the temp directory is removed and no run
directory is left behind.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["RunDirectory", "run_directory", "default_run_path", "to_jsonable", "read_json"]


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
def run_directory(path: str | Path, overwrite: bool = False) -> Iterator[RunDirectory]:
    """Create the run directory ``path`` atomically.

    Files are written into a hidden sibling ``.<name>.tmp-<pid>`` which is renamed to ``path``
    when the block exits normally and deleted (with any parents this call created) when it
    raises.

    Args:
        path: the final run directory (see :func:`default_run_path`).
        overwrite: replace an existing ``path`` instead of refusing.

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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in created:  # innermost first
            try:
                d.rmdir()
            except OSError:
                break
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    run.path = final
