"""Neural baselines of EvidenceMoE, with the same evidential (NIG) output so intervals compare.

* :class:`DenseEvidential`: one MLP, hidden width chosen so its parameter count matches a
  given budget (EvidenceMoE's).
* :class:`SoftmaxMoE`: a plain MoE, softmax gate over all experts (core ``topk`` router with
  ``k = E``) through the core's :class:`~moesuite.core.layer.MoELayer`, no critics, no physics.
  It returns a :class:`~moesuite.core.output.MoEOutput`: the router's load-balancing and
  z-losses go to the training step with the prediction.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from moesuite.core import routers
from moesuite.core.experts import ExpertList
from moesuite.core.layer import MoELayer
from moesuite.core.output import MoEOutput
from moesuite.physics.evidence.nig import NIG, evidential_loss, nig_from_raw

__all__ = ["DenseEvidential", "SoftmaxMoE", "dense_width_for", "moe_width_for"]


def dense_width_for(d_in: int, budget: int, n_out: int = 8) -> int:
    """Hidden width ``H`` of ``d_in -> H -> H -> n_out`` (with biases) closest to ``budget`` params.

    Examples:
        >>> H = dense_width_for(257, 100_000)
        >>> H, abs(sum(p.numel() for p in DenseEvidential(257, H).parameters()) - 100_000) < 800
        (210, True)
    """
    # H^2 + H (d_in + n_out + 2) + n_out - budget = 0
    b = d_in + n_out + 2
    return max(4, int(round((-b + math.sqrt(b * b + 4 * (budget - n_out))) / 2)))


def moe_width_for(d_in: int, budget: int, d_model: int = 64, num_experts: int = 3) -> int:
    """Expert hidden width of :class:`SoftmaxMoE` closest to ``budget`` parameters."""
    fixed = d_in * d_model + d_model + d_model * 8 + 8 + d_model * num_experts + num_experts
    per = (budget - fixed) / num_experts  # = H (2 d_model + 1) + d_model
    return max(4, int(round((per - d_model) / (2 * d_model + 1))))


class _EvidentialRegressor(nn.Module):
    evidence_coeff = 0.01

    def loss_terms(
        self, nig: NIG, y: torch.Tensor, counts: torch.Tensor, params: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The evidential loss of ``nig`` (``"task"``); ``counts`` and ``params`` are unused."""
        task = evidential_loss(y, nig, self.evidence_coeff)
        return {"task": task, "mae_scaled": (nig.gamma - y).abs().mean().detach()}


class DenseEvidential(_EvidentialRegressor):
    """``d_in -> H -> H -> 8`` MLP with a NIG head for (depth, tau)."""

    def __init__(self, d_in: int, d_hidden: int = 256):
        super().__init__()
        self.d_in, self.d_hidden = d_in, d_hidden
        self.net = nn.Sequential(
            nn.Linear(d_in, d_hidden),
            nn.GELU(),
            nn.Linear(d_hidden, d_hidden),
            nn.GELU(),
            nn.Linear(d_hidden, 8),
        )

    def init_kwargs(self) -> dict[str, Any]:
        return {"d_in": self.d_in, "d_hidden": self.d_hidden}

    def forward(self, x: torch.Tensor) -> NIG:
        """``x[B, d_in] -> NIG [B, 2]``."""
        return nig_from_raw(self.net(x).reshape(-1, 2, 4))


class _MLP(nn.Module):
    def __init__(self, d_model: int, d_hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SoftmaxMoE(_EvidentialRegressor):
    """``Linear(d_in, d_model) -> MoELayer(softmax top-E gate, E MLP experts) -> NIG head``.

    Examples:
        >>> m = SoftmaxMoE(33, d_model=16, d_hidden=8)
        >>> out = m(torch.randn(4, 33))
        >>> tuple(out.output.gamma.shape), sorted(out.aux_terms())
        ((4, 2), ['load_balance', 'z_loss'])
    """

    def __init__(self, d_in: int, d_model: int = 64, d_hidden: int = 128, num_experts: int = 3):
        super().__init__()
        self.d_in, self.d_model, self.d_hidden, self.num_experts = (
            d_in,
            d_model,
            d_hidden,
            num_experts,
        )
        self.embed = nn.Linear(d_in, d_model)
        router = routers.create(
            "topk", d_model=d_model, num_experts=num_experts, k=num_experts, gating="softmax"
        )
        self.moe = MoELayer(
            router,
            ExpertList([_MLP(d_model, d_hidden) for _ in range(num_experts)], d_model=d_model),
        )
        self.head = nn.Linear(d_model, 8)

    def init_kwargs(self) -> dict[str, Any]:
        return {
            "d_in": self.d_in,
            "d_model": self.d_model,
            "d_hidden": self.d_hidden,
            "num_experts": self.num_experts,
        }

    def forward(self, x: torch.Tensor) -> MoEOutput[NIG]:
        """``x[B, d_in] -> MoEOutput(NIG [B, 2], [the gate's RouterOutput])``."""
        h = torch.nn.functional.gelu(self.embed(x))
        y, routing = self.moe(h)
        return MoEOutput(nig_from_raw(self.head(h + y).reshape(-1, 2, 4)), [routing])
