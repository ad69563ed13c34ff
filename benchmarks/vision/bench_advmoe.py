"""AdvMoE benchmark: dense TRADES (r=1, r=0.5), MoE joint TRADES, AdvMoE (shared, per-layer).

One invocation trains and evaluates every model at one budget (same epochs, batch, optimiser,
learning rate, training attack and eps warm-up for all; the last epoch's weights, no selection),
for each seed, on MNIST's fixed 8,000 / 2,000 split (``../shared/data/mnist``):

- ``resnet18`` dense r=1 with TRADES (the paper's dense CNN);
- ``resnet18-half`` dense r=0.5 with TRADES;
- ``advmoe --scheme joint``: the MoE-CNN (E=2, r=0.5) with vanilla joint TRADES;
- ``advmoe --scheme advmoe`` with ``--routing shared`` and ``--routing per_layer``.

Evaluation: clean accuracy on the 2,000 held-out images; PGD-10 and PGD-50 (eps 0.3,
L-infinity, random start, same step size and seeds) and the router-only attack on the first
``--robust-n`` of them; inference FLOPs (chosen expert + router), CPU latency, expert usage.

Rows go to ``results/advmoe.jsonl`` as they finish (run id and git commit on every row); the
same command resumes (finished rows of the run id are skipped; a row cut short continues from
its last epoch checkpoint in ``runs/bench/vision/advmoe/<run id>/``). Several workers may share one
run id (``--rows 3 1``, ``--rows 4`` and ``--rows 0 2`` in three processes). Each finished
row rewrites ``results/advmoe.md`` and ``results/advmoe_robust_vs_flops.png`` from that run
id's rows only.

    nohup nice -n 10 .venv/bin/python benchmarks/vision/bench_advmoe.py --rows 3 1 \
        > runs/bench_advmoe-a.log 2>&1 &    # likewise --rows 4 and --rows 0 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from moesuite.core.training import RunDirectory, torch_threads
from moesuite.vision.advmoe.data import load_data
from moesuite.vision.advmoe.evaluate import attack_metrics, evaluate
from moesuite.vision.advmoe.plots import plot_robust_vs_flops
from moesuite.vision.advmoe.runs import fit_run, make_config, row_label, summary_table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = HERE / "results"

#: (model, scheme, routing) of every row
ROWS = [  # model, scheme, routing, router objective
    ("resnet18", None, None, "authors"),
    ("resnet18-half", None, None, "authors"),
    ("advmoe", "joint", "shared", "authors"),
    ("advmoe", "advmoe", "shared", "authors"),
    ("advmoe", "advmoe", "per_layer", "authors"),
    ("advmoe", "advmoe", "shared", "trades"),  # the paper's router objective (TRADES on the router)
]
DENSE = "resnet18 (dense r=1.0)"


def unfinished(path: Path) -> Path | None:
    """The newest epoch checkpoint of an unfinished row: in ``path`` or a leftover temp dir."""
    found = [
        d
        for d in [path, *path.parent.glob(f".{path.name}.tmp-*")]
        if (d / "checkpoints" / "last.ckpt").is_file()
    ]
    return max(found, key=lambda d: (d / "checkpoints" / "last.ckpt").stat().st_mtime, default=None)


def commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def read_rows(results: Path, run_id: str) -> list[dict]:
    jsonl = results / "advmoe.jsonl"
    if not jsonl.is_file():
        return []
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("run_id") == run_id]


def write_report(run_id: str, args: argparse.Namespace) -> None:
    rows = read_rows(args.results, run_id)
    if not rows:
        return
    order = {row_label_of(*spec): i for i, spec in enumerate(ROWS)}
    rows.sort(key=lambda r: (order.get(r["label"], 99), r["seed"]))
    budget = (
        f"Run `{run_id}` (commit {rows[-1]['commit']}): MNIST 8,000 train / 2,000 held out, "
        f"width {args.width} (dense r=1: {args.width}-{8 * args.width} channels), {args.epochs} "
        f"epochs, batch {args.batch_size}, Adam {args.lr}, TRADES beta 6 with a "
        f"{args.attack_steps}-step attack at eps 0.3 (warm-up over the first 30% of steps); "
        f"PGD-10/PGD-50 ({args.restarts} restart) and the router attack on {args.robust_n} "
        "held-out images, clean accuracy on all 2,000; mean ± std over seeds; "
        "FLOPs in % of the dense r=1 network."
    )
    table = summary_table(rows, ref_label=DENSE)
    (args.results / "advmoe.md").write_text(budget + "\n\n" + table + "\n")
    plot_robust_vs_flops(
        args.results / "advmoe_robust_vs_flops.png",
        rows,
        "pgd50_acc",
        f"AdvMoE on MNIST, eps 0.3 ({run_id})",
    )


def row_label_of(model: str, scheme: str | None, routing: str | None, objective: str) -> str:
    if model == "resnet18":
        return DENSE
    if model == "resnet18-half":
        return "resnet18-half (dense r=0.5)"
    if objective != "authors":
        return f"advmoe ({scheme}, {routing}, router {objective})"
    return f"advmoe ({scheme}, {routing})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--rows", type=int, nargs="+", default=None, help="indices into ROWS (default: all)"
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--attack-steps", type=int, default=2)
    p.add_argument("--robust-n", type=int, default=300)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--extra-eps", type=float, nargs="*", default=[0.1])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--run-id", default=None, help="default: derived from the budget")
    p.add_argument("--data", default="mnist")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of the jsonl/md/png")
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench" / "vision" / "advmoe")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    run_id = args.run_id or (
        f"w{args.width}-e{args.epochs}-k{args.attack_steps}-b{args.batch_size}-n{args.robust_n}"
    )
    if args.report_only:
        write_report(run_id, args)
        return
    args.results.mkdir(parents=True, exist_ok=True)
    data = load_data(args.data)
    runs_root = args.runs / run_id
    for seed in args.seeds:
        for model, scheme, routing, objective in [ROWS[i] for i in (args.rows or range(len(ROWS)))]:
            label = row_label_of(model, scheme, routing, objective)
            if any(
                r["label"] == label and r["seed"] == seed for r in read_rows(args.results, run_id)
            ):
                print(f"skip {label} seed {seed} (done)", flush=True)
                continue
            config = make_config(
                model,
                data,
                data_arg=args.data,
                scheme=scheme,
                routing=routing,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                width=args.width,
                seed=seed,
                attack_steps=args.attack_steps,
                **({} if objective == "authors" else {"router_objective": objective}),
            )
            assert row_label(config) == label, (row_label(config), label)
            tag = "" if objective == "authors" else f"-router_{objective}"
            path = runs_root / f"{model}-{scheme or 'dense'}-{routing or 'none'}{tag}-s{seed}"
            start = time.perf_counter()
            print(f"train {label} seed {seed} -> {path}", flush=True)
            resume = unfinished(path)
            if resume is not None:
                print(f"  resuming from {resume}/checkpoints/last.ckpt", flush=True)
            path.mkdir(parents=True, exist_ok=True)  # a working directory: resumable by epoch
            run = RunDirectory(path, path)
            with torch_threads(args.threads):
                run.write_config(config)
                model_, system, seconds = fit_run(run, config, data, resume=resume, quiet=True)
                metrics = evaluate(
                    model_,
                    data.x_test,
                    data.y_test,
                    eps=0.3,
                    steps=(10, 50),
                    restarts=args.restarts,
                    robust_n=args.robust_n,
                    num_classes=data.num_classes,
                    seed=seed,
                )
                for eps in args.extra_eps:  # a smaller radius, informative at short budgets
                    xs, ys = data.x_test[: args.robust_n], data.y_test[: args.robust_n]
                    metrics[f"pgd10_eps{eps}_acc"] = attack_metrics(model_, xs, ys, eps, 10)["acc"]
                metrics["expert_share_by_epoch"] = system.usage_history
                run.write_metrics(metrics)
            row = {
                "run_id": run_id,
                "commit": commit(),
                "label": label,
                "model": model,
                "scheme": config["scheme"],
                "routing": routing,
                "router_objective": config["train"]["router_objective"],
                "seed": seed,
                "train_seconds": round(seconds, 1),
                "total_seconds": round(time.perf_counter() - start, 1),
                "torch_threads": args.threads,
                **{k: v for k, v in metrics.items()},
            }
            with (args.results / "advmoe.jsonl").open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(
                f"done {label} seed {seed}: clean {row['clean_acc']:.3f} "
                f"pgd10 {row['pgd10_acc']:.3f} pgd50 {row['pgd50_acc']:.3f} "
                f"({row['total_seconds']:.0f} s)",
                flush=True,
            )
            write_report(run_id, args)


if __name__ == "__main__":
    main()
