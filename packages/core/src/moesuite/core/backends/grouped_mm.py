"""Sort, one grouped GEMM per projection, deterministic combine: the CPU default."""

from __future__ import annotations

import torch

from moesuite.core import ops
from moesuite.core.backends.base import Backend, ExpertWeights
from moesuite.core.routing import RoutingPlan

__all__ = ["GroupedMMBackend"]


class GroupedMMBackend(Backend):
    """torch's native grouped GEMM (``torch.nn.functional.grouped_mm``) with our autograd."""

    name = "grouped_mm"

    def unavailable_reason(self, device: torch.device, dtype: torch.dtype) -> str | None:
        if not ops.has_native_grouped_mm():
            return f"torch {torch.__version__} has no torch.nn.functional.grouped_mm (needs >= 2.9)"
        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            return (
                f"torch's grouped GEMM does not support {dtype} (float32, bfloat16, float16 only)"
            )
        if device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 0):
            return "torch's CUDA grouped GEMM needs compute capability >= 8.0"
        if device.type not in ("cpu", "cuda"):
            return f"not supported on {device.type}"
        return None

    def expert_mlp(
        self, x: torch.Tensor, plan: RoutingPlan, weights: ExpertWeights
    ) -> torch.Tensor:
        xs = ops.permute(x, plan)
        h = ops.grouped_mm(xs, weights.w_in, plan.expert_offsets)
        if weights.b_in is not None:
            h = h + weights.b_in.index_select(0, plan.expert_idx)
        out = ops.grouped_mm(weights.hidden(h), weights.w_out, plan.expert_offsets)
        if weights.b_out is not None:
            out = out + weights.b_out.index_select(0, plan.expert_idx)
        return ops.unpermute(out, plan)
