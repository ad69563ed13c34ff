"""Expert-choice routing (Zhou et al. 2022): experts pick tokens. Non-causal."""

from __future__ import annotations

import math
from typing import Any

import torch

from moesuite.core import losses
from moesuite.core.routers._registry import register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["ExpertChoiceRouter"]


@register_router("expert_choice")
class ExpertChoiceRouter(Router):
    """Each expert takes its top-``C`` tokens, ``C = ceil(T * capacity_factor / E)``.

    Balanced by construction; a token gets between 0 and ``E`` experts. **Non-causal**: which
    tokens an expert takes depends on every token in the batch, so it must not be used for
    forecasting or streaming (``ExpertChoiceRouter.causal is False``).

    Args:
        d_model: token width.
        num_experts: ``E``.
        capacity_factor: average experts per token (``c`` in the paper, e.g. 2).
        z_weight: weight of the router z-loss.

    Examples:
        >>> import torch
        >>> r = ExpertChoiceRouter(d_model=8, num_experts=4, capacity_factor=2.0)
        >>> r(torch.randn(6, 8)).plan.counts.tolist()
        [3, 3, 3, 3]
    """

    causal = False

    def __init__(
        self, d_model: int, num_experts: int, capacity_factor: float = 2.0, z_weight: float = 1e-3
    ):
        super().__init__(d_model, num_experts, k=1)
        if not capacity_factor > 0:
            raise ValueError(f"capacity_factor must be > 0, got {capacity_factor}.")
        self.capacity_factor = capacity_factor
        self.z_weight = z_weight

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        logits = self.compute_logits(x)
        self.check_logits(logits)
        probs = logits.softmax(-1)
        T, E = probs.shape
        C = min(T, math.ceil(T * self.capacity_factor / E))
        gates, token = torch.topk(probs.t(), C, dim=-1)  # [E, C]
        expert = torch.arange(E, device=x.device).repeat_interleave(C)
        plan = RoutingPlan.from_assignments(
            token.reshape(-1), expert, gates.reshape(-1).to(x.dtype), E, num_tokens=T
        )
        aux = {"z_loss": losses.router_z_loss(logits)}
        return RouterOutput(plan, logits, probs, aux, state, {"z_loss": self.z_weight})
