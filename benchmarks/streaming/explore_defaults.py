"""Short tuning runs on the tuning streams only: DriftMoE configurations side by side with ARF.

Every configuration and ARF learn the same materialised instances, interleaved chunk by chunk in
one process (paired CPU time, so the machine's load affects all alike). One JSON line per
(stream, seed, configuration) with accuracy, the paired speed ratio to ARF, expert-usage
imbalance (max/mean of the top-1 choices), resets and the accuracy in the 1,000 instances after
each drift. What was tried and what it gave: ``packages/streaming/docs/experiments.md``.

    python benchmarks/streaming/explore_defaults.py --n 10000 --config base --config lb01 \
        --out /tmp/explore.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: configurations: DriftMoEClassifier arguments (a registered model name under "model")
CONFIGS: dict[str, dict] = {
    "arf": {"model": "arf"},
    "ht": {"model": "ht"},
    "base": {},
    "task": {"variant": "task"},
    "paper": {"paper": "data"},
    "lb01": {"lb_weight": 0.01},
    "lb1": {"lb_weight": 0.1},
    "topk6": {"top_k": 6},
    "warm200": {"warmup": 200},
    "warm1000": {"warmup": 1000},
    "e8": {"n_experts": 8},
    "lr1e-2": {"lr": 1e-2},
    "trk2": {"train_k": 2},
    "grace50": {"grace_period": 50},
    "delta4": {"delta": 1e-4},
    "delta7": {"delta": 1e-7},
}


def build(config: dict, seed: int):
    from moesuite.streaming import DriftMoEClassifier, create_model

    config = dict(config)
    if "model" in config:
        return create_model(config.pop("model"), seed=seed, **config)
    if "paper" in config:
        return DriftMoEClassifier(**DriftMoEClassifier.paper_params(config.pop("paper")), seed=seed)
    tree_params = {k: config.pop(k) for k in ("grace_period", "delta") if k in config}
    if tree_params:
        proto = DriftMoEClassifier.default_expert(config.get("variant", "data"))
        config["expert"] = proto.clone(tree_params)
    return DriftMoEClassifier(**config, seed=seed)


def main() -> None:
    sys.path.insert(0, str(HERE))
    from bench_streaming import TUNING

    from moesuite.streaming import make_stream

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--streams", action="append", help=f"default: the tuning set {TUNING}")
    p.add_argument("--config", action="append", help=f"from {sorted(CONFIGS)} (+ arf always)")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--chunk", type=int, default=250)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    names = list(dict.fromkeys(["arf", *(a.config or ["base"])]))
    for stream_name in a.streams or TUNING:
        for seed in a.seeds:
            stream = make_stream(stream_name, a.n, seed=seed)
            data = list(stream)
            models = {c: build(CONFIGS[c], seed) for c in names}
            spent = dict.fromkeys(names, 0.0)
            hits = {c: [] for c in names}
            for start in range(0, len(data), a.chunk):
                part = data[start : start + a.chunk]
                for c, m in models.items():
                    t0 = time.process_time()
                    for x, y in part:
                        hits[c].append(m.predict_one(x) == y)
                        m.learn_one(x, y)
                    spent[c] += time.process_time() - t0
            with a.out.open("a") as fh:
                for c in names:
                    h = hits[c]
                    usage = getattr(models[c], "expert_usage", lambda: [])()
                    row = {
                        "stream": stream_name,
                        "seed": seed,
                        "n": len(h),
                        "config": c,
                        "accuracy": sum(h) / len(h),
                        "ratio_to_arf": spent["arf"] / spent[c],
                        "imbalance": max(usage) * len(usage) / sum(usage) if usage else None,
                        "resets": getattr(models[c], "n_resets_", None),
                        "after_drift": [
                            sum(h[d : d + 1000]) / len(h[d : d + 1000]) for d in stream.drift_points
                        ],
                    }
                    fh.write(json.dumps(row) + "\n")
                    print(
                        f"{stream_name:>18} s{seed} {c:>10} acc {row['accuracy']:.4f} "
                        f"x{row['ratio_to_arf']:.2f} imb {row['imbalance']} res {row['resets']}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
