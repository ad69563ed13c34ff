"""Training through the core plumbing: learning, aux losses in the loss, resume after Ctrl+C."""

import json
import signal

import lightning as L
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from moesuite.core.testing import assert_aux_consumed
from moesuite.core.training import INTERRUPTED, MoESystem, make_trainer
from moesuite.timeseries.cli import app
from moesuite.timeseries.config import build_datamodule, build_model, load_run, load_table
from moesuite.timeseries.data import ForecastDataModule
from moesuite.timeseries.evaluate import evaluate_run
from moesuite.timeseries.models import MODELS, create_model
from moesuite.timeseries.recipes import lr_factor, recipe_for
from moesuite.timeseries.training import ForecastTrainConfig, forecast_step, train_forecaster

TINY_MOHETS = {"d_model": 8, "d_ff": 16, "n_heads": 2, "n_kv_heads": 1, "n_layers": 2}


def _cfg(model, **kw):
    base = dict(model=model, lookback=96, horizon=24, epochs=3, limit_train_batches=12,
                batch_size=64, patience=0, synthetic_steps=2000, seed=0)  # fmt: skip
    base.update(kw)
    return ForecastTrainConfig(**base)


def _epochs(run):
    return [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]


def test_small_mohets_learns_the_generator_better_than_naive(tmp_path):
    naive = train_forecaster(_cfg("naive"), out=tmp_path / "naive", progress=False)
    mohets = train_forecaster(
        _cfg(
            "mohets", model_options={"d_model": 16, "d_ff": 32, "n_layers": 2}, eval_horizons=[96]
        ),
        out=tmp_path / "mohets",
        progress=False,
    )
    n, m = naive.metrics["test"]["mse"], mohets.metrics["test"]["mse"]
    assert m < 0.8 * n, (m, n)
    # one training run, scored at the requested horizon and the asked ones
    assert mohets.metrics["horizons"] == [24, 96]
    by_h = mohets.metrics["test"]["by_horizon"]
    assert by_h["24"]["windows"] == by_h["96"]["windows"] + 72  # each horizon: all its windows
    # the logged loss is the Huber task loss plus the routers' aux losses
    epochs = _epochs(tmp_path / "mohets")
    last = epochs[-1]
    assert last["train/aux_loss_epoch"] > 0
    assert last["train/loss_epoch"] == pytest.approx(
        last["train/task_loss_epoch"] + last["train/aux_loss_epoch"], rel=1e-5
    )
    assert epochs[-1]["val/mse"] < epochs[0]["val/mse"]
    config = json.loads((tmp_path / "mohets" / "config.json").read_text())
    assert config["recipe"]["loss"] == "huber" and config["recipe"]["betas"] == [0.9, 0.95]
    # reloading the run gives the same test figures
    cfg, config, model = load_run(tmp_path / "mohets")
    assert cfg.model == "mohets" and config["parameters"] == mohets.metrics["parameters"]
    _, again = evaluate_run(tmp_path / "mohets", out=tmp_path / "eval")
    assert abs(again["test"]["by_horizon"]["96"]["mse"] - by_h["96"]["mse"]) < 1e-5
    assert torch.equal(next(model.parameters()), next(mohets.model.parameters()))


def _drop_aux_step(model, batch):
    out, target = model.training_pair(batch)
    return {"loss": ((out.output - target) ** 2).mean()}


TRAINABLE = [n for n in MODELS.list() if MODELS.get(n).obj.trainable]  # naive ones are not


