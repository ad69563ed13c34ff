"""MixER vs one shared context-conditioned model vs a gradient-gated MoE on 1, 3 and 10 ODE families.

Prints one JSON line per (setting, model, seed) and appends it to
``benchmarks/physics/results/mixer.jsonl``; writes trajectory and expert-assignment plots to
``benchmarks/physics/results/plots/``. Run it niced in the background, e.g.::

    nice -n 10 .venv/bin/python benchmarks/physics/bench_mixer.py --settings 1,3,10 \
        > benchmarks/physics/results/mixer.log 2>&1 &

Metrics: in-domain MSE (training environments, new initial conditions), adaptation MSE (new
environments after fitting only a fresh context on one trajectory each) and the adjusted
Rand index between the gate's expert per training environment and its family.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from moesuite.physics.mixer.adapt import AdaptConfig
from moesuite.physics.mixer.api import default_num_experts, prepare_data, train_model, write_plots
from moesuite.physics.mixer.baselines import MODELS
from moesuite.physics.mixer.evaluate import evaluate_model
from moesuite.physics.mixer.gate import GateUpdateConfig
from moesuite.physics.mixer.training import TrainConfig

SETTINGS = {
    "1": "van_der_pol",
    "3": "lotka_volterra,van_der_pol,lorenz",
    "10": "all",
}
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="1,3,10", help="comma-separated keys of SETTINGS (number of families)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--train-envs", type=int, default=8)
    parser.add_argument("--train-ics", type=int, default=8)
    parser.add_argument("--adapt-steps", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=None, help="TrainConfig.warmup (default: its default)")
    parser.add_argument("--no-recluster", action="store_true", help="warm-start-only K-means (authors)")
    parser.add_argument("--split-warmup", type=float, default=None, help="TrainConfig.split_warmup (bisection warm-up)")
    parser.add_argument("--merge-ratio", type=float, default=None, help="TrainConfig.merge_ratio (0: off)")
    parser.add_argument("--assignment", default=None, help="GateUpdateConfig.assignment (global, sequential, hungarian)")
    parser.add_argument("--standardize", action="store_true", help="GateUpdateConfig.standardize")
    parser.add_argument("--reassign", action="store_true", help="GateUpdateConfig.reassign")
    parser.add_argument("--reassign-margin", type=float, default=None, help="GateUpdateConfig.reassign_margin")
    parser.add_argument("--relocate", action="store_true", help="GateUpdateConfig.relocate (with --reassign)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default="", help="free text stored with each result")
    parser.add_argument("--out", type=Path, default=RESULTS / "mixer.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for key in args.settings.split(","):
        families = SETTINGS[key]
        for seed in (int(s) for s in args.seeds.split(",")):
            dataset, _ = prepare_data(families, None, seed, n_train_envs=args.train_envs, n_train_ics=args.train_ics)
            E = default_num_experts(len(dataset.families))
            for model in args.models.split(","):
                overrides = {k: v for k, v in (("warmup", args.warmup), ("split_warmup", args.split_warmup),
                                               ("merge_ratio", args.merge_ratio)) if v is not None}
                gate = {k: v for k, v in (("assignment", args.assignment), ("reassign_margin", args.reassign_margin))
                        if v is not None}
                for flag in ("standardize", "reassign", "relocate"):
                    if getattr(args, flag):
                        gate[flag] = True
                if args.no_recluster:
                    gate["recluster"] = False
                overrides["gate_update"] = GateUpdateConfig(**gate)
                tc = TrainConfig(epochs=args.epochs, seed=seed, **overrides)
                net, system, train_s = train_model(model, dataset, num_experts=E, train_config=tc)
                start = time.perf_counter()
                ev = evaluate_model(net, dataset, AdaptConfig(steps=args.adapt_steps, starts=E, seed=seed))
                eval_s = time.perf_counter() - start
                suffix = f"_{args.tag}" if args.tag else ""
                write_plots(RESULTS / "plots" / f"mixer_{key}fam_{model}_seed{seed}{suffix}", dataset, ev, model)
                row = {
                    "bench": "mixer", "setting": f"{key} families", "families": list(dataset.families),
                    "model": model, "seed": seed, "num_experts": E, "epochs": args.epochs,
                    "outer_steps": tc.outer_steps, "train_envs_per_family": args.train_envs,
                    "train_ics": args.train_ics, **{k: v for k, v in ev.metrics.items()},
                    "warmup": tc.warmup, "recluster": tc.gate_update.recluster,
                    "split_warmup": tc.split_warmup, "merge_ratio": tc.merge_ratio,
                    "gate_update": dataclasses.asdict(tc.gate_update), "merges": len(system.merges),
                    "gate_updates": system.gate_updates, "train_seconds": round(train_s, 1),
                    "eval_seconds": round(eval_s, 1), "threads": args.threads, "tag": args.tag,
                }
                line = json.dumps(row)
                print(line, flush=True)
                with args.out.open("a") as fh:
                    fh.write(line + "\n")


if __name__ == "__main__":
    main()
