"""Training plumbing: atomic run directories, the trainer factory, the aux-loss callback."""

import json
import signal

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from moesuite.core import GroupedExperts, MoELayer, MoEOutput, routers
from moesuite.core.stats import load_imbalance
from moesuite.core.testing import assert_aux_consumed
from moesuite.core.training import (
    INTERRUPTED,
    MoESystem,
    OptimConfig,
    RoutingStatsCallback,
    default_run_path,
    fit,
    last_checkpoint,
    make_trainer,
    read_json,
    resume_run_directory,
    run_directory,
    seed_everything,
)


def test_run_directory_is_atomic(tmp_path):
    target = tmp_path / "runs" / "ts" / "model" / "r1"
    with pytest.raises(RuntimeError):
        with run_directory(target) as run:
            run.write_config({"a": 1})
            raise RuntimeError("half-way")
    assert not (tmp_path / "runs").exists(), "nothing may be left behind, not even parents"
    with run_directory(target) as run:
        run.write_config({"a": 1, "path": tmp_path, "t": torch.tensor([1.5])})
        run.write_metrics({"mse": float("nan")})
        assert run.path != target and run.path.name.startswith(".r1.tmp")
    assert run.path == target
    assert read_json(target / "config.json")["t"] == [1.5]
    assert read_json(target / "metrics.json") == {"mse": None}
    with pytest.raises(FileExistsError, match="already exists"):
        with run_directory(target):
            pass


def test_default_run_path_is_unique(tmp_path):
    a = default_run_path(tmp_path, "dom", "m")
    a.mkdir(parents=True)
    b = default_run_path(tmp_path, "dom", "m")
    assert a != b and a.parent == b.parent == tmp_path / "dom" / "m"


def test_read_json_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_json(bad)


class _Net(nn.Module):
    def __init__(self, router="topk", **kw):
        super().__init__()
        self.moe = MoELayer(
            routers.create(router, d_model=8, num_experts=4, k=1, **kw), GroupedExperts(4, 8, 8)
        )

    def forward(self, x):
        y, routing = self.moe(x)
        return MoEOutput(y, [routing])


def _skewed_loader(net):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g) + 2 * net.moe.router.weight[0].detach()
    return DataLoader(TensorDataset(x), batch_size=64)


def _routing_only_step(model, batch):
    # the task loss ignores the output, so only the aux loss the step adds can move the router
    out = model(batch[0])
    return {"loss": 0.0 * out.output.pow(2).mean() + out.aux_loss, "aux_loss": out.aux_loss}


def test_aux_loss_added_by_the_step_trains_the_router():
    torch.manual_seed(0)
    net = _Net(lb_weight=1.0)
    loader = _skewed_loader(net)
    x = loader.dataset.tensors[0]
    before = load_imbalance(net.moe.router(x).plan.counts)
    trainer = make_trainer(None, max_epochs=30, progress=False, monitor="train/loss_epoch")
    fit(trainer, MoESystem(net, _routing_only_step, OptimConfig(lr=0.05), max_epochs=30), loader)
    after = load_imbalance(net.moe.router(x).plan.counts)
    assert before > 2 and after < before / 1.5
    assert "train/aux_loss_epoch" in trainer.callback_metrics
    assert "routing/moe/entropy" in trainer.callback_metrics


def test_a_step_that_drops_the_aux_loss_fails_on_the_first_batch():
    torch.manual_seed(0)
    net = _Net(lb_weight=1.0)

    def dropping_step(model, batch):
        return {"loss": model(batch[0]).output.pow(2).mean()}

    trainer = make_trainer(None, max_epochs=1, progress=False, monitor="train/loss_epoch")
    with pytest.raises(
        RuntimeError,
        match=r"never reached the loss: \['moe.router: load_balance', 'moe.router: z_loss'\]",
    ):
        fit(trainer, MoESystem(net, dropping_step), _skewed_loader(net))
    # a zero weight makes a term a statistic: nothing to consume
    quiet = _Net(lb_weight=0.0, z_weight=0.0)
    trainer = make_trainer(None, max_epochs=1, progress=False, monitor="train/loss_epoch")
    fit(trainer, MoESystem(quiet, dropping_step), _skewed_loader(quiet))


def test_assert_aux_consumed_outside_lightning():
    torch.manual_seed(0)
    net = _Net()
    x = torch.randn(16, 8)
    assert assert_aux_consumed(net, lambda: (out := net(x)).output.sum() + out.aux_loss) == 2
    with pytest.raises(AssertionError, match="not added to the loss"):
        assert_aux_consumed(net, lambda: net(x).output.sum())


def test_stats_callback_updates_aux_free_bias_and_counts_experts():
    torch.manual_seed(0)
    net = _Net(aux_free=True, bias_gamma=0.05)
    loader = _skewed_loader(net)
    cb = RoutingStatsCallback()
    trainer = make_trainer(
        None, max_epochs=10, progress=False, routing_stats=cb, monitor="train/loss_epoch"
    )
    fit(trainer, MoESystem(net, _routing_only_step, max_epochs=10), loader)
    bias = net.moe.router.balancer.bias
    assert bias[0] < 0 and bias[1:].gt(bias[0]).all()
    assert cb.expert_counts["moe"].sum() == 10 * 256


