"""EvidenceMoE vs a dense network, a softmax MoE and least squares on simulated FLiDAR histograms.

One invocation trains every network for every seed and scores every model on the same test
sets, and writes ``results/evidence.jsonl`` (one row per setting, model and seed, with the run
id and the commit), ``results/evidence.md`` (the README's table, from this run only) and two PNGs
of the default setting, seed 0 (``results/evidence_expert_wins.png``: which EvidenceMoE expert is
closest, and which the critics rank first, over depth x lifetime;
``results/evidence_nrmse_vs_depth_photons.png``: every model's NRMSE against depth and photons).

Settings: ``default`` (the estimators see only the histogram; the optics are unknown nuisances)
and ``known`` (they are also given each signal's optics, refractive index and IRF width). Data:
per seed its own training and validation signals over the default ranges (depth 1-20 mm, tau
0.3-2 ns, mu_a 0.005-0.05 /mm, mu_s' 0.5-2 /mm, n 1.33-1.44, IRF FWHM 100-300 ps, 1e3-1e5
photons, 0-5% background); one test set for every model and seed, and two test sets outside
the training ranges: photon counts of 300-1,000 (``lowph``) and reduced scattering of 2-3 /mm
(``hiscat``). Every network has EvidenceMoE's parameter count and the same budget (epochs,
batch, learning rate) and keeps the weights of its best validation epoch; least squares fits
the forward model to every signal of the in-range test set (once: it has no seed). Resumable:
``--resume RUN_ID`` keeps the finished rows; ``--jobs`` runs that many trainings at once::

    nice -n 10 .venv/bin/python benchmarks/physics/bench_evidence.py --jobs 3 \\
        > /tmp/bench_evidence.log 2>&1 &
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from _results import RESULTS, append_row, commit, fmt, markdown, open_rows, read_rows, run_all

from moesuite.physics.data.flidar import SimulationConfig, simulate_dataset
from moesuite.physics.evidence.config import EvidenceTrainConfig
from moesuite.physics.evidence.evaluate import metrics_of, predict, truth
from moesuite.physics.evidence.experts import WINDOWS
from moesuite.physics.evidence.metrics import nrmse
from moesuite.physics.evidence.plots import plot_expert_wins, plot_nrmse_vs
from moesuite.physics.evidence.registry import MODELS, parameter_count
from moesuite.physics.evidence.training import fit_and_predict, fit_model

ORDER = ("evidence", "evidence-dense", "evidence-softmax", "evidence-lsq")
SHIFTS = {"lowph": {"photons": (3e2, 1e3)}, "hiscat": {"musp_ex": (2.0, 3.0)}}


def test_sets(n_test: int, n_shift: int) -> dict:
    """The in-range test set and the two shifted ones (fixed seeds, shared by every model)."""
    cfg = SimulationConfig()
    sets = {"test": simulate_dataset(n_test, cfg, seed=1000)}
    for i, (name, shift) in enumerate(SHIFTS.items()):
        ranges = {**cfg.ranges, **shift}
        sets[name] = simulate_dataset(n_shift, SimulationConfig(ranges=ranges), seed=1001 + i)
    return sets


def run_task(task: dict) -> dict:
    """Train (unless least squares) and score one (setting, model, seed); returns its row."""
    torch.set_num_threads(task["threads"])
    setting, model, seed = task["setting"], task["model"], task["seed"]
    cfg = SimulationConfig()
    tc = EvidenceTrainConfig(
        n_train=task["n_train"], n_val=task["n_val"], epochs=task["epochs"],
        batch_size=task["batch_size"], lr=task["lr"], seed=seed,
        lsq_max_signals=task["n_test"], known_optics=setting == "known",
    )  # fmt: skip
    sets = test_sets(task["n_test"], task["n_shift"])
    row = {key: task[key] for key in ("bench", "run_id", "commit", "setting", "model", "seed",
                                      "epochs", "n_train", "threads")}  # fmt: skip
    start = time.perf_counter()
    if model == "evidence-lsq":
        pred, scored, info = fit_and_predict(model, sets["test"], sets["test"], sets["test"], tc)
        row.update(metrics_of(pred, scored), **info, seconds=round(time.perf_counter() - start))
        np.savez(task["work"] / f"{setting}-{model}-{seed}.npz", mean=pred.mean)
        return row
    train_ds = simulate_dataset(task["n_train"], cfg, seed=seed)
    val_ds = simulate_dataset(task["n_val"], cfg, seed=seed + 100)
    net, train_s = fit_model(model, train_ds, val_ds, tc)
    row.update(train_seconds=round(train_s), params=parameter_count(net))
    for name, ds in sets.items():
        pred = predict(net, ds, known=tc.known, trained_on=cfg)
        m = metrics_of(pred, ds)
        prefix = "" if name == "test" else f"{name}_"
        row.update({prefix + k: v for k, v in m.items()})
        if "expert_mean" in pred.extras:
            y = truth(ds)
            for j, target in enumerate(("depth", "tau")):
                row[f"{prefix}expert_nrmse_{target}"] = [
                    nrmse(y[:, j], pred.extras["expert_mean"][:, e, j]) for e in range(3)
                ]
        if name == "test":
            arrays = {"mean": pred.mean}
            for key in ("expert_mean", "reliability"):
                if key in pred.extras:
                    arrays[key] = pred.extras[key]
            np.savez(task["work"] / f"{setting}-{model}-{seed}.npz", **arrays)
    row["seconds"] = round(time.perf_counter() - start)
    return row


def _cell(rs: list[dict], key: str, digits: int = 3) -> str:
    vals = [r[key] for r in rs if r.get(key) is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return fmt(vals[0], digits)
    return f"**{fmt(statistics.fmean(vals), digits)}** ± {fmt(statistics.stdev(vals), digits)}"


def table(rows: list[dict]) -> str:
    """The README's table: 3-seed mean ± std per setting and model."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["setting"], r["model"])].append(r)
    rank = {m: i for i, m in enumerate(ORDER)}
    lines = []
    for (setting, model), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], rank[kv[0][1]])):
        best = "-"
        if model == "evidence":
            per_seed = [min(r["expert_nrmse_depth"]) for r in rs]
            best = _cell([{"v": v} for v in per_seed], "v")
        lines.append(
            [setting, model, str(len(rs)), _cell(rs, "nrmse_depth"), _cell(rs, "nrmse_tau"), best,
             _cell(rs, "coverage90_depth", 2), _cell(rs, "coverage90_tau", 2),
             _cell(rs, "lowph_coverage90_depth", 2), _cell(rs, "lowph_coverage90_tau", 2),
             _cell(rs, "hiscat_coverage90_depth", 2), _cell(rs, "hiscat_coverage90_tau", 2),
             _cell(rs, "critic_spearman_within_depth", 2),
             _cell(rs, "critic_spearman_within_tau", 2), str(rs[0].get("params", "-"))]
        )  # fmt: skip
    header = ("setting", "model", "seeds", "NRMSE depth", "NRMSE tau", "best expert depth",
              "cov. depth", "cov. tau", "cov. depth, 300-1k photons", "cov. tau, 300-1k photons",
              "cov. depth, mu_s' 2-3", "cov. tau, mu_s' 2-3", "critics: Spearman depth",
              "critics: Spearman tau", "params")  # fmt: skip
    first = rows[0]
    note = (
        f"run `{first['run_id']}`, commit `{first['commit'][:12]}`, {first['epochs']} epochs, "
        f"{first['n_train']} training signals per seed, seeds "
        f"{sorted({r['seed'] for r in rows if r['model'] != 'evidence-lsq'})}; cov. = 90% "
        "interval coverage"
    )
    return markdown(header, lines) + f"\n\n{note}.\n"


