"""Markdown table + plots from the benchmark's JSON lines (``bench_streaming.py --table``)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

# DriftMoE's expert-usage plots are written for these streams only (one abrupt drift family
# with many classes, one with two), at every stream length
EXPERT_PLOT_STREAMS = ("led_abrupt", "sea_abrupt")
ORDER = ["driftmoe-data", "driftmoe-data-fast", "driftmoe-task", "ht", "hat", "arf", "srp", "lb"]


def load(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    latest: dict[tuple, dict] = {}
    for r in rows:  # the last run of a (stream, model, n) wins
        latest[(r["stream"], r["model"], r["requested_n"])] = r
    return list(latest.values())


def write_report(path: Path, out_dir: Path) -> None:
    from moesuite.streaming.plots import plot_expert_usage, plot_windowed_accuracy

    rows = load(path)
    by_n: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_n[r["requested_n"]].append(r)
    for n, group in sorted(by_n.items()):
        table = defaultdict(dict)
        for r in group:
            table[r["stream"]][r["model"]] = r
        models = [m for m in ORDER if any(m in t for t in table.values())]
        print(f"\n#### {n:,} instances per stream (real streams: their full length or {n:,})\n")
        print("Cells: prequential accuracy % / Cohen's kappa / throughput (instances/s, this process, "
              "not paired; see the paired table for ratios).\n")
        print("| stream | " + " | ".join(models) + " |")
        print("|---|" + "---|" * len(models))
        core = [m for m in ("driftmoe-data", "ht", "hat", "arf") if m in models]
        kind = {s: next(iter(t.values()))["kind"] for s, t in table.items()}
        complete = [s for s in sorted(table) if kind[s] == "synthetic" and all(m in table[s] for m in core)]
        for stream in sorted(table, key=lambda s: (kind[s] != "synthetic", s)):
            t = table[stream]
            cells = ["-" if m not in t else
                     f"{100 * t[m]['accuracy']:.2f} / {t[m]['kappa']:.2f} / {t[m]['throughput']:,.0f}" for m in models]
            print(f"| {stream} | " + " | ".join(cells) + " |")
        with_task = [s for s in complete if "driftmoe-task" in table[s]]
        for label, streams in (("", complete), (" that also have driftmoe-task", with_task)):
            if not streams or (label and len(streams) == len(complete)):
                continue
            cells = []
            for m in models:
                accs = [table[s][m]["accuracy"] for s in streams if m in table[s]]
                cells.append(f"**{100 * sum(accs) / len(accs):.2f}**" if len(accs) == len(streams)
                             else f"({len(accs)} of {len(streams)} streams)")
            print(f"| **mean accuracy, {len(streams)} synthetic streams{label}** | " + " | ".join(cells) + " |")
        # plots: windowed accuracy per stream, DriftMoE's expert usage on EXPERT_PLOT_STREAMS
        for stream, t in table.items():
            curves = {m: [tuple(w) for w in t[m]["windows"]] for m in models if m in t}
            drift_points = next(iter(t.values()))["drift_points"]
            plot_windowed_accuracy(curves, out_dir / f"{stream}_{n}_accuracy.png", drift_points,
                                   title=f"{stream} ({n:,}): windowed accuracy")
            for m in ("driftmoe-data", "driftmoe-task"):
                if stream in EXPERT_PLOT_STREAMS and m in t and t[m].get("expert_usage"):
                    plot_expert_usage(t[m]["expert_usage"], out_dir / f"{stream}_{n}_{m}_experts.png",
                                      t[m]["window"], drift_points, title=f"{m} on {stream}: expert usage")


def write_throughput_report(path: Path) -> None:
    """Paired throughput tables (``bench_throughput.py``), one per ``--n``: inst/s and ratio to ARF."""
    if not path.is_file():
        return
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for n in sorted({r["n"] for r in rows}):
        _throughput_table([r for r in rows if r["n"] == n])


def _throughput_table(rows: list[dict]) -> None:
    table: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        table[r["stream"]][r["model"]] = r  # the newest row of a (stream, model) pair wins
    models = [m for m in ORDER if any(m in t for t in table.values())]
    print(f"\n#### Paired throughput (first {rows[0]['n']:,} instances, models interleaved every "
          f"{rows[0]['chunk']} instances)\n")
    print("| stream | " + " | ".join(f"{m} inst/s (x ARF)" for m in models) + " |")
    print("|---|" + "---|" * len(models))
    ratios: dict[str, list[float]] = defaultdict(list)
    for stream in sorted(table):
        cells = []
        for m in models:
            r = table[stream].get(m)
            cells.append("-" if r is None else f"{r['throughput']:,.0f} (x{r['ratio_to_arf']:.2f})")
            if r is not None:
                ratios[m].append(r["ratio_to_arf"])
        print(f"| {stream} | " + " | ".join(cells) + " |")
    print("| **geometric mean ratio** | " + " | ".join(
        f"x{_gmean(ratios[m]):.2f}" for m in models) + " |")


def _gmean(xs: list[float]) -> float:
    import math

    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")