def test_trainer_writes_checkpoint_csv_and_json_metrics(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = x.sum(1, keepdim=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    net = nn.ModuleDict({"moe": _Net(), "head": nn.Linear(8, 1)})

    def step(model, batch):
        out = model["moe"](batch[0])
        return {"loss": nn.functional.mse_loss(model["head"](out.output), batch[1]) + out.aux_loss}

    with run_directory(tmp_path / "run") as run:
        trainer = make_trainer(run.path, max_epochs=3, progress=False, early_stopping_patience=5)
        fit(
            trainer,
            MoESystem(net, step, OptimConfig(lr=1e-2, schedule="cosine"), max_epochs=3),
            loader,
            loader,
        )
    final = tmp_path / "run"
    assert (final / "checkpoints" / "best.ckpt").is_file() and (
        final / "checkpoints" / "last.ckpt"
    ).is_file()
    assert (final / "logs" / "metrics.csv").is_file()
    lines = [
        json.loads(line) for line in (final / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [row["epoch"] for row in lines] == [0, 1, 2]
    assert lines[-1]["val/loss"] < lines[0]["val/loss"]


def test_step_fn_must_return_a_loss():
    system = MoESystem(nn.Linear(2, 1), lambda model, batch: {"mse": torch.tensor(1.0)})
    with pytest.raises(KeyError, match="'loss' entry"):
        system.training_step((torch.zeros(1, 2),), 0)


def test_optim_config_validation():
    with pytest.raises(ValueError, match="schedule must be"):
        OptimConfig(schedule="linear")
    with pytest.raises(ValueError, match="lr must be > 0"):
        OptimConfig(lr=0)


class _InterruptAtEpoch(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def _train_dropout_net(path, callbacks=(), resume=False, epochs=3, own_generator=False):
    seed_everything(0)
    net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 1))
    x = torch.randn(96, 8)
    generator = torch.Generator().manual_seed(1) if own_generator else None
    data = TensorDataset(x, x.sum(1, keepdim=True))
    loader = DataLoader(data, batch_size=16, shuffle=True, generator=generator)

    def step(model, batch):
        return {"loss": nn.functional.mse_loss(model(batch[0]), batch[1])}

    opened = resume_run_directory(path) if resume else run_directory(path, keep_interrupted=True)
    with opened as run:
        run.write_config({"epochs": epochs})
        trainer = make_trainer(
            run.path,
            max_epochs=epochs,
            progress=False,
            callbacks=callbacks,
            monitor="train/loss_epoch",
        )
        system = MoESystem(net, step, OptimConfig(lr=1e-2, schedule="cosine"), max_epochs=epochs)
        fit(trainer, system, loader, resume=path if resume else None)
    return net


@pytest.mark.parametrize("own_generator", [False, True], ids=["global-rng", "loader-generator"])
def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, own_generator):
    straight = _train_dropout_net(tmp_path / "straight", own_generator=own_generator)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown after Ctrl+C
            _train_dropout_net(
                tmp_path / "cut", callbacks=[_InterruptAtEpoch(1)], own_generator=own_generator
            )
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after an interrupt
    cut = tmp_path / "cut"
    assert (cut / INTERRUPTED).is_file() and (cut / "checkpoints" / "last.ckpt").is_file()
    assert [
        json.loads(line)["epoch"]
        for line in (cut / "logs" / "metrics.jsonl").read_text().splitlines()
    ] == [0]
    resumed = _train_dropout_net(cut, resume=True, own_generator=own_generator)
    assert not (cut / INTERRUPTED).exists()
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    epochs = [
        json.loads(line)["epoch"]
        for line in (cut / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [0, 1, 2]
    assert (cut / "logs" / "metrics.part1.csv").is_file() and (
        cut / "logs" / "metrics.csv"
    ).is_file()


def test_resume_needs_a_run_with_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        with resume_run_directory(tmp_path / "nothing"):
            pass
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no checkpoints/last.ckpt"):
        last_checkpoint(tmp_path / "run")


def test_an_error_during_training_leaves_nothing_even_with_keep_interrupted(tmp_path):
    class Boom(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _train_dropout_net(tmp_path / "run", callbacks=[Boom()])
    assert not (tmp_path / "run").exists() and not list(tmp_path.iterdir())


def test_resumable_config_checks_the_run_before_anything_resumes(tmp_path):
    from moesuite.core.training import INTERRUPTED, resumable_config

    run = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        resumable_config(run)
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text('{"system": "a", "model": "m"}')
    with pytest.raises(ValueError, match="its system is 'a', not 'b'"):
        resumable_config(run, expect={"system": "b"})
    with pytest.raises(ValueError, match="--lr: --resume continues"):
        resumable_config(run, given={"--lr": 0.1, "--seed": None})
    with pytest.raises(ValueError, match="was not interrupted"):
        resumable_config(run, expect={"system": "a"})
    (run / INTERRUPTED).write_text("")
    with pytest.raises(FileNotFoundError, match="no checkpoints/last.ckpt"):
        resumable_config(run)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert resumable_config(run, expect={"system": "a"}, given={"--seed": None})["model"] == "m"
    (run / INTERRUPTED).unlink()
    assert resumable_config(run, finished_ok=True)["system"] == "a"
