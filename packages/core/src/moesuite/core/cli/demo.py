"""``moesuite demo``: the quick tour of the core and every installed domain, as one table."""

from __future__ import annotations

import time
import traceback
from importlib.metadata import entry_points
from typing import Annotated

import typer

from moesuite.core.cli.common import OutOption, SeedOption


def demo(
    out: OutOption = None,
    seed: SeedOption = 0,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these domains ('core' included).")
    ] = None,
) -> None:
    """Run the core demo (MoE vs dense on digits) and each installed domain's quick demo."""
    from rich.console import Console
    from rich.table import Table

    from moesuite.core.demo import run_core_demo
    from moesuite.core.training import default_run_path, run_directory

    console = Console(width=None if Console().is_terminal else 160)
    eps = {ep.name: ep for ep in entry_points(group="moesuite.demo")}
    wanted = ["core", *sorted(eps)]
    if only:
        unknown = sorted(set(only) - set(wanted))
        if unknown:
            raise ValueError(f"--only {unknown}: not installed; expected some of {wanted}.")
        wanted = [w for w in wanted if w in only]
    path = out or default_run_path("runs", "demo", "tour")
    rows: list[dict] = []
    failed: list[str] = []
    start = time.perf_counter()
    with run_directory(path) as run:
        for name in wanted:
            console.print(f"[bold]demo:[/bold] {name} ...")
            t0 = time.perf_counter()
            try:
                if name == "core":
                    got = run_core_demo(run.path / "core", seed=seed)
                else:
                    got = eps[name].load()(run.path / name)
                rows.extend(got)
                console.print(f"  done in {time.perf_counter() - t0:.1f} s")
            except Exception as exc:  # report every domain, then fail
                failed.append(name)
                console.print(f"[red]  {name} demo failed: {exc}[/red]")
                (run.path / f"{name}_error.txt").write_text(traceback.format_exc())
        run.write_metrics({"rows": rows, "failed": failed, "seconds": time.perf_counter() - start})
    table = Table(
        title=f"moesuite demo ({time.perf_counter() - start:.0f} s); run directory {path}"
    )
    for col in ("domain", "task", "model", "metric", "value", "seconds", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            *(
                str(r.get(c, ""))
                for c in ("domain", "task", "model", "metric", "value", "seconds", "note")
            )
        )
    console.print(table)
    if failed:
        raise typer.Exit(code=1)
