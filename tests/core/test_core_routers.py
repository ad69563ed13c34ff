"""Routers: shapes, gate sums, causality, balance, aux-free bias, learning, bad input."""

import math

import pytest
import torch
from torch import nn

from moesuite.core import MoELayer, routers
from moesuite.core.experts import GroupedExperts
from moesuite.core.stats import load_imbalance

D, E = 12, 4

# per-router settings giving 1-2 experts per token
CONFIGS = {
    "topk": {"k": 2},
    "noisy_topk": {"k": 2},
    "expert_choice": {"capacity_factor": 2.0},
    "sinkhorn": {"k": 2},
    "topp": {"p": 0.5},
    "recurrent": {"k": 2, "hidden_dim": 8},
    "prototype": {"k": 2, "temperature": 0.5},
    "uncertainty": {"k": 2, "base": "topk", "samples": 3, "dropout": 0.1},
}


def make(name, **over):
    return routers.create(name, d_model=D, num_experts=E, **{**CONFIGS[name], **over})


def test_every_registered_router_is_covered():
    assert sorted(CONFIGS) == routers.list_routers()


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_shapes_and_plan_invariants(name, mode):
    torch.manual_seed(0)
    r = make(name).train(mode == "train")
    x = torch.randn(20, D)
    out = r(x)
    plan = out.plan
    assert out.logits.shape == (20, E) and out.probs.shape == (20, E)
    assert out.logits.dtype == torch.float32
    assert plan.num_tokens == 20 and plan.num_experts == E
    assert torch.all(plan.expert_idx[1:] >= plan.expert_idx[:-1]), "plan must be sorted by expert"
    assert plan.expert_offsets[-1] == plan.num_assignments
    assert torch.equal(plan.counts, torch.bincount(plan.expert_idx, minlength=E))
    # a token never gets the same expert twice
    pairs = plan.token_idx * E + plan.expert_idx
    assert pairs.unique().numel() == pairs.numel()
    assert torch.all(plan.weight >= 0)
    for value in out.aux.values():
        assert value.dim() == 0 and torch.isfinite(value)
    assert torch.isfinite(out.aux_loss)


@pytest.mark.parametrize("name", ["topk", "noisy_topk", "recurrent", "prototype"])
def test_renormalised_gates_sum_to_one(name):
    out = make(name).eval()(torch.randn(30, D))
    assert torch.allclose(out.plan.to_dense().sum(1), torch.ones(30), atol=1e-6)
    assert torch.equal(out.plan.experts_per_token(), torch.full((30,), 2))


def test_topk_unnormalised_gates_are_the_probabilities():
    r = make("topk", k=1)
    out = r.eval()(torch.randn(10, D))
    dense = out.plan.to_dense()
    assert torch.allclose(dense.sum(1), out.probs.max(1).values)


def test_sigmoid_gating_with_scale():
    r = make("topk", gating="sigmoid", scale=2.5)
    out = r.eval()(torch.randn(10, D))
    assert torch.allclose(out.plan.to_dense().sum(1), torch.full((10,), 2.5), atol=1e-5)
    assert torch.all((out.probs > 0) & (out.probs < 1))


def test_topp_takes_the_smallest_prefix_reaching_p():
    r = make("topp", p=0.5)
    out = r.eval()(torch.randn(50, D) * 3)
    dense = out.plan.to_dense()
    for t in range(50):
        probs, order = torch.sort(out.probs[t], descending=True)
        n = int(out.plan.experts_per_token()[t])
        assert probs[: n - 1].sum() < 0.5 <= probs[:n].sum() + 1e-6
        assert set(dense[t].nonzero().flatten().tolist()) == set(order[:n].tolist())
        assert torch.allclose(dense[t].sum(), probs[:n].sum())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_eval_routing_of_a_token_depends_on_that_token_only(name):
    torch.manual_seed(1)
    r = make(name).eval()
    x = torch.randn(16, D)
    dense_all = r(x).plan.to_dense()
    dense_each = torch.cat([r(x[t : t + 1]).plan.to_dense() for t in range(16)])
    same = torch.allclose(dense_all, dense_each, atol=1e-6)
    assert r.causal is (name != "expert_choice")
    assert same is r.causal, f"{name}: causal={r.causal} but per-token routing same={same}"


def test_sinkhorn_balances_skewed_tokens_in_training():
    torch.manual_seed(0)
    r = make("sinkhorn", k=1, n_iter=30)
    x = torch.randn(512, D) + 3 * r.weight[0].detach()  # every token prefers expert 0
    skewed = load_imbalance(r.eval()(x).plan.counts)
    balanced = load_imbalance(r.train()(x).plan.counts)
    assert skewed > 2.5
    assert balanced < 1.3


def test_log_sinkhorn_marginals_and_no_overflow():
    from moesuite.core.routers.sinkhorn import log_sinkhorn

    torch.manual_seed(0)
    z = torch.randn(64, E) * 50 + 100  # exp(z) would overflow fp32
    P = log_sinkhorn(z, n_iter=100).exp()
    assert torch.isfinite(P).all()
    # the last half-step fixes the columns exactly; rows converge more slowly at such extremes
    assert torch.allclose(P.sum(0), torch.full((E,), 1 / E), atol=1e-5)
    assert torch.allclose(P.sum(1), torch.full((64,), 1 / 64), rtol=0.03)


