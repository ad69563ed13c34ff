"""Merging a family split over two experts (an option around MixER's gate update)."""

import pytest
import torch

from moesuite.physics.mixer import (
    GateUpdateConfig,
    LeastSquaresGate,
    adjusted_rand_index,
    kmeans_least_squares_update,
)
from moesuite.physics.mixer.merge import merge_split_pair, redundancy


def _split_and_merged(seed=0, per=10):
    """Family A split over two context blobs (experts 0, 1); families B, C share expert 2."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.arange(3).repeat_interleave(2 * per)  # A, B, C
    blob = torch.tensor([[0.0, 0.0], [6.0, 0.0], [-1.5, 6.0], [1.5, 6.0]])  # A1, A2, B, C
    which = torch.cat([torch.arange(2).repeat_interleave(per), torch.full((2 * per,), 2), torch.full((2 * per,), 3)])
    contexts = blob[which] + 0.1 * torch.randn(len(which), 2, generator=g)
    routed = torch.tensor([0, 1, 2, 2])[which]
    losses = torch.ones(len(which), 3) + 0.1 * torch.rand(len(which), 3, generator=g)
    losses[truth == 0, :2] = 0.10 + 0.01 * torch.rand(2 * per, 2, generator=g)  # experts 0 and 1 both fit A
    losses[truth > 0, 2] = 0.10  # expert 2 fits B and C
    return contexts, truth, routed, losses


def test_redundancy_flags_the_split_pair():
    contexts, truth, routed, losses = _split_and_merged()
    S = redundancy(losses, routed)
    assert S[0, 1] < 1.3 and S[0, 2] > 5 and S[1, 2] > 5
    assert torch.equal(S, S.t()) and torch.isinf(S.diagonal()).all()


def test_merging_the_split_pair_lets_kmeans_recover_every_family():
    contexts, truth, routed, losses = _split_and_merged()
    cfg = GateUpdateConfig()
    before = kmeans_least_squares_update(LeastSquaresGate(2, 3), contexts, losses, cfg, torch.Generator().manual_seed(0))
    assert adjusted_rand_index(truth, before.clusters) < 0.8  # K=3 on four blobs: A split, B + C merged
    moved = contexts.clone()
    pair = merge_split_pair(moved, losses, routed, ratio=1.5)
    assert pair is not None and set(pair) == {0, 1}
    a, b = pair
    # only b's environments moved, by one translation (their spread is kept) onto a's mean
    assert torch.equal(moved[routed != b], contexts[routed != b])
    delta = moved[routed == b] - contexts[routed == b]
    assert torch.allclose(delta, delta[:1].expand_as(delta), atol=1e-6)
    assert torch.allclose(moved[routed == b].mean(0), contexts[routed == a].mean(0), atol=1e-5)
    after = kmeans_least_squares_update(LeastSquaresGate(2, 3), moved, losses, cfg, torch.Generator().manual_seed(0))
    assert adjusted_rand_index(truth, after.clusters) == 1.0
    assert adjusted_rand_index(truth, after.routed) == 1.0


def test_no_merge_without_a_redundant_pair():
    contexts, truth, routed, losses = _split_and_merged()
    losses[truth == 0, 1] = 2.0  # expert 1 no longer fits family A
    losses[routed == 1, 1] = 0.1
    losses[routed == 1, 0] = 1.0
    moved = contexts.clone()
    assert merge_split_pair(moved, losses, routed, ratio=1.5) is None
    assert torch.equal(moved, contexts)
    with pytest.raises(ValueError, match="ratio must be > 1"):
        merge_split_pair(moved, losses, routed, ratio=1.0)


def test_training_runs_the_merge_check_on_schedule():
    from moesuite.physics.mixer import TrainConfig
    from moesuite.physics.mixer.api import train_model
    from moesuite.physics.odes import generate

    data = generate(families="van_der_pol,lotka_volterra", n_train_envs=3, n_adapt_envs=1, n_train_ics=2,
                    n_test_ics=1, n_times=8, seed=0)
    # an absurdly loose ratio: every check merges the most redundant pair
    tc = TrainConfig(epochs=2, steps_per_epoch=5, warmup=0.0, curriculum=0.0, merge_ratio=1e9, merge_every=4,
                     merge_after=0.5)
    _, system, _ = train_model("mixer", data, num_experts=2, train_config=tc)
    # 2 gate updates per outer step (4 inner steps, gate_every=2): checks at updates 4, 8, ..., 20,
    # i.e. outer steps 2, 4, ..., 10, of which those from step 5 on may merge
    steps = [s for s, _, _ in system.merges]
    assert system.gate_updates == 20
    assert 1 <= len(steps) <= 3 and set(steps) <= {6, 8, 10}
    with pytest.raises(ValueError, match="merge_ratio"):
        TrainConfig(merge_ratio=0.5)