@pytest.mark.parametrize("name", TRAINABLE)
def test_one_training_step_adds_every_router_aux_loss_to_the_loss(name):
    options = TINY_MOHETS if MODELS.get(name).obj.__name__ == "MoHETS" else {}
    cfg = _cfg(name, lookback=48, horizon=12, synthetic_steps=600, batch_size=8,
               model_options=options)  # fmt: skip
    dm = build_datamodule(cfg, load_table(cfg))
    torch.manual_seed(0)
    model = build_model(cfg, dm).train()
    dm = build_datamodule(cfg, load_table(cfg), horizon=model.train_horizon(12))
    batch = next(iter(dm.train_dataloader()))
    weighted = assert_aux_consumed(model, lambda: forecast_step(model, batch)["loss"], min_terms=0)
    # MoHETS: the load balancing of each MoHE layer (its z-loss weight is 0)
    assert weighted == (2 if name.startswith("mohets") else 0)
    if weighted:
        with pytest.raises(AssertionError, match="not added to the loss"):
            assert_aux_consumed(model, lambda: _drop_aux_step(model, batch)["loss"])
    # MoESystem's own audit of its first step does not raise
    trainer = make_trainer(None, max_epochs=1, progress=False, limit_train_batches=1,
                           limit_val_batches=1, monitor="val/mse")  # fmt: skip
    trainer.fit(MoESystem(model, forecast_step), datamodule=dm)
    assert trainer.global_step == 1


def test_mohets_trains_on_the_window_shifted_by_its_output_step():
    torch.manual_seed(0)
    model = create_model("mohets", n_channels=2, lookback=48, horizon=96, **TINY_MOHETS).eval()
    assert model.train_horizon(720) == 24
    x, y = torch.randn(3, 48, 2), torch.randn(3, 24, 2)
    out, target = model.training_pair({"x": x, "y": y, "z_past": None})
    assert torch.equal(target, torch.cat([x[:, 24:], y], 1)) and out.output.shape == (3, 48, 2)
    step = forecast_step(model, {"x": x, "y": y, "z_past": None}, loss="huber", delta=2.0)
    assert torch.allclose(step["task_loss"], nn.functional.huber_loss(out.output, target,
                                                                      delta=2.0))  # fmt: skip
    # the validation MSE that selects epochs is the forecast's: the last 24 steps against y
    assert torch.allclose(step["mse"], ((out.output[:, -24:] - y) ** 2).mean())


def test_recipes_are_the_authors_and_their_schedules():
    mohets, patchtst, dlinear = (recipe_for(m) for m in ("mohets", "patchtst", "dlinear"))
    assert (mohets.lr, mohets.betas, mohets.weight_decay, mohets.batch_size) == (
        3.2e-3,
        (0.9, 0.95),
        1e-4,
        128,
    )
    assert (mohets.loss, mohets.huber_delta, mohets.epochs) == ("huber", 2.0, 10)
    assert (patchtst.lr, patchtst.batch_size, patchtst.epochs) == (1e-4, 128, 100)
    assert (dlinear.lr, dlinear.batch_size, dlinear.epochs, dlinear.patience) == (5e-3, 32, 10, 3)
    assert recipe_for("nlinear") == dlinear
    type3 = [lr_factor(patchtst, 0, e, 1) for e in range(6)]
    assert type3 == pytest.approx([1, 1, 1, 1, 0.9, 0.81])
    total = 1000
    warm = [lr_factor(mohets, s, 0, total) for s in range(total)]
    assert warm[99] == 1.0 and warm[0] == pytest.approx(0.01)
    assert warm[-1] == pytest.approx(1.2e-4 / 3.2e-3, rel=1e-2)
    assert all(a >= b for a, b in zip(warm[100:], warm[101:], strict=False))
    cfg = ForecastTrainConfig(model="patchtst", patience=0, lr=1e-3)
    assert cfg.recipe().patience is None and cfg.recipe().lr == 1e-3


