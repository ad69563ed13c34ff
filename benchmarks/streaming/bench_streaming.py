"""DriftMoE against river's baselines on a tuning set and a validation set of streams, 3 seeds.

Every default of DriftMoE was chosen on the tuning streams (synthetic generators only, with
``explore_defaults.py``); the validation streams use other generators and real data, and are
what the package README's headline is about. One invocation is one run: every row carries the
run id (``--run-id``) and the git commit of the code.

A job is one (stream, seed): all the models learn the same materialised instances in one
process, interleaved chunk by chunk, and each model's CPU time inside ``predict_one`` +
``learn_one`` is summed, so their throughputs are paired (the machine's load affects all alike)
and ``ratio_to_arf`` is the ARF's CPU time over the model's, on the same instances.

With ``--authors-checkout PATH`` (a checkout of miguel-ceadar/drift-moe) and ``--authors-python
PY`` (a Python with their requirements; ``bench_authors.py`` says which) the same invocation
runs the authors' MoE-Data and MoE-Task on the same instances, right after our job of each
(stream, seed), and writes their rows (``model`` ``authors-moe-data`` / ``authors-moe-task``,
with ``authors_commit``) under the same run id; their speed is not paired (their own process).

Jobs run in ``--jobs`` worker processes; each writes its rows to
``results/streaming.jsonl`` when it ends (expert usage per window of DriftMoE to
``results/streaming_expert_usage.jsonl.gz``). Rerunning the same command resumes the run: jobs
whose rows are in the file under the same run id are skipped.

    python benchmarks/streaming/bench_streaming.py --run-id R --jobs 1 \
        --authors-checkout PATH/drift-moe --authors-python AUTHORS_VENV/bin/python
        # the whole benchmark, ours and the authors' code (rerun to resume)
    python benchmarks/streaming/bench_streaming.py --table --run-id R
        # results/streaming.md and the two figures, from run R's rows only

``elec`` is read from ``$MOESUITE_STREAMS_DIR/elec.csv`` or ``../shared/data/streams/elec.csv``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
USAGE = "streaming_expert_usage.jsonl.gz"
#: streams every default is chosen on (synthetic generators only)
TUNING = ["sea_abrupt", "agrawal_gradual", "led_abrupt", "rbf_fast", "hyperplane_abrupt"]
#: other generators than the tuning set's, and real streams: the README's headline
VALIDATION = [
    "randomtree_abrupt",
    "sine_gradual",
    "mixed_gradual",
    "elec",
    "phishing",
    "bananas",
    "segment",
]
MODELS = ["driftmoe-data", "driftmoe-task", "driftmoe-paper", "ht", "arf"]
#: models left out of the tuning streams' jobs (the paper's settings are not tuned)
VALIDATION_ONLY = ["driftmoe-paper"]
SEEDS = [0, 1, 2]
#: instances per synthetic validation stream (real streams run whole) and per tuning stream
N = 20_000
TUNING_N = 10_000


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


def stream_set(stream: str) -> str:
    """``"tuning"``, ``"validation"`` or ``"other"``."""
    return "tuning" if stream in TUNING else "validation" if stream in VALIDATION else "other"


def materialise(stream: str, n: int, seed: int) -> tuple[list, object]:
    """The instances of ``stream`` (``n`` of a synthetic one, all of a real one) and the stream."""
    from moesuite.streaming import make_stream
    from moesuite.streaming.data import stream_kind

    s = make_stream(stream, n if stream_kind(stream) == "synthetic" else None, seed=seed)
    return list(s), s


def run_job(stream: str, seed: int, models: list[str], n: int, chunk: int) -> list[dict]:
    """Every model on the same instances, interleaved every ``chunk``; one row per model."""
    import torch

    from moesuite.streaming import create_model
    from moesuite.streaming.evaluate import PrequentialMetrics

    torch.set_num_threads(1)
    data, s = materialise(stream, n, seed)
    window = max(100, len(data) // 50)
    learners = {m: create_model(m, seed=seed) for m in models}
    metrics = {m: PrequentialMetrics(window) for m in models}
    spent = dict.fromkeys(models, 0.0)
    usage: dict[str, list[list[float]]] = {m: [] for m in models}
    last = {m: list(getattr(learners[m], "expert_usage", list)()) for m in models}
    clock = time.process_time
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        for m, model in learners.items():
            metric = metrics[m]
            for x, y in part:
                t0 = clock()
                y_pred = model.predict_one(x)
                model.learn_one(x, y)
                spent[m] += clock() - t0
                metric.update(y, y_pred)
                if metric.n % window == 0 and hasattr(model, "expert_usage"):
                    now = model.expert_usage()
                    delta = [a - b for a, b in zip(now, last[m], strict=True)]
                    usage[m].append([round(d / (sum(delta) or 1), 4) for d in delta])
                    last[m] = now
    rows = []
    for m in models:
        summary = metrics[m].summary()
        counts = getattr(learners[m], "expert_usage", list)()
        rows.append(
            {
                "set": stream_set(stream),
                "stream": stream,
                "kind": s.kind,
                "model": m,
                "seed": seed,
                "requested_n": n,
                **summary,
                "cpu_seconds": spent[m],
                "throughput": len(data) / spent[m],
                "ratio_to_arf": spent["arf"] / spent[m] if "arf" in spent else None,
                "resets": getattr(learners[m], "n_resets_", None),
                "imbalance": max(counts) * len(counts) / sum(counts) if counts else None,
                "window": window,
                "windows": metrics[m].windows,
                "drift_points": s.drift_points,
                "expert_usage": usage[m] or None,
            }
        )
    return rows


def done_keys(path: Path, run_id: str) -> set[tuple]:
    keys = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                if r.get("run_id") == run_id:
                    keys.add((r["stream"], r["model"], r["requested_n"], r["seed"]))
    return keys


_LOCK = threading.Lock()


def append(path: Path, rows: list[dict]) -> None:
    """The summary rows to ``path``, their expert usage (if any) to the compressed side file."""
    with _LOCK:
        for row in rows:
            usage = row.pop("expert_usage", None)
            with path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            if usage:
                key = {k: row[k] for k in ("run_id", "stream", "model", "requested_n", "seed")}
                with gzip.open(path.parent / USAGE, "at") as fh:
                    fh.write(json.dumps({**key, "window": row["window"], "expert_usage": usage}))
                    fh.write("\n")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--streams", action="append", help="default: the tuning + validation sets")
    p.add_argument("--models", action="append", help=f"default: {MODELS} (ARF is the reference)")
    p.add_argument("--n", type=int, default=N, help="instances per synthetic validation stream")
    p.add_argument("--tuning-n", type=int, default=TUNING_N, help="instances per tuning stream")
    p.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    p.add_argument("--chunk", type=int, default=250, help="instances per turn of a model")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--run-id", help="the run's id (default: today's date)")
    p.add_argument("--authors-checkout", type=Path, help="run the authors' code from here too")
    p.add_argument("--authors-python", default=sys.executable, help="a Python for their code")
    p.add_argument(
        "--authors-models", action="append", help="default: authors-moe-data, authors-moe-task"
    )
    p.add_argument("--authors-streams", action="append", help="default: the run's streams")
    p.add_argument("--out", type=Path, default=RESULTS / "streaming.jsonl")
    p.add_argument("--timeout", type=float, default=4 * 3600.0, help="seconds per job")
    p.add_argument("--table", action="store_true", help="write results/streaming.md + figures")
    p.add_argument("--job", nargs=2, metavar=("STREAM", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args()
    models = a.models or MODELS
    if "arf" not in models:
        models = [*models, "arf"]

    if a.job:
        print(json.dumps(run_job(a.job[0], int(a.job[1]), models, a.n, a.chunk)))
        return

    def plan(stream: str) -> tuple[list[str], int]:
        """The models and length of a stream's jobs."""
        if stream_set(stream) == "tuning":
            return [m for m in models if m not in VALIDATION_ONLY], a.tuning_n
        return models, a.n

    if a.table:
        sys.path.insert(0, str(HERE))
        from _report import write_report

        if not a.run_id:
            p.error("--table needs --run-id")
        write_report(a.out, a.run_id, a.out.parent)  # beside the JSON lines
        return
    run_id = a.run_id or datetime.date.today().isoformat()
    streams = a.streams or VALIDATION + TUNING  # the headline's streams first
    commit = git_commit()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    authors_models: list[str] = []
    authors_commit = ""
    if a.authors_checkout:
        sys.path.insert(0, str(HERE))
        from bench_authors import MODES, check_checkout, checkout_commit

        if error := check_checkout(a.authors_checkout):
            p.error(f"--authors-checkout {error}")
        authors_models = a.authors_models or list(MODES)
        if unknown := sorted(set(authors_models) - set(MODES)):
            p.error(f"--authors-models {unknown}: choose from {list(MODES)}")
        authors_commit = checkout_commit(a.authors_checkout)
    authors_streams = set(a.authors_streams or streams)
    done = done_keys(a.out, run_id)
    # validation streams (all seeds) first: a run cut short still has the headline's rows; the
    # authors' jobs of a (stream, seed) right after ours
    order = sorted(streams, key=lambda s: stream_set(s) != "validation")
    jobs: list[tuple] = []
    for s in order:
        job_models, n = plan(s)
        for seed in a.seeds:
            if any((s, m, n, seed) not in done for m in job_models):
                jobs.append(("ours", s, seed))
            if s in authors_streams:
                todo = [m for m in authors_models if (s, m, n, seed) not in done]
                jobs += [("authors", s, seed, m) for m in todo]
    text = f", the authors' code at {authors_commit[:12]}" if authors_commit else ""
    print(f"run {run_id} (commit {commit[:12]}{text}): {len(jobs)} jobs to run", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-streaming-"))

    def work(job: tuple) -> None:
        if job[0] == "authors":
            return work_authors(*job[1:])
        _, stream, seed = job
        job_models, n = plan(stream)
        done_now = done_keys(a.out, run_id)  # another runner of the run may have done it
        if all((stream, m, n, seed) in done_now for m in job_models):
            return
        cmd = [sys.executable, __file__, "--job", stream, str(seed), "--n", str(n)]
        cmd += ["--chunk", str(a.chunk)] + [x for m in job_models for x in ("--models", m)]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            print(f"{stream:>18} s{seed}  timed out after {a.timeout:.0f} s", flush=True)
            return
        if proc.returncode != 0:
            print(f"{stream:>18} s{seed}  FAILED: {proc.stderr.strip()[-300:]}", flush=True)
            return
        rows = json.loads(proc.stdout.strip().splitlines()[-1])
        rows = [{"run_id": run_id, "commit": commit, **r} for r in rows]
        append(a.out, rows)
        text = "  ".join(
            f"{r['model']} {100 * r['accuracy']:.2f}"
            + (f" x{r['ratio_to_arf']:.2f}" if r["ratio_to_arf"] else "")
            for r in rows
        )
        print(f"{stream:>18} s{seed}  {text}  ({time.time() - t0:.0f} s)", flush=True)

    def work_authors(stream: str, seed: int, model: str) -> None:
        from bench_authors import run_authors

        n = plan(stream)[1]
        if (stream, model, n, seed) in done_keys(a.out, run_id):  # another runner did it
            return
        data, s = materialise(stream, n, seed)
        t0 = time.time()
        try:
            r = run_authors(a.authors_checkout, a.authors_python, data, model, seed, tmp)
        except RuntimeError as e:
            print(f"{stream:>18} s{seed}  {model} FAILED: {e}", flush=True)
            return
        row = {"run_id": run_id, "commit": commit, "authors_commit": authors_commit}
        row |= {"set": stream_set(stream), "stream": stream, "kind": s.kind, "model": model}
        row |= {"seed": seed, "requested_n": n, **r, "drift_points": s.drift_points}
        append(a.out, [row])
        print(
            f"{stream:>18} s{seed}  {model} {100 * r['accuracy']:.2f}  "
            f"{r['throughput']:.0f} inst/cpu-s  ({time.time() - t0:.0f} s)",
            flush=True,
        )

    try:
        with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as pool:
            list(pool.map(work, jobs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
