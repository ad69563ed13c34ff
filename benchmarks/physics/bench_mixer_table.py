"""Markdown table of ``benchmarks/physics/results/mixer.jsonl`` (mean over seeds, per-seed values).

    .venv/bin/python benchmarks/physics/bench_mixer_table.py [--tag final]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "mixer.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file", type=Path, nargs="+", default=[RESULTS])
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    rows = [json.loads(line) for f in args.file for line in f.read_text().splitlines() if line.strip()]
    if args.tag is not None:
        rows = [r for r in rows if r.get("tag") == args.tag]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["setting"], r["model"])].append(r)
    order = {"1 families": 0, "3 families": 1, "10 families": 2}
    models = {"mixer": 0, "mixer-shared": 1, "mixer-gradgate": 2}
    print("| families | model | experts | in-domain MSE | adaptation MSE | ARI | params | train s (per seed) |")
    print("|---|---|---|---|---|---|---|---|")
    for (setting, model), rs in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), models.get(kv[0][1], 9))):
        rs = sorted(rs, key=lambda r: r["seed"])

        def cell(key: str, digits: int = 3, rs: list[dict] = rs) -> str:
            vals = [r[key] for r in rs]
            mean = sum(vals) / len(vals)
            per = ", ".join(f"{v:.{digits}f}" for v in vals)
            return f"**{mean:.{digits}f}** ({per})" if len(vals) > 1 else f"{mean:.{digits}f}"

        secs = ", ".join(f"{r['train_seconds']:.0f}" for r in rs)
        print(f"| {setting.split()[0]} | {model} | {rs[0]['num_experts']} | {cell('mse_in_domain')} | "
              f"{cell('mse_adapt')} | {cell('ari', 2)} | {rs[0]['params']} | {secs} |")


if __name__ == "__main__":
    main()
