"""Weighted, deterministic combine of expert rows back into tokens, and its backward.

Index legend: ``T`` tokens, ``A`` assignments (expert-sorted rows), ``S`` slots per token
(the largest number of experts any token uses), ``D`` width.

Each assignment has a unique ``(token, slot)`` address (:meth:`RoutingPlan.slot_idx`: the
rank of the assignment among its token's assignments, in expert order). The slot table
``table[T, S]`` holds, for each token, its assignment rows slot by slot (``-1`` for unused
slots), and the combine sums them in slot order::

    out[t] = sum over s = 0..S-1 with table[t, s] >= 0 of gate[table[t, s]] * src[table[t, s]]

One program owns a tile of tokens and accumulates in fp32 without atomics, so the result is
bitwise reproducible on every device. The unweighted form is also the backward of the row
scatter (each token sums the gradients of its copies).

Backward (one program per tile of assignment rows)::

    grad_src[a] = gate[a] * grad_out[token[a]]      grad_gate[a] = <src[a], grad_out[token[a]]>
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
from moesuite.core.routing import RoutingPlan

__all__ = ["slot_table", "combine_rows", "combine_rows_backward"]


@autotune(
    configs=[
        triton.Config({"BLOCK_T": 32, "BLOCK_D": 128}, num_warps=4),
        triton.Config({"BLOCK_T": 16, "BLOCK_D": 256}, num_warps=4),
        triton.Config({"BLOCK_T": 64, "BLOCK_D": 64}, num_warps=4),
    ],
    key=["D", "S"],
)
@triton.jit
def _combine_kernel(
    src_ptr,
    table_ptr,
    gate_ptr,
    out_ptr,
    T,
    D,
    S,
    stride_sm,
    stride_sd,
    stride_tt,
    stride_ts,
    stride_om,
    stride_od,
    WEIGHTED: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Program ``(t, d)``: a ``[BLOCK_T, BLOCK_D]`` tile of the output, summed slot by slot."""
    pid_t = tl.program_id(0)
    pid_d = tl.program_id(1)
    tokens = (pid_t * BLOCK_T + tl.arange(0, BLOCK_T)).to(tl.int64)
    tok_mask = tokens < T
    cols = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    col_mask = cols < D
    acc = tl.zeros((BLOCK_T, BLOCK_D), dtype=tl.float32)
    for s in range(0, S):  # fixed slot order: deterministic
        rows = tl.load(table_ptr + tokens * stride_tt + s * stride_ts, mask=tok_mask, other=-1)
        used = rows >= 0
        rows = tl.where(used, rows, 0).to(tl.int64)
        vals = tl.load(
            src_ptr + rows[:, None] * stride_sm + cols[None, :] * stride_sd,
            mask=used[:, None] & col_mask[None, :],
            other=0.0,
        ).to(tl.float32)
        if WEIGHTED:
            gates = tl.load(gate_ptr + rows, mask=used, other=0.0).to(tl.float32)
            vals = vals * gates[:, None]
        acc += vals
    tl.store(
        out_ptr + tokens[:, None] * stride_om + cols[None, :] * stride_od,
        acc.to(out_ptr.dtype.element_ty),
        mask=tok_mask[:, None] & col_mask[None, :],
    )


