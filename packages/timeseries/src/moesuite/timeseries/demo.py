"""The timeseries rows of ``moesuite demo``: the system against two baselines on the generator."""

from __future__ import annotations

import time
from pathlib import Path

from moesuite.timeseries.training import ForecastTrainConfig, train_forecaster

__all__ = ["run_demo", "DEMO_MODELS"]

#: the system and two baselines, each trained (or not) at the same budget
DEMO_MODELS = ("mohets", "dlinear", "naive")


def run_demo(out_dir: str | Path, seed: int = 0, epochs: int = 10) -> list[dict]:
    """Train the demo models on the generator (lookback 96, horizon 24); one row each.

    The demo's short budget (``epochs`` x 20 batches of 64 windows, no early stopping) replaces
    each model's recipe for epochs and batch size; learning rate, schedule and loss stay its
    own.

    Each model's run directory is written under ``out_dir``. Finishes in well under a minute
    on 2 CPU cores.
    """
    rows = []
    for name in DEMO_MODELS:
        cfg = ForecastTrainConfig(
            model=name,
            lookback=96,
            horizon=24,
            epochs=epochs,
            limit_train_batches=20,
            batch_size=64,
            synthetic_steps=2000,
            seed=seed,
            patience=0,
            model_options={"d_model": 16, "d_ff": 32, "n_layers": 2} if name == "mohets" else {},
            eval_horizons=[24],
        )
        start = time.perf_counter()
        result = train_forecaster(cfg, out=Path(out_dir) / name, progress=False)
        m = result.metrics
        trained = f"{epochs} epochs x 20 batches" if m["epochs_run"] else "not trained"
        note = f"{m['parameters']} params, L=96 H=24, {trained}"
        if m["test"]["routing"]:
            loads = [s["load_max_over_mean"] for s in m["test"]["routing"].values()]
            note += f", test load max/mean {max(loads):.2f}"
        rows.append(
            {
                "domain": "timeseries",
                "task": "synthetic multivariate forecast (generator)",
                "model": name,
                "metric": "test MSE (standardised)",
                "value": round(m["test"]["mse"], 4),
                "seconds": round(time.perf_counter() - start, 1),
                "note": note,
            }
        )
    return rows
