"""ETTh1 multivariate benchmark: MoHETS vs PatchTST vs DLinear (+ naive) side by side.

Same splits (12/4/4 months), same train-statistics standardisation, same budget for every
trained model; test MSE/MAE on the standardised scale, horizons 96/192/336/720. Each result is
appended to results/etth1.jsonl as soon as it exists; the Markdown table and a bar plot per
lookback are written at the end (and can be rebuilt from the JSON lines with --table-only).

    nice -n 10 .venv/bin/python benchmarks/timeseries/bench_etth1.py --lookbacks 336 96

Runs can be split over processes with their own --results directory each (e.g. one per
horizon group) and merged afterwards with --merge DIR... (rows are appended to
results/etth1.jsonl, then the table is rebuilt).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from moesuite.timeseries.compare import compare_models, format_table
from moesuite.timeseries.models import MoHETS, model_spec
from moesuite.timeseries.plots import plot_comparison
from moesuite.timeseries.training import TrainConfig

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "ett" / "ETTh1.csv"


def write_tables(jsonl: Path, out_dir: Path) -> str:
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    parts = []
    for L in sorted({r["lookback"] for r in rows}, reverse=True):
        mine = [r for r in rows if r["lookback"] == L]
        parts.append(f"### lookback {L}\n\n" + format_table(mine))
        plot_comparison(mine, out_dir / f"etth1_L{L}_mse.png", title=f"ETTh1, lookback {L}: test MSE")
    text = "\n\n".join(parts) + "\n"
    (out_dir / "etth1_table.md").write_text(text)
    return text


def parse_option(text: str) -> tuple[str, object]:
    """``"key=value"`` -> ``(key, value)``, the value read as JSON when it parses (else a string)."""
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
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--limit-train-batches", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--d-model", type=int, default=16)
    p.add_argument("--d-ff", type=int, default=32)
    p.add_argument("--n-layers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 avoids oversubscription)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="MoHETS constructor override for an ablation, e.g. --option skip_shared=true "
                        "(JSON values; recorded in each row's budget)")
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--runs", type=Path, default=Path("runs/bench/timeseries"))
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--merge", nargs="+", type=Path, default=None,
                   help="append these directories' etth1.jsonl rows to --results and rebuild the table")
    args = p.parse_args()
    args.results.mkdir(parents=True, exist_ok=True)
    jsonl = args.results / "etth1.jsonl"
    if args.merge:
        with jsonl.open("a") as fh:
            for d in args.merge:
                fh.write((d / "etth1.jsonl").read_text())
        args.table_only = True
    if args.table_only:
        print(write_tables(jsonl, args.results))
        return
    if not args.data.is_file():
        print(f"skipping: {args.data} not found (pass --data PATH to your ETTh1.csv)", file=sys.stderr)
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # transformer sizes go to the models that take them (compare_models rejects unused options)
    transformer = any(model_spec(m).cls is MoHETS for m in args.models)
    options = {"d_model": args.d_model, "d_ff": args.d_ff, "n_layers": args.n_layers} if transformer else {}
    overrides = dict(parse_option(o) for o in args.option)
    if overrides and not transformer:
        p.error("--option needs a MoHETS-family model in --models")
    options.update(overrides)
    for L in args.lookbacks:
        base = TrainConfig(
            data=str(args.data), lookback=L, epochs=args.epochs, patience=args.patience,
            limit_train_batches=args.limit_train_batches, batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads,
            model_options=options,
        )
        budget = {k: getattr(args, k) for k in ("epochs", "patience", "limit_train_batches", "batch_size", "lr",
                                                  "d_model", "d_ff", "n_layers", "threads", "seed")}
        budget["options"] = overrides

        def log(row: dict, budget: dict = budget) -> None:
            row.update({"budget": budget, "bench_started": stamp})
            print(json.dumps(row), flush=True)

        compare_models(args.models, base, args.horizons, args.runs / stamp / f"L{L}", on_row=log, jsonl=jsonl)
    print(write_tables(jsonl, args.results))


if __name__ == "__main__":
    main()
