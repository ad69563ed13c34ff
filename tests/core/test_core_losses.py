"""Router losses: reference values, invariants, dtype."""

import math

import pytest
import torch

from moesuite.core import losses


@pytest.mark.parametrize("k", [1, 2, 4])
def test_load_balancing_is_one_when_balanced_and_E_when_collapsed(k):
    T, E = 64, 8
    uniform = losses.load_balancing_loss(torch.full((T, E), 1 / E), torch.full((E,), T * k // E), k)
    assert float(uniform) == pytest.approx(1.0)
    probs = torch.zeros(T, E)
    probs[:, 0] = 1
    counts = torch.zeros(E)
    counts[0] = T * k
    assert float(losses.load_balancing_loss(probs, counts, k)) == pytest.approx(E)


def test_load_balancing_matches_switch_formula_and_gradient_goes_to_probs_only():
    torch.manual_seed(0)
    logits = torch.randn(10, 4, requires_grad=True)
    probs = logits.softmax(-1)
    counts = torch.tensor([4.0, 3.0, 2.0, 1.0], requires_grad=True)
    value = losses.load_balancing_loss(probs, counts, k=1)
    expected = 4 * ((counts.detach() / 10) * probs.detach().mean(0)).sum()
    assert torch.allclose(value, expected)
    value.backward()
    assert logits.grad is not None and counts.grad is None


def test_z_loss_value_and_fp32():
    z = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], dtype=torch.bfloat16)
    expected = (math.log(2) ** 2 + math.log(4) ** 2) / 2
    out = losses.router_z_loss(z)
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(expected, rel=1e-2)


def test_cv_squared_and_entropy():
    assert float(losses.cv_squared(torch.tensor([2.0, 2.0, 2.0]))) == 0
    assert float(losses.cv_squared(torch.tensor([1.0, 3.0]))) == pytest.approx(0.25)
    assert float(losses.cv_squared(torch.tensor([5.0]))) == 0
    assert float(losses.routing_entropy(torch.full((3, 4), 0.25))) == pytest.approx(math.log(4))
    assert float(losses.routing_entropy(torch.eye(4))) == pytest.approx(0.0, abs=1e-6)
    gates = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert float(losses.importance_loss(gates)) == pytest.approx(1.0)


def test_routing_contrastive_loss_prefers_tight_clusters():
    assign = torch.tensor([0, 1, 2])
    tight = torch.tensor([[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]])
    flat = torch.zeros(3, 3)
    assert float(losses.routing_contrastive_loss(flat, assign)) == pytest.approx(math.log(3))
    assert float(losses.routing_contrastive_loss(tight, assign)) < 1e-3


def test_empty_inputs_give_zero():
    assert float(losses.router_z_loss(torch.zeros(0, 4))) == 0
    assert float(losses.routing_entropy(torch.zeros(0, 4))) == 0
    assert float(losses.load_balancing_loss(torch.zeros(0, 4), torch.zeros(4), 1)) == 0
