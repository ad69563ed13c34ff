"""Straight-through hard top-k in the core router (``TopKRouter(straight_through=True)``)."""

from __future__ import annotations

import pytest
import torch

from moesuite.core import routers


def _router(**cfg):
    torch.manual_seed(0)
    base = {"d_model": 6, "num_experts": 4, "k": 1, "straight_through": True}
    return routers.create("topk", **{**base, **cfg})


@pytest.mark.parametrize("k", [1, 2])
def test_forward_gates_are_exactly_one_on_the_chosen_experts(k):
    r = _router(k=k)
    x = torch.randn(9, 6)
    out = r(x)
    assert torch.equal(out.plan.weight, torch.ones(9 * k))
    soft = routers.create("topk", d_model=6, num_experts=4, k=k, normalize=False)
    soft.load_state_dict(r.state_dict())
    ref = soft(x)  # the same choice as the soft router's top-k
    assert torch.equal(out.plan.expert_idx, ref.plan.expert_idx)
    assert torch.equal(out.plan.token_idx, ref.plan.token_idx)


@pytest.mark.parametrize("gating", ["softmax", "sigmoid"])
def test_straight_through_gradient_matches_the_reference(gating):
    """d gate / d logits is the chosen score's gradient, written out by hand (no autograd)."""
    r = _router(gating=gating)
    x = torch.randn(7, 6, dtype=torch.float32)
    c = torch.randn(7)  # upstream gradient of each token's gate
    out = r(x)
    gate_of_token = torch.zeros(7).index_add(0, out.plan.token_idx, out.plan.weight)
    (gate_of_token * c).sum().backward()
    got = r.weight.grad.clone()

    z = (x @ r.weight.detach().t()).double()
    chosen = z.argmax(-1)
    onehot = torch.nn.functional.one_hot(chosen, 4).double()
    if gating == "softmax":
        p = z.softmax(-1)
        p_e = p.gather(-1, chosen[:, None])
        dgate_dz = p_e * (onehot - p)  # d p_e / d z_j = p_e (delta_ej - p_j)
    else:
        s = torch.sigmoid(z)
        dgate_dz = onehot * s * (1 - s)
    ref = (c.double()[:, None] * dgate_dz).t() @ x.double()  # chain rule through z = x W^T
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-6)


def test_straight_through_matches_the_soft_gate_gradient():
    """Same backward as the soft (unnormalised) router, different forward."""
    r = _router(k=2)
    soft = routers.create("topk", d_model=6, num_experts=4, k=2, normalize=False)
    soft.load_state_dict(r.state_dict())
    x = torch.randn(5, 6)
    g = torch.randn(10)
    for m in (r, soft):
        (m(x).plan.weight * g).sum().backward()
    torch.testing.assert_close(r.weight.grad, soft.weight.grad)


def test_straight_through_rejects_normalize():
    with pytest.raises(ValueError, match="normalize"):
        _router(k=2, normalize=True)
