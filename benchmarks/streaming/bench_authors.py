"""The authors' DriftMoE code on our benchmark's streams, seeds and lengths, rows in our format.

DriftMoE's code is public (miguel-ceadar/drift-moe, CC BY-NC-SA 4.0): this script runs a
checkout of it that you bring, and copies none of it. Their code reads CapyMOA streams; for
each (stream, seed) of ``bench_streaming.py`` this script materialises our stream (this
process, the moesuite venv), hands the instances to a worker process in a Python that has the
authors' requirements (``--python``; CapyMOA needs Java) and there feeds them to their
``MoEModel`` through a CapyMOA ``NumpyStream`` in place of their ``DataLoader``, then calls
their own training loop (``train_joint_data`` for MoE-Data, ``train_joint_task`` for
MoE-Task) with their defaults (``driftmoe/config.py``: 12 experts, top-3 updates, router
hidden 256, lr 2e-3, mini-batch 256) and the stream's width and class count. Labels become
class indices in order of first appearance; a categorical value becomes its index in order of
first appearance (MOA reads it as a number, as their loaders do for numeric streams).
Accuracy, kappa-M and kappa-T are their CapyMOA evaluator's; throughput is instances per CPU
second of the whole loop (not paired with ARF: it runs in another process).

Rows go to ``results/streaming.jsonl`` with ``model`` ``authors-moe-data`` /
``authors-moe-task``, the run id, our commit and ``authors_commit`` (the checkout's HEAD).
Rerunning resumes (rows already written under the run id are skipped).

    python -m venv /tmp/authors && /tmp/authors/bin/pip install capymoa==0.10.0 river==0.21.0 \
        "numpy<2" "scikit-learn<1.6" torch        # their requirements.txt, CPU torch
    python benchmarks/streaming/bench_authors.py --checkout ~/drift-moe \
        --python /tmp/authors/bin/python --run-id R-authors --jobs 2
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = {"authors-moe-data": "joint_data", "authors-moe-task": "joint_task"}


def encode(data: list, path: Path) -> None:
    """Instances as a numeric matrix + class indices (pickled) for the worker."""
    names = sorted({k for x, _ in data for k in x}, key=repr)
    codes: dict[str, dict] = {n: {} for n in names}
    classes: dict = {}
    X, y = [], []
    for x, label in data:
        row = []
        for n in names:
            v = x.get(n)
            if v is None:
                row.append(0.0)
            elif isinstance(v, bool | int | float):
                row.append(float(v))
            else:
                row.append(float(codes[n].setdefault(v, len(codes[n]))))
        X.append(row)
        y.append(classes.setdefault(label, len(classes)))
    path.write_bytes(pickle.dumps({"X": X, "y": y, "names": [str(n) for n in names]}))


def worker(checkout: Path, data_file: Path, mode: str, seed: int) -> dict:
    """In the authors' Python: their MoEModel on the instances in ``data_file``."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(checkout))
    import driftmoe.moe_model as moe_model
    from capymoa.stream import NumpyStream

    d = pickle.loads(data_file.read_bytes())
    X = np.asarray(d["X"], dtype=np.float64)
    y = np.asarray(d["y"], dtype=np.int64)
    n_classes = int(y.max()) + 1

    class Loader:  # their DataLoader's interface over our instances
        def __init__(self, dataset: str, seed: int, label_delay: int = 0):
            self._stream = NumpyStream(X, y, dataset_name="moesuite", target_type="categorical")

        def restart(self):
            self._stream.restart()

        def get_schema(self):
            return self._stream.get_schema()

        def next_instance(self):
            return self._stream.next_instance()

        def has_more_instances(self):
            return self._stream.has_more_instances()

    moe_model.DataLoader = Loader
    argv, sys.argv = sys.argv, [sys.argv[0]]
    try:
        from driftmoe.config import get_config

        cfg = get_config()  # their defaults
    finally:
        sys.argv = argv
    cfg.mode, cfg.dataset, cfg.total_samples = mode, "moesuite", len(y)
    cfg.input_dim, cfg.num_classes, cfg.print_every = X.shape[1], n_classes, 10**12
    model = moe_model.MoEModel(cfg, seed)
    t0 = time.process_time()
    train = model.train_joint_data if mode == "joint_data" else model.train_joint_task
    acc, kappa_m, kappa_t = train()
    seconds = time.process_time() - t0
    return {
        "accuracy": float(acc) / (100.0 if acc > 1 else 1.0),
        "kappa_m": float(kappa_m) / (100.0 if abs(kappa_m) > 1 else 1.0),
        "kappa_t": float(kappa_t) / (100.0 if abs(kappa_t) > 1 else 1.0),
        "n": len(y),
        "cpu_seconds": seconds,
        "throughput": len(y) / seconds,
        "config": {k: getattr(cfg, k) for k in ("n_experts", "top_k", "hidden_dim", "lr_router")}
        | {"batch_size": cfg.batch_size},
    }


