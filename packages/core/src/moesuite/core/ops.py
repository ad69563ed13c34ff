"""Permute, deterministic combine, and a grouped GEMM with its own autograd.

Index legend: ``T`` tokens, ``A`` assignments (rows sorted by expert), ``E`` experts,
``K`` input width, ``N`` output width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from moesuite.core.routing import RoutingPlan

__all__ = ["permute", "unpermute", "grouped_mm", "has_native_grouped_mm", "grouped_mm_alignment"]


class _GatherRows(torch.autograd.Function):
    """``x[index]`` whose backward is a gather too, for the two index patterns of a plan.

    - ``permute`` with uniform k: ``x[token_idx]`` repeats each token k times; its gradient is
      ``grad[token_major_rows].view(T, k, d).sum(1)`` (no zero-fill, no scatter-add).
    - a permutation ``perm`` with inverse ``inv``: the gradient is ``grad[inv]``.
    Both are deterministic on every device (no atomics).
    """

    @staticmethod
    def forward(ctx, x, index, back_index, k):  # type: ignore[override]
        ctx.save_for_backward(back_index)
        ctx.k = k
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (back_index,) = ctx.saved_tensors
        g = grad.index_select(0, back_index)
        if ctx.k > 1:
            g = g.view(-1, ctx.k, g.shape[-1]).sum(1)
        return g, None, None, None


def permute(x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
    """Gather token rows into expert order: ``[T, d] -> [A, d]``."""
    rows = plan.token_major_rows
    if rows is None or not torch.is_grad_enabled():
        return x.index_select(0, plan.token_idx)
    return _GatherRows.apply(x, plan.token_idx, rows, plan.num_assignments // plan.num_tokens)


def unpermute(y: torch.Tensor, plan: RoutingPlan, weighted: bool = True) -> torch.Tensor:
    """Combine expert rows back into tokens: ``[A, d] -> [T, d]``, deterministically.

    Each assignment is written to a unique ``(token, slot)`` cell of a ``[T, max_k, d]``
    buffer (no atomics, no accumulation order to depend on) and the slots are summed in a
    fixed order, so the result is bitwise reproducible on every device. With ``weighted``,
    rows are first scaled by the plan's gates (gradients flow to the gates).

    Examples:
        >>> import torch
        >>> plan = RoutingPlan.from_topk(torch.tensor([[0, 1]]), torch.tensor([[0.25, 0.75]]), 2)
        >>> unpermute(torch.tensor([[4.0], [8.0]]), plan).tolist()
        [[7.0]]
    """
    T, d = plan.num_tokens, y.shape[-1]
    rows = plan.token_major_rows
    if rows is not None:
        # uniform k: gather to [T, k, d] and reduce the k slots in a fixed order (one bmm)
        k = plan.num_assignments // T
        inverse = torch.empty_like(rows)
        inverse[rows] = torch.arange(rows.numel(), device=rows.device)
        yt = _GatherRows.apply(y, rows, inverse, 1).view(T, k, d)
        if not weighted:
            return yt.sum(1)
        w = plan.weight.to(y.dtype).index_select(0, rows).view(T, 1, k)
        return torch.bmm(w, yt).squeeze(1)
    if weighted:
        y = y * plan.weight.to(y.dtype).unsqueeze(-1)
    if plan.num_assignments == 0:
        # keep the autograd graph: the caller's backward must still reach x and the gates
        return y.new_zeros(T, d) + 0 * y.sum()
    per_token = plan.experts_per_token()
    max_k = int(per_token.max())
    if max_k == 1 and plan.num_assignments == T:
        # one expert per token: a pure permutation
        return y.new_zeros(T, d).index_copy(0, plan.token_idx, y)
    dest = plan.token_idx * max_k + plan.slot_idx()
    buf = y.new_zeros(T * max_k, d).index_copy(0, dest, y)
    return buf.view(T, max_k, d).sum(1)


def has_native_grouped_mm() -> bool:
    """Whether this torch has ``torch.nn.functional.grouped_mm``."""
    return hasattr(F, "grouped_mm")


def grouped_mm_alignment(dtype: torch.dtype) -> int:
    """Elements per 16 bytes: torch's grouped GEMM needs row strides that are multiples of it."""
    return max(1, 16 // torch.tensor([], dtype=dtype).element_size())


class _GroupedMM(torch.autograd.Function):
    """``out[rows of e] = x[rows of e] @ w[e]`` with hand-written backward.

    torch's native op rejects stride-0 (expanded) gradients on CPU and writes garbage into
    rows past the last offset, so the backward makes gradients contiguous and always passes
    exactly ``A = offs[-1]`` rows.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, w, offs)
        return F.grouped_mm(x, w, offs=offs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        x, w, offs = ctx.saved_tensors
        grad = grad.contiguous()
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = F.grouped_mm(grad, w.transpose(1, 2), offs=offs)
        if ctx.needs_input_grad[1]:
            # [K, A] x [A, N] per group -> [E, K, N]; empty groups come back as zeros
            dw = F.grouped_mm(x.t(), grad, offs=offs)
        return dx, dw, None


def grouped_mm(x: torch.Tensor, w: torch.Tensor, expert_offsets: torch.Tensor) -> torch.Tensor:
    """Grouped GEMM over expert-sorted rows: ``x[A, K] @ w[E, K, N] -> [A, N]``.

    Handles what torch's native kernel does not: widths that are not multiples of 16 bytes
    are zero-padded, offsets are converted to the int32 end offsets it expects, and the
    backward is ours (see :class:`_GroupedMM`). Supports fp32, bf16 and fp16.

    Args:
        x: ``[A, K]`` rows sorted by expert.
        w: ``[E, K, N]`` per-expert weights.
        expert_offsets: ``[E + 1]`` start offsets (``RoutingPlan.expert_offsets``).
    """
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise TypeError(
            f"grouped_mm supports float32, bfloat16 and float16, got {x.dtype}; use the "
            "'loop' backend for float64."
        )
    if w.dtype != x.dtype:
        raise TypeError(f"w must have the dtype of x ({x.dtype}), got {w.dtype}.")
    E, K, N = w.shape
    if x.shape[-1] != K:
        raise ValueError(
            f"x must have shape [A, {K}] to match w [E, {K}, {N}], got {tuple(x.shape)}."
        )
    align = grouped_mm_alignment(x.dtype)
    pad_k, pad_n = (-K) % align, (-N) % align
    if pad_k or pad_n:
        x = F.pad(x, (0, pad_k))
        w = F.pad(w, (0, pad_n, 0, pad_k))
    offs = expert_offsets[1:].to(torch.int32)
    out = _GroupedMM.apply(x.contiguous(), w.contiguous(), offs)
    return out[:, :N] if pad_n else out
