"""``results/streaming.md`` and the README's two figures from one run's JSON lines.

Called by ``bench_streaming.py --table --run-id R``: a validation section (the headline) and a
tuning section with the rows of run ``R`` only (ours and, where the run included them, the
authors' code's), each cell the mean over the seeds.
"""

from __future__ import annotations

import gzip
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

# the README's figures: windowed accuracy of every model and MoE-Data's expert usage on a
# validation stream with abrupt drifts (seed 0)
FIGURE_STREAM = "randomtree_abrupt"
FIGURE_MODEL = "driftmoe-data"
ORDER = [
    "driftmoe-data",
    "driftmoe-task",
    "driftmoe-paper",
    "authors-moe-data",
    "authors-moe-task",
    "ht",
    "hat",
    "arf",
]
LABELS = {
    "driftmoe-data": "MoE-Data",
    "driftmoe-task": "MoE-Task",
    "driftmoe-paper": "paper_params()",
    "authors-moe-data": "authors' MoE-Data",
    "authors-moe-task": "authors' MoE-Task",
    "ht": "HT",
    "hat": "HAT",
    "arf": "ARF",
}
#: models run in a process of their own (the authors' code): speed = ARF's CPU time on the same
#: (stream, seed) in our job over theirs, not paired
UNPAIRED = {"authors-moe-data", "authors-moe-task"}


def _lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _run(rows: list[dict], run_id: str, what: Path) -> list[dict]:
    """The rows of ``run_id``, one per (stream, model, length, seed): the first written."""
    mine: dict[tuple, dict] = {}
    for r in rows:
        if r.get("run_id") == run_id:
            mine.setdefault((r["stream"], r["model"], r["requested_n"], r["seed"]), r)
    if not mine:
        known = sorted({r.get("run_id", "?") for r in rows})
        raise SystemExit(f"{what}: no rows of run {run_id!r}; its runs are {known}.")
    return list(mine.values())


