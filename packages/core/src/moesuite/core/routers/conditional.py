"""Conditional pre-routing: tokens marked by a mask go to fixed experts, the rest to any router.

ProMoE's first routing step sends every token of an unconditional (null-label) sample to a
dedicated unconditional expert with gate 1, and only the conditional tokens to its prototypical
router. The idea is general: any per-token signal known before routing (a null condition, a
modality, a padding flag, a task id) can pin tokens to experts reserved for them, while a learned
router handles the others. :func:`preroute` composes such fixed assignments with the plan of any
router; :class:`ConditionalRouter` wraps a router and does both in one call.

Experts are numbered ``0 .. E_r - 1`` for the wrapped router's experts, then
``E_r .. E_r + F - 1`` for the ``F`` fixed experts.

Index legend: ``T`` tokens, ``T_c`` tokens left to the router, ``E_r`` router experts,
``F`` fixed experts.
"""

from __future__ import annotations

from typing import Any

import torch

from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["ConditionalRouter", "preroute", "fixed_assignment"]


def fixed_assignment(mask: torch.Tensor, num_tokens: int, num_fixed: int) -> torch.Tensor:
    """Normalise a pre-routing mask to ``[T]`` int64: ``-1`` routed, ``j >= 0`` fixed expert ``j``.

    Args:
        mask: ``[T]`` bool (``True``: fixed expert 0) or integer (``-1``: leave to the router,
            ``j`` in ``[0, num_fixed)``: fixed expert ``j``).
        num_tokens: ``T``.
        num_fixed: ``F``.
    """
    if not isinstance(mask, torch.Tensor) or mask.dim() != 1 or mask.shape[0] != num_tokens:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(
            f"mask must be a [T={num_tokens}] bool or integer tensor (one entry per token), "
            f"got {shape}."
        )
    if mask.dtype == torch.bool:
        return torch.where(mask, 0, -1).long()
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"mask must be bool or integer, got {mask.dtype}.")
    target = mask.long()
    if target.numel() and (int(target.min()) < -1 or int(target.max()) >= num_fixed):
        raise ValueError(
            f"integer mask entries must be -1 (routed) or a fixed expert in [0, {num_fixed - 1}], "
            f"got values in [{int(target.min())}, {int(target.max())}]."
        )
    return target


def preroute(
    routed: RoutingPlan, routed_tokens: torch.Tensor, target: torch.Tensor, num_fixed: int
) -> RoutingPlan:
    """One plan over all ``T`` tokens: the router's plan for some, fixed experts for the others.

    Args:
        routed: a plan over the ``T_c`` routed tokens (any router: top-k, expert choice, ...).
        routed_tokens: ``[T_c]`` the position among the ``T`` tokens of each routed token.
        target: ``[T]`` from :func:`fixed_assignment` (``-1`` where the token was routed).
        num_fixed: ``F``; fixed expert ``j`` is expert ``routed.num_experts + j``.

    Returns:
        A plan over ``routed.num_experts + F`` experts where each pre-routed token has exactly one
        assignment, to its fixed expert, with gate 1, and routed tokens keep the router's
        assignments and gates.

    Examples:
        >>> import torch
        >>> gates = torch.tensor([[0.3], [0.8]])
        >>> routed = RoutingPlan.from_topk(torch.tensor([[1], [0]]), gates, 2)
        >>> target = torch.tensor([-1, 0, -1])            # token 1 goes to the fixed expert
        >>> plan = preroute(routed, torch.tensor([0, 2]), target, num_fixed=1)
        >>> plan.to_dense().tolist()
        [[0.0, 0.30000001192092896, 0.0], [0.0, 0.0, 1.0], [0.800000011920929, 0.0, 0.0]]
    """
    fixed_tokens = torch.nonzero(target >= 0).flatten()
    E_r = routed.num_experts
    token_idx = torch.cat([routed_tokens.long()[routed.token_idx], fixed_tokens])
    expert_idx = torch.cat([routed.expert_idx, E_r + target[fixed_tokens]])
    weight = torch.cat([routed.weight, routed.weight.new_ones(fixed_tokens.numel())])
    return RoutingPlan.from_assignments(
        token_idx,
        expert_idx,
        weight,
        E_r + num_fixed,
        num_tokens=target.shape[0],
        num_dropped=routed.num_dropped,
    )


class ConditionalRouter(Router):
    """Pre-routing by a per-token mask, composed with any router for the unmasked tokens.

    ``router(x, mask=m)``: tokens with ``m`` set go to their fixed expert with gate 1 (no
    router score involved, so no gradient to the router from them); the wrapped router sees only
    the other tokens, so its plan, its aux losses (balance, contrastive...) and its statistics
    are those of the routed tokens alone. Without a mask every token is routed (the fixed
    experts get none).

    Args:
        router: any router over ``E_r`` experts (its ``d_model`` is this router's).
        num_fixed: ``F`` fixed experts, numbered after the router's.

    Shapes:
        ``x [T, d_model]``, ``mask [T]``; ``logits``/``probs`` are ``[T, E_r + F]``: the wrapped
        router's rows for routed tokens (0 in the fixed columns) and, for pre-routed tokens, 0
        logits and one-hot probabilities on their fixed expert.

    Examples:
        >>> import torch
        >>> from moesuite.core import routers
        >>> inner = routers.create("prototype", d_model=8, num_experts=3, k=1)
        >>> r = ConditionalRouter(inner, num_fixed=1)
        >>> null = torch.tensor([True, False, False, True])
        >>> out = r(torch.randn(4, 8), mask=null)
        >>> out.plan.num_experts, out.plan.to_dense()[null, 3].tolist()
        (4, [1.0, 1.0])
    """

    def __init__(self, router: Router, num_fixed: int = 1):
        if not isinstance(router, Router):
            raise TypeError(f"router must be a moesuite Router, got {type(router).__name__}.")
        if not isinstance(num_fixed, int) or num_fixed < 1:
            raise ValueError(f"num_fixed must be a positive int, got {num_fixed!r}.")
        super().__init__(router.d_model, router.num_experts + num_fixed, k=1)
        del self.weight  # the wrapped router owns every routing parameter
        self.router = router
        self.num_fixed = num_fixed
        self.causal = router.causal

    @property
    def num_routed_experts(self) -> int:
        """``E_r``, the wrapped router's experts."""
        return self.router.num_experts

    def forward(
        self, x: torch.Tensor, state: Any = None, mask: torch.Tensor | None = None
    ) -> RouterOutput:
        """Route ``x[T, d_model]``; ``mask[T]`` pins tokens to fixed experts (see the class)."""
        self.check_input(x)
        T = x.shape[0]
        if mask is None:
            target = torch.full((T,), -1, dtype=torch.long, device=x.device)
        else:
            target = fixed_assignment(mask.to(x.device), T, self.num_fixed)
        routed_tokens = torch.nonzero(target < 0).flatten()
        inner = self.router(x[routed_tokens], state)
        plan = preroute(inner.plan, routed_tokens, target, self.num_fixed)
        E = self.num_experts
        logits = inner.logits.new_zeros(T, E)
        logits[routed_tokens, : self.num_routed_experts] = inner.logits
        probs = inner.probs.new_zeros(T, E)
        probs[routed_tokens, : self.num_routed_experts] = inner.probs
        fixed = torch.nonzero(target >= 0).flatten()
        probs[fixed, self.num_routed_experts + target[fixed]] = 1.0
        return RouterOutput(plan, logits, probs, inner.aux, inner.state, inner.aux_weights)

    def extra_repr(self) -> str:
        return f"num_routed_experts={self.num_routed_experts}, num_fixed={self.num_fixed}"
