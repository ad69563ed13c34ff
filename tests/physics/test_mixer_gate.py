"""MixER's gate: K-means + median-loss greedy assignment + least squares, without gradients."""

import pytest
import torch

from moesuite.physics.mixer import (
    GateUpdateConfig,
    LeastSquaresGate,
    adjusted_rand_index,
    greedy_assignment,
    hungarian_assignment,
    kmeans,
    kmeans_least_squares_update,
    least_squares_gate,
)


def _planted(seed=0, per=12, dim=6, spread=0.15):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, dim, generator=g) * 3.0
    truth = torch.arange(3).repeat_interleave(per)
    contexts = centres[truth] + spread * torch.randn(3 * per, dim, generator=g)
    perm = torch.randperm(3, generator=g)  # the expert that is best on each true cluster
    losses = 1.0 + torch.rand(3 * per, 3, generator=g)  # every expert mediocre ...
    losses[torch.arange(3 * per), perm[truth]] = 0.05 * torch.rand(3 * per, generator=g)  # ... but one
    return contexts, truth, perm, losses


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["l2", "l1"])
def test_gate_update_recovers_planted_clusters(seed, metric):
    contexts, truth, perm, losses = _planted(seed)
    gate = LeastSquaresGate(context_dim=contexts.shape[1], num_experts=3)
    res = kmeans_least_squares_update(gate, contexts, losses, GateUpdateConfig(metric=metric),
                                      torch.Generator().manual_seed(seed))
    assert adjusted_rand_index(truth, res.clusters) == 1.0
    # each cluster went to the expert that is best on it, and the refitted gate routes there
    assert torch.equal(res.target, perm[truth])
    assert torch.equal(res.routed, perm[truth]) and res.agreement == 1.0
    routed = gate(contexts).plan
    assert torch.equal(routed.expert_idx[torch.argsort(routed.token_idx)], perm[truth])
    assert torch.equal(routed.weight, torch.ones_like(routed.weight))
    # new points near a centre are routed to that cluster's expert too
    near = contexts[truth == 1][:3] + 0.05
    assert set(gate(near).plan.expert_idx.tolist()) == {int(perm[1])}
    # the centroids are kept for the next (warm-started) update
    assert bool(gate.has_centroids)
    res2 = kmeans_least_squares_update(gate, contexts, losses)
    assert adjusted_rand_index(res.clusters, res2.clusters) == 1.0


def test_gate_never_receives_gradients():
    contexts, _, _, losses = _planted()
    gate = LeastSquaresGate(context_dim=contexts.shape[1], num_experts=3)
    kmeans_least_squares_update(gate, contexts, losses)
    assert not any(p.requires_grad for p in gate.parameters())
    x = contexts.clone().requires_grad_(True)
    out = gate(x)
    # neither the decision nor the gate values depend differentiably on x or on the gate
    assert not out.logits.requires_grad and not out.probs.requires_grad
    assert not out.plan.weight.requires_grad


def test_greedy_assignment_orders():
    table = torch.tensor([[0.3, 0.2, 0.9], [0.1, 0.5, 0.6], [0.4, 0.45, 0.8]])
    # global: (1, 0) at 0.1 first, then (0, 1) at 0.2, then (2, 2)
    assert greedy_assignment(table, "global").tolist() == [1, 0, 2]
    # sequential: cluster 0 takes expert 1, cluster 1 expert 0, cluster 2 expert 2
    assert greedy_assignment(table, "sequential").tolist() == [1, 0, 2]
    table2 = torch.tensor([[0.2, 0.3], [0.1, 0.9]])
    assert greedy_assignment(table2, "global").tolist() == [1, 0]
    assert greedy_assignment(table2, "sequential").tolist() == [0, 1]
    with pytest.raises(ValueError, match="distinct experts"):
        greedy_assignment(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="order must be"):
        greedy_assignment(table, "random")


def test_kmeans_keeps_every_cluster_populated():
    x = torch.cat([0.1 * torch.randn(10, 2, generator=torch.Generator().manual_seed(0)), torch.ones(1, 2) * 5])
    # a warm start with two centroids far from every point: clusters get re-seeded
    labels, centroids = kmeans(x, 3, init=torch.tensor([[100.0, 100.0], [0.0, 0.0], [-100.0, -100.0]]))
    assert torch.bincount(labels, minlength=3).min() >= 1
    with pytest.raises(ValueError, match="k must be an int"):
        kmeans(x, 20)


def test_least_squares_fit_is_the_normal_equation_solution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g, dtype=torch.float64)
    target = torch.randint(0, 3, (40,), generator=g)
    W, b = least_squares_gate(x, target, 3)
    X = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], 1)
    Y = torch.nn.functional.one_hot(target, 3).double()
    ref = torch.linalg.solve(X.T @ X, X.T @ Y)
    assert torch.allclose(torch.cat([W.T, b[None]]), ref, atol=1e-9)


def test_bad_update_inputs():
    gate = LeastSquaresGate(context_dim=4, num_experts=3)
    with pytest.raises(ValueError, match=r"contexts must be \[N, 4\]"):
        kmeans_least_squares_update(gate, torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="metric must be"):
        GateUpdateConfig(metric="cosine")


