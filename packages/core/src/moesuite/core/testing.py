"""Helpers shared by the test suites of every package (kept in library code, not conftest).

Examples:
    >>> plan = random_plan(num_tokens=5, num_experts=4, k=2, empty_experts=(1,), seed=0)
    >>> int(plan.counts[1]), plan.num_assignments
    (0, 10)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from moesuite.core.aux_audit import AuxLossAudit
from moesuite.core.backends.base import ExpertWeights
from moesuite.core.experts import GroupedExperts
from moesuite.core.reference import reference_expert_mlp
from moesuite.core.routing import RoutingPlan

__all__ = ["random_plan", "compare_with_reference", "assert_aux_consumed"]


def random_plan(
    num_tokens: int,
    num_experts: int,
    k: int,
    empty_experts: Sequence[int] = (),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> RoutingPlan:
    """A top-k plan with random distinct experts per token (never using ``empty_experts``)."""
    g = torch.Generator().manual_seed(seed)
    allowed = torch.tensor([e for e in range(num_experts) if e not in set(empty_experts)])
    if k > allowed.numel():
        raise ValueError(f"k={k} needs at least {k} non-empty experts, got {allowed.numel()}.")
    scores = torch.rand(num_tokens, allowed.numel(), generator=g)
    idx = allowed[torch.topk(scores, k, dim=-1).indices]
    w = torch.rand(num_tokens, k, generator=g, dtype=torch.float64) + 0.1
    return RoutingPlan.from_topk(idx, (w / w.sum(-1, keepdim=True)).to(dtype), num_experts)


def compare_with_reference(
    experts: GroupedExperts, x: torch.Tensor, plan: RoutingPlan, seed: int = 0
) -> dict[str, float]:
    """Max-abs differences of output and of every gradient between ``experts`` and the fp64 oracle.

    The loss is ``(y * G).sum()`` with a fixed random ``G``; gradients are taken w.r.t. ``x``,
    the gates (``plan.weight``) and every expert parameter. Returns ``{"y": ..., "x": ...,
    "gates": ..., "w_in": ..., "w_out": ..., ["b_in", "b_out"]}``.
    """
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(x.shape[0], experts.d_model, generator=g, dtype=torch.float64)

    x_f = x.detach().clone().requires_grad_(True)
    gates_f = plan.weight.detach().clone().requires_grad_(True)
    experts.zero_grad(set_to_none=True)
    y_f = experts(x_f, plan.with_weight(gates_f))
    (y_f.double() * G).sum().backward()

    params = {name: p for name, p in experts.named_parameters()}
    ref_params = {
        name: p.detach().double().clone().requires_grad_(True) for name, p in params.items()
    }
    x_r = x.detach().double().clone().requires_grad_(True)
    gates_r = plan.weight.detach().double().clone().requires_grad_(True)
    weights = ExpertWeights(
        ref_params["w_in"],
        ref_params["w_out"],
        ref_params.get("b_in"),
        ref_params.get("b_out"),
        experts.activation,
        experts.glu,
    )
    y_r = reference_expert_mlp(x_r, plan.with_weight(gates_r), weights)
    (y_r * G).sum().backward()

    def diff(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
        if a is None and b is None:
            return 0.0
        if a is None or b is None:  # one side produced no gradient: compare with zeros
            other = b if a is None else a
            return float(other.detach().abs().max()) if other.numel() else 0.0
        return float((a.detach().double() - b.detach().double()).abs().max()) if a.numel() else 0.0

    out = {
        "y": diff(y_f, y_r),
        "x": diff(x_f.grad, x_r.grad),
        "gates": diff(gates_f.grad, gates_r.grad),
    }
    for name, p in params.items():
        out[name] = diff(p.grad, ref_params[name].grad)
    return out


def assert_aux_consumed(
    model: nn.Module, loss_fn: Callable[[], torch.Tensor], min_terms: int = 1
) -> int:
    """Run ``loss_fn()`` (one step's forward and loss) and backward; fail on dropped aux losses.

    Every :class:`~moesuite.core.routers.Router` inside ``model`` is audited with
    :class:`~moesuite.core.aux_audit.AuxLossAudit`: each aux term with a non-zero weight must
    receive a gradient from the returned loss. Use it in the tests of any training loop,
    Lightning or not.

    Args:
        model: the model whose routers to audit.
        loss_fn: computes the loss exactly as the training step does.
        min_terms: fail unless at least this many weighted aux terms were audited (guards
            against a test that audits nothing); 0 for models with no aux losses.

    Returns:
        The number of aux terms audited.

    Examples:
        >>> from moesuite.core import GroupedExperts, MoELayer, routers
        >>> layer = MoELayer(
        ...     routers.create("topk", d_model=4, num_experts=2, k=1), GroupedExperts(2, 4, 8)
        ... )
        >>> def step():
        ...     y, routing = layer(torch.randn(6, 4))
        ...     return y.pow(2).mean() + routing.aux_loss
        >>> assert_aux_consumed(layer, step)
        2
    """
    with AuxLossAudit(model) as audit:
        loss = loss_fn()
    loss.backward()
    missing = audit.unconsumed()
    if missing:
        raise AssertionError(f"aux losses computed but not added to the loss: {missing}")
    if audit.audited < min_terms:
        raise AssertionError(
            f"expected at least {min_terms} weighted aux terms, the step produced {audit.audited}."
        )
    return audit.audited