def write_pngs(rows: list[dict], work: Path, out: Path, n_test: int, n_shift: int) -> None:
    """The expert-wins map of EvidenceMoE and the NRMSE-vs-depth/photons plot (default, seed 0)."""
    ev = work / "default-evidence-0.npz"
    test = None
    if ev.is_file():
        test = test_sets(n_test, n_shift)["test"]
        with np.load(ev) as p:
            plot_expert_wins(
                truth(test), p["expert_mean"], p["reliability"], tuple(WINDOWS),
                out / "evidence_expert_wins.png",
                "EvidenceMoE (optics unknown, seed 0): which expert wins where",
            )  # fmt: skip
    means = {}
    for model in ORDER:
        f = work / f"default-{model}-{0 if model != 'evidence-lsq' else -1}.npz"
        if f.is_file():
            with np.load(f) as p:
                means[model] = p["mean"]
    if len(means) == len(ORDER):
        test = test if test is not None else test_sets(n_test, n_shift)["test"]
        plot_nrmse_vs(
            truth(test), means, test.column("depth_mm"), test.signals.sum(1),
            out / "evidence_nrmse_vs_depth_photons.png",
            "FLiDAR, optics unknown (seed 0): NRMSE vs depth and photons, all test signals",
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="default,known")
    parser.add_argument("--models", default=",".join(ORDER))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n-train", type=int, default=10000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=4000)
    parser.add_argument("--n-shift", type=int, default=2000, help="signals per shifted test set")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("runs/bench_evidence"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--resume", default=None, metavar="RUN_ID")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    jsonl, md = args.out / "evidence.jsonl", args.out / "evidence.md"
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        md.write_text(table(read_rows(jsonl)))
        write_pngs(read_rows(jsonl), work, args.out, args.n_test, args.n_shift)
        return
    models = args.models.split(",")
    for model in models:
        MODELS.get(model)
    run_id, done = open_rows(jsonl, args.resume)
    finished = {(r["setting"], r["model"], r["seed"]) for r in done}
    common = {
        "bench": "evidence", "run_id": run_id, "commit": commit(), "threads": args.threads,
        "epochs": args.epochs, "n_train": args.n_train, "n_val": args.n_val,
        "n_test": args.n_test, "n_shift": args.n_shift, "batch_size": args.batch_size,
        "lr": args.lr, "work": work,
    }  # fmt: skip
    tasks = []
    for setting in args.settings.split(","):
        for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
            for model in models:
                if model == "evidence-lsq" and i:
                    continue
                s = -1 if model == "evidence-lsq" else seed  # least squares has no seed
                if (setting, model, s) not in finished:
                    tasks.append({**common, "setting": setting, "model": model, "seed": s})

    def record(row: dict) -> None:
        append_row(jsonl, row)
        rows = read_rows(jsonl)
        md.write_text(table(rows))
        write_pngs(rows, work, args.out, args.n_test, args.n_shift)

    run_all(run_task, tasks, record, args.jobs)


if __name__ == "__main__":
    main()
