"""MixER vs a shared context-conditioned model vs a gradient-gated MoE on 1, 3 and 10 ODE families.

One invocation trains and evaluates every model on every setting and seed with the same data,
budget and adaptation, and writes ``results/mixer.jsonl`` (one row per setting, model and
seed, with the run id and the commit), ``results/mixer.md`` (the README's table, from this run
only) and two PNGs of MixER on ten families, seed 0 (``results/mixer_expert_assignment.png``,
``results/mixer_trajectories_adapt.png``). A new run replaces the results; ``--resume RUN_ID``
continues an interrupted one (finished rows are kept and skipped). Run it niced in the
background::

    nice -n 10 .venv/bin/python benchmarks/physics/bench_mixer.py > /tmp/bench_mixer.log 2>&1 &

Metrics: in-domain MSE (training environments, new initial conditions), adaptation MSE (new
environments after fitting only a fresh context on one trajectory each) and the adjusted
Rand index between the gate's expert per training environment and its family.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from _results import RESULTS, append_row, commit, fmt, markdown, open_rows, read_rows

from moesuite.physics.mixer.adapt import AdaptConfig
from moesuite.physics.mixer.evaluate import evaluate_model, write_plots
from moesuite.physics.mixer.registry import MODELS
from moesuite.physics.mixer.training import (
    MixERTrainConfig,
    default_num_experts,
    prepare_data,
    train_model,
)

SETTINGS = {"1": "van_der_pol", "3": "lotka_volterra,van_der_pol,lorenz", "10": "all"}
ORDER = ("mixer", "mixer-shared", "mixer-gradgate")


def table(rows: list[dict]) -> str:
    """The README's table: mean over seeds in bold, per-seed values in brackets."""
    groups: dict[tuple[int, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(int(r["setting"].split()[0]), r["model"])].append(r)

    def cell(rs: list[dict], key: str, digits: int = 3) -> str:
        vals = [r[key] for r in rs]
        if len(vals) == 1:
            return fmt(vals[0], digits)
        per = ", ".join(fmt(v, digits) for v in vals)
        return f"**{fmt(sum(vals) / len(vals), digits)}** ({per})"

    lines = []
    rank = {m: i for i, m in enumerate(ORDER)}
    for (n, model), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], rank.get(kv[0][1], 9))):
        rs = sorted(rs, key=lambda r: r["seed"])
        secs = ", ".join(f"{r['train_seconds']:.0f}" for r in rs)
        lines.append(
            [
                str(n),
                model,
                str(rs[0]["num_experts"]),
                cell(rs, "mse_in_domain"),
                cell(rs, "mse_adapt"),
                cell(rs, "ari", 2),
                str(rs[0]["params"]),
                secs,
            ]
        )
    header = (
        "families",
        "model",
        "experts",
        "in-domain MSE",
        "adaptation MSE",
        "ARI",
        "params",
        "train s (per seed)",
    )
    first = rows[0]
    note = (
        f"run `{first['run_id']}`, commit `{first['commit'][:12]}`, {first['epochs']} epochs, "
        f"seeds {sorted({r['seed'] for r in rows})}"
    )
    return markdown(header, lines) + f"\n\n{note}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="1,3,10", help="numbers of families: 1, 3, 10")
    parser.add_argument("--models", default=",".join(ORDER))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--train-envs", type=int, default=8)
    parser.add_argument("--train-ics", type=int, default=8)
    parser.add_argument("--adapt-steps", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=None, help="MixERTrainConfig.warmup")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument("--resume", default=None, metavar="RUN_ID", help="continue this run")
    parser.add_argument("--table-only", action="store_true", help="rewrite mixer.md and stop")
    args = parser.parse_args()
    jsonl, md = args.out / "mixer.jsonl", args.out / "mixer.md"
    if args.table_only:
        md.write_text(table(read_rows(jsonl)))
        return
    for model in args.models.split(","):
        MODELS.get(model)
    torch.set_num_threads(args.threads)
    run_id, done = open_rows(jsonl, args.resume)
    finished = {(r["setting"], r["model"], r["seed"]) for r in done}
    sha = commit()
    for key in args.settings.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            gen = {"n_train_envs": args.train_envs, "n_train_ics": args.train_ics}
            dataset, _ = prepare_data(SETTINGS[key], None, seed, **gen)
            E = default_num_experts(len(dataset.families))
            for model in args.models.split(","):
                if (f"{key} families", model, seed) in finished:
                    continue
                overrides = {} if args.warmup is None else {"warmup": args.warmup}
                tc = MixERTrainConfig(epochs=args.epochs, seed=seed, **overrides)
                net, system, train_s = train_model(model, dataset, num_experts=E, train_config=tc)
                start = time.perf_counter()
                adapt = AdaptConfig(steps=args.adapt_steps, starts=E, seed=seed)
                ev = evaluate_model(net, dataset, adapt)
                eval_s = time.perf_counter() - start
                if (key, model, seed) == ("10", "mixer", 0):
                    with tempfile.TemporaryDirectory() as tmp:
                        write_plots(Path(tmp), dataset, ev, model)
                        for name in ("expert_assignment", "trajectories_adapt"):
                            shutil.copy(Path(tmp) / f"{name}.png", args.out / f"mixer_{name}.png")
                row = {
                    "bench": "mixer",
                    "run_id": run_id,
                    "commit": sha,
                    "setting": f"{key} families",
                    "families": list(dataset.families),
                    "model": model,
                    "seed": seed,
                    "num_experts": E,
                    "epochs": args.epochs,
                    "outer_steps": tc.outer_steps,
                    "train_envs_per_family": args.train_envs,
                    "train_ics": args.train_ics,
                    **ev.metrics,
                    "warmup": tc.warmup,
                    "gate_updates": system.gate_updates,
                    "train_seconds": round(train_s, 1),
                    "eval_seconds": round(eval_s, 1),
                    "threads": args.threads,
                }
                append_row(jsonl, row)
                md.write_text(table(read_rows(jsonl)))


if __name__ == "__main__":
    main()
