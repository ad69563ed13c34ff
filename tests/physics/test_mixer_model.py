"""MixER's model, training and adaptation on tiny problems."""

import pytest
import torch

from moesuite.core.routing import RoutingPlan
from moesuite.core.training import make_trainer
from moesuite.physics.data.odes import generate
from moesuite.physics.mixer import (
    AdaptConfig,
    ContextVectorFields,
    MixERConfig,
    MixERModel,
    MixERSystem,
    MixERTrainConfig,
    TrajectoryBatch,
    adapt_contexts,
    model_config,
    trajectory_mse,
)
from moesuite.physics.mixer.trajectories import make_loader
from moesuite.physics.mixer.vector_fields import expert_param_count


@pytest.fixture(scope="module")
def data():
    return generate(
        families="van_der_pol,damped_pendulum",
        n_train_envs=4,
        n_adapt_envs=2,
        n_train_ics=2,
        n_test_ics=1,
        n_times=8,
        seed=0,
    )


def _batch(envs, which="fit"):
    return TrajectoryBatch.from_numpy(getattr(envs, which), envs.dt, envs.mask)


def _train_mse(model, batch):
    with torch.no_grad():
        pred = model(batch.y[:, :, 0], batch.dt, batch.y.shape[2], batch.mask).output
    return float(trajectory_mse(pred, batch.y, batch.mask).mean())


def test_adaptation_changes_only_the_new_context(data):
    torch.manual_seed(0)
    model = MixERModel(
        MixERConfig(
            state_dim=2, num_envs=data.train.num_envs, num_experts=2, context_dim=4, hidden=16
        )
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    batch = _batch(data.adapt)
    ctx0, mse0 = adapt_contexts(model, batch, AdaptConfig(steps=0))
    ctx, mse = adapt_contexts(model, batch, AdaptConfig(steps=25, lr=0.05))
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), f"{k} changed during adaptation"
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert all(p.grad is None for p in model.parameters())
    assert ctx.shape == (data.adapt.num_envs, 4) and not torch.equal(ctx, ctx0)
    assert (mse < mse0).all()


def test_a_small_mixer_learns(data):
    torch.manual_seed(0)
    model = MixERModel(
        MixERConfig(
            state_dim=2, num_envs=data.train.num_envs, num_experts=2, context_dim=4, hidden=32
        )
    )
    batch = _batch(data.train)
    untrained = _train_mse(model, batch)
    config = MixERTrainConfig(
        epochs=6,
        steps_per_epoch=5,
        lr_model=5e-3,
        lr_context=1e-2,
        proximal=(0.0, 0.0),
        curriculum=0.3,
    )
    system = MixERSystem(model, config)
    make_trainer(None, max_epochs=config.epochs, progress=False, routing_stats=False).fit(
        system, make_loader(batch, 5)
    )
    trained = _train_mse(model, batch)
    assert trained < 0.5 * untrained, (untrained, trained)
    assert system.gate_updates >= config.outer_steps  # gate_every=2 of 4 inner steps
    assert system.last_gate_update is not None
    assert not model.gate.weight.requires_grad and model.gate.weight.grad is None


def test_gradient_gate_trains_by_backprop_and_warmup_ties_experts(data):
    torch.manual_seed(0)
    cfg = model_config(
        "mixer-gradgate",
        state_dim=2,
        num_envs=data.train.num_envs,
        num_experts=2,
        context_dim=4,
        hidden=16,
        same_init=False,
    )
    model = MixERModel(cfg)
    router_before = model.gate.weight.detach().clone()
    config = MixERTrainConfig(epochs=2, steps_per_epoch=2, warmup=0.5, curriculum=0.0)
    system = MixERSystem(model, config)
    make_trainer(None, max_epochs=2, progress=False, routing_stats=False).fit(
        system, make_loader(_batch(data.train), 2)
    )
    assert not torch.equal(router_before, model.gate.weight)  # trained after the warm-up
    assert system.gate_updates == 0
    with pytest.raises(
        AssertionError
    ):  # experts diverge again after being tied at the end of warm-up
        torch.testing.assert_close(model.experts.w_out[0], model.experts.w_out[1])


def test_shared_baseline_matches_the_parameter_count():
    mixer = model_config(
        "mixer", state_dim=3, num_envs=20, num_experts=10, context_dim=16, hidden=64
    )
    shared = model_config(
        "mixer-shared", state_dim=3, num_envs=20, num_experts=10, context_dim=16, hidden=64
    )
    n_mixer = 10 * expert_param_count(3, 16, 64, 2) + 10 * 17
    n_shared = expert_param_count(3, 16, shared.hidden, 2)
    assert shared.num_experts == 1 and shared.gate == "none"
    assert abs(n_shared - n_mixer) / n_mixer < 0.01
    m = MixERModel(shared)
    assert sum(p.numel() for p in m.experts.parameters()) == n_shared
    assert mixer.gate == "least_squares"
    with pytest.raises(ValueError, match=r"unknown model 'mixer-xl'; expected one of \['mixer'"):
        model_config("mixer-xl", state_dim=3, num_envs=20, num_experts=10)


def test_padding_stays_zero_and_plans_must_be_top1():
    torch.manual_seed(0)
    fields = ContextVectorFields(num_experts=2, state_dim=3, context_dim=2, hidden=8)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    plan = RoutingPlan.from_topk(torch.tensor([[0], [1]]), torch.ones(2, 1), 2)
    f = fields.bind(torch.randn(2, 2), plan, mask)
    dy = f(None, torch.randn(2, 4, 3))
    assert (dy[0, :, 2] == 0).all() and (dy[1, :, 2] != 0).any()
    top2 = RoutingPlan.from_topk(torch.tensor([[0, 1], [1, 0]]), torch.full((2, 2), 0.5), 2)
    with pytest.raises(ValueError, match="top-1 plan"):
        fields.bind(torch.randn(2, 2), top2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gate": "softmax"}, "gate must be one of"),
        ({"gate": "none", "num_experts": 3}, "needs num_experts=1"),
        ({"num_experts": 9}, r"use num_experts <= 4"),
        ({"hidden": 0}, "hidden must be a positive int"),
    ],
)
def test_bad_model_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixERConfig(state_dim=2, num_envs=4, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"inner_steps": (0, 0)}, "inner_steps"),
        ({"warmup": 1.0}, "warmup"),
        ({"curriculum": 2.0}, "curriculum"),
        ({"lr_model": 0.0}, "learning rates"),
    ],
)
def test_bad_train_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MixERTrainConfig(**kwargs)


def test_the_system_refuses_a_step_that_drops_the_routers_aux_losses(data, monkeypatch):
    from moesuite.physics.mixer import training

    def dropping(model, batch, tied=False):  # the trajectory loss only: the router's aux is dropped
        out = model(batch.y[:, :, 0], batch.dt, batch.y.shape[2], batch.mask)
        mse = trajectory_mse(out.output, batch.y, batch.mask).mean()
        return {"loss": mse, "mse": mse.detach()}

    torch.manual_seed(0)
    cfg = model_config(
        "mixer-gradgate", state_dim=2, num_envs=data.train.num_envs, num_experts=2, hidden=8
    )
    system = MixERSystem(MixERModel(cfg), MixERTrainConfig(epochs=1, steps_per_epoch=2, warmup=0.0))
    monkeypatch.setattr(training, "mixer_step", dropping)
    with pytest.raises(RuntimeError, match="never reached the loss"):
        make_trainer(None, max_epochs=1, progress=False, routing_stats=False).fit(
            system, make_loader(_batch(data.train), 2)
        )
