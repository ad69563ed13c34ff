"""moesuite's Triton kernels for expert MLPs: scatter, grouped GEMM, combine (forward and backward).

Importing this package imports ``triton`` (the ``moesuite-core[triton]`` extra; it also ships
with CUDA builds of torch). On a GPU the kernels are compiled and autotuned; on a CPU they run
only in Triton's interpreter (``TRITON_INTERPRET=1`` set before ``import triton``), exactly in
float32 but slowly, which is how the test suite checks them.

Modules: :mod:`.scatter` (token rows into expert order), :mod:`.grouped_gemm` (per-expert GEMM
and weight gradient), :mod:`.combine` (weighted deterministic combine and its backward),
:mod:`.ops` (custom ops, autograd, :func:`triton_expert_mlp`).
"""

from moesuite.core.kernels.triton.combine import combine_rows, combine_rows_backward, slot_table
from moesuite.core.kernels.triton.grouped_gemm import grouped_mm, grouped_weight_grad
from moesuite.core.kernels.triton.ops import (
    combine,
    grouped_linear,
    scatter_rows,
    triton_expert_mlp,
)
from moesuite.core.kernels.triton.scatter import gather_rows

__all__ = [
    "gather_rows",
    "grouped_mm",
    "grouped_weight_grad",
    "slot_table",
    "combine_rows",
    "combine_rows_backward",
    "scatter_rows",
    "grouped_linear",
    "combine",
    "triton_expert_mlp",
]