def test_aux_free_bias_reduces_imbalance_on_a_skewed_stream():
    torch.manual_seed(0)
    r = routers.create("topk", d_model=D, num_experts=8, k=2, aux_free=True, bias_gamma=0.01)
    r.eval()
    direction = r.weight[3].detach()

    def batch():
        return torch.randn(256, D) + 1.5 * direction  # expert 3 is everybody's favourite

    before = load_imbalance(r(batch()).plan.counts)
    for _ in range(300):
        r.balancer.update(r(batch()).plan.counts)
    after = sum(load_imbalance(r(batch()).plan.counts) for _ in range(5)) / 5
    assert before > 2.0
    assert after < 1.4 and after < before / 2
    # the bias steers selection only: gates are still the softmax of the logits
    out = r(batch())
    dense = out.plan.to_dense()
    sel = dense > 0
    p = out.probs * sel
    assert torch.allclose(dense, p / p.sum(1, keepdim=True), atol=1e-6)
    assert not r.balancer.bias.requires_grad and "balancer.bias" in dict(r.named_buffers())


def test_recurrent_router_shares_its_gru_and_passes_state():
    first = make("recurrent")
    second = routers.create("recurrent", d_model=D, num_experts=E, k=2, hidden_dim=8, gru=first.gru)
    x = torch.randn(6, D)
    s1 = first(x).state
    out = second(x, state=s1)
    assert out.state.shape == (6, 8)
    assert not torch.allclose(out.logits, second(x).logits), "state must change the routing"
    params = {id(p) for p in nn.ModuleList([first, second]).parameters()}
    assert len(params) == len(list(first.parameters())) + len(list(second.parameters())) - len(
        list(first.gru.parameters())
    )
    with pytest.raises(ValueError, match="state must be"):
        second(x, state=torch.zeros(5, 8))


def test_noisy_topk_load_loss_is_differentiable():
    r = make("noisy_topk").train()
    out = r(torch.randn(64, D))
    out.aux["load"].backward()
    assert r.noise_weight.grad is not None and r.noise_weight.grad.abs().sum() > 0


class _MoERegressor(nn.Module):
    """Linear experts (identity activation): one expert alone can only fit a linear map."""

    def __init__(self, router):
        super().__init__()
        self.layer = MoELayer(
            router, GroupedExperts(router.num_experts, D, D, activation="identity")
        )

    def forward(self, x):
        return self.layer(x)[0]


def _piecewise_task(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g)
    A = torch.randn(D, D, generator=g) / math.sqrt(D)
    B = torch.randn(D, D, generator=g) / math.sqrt(D)
    y = torch.where(x[:, :1] > 0, x @ A, x @ B)  # two linear regimes split by a hyperplane
    return x, y


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_tiny_moe_learns_what_no_single_expert_can(name):
    torch.manual_seed(0)
    x, y = _piecewise_task(512, seed=0)
    # the best any single linear expert can do (least squares)
    sol = torch.linalg.lstsq(x, y).solution
    single_mse = float(((x @ sol - y) ** 2).mean())
    # k=1 where the gate still carries a gradient;
    # noisy top-k needs k >= 2 (softmax of one value is 1)
    over = {"k": 1} if name in ("topk", "recurrent", "prototype", "sinkhorn") else {"k": 2}
    if name == "expert_choice":
        over = {"capacity_factor": 1.0}
    if name == "topp":
        over = {"p": 0.3}
    model = _MoERegressor(make(name, **over))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(400):
        opt.zero_grad()
        out_y, out = model.layer(x)
        loss = ((out_y - y) ** 2).mean() + out.aux_loss
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        moe_mse = float(((model(x) - y) ** 2).mean())
    assert moe_mse < 0.35 * single_mse, (name, moe_mse, single_mse)


def test_bad_inputs_raise_one_clear_error():
    with pytest.raises(ValueError, match="unknown router 'top_k'.*expected one of"):
        routers.create("top_k", d_model=D, num_experts=E)
    with pytest.raises(ValueError, match="k=5 is larger than num_experts=4"):
        routers.create("topk", d_model=D, num_experts=E, k=5)
    r = make("topk")
    with pytest.raises(ValueError, match=r"x must have shape \[T, d_model=12\]"):
        r(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"x must have shape \[T, d_model=12\]"):
        r(torch.randn(2, 3, D))
    with pytest.raises(TypeError, match="floating-point"):
        r(torch.ones(3, D, dtype=torch.long))
    x = torch.randn(3, D)
    x[1, 2] = float("nan")
    with pytest.raises(FloatingPointError, match="router logits contain NaN"):
        r(x)
    with pytest.raises(ValueError, match="gating must be one of"):
        routers.create("topk", d_model=D, num_experts=E, gating="relu")
    with pytest.raises(ValueError, match="p must be in"):
        routers.create("topp", d_model=D, num_experts=E, p=1.5)


def test_create_ignores_none_overrides():
    r = routers.create("topk", d_model=D, num_experts=E, k=None, gating=None)
    assert r.k == 2 and r.gating == "softmax"
