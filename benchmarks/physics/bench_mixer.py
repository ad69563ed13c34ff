"""MixER vs a shared model vs a gradient-gated MoE (vs the authors' code) on two ten-family sets.

One invocation trains and evaluates every model on both ten-family datasets and every seed with
the same data, budget, validation and adaptation, and writes ``results/mixer.jsonl`` (one row per
dataset, model and seed, with the run id and the commit), ``results/mixer.md`` (the README's
table, from this run only) and two PNGs (``results/mixer_expert_assignment.png``: expert per
environment, seed 0, MixER and the authors' code on both datasets;
``results/mixer_trajectories_adapt.png``: MixER adapted to ODEBench-2D's new environments).

Datasets: ``odebench`` is the authors' ten ODEBench-2D families on their environment grid
(:func:`moesuite.physics.odes.generate_odebench`: 16 training environments with 4 trajectories
each, 4 adaptation environments at 0.8-1.2x with one trajectory each); ``ours`` is this
package's ten families (8 training environments with 8 trajectories, 4 adaptation
environments). One held-out trajectory per training environment is the validation set: every
one of our models keeps the weights of its best validation epoch; the rest score in-domain.

``--authors-repo PATH --authors-commit SHA --authors-python PY`` also runs the MixER authors'
own code (a checkout of their repository; ``PY`` a Python with jax, equinox, diffrax and optax)
on the same data, with their settings, at ``--authors-outer-steps`` of their 1,500 outer steps
(default: the same number of model gradient steps as ours, ``epochs * 10 * 2 / 12``), no
validation (their script keeps the last weights) and the same 300 adaptation steps as ours; its
predictions are scored by our code. A new run replaces the results; ``--resume RUN_ID``
continues an interrupted one (finished rows are kept and skipped, a finished authors' run in
``--work``, named by dataset, seed and outer steps, is reused). Run it niced in the background::

    nice -n 10 .venv/bin/python benchmarks/physics/bench_mixer.py \\
        --authors-repo ../MixER --authors-commit e9a1bb9 --authors-python ../jaxvenv/bin/python \\
        > /tmp/bench_mixer.log 2>&1 &
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from _authors import AUTHORS_OUTER_STEPS, run_authors
from _results import RESULTS, append_row, commit, fmt, markdown, open_rows, read_rows, run_all

from moesuite.physics.data.odes import ODEDataset, generate, generate_odebench
from moesuite.physics.mixer.adapt import AdaptConfig
from moesuite.physics.mixer.evaluate import evaluate_model, write_plots
from moesuite.physics.mixer.plots import plot_assignment_panels
from moesuite.physics.mixer.registry import MODELS
from moesuite.physics.mixer.training import MixERTrainConfig, hold_out_validation, train_model

DATASETS = ("odebench", "ours")
ORDER = ("mixer", "mixer-shared", "mixer-gradgate", "authors")
TITLES = {"odebench": "ODEBench-2D (authors')", "ours": "ours"}


def make_dataset(name: str, seed: int, test_ics: int) -> ODEDataset:
    """The dataset ``name`` with ``test_ics + 1`` held-out trajectories per environment."""
    if name == "odebench":
        return generate_odebench(n_test_ics=test_ics + 1, seed=seed)
    return generate(
        families="all", n_train_envs=8, n_train_ics=8, n_test_ics=test_ics + 1, seed=seed
    )


def table(rows: list[dict]) -> str:
    """The README's table: 3-seed mean +- std in bold, per-seed values in brackets."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["model"])].append(r)

    def cell(rs: list[dict], key: str, digits: int = 3) -> str:
        vals = [r[key] for r in rs]
        if len(vals) == 1:
            return fmt(vals[0], digits)
        mean, sd = statistics.fmean(vals), statistics.stdev(vals)
        per = ", ".join(fmt(v, digits) for v in vals)
        return f"**{fmt(mean, digits)}** ± {fmt(sd, digits)} ({per})"

    lines = []
    rank = {m: i for i, m in enumerate(ORDER)}
    for (ds, model), rs in sorted(
        groups.items(), key=lambda kv: (DATASETS.index(kv[0][0]), rank.get(kv[0][1], 9))
    ):
        rs = sorted(rs, key=lambda r: r["seed"])
        name = "authors' code" if model == "authors" else model
        lines.append(
            [
                TITLES[ds],
                name,
                str(rs[0]["outer_steps"]),
                cell(rs, "mse_in_domain"),
                cell(rs, "mse_adapt"),
                cell(rs, "ari", 2),
                str(rs[0]["params"]),
                ", ".join(f"{r['train_seconds']:.0f}" for r in rs),
            ]
        )
    header = ("data", "model", "outer steps", "in-domain MSE", "adaptation MSE", "ARI",
              "params", "train s (per seed)")  # fmt: skip
    first = rows[0]
    note = (
        f"run `{first['run_id']}`, commit `{first['commit'][:12]}`, seeds "
        f"{sorted({r['seed'] for r in rows})}; ours {first['model_grad_steps']} model gradient "
        "steps (outer steps x 2)"
    )
    authors = [r for r in rows if r["model"] == "authors"]
    if authors:
        a = authors[0]
        note += (
            f", the authors' code {a['model_grad_steps']} (outer steps x 12; "
            f"{a['outer_steps']} of their {AUTHORS_OUTER_STEPS} outer steps = "
            f"{100 * a['outer_steps'] / AUTHORS_OUTER_STEPS:.1f}% of their budget), their "
            f"commit `{a['authors_commit']}`; train s with their JIT compilation"
        )
        if a["commit"] != first["commit"]:
            note += f"; their rows added to this run (`--resume`) at commit `{a['commit'][:12]}`"
    return markdown(header, lines) + f"\n\n{note}.\n"


