"""AdvMoE training: the alternating steps, the NaN guard, learning on digits, resume."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from moesuite.core.training import fit, make_trainer, run_directory, torch_threads
from moesuite.vision.advmoe.data import load_data
from moesuite.vision.advmoe.evaluate import accuracy
from moesuite.vision.advmoe.model import AdvResNet
from moesuite.vision.advmoe.training import AdvTrainer, TrainConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread (a second one spin-waits on a busy machine)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def digits():
    d = load_data(None)
    return d.x_train[:256], d.y_train[:256], d.x_test[:120], d.y_test[:120]


def _fit(model, cfg, x, y, run_path, resume=None, max_epochs=None):
    loader = DataLoader(TensorDataset(x, y), batch_size=cfg.batch_size, shuffle=False)
    system = AdvTrainer(model, cfg, len(loader))
    trainer = make_trainer(
        run_path,
        max_epochs=max_epochs or cfg.epochs,
        progress=False,
        monitor="train/loss_epoch",
        routing_stats=False,
        log_every_n_steps=1,
        accelerator="cpu",
        devices=1,
    )
    fit(trainer, system, loader, resume=resume)
    return system


def _params(ps):
    return [p.detach().clone() for p in ps]


def _changed(before, after):
    return [
        not torch.equal(a.nan_to_num(7.0), b.nan_to_num(7.0))
        for a, b in zip(before, after, strict=True)
    ]


def test_advmoe_step_updates_backbone_and_router_with_their_own_optimisers(digits, tmp_path):
    x, y, _, _ = digits
    torch.manual_seed(0)
    model = AdvResNet(width=4, ratio=0.5, experts=2)
    cfg = TrainConfig(scheme="advmoe", epochs=1, batch_size=32, eps=0.1, eps_warmup=0.0)
    system = AdvTrainer(model, cfg, 1)
    opts = system.configure_optimizers()
    assert {id(p) for p in opts[0].param_groups[0]["params"]} == {
        id(p) for p in model.backbone_parameters()
    }
    assert {id(p) for p in opts[1].param_groups[0]["params"]} == {
        id(p) for p in model.router_parameters()
    }
    rb, bb = _params(model.router_parameters()), _params(model.backbone_parameters())
    with run_directory(tmp_path / "run") as run:
        _fit(model, cfg, x[:32], y[:32], run.path)
    assert any(_changed(rb, model.router_parameters()))
    assert any(_changed(bb, model.backbone_parameters()))


def test_a_nan_router_score_skips_the_update_and_ten_in_a_row_stop(digits, tmp_path):
    x, y, _, _ = digits
    torch.manual_seed(0)
    model = AdvResNet(width=4, ratio=0.5, experts=2)
    model.router.gate.weight.data[0, 0] = float("nan")
    before = _params(model.parameters())
    cfg = TrainConfig(scheme="joint", epochs=1, batch_size=16, eps=0.1)
    with pytest.raises(FloatingPointError, match="non-finite"):
        _fit(model, cfg, x[:160], y[:160], None)
    assert not any(_changed(before, model.parameters()))


def test_advmoe_training_learns_digits(digits):
    x, y, xt, yt = digits
    torch.manual_seed(0)
    model = AdvResNet(width=4, ratio=0.5, experts=2)
    cfg = TrainConfig(scheme="advmoe", epochs=4, batch_size=32, eps=0.02, lr=3e-3, attack_steps=1)
    system = _fit(model, cfg, x[:128], y[:128], None)
    assert accuracy(model, xt, yt) > 0.3  # chance is 0.1
    assert len(system.usage_history) == 4
    assert all(abs(sum(s) - 1) < 1e-6 for s in system.usage_history)


def test_resume_continues_to_the_same_weights(digits, tmp_path):
    x, y, _, _ = digits
    x, y = x[:64], y[:64]
    cfg = TrainConfig(scheme="advmoe", epochs=2, batch_size=32, eps=0.1)
    torch.manual_seed(0)
    init = AdvResNet(width=4, ratio=0.5, experts=2)
    straight = copy.deepcopy(init)
    with run_directory(tmp_path / "a") as run:
        _fit(straight, cfg, x, y, run.path)
    resumed = copy.deepcopy(init)
    with run_directory(tmp_path / "b") as run:
        _fit(resumed, cfg, x, y, run.path, max_epochs=1)
    again = copy.deepcopy(init)
    _fit(again, cfg, x, y, tmp_path / "b", resume=tmp_path / "b")
    for a, b in zip(straight.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="--scheme"):
        TrainConfig(scheme="alternating")
    with pytest.raises(ValueError, match="--eps"):
        TrainConfig(eps=-0.1)
    with pytest.raises(ValueError, match="dense network"):
        AdvTrainer(AdvResNet(width=4, experts=2), TrainConfig(scheme="dense"), 1)
    with pytest.raises(ValueError, match="trains routers"):
        AdvTrainer(AdvResNet(width=4), TrainConfig(scheme="joint"), 1)


def test_the_router_objective_reaches_the_config_and_its_label():
    from moesuite.vision.advmoe.runs import make_config, row_label

    data = load_data(None)
    authors = make_config("advmoe", data, data_arg=None)
    paper = make_config("advmoe", data, data_arg=None, router_objective="trades")
    assert authors["train"]["router_objective"] == "authors"
    assert paper["train"]["router_objective"] == "trades"
    assert row_label(authors) == "advmoe (advmoe, shared)"
    assert row_label(paper) == "advmoe (advmoe, shared, router trades)"
