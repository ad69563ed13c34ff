"""Training plumbing: atomic run directories, the trainer factory, the aux-loss callback."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from moesuite.core import GroupedExperts, MoELayer, routers
from moesuite.core.stats import load_imbalance
from moesuite.core.training import (
    MoEAuxLossCallback,
    MoESystem,
    OptimConfig,
    default_run_path,
    make_trainer,
    read_json,
    run_directory,
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
        self.moe = MoELayer(routers.create(router, d_model=8, num_experts=4, k=1, **kw), GroupedExperts(4, 8, 8))

    def forward(self, x):
        return self.moe(x)[0]


def _skewed_loader(net):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g) + 2 * net.moe.router.weight[0].detach()
    return DataLoader(TensorDataset(x), batch_size=64)


def _routing_only_step(model, batch):
    # the task loss ignores the output, so only the attached aux loss can move the router
    return {"loss": 0.0 * model(batch[0]).pow(2).mean()}


@pytest.mark.parametrize("with_aux", [True, False])
def test_callback_adds_router_aux_loss_to_training(with_aux):
    torch.manual_seed(0)
    net = _Net(lb_weight=1.0)
    loader = _skewed_loader(net)
    x = loader.dataset.tensors[0]
    before = load_imbalance(net.moe.router(x).plan.counts)
    w0 = net.moe.router.weight.detach().clone()
    trainer = make_trainer(None, max_epochs=30, progress=False, aux_loss=with_aux, monitor="train/loss_epoch")
    trainer.fit(MoESystem(net, _routing_only_step, OptimConfig(lr=0.05), max_epochs=30), loader)
    after = load_imbalance(net.moe.router(x).plan.counts)
    if with_aux:
        assert before > 2 and after < before / 1.5
        assert "routing/aux_loss" in trainer.callback_metrics
        assert "routing/moe/entropy" in trainer.callback_metrics
    else:
        assert torch.equal(net.moe.router.weight.detach(), w0)


def test_callback_updates_aux_free_bias_and_counts_experts():
    torch.manual_seed(0)
    net = _Net(aux_free=True, bias_gamma=0.05)
    loader = _skewed_loader(net)
    cb = MoEAuxLossCallback()
    trainer = make_trainer(None, max_epochs=10, progress=False, aux_loss=cb, monitor="train/loss_epoch")
    trainer.fit(MoESystem(net, _routing_only_step, max_epochs=10), loader)
    bias = net.moe.router.balancer.bias
    assert bias[0] < 0 and bias[1:].gt(bias[0]).all()
    assert cb.expert_counts["moe"].sum() == 10 * 256


def test_trainer_writes_checkpoint_csv_and_json_metrics(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = x.sum(1, keepdim=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    head = nn.Linear(8, 1)
    net = nn.Sequential(_Net(), head)

    def step(model, batch):
        return {"loss": nn.functional.mse_loss(model(batch[0]), batch[1])}

    with run_directory(tmp_path / "run") as run:
        trainer = make_trainer(run.path, max_epochs=3, progress=False, early_stopping_patience=5)
        trainer.fit(MoESystem(net, step, OptimConfig(lr=1e-2, schedule="cosine"), max_epochs=3), loader, loader)
    final = tmp_path / "run"
    assert (final / "checkpoints" / "best.ckpt").is_file()
    assert (final / "logs" / "metrics.csv").is_file()
    lines = [json.loads(line) for line in (final / "logs" / "metrics.jsonl").read_text().splitlines()]
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
