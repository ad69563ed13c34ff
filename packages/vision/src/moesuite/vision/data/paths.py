"""Where the shared data sets are read from: ``$MOESUITE_DATA_DIR`` or a nearby ``shared/data``.

The project's real data (MNIST, Kodak24, CBSD68, McMaster) lies in ``../shared/data/`` beside a
checkout; it is read from there and never copied into the package.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_data_dir", "shared_path"]


def shared_data_dir() -> Path | None:
    """The first of ``$MOESUITE_DATA_DIR`` and ``shared/data`` in ., .. and ../.. that exists."""
    env = os.environ.get("MOESUITE_DATA_DIR")
    candidates = [Path(env)] if env else []
    cwd = Path.cwd()
    candidates += [
        cwd / "shared" / "data",
        cwd.parent / "shared" / "data",
        cwd.parent.parent / "shared" / "data",
    ]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def shared_path(*parts: str) -> Path:
    """``<shared data dir>/<parts>``, with an error that says how to point at it when missing."""
    root = shared_data_dir()
    path = root.joinpath(*parts) if root is not None else None
    if path is None or not path.exists():
        raise FileNotFoundError(
            f"shared data {'/'.join(parts)!r} not found "
            "(looked in $MOESUITE_DATA_DIR, ./shared/data, "
            "../shared/data, ../../shared/data); pass --data PATH or set MOESUITE_DATA_DIR."
        )
    return path
