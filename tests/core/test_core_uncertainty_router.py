"""The uncertainty-aware router (UaR): MC-dropout passes in training, one pass in eval."""

import math

import pytest
import torch

from moesuite.core import GroupedExperts, MoELayer, routers
from moesuite.core.routers import UncertaintyRouter
from moesuite.core.routers.uncertainty import UncertainRouterOutput
from moesuite.core.testing import assert_aux_consumed


def _router(**kw):
    torch.manual_seed(0)
    cfg = {"k": 2, "samples": 4, "dropout": 0.2} | kw
    return routers.create("uncertainty", d_model=6, num_experts=5, **cfg)


def test_eval_is_one_deterministic_pass_of_the_inner_router():
    r = _router().eval()
    x = torch.randn(9, 6)
    a, b = r(x), r(x)
    assert isinstance(a, UncertainRouterOutput)
    assert torch.equal(a.plan.to_dense(), b.plan.to_dense()) and torch.equal(a.probs, b.probs)
    assert torch.count_nonzero(a.uncertainty) == 0
    plain = r.inner(x)
    assert torch.equal(a.plan.to_dense(), plain.plan.to_dense())
    assert torch.equal(a.logits, plain.logits)


def test_variance_is_zero_only_when_dropout_is_off():
    x = torch.randn(12, 6)
    off = _router(dropout=0.0).train()
    out = off(x)
    assert torch.count_nonzero(out.uncertainty) == 0
    # no dropout: every pass is the plain router, so the gates are its softmax exactly
    plain = off.inner(x)
    torch.testing.assert_close(out.probs, plain.probs, rtol=1e-6, atol=1e-7)
    on = _router(dropout=0.2).train()
    u = on(x).uncertainty
    assert u.shape == (12,) and bool((u > 0).all())
    assert float(on(x).aux["routing_uncertainty"]) > 0
    assert on(x).aux_weights.get("routing_uncertainty", 0.0) == 0.0  # a statistic, not a loss


def test_matches_a_reference_computation():
    K, p, k, temper = 4, 0.25, 2, math.pi / 8
    r = _router(samples=K, dropout=p).train()
    x = torch.randn(7, 6)
    torch.manual_seed(123)
    out = r(x)
    torch.manual_seed(123)
    keep = (torch.rand(K, 7, 6) >= p).float()
    xs = x.unsqueeze(0) * keep / (1 - p)  # [K, T, d]
    z = xs.double() @ r.inner.weight.double().t()  # [K, T, E]
    probs_s = z.softmax(-1)
    var = z.var(0, unbiased=True).mean(-1)  # [T]
    p_mean = probs_s.mean(0)
    logits = torch.log(p_mean) / torch.sqrt(1 + temper * var).unsqueeze(-1)
    probs = logits.softmax(-1)
    top = probs.topk(k, -1)
    gates = torch.zeros_like(probs).scatter(-1, top.indices, top.values / top.values.sum(-1, True))
    torch.testing.assert_close(out.uncertainty.double(), var, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out.logits.double(), logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.plan.to_dense().double(), gates, rtol=1e-4, atol=1e-6)
    # uncertain tokens get flatter routing: the tempered distribution has more entropy
    ent = lambda q: -(q * q.log()).sum(-1)  # noqa: E731
    assert bool((ent(probs) >= ent(p_mean) - 1e-9).all())


def test_gradients_and_aux_losses_reach_the_inner_router():
    torch.manual_seed(0)
    layer = MoELayer(_router(), GroupedExperts(5, 6, 8)).train()
    x = torch.randn(10, 6)

    def step():
        y, routing = layer(x)
        return y.pow(2).mean() + routing.aux_loss

    assert assert_aux_consumed(layer, step) >= 2
    assert layer.router.inner.weight.grad is not None
    assert float(layer.router.inner.weight.grad.abs().sum()) > 0


def test_wraps_an_instance_and_rejects_what_it_cannot_wrap():
    inner = routers.create("topk", d_model=6, num_experts=5, k=1)
    r = UncertaintyRouter(6, 5, base=inner, samples=3)
    assert r.inner is inner and r.k == 1 and "uncertainty" in routers.list_routers()
    with pytest.raises(ValueError, match="token-choice"):
        UncertaintyRouter(6, 5, base="expert_choice")
    with pytest.raises(ValueError, match="samples"):
        UncertaintyRouter(6, 5, samples=0)
    with pytest.raises(ValueError, match="dropout"):
        UncertaintyRouter(6, 5, dropout=1.0)
    with pytest.raises(ValueError, match="num_experts"):
        UncertaintyRouter(6, 4, base=inner)