@autotune(
    configs=[
        triton.Config({"BLOCK_M": 32, "BLOCK_D": 128}, num_warps=4),
        triton.Config({"BLOCK_M": 16, "BLOCK_D": 256}, num_warps=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_D": 64}, num_warps=4),
    ],
    key=["D"],
)
@triton.jit
def _combine_backward_kernel(
    grad_out_ptr,
    token_ptr,
    src_ptr,
    gate_ptr,
    grad_src_ptr,
    grad_gate_ptr,
    A,
    D,
    stride_gm,
    stride_gd,
    stride_sm,
    stride_sd,
    stride_dm,
    stride_dd,
    BLOCK_M: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Program ``m``: ``BLOCK_M`` assignment rows, sweeping the width in ``BLOCK_D`` chunks."""
    pid = tl.program_id(0)
    rows = (pid * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    row_mask = rows < A
    tokens = tl.load(token_ptr + rows, mask=row_mask, other=0).to(tl.int64)
    gates = tl.load(gate_ptr + rows, mask=row_mask, other=0.0).to(tl.float32)
    dot = tl.zeros((BLOCK_M,), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        cols = d0 + tl.arange(0, BLOCK_D)
        mask = row_mask[:, None] & (cols < D)[None, :]
        g = tl.load(
            grad_out_ptr + tokens[:, None] * stride_gm + cols[None, :] * stride_gd,
            mask=mask,
            other=0.0,
        ).to(tl.float32)
        v = tl.load(
            src_ptr + rows[:, None] * stride_sm + cols[None, :] * stride_sd, mask=mask, other=0.0
        ).to(tl.float32)
        tl.store(
            grad_src_ptr + rows[:, None] * stride_dm + cols[None, :] * stride_dd,
            (g * gates[:, None]).to(grad_src_ptr.dtype.element_ty),
            mask=mask,
        )
        dot += tl.sum(g * v, 1)
    tl.store(grad_gate_ptr + rows, dot.to(grad_gate_ptr.dtype.element_ty), mask=row_mask)


def slot_table(plan: RoutingPlan) -> torch.Tensor:
    """``[T, S]`` int64: row of token ``t``'s ``s``-th assignment (by expert), ``-1`` if none.

    ``S`` is the largest number of assignments of any token (``k`` for top-k plans; 0 when
    the plan has no assignments).

    Examples:
        >>> import torch
        >>> plan = RoutingPlan.from_assignments(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 2]),
        ...                                     torch.ones(3), num_experts=3, num_tokens=3)
        >>> slot_table(plan).tolist()
        [[0, 2], [1, -1], [-1, -1]]
    """
    T, A = plan.num_tokens, plan.num_assignments
    device = plan.token_idx.device
    if A == 0:
        return torch.empty(T, 0, dtype=torch.long, device=device)
    rows = plan.token_major_rows
    if rows is not None:  # uniform k: cached on the plan
        return rows.view(T, A // T)
    S = int(plan.experts_per_token().max())
    table = torch.full((T * S,), -1, dtype=torch.long, device=device)
    table[plan.token_idx * S + plan.slot_idx()] = torch.arange(A, device=device)
    return table.view(T, S)


def combine_rows(
    src: torch.Tensor, table: torch.Tensor, gates: torch.Tensor | None = None
) -> torch.Tensor:
    """``out[t] = sum_s gates[table[t, s]] * src[table[t, s]]`` over used slots, in slot order.

    Args:
        src: ``[A, D]`` expert-sorted rows (float32/bfloat16/float16).
        table: ``[T, S]`` slot table from :func:`slot_table`.
        gates: ``[A]`` float gates, or ``None`` for a plain sum.

    Returns:
        ``[T, D]`` in ``src``'s dtype (accumulated in fp32); tokens without assignments get 0.

    Examples:
        >>> import torch
        >>> table = torch.tensor([[0, 2], [1, -1]])
        >>> out = combine_rows(
        ...     torch.tensor([[1.0], [2.0], [4.0]]), table, torch.tensor([0.5, 1.0, 0.25])
        ... )
        >>> out.tolist()
        [[1.5], [2.0]]
    """
    check_float("src", src, 2)
    check_index("table", table, src, dim=2)
    if gates is not None:
        _check_gates(gates, src.shape[0], src)
    (T, S), D = table.shape, src.shape[1]
    if S > 0 and src.shape[0] == 0:
        raise ValueError(
            f"table has {S} slots per token but src has no rows; build both from one plan."
        )
    out = src.new_empty(T, D)
    if T == 0 or D == 0:
        return out
    if S == 0:  # no assignments at all
        return out.zero_()
    check_launchable(_combine_kernel, "src", src)
    g = gates if gates is not None else src  # dummy pointer, never read

    def grid(meta):
        return (triton.cdiv(T, meta["BLOCK_T"]), triton.cdiv(D, meta["BLOCK_D"]))

    _combine_kernel[grid](
        src,
        table,
        g,
        out,
        T,
        D,
        S,
        src.stride(0),
        src.stride(1),
        table.stride(0),
        table.stride(1),
        out.stride(0),
        out.stride(1),
        WEIGHTED=gates is not None,
    )
    return out


def combine_rows_backward(
    grad_out: torch.Tensor, token_idx: torch.Tensor, src: torch.Tensor, gates: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the weighted combine w.r.t. its rows and its gates.

    Args:
        grad_out: ``[T, D]`` gradient of the combined output.
        token_idx: ``[A]`` the token of each row (``RoutingPlan.token_idx``).
        src: ``[A, D]`` the rows the forward combined.
        gates: ``[A]`` the gates the forward used.

    Returns:
        ``(grad_src[A, D]`` in ``src``'s dtype, ``grad_gates[A]`` in ``gates``' dtype ``)``.

    Examples:
        >>> import torch
        >>> gs, gg = combine_rows_backward(
        ...     torch.tensor([[1.0], [3.0]]),
        ...     torch.tensor([0, 1, 0]),
        ...     torch.tensor([[1.0], [2.0], [4.0]]),
        ...     torch.tensor([0.5, 1.0, 0.25]),
        ... )
        >>> gs.tolist(), gg.tolist()
        ([[0.5], [3.0], [0.25]], [1.0, 6.0, 4.0])
    """
    check_float("src", src, 2)
    check_float("grad_out", grad_out, 2, like=src, like_name="src")
    check_index("token_idx", token_idx, src)
    _check_gates(gates, src.shape[0], src)
    A, D = src.shape
    if grad_out.shape[1] != D:
        raise ValueError(f"grad_out must have {D} columns like src, got {tuple(grad_out.shape)}.")
    if token_idx.shape[0] != A:
        raise ValueError(
            f"token_idx must have one entry per row of src ({A}), got {token_idx.shape[0]}."
        )
    grad_src = src.new_empty(A, D)
    grad_gates = gates.new_empty(A)
    if A == 0:
        return grad_src, grad_gates
    if D == 0:
        return grad_src, grad_gates.zero_()
    check_launchable(_combine_backward_kernel, "src", src)

    def grid(meta):
        return (triton.cdiv(A, meta["BLOCK_M"]),)

    _combine_backward_kernel[grid](
        grad_out,
        token_idx.contiguous(),
        src,
        gates.contiguous(),
        grad_src,
        grad_gates,
        A,
        D,
        grad_out.stride(0),
        grad_out.stride(1),
        src.stride(0),
        src.stride(1),
        grad_src.stride(0),
        grad_src.stride(1),
    )
    return grad_src, grad_gates


def _check_gates(gates: object, rows: int, like: torch.Tensor) -> None:
    if not isinstance(gates, torch.Tensor) or gates.dim() != 1 or gates.shape[0] != rows:
        shape = tuple(gates.shape) if isinstance(gates, torch.Tensor) else type(gates).__name__
        raise ValueError(f"gates must have shape [A] = [{rows}] (one per row), got {shape}.")
    if gates.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise TypeError(f"gates must be float32, bfloat16 or float16, got {gates.dtype}.")
    if gates.device != like.device:
        raise ValueError(
            f"gates are on {gates.device} but the rows are on {like.device}; "
            "move them to one device."
        )
