"""RoutingPlan: construction, ordering, slots, selection and validation."""

import pytest
import torch

from moesuite.core.routing import RoutingPlan


def test_from_topk_sorts_stably_by_expert():
    idx = torch.tensor([[2, 0], [0, 1], [2, 1]])
    w = torch.tensor([[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]])
    plan = RoutingPlan.from_topk(idx, w, 4)
    assert plan.expert_idx.tolist() == [0, 0, 1, 1, 2, 2]
    assert plan.token_idx.tolist() == [0, 1, 1, 2, 0, 2]
    assert plan.weight.tolist() == pytest.approx([0.4, 0.5, 0.5, 0.1, 0.6, 0.9])
    assert plan.expert_offsets.tolist() == [0, 2, 4, 6, 6]
    assert plan.counts.tolist() == [2, 2, 2, 0]
    assert torch.equal(plan.to_dense().sum(1), w.sum(1))


def test_variable_experts_per_token_and_slots():
    plan = RoutingPlan.from_assignments(
        torch.tensor([0, 0, 0, 2]),
        torch.tensor([3, 1, 2, 1]),
        torch.ones(4),
        num_experts=4,
        num_tokens=3,
    )
    assert plan.experts_per_token().tolist() == [3, 0, 1]
    slots = plan.slot_idx()
    addr = set(zip(plan.token_idx.tolist(), slots.tolist(), strict=True))
    assert addr == {(0, 0), (0, 1), (0, 2), (2, 0)}


def test_select_reports_drops():
    plan = RoutingPlan.from_topk(torch.tensor([[0], [0], [1]]), torch.ones(3, 1), 2)
    kept = plan.select(torch.tensor([True, False, True]))
    assert kept.num_assignments == 2 and kept.num_dropped == 1
    assert kept.drop_rate == pytest.approx(1 / 3)
    assert kept.expert_offsets.tolist() == [0, 1, 2]


def test_validation_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"expert_idx must be a \[T, k\]"):
        RoutingPlan.from_topk(torch.tensor([1, 2]), torch.ones(2), 3)
    with pytest.raises(ValueError, match="weight must have the shape of expert_idx"):
        RoutingPlan.from_topk(torch.tensor([[1, 2]]), torch.ones(2), 3)
    with pytest.raises(ValueError, match=r"expert_idx must lie in \[0, 2\]"):
        RoutingPlan.from_topk(torch.tensor([[1, 3]]), torch.ones(1, 2), 3)
    with pytest.raises(TypeError, match="expert_idx must be an integer tensor"):
        RoutingPlan.from_assignments(torch.tensor([0]), torch.tensor([0.0]), torch.ones(1), 2, 1)
    with pytest.raises(ValueError, match="token_idx must lie in"):
        RoutingPlan.from_assignments(torch.tensor([5]), torch.tensor([0]), torch.ones(1), 2, 2)
    with pytest.raises(ValueError, match="num_experts must be a positive int"):
        RoutingPlan.from_topk(torch.tensor([[0]]), torch.ones(1, 1), 0)