def checkout_commit(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True
    ).stdout.strip()
    if out:
        return out
    stamp = checkout / "COMMIT"  # a checkout exported without .git: its commit written beside
    return stamp.read_text().strip() if stamp.is_file() else "unknown"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--checkout", type=Path, required=True, help="a checkout of drift-moe")
    p.add_argument("--python", default=sys.executable, help="a Python with their requirements")
    p.add_argument("--run-id", required=True)
    p.add_argument("--streams", action="append", help="default: bench_streaming's two sets")
    p.add_argument("--models", action="append", help=f"default: {list(MODES)}")
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--n", type=int, help="instances per synthetic validation stream (ours)")
    p.add_argument("--tuning-n", type=int, help="instances per tuning stream (default: ours)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", type=Path, default=HERE / "results" / "streaming.jsonl")
    p.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        checkout, data_file, mode, seed = a.worker
        print(json.dumps(worker(Path(checkout), Path(data_file), mode, int(seed))))
        return

    sys.path.insert(0, str(HERE))
    from bench_streaming import (
        SEEDS,
        TUNING,
        TUNING_N,
        VALIDATION,
        N,
        done_keys,
        git_commit,
        stream_set,
    )

    from moesuite.streaming.data import stream_kind

    if not (a.checkout / "driftmoe" / "moe_model.py").is_file():
        p.error(f"--checkout {a.checkout}: no driftmoe/moe_model.py (a drift-moe checkout?)")

    def length(stream: str) -> int:
        return (a.tuning_n or TUNING_N) if stream_set(stream) == "tuning" else (a.n or N)

    streams = a.streams or VALIDATION + TUNING
    models = a.models or list(MODES)
    commit, authors = git_commit(), checkout_commit(a.checkout)
    done = done_keys(a.out, a.run_id)
    jobs = [
        (s, seed, m)
        for s in sorted(streams, key=lambda s: stream_set(s) != "validation")
        for seed in a.seeds or SEEDS
        for m in models
        if (s, m, length(s), seed) not in done
    ]
    print(f"run {a.run_id}, authors' commit {authors[:12]}: {len(jobs)} jobs", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-authors-"))

    def work(job: tuple[str, int, str]) -> None:
        from bench_streaming import append, materialise

        stream, seed, model = job
        n = length(stream)
        if (stream, model, n, seed) in done_keys(a.out, a.run_id):  # another runner did it
            return
        data, s = materialise(stream, n, seed)
        data_file = tmp / f"{stream}-{seed}-{model}.pkl"
        encode(data, data_file)
        cmd = [a.python, __file__, "--checkout", str(a.checkout), "--run-id", a.run_id]
        cmd += ["--worker", str(a.checkout), str(data_file), MODES[model], str(seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        data_file.unlink()
        if proc.returncode != 0:
            print(f"{stream:>18} s{seed} {model}: FAILED {proc.stderr.strip()[-400:]}", flush=True)
            return
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        row = {
            "run_id": a.run_id,
            "commit": commit,
            "authors_commit": authors,
            "set": stream_set(stream),
            "stream": stream,
            "kind": stream_kind(stream),
            "model": model,
            "seed": seed,
            "requested_n": n,
            **r,
            "drift_points": s.drift_points,
        }
        append(a.out, [row])
        print(
            f"{stream:>18} s{seed} {model}: acc {100 * r['accuracy']:.2f}  "
            f"{r['throughput']:.0f} inst/cpu-s",
            flush=True,
        )

    with concurrent.futures.ThreadPoolExecutor(max(1, a.jobs)) as pool:
        list(pool.map(work, jobs))


if __name__ == "__main__":
    main()
