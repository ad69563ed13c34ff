"""ETTh1 (or any CSV of that format) benchmark: MoHETS against PatchTST, DLinear, NLinear, naive.

One invocation trains and evaluates every model at every lookback and seed, each with its own
authors' recipe (``moesuite.timeseries.recipes``), on the standard protocol: 12/4/4-month splits
for ETT files (70/10/20 otherwise), standardisation with training statistics, early stopping
and the best checkpoint on the validation MSE, then one final evaluation of every test window
(no dropped last batch) at H = 96, 192, 336, 720. A reduced budget, the same for every model, is
given with ``--epochs``, ``--train-stride`` (every k-th training window), ``--val-stride`` and
``--test-stride`` (every k-th test window, the same windows for every model); the table says so.
MoHETS is trained once per lookback and seed and rolled out to every horizon; the other models
are trained per horizon. The lookback of each model is chosen on validation (mean validation
MSE over its seeds and horizons), never on test.

Outputs, rebuilt after every finished row (``--results``, default ``results/`` beside this file):

    ett.jsonl         one JSON line per (model, lookback, seed, horizon), with the run id and
                      the git commit of the code that produced it
    ett.md            the table (mean and standard deviation over seeds; the README's table)
    ett_forecast.png  forecast against truth for one test window (channel OT, H = 336)

Resumable: finished rows are kept and skipped; a run stopped in training (SIGTERM, Ctrl+C or a
kill) continues from its last epoch checkpoint. A restart refuses to mix rows of different
code: it checks that the model, data and training code still match the recorded commit.

    nice -n 10 .venv/bin/python benchmarks/timeseries/bench_ett.py --threads 1 \\
        > /tmp/bench_ett.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv"
MODELS = ("naive", "seasonal-naive", "dlinear", "nlinear", "patchtst", "mohets")
HORIZONS = (96, 192, 336, 720)
LOOKBACKS = (336, 672)
SEEDS = (0, 1, 2)
#: the code whose change would change the rows (a restart checks it against the commit)
CODE = [
    "packages/timeseries/src/moesuite/timeseries/models",
    "packages/timeseries/src/moesuite/timeseries/data",
    "packages/timeseries/src/moesuite/timeseries/training.py",
    "packages/timeseries/src/moesuite/timeseries/evaluate.py",
    "packages/timeseries/src/moesuite/timeseries/recipes.py",
    "packages/timeseries/src/moesuite/timeseries/config.py",
    "benchmarks/timeseries/bench_ett.py",
]
#: published average MSE at lookback 336: PatchTST and DLinear corrected (every test window
#: scored), MoHETS as its paper reports it
PUBLISHED = {
    "patchtst": ("PatchTST/42", 0.424),
    "dlinear": ("DLinear", 0.445),
    "mohets": ("MoHETS", 0.383),
}


@dataclass(frozen=True)
class Job:
    """One training run: ``horizon`` is ``None`` for a model that serves every horizon."""

    model: str
    lookback: int
    seed: int
    horizon: int | None

    @property
    def name(self) -> str:
        h = "" if self.horizon is None else f"-H{self.horizon}"
        return f"{self.model}-L{self.lookback}-s{self.seed}{h}"


def plan_jobs(
    models: list[str], lookbacks: list[int], seeds: list[int], horizons: list[int]
) -> list[Job]:
    """Every run, cheapest and most informative first.

    Parameter-free models run once (seed 0); the linear models next (minutes); then, seed by
    seed and lookback by lookback, MoHETS (one run for every horizon) and PatchTST (one per
    horizon), so that an interrupted benchmark has complete seeds rather than scattered rows.
    """
    from moesuite.timeseries.models import MODELS as REGISTRY

    def any_horizon(m: str) -> bool:
        entry = REGISTRY.get(m)
        cls = entry.obj
        return bool(getattr(cls, "any_horizon", False)) and getattr(cls, "trainable", True)

    def trainable(m: str) -> bool:
        return bool(getattr(REGISTRY.get(m).obj, "trainable", True))

    jobs: list[Job] = []
    for m in models:
        if not trainable(m):
            jobs += [Job(m, L, 0, h) for L in lookbacks for h in horizons]
    cheap = [m for m in models if trainable(m) and m in ("dlinear", "nlinear")]
    jobs += [Job(m, L, s, h) for s in seeds for L in lookbacks for m in cheap for h in horizons]
    heavy = [m for m in models if trainable(m) and m not in cheap]
    for s in seeds:
        for L in lookbacks:
            for m in heavy:
                hs = [None] if any_horizon(m) else horizons
                jobs += [Job(m, L, s, h) for h in hs]
    return jobs


def claim(runs: Path, job: Job) -> bool:
    """Take the job's lock (``<runs>/<job>.lock`` with this process id) unless a live process
    holds it, so that several workers (``--prefer``) never run the same job."""
    lock = runs / f"{job.name}.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(lock.read_text() or 0)
            os.kill(pid, 0)
            return pid == os.getpid()
        except (ValueError, ProcessLookupError, PermissionError):
            lock.unlink(missing_ok=True)  # a dead worker's lock
            return claim(runs, job)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


def code_changed_since(commit: str) -> bool:
    """Whether the benchmarked code differs from ``commit`` (committed or not)."""
    result = subprocess.run(
        ["git", "diff", "--quiet", commit, "--", *CODE], cwd=ROOT, capture_output=True
    )
    return result.returncode != 0


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def row_key(r: dict[str, Any]) -> tuple:
    return (r["model"], r["lookback"], r["seed"], r["horizon"])


def rows_of_run(metrics: dict[str, Any], job: Job, meta: dict[str, Any], run_dir: Path) -> list:
    """The rows of one finished run directory (one per horizon it was scored at)."""
    from moesuite.timeseries.evaluate import result_rows

    head = {"run_id": meta["run_id"], "commit": meta["commit"]}
    return [{**head, **r, "overrides": meta["overrides"]} for r in result_rows(metrics, run_dir)]


def _adopt_leftover(final: Path) -> bool:
    """Make a run killed in training resumable: its hidden temporary directory becomes ``final``.

    Returns whether ``final`` now holds an interrupted run with a last checkpoint.
    """
    from moesuite.core.training import INTERRUPTED

    if final.is_dir():
        if (final / INTERRUPTED).is_file() and (final / "checkpoints" / "last.ckpt").is_file():
            return True
        if not (final / "metrics.json").is_file():
            shutil.rmtree(final)
        return False
    leftovers = sorted(final.parent.glob(f".{final.name}.tmp-*"), key=os.path.getmtime)
    adopted = False
    for tmp in leftovers:
        if not adopted and (tmp / "checkpoints" / "last.ckpt").is_file():
            tmp.rename(final)
            (final / INTERRUPTED).write_text("killed during training; resumed by bench_ett.py\n")
            adopted = True
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return adopted


def run_job(job: Job, args: argparse.Namespace, meta: dict[str, Any], runs: Path) -> list:
    from moesuite.core.training import read_json
    from moesuite.timeseries.training import (
        ForecastTrainConfig,
        resume_forecaster,
        train_forecaster,
    )

    final = runs / job.name
    if (final / "metrics.json").is_file():
        return rows_of_run(read_json(final / "metrics.json"), job, meta, final)
    if _adopt_leftover(final):
        print(f"  resuming {final} from its last checkpoint", flush=True)
        result = resume_forecaster(final, progress=False)
    else:
        cfg = ForecastTrainConfig(
            model=job.model,
            data=str(args.data),
            lookback=job.lookback,
            horizon=job.horizon or max(args.horizons),
            seed=job.seed,
            threads=args.threads,
            epochs=args.epochs,
            limit_train_batches=args.limit_train_batches,
            train_stride=args.train_stride or 1,
            val_stride=args.val_stride,
            test_stride=args.test_stride or 1,
            model_options=_options_for(job.model, args.option),
            eval_horizons=list(args.horizons),
        )
        result = train_forecaster(cfg, out=final, progress=False)
    return rows_of_run(result.metrics, job, meta, result.run_dir)


def _options_for(model: str, options: list[str]) -> dict[str, Any]:
    from moesuite.timeseries.models import model_options

    accepted = model_options(model)
    out = {}
    for text in options:
        key, _, value = text.partition("=")
        if key in accepted:
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value
    return out


# -- the table -------------------------------------------------------------------------------


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(rows: list[dict[str, Any]], horizons: list[int]) -> dict[tuple, dict[str, Any]]:
    """Per (model, lookback): seeds with every horizon, mean/std of each horizon and of the
    average over horizons, and the mean validation MSE (what selects the lookback)."""
    out: dict[tuple, dict[str, Any]] = {}
    for m, L in sorted({(r["model"], r["lookback"]) for r in rows}):
        mine = [r for r in rows if r["model"] == m and r["lookback"] == L]
        by_seed: dict[int, dict[int, dict]] = {}
        for r in mine:
            by_seed.setdefault(r["seed"], {})[r["horizon"]] = r
        complete = sorted(s for s, d in by_seed.items() if all(h in d for h in horizons))
        if not complete:
            out[(m, L)] = {"seeds": [], "partial": sorted(by_seed)}
            continue
        entry: dict[str, Any] = {"seeds": complete, "params": max(r["params"] for r in mine)}
        for h in horizons:
            entry[h] = {k: _mean_std([by_seed[s][h][k] for s in complete]) for k in ("mse", "mae")}
        for k in ("mse", "mae"):
            per_seed = [statistics.fmean(by_seed[s][h][k] for h in horizons) for s in complete]
            entry[f"avg_{k}"] = _mean_std(per_seed)
        entry["val_mse"] = statistics.fmean(
            by_seed[s][h]["val_mse"] for s in complete for h in horizons
        )
        out[(m, L)] = entry
    return out


def choose_lookbacks(summary: dict[tuple, dict[str, Any]]) -> dict[str, int]:
    """Each model's lookback with the lowest mean validation MSE (test figures are not read)."""
    best: dict[str, tuple[float, int]] = {}
    for (m, L), e in summary.items():
        if e.get("seeds"):
            if m not in best or e["val_mse"] < best[m][0]:
                best[m] = (e["val_mse"], L)
    return {m: L for m, (_, L) in best.items()}


