"""The MoE layer: a router, experts, optional shared experts and an optional capacity limit."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from moesuite.core.balance import CapacityPolicy, apply_capacity
from moesuite.core.routers.base import Router, RouterOutput

__all__ = ["MoELayer"]


class MoELayer(nn.Module):
    """``y = experts(x, router(x).plan) + shared_experts(x)``, returned with the router's output.

    Args:
        router: any :class:`~moesuite.core.routers.Router`.
        experts: :class:`~moesuite.core.experts.GroupedExperts`, :class:`ExpertList`, or any
            module called as ``experts(x[T, d], plan) -> [T, d]``.
        shared_experts: a module applied to every token, called with ``x`` in its original
            shape ``[..., d]`` (so it may mix along a sequence axis, e.g. a depthwise conv).
        capacity: ``None`` for dropless routing (the default) or a
            :class:`~moesuite.core.balance.CapacityPolicy`; dropped assignments are reported in
            ``RouterOutput.plan.num_dropped`` / ``drop_rate``.

    Shapes:
        ``x [..., d_model] -> y [..., d_model]``; routing sees the ``T = prod(...)`` tokens.

    Examples:
        >>> import torch
        >>> from moesuite.core import routers
        >>> from moesuite.core.experts import GroupedExperts
        >>> layer = MoELayer(routers.create("topk", d_model=8, num_experts=4, k=2),
        ...                  GroupedExperts(num_experts=4, d_model=8, d_hidden=16))
        >>> y, out = layer(torch.randn(2, 5, 8))
        >>> tuple(y.shape), out.plan.num_tokens
        ((2, 5, 8), 10)
    """

    def __init__(
        self,
        router: Router,
        experts: nn.Module,
        shared_experts: nn.Module | None = None,
        capacity: CapacityPolicy | None = None,
    ):
        super().__init__()
        n_experts = getattr(experts, "num_experts", None)
        if n_experts is not None and n_experts != router.num_experts:
            raise ValueError(
                f"router has num_experts={router.num_experts} but experts has {n_experts}; "
                "they must match."
            )
        if capacity is not None and not isinstance(capacity, CapacityPolicy):
            raise TypeError(
                f"capacity must be a CapacityPolicy or None, got {type(capacity).__name__}."
            )
        self.router = router
        self.experts = experts
        self.shared_experts = shared_experts
        self.capacity = capacity

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, RouterOutput]:
        """Route and compute ``x[..., d_model]``; ``state`` feeds a recurrent router."""
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self.router.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"x must have shape [..., d_model={self.router.d_model}], got {shape}."
            )
        flat = x.reshape(-1, x.shape[-1])
        out = self.router(flat, state)
        plan = out.plan
        if self.capacity is not None:
            plan = apply_capacity(plan, self.capacity)
            out.plan = plan
        y = self.experts(flat, plan)
        if self.capacity is not None and self.capacity.dropped == "identity" and plan.num_dropped:
            routed = plan.experts_per_token() > 0
            y = torch.where(routed.unsqueeze(-1), y, flat)
        y = y.reshape(x.shape)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y, out
