"""Router base class and its result type.

Every router maps tokens ``x[T, d_model]`` to a :class:`RouterOutput`: the routing plan the
experts execute, the raw logits and probabilities (fp32), aux losses as values, and an
optional state that a recurrent router hands to the next layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from moesuite.core.routing import RoutingPlan

__all__ = ["Router", "RouterOutput"]


@dataclass
class RouterOutput:
    """What a router returns.

    Attributes:
        plan: the assignments the experts will compute.
        logits: ``[T, E]`` fp32 router logits.
        probs: ``[T, E]`` fp32 routing probabilities (softmax or sigmoid scores).
        aux: unweighted auxiliary losses by name (scalar fp32 tensors).
        state: what the next layer's router receives (recurrent routers), else ``None``.
        aux_weights: the coefficient of each aux loss in :attr:`aux_loss`.
    """

    plan: RoutingPlan
    logits: torch.Tensor
    probs: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
    state: Any = None
    aux_weights: dict[str, float] = field(default_factory=dict)

    @property
    def aux_loss(self) -> torch.Tensor:
        """Weighted sum of the aux losses (0 when the router has none)."""
        total = self.logits.new_zeros((), dtype=torch.float32)
        for name, value in self.aux.items():
            w = self.aux_weights.get(name, 0.0)
            if w:
                total = total + w * value
        return total


class Router(nn.Module):
    """Base class: validates inputs, computes fp32 logits, leaves selection to subclasses.

    Subclasses implement :meth:`route` and may override :meth:`compute_logits`.

    Attributes:
        causal: ``True`` when, in eval mode, a token's routing depends on that token only
            (safe for forecasting and streaming). Expert choice sets it to ``False``.
    """

    causal: ClassVar[bool] = True

    def __init__(self, d_model: int, num_experts: int, k: int = 1):
        super().__init__()
        if not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}.")
        if not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"num_experts must be a positive int, got {num_experts!r}.")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}.")
        if k > num_experts:
            raise ValueError(
                f"k={k} is larger than num_experts={num_experts}: a token cannot use more "
                f"experts than exist; use k <= {num_experts}."
            )
        self.d_model = d_model
        self.num_experts = num_experts
        self.k = k
        self.weight = nn.Parameter(torch.empty(num_experts, d_model))
        nn.init.normal_(self.weight, std=d_model**-0.5)

    # -- helpers shared by subclasses ------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear error unless ``x`` is a floating ``[T, d_model]`` tensor."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"x must be a torch.Tensor of shape [T, {self.d_model}], got {type(x).__name__}."
            )
        if x.dim() != 2 or x.shape[1] != self.d_model:
            raise ValueError(
                f"x must have shape [T, d_model={self.d_model}], got {tuple(x.shape)}; "
                "flatten batch dimensions first (MoELayer does this for you)."
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}.")

    def compute_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, E]`` fp32 logits ``x W^T`` (the router always runs in fp32)."""
        return x.float() @ self.weight.float().t()

    @staticmethod
    def check_logits(logits: torch.Tensor) -> None:
        """Raise if any logit is NaN or infinite (a diverged model or a bad input)."""
        if not torch.isfinite(logits).all():
            bad = "NaN" if torch.isnan(logits).any() else "infinite"
            raise FloatingPointError(
                f"router logits contain {bad} values: the input x or the router weights are "
                "not finite; check the preceding layers, lower the learning rate or enable "
                "the z-loss."
            )

    def forward(self, x: torch.Tensor, state: Any = None) -> RouterOutput:
        """Route ``x[T, d_model]``; ``state`` is the previous layer's router state, if any."""
        self.check_input(x)
        return self.route(x, state)

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_experts={self.num_experts}, k={self.k}"
