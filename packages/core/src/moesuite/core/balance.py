"""Load balancing without a loss, and the capacity policy.

- :class:`AuxFreeBias`: DeepSeek-V3's aux-loss-free balancing. A per-expert bias, kept as a
  fp32 buffer (saved in checkpoints, never trained by gradient), is added to the routing scores
  for *selection only*; after each step ``b_i += gamma * sign(mean(c) - c_i)`` lowers the bias
  of overloaded experts and raises it for idle ones.
- :class:`CapacityPolicy`: Switch/GShard capacity. Dropless (``None``) is moesuite's default;
  with a capacity factor each expert keeps at most ``ceil(T * k / E * capacity_factor)``
  assignments, the rest are dropped and reported in ``RoutingPlan.num_dropped``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from moesuite.core.routing import RoutingPlan

__all__ = ["AuxFreeBias", "CapacityPolicy", "apply_capacity"]


class AuxFreeBias(nn.Module):
    """Selection bias updated from expert counts (DeepSeek-V3, Wang et al. 2024).

    Args:
        num_experts: ``E``.
        gamma: bias update speed (DeepSeek-V3 used 1e-3).

    Examples:
        >>> import torch
        >>> b = AuxFreeBias(3, gamma=0.1)
        >>> b.update(torch.tensor([10, 1, 1]))
        >>> [round(v, 2) for v in b.bias.tolist()]
        [-0.1, 0.1, 0.1]
    """

    def __init__(self, num_experts: int, gamma: float = 1e-3):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}.")
        self.num_experts = num_experts
        self.gamma = gamma
        self.register_buffer("bias", torch.zeros(num_experts, dtype=torch.float32))

    @torch.no_grad()
    def update(self, counts: torch.Tensor) -> None:
        """Move the bias toward balance given this step's ``[E]`` assignment counts."""
        if counts.shape != (self.num_experts,):
            raise ValueError(
                f"counts must have shape [{self.num_experts}], got {tuple(counts.shape)}."
            )
        c = counts.to(self.bias.device, torch.float32)
        self.bias += self.gamma * torch.sign(c.mean() - c)

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, gamma={self.gamma}"


@dataclass(frozen=True, kw_only=True)
class CapacityPolicy:
    """Per-expert capacity with token dropping (Switch / GShard).

    Attributes:
        capacity_factor: capacity = ``ceil(A / E * capacity_factor)`` where ``A`` is the number
            of assignments the router made (``T * k`` for top-k).
        batch_prioritized: fill slots in order of each token's top gate (highest first)
            instead of token order (Riquelme et al. 2021).
        dropped: what a token that lost *all* its experts gets from the MoE layer: ``"zero"``
            (the residual stream carries it through, Switch's behaviour) or ``"identity"``
            (the layer returns the token unchanged).
    """

    capacity_factor: float = 1.25
    batch_prioritized: bool = False
    dropped: str = "zero"

    def __post_init__(self) -> None:
        if not self.capacity_factor > 0:
            raise ValueError(f"capacity_factor must be > 0, got {self.capacity_factor}.")
        if self.dropped not in ("zero", "identity"):
            raise ValueError(f"dropped must be 'zero' or 'identity', got {self.dropped!r}.")

    def capacity(self, num_assignments: int, num_experts: int) -> int:
        """Slots per expert."""
        return max(1, math.ceil(num_assignments / num_experts * self.capacity_factor))


def apply_capacity(plan: RoutingPlan, policy: CapacityPolicy) -> RoutingPlan:
    """Drop assignments past each expert's capacity; earlier tokens (or higher gates) win.

    Examples:
        >>> import torch
        >>> plan = RoutingPlan.from_topk(torch.zeros(4, 1, dtype=torch.long), torch.ones(4, 1), 2)
        >>> kept = apply_capacity(plan, CapacityPolicy(capacity_factor=1.0))
        >>> kept.token_idx.tolist(), kept.num_dropped, kept.drop_rate
        ([0, 1], 2, 0.5)
    """
    A, E = plan.num_assignments, plan.num_experts
    if A == 0:
        return plan
    cap = policy.capacity(A, E)
    if policy.batch_prioritized:
        # rank tokens by their strongest gate; position within an expert follows that rank
        top = torch.zeros(plan.num_tokens, device=plan.weight.device, dtype=torch.float32)
        top = top.scatter_reduce(0, plan.token_idx, plan.weight.detach().float(), "amax")
        priority = torch.argsort(torch.argsort(-top, stable=True))  # token -> rank
        key = plan.expert_idx * (plan.num_tokens + 1) + priority[plan.token_idx]
    else:
        key = plan.expert_idx * (plan.num_tokens + 1) + plan.token_idx
    order = torch.argsort(key, stable=True)
    start = plan.expert_offsets[plan.expert_idx[order]]
    position = torch.empty_like(order)
    position[order] = torch.arange(A, device=order.device) - start
    return plan.select(position < cap)
