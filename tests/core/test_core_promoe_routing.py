"""ProMoE's router features in the core, against independent per-token fp64 references.

Prototype router gates (identity / sigmoid / softmax, scale, renormalisation, init std), the
centroid routing contrastive loss (value and gradients), conditional pre-routing composed with
any router, and expert choice within groups (never across samples).
"""

import math

import pytest
import torch
import torch.nn.functional as F

from moesuite.core import losses, routers
from moesuite.core.routers import ConditionalRouter, ExpertChoiceRouter, PrototypeRouter
from moesuite.core.routers.conditional import preroute

D, E = 8, 5


# -- independent references (one token / one expert at a time, fp64) -----------------------
def ref_prototype(x, protos, k, gate, temperature, scale, normalize):
    """Per token: cosine to each prototype, top-k, gate activation, scale; dense [T, E] gates."""
    T = x.shape[0]
    dense = torch.zeros(T, protos.shape[0], dtype=torch.float64)
    for t in range(T):
        sims = [x[t] @ protos[e] / (x[t].norm() * protos[e].norm()) for e in range(len(protos))]
        s = torch.stack(sims) / temperature
        if gate == "softmax":
            act = torch.exp(s) / torch.exp(s).sum()
        elif gate == "sigmoid":
            act = 1 / (1 + torch.exp(-s))
        else:
            act = s
        chosen = sorted(range(len(sims)), key=lambda e: -float(sims[e]))[:k]
        g = torch.stack([act[e] for e in chosen])
        if normalize:
            g = g / g.sum()
        for e, v in zip(chosen, g, strict=True):
            dense[t, e] = scale * v
    return dense


def ref_centroid_loss(tokens, protos, assign, temperature):
    """Eq. 6 by loops: centroids of the experts that got tokens, one cross-entropy per expert."""
    experts = [e for e in range(protos.shape[0]) if any(e in row for row in assign.tolist())]
    if len(experts) < 2:
        return tokens.sum() * 0
    cents = []
    for e in experts:
        rows = [t for t, row in enumerate(assign.tolist()) if e in row]
        cents.append(torch.stack([tokens[t] for t in rows]).mean(0))
    total = 0
    for i, e in enumerate(experts):
        p = protos[e] / protos[e].norm()
        logits = torch.stack([p @ (c / c.norm()) for c in cents]) / temperature
        total = total - (logits[i] - torch.logsumexp(logits, 0))
    return total / len(experts)


# -- prototype router -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "gate,k,scale,normalize",
    [
        ("identity", 1, 1.0, False),
        ("identity", 2, 2.0, False),
        ("sigmoid", 1, 1.0, False),
        ("sigmoid", 2, 1.5, True),
        ("softmax", 1, 1.0, False),
        ("softmax", 3, 1.0, True),
    ],
)
def test_prototype_gates_and_plan_match_the_per_token_reference(gate, k, scale, normalize):
    torch.manual_seed(0)
    r = PrototypeRouter(D, E, k=k, gate=gate, temperature=0.7, scale=scale, normalize=normalize)
    x = torch.randn(40, D)
    out = r(x)
    ref = ref_prototype(x.double(), r.weight.detach().double(), k, gate, 0.7, scale, normalize)
    torch.testing.assert_close(out.plan.to_dense().double(), ref, atol=1e-5, rtol=1e-5)
    assert torch.equal(out.plan.experts_per_token(), torch.full((40,), k))
    if gate == "identity":  # the raw cosine: it may be negative and is never renormalised
        assert bool((out.plan.weight < 0).any()) or k == 1


def test_identity_gate_gradient_reaches_the_prototypes_like_the_reference():
    torch.manual_seed(1)
    r = PrototypeRouter(D, E, k=1, gate="identity", temperature=1.0, normalize=False)
    x = torch.randn(30, D, dtype=torch.float64)
    w = torch.randn(30, dtype=torch.float64)
    (r(x).plan.to_dense().double().sum(1) * w).sum().backward()
    protos = r.weight.detach().double().clone().requires_grad_(True)
    ref = ref_prototype(x, protos, 1, "identity", 1.0, 1.0, False)
    (ref.sum(1) * w).sum().backward()
    torch.testing.assert_close(r.weight.grad.double(), protos.grad, atol=1e-5, rtol=1e-4)


