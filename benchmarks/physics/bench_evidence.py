"""EvidenceMoE vs least squares, a dense network and a softmax MoE on simulated FLiDAR histograms.

Two settings, each with its own simulated train / validation / test sets (default ranges of the
spec: depth 1-20 mm, tau 0.3-2 ns, mu_a 0.005-0.05 /mm, mu_s' 0.5-2 /mm, n 1.33-1.44, IRF
FWHM 100-300 ps, 1e3-1e5 photons, 0-5% background):

* ``default``: the estimators see only the histogram (optics are unknown nuisances);
* ``known``: the estimators are also given each signal's optics, refractive index and IRF width.

Every neural model is trained with the same budget (epochs, batch, learning rate) and has the
same parameter count as EvidenceMoE; least squares fits the forward model per signal (on the
first ``--lsq-n`` test signals, since it runs at ~15-70 signals/s; the neural models are also
scored on that subset, rows ``subset=lsq``). One JSON line per (setting, model, subset) is
appended to ``benchmarks/physics/results/evidence.jsonl``; PNGs go to ``results/plots/``::

    nice -n 10 .venv/bin/python benchmarks/physics/bench_evidence.py \
        > benchmarks/physics/results/evidence.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from moesuite.physics.evidence.api import MODELS, TrainConfig, fit_and_predict, metrics_of
from moesuite.physics.evidence.plots import plot_nrmse_vs, plot_pred_vs_true
from moesuite.physics.flidar import SimulationConfig, simulate_dataset

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="default,known")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--n-train", type=int, default=40000)
    parser.add_argument("--n-val", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=20000)
    parser.add_argument("--lsq-n", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--physics-weight", type=float, default=0.05)
    parser.add_argument("--expert-inputs", default="full", help="EvidenceMoE experts' inputs: full or window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", type=Path, default=RESULTS / "evidence.jsonl")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (RESULTS / "plots").mkdir(parents=True, exist_ok=True)
    cfg = SimulationConfig()
    t0 = time.perf_counter()
    train_ds = simulate_dataset(args.n_train, cfg, seed=args.seed)
    val_ds = simulate_dataset(args.n_val, cfg, seed=args.seed + 1)
    test_ds = simulate_dataset(args.n_test, cfg, seed=args.seed + 2)
    print(f"simulated {args.n_train + args.n_val + args.n_test} signals in {time.perf_counter() - t0:.1f} s", flush=True)
    y = np.stack([test_ds.column("depth_mm"), test_ds.column("tau_ns")], axis=1)
    lsq_idx = slice(0, min(args.lsq_n, args.n_test))
    for setting in args.settings.split(","):
        if setting not in ("default", "known"):
            raise SystemExit(f"unknown setting {setting!r}; expected default or known")
        tc = TrainConfig(n_train=args.n_train, n_val=args.n_val, epochs=args.epochs, batch_size=args.batch_size,
                         lr=args.lr, seed=args.seed, physics_weight=args.physics_weight,
                         lsq_max_signals=args.lsq_n, known_optics=setting == "known",
                         expert_inputs=args.expert_inputs)
        suffix = f"_{args.tag}" if args.tag else ""
        means = {}
        for model in args.models.split(","):
            start = time.perf_counter()
            pred, scored, info = fit_and_predict(model, train_ds, val_ds, test_ds, tc, progress=False)
            seconds = time.perf_counter() - start
            subsets = [("lsq", lsq_idx)] if model == "evidence-lsq" else [("full", slice(None)), ("lsq", lsq_idx)]
            for subset, idx in subsets:
                from moesuite.physics.evidence.api import Prediction

                p = pred if model == "evidence-lsq" else Prediction(
                    pred.mean[idx], pred.lower[idx], pred.upper[idx], {k: v[idx] for k, v in pred.extras.items()})
                m = metrics_of(p, scored if model == "evidence-lsq" else test_ds.subset(idx))
                row = {"bench": "evidence", "setting": setting, "model": model, "subset": subset,
                       "seconds": round(seconds, 1), "epochs": args.epochs, "n_train": args.n_train,
                       "tag": args.tag, "expert_inputs": args.expert_inputs if model == "evidence" else None,
                       **info, **m}
                line = json.dumps(row)
                print(line, flush=True)
                with open(args.out, "a") as fh:
                    fh.write(line + "\n")
            if model != "evidence-lsq":
                means[model] = pred.mean[lsq_idx]
                if model == "evidence":
                    plot_pred_vs_true(y, pred.mean, pred.lower, pred.upper,
                                      RESULTS / "plots" / f"evidence_pred_vs_true_{setting}{suffix}.png",
                                      f"EvidenceMoE ({setting} setting): predicted vs true, 90% intervals")
            else:
                means[model] = pred.mean
        sub = test_ds.subset(lsq_idx)
        plot_nrmse_vs(y[lsq_idx], means, sub.column("depth_mm"), sub.signals.sum(1),
                      RESULTS / "plots" / f"evidence_nrmse_vs_depth_photons_{setting}{suffix}.png",
                      f"FLiDAR ({setting} setting): NRMSE vs depth and photons, first {args.lsq_n} test signals")
    print(f"done in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
