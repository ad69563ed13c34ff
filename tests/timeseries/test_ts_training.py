"""Training through the core plumbing: learning, aux losses in the loss, resume after Ctrl+C."""

import json
import signal

import lightning as L
import pytest
import torch
from typer.testing import CliRunner

from moesuite.core.testing import assert_aux_consumed
from moesuite.core.training import INTERRUPTED, MoESystem, make_trainer
from moesuite.timeseries.cli import app
from moesuite.timeseries.config import build_datamodule, build_model, load_run, load_table
from moesuite.timeseries.evaluate import evaluate_run
from moesuite.timeseries.models import MODELS, as_moe_output
from moesuite.timeseries.training import ForecastTrainConfig, forecast_step, train_forecaster

TINY_MOHETS = {"d_model": 8, "d_ff": 16, "n_heads": 2}


def _cfg(model, **kw):
    base = dict(model=model, lookback=96, horizon=24, epochs=4, limit_train_batches=15,
                batch_size=64, patience=None, synthetic_steps=2000, seed=0)  # fmt: skip
    base.update(kw)
    return ForecastTrainConfig(**base)


def _epochs(run):
    return [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]


def test_small_mohets_learns_the_generator_better_than_naive(tmp_path):
    naive = train_forecaster(_cfg("naive"), out=tmp_path / "naive", progress=False)
    mohets = train_forecaster(_cfg("mohets", model_options={"d_model": 16, "d_ff": 32}),
                              out=tmp_path / "mohets", progress=False)  # fmt: skip
    n, m = naive.metrics["test"]["mse"], mohets.metrics["test"]["mse"]
    assert m < 0.8 * n, (m, n)
    # the logged loss is the task loss plus the routers' aux losses
    epochs = _epochs(tmp_path / "mohets")
    last = epochs[-1]
    assert last["train/aux_loss_epoch"] > 0
    assert last["train/loss_epoch"] == pytest.approx(
        last["train/task_loss_epoch"] + last["train/aux_loss_epoch"], rel=1e-5
    )
    assert epochs[-1]["val/task_loss"] < epochs[0]["val/task_loss"]
    # reloading the run gives the same test figures
    cfg, config, model = load_run(tmp_path / "mohets")
    assert cfg.model == "mohets" and config["parameters"] == mohets.metrics["parameters"]
    _, again = evaluate_run(tmp_path / "mohets", out=tmp_path / "eval")
    assert abs(again["test"]["mse"] - m) < 1e-5
    assert torch.equal(next(model.parameters()), next(mohets.model.parameters()))


def _drop_aux_step(model, batch):
    out = as_moe_output(model(batch["x"], batch["z_past"], batch["z_future"]))
    return {"loss": ((out.output - batch["y"]) ** 2).mean()}


TRAINABLE = [n for n in MODELS.list() if MODELS.get(n).obj.trainable]  # naive ones are not


@pytest.mark.parametrize("name", TRAINABLE)
def test_one_training_step_adds_every_router_aux_loss_to_the_loss(name):
    options = TINY_MOHETS if MODELS.get(name).obj.__name__ == "MoHETS" else {}
    cfg = _cfg(name, lookback=48, horizon=12, synthetic_steps=600, batch_size=8,
               model_options=options)  # fmt: skip
    dm = build_datamodule(cfg, load_table(cfg))
    torch.manual_seed(0)
    model = build_model(cfg, dm).train()
    batch = next(iter(dm.train_dataloader()))
    weighted = assert_aux_consumed(model, lambda: forecast_step(model, batch)["loss"], min_terms=0)
    # MoHETS: load balancing and z-loss of both MoHE layers (the gate's weights are 0)
    assert weighted == (4 if name in ("mohets", "mohets-nocov", "mohets-flatten") else 0)
    if weighted:
        with pytest.raises(AssertionError, match="not added to the loss"):
            assert_aux_consumed(model, lambda: _drop_aux_step(model, batch)["loss"])
    # MoESystem's own audit of its first step does not raise
    trainer = make_trainer(None, max_epochs=1, progress=False, limit_train_batches=1,
                           limit_val_batches=1, monitor="val/task_loss")  # fmt: skip
    trainer.fit(MoESystem(model, forecast_step), datamodule=dm)
    assert trainer.global_step == 1


class _InterruptAtEpoch(L.Callback):
    """Ctrl+C at the start of an epoch (Lightning shuts down and keeps the checkpoints)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumed_with_the_cli_ends_with_the_same_weights(tmp_path):
    """A MoHETS run (dropout, routers, shuffled batches, cosine schedule, early stopping) cut
    after its first epoch and continued with `train --resume` ends bit-for-bit where the
    uninterrupted run ends: weights, test metrics and the epochs logged."""
    cfg = _cfg("mohets", lookback=48, horizon=12, epochs=3, limit_train_batches=4, patience=3,
               synthetic_steps=800, batch_size=16, model_options=TINY_MOHETS)  # fmt: skip
    straight = train_forecaster(cfg, out=tmp_path / "straight", progress=False)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            train_forecaster(cfg, out=tmp_path / "cut", progress=False,
                             callbacks=[_InterruptAtEpoch(1)])  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after an interrupt
    cut = tmp_path / "cut"
    assert (cut / INTERRUPTED).is_file() and not (cut / "metrics.json").exists()
    assert [e["epoch"] for e in _epochs(cut)] == [0]
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(cut)])
    assert result.exit_code == 2 and "train --resume" in result.output

    result = runner.invoke(app, ["train", "--resume", str(cut), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"run directory: {cut}" in result.output and not (cut / INTERRUPTED).exists()
    a = torch.load(tmp_path / "straight" / "checkpoints" / "model.pt", weights_only=True)
    b = torch.load(cut / "checkpoints" / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    resumed = json.loads((cut / "metrics.json").read_text())
    assert resumed["test"]["mse"] == straight.metrics["test"]["mse"]
    assert [e["epoch"] for e in _epochs(cut)] == [0, 1, 2]

    # a finished run has nothing to resume; a resumed run takes no new settings
    result = runner.invoke(app, ["train", "--resume", str(cut)])
    assert result.exit_code == 2 and "was not interrupted" in result.output
    result = runner.invoke(app, ["train", "--resume", str(cut), "--lookback", "24", "--seed", "3"])
    assert result.exit_code == 2 and "drop --lookback, --seed" in result.output
    result = runner.invoke(app, ["train", "dlinear", "--resume", str(cut)])
    assert result.exit_code == 2 and "is a 'mohets' run, not 'dlinear'" in result.output
