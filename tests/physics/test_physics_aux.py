"""Every registered physics model's router aux losses reach the loss of its real training step."""

import pytest
import torch

from moesuite.core.routers.base import Router
from moesuite.core.testing import assert_aux_consumed
from moesuite.physics.data.flidar import SimulationConfig, simulate_dataset
from moesuite.physics.evidence.config import EvidenceTrainConfig
from moesuite.physics.evidence.features import TargetScaler, to_batch
from moesuite.physics.evidence.registry import MODELS as EVIDENCE
from moesuite.physics.evidence.training import build_model, training_step
from moesuite.physics.mixer.registry import MODELS as MIXER
from moesuite.physics.mixer.training import mixer_step
from moesuite.physics.mixer.trajectories import TrajectoryBatch
from moesuite.physics.odes import generate

CFG = SimulationConfig(n_bins=32, bin_width_ns=0.39, oversample=2)
#: weighted aux terms each model with routers must put into its loss (load balancing + z-loss)
AUX_TERMS = {"evidence-softmax": 2, "mixer-gradgate": 2}
#: models whose routers compute no aux loss (MixER's gate is refitted by least squares)
NO_AUX = {"mixer"}


def _routers(model):
    return [m for m in model.modules() if isinstance(m, Router)]


@pytest.fixture(scope="module")
def flidar_batch():
    ds = simulate_dataset(16, CFG, seed=0)
    b = to_batch(ds, TargetScaler.from_config(CFG))
    return b.x, b.y, b.counts, b.params


@pytest.fixture(scope="module")
def ode_batch():
    ds = generate(
        families="van_der_pol,lorenz",
        n_train_envs=3,
        n_adapt_envs=1,
        n_train_ics=2,
        n_test_ics=1,
        n_times=5,
        seed=0,
    )
    return ds, TrajectoryBatch.from_numpy(ds.train.fit, ds.train.dt, ds.train.mask)


def test_the_tables_name_every_model_with_routers():
    """A new model with routers must be listed here, so its aux losses are tested."""
    assert set(AUX_TERMS) | NO_AUX <= set(EVIDENCE.list()) | set(MIXER.list())


@pytest.mark.parametrize("name", [n for n in EVIDENCE.list() if n != "evidence-lsq"])
def test_flidar_models_consume_their_aux_losses(name, flidar_batch):
    torch.manual_seed(0)
    model = build_model(name, CFG, EvidenceTrainConfig(d_hidden=8))
    expected = AUX_TERMS.get(name, 0)
    assert bool(_routers(model)) == (name in AUX_TERMS or name in NO_AUX)
    audited = assert_aux_consumed(
        model, lambda: training_step(model, flidar_batch)["loss"], expected
    )
    assert audited == expected


@pytest.mark.parametrize("name", MIXER.list())
def test_ode_models_consume_their_aux_losses(name, ode_batch):
    ds, batch = ode_batch
    torch.manual_seed(0)
    model = MIXER.create(
        name, state_dim=ds.state_dim, num_envs=ds.train.num_envs, num_experts=2, hidden=8
    )
    expected = AUX_TERMS.get(name, 0)
    assert bool(_routers(model)) == (name in AUX_TERMS or name in NO_AUX)
    audited = assert_aux_consumed(model, lambda: mixer_step(model, batch)["loss"], expected)
    assert audited == expected


def test_a_step_that_drops_the_aux_losses_fails_the_check(flidar_batch):
    model = build_model("evidence-softmax", CFG, EvidenceTrainConfig(d_hidden=8))

    def dropping_step():
        return training_step(model, flidar_batch)["task_loss"]

    with pytest.raises(AssertionError, match="load_balance"):
        assert_aux_consumed(model, dropping_step)


def test_the_logged_loss_includes_the_aux_losses(flidar_batch, ode_batch):
    model = build_model("evidence-softmax", CFG, EvidenceTrainConfig(d_hidden=8))
    out = training_step(model, flidar_batch)
    assert float(out["aux_loss"]) > 0
    torch.testing.assert_close(out["loss"], out["task_loss"] + out["aux_loss"])
    ds, batch = ode_batch
    gated = MIXER.create(
        "mixer-gradgate", state_dim=ds.state_dim, num_envs=ds.train.num_envs, num_experts=2
    )
    out = mixer_step(gated, batch)
    assert float(out["aux_loss"]) > 0
    torch.testing.assert_close(out["loss"].detach(), out["mse"] + out["aux_loss"])
