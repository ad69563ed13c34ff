"""Context-conditioned neural vector fields: the experts of MixER.

Expert ``e`` is an MLP ``f_e(y, xi) = MLP_e([y, xi])`` over the state ``y`` and the environment's
context vector ``xi`` (CAVIA-style concatenation conditioning). The ``E`` experts are stored as
stacked weights ``[E, in, out]`` so that, for a top-1 routing of ``G`` groups of trajectories
(one group per environment), each group's expert weights are gathered *once* and every
vector-field evaluation inside the integrator is a batched matmul, whatever ``E`` is.

Index legend: ``E`` experts, ``G`` groups (environments), ``n`` trajectories per group,
``D`` state size, ``C`` context size, ``H`` hidden width.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from moesuite.core.activations import get_activation
from moesuite.core.routing import RoutingPlan

__all__ = ["ContextVectorFields", "BoundVectorField", "expert_param_count"]


def expert_param_count(state_dim: int, context_dim: int, hidden: int, depth: int) -> int:
    """Parameters of one expert MLP with ``depth`` hidden layers of width ``hidden``."""
    return (
        (state_dim + context_dim + 1) * hidden
        + (depth - 1) * (hidden + 1) * hidden
        + (hidden + 1) * state_dim
    )


class BoundVectorField:
    """``f(t, y[G, n, D]) -> [G, n, D]``: experts bound to their groups (weights gathered once).

    ``weights`` holds one ``(w, b)`` per layer: ``w`` is ``[G, in, out]`` (each group's own
    expert) or ``[in, out]`` (one field shared by every group); ``b`` broadcasts to ``[G, n, out]``.
    """

    def __init__(
        self,
        weights: list[tuple[torch.Tensor, torch.Tensor]],
        activation: Callable[[torch.Tensor], torch.Tensor],
        scale: torch.Tensor | None,
    ):
        self.weights = weights
        self.activation = activation
        self.scale = scale  # [G, 1, D] gate weight times mask, or None

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = y
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(self.weights):
            # [G, in, out] per-group weights (batched matmul) or [in, out] shared by all groups
            h = torch.baddbmm(b, h, w) if w.dim() == 3 else torch.matmul(h, w) + b
            if i < last:
                h = self.activation(h)
        return h if self.scale is None else h * self.scale


class ContextVectorFields(nn.Module):
    """``E`` context-conditioned MLP vector fields stored as stacked weights.

    Args:
        num_experts: ``E``.
        state_dim: ``D``.
        context_dim: ``C``.
        hidden: hidden width ``H``.
        depth: number of hidden layers (``>= 1``).
        activation: any name of :func:`moesuite.core.activations.get_activation` (``silu`` is
            the "swish" of the MixER paper).
        same_init: start every expert from identical weights (as the authors' MixER code does
            with ``same_expert_init``), so experts differ only through the data routed to them.

    Shapes:
        layer 0: ``w_y [E, D, H]``, ``w_c [E, C, H]``, ``b [E, H]``; hidden layers
        ``[E, H, H]``; output ``[E, H, D]``.

    Examples:
        >>> import torch
        >>> from moesuite.core.routing import RoutingPlan
        >>> _ = torch.manual_seed(0)
        >>> fields = ContextVectorFields(3, state_dim=2, context_dim=4, hidden=8, depth=2)
        >>> plan = RoutingPlan.from_topk(torch.tensor([[2], [0]]), torch.ones(2, 1), 3)
        >>> f = fields.bind(torch.randn(2, 4), plan)
        >>> tuple(f(None, torch.randn(2, 5, 2)).shape)
        (2, 5, 2)
    """

    def __init__(
        self,
        num_experts: int,
        state_dim: int,
        context_dim: int,
        hidden: int = 64,
        depth: int = 2,
        activation: str = "silu",
        same_init: bool = True,
    ):
        super().__init__()
        for name, value in (
            ("num_experts", num_experts),
            ("state_dim", state_dim),
            ("context_dim", context_dim),
            ("hidden", hidden),
            ("depth", depth),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        self.activation_name = activation
        self.activation = get_activation(activation)
        self.num_experts, self.state_dim, self.context_dim = num_experts, state_dim, context_dim
        self.hidden, self.depth, self.same_init = hidden, depth, same_init
        E, D, C, H = num_experts, state_dim, context_dim, hidden
        self.w_y = nn.Parameter(torch.empty(E, D, H))
        self.w_c = nn.Parameter(torch.empty(E, C, H))
        self.b_in = nn.Parameter(torch.empty(E, H))
        self.w_hidden = nn.ParameterList(
            [nn.Parameter(torch.empty(E, H, H)) for _ in range(depth - 1)]
        )
        self.b_hidden = nn.ParameterList(
            [nn.Parameter(torch.empty(E, H)) for _ in range(depth - 1)]
        )
        self.w_out = nn.Parameter(torch.empty(E, H, D))
        self.b_out = nn.Parameter(torch.empty(E, D))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``-style uniform initialisation (bound ``1/sqrt(fan_in)``), per expert."""
        fan_in0 = self.state_dim + self.context_dim
        layers = [((self.w_y, self.w_c), self.b_in, fan_in0)]
        layers += [
            ((w,), b, self.hidden) for w, b in zip(self.w_hidden, self.b_hidden, strict=True)
        ]
        layers += [((self.w_out,), self.b_out, self.hidden)]
        with torch.no_grad():
            for ws, b, fan_in in layers:
                bound = 1.0 / math.sqrt(fan_in)
                for w in (*ws, b):
                    w.uniform_(-bound, bound)
                    if self.same_init:
                        w.copy_(w[:1].clone().expand_as(w))

    @torch.no_grad()
    def copy_expert(self, source: int, target: int | None = None) -> None:
        """Copy expert ``source``'s weights into expert ``target`` (``None``: all), in place."""
        index = slice(None) if target is None else target
        for p in self.parameters():
            p[index] = p[source].clone()

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, state_dim={self.state_dim}, "
            f"context_dim={self.context_dim}, "
            f"hidden={self.hidden}, depth={self.depth}, activation={self.activation_name!r}"
        )

    def bind_indices(
        self,
        context: torch.Tensor,
        expert_idx: torch.Tensor,
        gate: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> BoundVectorField:
        """Bind group ``g`` to expert ``expert_idx[g]`` with context ``context[g]``.

        Args:
            context: ``[G, C]``.
            expert_idx: ``[G]`` int64.
            gate: optional ``[G]`` multiplier of each group's vector field (a router's gate).
            mask: optional ``[G, D]`` bool/float; masked state dimensions get zero derivative
                (padding of lower-dimensional families stays zero).
        """
        if context.dim() != 2 or context.shape[1] != self.context_dim:
            raise ValueError(
                f"context must be [G, C={self.context_dim}], got {tuple(context.shape)}."
            )
        G = context.shape[0]
        if expert_idx.shape != (G,):
            raise ValueError(f"expert_idx must be [G={G}], got {tuple(expert_idx.shape)}.")
        idx = expert_idx.long()
        if self.num_experts == 1:  # one shared field: plain matmuls, no per-group weight copies
            pick = lambda p: p[0]  # noqa: E731
            b0 = (context @ self.w_c[0] + self.b_in[0]).unsqueeze(1)  # [G, 1, H]
        else:
            pick = lambda p: p[idx]  # noqa: E731
            # the context part of layer 0 is constant along a trajectory: fold it into the bias
            b0 = torch.baddbmm(
                self.b_in[idx].unsqueeze(1), context.unsqueeze(1), self.w_c[idx]
            )  # [G, 1, H]
        weights = [(pick(self.w_y), b0)]
        weights += [
            (pick(w), pick(b).unsqueeze(-2))
            for w, b in zip(self.w_hidden, self.b_hidden, strict=True)
        ]
        weights.append((pick(self.w_out), pick(self.b_out).unsqueeze(-2)))
        scale = None
        if gate is not None:
            scale = gate.reshape(G, 1, 1).expand(G, 1, self.state_dim)
        if mask is not None:
            m = mask.to(context.dtype).reshape(G, 1, self.state_dim)
            scale = m if scale is None else scale * m
        return BoundVectorField(weights, self.activation, scale)

    def bind(
        self, context: torch.Tensor, plan: RoutingPlan, mask: torch.Tensor | None = None
    ) -> BoundVectorField:
        """Bind each group (token of the plan) to its routed expert, scaled by the plan's gate.

        The plan must give every group exactly one expert (top-1 routing).
        """
        if plan.num_experts != self.num_experts:
            raise ValueError(
                f"plan has num_experts={plan.num_experts}, these experts number {self.num_experts}."
            )
        if plan.num_tokens != context.shape[0] or not bool((plan.experts_per_token() == 1).all()):
            raise ValueError(
                f"the vector-field experts need a top-1 plan over the {context.shape[0]} groups "
                "(exactly one expert per environment)."
            )
        order = torch.argsort(plan.token_idx)
        return self.bind_indices(context, plan.expert_idx[order], plan.weight[order], mask)
