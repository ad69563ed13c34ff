r"""MoE layer throughput: every backend and router against the dense limit and the eager loop.

Runs, in one process, every candidate of a configuration interleaved round by round (so a burst
of load elsewhere on the machine hits all of them alike; see ``moesuite.core.bench.measure``):
for T=4096, d=512, h=1024, E in {8, 32, 64}, k=2, and the fine-grained case E=64, h=256, k=8,
each with uniform (round-robin) and Zipf(1.0)-skewed routing:

- ``dense``: T*k rows through one expert's two GEMMs (the same active FLOPs: the physical limit);
- ``experts``: expert compute on the fixed routing with each backend (loop, grouped_mm, auto);
- ``hf_loop``: the Hugging-Face-style eager per-expert loop (one_hot / where / index_add);
- ``layer``: the whole MoELayer (router + auto backend) for every router (uniform case only,
  since a router decides its own load).

Writes JSON lines to ``benchmarks/core/results/moe_layer.jsonl``, a PNG plot next to it, and
prints a markdown summary (the table in the README).

Usage (``make bench`` runs it like this)::

    THP_MEM_ALLOC_ENABLE=1 .venv/bin/python benchmarks/core/bench_moe_layer.py \
        [--quick] [--threads 2]

``THP_MEM_ALLOC_ENABLE=1`` is PyTorch's switch for 2 MB pages on large CPU allocations; it is
read once at start-up, so it is set on the command line, never inside the script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from moesuite.core import backends, routers
from moesuite.core.bench import (
    BenchCase,
    dense_candidate,
    experts_candidate,
    hf_loop_candidate,
    layer_candidate,
    measure,
)

RESULTS = Path(__file__).parent / "results"


def grid(quick: bool) -> list[tuple[BenchCase, bool]]:
    """(case, run the router rows) pairs."""
    if quick:
        base = [dict(T=512, d=128, h=256, E=8, k=2), dict(T=512, d=128, h=64, E=64, k=8)]
    else:
        base = [
            dict(T=4096, d=512, h=1024, E=8, k=2),
            dict(T=4096, d=512, h=1024, E=32, k=2),
            dict(T=4096, d=512, h=1024, E=64, k=2),
            dict(T=4096, d=512, h=256, E=64, k=8),  # fine-grained
            dict(T=2048, d=256, h=512, E=64, k=2),  # small segments: where the eager loop collapses
        ]
    return [(BenchCase(**b, skew=s), s == "uniform") for b in base for s in ("uniform", "zipf1.0")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, ~1 minute)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "moe_layer.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "kind": "meta",
        "torch": torch.__version__,
        "threads": args.threads,
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "processor": platform.processor(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        # PyTorch's opt-in 2 MB pages for large CPU buffers (fewer page faults for E x weight grads)
        "THP_MEM_ALLOC_ENABLE": os.environ.get("THP_MEM_ALLOC_ENABLE", ""),
        "backends": {
            s.name: (s.available, s.reason) for s in backends.available("cpu", torch.float32)
        },
    }
    rows: list[dict] = [meta]
    print(json.dumps(meta), flush=True)

    def emit(group: list[dict], name: str) -> None:
        dense = group[0]
        for row in group:
            row["group"] = name
            row["plr_fwdbwd"] = round(dense["fwdbwd_ms"] / row["fwdbwd_ms"], 3)
            row["plr_fwd"] = round(dense["fwd_ms"] / row["fwd_ms"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)

    cpu_backends = [
        s.name
        for s in backends.available("cpu", torch.float32)
        if s.available and s.name != "triton"
    ]
    for case, with_routers in grid(args.quick):
        # expert compute: the dense limit, every backend and the eager loop, timed interleaved
        cands = [
            dense_candidate(case),
            *(experts_candidate(case, n) for n in [*cpu_backends, "auto"]),
            hf_loop_candidate(case),
        ]
        emit(measure(cands, repeats=args.repeats), "experts")
        del cands
        if with_routers:  # the whole layer for every router, against its own interleaved dense run
            cands = [
                dense_candidate(case),
                *(layer_candidate(case, r, "auto") for r in routers.list_routers()),
            ]
            emit(measure(cands, repeats=args.repeats), "layers")
            del cands
    triton = next(s for s in backends.available("cpu", torch.float32) if s.name == "triton")
    if not triton.available:
        skipped = {"kind": "experts", "backend": "triton", "skipped": triton.reason}
        rows.append(skipped)
        print(json.dumps(skipped), flush=True)

    args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plot(rows, args.out.with_suffix(".png"))
    print()
    print(summary(rows))


def _find(rows: list[dict], **match: object) -> dict | None:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def summary(rows: list[dict]) -> str:
    """Markdown table: fwd+bwd ms and ratio to the dense limit per configuration."""
    lines = [
        (
            "| T | d | h | E | k | routing | dense ms | auto experts ms (x dense) "
            "| topk layer ms (x dense) | loop backend (x dense) | HF loop ms (x dense) "
            "| auto / HF loop |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dense in (r for r in rows if r.get("kind") == "dense" and r.get("group") == "experts"):
        key = {k: dense[k] for k in ("T", "d", "h", "E", "k", "skew")}
        auto = _find(rows, kind="experts", backend="auto", **key)
        loop = _find(rows, kind="experts", backend="loop", **key)
        hf = _find(rows, kind="hf_loop", **key)
        layer = _find(rows, kind="layer", router="topk", **key)
        lay = f"{layer['fwdbwd_ms']:.0f} ({layer['plr_fwdbwd']:.2f})" if layer else "-"
        lines.append(
            f"| {dense['T']} | {dense['d']} | {dense['h']} | {dense['E']} | {dense['k']} "
            f"| {dense['skew']} | {dense['fwdbwd_ms']:.0f} "
            f"| {auto['fwdbwd_ms']:.0f} ({auto['plr_fwdbwd']:.2f}) | {lay} | "
            f"{loop['plr_fwdbwd']:.2f} | {hf['fwdbwd_ms']:.0f} ({hf['plr_fwdbwd']:.2f}) | "
            f"{hf['fwdbwd_ms'] / auto['fwdbwd_ms']:.1f}x |"
        )
    routers_rows = [r for r in rows if r.get("kind") == "layer"]
    if routers_rows:
        lines += [
            "",
            "| E | h | k | router | experts/token | fwd ms | fwd+bwd ms | x dense |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in routers_rows:
            lines.append(
                f"| {r['E']} | {r['h']} | {r['k']} | {r['router']} "
                f"| {r['assignments_per_token']} | {r['fwd_ms']:.0f} | {r['fwdbwd_ms']:.0f} "
                f"| {r['plr_fwdbwd']:.2f} |"
            )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    denses = [r for r in rows if r.get("kind") == "dense" and r.get("group") == "experts"]
    labels = [f"E={r['E']} h={r['h']} k={r['k']}\n{r['skew']}" for r in denses]
    series = {
        "auto (experts)": ("experts", "auto"),
        "grouped_mm": ("experts", "grouped_mm"),
        "loop backend": ("experts", "loop"),
        "HF eager loop": ("hf_loop", "hf_loop"),
    }
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(denses)), 4.5))
    width = 0.8 / len(series)
    for i, (name, (kind, backend)) in enumerate(series.items()):
        vals = []
        for d in denses:
            key = {k: d[k] for k in ("T", "d", "h", "E", "k", "skew")}
            r = _find(rows, kind=kind, backend=backend, **key)
            vals.append(r["plr_fwdbwd"] if r else 0)
        ax.bar([j + i * width for j in range(len(denses))], vals, width, label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(denses))], labels, fontsize=8)
    ax.set_ylabel("throughput / dense limit (fwd+bwd)")
    ax.set_title(
        "MoE expert compute vs the dense chain with equal active FLOPs "
        f"(CPU, {rows[0]['threads']} threads, fp32)"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
