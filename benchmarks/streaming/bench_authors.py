"""The authors' DriftMoE code on our benchmark's instances: the part of ``bench_streaming.py``
that runs it (``--authors-checkout``), so their rows are in the same run as ours.

DriftMoE's code is public (miguel-ceadar/drift-moe, CC BY-NC-SA 4.0): this module runs a
checkout of it that you bring, and copies none of it. Their code reads CapyMOA streams; for
each (stream, seed) of the benchmark, ``bench_streaming.py`` materialises our stream (its
process, the moesuite venv) and :func:`run_authors` hands the instances to a worker process in
a Python that has the authors' requirements (``--authors-python``; CapyMOA needs Java), which
feeds them to their ``MoEModel`` through a CapyMOA ``NumpyStream`` in place of their
``DataLoader`` and calls their own training loop (``train_joint_data`` for MoE-Data,
``train_joint_task`` for MoE-Task) with their defaults (``driftmoe/config.py``: 12 experts,
top-3 updates, router hidden 256, lr 2e-3, mini-batch 256) and the stream's width and class
count. Labels become class indices in order of first appearance; a categorical value becomes
its index in order of first appearance (MOA reads it as a number, as their loaders do for
numeric streams). Accuracy, kappa-M and kappa-T are their CapyMOA evaluator's; the CPU time is
the whole loop's in the worker (not paired with ARF: it runs in another process).

Their venv (their requirements.txt, CPU torch; Java 11+ on the PATH):

    python -m venv AUTHORS_VENV && AUTHORS_VENV/bin/pip install capymoa==0.10.0 \
        river==0.21.0 "numpy<2" "scikit-learn<1.6" torch

The worker is this file run by that Python: ``python bench_authors.py --worker CHECKOUT DATA
MODE SEED`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

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


def check_checkout(checkout: Path) -> str | None:
    """Why ``checkout`` is not a drift-moe checkout, or None."""
    if not (checkout / "driftmoe" / "moe_model.py").is_file():
        return f"{checkout}: no driftmoe/moe_model.py (a drift-moe checkout?)"
    return None


def run_authors(checkout: Path, python: str, data: list, model: str, seed: int, tmp: Path) -> dict:
    """Their ``model`` (a key of ``MODES``) on the instances ``data`` (``(x, y)`` pairs) in a
    worker process of ``python``; the worker's result (accuracy, kappas, n, cpu_seconds,
    throughput, config). Raises ``RuntimeError`` with the worker's stderr when it fails."""
    data_file = tmp / f"authors-{model}-{seed}.pkl"
    encode(data, data_file)
    cmd = [python, str(Path(__file__).resolve()), "--worker", str(checkout), str(data_file)]
    cmd += [MODES[model], str(seed)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        data_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip()[-400:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--worker", nargs=4, metavar=("CHECKOUT", "DATA", "MODE", "SEED"))
    a = p.parse_args()
    if not a.worker:
        p.error("run the authors' code through bench_streaming.py --authors-checkout PATH")
    checkout, data_file, mode, seed = a.worker
    print(json.dumps(worker(Path(checkout), Path(data_file), mode, int(seed))))


if __name__ == "__main__":
    main()
