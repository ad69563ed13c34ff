"""Scatter token rows into expert order: ``out[a] = src[index[a]]`` (the plan's permute).

Index legend: ``T`` source rows (tokens), ``R`` gathered rows (assignments), ``D`` width.

Its backward is a deterministic per-token sum of the gathered rows' gradients, which is the
unweighted combine (:func:`moesuite.core.kernels.triton.combine.combine_rows`).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from moesuite.core.kernels.triton._runtime import (
    autotune,
    check_float,
    check_index,
    check_launchable,
)

__all__ = ["gather_rows"]


@autotune(
    configs=[
        triton.Config({"BLOCK_M": 32, "BLOCK_D": 128}, num_warps=4),
        triton.Config({"BLOCK_M": 16, "BLOCK_D": 256}, num_warps=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_D": 64}, num_warps=4),
    ],
    key=["D"],
)
@triton.jit
def _gather_rows_kernel(
    src_ptr,
    index_ptr,
    out_ptr,
    R,
    D,
    stride_sm,
    stride_sd,
    stride_om,
    stride_od,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """One program copies a ``[BLOCK_M, BLOCK_D]`` tile of gathered rows."""
    pid_m = tl.program_id(0)
    pid_d = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_mask = rows < R
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    col_mask = cols < D
    src_rows = tl.load(index_ptr + rows, mask=row_mask, other=0).to(tl.int64)
    mask = row_mask[:, None] & col_mask[None, :]
    vals = tl.load(
        src_ptr + src_rows[:, None] * stride_sm + cols[None, :] * stride_sd, mask=mask, other=0.0
    )
    tl.store(
        out_ptr + rows.to(tl.int64)[:, None] * stride_om + cols[None, :] * stride_od,
        vals,
        mask=mask,
    )


def gather_rows(src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows of ``src[T, D]`` picked by ``index[R]``: ``[R, D]`` (``src.index_select(0, index)``).

    Args:
        src: ``[T, D]`` float32/bfloat16/float16 rows.
        index: ``[R]`` integer row numbers in ``[0, T)`` (not checked on the device, like
            ``index_select`` on CUDA; the routing plan guarantees them).

    Examples:
        >>> import torch
        >>> gather_rows(torch.arange(6.0).view(3, 2), torch.tensor([2, 0, 2])).tolist()
        [[4.0, 5.0], [0.0, 1.0], [4.0, 5.0]]
    """
    check_float("src", src, 2)
    check_index("index", index, src)
    R, D = index.shape[0], src.shape[1]
    out = src.new_empty(R, D)
    if R == 0 or D == 0:
        return out
    check_launchable(_gather_rows_kernel, "src", src)

    def grid(meta):
        return (triton.cdiv(R, meta["BLOCK_M"]), triton.cdiv(D, meta["BLOCK_D"]))

    _gather_rows_kernel[grid](
        src,
        index.contiguous(),
        out,
        R,
        D,
        src.stride(0),
        src.stride(1),
        out.stride(0),
        out.stride(1),
    )
    return out