def test_the_test_split_is_read_only_by_the_final_evaluation(tmp_path, monkeypatch):
    """Training, early stopping, checkpoint selection and the validation scores never build a
    test window; the test windows exist only inside ``final_evaluation`` (checked for a direct
    and a roll-out model, and by the guard itself)."""
    reads = []
    original = ForecastDataModule.dataset

    def spy(self, split, horizon=None):
        reads.append((split, self._test_open))
        return original(self, split, horizon)

    monkeypatch.setattr(ForecastDataModule, "dataset", spy)
    for name, opts in (("dlinear", {}), ("mohets", TINY_MOHETS)):
        reads.clear()
        cfg = _cfg(name, lookback=48, horizon=12, epochs=2, limit_train_batches=2,
                   synthetic_steps=600, model_options=opts)  # fmt: skip
        train_forecaster(cfg, out=tmp_path / name, progress=False)
        tests = [open_ for split, open_ in reads if split == "test"]
        assert tests and all(tests), reads
        first_test = next(i for i, (split, _) in enumerate(reads) if split == "test")
        assert all(split != "train" for split, _ in reads[first_test:])  # nothing trains after
    dm = build_datamodule(cfg, load_table(cfg))
    with pytest.raises(RuntimeError, match="final evaluation"):
        dm.dataset("test")
    with dm.final_evaluation():
        assert len(dm.dataset("test")) > 0


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
    assert resumed["test"]["by_horizon"] == straight.metrics["test"]["by_horizon"]
    assert [e["epoch"] for e in _epochs(cut)] == [0, 1, 2]

    # a finished run has nothing to resume; a resumed run takes no new settings
    result = runner.invoke(app, ["train", "--resume", str(cut)])
    assert result.exit_code == 2 and "was not interrupted" in result.output
    result = runner.invoke(app, ["train", "--resume", str(cut), "--lookback", "24", "--seed", "3"])
    assert result.exit_code == 2 and "drop --lookback, --seed" in result.output
    result = runner.invoke(app, ["train", "dlinear", "--resume", str(cut)])
    assert result.exit_code == 2 and "is a 'mohets' run, not 'dlinear'" in result.output


def test_evaluation_in_small_batches_scores_what_one_batch_scores():
    """Memory: the evaluation forwards a few windows at a time and keeps no router outputs of
    the roll-out passes; the figures must not depend on the batch size."""
    from moesuite.timeseries.evaluate import evaluate_horizons

    cfg = _cfg("mohets", model_options=TINY_MOHETS)
    table = load_table(cfg)
    dm = build_datamodule(cfg, table)
    torch.manual_seed(0)
    model = build_model(cfg, dm)
    runs = [
        evaluate_horizons(model, dm, "val", [24, 60], stride=3, batch_size=b) for b in (1000, 7)
    ]
    for h in (24, 60):
        one, small = runs[0][h], runs[1][h]
        assert one.windows == small.windows > 40
        assert small.mse() == pytest.approx(one.mse(), rel=1e-5)
        assert small.mae() == pytest.approx(one.mae(), rel=1e-5)
    for name, counts in runs[0][60].routing.items():  # every pass's routing is still counted
        assert (runs[1][60].routing[name] == counts).all() and counts.sum() > 0


def test_micro_batches_accumulate_to_the_update_of_the_whole_batch(tmp_path, monkeypatch):
    """MoHETS trains a batch of 64 as 4 passes of 16 windows: after one optimiser step the
    weights equal those of one pass over the 64 windows (no load-balancing term, which is
    computed per pass, and no dropout)."""
    import dataclasses

    import moesuite.timeseries.config as config_module
    from moesuite.core.training import seed_everything

    assert recipe_for("mohets").micro_batch == 16 and recipe_for("mohets").passes() == 8
    options = {**TINY_MOHETS, "lb_weight": 0.0, "dropout": 0.0, "drop_path": 0.0}
    cfg = _cfg("mohets", model_options=options, epochs=1, limit_train_batches=1)
    assert cfg.recipe().passes() == 4
    micro = train_forecaster(cfg, out=tmp_path / "micro", progress=False)
    whole = dataclasses.replace(recipe_for("mohets"), micro_batch=None)
    monkeypatch.setattr(config_module, "recipe_for", lambda name: whole)
    assert cfg.recipe().passes() == 1
    assert build_datamodule(cfg, load_table(cfg)).batch_size == 64
    once = train_forecaster(cfg, out=tmp_path / "once", progress=False)
    a, b = micro.model.state_dict(), once.model.state_dict()
    seed_everything(cfg.seed)
    init = build_model(cfg, build_datamodule(cfg, load_table(cfg))).state_dict()
    assert any(not torch.allclose(a[k], init[k]) for k in a)  # a step was taken
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
