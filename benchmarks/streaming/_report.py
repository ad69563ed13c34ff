"""``results/streaming.md`` and the README's two figures from one run's JSON lines.

Called by ``bench_streaming.py --table --run-id R [--authors-run-id RA]``: a validation section
(the headline) and a tuning section with the rows of run ``R`` only, each cell the mean over the
seeds; then, when ``RA`` is given, the authors' code's rows of that separate run in a table of
their own, beside ours on the same (stream, seed) pairs.
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
    for r in rows:
        cell[(r["stream"], r["model"])].append(100 * r["accuracy"])
        if r.get("ratio_to_arf"):
            ratios[r["model"]].append(r["ratio_to_arf"])
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
    here = [m for m in models if any(key[1] == m for key in cell)]
    n_seeds = max((len(v) for v in cell.values()), default=0)
    full = [s for s in streams if all(len(cell.get((s, m), [])) == n_seeds for m in here)]
    if full:
        means = []
        for m in models:
            v = [statistics.mean(cell[(s, m)]) for s in full if cell.get((s, m))]
            means.append(f"**{statistics.mean(v):.2f}**" if len(v) == len(full) else "-")
        label = f"**mean, {len(full)} of {len(streams)} streams**"
        out.append(f"| {label} | " + " | ".join(means) + " |")
    out.append(
        "| paired speed, geometric mean x ARF | "
        + " | ".join(f"x{_gmean(ratios[m]):.2f}" if ratios[m] else "-" for m in models)
        + " |"
    )
    return out + [""]


def _authors_section(rows: list[dict], authors: list[dict], streams: list[str]) -> list[str]:
    """The authors' rows per stream, beside ours on the same seeds (the mean over those)."""
    acc = {(r["stream"], r["model"], r["seed"]): 100 * r["accuracy"] for r in rows + authors}
    pairs = [
        ("authors-moe-data", ["driftmoe-data", "driftmoe-paper"]),
        ("authors-moe-task", ["driftmoe-task"]),
    ]
    head = ["seeds", "authors' MoE-Data", "MoE-Data", "paper_params()"]
    head += ["seeds", "authors' MoE-Task", "MoE-Task"]
    out = ["| stream | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]
    shown: list[list[str]] = []
    values: list[list[float | None]] = []
    for s in streams:
        cells, raw, any_authors = [], [], False
        for theirs, ours in pairs:
            seeds = sorted(k[2] for k in acc if k[:2] == (s, theirs))
            any_authors |= bool(seeds)
            cells.append(",".join(map(str, seeds)) or "-")
            raw.append(None)
            for m in [theirs, *ours]:
                v = [acc[(s, m, seed)] for seed in seeds if (s, m, seed) in acc]
                whole = bool(v) and len(v) == len(seeds)
                raw.append(statistics.mean(v) if whole else None)
                cells.append(f"{raw[-1]:.2f}" if whole else "-")
        if any_authors:
            out.append(f"| {s} | " + " | ".join(cells) + " |")
            shown.append(cells)
            values.append(raw)
    seeds_alike = len({(c[0], c[4]) for c in shown}) == 1
    if shown and seeds_alike and all("-" not in c for c in shown):
        means = [
            c if i in (0, 4) else f"{statistics.mean(row[i] for row in values):.2f}"
            for i, c in enumerate(shown[0])
        ]
        out.append(f"| **mean, {len(shown)} streams** | " + " | ".join(means) + " |")
    return out + [""]


def write_report(path: Path, run_id: str, authors_run_id: str | None, out_dir: Path) -> None:
    """Write ``streaming.md`` and the two PNGs from run ``run_id`` (+ the authors' rows)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_streaming import TUNING, VALIDATION

    every = _lines(path)
    rows = _run(every, run_id, path)
    authors = _run(every, authors_run_id, path) if authors_run_id else []
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
    if authors:
        a_commit = sorted({r["authors_commit"][:7] for r in authors})
        speed = {
            m: _gmean([r["throughput"] for r in authors if r["model"] == m])
            for m in ("authors-moe-data", "authors-moe-task")
        }
        lines += [
            f"### The authors' code: run {authors_run_id} (a separate run)",
            "",
            f"miguel-ceadar/drift-moe at commit {', '.join(a_commit)}, run by `bench_authors.py` "
            "on the same streams, lengths and seeds, where it ran; each cell is the mean over the "
            f"seeds named, ours (run {run_id}) on the same seeds beside it. Their speed is not "
            "paired (their own process): instances per CPU second "
            f"{speed['authors-moe-data']:,.0f} for MoE-Data, {speed['authors-moe-task']:,.0f} "
            "for MoE-Task (geometric means).",
            "",
        ]
        lines += _authors_section(rows, authors, VALIDATION + TUNING)
    (out_dir / "streaming.md").write_text("\n".join(lines))
    print("\n".join(lines))
    _figures(rows, out_dir)


def _figures(rows: list[dict], out_dir: Path) -> None:
    from moesuite.streaming.plots import plot_expert_usage, plot_windowed_accuracy

    mine = {r["model"]: r for r in rows if r["stream"] == FIGURE_STREAM and r["seed"] == 0}
    if not mine:
        return
    curves = {LABELS[m]: [tuple(w) for w in mine[m]["windows"]] for m in ORDER if m in mine}
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