def _same_code(commits: list[str]) -> str:
    """Whether the streaming package's code is the same at every commit of a run's rows."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    changed = [
        c
        for c in commits[1:]
        if subprocess.run(
            ["git", "diff", "--quiet", commits[0], c, "--", "packages/streaming/src"], cwd=root
        ).returncode
        != 0
    ]
    if changed:
        return f"packages/streaming/src differs at {', '.join(changed)}: rows of different code"
    return "resumed at later commits; packages/streaming/src is the same at all of them"


def _gmean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def _section(title: str, rows: list[dict], models: list[str], streams: list[str]) -> list[str]:
    cell: dict[tuple[str, str], list[float]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    arf = {(r["stream"], r["seed"]): r["cpu_seconds"] for r in rows if r["model"] == "arf"}
    for r in rows:
        cell[(r["stream"], r["model"])].append(100 * r["accuracy"])
        if r.get("ratio_to_arf"):
            ratios[r["model"]].append(r["ratio_to_arf"])
        elif r["model"] in UNPAIRED and (r["stream"], r["seed"]) in arf:
            ratios[r["model"]].append(arf[(r["stream"], r["seed"])] / r["cpu_seconds"])
    models = [m for m in models if any(key[1] == m for key in cell)]
    streams = [s for s in streams if any((s, m) in cell for m in models)]
    out = [f"### {title}", ""]
    out += ["| stream | " + " | ".join(LABELS.get(m, m) for m in models) + " |"]
    out += ["|---|" + "---|" * len(models)]
    for s in streams:
        cells = []
        for m in models:
            v = cell.get((s, m), [])
            sd = f" ± {statistics.stdev(v):.2f}" if len(v) > 1 else ""
            cells.append(f"{statistics.mean(v):.2f}{sd} ({len(v)})" if v else "-")
        out.append(f"| {s} | " + " | ".join(cells) + " |")
    # the mean row covers the streams where every model of the section has every seed
    n_seeds = max((len(v) for v in cell.values()), default=0)
    full = [s for s in streams if all(len(cell.get((s, m), [])) == n_seeds for m in models)]
    if full:
        means = []
        for m in models:
            v = [statistics.mean(cell[(s, m)]) for s in full if cell.get((s, m))]
            means.append(f"**{statistics.mean(v):.2f}**" if len(v) == len(full) else "-")
        label = f"**mean, {len(full)} of {len(streams)} streams**"
        out.append(f"| {label} | " + " | ".join(means) + " |")
    out.append(
        "| speed, geometric mean x ARF | "
        + " | ".join(
            (f"x{_gmean(ratios[m]):.2f}" + (" (not paired)" if m in UNPAIRED else ""))
            if ratios[m]
            else "-"
            for m in models
        )
        + " |"
    )
    return out + [""]


def write_report(path: Path, run_id: str, out_dir: Path) -> None:
    """Write ``streaming.md`` and the two PNGs from run ``run_id``'s rows."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_streaming import TUNING, VALIDATION

    rows = _run(_lines(path), run_id, path)
    models = [m for m in ORDER if any(r["model"] == m for r in rows)]
    lengths = {r["set"]: r["requested_n"] for r in rows if r["kind"] == "synthetic"}
    seeds = sorted({r["seed"] for r in rows})
    commits = sorted({r["commit"][:12] for r in rows})
    same = "" if len(commits) == 1 else f" ({_same_code(commits)})"
    lines = [
        f"# DriftMoE benchmark: run {run_id}",
        "",
        "Prequential accuracy %, mean ± standard deviation over seeds (number of seeds), "
        + ", ".join(f"{n:,} instances per synthetic {k} stream" for k, n in sorted(lengths.items()))
        + f", real streams whole; seeds {seeds}; commit "
        f"{', '.join(commits)}{same}. Paired speed: each model's CPU time over ARF's on the same "
        "instances in the same process (models interleaved every 250 instances), geometric "
        "mean over the (stream, seed) jobs.",
    ]
    authors = [r for r in rows if r["model"] in UNPAIRED]
    if authors:
        a_commit = sorted({r["authors_commit"][:7] for r in authors})
        config = authors[0].get("config", {})
        speed = {
            LABELS[m]: _gmean([r["throughput"] for r in authors if r["model"] == m])
            for m in sorted(UNPAIRED)
            if any(r["model"] == m for r in authors)
        }
        lines += [
            "",
            f"The authors' code: miguel-ceadar/drift-moe at commit {', '.join(a_commit)}, their "
            f"defaults ({', '.join(f'{k} {v}' for k, v in config.items())}), run in the same "
            "invocation on the same instances right after our job of each (stream, seed), in a "
            "process of its own: its speed is ARF's CPU time in our job over theirs, not paired "
            "(instances per CPU second, geometric mean: "
            + ", ".join(f"{k} {v:,.0f}" for k, v in speed.items())
            + ").",
        ]
    lines.append("")
    lines += _section(
        "Validation streams (other generators and real data: the headline)",
        [r for r in rows if r["stream"] in VALIDATION],
        models,
        VALIDATION,
    )
    lines += _section(
        "Tuning streams (every default was chosen on these)",
        [r for r in rows if r["stream"] in TUNING],
        models,
        TUNING,
    )
    (out_dir / "streaming.md").write_text("\n".join(lines))
    print("\n".join(lines))
    _figures(rows, out_dir)


def _figures(rows: list[dict], out_dir: Path) -> None:
    from moesuite.streaming.plots import plot_expert_usage, plot_windowed_accuracy

    mine = {r["model"]: r for r in rows if r["stream"] == FIGURE_STREAM and r["seed"] == 0}
    if not mine:
        return
    curves = {  # the authors' loop logs no windowed accuracy
        LABELS[m]: [tuple(w) for w in mine[m]["windows"]]
        for m in ORDER
        if mine.get(m, {}).get("windows")
    }
    drift_points = next(iter(mine.values()))["drift_points"]
    plot_windowed_accuracy(
        curves,
        out_dir / f"{FIGURE_STREAM}_accuracy.png",
        drift_points,
        title=f"{FIGURE_STREAM} (validation, seed 0): windowed accuracy",
    )
    if FIGURE_MODEL not in mine:
        return
    r = mine[FIGURE_MODEL]
    want = (r["run_id"], FIGURE_STREAM, FIGURE_MODEL, r["requested_n"], 0)
    for u in _lines(out_dir / "streaming_expert_usage.jsonl.gz"):
        if (u["run_id"], u["stream"], u["model"], u["requested_n"], u["seed"]) == want:
            plot_expert_usage(
                u["expert_usage"],
                out_dir / f"{FIGURE_STREAM}_{FIGURE_MODEL}_experts.png",
                u["window"],
                drift_points,
                title=f"MoE-Data on {FIGURE_STREAM}: expert usage per window",
            )
