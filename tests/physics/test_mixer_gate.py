"""MixER's gate: K-means + median-loss greedy assignment + least squares, without gradients."""

import pytest
import torch

from moesuite.physics.mixer import (
    GateUpdateConfig,
    LeastSquaresGate,
    adjusted_rand_index,
    greedy_assignment,
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
    losses[torch.arange(3 * per), perm[truth]] = 0.05 * torch.rand(
        3 * per, generator=g
    )  # ... but one
    return contexts, truth, perm, losses


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("recluster", [True, False])
def test_gate_update_recovers_planted_clusters(seed, recluster):
    contexts, truth, perm, losses = _planted(seed)
    gate = LeastSquaresGate(context_dim=contexts.shape[1], num_experts=3)
    res = kmeans_least_squares_update(
        gate,
        contexts,
        losses,
        GateUpdateConfig(recluster=recluster),
        torch.Generator().manual_seed(seed),
    )
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


def test_greedy_assignment_takes_the_lowest_loss_first():
    table = torch.tensor([[0.3, 0.2, 0.9], [0.1, 0.5, 0.6], [0.4, 0.45, 0.8]])
    # (1, 0) at 0.1 first, then (0, 1) at 0.2, then (2, 2)
    assert greedy_assignment(table).tolist() == [1, 0, 2]
    # global, not cluster by cluster: cluster 1's 0.1 wins expert 0 over cluster 0's 0.2
    assert greedy_assignment(torch.tensor([[0.2, 0.3], [0.1, 0.9]])).tolist() == [1, 0]
    # empty clusters (inf rows) still get distinct experts
    inf = float("inf")
    assert sorted(
        greedy_assignment(torch.tensor([[0.1, 0.2, 0.3], [inf] * 3, [0.3, 0.1, 0.2]])).tolist()
    ) == [0, 1, 2]
    with pytest.raises(ValueError, match="distinct experts"):
        greedy_assignment(torch.zeros(3, 2))


def test_kmeans_keeps_every_cluster_populated():
    x = torch.cat(
        [0.1 * torch.randn(10, 2, generator=torch.Generator().manual_seed(0)), torch.ones(1, 2) * 5]
    )
    # a warm start with two centroids far from every point: clusters get re-seeded
    labels, centroids = kmeans(
        x, 3, init=torch.tensor([[100.0, 100.0], [0.0, 0.0], [-100.0, -100.0]])
    )
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
    with pytest.raises(ValueError, match="kmeans_iters must be a positive int"):
        GateUpdateConfig(kmeans_iters=0)


@pytest.mark.parametrize("authors", [False, True])
def test_kmeans_abort_keeps_the_previous_gate(authors):
    contexts, truth, perm, losses = _planted(0)
    gate = LeastSquaresGate(context_dim=contexts.shape[1], num_experts=3)
    cfg = GateUpdateConfig(authors_abort=authors)
    kmeans_least_squares_update(gate, contexts, losses, cfg, torch.Generator().manual_seed(0))
    before = (gate.weight.clone(), gate.bias.clone())
    # all contexts still equal (as at the start of training, from zero): nothing to cluster
    same = torch.zeros_like(contexts)
    res = kmeans_least_squares_update(gate, same, losses, cfg, torch.Generator().manual_seed(1))
    assert res.aborted and torch.equal(gate.weight, before[0]) and torch.equal(gate.bias, before[1])
    assert not bool(gate.has_centroids)  # the next update restarts K-means
    # the gate still routes the real contexts as before the aborted update
    assert torch.equal(gate.compute_logits(contexts).argmax(-1), perm[truth])


def test_authors_kmeans_aborts_on_an_empty_cluster_and_ours_reseeds_it():
    x = torch.cat([torch.zeros(5, 2), torch.ones(5, 2), torch.full((1, 2), 2.5)])
    far = torch.tensor([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0]])  # the third centre gets no point
    assert kmeans(x, 3, init=far, restarts=0, abort=True) is None
    labels, _ = kmeans(x, 3, init=far, restarts=0)
    assert torch.bincount(labels, minlength=3).min() >= 1
    # without an empty cluster the authors' rule converges to the same partition
    labels_a, _ = kmeans(x[:10], 2, init=far[:2], restarts=0, abort=True)
    assert labels_a.tolist() == [0] * 5 + [1] * 5


def test_least_squares_gate_reproduces_a_known_assignment_on_separable_contexts():
    g = torch.Generator().manual_seed(3)
    E, per, C = 4, 6, 8
    centres = 4.0 * torch.randn(E, C, generator=g)
    assignment = torch.tensor([2, 0, 3, 1])  # cluster j -> expert assignment[j]
    clusters = torch.arange(E).repeat_interleave(per)
    contexts = centres[clusters] + 0.1 * torch.randn(E * per, C, generator=g)
    W, b = least_squares_gate(contexts, assignment[clusters], E)
    gate = LeastSquaresGate(context_dim=C, num_experts=E).set_weights(W.float(), b.float())
    routed = gate(contexts).plan
    assert torch.equal(routed.expert_idx[torch.argsort(routed.token_idx)], assignment[clusters])
    # and through the whole update: the median-loss table designates the same assignment
    losses = torch.ones(E * per, E)
    losses[torch.arange(E * per), assignment[clusters]] = 0.0
    gate2 = LeastSquaresGate(context_dim=C, num_experts=E)
    res = kmeans_least_squares_update(gate2, contexts, losses, generator=g)
    assert not res.aborted and torch.equal(res.routed, assignment[clusters])
