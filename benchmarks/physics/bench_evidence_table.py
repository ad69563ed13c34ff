"""Markdown tables of ``benchmarks/physics/results/evidence.jsonl`` (one row per setting and model).

    .venv/bin/python benchmarks/physics/bench_evidence_table.py [--tag TAG]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "evidence.jsonl"
ORDER = {"evidence": 0, "evidence (window inputs)": 1, "evidence-dense": 2, "evidence-softmax": 3, "evidence-lsq": 4}


def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, default=RESULTS)
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    if args.tag is not None:
        rows = [r for r in rows if r.get("tag") == args.tag]
    latest: dict[tuple[str, str, str], dict] = {}
    for r in rows:  # the last run of each (setting, model, subset) wins
        if r.get("expert_inputs") == "window":
            r = dict(r, model="evidence (window inputs)")
        latest[(r["setting"], r["model"], r["subset"])] = r
    for subset, title in (("full", "all test signals"), ("lsq", "the least-squares subset")):
        print(f"\nScored on {title}:\n")
        print("| setting | model | n test | NRMSE depth | NRMSE tau | 90% cov. depth | 90% cov. tau | "
              "NRMSE depth (mean / std norm.) | NRMSE tau (mean / std norm.) | params | seconds |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        keys = sorted((k for k in latest if k[2] == subset), key=lambda k: (k[0], ORDER.get(k[1], 9)))
        for key in keys:
            r = latest[key]
            print(f"| {r['setting']} | {r['model']} | {r['n_signals']} | {_f(r['nrmse_depth'])} | {_f(r['nrmse_tau'])} | "
                  f"{_f(r['coverage90_depth'])} | {_f(r['coverage90_tau'])} | "
                  f"{_f(r['nrmse_mean_depth'])} / {_f(r['nrmse_std_depth'])} | "
                  f"{_f(r['nrmse_mean_tau'])} / {_f(r['nrmse_std_tau'])} | {r.get('params', '-')} | {r['seconds']:.0f} |")
    critics = [dict(r, setting=f"{r['setting']}, {r['model']}") for k, r in latest.items()
               if k[2] == "full" and (k[1] == "evidence" or k[1].startswith("evidence ("))]
    if critics:
        print("\nEvidenceMoE critics (Spearman of reliability vs -error per expert; of epistemic variance vs error):\n")
        print("| setting | critic depth | critic tau | uncertainty depth | uncertainty tau | mean fusion weights |")
        print("|---|---|---|---|---|---|")
        for r in critics:
            w = r.get("expert_weight_mean")
            ws = ", ".join(f"[{a:.2f} {b:.2f}]" for a, b in w) if w else "-"
            print(f"| {r['setting']} | {_f(r.get('critic_spearman_depth'), 2)} | {_f(r.get('critic_spearman_tau'), 2)} | "
                  f"{_f(r.get('uncertainty_spearman_depth'), 2)} | {_f(r.get('uncertainty_spearman_tau'), 2)} | {ws} |")


if __name__ == "__main__":
    main()
