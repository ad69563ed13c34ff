"""The readable reference backend: one matmul pair per expert, in a Python loop."""

from __future__ import annotations

import torch

from moesuite.core import ops
from moesuite.core.backends.base import Backend, ExpertWeights
from moesuite.core.routing import RoutingPlan

__all__ = ["LoopBackend"]


class LoopBackend(Backend):
    """Any device, any floating dtype (fp64 included); slow when there are many experts."""

    name = "loop"

    def expert_mlp(
        self, x: torch.Tensor, plan: RoutingPlan, weights: ExpertWeights
    ) -> torch.Tensor:
        xs = ops.permute(x, plan)
        offsets = plan.expert_offsets.tolist()
        outputs = []
        for e in range(plan.num_experts):
            rows = xs[offsets[e] : offsets[e + 1]]
            if rows.shape[0] == 0:
                continue
            h = rows @ weights.w_in[e]
            if weights.b_in is not None:
                h = h + weights.b_in[e]
            out = weights.hidden(h) @ weights.w_out[e]
            if weights.b_out is not None:
                out = out + weights.b_out[e]
            outputs.append(out)
        y = (
            torch.cat(outputs)
            if outputs
            else xs.new_zeros(0, weights.w_out.shape[-1]) + 0 * xs.sum()
        )
        return ops.unpermute(y, plan)