def format_table(rows: list[dict[str, Any]], horizons: list[int]) -> str:
    """The Markdown report: the headline (each model at its validation-chosen lookback), every
    (model, lookback) row, and the published anchors."""
    summary = summarise(rows, horizons)
    chosen = choose_lookbacks(summary)
    meta = sorted({(r["run_id"], r["commit"]) for r in rows})
    data = sorted({r["data"] for r in rows})
    overrides = sorted({json.dumps(r["overrides"], sort_keys=True) for r in rows})
    strides = {json.loads(o).get("test_stride") or 1 for o in overrides}
    scored = (
        "every test window scored"
        if strides == {1}
        else f"one test window in {'/'.join(map(str, sorted(strides)))} scored (the same "
        "windows for every model)"
    )
    lines = [
        f"Data {', '.join(data)}; run {', '.join(f'{i} (commit {c})' for i, c in meta)}; "
        f"test MSE / MAE on the standardised scale, {scored}; mean over the "
        "seeds listed (± standard deviation over seeds of the average over horizons); each model "
        "trained with its own recipe"
        + (
            ""
            if overrides == ["{}"]
            else f"; budget overrides for every model {', '.join(overrides)}"
        )
        + ".",
        "",
    ]
    head = ["model", "L", "seeds", *[f"H={h}" for h in horizons], "avg MSE", "avg MAE"]
    head += ["val MSE", "params"]

    def line(m: str, L: int, e: dict[str, Any], bold: bool = False) -> str:
        if not e.get("seeds"):
            return "| " + " | ".join([m, str(L), f"partial {e['partial']}"] + [""] * 7) + " |"
        cells = [f"**{m}**" if bold else m, str(L), ",".join(map(str, e["seeds"]))]
        cells += [f"{e[h]['mse'][0]:.3f} / {e[h]['mae'][0]:.3f}" for h in horizons]
        mse, sd = e["avg_mse"]
        cells += [f"{mse:.3f} ± {sd:.3f}", f"{e['avg_mae'][0]:.3f}", f"{e['val_mse']:.3f}"]
        cells.append(f"{e['params']:,}")
        return "| " + " | ".join(cells) + " |"

    sep = "|" + "---|" * len(head)
    lines += ["**At the lookback chosen on validation**", "", "| " + " | ".join(head) + " |", sep]
    order = {m: i for i, m in enumerate(MODELS)}
    for m in sorted(chosen, key=lambda m: (order.get(m, 99), m)):
        lines.append(line(m, chosen[m], summary[(m, chosen[m])], bold=m.startswith("mohets")))
    if len(summary) > len(chosen):  # some model has another lookback or a partial one
        lines += ["", "**Every lookback**", "", "| " + " | ".join(head) + " |", sep]
        for (m, L), e in sorted(summary.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0])):
            lines.append(line(m, L, e))
    lines += ["", "**Published, lookback 336, full training budgets** (PatchTST/42 and DLinear:"]
    lines += ["the corrected figures, every test window scored; MoHETS: the paper's)", ""]
    lines += ["| model | avg MSE |", "|---|---|"]
    lines += [f"| {name} (published) | {v:.3f} |" for name, v in PUBLISHED.values()]
    return "\n".join(lines) + "\n"


