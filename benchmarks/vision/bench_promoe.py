"""ProMoE against dense DiT, TC-DiT and EC-DiT under rectified flow and DDPM, in one invocation.

Every model gets the same budget (optimiser steps, batch, learning rate, EMA, sampling steps),
the same activated parameters and the same seeds; each run is evaluated at guidance 1.0 and 1.5
against the 2,000 held-out MNIST images in the feature space of the feature network trained on
the 8,000 training images. Nothing is selected: each run's final EMA weights are evaluated.

Writes (resumable: finished runs are read back, an interrupted run is resumed from its last
checkpoint, so re-running the same command continues where it stopped)::

    benchmarks/vision/results/promoe.jsonl   one row per (run, cfg), with run id and commit
    benchmarks/vision/results/promoe.md      the table (means +- std over seeds) and the target
    benchmarks/vision/results/promoe.png     sample grids (seed 0, cfg 1.5), one per model

Run (background, 1 thread)::

    nohup nice -n 10 .venv/bin/python benchmarks/vision/bench_promoe.py --threads 1 \\
        > benchmarks/vision/results/promoe.log 2>&1 &
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from moesuite.core.training import INTERRUPTED, read_json
from moesuite.vision.promoe.evaluate import class_rows, image_grid
from moesuite.vision.promoe.training import (
    TrainConfig,
    load_run,
    resume_diffusion,
    train_diffusion,
)

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "vision" / "results"
MODELS = ("dit", "tc-dit", "ec-dit", "promoe")
OBJECTIVES = ("rf", "ddpm")
CFGS = (1.0, 1.5)
PAPER = (
    "Paper (ImageNet 256, FID-50K, cfg 1.5, for reference only): RF B 9.02 -> 6.39 (dense -> "
    "ProMoE), L 3.56 -> 2.79; L MoE baselines DiT-MoE 4.10, EC-DiT 3.65, DiffMoE 3.51; DDPM L "
    "dense 6.29, DiT-MoE 7.55, ProMoE 5.12."
)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _budget(args: argparse.Namespace) -> dict:
    extra = {}
    if args.ddpm_steps is not None and args.ddpm_steps != args.steps:
        extra["ddpm_steps"] = args.ddpm_steps  # only when it differs: budget ids stay stable
    return {
        **extra,
        "data": str(args.data),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "patch_size": args.patch_size,
        "lr": args.lr,
        "eval_steps": args.eval_steps,
        "eval_per_class": args.eval_per_class,
    }


def _budget_id(budget: dict) -> str:
    return hashlib.sha1(json.dumps(budget, sort_keys=True).encode()).hexdigest()[:8]


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rows_of_run(run_id: str, run_dir: Path, metrics: dict, spec: dict, commit: str) -> list[dict]:
    rows = []
    for cfg in CFGS:
        m = metrics[f"cfg_{cfg}"]
        ce = metrics.get("class_expert") or {}
        rows.append(
            {
                "run_id": run_id,
                "commit": commit,
                **spec,
                "cfg": cfg,
                **{k: m[k] for k in ("fid", "kid", "kid_std", "precision", "recall")},
                "class_accuracy": m["class_accuracy"],
                "sampling_seconds_per_image": m["sampling_seconds_per_image"],
                "class_expert_mi": ce.get("mi"),
                "class_expert_nmi": ce.get("nmi"),
                "params_total": metrics["parameters"]["total"],
                "params_activated": metrics["parameters"]["activated"],
                "flops_per_image": metrics["flops_per_image"],
                "train_seconds": metrics["train_seconds"],
                "final_val_task_loss": metrics["final_val_task_loss"],
                "feature_net_accuracy": metrics["feature_net"]["held_out_accuracy"],
                "run_dir": str(run_dir),
            }
        )
    return rows


def _run_one(args, model: str, objective: str, seed: int, run_dir: Path) -> dict:
    """Train + evaluate one run (or finish / read back an earlier attempt); its metrics."""
    if (run_dir / "metrics.json").is_file():
        return read_json(run_dir / "metrics.json")
    if (run_dir / INTERRUPTED).is_file():
        print(f"  resuming {run_dir}", flush=True)
        return resume_diffusion(run_dir, progress=False, threads=args.threads)[1]
    cfg = TrainConfig(
        model=model,
        objective=objective,
        data=str(args.data),
        steps=_steps(args, objective),
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        lr=args.lr,
        seed=seed,
        threads=args.threads,
        eval_steps=args.eval_steps,
        eval_per_class=args.eval_per_class,
        eval_cfgs=CFGS,
    )
    return train_diffusion(
        cfg, out=run_dir, progress=False, feature_dir=args.runs / "feature-nets"
    )[1]


def _steps(args: argparse.Namespace, objective: str) -> int:
    """Optimiser steps of a run: ``--ddpm-steps`` for DDPM when given, else ``--steps``."""
    if objective == "ddpm" and args.ddpm_steps is not None:
        return args.ddpm_steps
    return args.steps


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _table(
    rows: list[dict],
    budget: dict,
    seeds: int,
    objectives: tuple[str, ...] = OBJECTIVES,
    models: tuple[str, ...] = MODELS,
) -> str:
    lines = [
        "# ProMoE benchmark (MNIST, pixel space)",
        "",
        f"Budget per run: {budget['steps']} steps"
        + (f" (DDPM {budget['ddpm_steps']})" if "ddpm_steps" in budget else "")
        + f" x batch {budget['batch_size']}, patch "
        f"{budget['patch_size']}, AdamW lr "
        f"{budget['lr']}, EMA; evaluation: {budget['eval_per_class']} samples per class "
        f"({budget['eval_steps']} sampling steps) vs the 2,000 held-out images; {seeds} seeds "
        "(mean +- std). Samplers: RF Euler (FlowMatchEulerDiscreteScheduler), DDPM-trained "
        "models with DDIM (eta 0).",
        "",
    ]
    for objective in objectives:
        lines += [
            f"## {objective.upper()}",
            "",
            "| model | FID cfg 1.0 | FID cfg 1.5 | KID cfg 1.5 | prec / rec cfg 1.5 "
            "| class acc cfg 1.5 | class-expert MI | activated / total params | MFLOPs/img "
            "| seeds |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for model in models:
            sel = {
                c: [
                    r
                    for r in rows
                    if (r["model"], r["objective"], r["cfg"]) == (model, objective, c)
                ]
                for c in CFGS
            }
            if not sel[1.5]:
                lines.append(f"| {model} | (not run yet) |||||||||")
                continue
            f10 = _mean_std([r["fid"] for r in sel[1.0]])
            f15 = _mean_std([r["fid"] for r in sel[1.5]])
            kid = _mean_std([r["kid"] for r in sel[1.5]])
            prec = _mean_std([r["precision"] for r in sel[1.5]])
            rec = _mean_std([r["recall"] for r in sel[1.5]])
            acc = _mean_std([r["class_accuracy"] for r in sel[1.5]])
            mis = [r["class_expert_mi"] for r in sel[1.5] if r["class_expert_mi"] is not None]
            mi = "-" if not mis else "{:.3f} +- {:.3f}".format(*_mean_std(mis))
            r0 = sel[1.5][0]
            lines.append(
                f"| {model} | {f10[0]:.2f} +- {f10[1]:.2f} | {f15[0]:.2f} +- {f15[1]:.2f} | "
                f"{kid[0]:.3f} +- {kid[1]:.3f} | {prec[0]:.3f} / {rec[0]:.3f} | "
                f"{acc[0]:.3f} +- {acc[1]:.3f} | {mi} | "
                f"{r0['params_activated'] / 1e6:.3f}M / {r0['params_total'] / 1e6:.3f}M | "
                f"{r0['flops_per_image'] / 1e6:.1f} | {len(sel[1.5])} |"
            )
        lines.append("")
    lines += ["## Target", "", *_target(rows, objectives), "", PAPER, ""]
    return "\n".join(lines)


def _target(rows: list[dict], objectives: tuple[str, ...] = OBJECTIVES) -> list[str]:
    out = []
    for objective in objectives:

        def fids(model: str, objective: str = objective) -> list[float]:
            return [
                r["fid"]
                for r in rows
                if (r["model"], r["objective"], r["cfg"]) == (model, objective, 1.5)
            ]

        pro = fids("promoe")
        for base in ("dit", "tc-dit"):
            other = fids(base)
            if len(pro) < 2 or len(other) < 2:
                out.append(f"- {objective}: ProMoE vs {base}: not enough seeds yet.")
                continue
            (mp, sp), (mo, so) = _mean_std(pro), _mean_std(other)
            gap, spread = mo - mp, max(sp, so)
            verdict = "met" if gap > spread else "missed"
            out.append(
                f"- {objective}: FID cfg 1.5 ProMoE {mp:.2f} vs {base} {mo:.2f}: ProMoE lower by "
                f"{gap:.2f}, seed spread (largest std) {spread:.2f} -> {verdict}."
            )
        mi = {
            m: [
                r["class_expert_mi"]
                for r in rows
                if (r["model"], r["objective"], r["cfg"]) == (m, objective, 1.5)
            ]
            for m in ("promoe", "tc-dit")
        }
        if mi["promoe"] and mi["tc-dit"]:
            a, b = np.mean(mi["promoe"]), np.mean(mi["tc-dit"])
            out.append(
                f"- {objective}: class-expert MI ProMoE {a:.3f} vs TC-DiT {b:.3f} nats -> "
                f"{'met' if a > b else 'missed'}."
            )
    return out


def _figure(
    done: dict[tuple[str, str], Path],
    path: Path,
    objectives: tuple[str, ...] = OBJECTIVES,
    models: tuple[str, ...] = MODELS,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from moesuite.vision.promoe.diffusion import sample

    keys = [(m, o) for o in objectives for m in models if (m, o) in done]
    if not keys:
        return
    fig, axes = plt.subplots(
        len(objectives),
        len(models),
        figsize=(3 * len(models), 3.2 * len(objectives)),
        squeeze=False,
    )
    for ax in axes.flat:
        ax.axis("off")
    for m, o in keys:
        _, model, objective = load_run(done[(m, o)])
        labels = torch.arange(10).repeat_interleave(8)
        g = torch.Generator().manual_seed(0)
        imgs = sample(model, objective, labels, cfg=1.5, steps=25, generator=g)
        ax = axes[objectives.index(o), models.index(m)]
        ax.imshow(image_grid(class_rows(imgs, labels, 8), 10)[:, :, 0], cmap="gray")
        ax.set_title(f"{m} ({o}), cfg 1.5", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument(
        "--ddpm-steps",
        type=int,
        default=None,
        help="steps of the DDPM runs (default: --steps); every model of an objective gets the "
        "same budget",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--patch-size", type=int, default=7, help="7: 16 tokens of 7x7 (CPU budget)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--eval-steps", type=int, default=25)
    p.add_argument("--eval-per-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench" / "promoe")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--name", default="promoe", help="results file stem")
    p.add_argument(
        "--objectives",
        nargs="+",
        choices=OBJECTIVES,
        default=list(OBJECTIVES),
        help="run only these objectives (e.g. one process per objective; the table reads every "
        "row of the budget from the results file)",
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=list(MODELS),
        help="run only these models (the table lists the others as not run)",
    )
    p.add_argument("--commit", help="commit of the code being run (default: git HEAD)")
    args = p.parse_args(argv)

    def stop(signum, frame):  # a plain `kill` leaves a resumable run, like Ctrl+C
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    torch.set_num_threads(args.threads)  # also for the figure, outside the runs
    budget = _budget(args)
    bid = _budget_id(budget)
    commit = args.commit or _commit()
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / f"{args.name}.jsonl"
    rows = [r for r in _read_rows(jsonl) if r.get("budget_id") == bid]
    done_ids = {r["run_id"] for r in rows}
    runs_dir = args.runs / bid
    print(
        f"budget {bid}: {json.dumps(budget)}; commit {commit}; {len(done_ids)} runs done",
        flush=True,
    )
    shown = (tuple(args.objectives), tuple(args.models))
    seed0 = {(m, o): runs_dir / f"{m}-{o}-s0" for o in OBJECTIVES for m in MODELS}
    for seed in range(args.seeds):  # seed-major: a partial benchmark still has whole seeds
        for objective in args.objectives:
            for model in args.models:
                run_id = f"{bid}-{model}-{objective}-s{seed}"
                run_dir = runs_dir / f"{model}-{objective}-s{seed}"
                if run_id in done_ids:
                    continue
                start = time.perf_counter()
                print(f"[{time.strftime('%H:%M:%S')}] {run_id} ...", flush=True)
                metrics = _run_one(args, model, objective, seed, run_dir)
                spec = {
                    "budget_id": bid,
                    "budget": budget,
                    "model": model,
                    "objective": objective,
                    "seed": seed,
                }
                new = _rows_of_run(run_id, run_dir, metrics, spec, commit)
                with jsonl.open("a") as fh:
                    for row in new:
                        fh.write(json.dumps(row) + "\n")
                rows = [r for r in _read_rows(jsonl) if r.get("budget_id") == bid]
                done_ids.add(run_id)
                print(
                    f"  done in {time.perf_counter() - start:.0f}s: FID cfg1.5 "
                    f"{new[1]['fid']:.2f}, acc {new[1]['class_accuracy']:.3f}",
                    flush=True,
                )
                (args.out / f"{args.name}.md").write_text(_table(rows, budget, args.seeds, *shown))
    rows = [r for r in _read_rows(jsonl) if r.get("budget_id") == bid]
    (args.out / f"{args.name}.md").write_text(_table(rows, budget, args.seeds, *shown))
    _figure(
        {k: v for k, v in seed0.items() if (v / "checkpoints" / "ema.pt").is_file()},
        args.out / f"{args.name}.png",
        *shown,
    )
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
