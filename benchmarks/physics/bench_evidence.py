"""EvidenceMoE vs least squares, a dense network and a softmax MoE on simulated FLiDAR histograms.

Two settings, each trained and scored on the same simulated train / validation / test sets
(default ranges: depth 1-20 mm, tau 0.3-2 ns, mu_a 0.005-0.05 /mm, mu_s' 0.5-2 /mm, n
1.33-1.44, IRF FWHM 100-300 ps, 1e3-1e5 photons, 0-5% background):

* ``default``: the estimators see only the histogram (optics are unknown nuisances);
* ``known``: the estimators are also given each signal's optics, refractive index and IRF width.

Every neural model has EvidenceMoE's parameter count and the same budget (epochs, batch,
learning rate; last epoch's weights); least squares fits the forward model per signal on the
first ``--lsq-n`` test signals (it is slow), and every network is also scored on that subset
(rows ``subset=lsq``). One invocation writes ``results/evidence.jsonl`` (one row per setting,
model and subset, with the run id and the commit), ``results/evidence.md`` (the README's
tables, from this run only) and two PNGs of the default setting
(``results/evidence_pred_vs_true.png``, ``results/evidence_nrmse_vs_depth_photons.png``). A new
run replaces the results; ``--resume RUN_ID`` continues an interrupted one (a setting interrupted
before its last model loses its NRMSE plot: the plot needs every model's predictions)::

    nice -n 10 .venv/bin/python benchmarks/physics/bench_evidence.py \
        > /tmp/bench_evidence.log 2>&1 &
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from _results import RESULTS, append_row, commit, fmt, markdown, open_rows, read_rows

from moesuite.physics.data.flidar import SimulationConfig, simulate_dataset
from moesuite.physics.evidence.config import EvidenceTrainConfig
from moesuite.physics.evidence.evaluate import Prediction, metrics_of, truth
from moesuite.physics.evidence.plots import plot_nrmse_vs, plot_pred_vs_true
from moesuite.physics.evidence.registry import MODELS
from moesuite.physics.evidence.training import fit_and_predict

ORDER = ("evidence", "evidence-dense", "evidence-softmax", "evidence-lsq")


def _subset(pred: Prediction, idx: slice) -> Prediction:
    extras = {k: v[idx] for k, v in pred.extras.items()}
    return Prediction(pred.mean[idx], pred.lower[idx], pred.upper[idx], extras)


def table(rows: list[dict]) -> str:
    """The README's tables: every test signal, the least-squares subset, the critics."""
    rank = {m: i for i, m in enumerate(ORDER)}
    rows = sorted(rows, key=lambda r: (r["setting"], rank.get(r["model"], 9)))
    header = (
        "setting",
        "model",
        "n test",
        "NRMSE depth",
        "NRMSE tau",
        "90% cov. depth",
        "90% cov. tau",
        "NRMSE depth (mean / std norm.)",
        "NRMSE tau (mean / std norm.)",
        "params",
        "seconds",
    )
    parts = []
    for subset, title in (("full", "all test signals"), ("lsq", "the least-squares subset")):
        lines = [
            [
                r["setting"],
                r["model"],
                str(r["n_signals"]),
                fmt(r["nrmse_depth"]),
                fmt(r["nrmse_tau"]),
                fmt(r["coverage90_depth"]),
                fmt(r["coverage90_tau"]),
                f"{fmt(r['nrmse_mean_depth'])} / {fmt(r['nrmse_std_depth'])}",
                f"{fmt(r['nrmse_mean_tau'])} / {fmt(r['nrmse_std_tau'])}",
                str(r.get("params", "-")),
                f"{r['seconds']:.0f}",
            ]
            for r in rows
            if r["subset"] == subset
        ]
        parts.append(f"Scored on {title}:\n\n" + markdown(header, lines))
    critics = [r for r in rows if r["subset"] == "full" and r["model"] == "evidence"]
    lines = []
    for r in critics:
        w = r.get("expert_weight_mean")
        weights = ", ".join(f"[{a:.2f} {b:.2f}]" for a, b in w) if w else "-"
        lines.append(
            [
                r["setting"],
                fmt(r.get("critic_spearman_depth"), 2),
                fmt(r.get("critic_spearman_tau"), 2),
                fmt(r.get("critic_spearman_within_depth"), 2),
                fmt(r.get("critic_spearman_within_tau"), 2),
                fmt(r.get("uncertainty_spearman_depth"), 2),
                fmt(r.get("uncertainty_spearman_tau"), 2),
                weights,
            ]
        )
    header = (
        "setting",
        "critic depth",
        "critic tau",
        "within-signal depth",
        "within-signal tau",
        "uncertainty depth",
        "uncertainty tau",
        "mean fusion weights",
    )
    parts.append("EvidenceMoE's critics and uncertainty (Spearman):\n\n" + markdown(header, lines))
    first = rows[0]
    note = (
        f"run `{first['run_id']}`, commit `{first['commit'][:12]}`, {first['epochs']} epochs, "
        f"{first['n_train']} training signals, seed {first['seed']}"
    )
    return "\n\n".join(parts) + f"\n\n{note}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="default,known")
    parser.add_argument("--models", default=",".join(ORDER))
    parser.add_argument("--n-train", type=int, default=40000)
    parser.add_argument("--n-val", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=20000)
    parser.add_argument("--lsq-n", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument("--resume", default=None, metavar="RUN_ID", help="continue this run")
    parser.add_argument("--table-only", action="store_true", help="rewrite evidence.md and stop")
    args = parser.parse_args()
    jsonl, md = args.out / "evidence.jsonl", args.out / "evidence.md"
    if args.table_only:
        md.write_text(table(read_rows(jsonl)))
        return
    models = args.models.split(",")
    for model in models:
        MODELS.get(model)
    torch.set_num_threads(args.threads)
    run_id, done = open_rows(jsonl, args.resume)
    finished = {(r["setting"], r["model"]) for r in done}
    sha = commit()
    cfg = SimulationConfig()
    t0 = time.perf_counter()
    train_ds = simulate_dataset(args.n_train, cfg, seed=args.seed)
    val_ds = simulate_dataset(args.n_val, cfg, seed=args.seed + 1)
    test_ds = simulate_dataset(args.n_test, cfg, seed=args.seed + 2)
    n_sim = args.n_train + args.n_val + args.n_test
    print(f"simulated {n_sim} signals in {time.perf_counter() - t0:.1f} s", flush=True)
    lsq_idx = slice(0, min(args.lsq_n, args.n_test))
    sub = test_ds.subset(lsq_idx)
    for setting in args.settings.split(","):
        if setting not in ("default", "known"):
            raise SystemExit(f"unknown setting {setting!r}; expected default or known")
        tc = EvidenceTrainConfig(
            n_train=args.n_train,
            n_val=args.n_val,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            lsq_max_signals=args.lsq_n,
            known_optics=setting == "known",
        )
        means = {}
        for model in models:
            if (setting, model) in finished:
                continue
            start = time.perf_counter()
            pred, scored, info = fit_and_predict(model, train_ds, val_ds, test_ds, tc)
            seconds = time.perf_counter() - start
            lsq = model == "evidence-lsq"
            subsets = [("lsq", pred, scored)] if lsq else [("full", pred, test_ds)]
            if not lsq:
                subsets.append(("lsq", _subset(pred, lsq_idx), sub))
            for subset, p, ds in subsets:
                row = {
                    "bench": "evidence",
                    "run_id": run_id,
                    "commit": sha,
                    "setting": setting,
                    "model": model,
                    "subset": subset,
                    "seed": args.seed,
                    "epochs": args.epochs,
                    "n_train": args.n_train,
                    "seconds": round(seconds, 1),
                    **info,
                    **metrics_of(p, ds),
                }
                append_row(jsonl, row)
            means[model] = pred.mean[lsq_idx] if not lsq else pred.mean
            if setting == "default" and model == "evidence":
                plot_pred_vs_true(
                    truth(test_ds),
                    pred.mean,
                    pred.lower,
                    pred.upper,
                    args.out / "evidence_pred_vs_true.png",
                    "EvidenceMoE (default setting): predicted vs true, 90% intervals",
                )
            md.write_text(table(read_rows(jsonl)))
        if setting == "default" and len(means) == len(models):
            plot_nrmse_vs(
                truth(sub),
                means,
                sub.column("depth_mm"),
                sub.signals.sum(1),
                args.out / "evidence_nrmse_vs_depth_photons.png",
                f"FLiDAR (default setting): NRMSE vs depth and photons, first {args.lsq_n} "
                "test signals",
            )
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
