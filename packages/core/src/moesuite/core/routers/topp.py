"""Dynamic top-p routing (Huang et al., ACL 2024, "Harder Tasks Need More Experts")."""

from __future__ import annotations

from typing import Any

import torch

from moesuite.core import losses
from moesuite.core.routers._registry import register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["TopPRouter"]


@register_router("topp")
class TopPRouter(Router):
    """Each token takes the smallest set of experts whose probability mass reaches ``p``.

    Experts are sorted by probability; expert ``j`` is kept while the mass before it is below
    ``p``, so at least one and at most ``max_k`` experts fire. The "dynamic loss" of the
    paper, routing entropy, keeps the router from flattening toward all experts.

    Args:
        d_model: token width.
        num_experts: ``E``.
        p: probability mass threshold in (0, 1] (paper: 0.4).
        max_k: cap on experts per token (default ``E``).
        normalize: renormalise the kept gates to sum to 1 (off by default: the raw
            probabilities keep a gradient to the router when a single expert fires).
        lb_weight: load-balancing loss weight (normalised by the mean k).
        entropy_weight: weight of the dynamic (entropy) loss (paper: 1e-4).
        z_weight: weight of the router z-loss.

    Examples:
        >>> import torch
        >>> r = TopPRouter(d_model=8, num_experts=4, p=0.5)
        >>> n = r(torch.randn(10, 8)).plan.experts_per_token()
        >>> bool(((n >= 1) & (n <= 4)).all())
        True
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        p: float = 0.4,
        max_k: int | None = None,
        normalize: bool = False,
        lb_weight: float = 1e-2,
        entropy_weight: float = 1e-4,
        z_weight: float = 1e-3,
    ):
        max_k = num_experts if max_k is None else max_k
        super().__init__(d_model, num_experts, k=max_k)
        if not 0.0 < p <= 1.0:
            raise ValueError(f"p must be in (0, 1], got {p}.")
        self.p = p
        self.max_k = max_k
        self.normalize = normalize
        self.lb_weight = lb_weight
        self.entropy_weight = entropy_weight
        self.z_weight = z_weight

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        logits = self.compute_logits(x)
        self.check_logits(logits)
        probs = logits.softmax(-1)
        T = probs.shape[0]
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        mass_before = torch.cumsum(sorted_p, -1) - sorted_p
        keep = mass_before < self.p
        keep[:, self.max_k :] = False
        keep[:, 0] = True
        gates = sorted_p * keep
        if self.normalize:
            gates = gates / gates.sum(-1, keepdim=True)
        rows, cols = keep.nonzero(as_tuple=True)
        plan = RoutingPlan.from_assignments(
            rows, order[rows, cols], gates[rows, cols].to(x.dtype), self.num_experts, num_tokens=T
        )
        mean_k = max(plan.num_assignments / max(T, 1), 1.0)
        aux = {
            "load_balance": losses.load_balancing_loss(probs, plan.counts, mean_k),
            "entropy": losses.routing_entropy(probs),
            "z_loss": losses.router_z_loss(logits),
        }
        weights = {
            "load_balance": self.lb_weight,
            "entropy": self.entropy_weight,
            "z_loss": self.z_weight,
        }
        return RouterOutput(plan, logits, probs, aux, state, weights)
