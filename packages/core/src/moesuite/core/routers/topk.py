"""Token-choice top-k routing (Switch, Mixtral, DeepSeek-V3 sigmoid gating)."""

from __future__ import annotations

from typing import Any

import torch

from moesuite.core import losses
from moesuite.core.balance import AuxFreeBias
from moesuite.core.routers._registry import register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["TopKRouter"]

_GATINGS = ("softmax", "sigmoid")


@register_router("topk")
class TopKRouter(Router):
    """Each token picks its ``k`` highest-scoring experts.

    Scores are ``softmax(z)`` (Switch, Mixtral) or ``sigmoid(z)`` (DeepSeek-V3) with
    ``z = x W^T`` in fp32. Gates are the selected scores, renormalised to sum to 1 per token
    when ``normalize`` is true (Mixtral; always the case for sigmoid gating in DeepSeek-V3),
    times ``scale``.

    Args:
        d_model: token width.
        num_experts: ``E``.
        k: experts per token (``1 <= k <= E``).
        gating: ``"softmax"`` or ``"sigmoid"``.
        normalize: renormalise the selected gates to sum to 1 (default: when ``k > 1``;
            a single renormalised gate is always 1 and would not train the router).
        jitter: multiplicative input noise ``U(1 - jitter, 1 + jitter)`` in training
            (Switch / MegaBlocks); 0 disables it.
        aux_free: add a DeepSeek-V3 :class:`~moesuite.core.balance.AuxFreeBias` that steers
            *selection only*; call ``router.balancer.update(plan.counts)`` after each step
            (the training callback does this).
        bias_gamma: update speed of that bias.
        scale: routed scaling factor applied to the gates.
        lb_weight: weight of the Switch load-balancing loss in ``aux_loss``.
        z_weight: weight of the router z-loss in ``aux_loss``.
        straight_through: hard gates with a straight-through gradient: in the forward pass
            every chosen expert's gate is exactly 1 (the expert's output is not scaled), in the
            backward pass the gate's gradient is that of its score (the softmax or sigmoid
            probability of the chosen expert), so the router still learns from the task loss
            (Bengio et al. 2013; AdvMoE's hard top-1 routing). Needs ``normalize=False``.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> router = TopKRouter(d_model=8, num_experts=4, k=2)
        >>> out = router(torch.randn(6, 8))
        >>> out.plan.experts_per_token().tolist()
        [2, 2, 2, 2, 2, 2]
        >>> torch.allclose(out.plan.to_dense().sum(1), torch.ones(6))
        True
        >>> hard = TopKRouter(d_model=8, num_experts=4, k=1, straight_through=True)
        >>> hard(torch.randn(6, 8)).plan.weight.tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        k: int = 2,
        gating: str = "softmax",
        normalize: bool | None = None,
        jitter: float = 0.0,
        aux_free: bool = False,
        bias_gamma: float = 1e-3,
        scale: float = 1.0,
        lb_weight: float = 1e-2,
        z_weight: float = 1e-3,
        straight_through: bool = False,
    ):
        super().__init__(d_model, num_experts, k)
        if gating not in _GATINGS:
            raise ValueError(f"gating must be one of {_GATINGS}, got {gating!r}.")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}.")
        self.gating = gating
        # renormalising a single gate would make it 1.0 and cut the router's task gradient
        self.normalize = k > 1 if normalize is None else normalize
        if straight_through and normalize:
            raise ValueError(
                "straight_through=True makes every chosen gate exactly 1; it cannot be combined "
                "with normalize=True (leave normalize unset or pass normalize=False)."
            )
        self.straight_through = straight_through
        if straight_through:
            self.normalize = False
        self.jitter = jitter
        self.scale = scale
        self.lb_weight = lb_weight
        self.z_weight = z_weight
        self.balancer = AuxFreeBias(num_experts, bias_gamma) if aux_free else None

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Routing scores from logits (softmax or sigmoid)."""
        return logits.softmax(-1) if self.gating == "softmax" else torch.sigmoid(logits)

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        if self.training and self.jitter > 0:
            x = x * torch.empty_like(x).uniform_(1 - self.jitter, 1 + self.jitter)
        logits = self.compute_logits(x)
        self.check_logits(logits)
        scores = self.scores(logits)
        select = scores if self.balancer is None else scores.detach() + self.balancer.bias
        idx = torch.topk(select, self.k, dim=-1).indices
        gates = scores.gather(-1, idx)
        if self.straight_through:  # forward value exactly 1, backward d(score)
            gates = 1.0 + (gates - gates.detach())
        if self.normalize:
            gates = gates / gates.sum(-1, keepdim=True).clamp_min(1e-20)
        gates = gates * self.scale
        plan = RoutingPlan.from_topk(idx, gates.to(x.dtype), self.num_experts)
        # the balance loss uses a probability per token: sigmoid scores are normalised
        probs = scores if self.gating == "softmax" else scores / scores.sum(-1, keepdim=True)
        aux = {
            "load_balance": losses.load_balancing_loss(probs, plan.counts, self.k),
            "z_loss": losses.router_z_loss(logits),
        }
        weights = {"load_balance": self.lb_weight, "z_loss": self.z_weight}
        return RouterOutput(plan, logits, scores, aux, state, weights)
