"""The bisection warm-up: experts untied top-down by 2-means on the most spread group."""

import pytest
import torch

from moesuite.physics.mixer import MixERSystem, TrainConfig, adjusted_rand_index
from moesuite.physics.mixer.bisect import bisect_widest_group, split_schedule
from moesuite.physics.odes import generate


@pytest.fixture(scope="module")
def data():
    return generate(families="van_der_pol,damped_pendulum,lotka_volterra", n_train_envs=3, n_adapt_envs=1,
                    n_train_ics=2, n_test_ics=1, n_times=8, seed=0)


def test_bisection_recovers_planted_hierarchy():
    g = torch.Generator().manual_seed(0)
    # two super-families far apart, each of two families: bisecting splits coarse first
    centres = torch.tensor([[0.0, 0.0], [0.0, 1.0], [20.0, 0.0], [20.0, 1.0]])
    truth = torch.arange(4).repeat_interleave(8)
    x = centres[truth] + 0.05 * torch.randn(32, 2, generator=g)
    groups = torch.zeros(32, dtype=torch.long)
    parent, groups = bisect_widest_group(x, groups, 1, g)
    assert parent == 0 and adjusted_rand_index(truth // 2, groups) == 1.0
    for new in (2, 3):
        _, groups = bisect_widest_group(x, groups, new, g)
    assert adjusted_rand_index(truth, groups) == 1.0
    assert split_schedule(0, 9, 3) == [0, 3, 6] and split_schedule(5, 2, 3) == [5, 5, 6]
    with pytest.raises(ValueError, match="two environments"):
        bisect_widest_group(x[:2], torch.tensor([0, 1]), 2)


def test_bisection_warmup_unties_experts_one_split_at_a_time(data):
    from moesuite.physics.mixer.api import train_model

    seen = []
    orig = MixERSystem._copy_expert

    def spy(self, opt, source, target):
        seen.append((self._outer, source, target))
        orig(self, opt, source, target)
        w = self.model.experts.w_out
        assert torch.equal(w[target], w[source])

    MixERSystem._copy_expert = spy
    try:
        tc = TrainConfig(epochs=4, steps_per_epoch=5, warmup=0.2, split_warmup=0.4, curriculum=0.0)
        net, system, _ = train_model("mixer", data, num_experts=3, train_config=tc)
    finally:
        MixERSystem._copy_expert = orig
    # 2 splits evenly over outer steps [4, 12): at 4 and 8, each giving a fresh expert index
    assert [(s, t) for s, _, t in seen] == [(4, 1), (8, 2)]
    assert system.groups is None and system.gate_updates > 0  # the gate took over after step 12
    assert bool(net.gate.has_centroids)
    with pytest.raises(ValueError, match="split_warmup"):
        TrainConfig(warmup=0.5, split_warmup=0.5)
