"""Feature-modulation experts: ``n`` FiLM modulations of one shared block, run by a RoutingPlan.

MoFME's experts share one block ``h = shared(x)`` and differ only by a feature-wise linear
modulation of its output; token ``t`` routed to experts ``e`` with gates ``g_te`` gets::

    y_t = sum_e g_te * (gamma_e(h_t) * h_t + beta_e(h_t))

- ``modulation="vector"`` (the abstract's "learnable activation modulations"): ``gamma_e`` and
  ``beta_e`` are learned vectors ``[d]``; an expert costs ``2 d`` parameters.
- ``modulation="linear"`` (the authors' code): input-dependent ``gamma_e(h) = A_e h + a_e``,
  ``beta_e(h) = B_e h + b_e`` with ``A_e, B_e`` of ``d x d``; ``2 d^2 + 2 d`` per expert.

Both are stored as offsets from the identity (``gamma = 1 + ...``) and start near it (small
random offsets break the symmetry between experts), so every expert starts as the shared block;
with all offsets zero the mixture is exactly ``sum_e g_te * h_t`` (``h_t`` for normalised gates).

Index legend: ``T`` tokens, ``A`` assignments (rows sorted by expert), ``E`` experts, ``d`` width.
"""

from __future__ import annotations

import torch
from torch import nn

from moesuite.core import ops
from moesuite.core.experts import check_expert_call
from moesuite.core.routing import RoutingPlan

__all__ = ["MODULATIONS", "GatedLinearUnit", "FiLMExperts", "SharedFiLMExperts"]

MODULATIONS = ("vector", "linear")


class GatedLinearUnit(nn.Module):
    """The shared block of the authors' code: ``gelu(x W_1 + b_1) * (x W_2 + b_2)``, ``d -> d``."""

    def __init__(self, d_model: int):
        super().__init__()
        self.gate = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.gate(x)) * self.value(x)


class FiLMExperts(nn.Module):
    """``E`` FiLM modulations of given features, combined by a :class:`RoutingPlan`'s gates.

    Called as ``experts(h[T, d], plan) -> [T, d]``, like the core's expert modules.

    Args:
        num_experts: ``E``.
        d_model: feature width ``d``.
        modulation: ``"vector"`` or ``"linear"`` (see the module docstring).
        init_std: standard deviation of the initial offsets from the identity.

    Examples:
        >>> import torch
        >>> experts = FiLMExperts(num_experts=4, d_model=8, modulation="linear")
        >>> plan = RoutingPlan.from_topk(torch.tensor([[0, 3], [2, 3]]), torch.full((2, 2), 0.5), 4)
        >>> tuple(experts(torch.randn(2, 8), plan).shape)
        (2, 8)
    """

    def __init__(
        self, num_experts: int, d_model: int, modulation: str = "vector", init_std: float = 0.02
    ):
        super().__init__()
        if modulation not in MODULATIONS:
            raise ValueError(f"modulation must be one of {MODULATIONS}, got {modulation!r}.")
        if not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"num_experts must be a positive int, got {num_experts!r}.")
        self.num_experts = num_experts
        self.d_model = d_model
        self.modulation = modulation
        if modulation == "vector":
            self.gamma = nn.Parameter(torch.randn(num_experts, d_model) * init_std)
            self.beta = nn.Parameter(torch.randn(num_experts, d_model) * init_std)
        else:
            # [A_e | B_e] as one [d, 2d] matrix per expert, and [a_e - 1 | b_e]
            self.weight = nn.Parameter(torch.randn(num_experts, d_model, 2 * d_model) * init_std)
            self.bias = nn.Parameter(torch.zeros(num_experts, 2 * d_model))

    def modulate(self, hs: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """``gamma * h + beta`` for expert-sorted rows ``hs[A, d]`` of the plan."""
        if self.modulation == "vector":
            gamma = self.gamma.index_select(0, plan.expert_idx)
            beta = self.beta.index_select(0, plan.expert_idx)
        else:
            offsets = plan.expert_offsets.tolist()
            parts = []
            for e in range(self.num_experts):
                s, t = offsets[e], offsets[e + 1]
                if t > s:
                    parts.append(torch.addmm(self.bias[e], hs[s:t], self.weight[e]))
            gb = torch.cat(parts) if parts else hs.new_zeros(0, 2 * self.d_model)
            gamma, beta = gb[:, : self.d_model], gb[:, self.d_model :]
        return (1.0 + gamma) * hs + beta

    def forward(self, h: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """Modulate ``h[T, d]`` by each token's experts and combine with the gates: ``[T, d]``."""
        check_expert_call(h, plan, self.d_model, self.num_experts)
        return ops.unpermute(self.modulate(ops.permute(h, plan), plan), plan)

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, d_model={self.d_model}, {self.modulation!r}"


class SharedFiLMExperts(nn.Module):
    """MoFME's experts as one module: the shared block, then the routed FiLM modulations.

    ``experts(x[T, d], plan) = FiLMExperts(shared(x), plan)``: the shared block runs once per
    token whatever the number of experts, so it plugs into :class:`moesuite.core.MoELayer`.
    """

    def __init__(self, num_experts: int, d_model: int, modulation: str = "vector"):
        super().__init__()
        self.shared = GatedLinearUnit(d_model)
        self.film = FiLMExperts(num_experts, d_model, modulation)

    @property
    def num_experts(self) -> int:
        """``E``."""
        return self.film.num_experts

    def forward(self, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        return self.film(self.shared(x), plan)
