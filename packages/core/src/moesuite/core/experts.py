"""Expert modules: same-shaped MLP experts (fast backends) and heterogeneous expert lists.

Both take the routing result as input, ``experts(x[T, d_model], plan) -> [T, d_model]``, and
return each token's expert outputs combined by the plan's gates (deterministically).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moesuite.core import backends as _backends
from moesuite.core import ops
from moesuite.core.activations import get_activation
from moesuite.core.backends.base import ExpertWeights
from moesuite.core.routing import RoutingPlan

__all__ = ["GroupedExperts", "ExpertList"]


def check_expert_call(x: torch.Tensor, plan: RoutingPlan, d_model: int, num_experts: int) -> None:
    """Validate the ``experts(x[T, d_model], plan)`` contract; one error naming the argument."""
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != d_model:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape [T, d_model={d_model}], got {shape}.")
    if not isinstance(plan, RoutingPlan):
        raise TypeError(f"plan must be a RoutingPlan, got {type(plan).__name__}.")
    if plan.num_tokens != x.shape[0]:
        raise ValueError(
            f"plan routes {plan.num_tokens} tokens but x has {x.shape[0]} rows; route the same x."
        )
    if plan.num_experts != num_experts:
        raise ValueError(
            f"plan has num_experts={plan.num_experts}, these experts number {num_experts}."
        )


class GroupedExperts(nn.Module):
    """``E`` same-shaped MLP experts stored as stacked weights and run by a backend.

    Each expert is ``act(x W_in + b_in) W_out + b_out`` (with ``glu``:
    ``(act(x W_gate) * x W_up) W_out``, e.g. SwiGLU with ``activation="silu"``).

    Args:
        num_experts: ``E``.
        d_model: token width.
        d_hidden: hidden width of each expert.
        activation: ``gelu``, ``gelu_tanh``, ``relu``, ``silu``, ``tanh`` or ``identity``.
        glu: gated linear unit (``w_in`` then holds ``[gate | up]``: ``2 * d_hidden`` columns).
        bias: learn ``b_in`` and ``b_out``.
        backend: ``auto`` (fastest available for the device and dtype), ``loop``,
            ``grouped_mm`` or ``triton``; see :mod:`moesuite.core.backends`.

    Shapes:
        ``w_in [E, d_model, d_hidden or 2 * d_hidden]``, ``w_out [E, d_hidden, d_model]``.

    Examples:
        >>> import torch
        >>> from moesuite.core.routing import RoutingPlan
        >>> experts = GroupedExperts(num_experts=4, d_model=8, d_hidden=16)
        >>> plan = RoutingPlan.from_topk(torch.tensor([[0, 3], [2, 3]]), torch.full((2, 2), 0.5), 4)
        >>> tuple(experts(torch.randn(2, 8), plan).shape)
        (2, 8)
    """

    def __init__(
        self,
        num_experts: int,
        d_model: int,
        d_hidden: int,
        activation: str = "gelu",
        glu: bool = False,
        bias: bool = False,
        backend: str = "auto",
    ):
        super().__init__()
        for name, value in (
            ("num_experts", num_experts),
            ("d_model", d_model),
            ("d_hidden", d_hidden),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        get_activation(activation)
        if backend not in _backends.names():
            raise ValueError(f"unknown backend {backend!r}; expected one of {_backends.names()}.")
        self.num_experts = num_experts
        self.d_model = d_model
        self.d_hidden = d_hidden
        self.activation = activation
        self.glu = glu
        self.backend = backend
        width = 2 * d_hidden if glu else d_hidden
        self.w_in = nn.Parameter(torch.empty(num_experts, d_model, width))
        self.w_out = nn.Parameter(torch.empty(num_experts, d_hidden, d_model))
        self.b_in = nn.Parameter(torch.zeros(num_experts, width)) if bias else None
        self.b_out = nn.Parameter(torch.zeros(num_experts, d_model)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Per-expert ``nn.Linear`` initialisation (uniform, bound ``1/sqrt(fan_in)``)."""
        for w, fan_in in ((self.w_in, self.d_model), (self.w_out, self.d_hidden)):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(w, -bound, bound)

    def weights(self) -> ExpertWeights:
        """The parameters bundled for a backend."""
        return ExpertWeights(
            self.w_in, self.w_out, self.b_in, self.b_out, self.activation, self.glu
        )

    def forward(self, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """Run ``x[T, d_model]`` through the plan's experts; returns ``[T, d_model]``."""
        check_expert_call(x, plan, self.d_model, self.num_experts)
        if x.dtype != self.w_in.dtype:
            raise TypeError(
                f"x has dtype {x.dtype} but the expert weights are {self.w_in.dtype}; cast one "
                f"of them (e.g. experts.to({x.dtype}))."
            )
        backend = _backends.resolve(self.backend, x.device, x.dtype)
        return backend.expert_mlp(x, plan, self.weights())

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, d_model={self.d_model}, d_hidden={self.d_hidden}, "
            f"activation={self.activation!r}, glu={self.glu}, bias={self.b_in is not None}, "
            f"backend={self.backend!r}"
        )


class ExpertList(nn.Module):
    """Heterogeneous experts: any ``nn.Module`` per expert, ``[n, d_model] -> [n, d_model]``.

    Runs each expert on the rows the plan gives it (experts with no rows are skipped) and
    combines the outputs per token with the plan's gates, exactly like
    :class:`GroupedExperts`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from moesuite.core.routing import RoutingPlan
        >>> experts = ExpertList(
        ...     [nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4))]
        ... )
        >>> plan = RoutingPlan.from_topk(torch.tensor([[1], [0], [1]]), torch.ones(3, 1), 2)
        >>> tuple(experts(torch.randn(3, 4), plan).shape)
        (3, 4)
    """

    def __init__(self, experts: list[nn.Module] | nn.ModuleList, d_model: int | None = None):
        super().__init__()
        if len(experts) == 0:
            raise ValueError("experts must hold at least one module.")
        self.experts = nn.ModuleList(experts)
        self.d_model = d_model

    @property
    def num_experts(self) -> int:
        """``E``."""
        return len(self.experts)

    def forward(self, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """Run ``x[T, d_model]`` through the plan's experts; returns ``[T, d_model]``."""
        check_expert_call(x, plan, self.d_model or x.shape[-1], self.num_experts)
        xs = ops.permute(x, plan)
        offsets = plan.expert_offsets.tolist()
        outputs = []
        for e, expert in enumerate(self.experts):
            rows = xs[offsets[e] : offsets[e + 1]]
            if rows.shape[0]:
                out = expert(rows)
                if out.shape != rows.shape:
                    raise ValueError(
                        f"expert {e} ({type(expert).__name__}) must map [n, {x.shape[1]}] "
                        f"to the same shape, got {tuple(out.shape)}."
                    )
                outputs.append(out)
        y = torch.cat(outputs) if outputs else xs.new_zeros(0, x.shape[1]) + 0 * xs.sum()
        return ops.unpermute(y, plan)
