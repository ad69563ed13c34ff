"""Paired throughput: DriftMoE and ARF timed on the same instances, interleaved chunk by chunk.

On a shared machine the load changes from minute to minute, so throughputs measured by
separate processes at different times are not comparable. Here every model processes the same
first ``--n`` instances of each stream (materialised up front), alternating chunks of
``--chunk`` instances between models, so all models see the same load. One JSON line per
(stream, model) goes to ``results/throughput.jsonl``, with the run id and the git commit;
``bench_streaming.py --table`` puts the newest run's table in ``results/streaming.md``.

    python benchmarks/streaming/bench_throughput.py --n 10000 --run-id R
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ["driftmoe-data", "driftmoe-data-fast", "driftmoe-task", "arf"]


def main() -> None:
    sys.path.insert(0, str(HERE))
    from bench_streaming import git_commit

    from moesuite.streaming import create_model, list_streams, make_stream

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--streams", action="append", help="default: every synthetic stream")
    p.add_argument("--models", action="append", help=f"default: {MODELS} (ARF is the reference)")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--chunk", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-id", default=datetime.date.today().isoformat() + "-throughput")
    p.add_argument("--out", type=Path, default=HERE / "results" / "throughput.jsonl")
    a = p.parse_args()
    models = a.models or MODELS
    if "arf" not in models:
        models.append("arf")
    commit = git_commit()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for stream in a.streams or list_streams(kind="synthetic"):
        data = list(make_stream(stream, a.n, seed=a.seed))
        learners = {m: create_model(m, seed=a.seed) for m in models}
        spent = dict.fromkeys(models, 0.0)
        for start in range(0, len(data), a.chunk):
            chunk = data[start : start + a.chunk]
            for m, model in learners.items():
                t0 = time.perf_counter()
                for x, y in chunk:
                    model.predict_one(x)
                    model.learn_one(x, y)
                spent[m] += time.perf_counter() - t0
        with a.out.open("a") as fh:
            for m in models:
                row = {
                    "run_id": a.run_id,
                    "commit": commit,
                    "stream": stream,
                    "model": m,
                    "n": len(data),
                    "chunk": a.chunk,
                    "seed": a.seed,
                    "throughput": len(data) / spent[m],
                    "ratio_to_arf": spent["arf"] / spent[m],
                }
                fh.write(json.dumps(row) + "\n")
                print(
                    f"{stream:>20} {m:>18} {row['throughput']:8.0f} inst/s  "
                    f"x{row['ratio_to_arf']:.2f} vs ARF",
                    flush=True,
                )


if __name__ == "__main__":
    main()
