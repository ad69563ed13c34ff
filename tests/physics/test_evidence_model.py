"""EvidenceMoE parts and learning: experts through the core's ExpertList, physics loss, training."""

import numpy as np
import pytest
import torch

from moesuite.core.experts import ExpertList
from moesuite.physics.data.flidar import SimulationConfig, expected_counts, simulate_dataset
from moesuite.physics.evidence.baselines import DenseEvidential, SoftmaxMoE
from moesuite.physics.evidence.config import EvidenceTrainConfig
from moesuite.physics.evidence.evaluate import metrics_of
from moesuite.physics.evidence.experts import ExpertBank, physics_window_loss, window_masks
from moesuite.physics.evidence.features import TargetScaler, features, to_batch
from moesuite.physics.evidence.model import EvidenceMoE
from moesuite.physics.evidence.training import build_model, fit_and_predict, training_step

CFG = SimulationConfig(n_bins=64, bin_width_ns=0.195, oversample=2)


@pytest.fixture(scope="module")
def data():
    return (
        simulate_dataset(1200, CFG, seed=0),
        simulate_dataset(200, CFG, seed=1),
        simulate_dataset(400, CFG, seed=2),
    )


def test_expert_bank_concatenates_each_experts_slot():
    torch.manual_seed(0)
    bank = ExpertBank(d_in=65, num_experts=3, d_hidden=8, d_feat=4)
    assert isinstance(bank.experts, ExpertList)
    x = torch.randn(5, 65)
    raw, feat = bank(x)
    assert raw.shape == (5, 3, 2, 4) and feat.shape == (5, 3, 4)
    # each expert alone reproduces its slot: the dense plan with unit gates is a concatenation
    for e, expert in enumerate(bank.experts.experts):
        out = expert(torch.nn.functional.pad(x, (0, bank.d_model - 65)))
        slot = out[:, e * bank.slot : (e + 1) * bank.slot]
        torch.testing.assert_close(slot[:, :8].reshape(5, 2, 4), raw[:, e])
        assert out[:, : e * bank.slot].abs().sum() == 0


def test_windows_cover_rising_edge_tail_and_everything():
    counts = torch.tensor(
        expected_counts(simulate_dataset(1, CFG, seed=3).params, CFG), dtype=torch.float32
    )
    m = window_masks(counts)  # early, late, global
    first = [int(torch.nonzero(m[0, w])[0]) for w in range(3)]
    last = [int(torch.nonzero(m[0, w])[-1]) for w in range(3)]
    assert first[0] == first[2] < first[1] and last[0] < last[1] == last[2]
    assert m[0, 2].all()  # the global window holds every bin
    assert not (m[0, 0] & m[0, 1]).any()  # early and late do not overlap


def test_physics_loss_is_smallest_at_the_true_parameters():
    ds = simulate_dataset(8, SimulationConfig(), seed=4)
    counts = torch.tensor(ds.signals)
    params = torch.tensor(ds.params, dtype=torch.float32)
    truth = params[:, :2]
    masks = window_masks(counts)  # early, late, global

    def loss_of(guess):  # every expert guesses the same; each is scored on its own window
        cand = guess[:, None, :].expand(-1, 3, -1)
        return physics_window_loss(cand, counts, params, masks, SimulationConfig())

    right = loss_of(truth)
    deep, slow = (
        loss_of(truth * torch.tensor([1.4, 1.0])),
        loss_of(truth * torch.tensor([1.0, 1.6])),
    )
    for e in range(3):  # on every window the truth beats a wrong depth and a wrong lifetime
        assert (right[:, e] < deep[:, e]).float().mean() >= 0.75
        assert (right[:, e] < slow[:, e]).float().mean() >= 0.75
    assert right.mean() < 2.0  # about 1 at the Poisson noise floor


def test_losses_backpropagate_to_every_part(data):
    train, _, _ = data
    scaler = TargetScaler.from_config(CFG)
    b = to_batch(train.subset(slice(0, 16)), scaler)
    model = EvidenceMoE(65, CFG.to_dict(), scaler.low, scaler.high, d_hidden=16, d_critic=16)
    out = training_step(model, (b.x, b.y, b.counts, b.params))
    assert {"loss", "task_loss", "aux_loss", "expert_nig", "final_nig", "critic", "physics"} <= set(
        out
    )
    assert float(out["aux_loss"]) == 0.0 and torch.equal(out["loss"], out["task_loss"])  # no router
    out["loss"].backward()
    for name in ("bank", "critic", "decider"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name


def test_baselines_match_the_parameter_budget():
    tc = EvidenceTrainConfig(d_hidden=64)
    counts = {
        m: sum(p.numel() for p in build_model(m, CFG, tc).parameters())
        for m in ("evidence", "evidence-dense", "evidence-softmax")
    }
    for m in ("evidence-dense", "evidence-softmax"):
        assert abs(counts[m] - counts["evidence"]) / counts["evidence"] < 0.02
    assert isinstance(build_model("evidence-dense", CFG, tc), DenseEvidential)
    assert isinstance(build_model("evidence-softmax", CFG, tc), SoftmaxMoE)


def test_evidence_moe_learns_depth_and_lifetime_on_small_data(data):
    train, val, test = data
    tc = EvidenceTrainConfig(epochs=6, batch_size=64, d_hidden=32, lr=4e-3)
    pred, scored, info = fit_and_predict("evidence", train, val, test, tc)
    m = metrics_of(pred, scored)
    # predicting the mean gives NRMSE ~0.29 on a uniform target
    assert m["nrmse_tau"] < 0.15 and m["nrmse_depth"] < 0.2
    assert 0.6 < m["coverage90_tau"] <= 1.0
    assert np.all(pred.lower <= pred.upper)
    np.testing.assert_allclose(pred.extras["reliability"].sum(1), 1.0, rtol=1e-5)
    assert info["train_seconds"] > 0


def test_features_are_scale_free():
    c = np.random.default_rng(0).poisson(50, size=(3, 64)).astype(float)
    f1, f2 = features(c), features(4 * c)
    torch.testing.assert_close(f1[:, :-1], f2[:, :-1])
    assert (f2[:, -1] > f1[:, -1]).all()
    with pytest.raises(ValueError, match="no photons"):
        features(np.zeros((1, 64)))


def test_windowed_expert_inputs_only_see_their_window():
    torch.manual_seed(0)
    bank = ExpertBank(d_in=65, num_experts=3, d_hidden=8, windowed_inputs_bins=64)
    x = features(np.random.default_rng(0).poisson(30, size=(4, 64)).astype(float))
    late = bank.experts.experts[2]
    x2 = x.clone()
    x2[:, :3] *= 1.5  # change the first bins: outside the late window, attenuated to 10% there
    d_late = (
        (
            late(torch.nn.functional.pad(x2, (0, bank.d_model - 65)))
            - late(torch.nn.functional.pad(x, (0, bank.d_model - 65)))
        )
        .abs()
        .max()
    )
    early = bank.experts.experts[0]
    d_early = (
        (
            early(torch.nn.functional.pad(x2, (0, bank.d_model - 65)))
            - early(torch.nn.functional.pad(x, (0, bank.d_model - 65)))
        )
        .abs()
        .max()
    )
    assert d_late < d_early
    with pytest.raises(ValueError, match="expert_inputs"):
        EvidenceMoE(65, CFG.to_dict(), (1.0, 0.3), (20.0, 2.0), expert_inputs="half")
