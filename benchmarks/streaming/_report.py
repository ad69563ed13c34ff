"""``results/streaming.md`` and the README's two figures from the runs' JSON lines.

Called by ``bench_streaming.py --table --run-id R [--run-id R2 ...]``. The tables show the
rows of the runs named (a pair in several named runs: the later-named run's row) and say which
run and commit every column comes from; name one run to get a single-run table.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import defaultdict
from pathlib import Path

# the README's figures: windowed accuracy of every model and MoE-Data's expert usage on LED
# with abrupt drifts (ten classes, where the experts visibly take turns between drifts)
FIGURE_STREAM = "led_abrupt"
FIGURE_MODEL = "driftmoe-data"
ORDER = ["driftmoe-data", "driftmoe-data-fast", "driftmoe-task", "ht", "hat", "arf", "srp", "lb"]
# the models every synthetic stream must have to enter the mean-accuracy row
MEAN_OVER = ("driftmoe-data", "ht", "hat", "arf")


def _lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _pick(rows: list[dict], run_ids: list[str], what: Path, key: tuple[str, ...]) -> list[dict]:
    """The rows of ``run_ids``; a key present in several runs keeps the later-named run's row."""
    known = sorted({r.get("run_id", "?") for r in rows})
    missing = [i for i in run_ids if i not in known]
    if missing:
        raise SystemExit(f"{what}: no rows of run(s) {missing}; its runs are {known}.")
    picked: dict[tuple, dict] = {}
    for run_id in run_ids:
        for r in rows:
            if r.get("run_id") == run_id:
                picked[tuple(r[k] for k in key)] = r
    return list(picked.values())


def _sources(rows: list[dict], models: list[str]) -> list[str]:
    """One line per model: the runs (and commits) its column comes from."""
    out = []
    for m in models:
        runs = sorted({(r["run_id"], r.get("commit", "?")[:7]) for r in rows if r["model"] == m})
        out.append(f"- {m}: " + ", ".join(f"run {i} (commit {c})" for i, c in runs))
    return out


def _models(table: dict[str, dict[str, dict]]) -> list[str]:
    return [m for m in ORDER if any(m in t for t in table.values())]


def write_report(path: Path, run_ids: list[str], out_dir: Path) -> None:
    """Write ``streaming.md`` and the two PNGs from the rows of ``run_ids``.

    The paired-throughput table shows the runs of ``throughput.jsonl`` whose id starts with
    one of ``run_ids`` (``bench_throughput.py`` names them ``<run id>-throughput``).
    """
    rows = _pick(_lines(path), run_ids, path, ("stream", "model", "requested_n"))
    lines = [f"# DriftMoE benchmark (runs {', '.join(run_ids)})", "", *_accuracy_table(rows)]
    t_path = path.parent / "throughput.jsonl"
    t_all = _lines(t_path)
    t_ids = [i for i in dict.fromkeys(r["run_id"] for r in t_all) if i.startswith(tuple(run_ids))]
    if t_ids:
        lines += ["", *_throughput_table(_pick(t_all, t_ids, t_path, ("stream", "model")))]
    (out_dir / "streaming.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _figures(rows, out_dir)


def _accuracy_table(rows: list[dict]) -> list[str]:
    n = max(r["requested_n"] for r in rows)
    rows = [r for r in rows if r["requested_n"] == n]
    table: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        table[r["stream"]][r["model"]] = r
    models = _models(table)
    kind = {s: next(iter(t.values()))["kind"] for s, t in table.items()}
    out = [
        f"Prequential accuracy % / Cohen's kappa / throughput (instances/s in the process that "
        f"ran the pair, not paired), seed {rows[0]['seed']}, {n:,} instances per synthetic "
        f"stream, real streams whole. Columns from:",
        "",
        *_sources(rows, models),
        "",
        "| stream | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for stream in sorted(table, key=lambda s: (kind[s] != "synthetic", s)):
        t = table[stream]
        cells = [
            "-"
            if m not in t
            else f"{100 * t[m]['accuracy']:.2f} / {t[m]['kappa']:.2f} / {t[m]['throughput']:,.0f}"
            for m in models
        ]
        out.append(f"| {stream} | " + " | ".join(cells) + " |")
    synthetic = [
        s
        for s in sorted(table)
        if kind[s] == "synthetic" and all(m in table[s] for m in MEAN_OVER if m in models)
    ]
    if synthetic:
        cells = []
        for m in models:
            accs = [table[s][m]["accuracy"] for s in synthetic if m in table[s]]
            cells.append(
                f"**{100 * sum(accs) / len(accs):.2f}**"
                if len(accs) == len(synthetic)
                else f"({len(accs)} of {len(synthetic)} streams)"
            )
        label = f"**mean accuracy, {len(synthetic)} synthetic streams**"
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def _throughput_table(rows: list[dict]) -> list[str]:
    table: dict[str, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        table[r["stream"]][r["model"]] = r
    models = _models(table)
    out = [
        f"Paired throughput: the first {rows[0]['n']:,} instances of each stream, the models "
        f"interleaved every {rows[0]['chunk']} instances in one process; instances/s and the "
        "ratio to the ARF timed in the same run. Columns from:",
        "",
        *_sources(rows, models),
        "",
        "| stream | " + " | ".join(f"{m} inst/s (x ARF)" for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    ratios: dict[str, list[float]] = defaultdict(list)
    for stream in sorted(table):
        cells = []
        for m in models:
            r = table[stream].get(m)
            cells.append("-" if r is None else f"{r['throughput']:,.0f} (x{r['ratio_to_arf']:.2f})")
            if r is not None:
                ratios[m].append(r["ratio_to_arf"])
        out.append(f"| {stream} | " + " | ".join(cells) + " |")
    means = " | ".join(f"x{_gmean(ratios[m]):.2f}" for m in models)
    out.append(f"| **geometric mean ratio** | {means} |")
    return out


def _gmean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def _figures(rows: list[dict], out_dir: Path) -> None:
    from moesuite.streaming.plots import plot_expert_usage, plot_windowed_accuracy

    n = max(r["requested_n"] for r in rows)
    mine = {r["model"]: r for r in rows if r["stream"] == FIGURE_STREAM and r["requested_n"] == n}
    if not mine:
        return
    curves = {m: [tuple(w) for w in mine[m]["windows"]] for m in ORDER if m in mine}
    drift_points = next(iter(mine.values()))["drift_points"]
    plot_windowed_accuracy(
        curves,
        out_dir / f"{FIGURE_STREAM}_{n}_accuracy.png",
        drift_points,
        title=f"{FIGURE_STREAM} ({n:,}): windowed accuracy",
    )
    if FIGURE_MODEL not in mine:
        return
    want = (mine[FIGURE_MODEL]["run_id"], FIGURE_STREAM, FIGURE_MODEL, n)
    for u in _lines(out_dir / "streaming_expert_usage.jsonl.gz"):
        if (u["run_id"], u["stream"], u["model"], u["requested_n"]) == want:
            plot_expert_usage(
                u["expert_usage"],
                out_dir / f"{FIGURE_STREAM}_{n}_{FIGURE_MODEL}_experts.png",
                u["window"],
                drift_points,
                title=f"{FIGURE_MODEL} on {FIGURE_STREAM}: expert usage",
            )
