"""Noisy top-k gating (Shazeer et al. 2017) with its importance and load losses."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core import losses
from moesuite.core.routers._registry import register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["NoisyTopKRouter"]


@register_router("noisy_topk")
class NoisyTopKRouter(Router):
    """``H = x W_g + N(0, 1) * softplus(x W_noise)``, ``G = softmax(KeepTopK(H, k))``.

    Noise is added in training only. The aux losses are Shazeer's ``CV(Importance)^2`` with
    ``Importance_i = sum_t G_ti`` and ``CV(Load)^2`` with the smooth load estimator
    ``Load_i = sum_t Phi((clean_ti - kth_excl(H_t, k, i)) / softplus(x W_noise)_ti)``.

    Args:
        d_model: token width.
        num_experts: ``E``.
        k: experts per token.
        importance_weight: weight of ``CV(Importance)^2`` (paper: 0.1).
        load_weight: weight of ``CV(Load)^2`` (paper: 0.1).
        z_weight: weight of the router z-loss.
        noise_eps: floor on the noise standard deviation.

    Examples:
        >>> import torch
        >>> r = NoisyTopKRouter(d_model=8, num_experts=4, k=2)
        >>> sorted(r(torch.randn(5, 8)).aux)
        ['importance', 'load', 'z_loss']
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        k: int = 2,
        importance_weight: float = 0.1,
        load_weight: float = 0.1,
        z_weight: float = 0.0,
        noise_eps: float = 1e-2,
    ):
        super().__init__(d_model, num_experts, k)
        self.noise_weight = nn.Parameter(torch.zeros(num_experts, d_model))
        self.importance_weight = importance_weight
        self.load_weight = load_weight
        self.z_weight = z_weight
        self.noise_eps = noise_eps

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        clean = self.compute_logits(x)
        self.check_logits(clean)
        noisy = self.training
        if noisy:
            std = F.softplus(x.float() @ self.noise_weight.float().t()) + self.noise_eps
            logits = clean + torch.randn_like(clean) * std
        else:
            logits = clean
        top = torch.topk(logits, min(self.k + 1, self.num_experts), dim=-1)
        idx = top.indices[:, : self.k]
        gates = torch.softmax(top.values[:, : self.k], dim=-1)
        dense_gates = torch.zeros_like(logits).scatter(-1, idx, gates)
        plan = RoutingPlan.from_topk(idx, gates.to(x.dtype), self.num_experts)
        if noisy and self.k < self.num_experts:
            load = self._smooth_load(clean, logits, std, top.values)
        else:
            load = plan.counts.float()
        aux = {
            "importance": losses.importance_loss(dense_gates),
            "load": losses.cv_squared(load),
            "z_loss": losses.router_z_loss(clean),
        }
        weights = {
            "importance": self.importance_weight,
            "load": self.load_weight,
            "z_loss": self.z_weight,
        }
        return RouterOutput(plan, logits, logits.softmax(-1), aux, state, weights)

    def _smooth_load(self, clean, noisy, std, top_values):
        """Shazeer's differentiable estimate of how many tokens each expert receives."""
        # threshold for expert i: the k-th largest noisy logit among the *other* experts;
        # if i is in the top-k, that is the (k+1)-th value overall, else the k-th
        kth_in = top_values[:, self.k : self.k + 1]
        kth_out = top_values[:, self.k - 1 : self.k]
        is_in = noisy > kth_in
        threshold = torch.where(is_in, kth_in, kth_out)
        normal = torch.distributions.Normal(0.0, 1.0)
        return normal.cdf((clean - threshold) / std).sum(0)
