"""Training through the core plumbing: a small MoHETS learns the generator; run directory contents."""

import json

import torch

from moesuite.timeseries.inference import evaluate_run
from moesuite.timeseries.training import TrainConfig, load_run, train_forecaster


def _cfg(model, **kw):
    base = dict(model=model, lookback=96, horizon=24, epochs=4, limit_train_batches=15, batch_size=64, patience=None,
                synthetic_steps=2000, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_small_mohets_learns_the_generator_better_than_naive(tmp_path):
    naive = train_forecaster(_cfg("naive"), out=tmp_path / "naive", progress=False)
    mohets = train_forecaster(_cfg("mohets", model_options={"d_model": 16, "d_ff": 32}), out=tmp_path / "mohets",
                              progress=False)
    n, m = naive.metrics["test"]["mse"], mohets.metrics["test"]["mse"]
    assert m < 0.8 * n, (m, n)
    # the router was trained with its aux loss and logged by the core callback
    epochs = [json.loads(line) for line in (tmp_path / "mohets" / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert any("routing/aux_loss" in e for e in epochs)
    assert epochs[-1]["val/loss"] < epochs[0]["val/loss"]
    # reloading the run gives the same test figures
    cfg, config, model = load_run(tmp_path / "mohets")
    assert cfg.model == "mohets" and config["parameters"] == mohets.metrics["parameters"]
    _, again = evaluate_run(tmp_path / "mohets", out=tmp_path / "eval")
    assert abs(again["test"]["mse"] - m) < 1e-5
    assert torch.equal(next(model.parameters()), next(mohets.model.parameters()))