def test_hungarian_assignment_is_the_least_total_loss_matching():
    import itertools

    table = torch.tensor([[0.2, 0.9], [0.1, 0.3]])
    assert greedy_assignment(table).tolist() == [1, 0]  # greedy: 0.1 + 0.9 = 1.0
    assert hungarian_assignment(table).tolist() == [0, 1]  # optimum: 0.2 + 0.3 = 0.5
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        t = torch.rand(4, 5, generator=g)
        out = hungarian_assignment(t)
        assert len(set(out.tolist())) == 4
        best = min(sum(float(t[j, e]) for j, e in enumerate(p)) for p in itertools.permutations(range(5), 4))
        assert sum(float(t[j, e]) for j, e in enumerate(out.tolist())) == pytest.approx(best)
    # empty clusters (inf rows) still get distinct experts
    t = torch.tensor([[0.1, 0.2, 0.3], [float("inf")] * 3, [0.3, 0.1, 0.2]])
    assert sorted(hungarian_assignment(t).tolist()) == [0, 1, 2]


def test_hungarian_update_recovers_planted_clusters():
    contexts, truth, perm, losses = _planted(3)
    gate = LeastSquaresGate(context_dim=contexts.shape[1], num_experts=3)
    res = kmeans_least_squares_update(gate, contexts, losses, GateUpdateConfig(assignment="hungarian"),
                                      torch.Generator().manual_seed(0))
    assert torch.equal(res.target, perm[truth]) and res.agreement == 1.0


def test_standardized_kmeans_ignores_one_high_variance_direction():
    g = torch.Generator().manual_seed(0)
    truth = torch.arange(3).repeat_interleave(15)
    centres = torch.randn(3, 6, generator=g)
    informative = centres[truth] + 0.05 * torch.randn(45, 6, generator=g)
    loud = 10.0 * torch.randn(45, 1, generator=g)  # carries no cluster information
    contexts = torch.cat([informative, loud], 1)
    losses = torch.ones(45, 3)
    raw = kmeans_least_squares_update(LeastSquaresGate(7, 3), contexts, losses, GateUpdateConfig(),
                                      torch.Generator().manual_seed(0))
    std = kmeans_least_squares_update(LeastSquaresGate(7, 3), contexts, losses, GateUpdateConfig(standardize=True),
                                      torch.Generator().manual_seed(0))
    assert adjusted_rand_index(truth, raw.clusters) < 0.5
    assert adjusted_rand_index(truth, std.clusters) == 1.0
    # centroids are stored in the raw context space (the next warm start)
    for j in range(3):
        assert torch.allclose(std.centroids[j], contexts[std.clusters == j].double().mean(0), atol=1e-9)


def test_reassign_moves_environments_to_their_lowest_loss_expert():
    contexts, truth, perm, losses = _planted(0)
    # environment 0 sits in cluster 0's context region but expert perm[2] fits it far better
    losses[0] = 1.0
    losses[0, perm[2]] = 0.01
    cfg = GateUpdateConfig(reassign=True)
    res = kmeans_least_squares_update(LeastSquaresGate(contexts.shape[1], 3), contexts, losses, cfg,
                                      torch.Generator().manual_seed(0))
    assert int(res.target[0]) == int(perm[2])
    assert torch.equal(res.target[1:], perm[truth][1:])
    # the paper's target keeps it with its cluster
    plain = kmeans_least_squares_update(LeastSquaresGate(contexts.shape[1], 3), contexts, losses, GateUpdateConfig(),
                                        torch.Generator().manual_seed(0))
    assert int(plain.target[0]) == int(perm[0])
    # identical experts (equal losses, e.g. right after the warm-up): nobody moves
    same = kmeans_least_squares_update(LeastSquaresGate(contexts.shape[1], 3), contexts, torch.ones(len(truth), 3), cfg,
                                       torch.Generator().manual_seed(0))
    assert adjusted_rand_index(truth, same.target) == 1.0
    with pytest.raises(ValueError, match="reassign_margin"):
        GateUpdateConfig(reassign_margin=1.5)


def test_relocate_moves_a_reassigned_context_into_its_new_cluster():
    contexts, truth, perm, losses = _planted(0)
    losses[0] = 1.0
    losses[0, perm[2]] = 0.01  # environment 0 (true cluster 0) is fitted best by cluster 2's expert
    ctx = contexts.clone()
    gate = LeastSquaresGate(contexts.shape[1], 3)
    cfg = GateUpdateConfig(reassign=True, relocate=True)
    res = kmeans_least_squares_update(gate, ctx, losses, cfg, torch.Generator().manual_seed(0))
    assert int(res.target[0]) == int(perm[2]) and int(res.routed[0]) == int(perm[2])
    assert torch.equal(ctx[1:], contexts[1:])  # nobody else moved
    # moved by the difference of the two clusters' centroids: its offset within the cluster is kept
    own = contexts[truth == 0].double().mean(0)
    new = contexts[truth == 2].double().mean(0)
    assert torch.allclose((ctx[0] - contexts[0]).double(), new - own, atol=1e-4)
    # the next (plain) K-means keeps it in its new cluster
    again = kmeans_least_squares_update(gate, ctx, losses, GateUpdateConfig(), torch.Generator().manual_seed(1))
    assert int(again.clusters[0]) == int(again.clusters[truth == 2][1])
