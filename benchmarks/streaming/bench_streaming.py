"""DriftMoE against river's HT, HAT, ARF, SRP and Leveraging Bagging, prequentially.

One invocation is one run: every row it writes carries the run id (``--run-id``, default
today's date) and the git commit of the code. Every (stream, model) pair runs in its own
process, one at a time (a slow model cannot block the rest; a crash or time-out costs one row),
and appends one JSON line to ``results/streaming.jsonl`` as soon as it finishes; its expert
usage per window (DriftMoE) goes to ``results/streaming_expert_usage.jsonl.gz``. Rerunning the
same command resumes the run: pairs already in the file under the same run id are skipped.

    python benchmarks/streaming/bench_streaming.py --run-id R                # every model and
                                                                             # stream, 100k
    python benchmarks/streaming/bench_streaming.py --run-id R --models srp --n 20000
    python benchmarks/streaming/bench_streaming.py --table --run-id R        # results/streaming.md
                                                                             # + the two figures
    (``--table`` with several ``--run-id``: a pair in several runs shows the later-named run)

Throughput is instances per second spent inside the model's predict + learn calls, in the
process that ran the pair (not paired across models: see bench_throughput.py for ratios).
``elec`` is read from ``$MOESUITE_STREAMS_DIR/elec.csv`` or ``../shared/data/streams/elec.csv``.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
USAGE = "streaming_expert_usage.jsonl.gz"
DEFAULT_MODELS = ["driftmoe-data", "driftmoe-data-fast", "driftmoe-task", "ht", "hat", "arf"]
SLOW_MODELS = ["srp", "lb"]


def git_commit() -> str:
    """HEAD's hash, with ``-dirty`` when the streaming package has uncommitted changes."""
    root = HERE.parents[1]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "packages/streaming"],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("-dirty" if dirty else "")


def run_job(stream: str, model: str, n: int, seed: int) -> dict:
    """One model on one stream; the JSON line (expert usage included, split off by the caller)."""
    from moesuite.streaming import create_model, make_stream, prequential

    s = make_stream(stream, n, seed=seed)
    m = create_model(model, seed=seed)
    window = max(100, (s.n_samples or 100_000) // 100)
    t0 = time.time()
    r = prequential(m, s, window=window)
    result = r.to_dict()
    row = {
        "stream": stream,
        "model": model,
        "n": r.n,
        "seed": seed,
        "requested_n": n,
        **{k: result[k] for k in ("accuracy", "kappa", "kappa_m", "kappa_t")},
        **{k: result[k] for k in ("seconds", "throughput")},
        "wall_seconds": time.time() - t0,
        "window": window,
        "windows": r.windows,
        "drift_points": s.drift_points,
        "kind": s.kind,
    }
    if r.expert_usage:
        row["expert_usage"] = [[round(u, 4) for u in w] for w in r.expert_usage]
    return row


def done_keys(path: Path, run_id: str) -> set[tuple]:
    keys = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("run_id") == run_id:
                    keys.add((r["stream"], r["model"], r["requested_n"], r["seed"]))
    return keys


def append(path: Path, row: dict) -> None:
    """The summary row to ``path``, its expert usage (if any) to the compressed side file."""
    usage = row.pop("expert_usage", None)
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    if usage is not None:
        key = {k: row[k] for k in ("run_id", "stream", "model", "requested_n", "seed")}
        with gzip.open(path.parent / USAGE, "at") as fh:
            fh.write(json.dumps({**key, "window": row["window"], "expert_usage": usage}) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--streams", action="append", help="stream names (default: all registered)")
    p.add_argument(
        "--models",
        action="append",
        help=f"model names (default: {DEFAULT_MODELS}, then {SLOW_MODELS})",
    )
    p.add_argument("--n", type=int, default=100_000, help="instances per synthetic stream")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--run-id",
        action="append",
        help="the run's id (default: today's date); with --table, the runs to show (repeatable)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "streaming.jsonl")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per (stream, model)")
    p.add_argument(
        "--table",
        action="store_true",
        help="write results/streaming.md and the two figures from the --run-id runs' rows",
    )
    p.add_argument("--job", nargs=2, metavar=("STREAM", "MODEL"), help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.job:
        print(json.dumps(run_job(a.job[0], a.job[1], a.n, a.seed)))
        return
    if a.table:
        sys.path.insert(0, str(HERE))
        from _report import write_report

        if not a.run_id:
            p.error("--table needs --run-id (the runs to show)")
        write_report(a.out, a.run_id, RESULTS)
        return
    if a.run_id and len(a.run_id) > 1:
        p.error("a run has one --run-id")
    run_id = a.run_id[0] if a.run_id else datetime.date.today().isoformat()

    from moesuite.streaming import list_streams

    streams = a.streams or list_streams()
    models = a.models or DEFAULT_MODELS + SLOW_MODELS
    commit = git_commit()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    done = done_keys(a.out, run_id)
    # every stream with the faster models first, so that a cut-short run still has whole rows
    order = [(s, m) for m in models if m not in SLOW_MODELS for s in streams]
    order += [(s, m) for m in models if m in SLOW_MODELS for s in streams]
    for stream, model in order:
        if (stream, model, a.n, a.seed) in done:
            continue
        cmd = [sys.executable, __file__, "--job", stream, model, "--n", str(a.n)]
        cmd += ["--seed", str(a.seed)]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            print(f"{stream:>20} {model:>18}  timed out after {a.timeout:.0f} s", flush=True)
            continue
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1:]
            print(f"{stream:>20} {model:>18}  FAILED: {last}", flush=True)
            continue
        row = {"run_id": run_id, "commit": commit}
        row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        append(a.out, row)
        print(
            f"{stream:>20} {model:>18}  acc {row['accuracy']:.4f}  kappa {row['kappa']:.3f}  "
            f"{row['throughput']:8.0f} inst/s  ({time.time() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
