"""What both physics benchmarks share: run ids, the commit, resumable JSON lines, tables."""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def commit() -> str:
    """The checkout's commit (``+dirty`` when the physics package has uncommitted changes)."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "packages/physics", "benchmarks/physics/bench_*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("+dirty" if dirty else "")


def open_rows(path: Path, resume: str | None) -> tuple[str, list[dict]]:
    """``(run id, rows already done)``: a new run replaces ``path``; ``resume`` continues one."""
    if resume is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        return _dt.datetime.now().strftime("%Y%m%d-%H%M%S"), []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    other = {r.get("run_id") for r in rows} - {resume}
    if other:
        raise SystemExit(
            f"{path} holds rows of other runs {sorted(other)}; cannot resume {resume}."
        )
    return resume, rows


def append_row(path: Path, row: dict) -> None:
    """Print ``row`` as one JSON line and append it to ``path``."""
    line = json.dumps(row)
    print(line, flush=True)
    with path.open("a") as fh:
        fh.write(line + "\n")


def read_rows(path: Path) -> list[dict]:
    """Every row of ``path`` (one run)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table cell (``-`` when missing)."""
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(header: Iterable[str], lines: Iterable[Iterable[str]]) -> str:
    """A Markdown table."""
    header = list(header)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def run_all(
    run_task: Callable[[dict], dict], tasks: list[dict], record: Callable[[dict], None], jobs: int
) -> None:
    """Run ``tasks`` (``jobs`` at once in spawned processes) and ``record`` each row as it ends."""
    if jobs <= 1:
        for task in tasks:
            record(run_task(task))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        for future in as_completed([pool.submit(run_task, t) for t in tasks]):
            record(future.result())