def write_assignment_png(rows: list[dict], path: Path, datasets: dict[str, ODEDataset]) -> None:
    """Expert per environment of MixER and the authors' code, seed 0, on both datasets."""
    panels = []
    for ds in DATASETS:
        for model in ("mixer", "authors"):
            r = next((r for r in rows if (r["dataset"], r["model"], r["seed"]) == (ds, model, 0)),
                     None)  # fmt: skip
            if r is None or ds not in datasets:
                continue
            who = "authors' code" if model == "authors" else "MixER (ours)"
            data = datasets[ds]
            title = f"{who} on {TITLES[ds]}: ARI {r['ari']:.2f}"
            panels.append((title, data.families, data.train.family, r["experts"]))
    if panels:
        plot_assignment_panels(path, panels, 10)


def run_task(task: dict) -> dict:
    """Train and score one (dataset, model, seed); returns its row (runs in a worker process)."""
    torch.set_num_threads(task["threads"])
    name, model, seed = task["dataset"], task["model"], task["seed"]
    dataset, validation = hold_out_validation(make_dataset(name, seed, task["test_ics"]), 1)
    E = len(dataset.families)
    base = {key: task[key] for key in ("bench", "run_id", "commit", "dataset", "model", "seed",
                                       "threads", "adapt_steps")}  # fmt: skip
    base["families"] = list(dataset.families)
    if model == "authors":
        steps = task["authors_steps"]
        start = time.perf_counter()
        res = run_authors(
            dataset, repo=task["authors_repo"], python=task["authors_python"],
            work=task["work"] / f"{name}-seed{seed}-outer{steps}", outer_steps=steps,
            adapt_steps=task["adapt_steps"], seed=seed, log=task["log"],
        )  # fmt: skip
        return {**base, **res, "model_grad_steps": steps * 12,
                "authors_commit": task["authors_commit"],
                "wall_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    tc = MixERTrainConfig(epochs=task["epochs"], seed=seed)
    net, system, train_s = train_model(
        model, dataset, num_experts=E, train_config=tc, validation=validation
    )
    start = time.perf_counter()
    adapt = AdaptConfig(steps=task["adapt_steps"], starts=E, seed=seed)
    ev = evaluate_model(net, dataset, adapt)
    if (name, model, seed) == ("odebench", "mixer", 0):
        with tempfile.TemporaryDirectory() as tmp:
            write_plots(Path(tmp), dataset, ev, model)
            shutil.copy(
                Path(tmp) / "trajectories_adapt.png", task["out"] / "mixer_trajectories_adapt.png"
            )
    return {**base, **ev.metrics, "experts": ev.experts.tolist(), "outer_steps": tc.outer_steps,
            "model_grad_steps": tc.outer_steps * 2, "best_val_mse": system.best_val,
            "gate_updates": system.gate_updates, "gate_aborts": system.gate_aborts,
            "train_seconds": round(train_s, 1),
            "eval_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(ORDER[:3]), help="'authors': only theirs")
    parser.add_argument("--epochs", type=int, default=20, help="ours: epochs of 10 outer steps")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--test-ics", type=int, default=4, help="scored trajectories per env")
    parser.add_argument("--adapt-steps", type=int, default=300)
    parser.add_argument("--authors-repo", type=Path, default=None, help="checkout of their code")
    parser.add_argument("--authors-commit", default=None, help="its commit")
    parser.add_argument("--authors-python", type=Path, default=None, help="Python with JAX")
    parser.add_argument("--authors-outer-steps", type=int, default=None)
    parser.add_argument("--work", type=Path, default=Path("runs/bench_mixer_authors"))
    parser.add_argument("--jobs", type=int, default=1, help="tasks run at once (processes)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument("--resume", default=None, metavar="RUN_ID", help="continue this run")
    parser.add_argument("--table-only", action="store_true", help="rewrite mixer.md and stop")
    args = parser.parse_args()
    jsonl, md = args.out / "mixer.jsonl", args.out / "mixer.md"
    names = args.datasets.split(",")
    datasets0 = {n: hold_out_validation(make_dataset(n, 0, args.test_ics), 1)[0] for n in names}
    if args.table_only:
        rows = read_rows(jsonl)
        md.write_text(table(rows))
        write_assignment_png(rows, args.out / "mixer_expert_assignment.png", datasets0)
        return
    models = args.models.split(",")
    if args.authors_repo is not None:
        if not (args.authors_commit and args.authors_python):
            raise SystemExit("--authors-repo needs --authors-commit and --authors-python.")
        models += [] if "authors" in models else ["authors"]
    if "authors" in models and args.authors_repo is None:
        raise SystemExit("the model 'authors' needs --authors-repo (a checkout of their code).")
    for model in models:
        if model != "authors":
            MODELS.get(model)
    run_id, done = open_rows(jsonl, args.resume)
    finished = {(r["dataset"], r["model"], r["seed"]) for r in done}
    common = {
        "bench": "mixer", "run_id": run_id, "commit": commit(), "threads": args.threads,
        "adapt_steps": args.adapt_steps, "epochs": args.epochs, "test_ics": args.test_ics,
        "authors_steps": args.authors_outer_steps or round(args.epochs * 10 * 2 / 12),
        "authors_repo": args.authors_repo, "authors_python": args.authors_python,
        "authors_commit": args.authors_commit, "work": args.work.resolve(), "out": args.out,
        "log": (args.out.parent / "bench_mixer_authors.log").resolve(),
    }  # fmt: skip
    tasks = [
        {**common, "dataset": name, "model": model, "seed": int(seed)}
        for seed in args.seeds.split(",")
        for name in names
        for model in models
        if (name, model, int(seed)) not in finished
    ]

    def record(row: dict) -> None:
        append_row(jsonl, row)
        rows = read_rows(jsonl)
        md.write_text(table(rows))
        write_assignment_png(rows, args.out / "mixer_expert_assignment.png", datasets0)

    run_all(run_task, tasks, record, args.jobs)


if __name__ == "__main__":
    main()
