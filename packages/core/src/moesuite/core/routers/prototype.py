"""Prototypical routing: cosine similarity to learnable expert prototypes (ProMoE's router)."""

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

_GATES = ("softmax", "sigmoid", "identity")
_CONTRASTIVE = ("token", "centroid")


@register_router("prototype")
class PrototypeRouter(Router):
    """Top-k of ``cos(P x, prototype_e)``; gates from an activation of the scaled similarities.

    With ``s = cos(P x, p_e) / temperature`` (``[T, E]``), each token takes its ``k`` most
    similar prototypes and its gates are ``scale * act(s)`` at those experts, where ``act`` is
    ``softmax`` over experts, an element-wise ``sigmoid`` or the ``identity`` (ProMoE: the raw
    cosine with ``temperature=1``, which may be negative and is never renormalised). Cosine
    similarity bounds the logits and makes each expert own a direction of the token space.

    Aux losses: Switch load balancing on ``softmax(s)`` and a routing contrastive loss, either
    ``"token"`` (InfoNCE of each token against the prototypes, its own expert positive:
    :func:`~moesuite.core.losses.routing_contrastive_loss`) or ``"centroid"`` (ProMoE Eq. 6: each
    prototype against the centroids of the tokens routed to every expert:
    :func:`~moesuite.core.losses.centroid_contrastive_loss`).

    Args:
        d_model: token width.
        num_experts: ``E``.
        k: experts per token.
        d_proto: prototype width (tokens are projected to it); ``d_model`` when ``None``.
        temperature: divides the similarities before the gate activation and the softmax.
        normalize: renormalise the selected gates to sum to 1 (default: when ``k > 1`` and the
            gate is not ``"identity"``; raw cosine gates cannot be renormalised).
        lb_weight: load-balancing loss weight (0 keeps it as a statistic only).
        contrastive_weight: routing contrastive loss weight.
        gate: ``"softmax"``, ``"sigmoid"`` or ``"identity"``.
        scale: multiplies the gates (the routed scaling factor alpha).
        init_std: the prototypes start as ``N(0, init_std^2)`` (ProMoE: 0.02).
        contrastive: ``"token"`` or ``"centroid"``.
        contrastive_temperature: temperature of the contrastive loss (``temperature`` if None;
            ProMoE: 0.07).

    Shapes:
        ``x [T, d_model]``; ``logits`` and ``probs`` (``softmax(s)``, the distribution the
        balance loss and statistics use) are ``[T, E]``.

    Examples:
        >>> import torch
        >>> r = PrototypeRouter(d_model=8, num_experts=3, k=1, temperature=0.5)
        >>> out = r(torch.randn(4, 8))
        >>> bool(out.logits.abs().max() <= 1 / 0.5 + 1e-5)
        True
        >>> promoe = PrototypeRouter(8, 3, k=1, temperature=1.0, gate="identity", init_std=0.02,
        ...                          lb_weight=0.0, contrastive="centroid",
        ...                          contrastive_weight=1.0, contrastive_temperature=0.07)
        >>> out = promoe(torch.randn(6, 8))
        >>> torch.allclose(out.plan.to_dense().sum(1), out.logits.max(1).values)
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
        gate: str = "softmax",
        scale: float = 1.0,
        init_std: float = 1.0,
        contrastive: str = "token",
        contrastive_temperature: float | None = None,
    ):
        super().__init__(d_model, num_experts, k)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if gate not in _GATES:
            raise ValueError(f"gate must be one of {_GATES}, got {gate!r}.")
        if contrastive not in _CONTRASTIVE:
            raise ValueError(f"contrastive must be one of {_CONTRASTIVE}, got {contrastive!r}.")
        if not init_std > 0:
            raise ValueError(f"init_std must be > 0, got {init_std}.")
        if contrastive_temperature is not None and not contrastive_temperature > 0:
            raise ValueError(
                f"contrastive_temperature must be > 0 (or None), got {contrastive_temperature}."
            )
        if gate == "identity" and normalize:
            raise ValueError(
                "normalize=True with gate='identity': raw cosine gates may be negative or sum to "
                "0 and cannot be renormalised; use normalize=False or gate='softmax'/'sigmoid'."
            )
        d_proto = d_model if d_proto is None else d_proto
        self.d_proto = d_proto
        self.proj = nn.Linear(d_model, d_proto, bias=False) if d_proto != d_model else nn.Identity()
        self.weight = nn.Parameter(torch.randn(num_experts, d_proto) * init_std)  # prototypes
        self.temperature = temperature
        # renormalising a single gate would make it 1.0 and cut the router's task gradient
        self.normalize = (k > 1 and gate != "identity") if normalize is None else normalize
        self.lb_weight = lb_weight
        self.contrastive_weight = contrastive_weight
        self.gate = gate
        self.scale = scale
        self.init_std = init_std
        self.contrastive = contrastive
        self.contrastive_temperature = (
            temperature if contrastive_temperature is None else contrastive_temperature
        )

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, E]`` cosine similarity between projected tokens and prototypes."""
        return (
            F.normalize(self.proj(x.float()), dim=-1) @ F.normalize(self.weight.float(), dim=-1).t()
        )

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Gate scores ``act(logits)`` (``[T, E]``) before selection and scaling."""
        if self.gate == "softmax":
            return logits.softmax(-1)
        if self.gate == "sigmoid":
            return torch.sigmoid(logits)
        return logits

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        sim = self.similarity(x)
        logits = sim / self.temperature
        self.check_logits(logits)
        probs = logits.softmax(-1)
        idx = torch.topk(sim, self.k, dim=-1).indices
        gates = self.activate(logits).gather(-1, idx)
        if self.normalize:
            gates = gates / gates.sum(-1, keepdim=True).clamp_min(1e-20)
        gates = gates * self.scale
        plan = RoutingPlan.from_topk(idx, gates.to(x.dtype), self.num_experts)
        if self.contrastive == "centroid":
            contrast = losses.centroid_contrastive_loss(
                self.proj(x.float()), self.weight, idx, self.contrastive_temperature
            )
        else:
            contrast = losses.routing_contrastive_loss(sim, idx[:, 0], self.contrastive_temperature)
        aux = {
            "load_balance": losses.load_balancing_loss(probs, plan.counts, self.k),
            "contrastive": contrast,
        }
        weights = {"load_balance": self.lb_weight, "contrastive": self.contrastive_weight}
        return RouterOutput(plan, logits, probs, aux, state, weights)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, gate={self.gate!r}, temperature={self.temperature}, "
            f"scale={self.scale}, contrastive={self.contrastive!r}"
        )
