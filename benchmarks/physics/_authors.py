"""Run the MixER authors' code (a user's checkout) on one of our ODE datasets, scored our way.

:func:`run_authors` exports the dataset in the authors' layout, runs
``authors_mixer_driver.py`` with the authors' Python environment (niced, one thread), and
scores its predictions with our metric code: in-domain and adaptation MSE over the real state
dimensions in the dataset's units, ARI of the gate's expert per training environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import torch

from moesuite.physics.data.odes import ODEBENCH_FAMILIES, ODEDataset, get_family
from moesuite.physics.mixer.evaluate import adjusted_rand_index
from moesuite.physics.mixer.trajectories import trajectory_mse

DRIVER = Path(__file__).resolve().parent / "authors_mixer_driver.py"
#: the authors' meta-training budget (outer steps of 12 + 12 inner steps) and adaptation steps
AUTHORS_OUTER_STEPS = 1500
AUTHORS_ADAPT_STEPS = 1500


def _time_unit(name: str) -> float:
    if name in ODEBENCH_FAMILIES:
        return float(ODEBENCH_FAMILIES.get(name).obj.time_unit)
    return float(get_family(name).time_unit)


def export(dataset: ODEDataset, folder: Path) -> None:
    """Write ``dataset`` in the authors' layout (families must have equal environment counts).

    Time is each family's own (``k * dt * time_unit``), as the authors' generator stores it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    F = len(dataset.families)
    for prefix, envs in (("", dataset.train), ("adapt_", dataset.adapt)):
        counts = np.bincount(envs.family, minlength=F)
        if len(set(counts.tolist())) != 1:
            raise ValueError("the authors' layout needs the same number of envs per family.")
        first = [int(np.flatnonzero(envs.family == f)[0]) for f in range(F)]
        k = np.arange(envs.fit.shape[2])
        t = np.stack(
            [k * envs.dt[i] * _time_unit(dataset.families[f]) for f, i in enumerate(first)]
        )
        for split, arr in (("train", envs.fit), ("test", envs.test)):
            X = arr.reshape(F, counts[0], *arr.shape[1:]).astype(np.float32)
            name = {"": split, "adapt_": "adapt_" + split}[prefix]
            np.savez(folder / f"{name}.npz", X=X, t=t.astype(np.float32))
    meta = {
        "families": F,
        "envs": int(dataset.train.num_envs // F),
        "adapt_envs": int(dataset.adapt.num_envs // F),
        "state_dim": dataset.state_dim,
        "names": list(dataset.families),
    }
    (folder / "meta.json").write_text(json.dumps(meta))


def score(dataset: ODEDataset, predictions: Path) -> dict:
    """Our metrics of the authors' predictions (``predictions.npz`` written by the driver)."""
    with np.load(predictions) as p:
        pred_test, pred_adapt = p["pred_test"], p["pred_adapt"]
        experts, experts_adapt = p["experts"], p["experts_adapt"]

    def mse(pred: np.ndarray, envs: object) -> np.ndarray:
        pred = np.nan_to_num(pred, nan=1e6, posinf=1e6, neginf=-1e6)
        per = trajectory_mse(
            torch.from_numpy(pred).float(),
            torch.from_numpy(envs.test).float(),
            torch.from_numpy(envs.mask),
        )
        return per.numpy()

    test_mse, adapt_mse = mse(pred_test, dataset.train), mse(pred_adapt, dataset.adapt)
    return {
        "mse_in_domain": float(test_mse.mean()),
        "mse_adapt": float(adapt_mse.mean()),
        "ari": adjusted_rand_index(dataset.train.family, experts),
        "ari_adapt": adjusted_rand_index(dataset.adapt.family, experts_adapt),
        "experts_used": int(len(np.unique(experts))),
        "num_experts": len(dataset.families),
        "experts": experts.tolist(),
    }


def run_authors(
    dataset: ODEDataset,
    *,
    repo: Path,
    python: Path,
    work: Path,
    outer_steps: int,
    adapt_steps: int,
    seed: int,
    log: Path,
) -> dict:
    """Export, run the authors' code (resuming a finished run in ``work``), score; one row."""
    out = work / "out"
    if not (out / "done.json").is_file():
        export(dataset, work / "data")
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
            OMP_NUM_THREADS="1",
            JAX_PLATFORMS="cpu",
            MPLBACKEND="Agg",
            PYTHONUNBUFFERED="1",
            # JAX may reuse compiled XLA code across runs (same shapes): compilation only
            JAX_COMPILATION_CACHE_DIR=str(work.parent / "jax_cache"),
        )
        cmd = [
            "nice", "-n", "10", str(python), str(DRIVER), "--repo", str(repo),
            "--data", str(work / "data"), "--out", str(out), "--seed", str(seed),
            "--outer-steps", str(outer_steps), "--adapt-steps", str(adapt_steps),
        ]  # fmt: skip
        with log.open("a") as fh:
            fh.write(f"\n$ {' '.join(cmd)}\n")
            fh.flush()
            subprocess.run(cmd, check=True, stdout=fh, stderr=subprocess.STDOUT, env=env)
    done = json.loads((out / "done.json").read_text())
    return {**score(dataset, out / "predictions.npz"), **done}
