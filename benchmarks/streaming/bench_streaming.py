"""DriftMoE against river's HT, HAT, ARF, SRP and Leveraging Bagging, prequentially.

Every (stream, model) pair runs in its own process (one at a time; a slow model cannot block
the rest, and a crash or time-out costs one row) and appends one JSON line to
``results/streaming.jsonl`` as soon as it finishes, so partial results survive. Pairs already
in the file (same stream, model, n, seed) are skipped: rerunning the command resumes
(``--force`` reruns them; the newest row of a pair is the one the tables use).

    python benchmarks/streaming/bench_streaming.py                         # everything, 100k
    python benchmarks/streaming/bench_streaming.py --models srp --models lb --n 20000
    python benchmarks/streaming/bench_streaming.py --table                 # README table + plots

Throughput is instances per second spent inside the model's predict + learn calls.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_MODELS = ["driftmoe-data", "driftmoe-task", "ht", "hat", "arf", "srp", "lb"]


def run_job(stream: str, model: str, n: int | None, seed: int, data: str | None, target: str | None) -> dict:
    from moesuite.streaming import create_model, make_stream, prequential, read_table

    s = read_table(data, target) if data else make_stream(stream, n, seed=seed)
    if data and n:
        s.n_samples = min(n, s.n_samples or n)
    m = create_model(model, seed=seed)
    window = max(100, (s.n_samples or 100_000) // 100)
    t0 = time.time()
    r = prequential(m, s, window=window)
    row = {"stream": stream, "model": model, "n": r.n, "seed": seed, "requested_n": n,
           **{k: v for k, v in r.to_dict().items() if k not in ("windows", "expert_usage")},
           "wall_seconds": time.time() - t0, "window": window, "windows": r.windows,
           "drift_points": s.drift_points, "kind": s.kind}
    if r.expert_usage:
        row["expert_usage"] = [[round(u, 4) for u in w] for w in r.expert_usage]
    return row


def done_keys(path: Path) -> set[tuple]:
    keys = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                keys.add((r["stream"], r["model"], r["requested_n"], r["seed"]))
    return keys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", action="append", help="stream names (default: all registered)")
    p.add_argument("--models", action="append", help=f"model names (default: {DEFAULT_MODELS})")
    p.add_argument("--n", type=int, default=100_000, help="instances per synthetic stream (real: cut to it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "streaming.jsonl")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per (stream, model) job")
    p.add_argument("--elec", type=Path, default=None, help="elec.csv to add as the 'elec' stream")
    p.add_argument("--force", action="store_true",
                   help="rerun pairs already in --out (the new row wins in the tables), e.g. after a model changed")
    p.add_argument("--table", action="store_true", help="print the README table from --out and write plots")
    p.add_argument("--job", nargs=2, metavar=("STREAM", "MODEL"), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.job:
        print(json.dumps(run_job(a.job[0], a.job[1], a.n, a.seed, a.data, a.target)))
        return
    if a.table:
        sys.path.insert(0, str(HERE))
        from _report import write_report, write_throughput_report

        write_report(a.out, RESULTS)
        write_throughput_report(RESULTS / "throughput.jsonl")
        return

    from moesuite.streaming import list_streams

    streams = a.streams or list_streams()
    models = a.models or DEFAULT_MODELS
    a.out.parent.mkdir(parents=True, exist_ok=True)
    done = set() if a.force else done_keys(a.out)
    for stream in streams:
        for model in models:
            if (stream, model, a.n, a.seed) in done:
                continue
            cmd = [sys.executable, __file__, "--job", stream, model, "--n", str(a.n), "--seed", str(a.seed)]
            if stream == "elec" and a.elec:
                cmd += ["--data", str(a.elec), "--target", "class"]
            t0 = time.time()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env={**os.environ})
            except subprocess.TimeoutExpired:
                print(f"{stream:>20} {model:>14}  timed out after {a.timeout:.0f} s", flush=True)
                continue
            if proc.returncode != 0:
                print(f"{stream:>20} {model:>14}  FAILED: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            with a.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{stream:>20} {model:>14}  acc {row['accuracy']:.4f}  kappa {row['kappa']:.3f}  "
                  f"{row['throughput']:8.0f} inst/s  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