def plot_window(rows: list[dict[str, Any]], horizons: list[int], path: Path) -> None:
    """Forecast against truth for one test window (the middle one), channel OT, H = 336."""
    from moesuite.timeseries.config import build_datamodule, load_run, load_table
    from moesuite.timeseries.evaluate import sample_windows
    from moesuite.timeseries.plots import plot_forecast_comparison

    summary = summarise(rows, horizons)
    chosen = choose_lookbacks(summary)
    h = 336 if 336 in horizons else max(horizons)
    curves, truth, past = {}, None, None
    for m, L in chosen.items():
        mine = [r for r in rows if (r["model"], r["lookback"], r["seed"]) == (m, L, 0)]
        run = next((r["run_dir"] for r in mine if r["horizon"] == h), None)
        if run is None or not Path(run).is_dir():
            continue
        cfg, _, model = load_run(run)
        dm = build_datamodule(cfg, load_table(cfg), horizon=h)
        with dm.final_evaluation():
            n = len(dm.dataset("test", h))
            w = sample_windows(model, dm, "test", horizon=h, index=n // 2)[0]
        curves[f"{m} (L={L})"] = w["pred"][:, -1]
        truth, past = w["y"][:, -1], w["x"][-96:, -1]
    if truth is None:
        return
    plot_forecast_comparison(
        past,
        truth,
        curves,
        path,
        ylabel="OT (standardised)",
        title=f"test window {n // 2}: forecasts of {h} steps (seed 0, lookback chosen on val)",
    )


def write_outputs(results: Path, horizons: list[int], stem: str) -> str:
    rows = read_rows(results / f"{stem}.jsonl")
    table = format_table(rows, horizons) if rows else ""
    tmp = results / f"{stem}.md.tmp"
    tmp.write_text(table)
    tmp.replace(results / f"{stem}.md")
    return table


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="CSV in the ETT format (ETTh1.csv).")
    p.add_argument("--results", type=Path, default=HERE / "results", help="Output directory.")
    p.add_argument("--runs", type=Path, default=None, help="Run directories (default runs/...).")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--lookbacks", nargs="+", type=int, default=list(LOOKBACKS))
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    p.add_argument("--horizons", nargs="+", type=int, default=list(HORIZONS))
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared CPU).")
    p.add_argument("--epochs", type=int, default=None, help="Override every recipe (smoke).")
    p.add_argument("--limit-train-batches", type=int, default=None, help="(smoke tests only)")
    p.add_argument(
        "--train-stride", type=int, default=None, help="Train on every k-th window (budget)."
    )
    p.add_argument(
        "--val-stride", type=int, default=None, help="Score every k-th val window after training."
    )
    p.add_argument(
        "--test-stride", type=int, default=None, help="Score every k-th test window (budget)."
    )
    p.add_argument("--option", action="append", default=[], help="KEY=VALUE model option.")
    p.add_argument(
        "--prefer", nargs="*", default=[], help="Run these models' jobs first (a second worker)."
    )
    p.add_argument("--stem", default="ett", help="Output file names (<stem>.jsonl, .md, .png).")
    p.add_argument("--only-table", action="store_true", help="Rebuild the table and plot.")
    p.add_argument("--allow-code-change", action="store_true", help="Resume across a code change.")
    args = p.parse_args(argv)
    if not args.data.is_file():
        print(f"error: --data {args.data}: no such file", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    args.results.mkdir(parents=True, exist_ok=True)
    jsonl = args.results / f"{args.stem}.jsonl"
    if args.only_table:
        print(write_outputs(args.results, args.horizons, args.stem))
        plot_window(read_rows(jsonl), args.horizons, args.results / f"{args.stem}_forecast.png")
        return 0
    meta_path = args.results / f"{args.stem}.run.json"
    overrides = {
        k: v
        for k, v in {
            "epochs": args.epochs,
            "limit_train_batches": args.limit_train_batches,
            "train_stride": args.train_stride,
            "val_stride": args.val_stride,
            "test_stride": args.test_stride,
            "options": args.option,
        }.items()
        if v
    }
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta["overrides"] != overrides or meta["data"] != str(args.data.resolve()):
            print(f"error: {meta_path} was started with other data or overrides", file=sys.stderr)
            return 2
        if code_changed_since(meta["commit"]) and not args.allow_code_change:
            print(
                f"error: the benchmarked code changed since commit {meta['commit']} of run "
                f"{meta['run_id']}; start a new run (other --results) or --allow-code-change",
                file=sys.stderr,
            )
            return 2
    else:
        commit = _git("rev-parse", "--short", "HEAD") or "unknown"
        dirty = commit != "unknown" and code_changed_since(commit)
        meta = {
            "run_id": datetime.now().strftime("ett-%Y%m%d-%H%M"),
            "commit": commit + ("+dirty" if dirty else ""),
            "data": str(args.data.resolve()),
            "overrides": overrides,
            "started": datetime.now().isoformat(timespec="seconds"),
        }
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    runs = args.runs or ROOT / "runs" / "timeseries" / "bench-ett" / meta["run_id"]
    runs.mkdir(parents=True, exist_ok=True)
    # a SIGTERM (end of a session) stops like Ctrl+C: the run being trained stays resumable
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    done = {row_key(r) for r in read_rows(jsonl) if r["run_id"] == meta["run_id"]}
    jobs = plan_jobs(args.models, args.lookbacks, args.seeds, args.horizons)
    todo = [
        j
        for j in jobs
        if not all(
            (j.model, j.lookback, j.seed, h) in done
            for h in ([j.horizon] if j.horizon else args.horizons)
        )
    ]
    todo.sort(key=lambda j: j.model not in args.prefer)  # stable: the plan's order otherwise
    print(f"run {meta['run_id']}: {len(jobs)} runs, {len(jobs) - len(todo)} done", flush=True)
    for i, job in enumerate(todo, 1):
        if not claim(runs, job):
            continue  # another worker runs it
        done = {row_key(r) for r in read_rows(jsonl) if r["run_id"] == meta["run_id"]}
        hs = [job.horizon] if job.horizon else args.horizons
        if all((job.model, job.lookback, job.seed, h) in done for h in hs):
            continue
        t0 = time.time()
        print(f"[{i}/{len(todo)}] {job.name} ...", flush=True)
        rows = [r for r in run_job(job, args, meta, runs) if r["horizon"] in args.horizons]
        with jsonl.open("a") as fh:  # one short append per row: safe beside another worker
            for r in rows:
                if row_key(r) not in done:
                    fh.write(json.dumps(r) + "\n")
        (runs / f"{job.name}.lock").unlink(missing_ok=True)
        write_outputs(args.results, args.horizons, args.stem)
        avg = statistics.fmean(r["mse"] for r in rows)
        print(f"  done in {time.time() - t0:.0f} s: test MSE {avg:.4f} (mean of its rows)")
    table = write_outputs(args.results, args.horizons, args.stem)
    plot_window(read_rows(jsonl), args.horizons, args.results / f"{args.stem}_forecast.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
