"""``moesuite bench``: MoE layer throughput as JSON lines (a quick version of the benchmark)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from moesuite.core.bench import BenchCase


def bench(
    tokens: Annotated[int, typer.Option("--tokens", min=1, help="Tokens per batch (T).")] = 1024,
    d_model: Annotated[int, typer.Option("--d-model", min=1, help="Model width (d).")] = 256,
    d_hidden: Annotated[
        int, typer.Option("--d-hidden", min=1, help="Expert hidden width (h).")
    ] = 512,
    experts: Annotated[int, typer.Option("--experts", min=1, help="Number of experts (E).")] = 8,
    k: Annotated[int, typer.Option("--k", min=1, help="Experts per token.")] = 2,
    skew: Annotated[str, typer.Option("--skew", help="uniform | zipf<s> | hot")] = "uniform",
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend", help="Backend(s) to time (repeatable); default: every available one."
        ),
    ] = None,
    router: Annotated[
        str, typer.Option("--router", help="Router for the full-layer row.")
    ] = "topk",
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Timed rounds (minimum and median reported).")
    ] = 5,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch threads (default: torch's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also append the JSON lines to this file.")
    ] = None,
) -> None:
    """Time the MoE layer (fwd and fwd+bwd) against the dense chain with the same active FLOPs."""
    from moesuite.core.bench import BenchCase
    from moesuite.core.training import torch_threads

    if k > experts:
        raise ValueError(f"--k {k} is larger than --experts {experts}; use k <= experts.")
    case = BenchCase(T=tokens, d=d_model, h=d_hidden, E=experts, k=k, skew=skew)
    with torch_threads(threads):  # the thread count is restored when the command returns
        rows = _measure(case, backend, router, repeats)
    sink = out.open("a") if out else None
    try:
        for row in rows:
            line = json.dumps(row)
            typer.echo(line)
            if sink:
                sink.write(line + "\n")
    finally:
        if sink:
            sink.close()


def _measure(case: BenchCase, backend: list[str] | None, router: str, repeats: int) -> list[dict]:
    import torch

    from moesuite.core import backends
    from moesuite.core.bench import (
        dense_candidate,
        experts_candidate,
        hf_loop_candidate,
        layer_candidate,
        measure,
    )

    chosen = backend or [
        s.name
        for s in backends.available("cpu", torch.float32)
        if s.available and s.name != "triton"
    ]
    cands = [
        dense_candidate(case),
        *(experts_candidate(case, name) for name in chosen),
        layer_candidate(case, router, "auto"),
        hf_loop_candidate(case),
    ]
    rows = measure(cands, repeats=repeats)  # interleaved, so the ratios are fair on a busy machine
    dense_ms = rows[0]["fwdbwd_ms"]
    for row in rows:
        row["plr_fwdbwd"] = round(dense_ms / row["fwdbwd_ms"], 3)
    return rows
