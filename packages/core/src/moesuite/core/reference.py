"""The oracle: an fp64, one-token-at-a-time MoE MLP, for tests and error measurements."""

from __future__ import annotations

import torch

from moesuite.core.backends.base import ExpertWeights
from moesuite.core.routing import RoutingPlan

__all__ = ["reference_expert_mlp"]


def reference_expert_mlp(
    x: torch.Tensor, plan: RoutingPlan, weights: ExpertWeights
) -> torch.Tensor:
    """``y[t] = sum over t's assignments a of weight_a * expert_(e_a)(x[t])``, in float64.

    Deliberately naive (a Python loop over assignments, accumulation in assignment order) so
    it shares no code path with the backends it checks. Differentiable: gradients of ``x``,
    gates and weights flow back in float64.
    """
    f64 = torch.float64
    w = ExpertWeights(
        weights.w_in.to(f64),
        weights.w_out.to(f64),
        None if weights.b_in is None else weights.b_in.to(f64),
        None if weights.b_out is None else weights.b_out.to(f64),
        weights.activation,
        weights.glu,
    )
    x64 = x.to(f64)
    gates = plan.weight.to(f64)
    rows: list[list[torch.Tensor]] = [[] for _ in range(plan.num_tokens)]
    for a in range(plan.num_assignments):
        t, e = int(plan.token_idx[a]), int(plan.expert_idx[a])
        h = x64[t] @ w.w_in[e]
        if w.b_in is not None:
            h = h + w.b_in[e]
        out = w.hidden(h) @ w.w_out[e]
        if w.b_out is not None:
            out = out + w.b_out[e]
        rows[t].append(gates[a] * out)
    d = weights.w_out.shape[-1]
    zero = x64.new_zeros(d)
    return (
        torch.stack([torch.stack(r).sum(0) if r else zero for r in rows])
        if rows
        else x64.new_zeros(0, d)
    )
