"""ETTh1 multivariate benchmark: MoHETS vs PatchTST vs DLinear (+ naive) side by side.

Same splits (12/4/4 months), same train-statistics standardisation, same budget for every
trained model, best checkpoint by validation loss only; test MSE/MAE on the standardised
scale, horizons 96/192/336/720. Each result is appended to ``<results>/mohets.jsonl`` as soon
as it exists (with the run id and the git commit); rows already there for the same model,
lookback, horizon, seed and budget are skipped, so an interrupted run continues where it
stopped. The Markdown table (``mohets.md``, mean over seeds) and a bar plot per lookback
(``mohets_L<lookback>_mse.png``) are rebuilt from the JSON lines after every row.

    nice -n 10 .venv/bin/python benchmarks/timeseries/bench_mohets.py --results /tmp/mohets

The committed ``results/`` hold one such invocation (the README quotes its table).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from moesuite.timeseries.evaluate import format_table
from moesuite.timeseries.models import MODELS, MoHETS
from moesuite.timeseries.plots import plot_comparison
from moesuite.timeseries.training import ForecastTrainConfig, compare_models

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "ett" / "ETTh1.csv"
BUDGET = ("epochs", "patience", "limit_train_batches", "batch_size", "lr", "d_model", "d_ff")
BUDGET += ("n_layers", "threads")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                             capture_output=True, check=True)  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _mean_over_seeds(rows: list[dict]) -> list[dict]:
    """One row per (model, lookback, horizon): mean MSE/MAE over its seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["lookback"], r["horizon"]), []).append(r)
    out = []
    for group in groups.values():
        row = dict(group[0])
        for key in ("mse", "mae"):
            row[key] = statistics.fmean(r[key] for r in group)
        row["seeds"] = sorted(r["seed"] for r in group)
        out.append(row)
    return out


def write_tables(jsonl: Path, out_dir: Path) -> str:
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    parts = []
    for L in sorted({r["lookback"] for r in rows}, reverse=True):
        mine = _mean_over_seeds([r for r in rows if r["lookback"] == L])
        seeds = sorted({s for r in mine for s in r["seeds"]})
        runs = sorted({r["run_id"] for r in rows if r["lookback"] == L})
        head = f"### lookback {L} (test, mean over seeds {seeds}; runs {runs})"
        parts.append(f"{head}\n\n" + format_table(mine))
        plot_comparison(mine, out_dir / f"mohets_L{L}_mse.png", title=f"ETTh1, lookback {L}")
    text = "\n\n".join(parts) + "\n"
    (out_dir / "mohets.md").write_text(text)
    return text


def parse_option(text: str) -> tuple[str, object]:
    """``"key=value"`` -> ``(key, value)``, the value read as JSON when it parses."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"error: --option expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--models", nargs="+", default=["naive", "dlinear", "patchtst", "mohets"])
    p.add_argument("--lookbacks", nargs="+", type=int, default=[336])
    p.add_argument("--horizons", nargs="+", type=int, default=[96, 192, 336, 720])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--limit-train-batches", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--d-model", type=int, default=16)
    p.add_argument("--d-ff", type=int, default=32)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: no oversubscription)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="MoHETS constructor override for an ablation, e.g. --option gate_top_k=1 "
                   "(JSON values; recorded in each row's budget)")  # fmt: skip
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--runs", type=Path, default=Path("runs/bench/timeseries"))
    p.add_argument("--table-only", action="store_true", help="rebuild the table and plot only")
    args = p.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    jsonl = args.results / "mohets.jsonl"
    if args.table_only:
        print(write_tables(jsonl, args.results))
        return
    if not args.data.is_file():
        print(
            f"skipping: {args.data} not found (pass --data PATH to your ETTh1.csv)", file=sys.stderr
        )
        return
    # transformer sizes go to the models that take them (compare_models rejects unused options)
    transformer = any(MODELS.get(m).obj is MoHETS for m in args.models)
    options = {"d_model": args.d_model, "d_ff": args.d_ff, "n_layers": args.n_layers}
    options = options if transformer else {}
    overrides = dict(parse_option(o) for o in args.option)
    if overrides and not transformer:
        p.error("--option needs a MoHETS-family model in --models")
    options.update(overrides)
    budget = {k: getattr(args, k) for k in BUDGET} | {"options": overrides}
    done = set()
    if jsonl.is_file():
        for line in jsonl.read_text().splitlines():
            r = json.loads(line)
            if r.get("budget") == budget:
                done.add((r["model"], r["lookback"], r["horizon"], r["seed"]))
    run_id, commit = time.strftime("%Y%m%d-%H%M%S"), _commit()
    for seed in args.seeds:
        for L in args.lookbacks:
            for h in args.horizons:
                todo = [m for m in args.models if (m, L, h, seed) not in done]
                if not todo:
                    continue
                base = ForecastTrainConfig(
                    data=str(args.data), lookback=L, epochs=args.epochs, patience=args.patience,
                    limit_train_batches=args.limit_train_batches, batch_size=args.batch_size,
                    lr=args.lr, seed=seed, threads=args.threads, model_options=options,
                )  # fmt: skip

                def log(row: dict, seed: int = seed) -> None:
                    row.update(seed=seed, budget=budget, run_id=run_id, commit=commit)
                    print(json.dumps(row), flush=True)
                    with jsonl.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                    write_tables(jsonl, args.results)

                runs = args.runs / run_id / f"L{L}-seed{seed}"
                compare_models(todo, base, [h], runs, on_row=log)
    print(write_tables(jsonl, args.results))


if __name__ == "__main__":
    main()
