"""``moesuite info``: versions, device, backends (with reasons) and installed domains."""

from __future__ import annotations

import platform
from importlib.metadata import distributions, entry_points

import typer


def info() -> None:
    """Show versions, the device, which expert backends run here (and why not), and domains."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from moesuite.core import backends, routers

    console = Console()
    dists = sorted(
        (d.metadata["Name"], d.version)
        for d in distributions()
        if (d.metadata["Name"] or "").startswith("moesuite")
    )
    console.print(
        f"[bold]moesuite[/bold] on Python {platform.python_version()}, torch {torch.__version__}"
    )
    for name, ver in dists:
        console.print(f"  {name} {ver}")
    cuda = torch.cuda.is_available()
    device = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu"
    console.print(
        f"device: {device}; CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads"
    )
    table = Table(title="expert backends (float32)")
    table.add_column("backend")
    table.add_column("device")
    table.add_column("available")
    table.add_column("reason")
    for dev in ("cpu", "cuda") if cuda else ("cpu",):
        chosen = backends.resolve("auto", dev, torch.float32).name
        for status in backends.available(dev, torch.float32):
            mark = "yes (auto)" if status.name == chosen else ("yes" if status.available else "no")
            table.add_row(status.name, dev, mark, status.reason)
    console.print(table)
    console.print(f"routers: {', '.join(routers.list_routers())}")
    domains = sorted(ep.name for ep in entry_points(group="moesuite.cli"))
    hint = "(none installed: pip install packages/<domain>)"
    console.print(f"domains: {', '.join(domains) if domains else hint}")
    raise typer.Exit(0)
