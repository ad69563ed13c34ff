"""Prototypical routing: cosine similarity to learnable expert prototypes, with temperature."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core import losses
from moesuite.core.routers._registry import register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["PrototypeRouter"]


@register_router("prototype")
class PrototypeRouter(Router):
    """``logits = cos(P x, prototype_e) / temperature``; top-k of their softmax.

    Cosine similarity bounds the logits (no z-loss needed) and makes each expert own a
    direction of the token space. The routing contrastive loss pulls each token toward its
    top-1 prototype and away from the others.

    Args:
        d_model: token width.
        num_experts: ``E``.
        k: experts per token.
        d_proto: prototype width (tokens are projected to it); ``d_model`` when ``None``.
        temperature: softmax temperature of the similarities.
        normalize: renormalise the selected gates (default: when ``k > 1``).
        lb_weight: load-balancing loss weight.
        contrastive_weight: routing contrastive loss weight.

    Examples:
        >>> import torch
        >>> r = PrototypeRouter(d_model=8, num_experts=3, k=1, temperature=0.5)
        >>> out = r(torch.randn(4, 8))
        >>> bool(out.logits.abs().max() <= 1 / 0.5 + 1e-5)
        True
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        k: int = 1,
        d_proto: int | None = None,
        temperature: float = 0.1,
        normalize: bool | None = None,
        lb_weight: float = 1e-2,
        contrastive_weight: float = 1e-2,
    ):
        super().__init__(d_model, num_experts, k)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        d_proto = d_model if d_proto is None else d_proto
        self.d_proto = d_proto
        self.proj = nn.Linear(d_model, d_proto, bias=False) if d_proto != d_model else nn.Identity()
        self.weight = nn.Parameter(torch.randn(num_experts, d_proto))  # the prototypes
        self.temperature = temperature
        # renormalising a single gate would make it 1.0 and cut the router's task gradient
        self.normalize = k > 1 if normalize is None else normalize
        self.lb_weight = lb_weight
        self.contrastive_weight = contrastive_weight

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, E]`` cosine similarity between projected tokens and prototypes."""
        return (
            F.normalize(self.proj(x.float()), dim=-1) @ F.normalize(self.weight.float(), dim=-1).t()
        )

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        sim = self.similarity(x)
        logits = sim / self.temperature
        self.check_logits(logits)
        probs = logits.softmax(-1)
        gates, idx = torch.topk(probs, self.k, dim=-1)
        if self.normalize:
            gates = gates / gates.sum(-1, keepdim=True)
        plan = RoutingPlan.from_topk(idx, gates.to(x.dtype), self.num_experts)
        aux = {
            "load_balance": losses.load_balancing_loss(probs, plan.counts, self.k),
            "contrastive": losses.routing_contrastive_loss(sim, idx[:, 0], self.temperature),
        }
        weights = {"load_balance": self.lb_weight, "contrastive": self.contrastive_weight}
        return RouterOutput(plan, logits, probs, aux, state, weights)
