"""moesuite's own Triton kernels as a backend (CUDA; CPU only under ``TRITON_INTERPRET=1``)."""

from __future__ import annotations

import importlib.util
import os

import torch

from moesuite.core.backends.base import Backend, ExpertWeights
from moesuite.core.routing import RoutingPlan

__all__ = ["TritonBackend"]


class TritonBackend(Backend):
    """Scatter + grouped GEMM + combine kernels in Triton, forward and backward.

    On a CPU-only machine Triton runs only in its interpreter (``TRITON_INTERPRET=1`` set
    before ``import triton``): exact fp32, far too slow for training, used to test the kernels.
    """

    name = "triton"

    def unavailable_reason(self, device: torch.device, dtype: torch.dtype) -> str | None:
        if importlib.util.find_spec("triton") is None:
            return "triton is not installed (pip install 'moesuite-core[triton]')"
        if device.type == "cuda":
            if dtype not in (torch.float32, torch.bfloat16, torch.float16):
                return f"the Triton kernels support float32, bfloat16 and float16, not {dtype}"
            return None
        if device.type == "cpu":
            if os.environ.get("TRITON_INTERPRET") != "1":
                return (
                    "no GPU; on the CPU Triton runs only with TRITON_INTERPRET=1 "
                    "(correctness, not speed)"
                )
            if dtype != torch.float32:
                return (
                    "the Triton interpreter is exact only in float32 "
                    f"(bf16 tl.dot is wrong there), not {dtype}"
                )
            return None
        return f"not supported on {device.type}"

    def expert_mlp(
        self, x: torch.Tensor, plan: RoutingPlan, weights: ExpertWeights
    ) -> torch.Tensor:
        from moesuite.core.kernels.triton.ops import triton_expert_mlp

        return triton_expert_mlp(x, plan, weights)
