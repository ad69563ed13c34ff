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
    """Each expert takes its top-``C`` tokens, ``C = ceil(S * capacity_factor / E)``.

    Balanced by construction; a token gets between 0 and ``E`` experts. With ``group_size=None``
    the experts choose among all ``S = T`` tokens; with ``group_size=S`` the ``T`` tokens are
    cut into ``T / S`` consecutive groups (e.g. one per sample, EC-DiT) and each expert takes
    its top-``C`` tokens *within each group*, so a choice never crosses groups.
    **Non-causal**: which tokens an expert takes depends on the other tokens of its group, so it
    must not be used for forecasting or streaming (``ExpertChoiceRouter.causal is False``).

    Args:
        d_model: token width.
        num_experts: ``E``.
        capacity_factor: average experts per token (``c`` in the paper, e.g. 2).
        z_weight: weight of the router z-loss.
        group_size: tokens per group (``T`` must be a multiple of it); ``None``: one group.

    Examples:
        >>> import torch
        >>> r = ExpertChoiceRouter(d_model=8, num_experts=4, capacity_factor=2.0)
        >>> r(torch.randn(6, 8)).plan.counts.tolist()
        [3, 3, 3, 3]
        >>> per_sample = ExpertChoiceRouter(8, 4, capacity_factor=1.0, group_size=8)
        >>> per_sample(torch.randn(3 * 8, 8)).plan.counts.tolist()   # 2 tokens x 3 samples
        [6, 6, 6, 6]
    """

    causal = False

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        capacity_factor: float = 2.0,
        z_weight: float = 1e-3,
        group_size: int | None = None,
    ):
        super().__init__(d_model, num_experts, k=1)
        if not capacity_factor > 0:
            raise ValueError(f"capacity_factor must be > 0, got {capacity_factor}.")
        if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
            raise ValueError(f"group_size must be a positive int or None, got {group_size!r}.")
        self.capacity_factor = capacity_factor
        self.z_weight = z_weight
        self.group_size = group_size

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        logits = self.compute_logits(x)
        self.check_logits(logits)
        probs = logits.softmax(-1)
        T, E = probs.shape
        S = T if self.group_size is None else self.group_size
        if S and T % S:
            raise ValueError(
                f"expert choice within groups of group_size={S} tokens needs a multiple of {S} "
                f"tokens, got T={T}; pass whole groups (e.g. every token of each sample)."
            )
        G = T // S if S else 0
        C = min(S, math.ceil(S * self.capacity_factor / E))
        # [G, E, S] -> each expert's top-C tokens within each group
        gates, token = torch.topk(probs.view(G, S, E).transpose(1, 2), C, dim=-1)
        token = token + (torch.arange(G, device=x.device) * S).view(G, 1, 1)
        expert = torch.arange(E, device=x.device).view(1, E, 1).expand(G, E, C)
        plan = RoutingPlan.from_assignments(
            token.reshape(-1), expert.reshape(-1), gates.reshape(-1).to(x.dtype), E, num_tokens=T
        )
        aux = {"z_loss": losses.router_z_loss(logits)}
        return RouterOutput(plan, logits, probs, aux, state, {"z_loss": self.z_weight})
