"""Sinkhorn (balanced optimal-transport) routing, as in S-BASE and Megatron, in the log domain."""

from __future__ import annotations

import math
from typing import Any

import torch

from moesuite.core import losses
from moesuite.core.routers._registry import register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["SinkhornRouter", "log_sinkhorn"]


def log_sinkhorn(logits: torch.Tensor, n_iter: int = 8) -> torch.Tensor:
    """Log of the transport plan ``P = diag(d0) exp(z) diag(d1)`` after ``n_iter`` iterations.

    Rows of ``P`` sum to ``1/T`` and columns to (approximately) ``1/E``. Computed with
    logsumexp so logits above 88 do not overflow fp32, and with a fixed iteration count so
    there is no data-dependent loop.

    Examples:
        >>> import torch
        >>> P = log_sinkhorn(torch.randn(64, 4) * 3, n_iter=50).exp()
        >>> torch.allclose(P.sum(0), torch.full((4,), 0.25), atol=1e-3)
        True
    """
    z = logits.float()
    T, E = z.shape
    log_d1 = z.new_zeros(E)
    log_d0 = z.new_zeros(T)
    for _ in range(n_iter):
        log_d0 = -math.log(T) - torch.logsumexp(z + log_d1[None, :], dim=1)
        log_d1 = -math.log(E) - torch.logsumexp(z + log_d0[:, None], dim=0)
    return z + log_d0[:, None] + log_d1[None, :]


@register_router("sinkhorn")
class SinkhornRouter(Router):
    """Top-k of the Sinkhorn-balanced plan in training; plain top-k of the logits in eval.

    As in Megatron, the balanced plan only *selects* experts (under ``no_grad``); the gates
    are taken from the original logits: ``sigmoid(z)`` for ``k = 1``, ``softmax(z)`` for
    ``k > 1`` (optionally renormalised over the selected experts).

    Args:
        d_model: token width.
        num_experts: ``E``.
        k: experts per token.
        n_iter: Sinkhorn iterations (fixed).
        normalize: renormalise the selected gates (``k > 1``).
        z_weight: weight of the router z-loss.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> r = SinkhornRouter(d_model=8, num_experts=4, k=1)
        >>> x = torch.randn(400, 8) + 2 * r.weight[0].detach()  # tokens that all prefer expert 0
        >>> r.eval()(x).plan.counts.tolist(), r.train()(x).plan.counts.tolist()
        ([343, 5, 21, 31], [101, 95, 118, 86])
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        k: int = 1,
        n_iter: int = 20,
        normalize: bool = False,
        z_weight: float = 1e-3,
    ):
        super().__init__(d_model, num_experts, k)
        if n_iter < 1:
            raise ValueError(f"n_iter must be >= 1, got {n_iter}.")
        self.n_iter = n_iter
        self.normalize = normalize
        self.z_weight = z_weight

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        logits = self.compute_logits(x)
        self.check_logits(logits)
        if self.training and logits.shape[0] > 0:
            with torch.no_grad():
                idx = torch.topk(log_sinkhorn(logits, self.n_iter), self.k, dim=-1).indices
        else:
            idx = torch.topk(logits, self.k, dim=-1).indices
        probs = torch.sigmoid(logits) if self.k == 1 else logits.softmax(-1)
        gates = probs.gather(-1, idx)
        if self.normalize and self.k > 1:
            gates = gates / gates.sum(-1, keepdim=True)
        plan = RoutingPlan.from_topk(idx, gates.to(x.dtype), self.num_experts)
        aux = {"z_loss": losses.router_z_loss(logits)}
        return RouterOutput(plan, logits, probs, aux, state, {"z_loss": self.z_weight})
