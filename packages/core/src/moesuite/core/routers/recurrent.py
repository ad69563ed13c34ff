"""Layerwise recurrent routing (RMoE, Qiu et al., ICLR 2025)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from moesuite.core import losses
from moesuite.core.routers._registry import register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["RecurrentRouter"]


@register_router("recurrent")
class RecurrentRouter(Router):
    """``h_i = GRU(W_proj^(i) x_i, h_(i-1))``, ``logits_i = W_r^(i) h_i``; one GRU for all layers.

    The recurrence runs over depth, not over tokens: each token carries its own hidden state
    from layer to layer, so routing stays causal and parallel over tokens. Pass the *same*
    ``gru`` module to the router of every layer, and feed each layer's ``RouterOutput.state``
    into the next layer's router (``MoELayer(x, state=...)``).

    Args:
        d_model: token width.
        num_experts: ``E``.
        k: experts per token.
        hidden_dim: width of the GRU state.
        gru: the ``nn.GRUCell(hidden_dim, hidden_dim)`` shared across layers; a new one
            when ``None`` (then share it with ``RecurrentRouter(..., gru=first.gru)``).
        normalize: renormalise the top-k softmax gates (default: when ``k > 1``).
        lb_weight: load-balancing loss weight.
        z_weight: router z-loss weight.

    Examples:
        >>> import torch
        >>> first = RecurrentRouter(d_model=8, num_experts=4, k=2, hidden_dim=6)
        >>> second = RecurrentRouter(d_model=8, num_experts=4, k=2, hidden_dim=6, gru=first.gru)
        >>> x = torch.randn(5, 8)
        >>> out = second(x, state=first(x).state)
        >>> tuple(out.state.shape), second.gru is first.gru
        ((5, 6), True)
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        k: int = 2,
        hidden_dim: int = 32,
        gru: nn.GRUCell | None = None,
        normalize: bool | None = None,
        lb_weight: float = 1e-2,
        z_weight: float = 1e-3,
    ):
        super().__init__(d_model, num_experts, k)
        if gru is not None and (gru.input_size != hidden_dim or gru.hidden_size != hidden_dim):
            raise ValueError(
                f"gru must be nn.GRUCell({hidden_dim}, {hidden_dim}) to match hidden_dim, got "
                f"GRUCell({gru.input_size}, {gru.hidden_size})."
            )
        self.hidden_dim = hidden_dim
        self.proj = nn.Linear(d_model, hidden_dim, bias=False)
        self.gru = gru if gru is not None else nn.GRUCell(hidden_dim, hidden_dim)
        self.weight = nn.Parameter(torch.empty(num_experts, hidden_dim))
        nn.init.normal_(self.weight, std=hidden_dim**-0.5)
        # renormalising a single gate would make it 1.0 and cut the router's task gradient
        self.normalize = k > 1 if normalize is None else normalize
        self.lb_weight = lb_weight
        self.z_weight = z_weight

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        T = x.shape[0]
        if state is None:
            state = x.new_zeros(T, self.hidden_dim, dtype=torch.float32)
        elif not isinstance(state, torch.Tensor) or state.shape != (T, self.hidden_dim):
            raise ValueError(
                f"state must be the previous recurrent router's state of shape [T={T}, "
                f"hidden_dim={self.hidden_dim}], "
                f"got {getattr(state, 'shape', type(state).__name__)}."
            )
        with torch.autocast(device_type=x.device.type, enabled=False):
            h = self.gru(self.proj(x.float()), state.float())
            logits = h @ self.weight.float().t()
        self.check_logits(logits)
        probs = logits.softmax(-1)
        gates, idx = torch.topk(probs, self.k, dim=-1)
        if self.normalize:
            gates = gates / gates.sum(-1, keepdim=True)
        plan = RoutingPlan.from_topk(idx, gates.to(x.dtype), self.num_experts)
        aux = {
            "load_balance": losses.load_balancing_loss(probs, plan.counts, self.k),
            "z_loss": losses.router_z_loss(logits),
        }
        weights = {"load_balance": self.lb_weight, "z_loss": self.z_weight}
        return RouterOutput(plan, logits, probs, aux, h, weights)
