"""The vision rows of ``moesuite demo``: each system's quick demo, one after the other."""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_demo"]


def run_demo(out_dir: str | Path) -> list[dict]:
    """Run every vision system's quick demo into ``out_dir/<system>``; rows of the demo table."""
    from moesuite.vision.systems import systems

    rows: list[dict] = []
    for name in systems().list():
        rows.extend(systems().create(name).demo(Path(out_dir) / name))
    return rows