def test_prototype_options_and_defaults():
    torch.manual_seed(0)
    r = PrototypeRouter(64, 200, init_std=0.02)
    assert abs(float(r.weight.std()) - 0.02) < 0.002
    assert PrototypeRouter(D, E).gate == "softmax"  # the old behaviour stays the default
    assert PrototypeRouter(D, E, k=2, gate="identity").normalize is False
    with pytest.raises(ValueError, match="gate must be one of"):
        PrototypeRouter(D, E, gate="relu")
    with pytest.raises(ValueError, match="cannot be renormalised"):
        PrototypeRouter(D, E, gate="identity", normalize=True)
    with pytest.raises(ValueError, match="contrastive must be one of"):
        PrototypeRouter(D, E, contrastive="sample")
    with pytest.raises(ValueError, match="init_std must be > 0"):
        PrototypeRouter(D, E, init_std=0.0)


# -- centroid contrastive loss ----------------------------------------------------------------
@pytest.mark.parametrize("topk", [False, True])
def test_centroid_contrastive_loss_value_and_gradients_match_the_reference(topk):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(25, D, generator=g, dtype=torch.float64, requires_grad=True)
    protos = torch.randn(E, D, generator=g, dtype=torch.float64, requires_grad=True)
    assign = torch.randint(0, E - 1, (25, 2) if topk else (25,), generator=g)  # expert 4 empty
    value = losses.centroid_contrastive_loss(tokens, protos, assign, temperature=0.07)
    value.backward()
    grads = tokens.grad.clone(), protos.grad.clone()
    tokens.grad, protos.grad = None, None
    a = assign if topk else assign[:, None]
    ref = ref_centroid_loss(tokens, protos, a, 0.07)
    ref.backward()
    assert float(value) == pytest.approx(float(ref), rel=1e-5)
    torch.testing.assert_close(grads[0].double(), tokens.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(grads[1].double(), protos.grad, atol=1e-5, rtol=1e-4)
    assert float(protos.grad[E - 1].abs().sum()) == 0  # an expert without tokens is left out


def test_centroid_contrastive_loss_limits():
    protos = torch.eye(3)
    tokens = torch.eye(3).repeat(4, 1)
    assign = torch.arange(3).repeat(4)
    tight = losses.centroid_contrastive_loss(tokens * 5, protos, assign, temperature=0.01)
    assert float(tight) < 1e-6
    one = losses.centroid_contrastive_loss(tokens, protos, torch.zeros(12, dtype=torch.long))
    assert float(one) == 0  # fewer than two experts with tokens: nothing to contrast
    flat = losses.centroid_contrastive_loss(torch.ones(6, 3), protos, torch.tensor([0, 1] * 3))
    assert float(flat) == pytest.approx(math.log(2))


def test_router_contrastive_options_give_the_two_losses():
    torch.manual_seed(0)
    x = torch.randn(20, D)
    r = PrototypeRouter(D, E, contrastive="centroid", contrastive_temperature=0.07,
                        contrastive_weight=1.0, lb_weight=0.0)  # fmt: skip
    out = r(x)
    idx = out.plan.to_dense().abs().argmax(1)
    expected = losses.centroid_contrastive_loss(x, r.weight, idx, 0.07)
    assert float(out.aux["contrastive"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(out.aux_loss) == pytest.approx(float(expected), rel=1e-5)  # lb weight 0
    token = PrototypeRouter(D, E, temperature=0.5)
    tout = token(x)
    sim = token.similarity(x)
    ref = F.cross_entropy(sim / 0.5, sim.argmax(1))
    assert float(tout.aux["contrastive"]) == pytest.approx(float(ref), rel=1e-5)


# -- conditional pre-routing --------------------------------------------------------------------
@pytest.mark.parametrize("inner_name", ["prototype", "topk", "expert_choice"])
def test_preroute_sends_every_null_token_to_the_unconditional_expert_only(inner_name):
    torch.manual_seed(0)
    cfg = {"expert_choice": {"capacity_factor": 1.0}}.get(inner_name, {"k": 1})
    inner = routers.create(inner_name, d_model=D, num_experts=E, **cfg)
    r = ConditionalRouter(inner, num_fixed=1)
    x = torch.randn(6 * 7, D)  # 6 samples of 7 tokens
    null_sample = torch.tensor([True, False, False, True, False, True])
    mask = null_sample.repeat_interleave(7)
    out = r(x, mask=mask)
    dense = out.plan.to_dense()
    assert out.plan.num_experts == E + 1
    # every null token: exactly one assignment, to expert E, gate 1
    assert torch.equal(dense[mask], torch.eye(E + 1)[E].expand(int(mask.sum()), -1))
    # no other token reaches the unconditional expert
    assert float(dense[~mask, E].abs().sum()) == 0
    # the other tokens are routed exactly as the router routes them on its own
    alone = inner(x[~mask]).plan.to_dense()
    torch.testing.assert_close(dense[~mask, :E], alone)
    assert torch.equal(out.probs[mask, E], torch.ones(int(mask.sum())))


def test_preroute_carries_the_routers_gradients_and_aux_for_routed_tokens_only():
    torch.manual_seed(0)
    inner = PrototypeRouter(
        D, E, k=1, gate="identity", temperature=1.0, contrastive="centroid", lb_weight=0.0
    )
    r = ConditionalRouter(inner)
    x = torch.randn(12, D, requires_grad=True)
    mask = torch.tensor([True] * 4 + [False] * 8)
    out = r(x, mask=mask)
    out.plan.weight.sum().backward()
    assert float(x.grad[:4].abs().sum()) == 0 and float(x.grad[4:].abs().sum()) > 0
    expected = inner(x[4:].detach()).aux["contrastive"]
    assert float(out.aux["contrastive"]) == pytest.approx(float(expected), rel=1e-6)


def test_preroute_edge_cases_and_integer_targets():
    torch.manual_seed(0)
    inner = routers.create("topk", d_model=D, num_experts=E, k=2)
    r = ConditionalRouter(inner, num_fixed=2)
    x = torch.randn(5, D)
    everything = r(x, mask=torch.ones(5, dtype=torch.bool)).plan
    assert everything.counts.tolist() == [0] * E + [5, 0]
    nothing = r(x).plan
    assert nothing.counts[E:].tolist() == [0, 0] and nothing.num_assignments == 10
    target = torch.tensor([-1, 1, 0, -1, 1])
    plan = r(x, mask=target).plan.to_dense()
    assert plan[1, E + 1] == 1 and plan[4, E + 1] == 1 and plan[2, E] == 1
    with pytest.raises(ValueError, match=r"mask must be a \[T=5\]"):
        r(x, mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="fixed expert in"):
        r(x, mask=torch.tensor([0, 2, -1, -1, -1]))
    with pytest.raises(TypeError, match="router must be a moesuite Router"):
        ConditionalRouter(torch.nn.Linear(2, 2))


def test_preroute_function_keeps_gates_and_positions():
    from moesuite.core.routing import RoutingPlan

    gates = torch.tensor([[0.5], [-0.2], [0.9]], dtype=torch.float64)
    routed = RoutingPlan.from_topk(torch.tensor([[2], [0], [1]]), gates, 3)
    target = torch.tensor([0, -1, -1, 0, -1])
    plan = preroute(routed, torch.tensor([1, 2, 4]), target, num_fixed=1)
    expected = [[0, 0, 0, 1], [0, 0, 0.5, 0], [-0.2, 0, 0, 0], [0, 0, 0, 1], [0, 0.9, 0, 0]]
    assert plan.to_dense().tolist() == expected


# -- expert choice within groups -------------------------------------------------------------
def test_expert_choice_groups_never_cross_samples_and_match_per_sample_routing():
    torch.manual_seed(0)
    S, G = 9, 4
    r = ExpertChoiceRouter(D, 3, capacity_factor=1.0, group_size=S, z_weight=0.0)
    x = torch.randn(G * S, D)
    plan = r(x).plan
    C = math.ceil(S / 3)
    assert plan.num_assignments == G * 3 * C
    for g in range(G):
        in_group = (plan.token_idx // S) == g
        assert torch.equal(torch.bincount(plan.expert_idx[in_group], minlength=3),
                           torch.full((3,), C))  # fmt: skip
        # the group's routing is the router's routing of that sample alone
        alone = ExpertChoiceRouter(D, 3, capacity_factor=1.0)
        alone.weight = r.weight
        torch.testing.assert_close(
            plan.to_dense()[g * S : (g + 1) * S], alone(x[g * S : (g + 1) * S]).plan.to_dense()
        )
    # changing one sample never changes another sample's routing
    x2 = x.clone()
    x2[:S] = torch.randn(S, D)
    torch.testing.assert_close(r(x2).plan.to_dense()[S:], plan.to_dense()[S:])
    with pytest.raises(ValueError, match="multiple of 9 tokens"):
        r(torch.randn(10, D))
    with pytest.raises(ValueError, match="group_size must be a positive int"):
        ExpertChoiceRouter(D, 3, group_size=0)
