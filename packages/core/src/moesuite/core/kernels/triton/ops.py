"""Torch ops and autograd over the Triton kernels, and the expert MLP the ``triton`` backend runs.

Layers, bottom to top (as in ScatterMoE):

1. ``@triton.jit`` kernels (:mod:`.scatter`, :mod:`.grouped_gemm`, :mod:`.combine`);
2. launchers that validate shapes, dtypes and devices (``gather_rows``, ``grouped_mm``, ...);
3. ``torch.library.custom_op`` wrappers with ``register_fake`` (shape-only versions, so the
   ops trace under ``torch.compile``/``FakeTensor``), registered once at import under the
   ``moesuite::`` namespace;
4. ``torch.autograd.Function`` s pairing each forward op with its backward ops;
5. :func:`triton_expert_mlp`, composed from them, which
   :class:`moesuite.core.backends.triton.TritonBackend` runs for
   :class:`moesuite.core.experts.GroupedExperts`.

Index legend: ``T`` tokens, ``A`` assignments (rows sorted by expert), ``E`` experts,
``S`` slots per token, ``d`` model width, ``H`` hidden width.
"""

from __future__ import annotations

import torch

from moesuite.core.backends.base import ExpertWeights
from moesuite.core.kernels.triton.combine import combine_rows, combine_rows_backward, slot_table
from moesuite.core.kernels.triton.grouped_gemm import grouped_mm, grouped_weight_grad
from moesuite.core.kernels.triton.scatter import gather_rows
from moesuite.core.routing import RoutingPlan

__all__ = ["triton_expert_mlp", "scatter_rows", "grouped_linear", "combine"]


# ----------------------------------------------------------------------------- custom ops
@torch.library.custom_op("moesuite::triton_gather_rows", mutates_args=())
def _gather_rows_op(src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return gather_rows(src, index)


@_gather_rows_op.register_fake
def _(src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return src.new_empty(index.shape[0], src.shape[1])


@torch.library.custom_op("moesuite::triton_grouped_mm", mutates_args=())
def _grouped_mm_op(
    x: torch.Tensor,
    w: torch.Tensor,
    expert_offsets: torch.Tensor,
    bias: torch.Tensor | None,
    transpose_w: bool,
) -> torch.Tensor:
    return grouped_mm(x, w, expert_offsets, bias, transpose_w)


@_grouped_mm_op.register_fake
def _(x, w, expert_offsets, bias, transpose_w):
    return x.new_empty(x.shape[0], w.shape[1] if transpose_w else w.shape[2])


@torch.library.custom_op("moesuite::triton_grouped_weight_grad", mutates_args=())
def _grouped_weight_grad_op(
    x: torch.Tensor,
    dy: torch.Tensor,
    expert_offsets: torch.Tensor,
    num_experts: int,
    with_bias: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    dw, db = grouped_weight_grad(x, dy, expert_offsets, num_experts, with_bias)
    # custom ops cannot return None: no bias gradient is a [0, N] tensor
    return dw, db if db is not None else dy.new_empty(0, dy.shape[1])


@_grouped_weight_grad_op.register_fake
def _(x, dy, expert_offsets, num_experts, with_bias):
    N = dy.shape[1]
    return x.new_empty(num_experts, x.shape[1], N), dy.new_empty(num_experts if with_bias else 0, N)


@torch.library.custom_op("moesuite::triton_combine", mutates_args=())
def _combine_op(src: torch.Tensor, table: torch.Tensor, gates: torch.Tensor | None) -> torch.Tensor:
    return combine_rows(src, table, gates)


@_combine_op.register_fake
def _(src, table, gates):
    return src.new_empty(table.shape[0], src.shape[1])


@torch.library.custom_op("moesuite::triton_combine_backward", mutates_args=())
def _combine_backward_op(
    grad_out: torch.Tensor, token_idx: torch.Tensor, src: torch.Tensor, gates: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    return combine_rows_backward(grad_out, token_idx, src, gates)


@_combine_backward_op.register_fake
def _(grad_out, token_idx, src, gates):
    return torch.empty_like(src), torch.empty_like(gates)


# ----------------------------------------------------------------------------- autograd
class _ScatterRows(torch.autograd.Function):
    """``xs[a] = x[token_idx[a]]``; backward: each token sums its rows' gradients (slot order)."""

    @staticmethod
    def forward(ctx, x, token_idx, table):  # type: ignore[override]
        ctx.save_for_backward(table)
        return _gather_rows_op(x, token_idx)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (table,) = ctx.saved_tensors
        return _combine_op(grad, table, None), None, None


class _GroupedLinear(torch.autograd.Function):
    """``y[rows of e] = x[rows of e] @ w[e] + b[e]``; backward: ``dx`` (``w^T``), ``dw``, ``db``."""

    @staticmethod
    def forward(ctx, x, w, b, expert_offsets):  # type: ignore[override]
        ctx.save_for_backward(x, w, expert_offsets)
        ctx.has_bias = b is not None
        return _grouped_mm_op(x, w, expert_offsets, b, False)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, w, expert_offsets = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx = dw = db = None
        if need_x:
            dx = _grouped_mm_op(grad, w, expert_offsets, None, True)
        if need_w or need_b:
            with_bias = ctx.has_bias and need_b
            dw_all, db_all = _grouped_weight_grad_op(x, grad, expert_offsets, w.shape[0], with_bias)
            dw = dw_all if need_w else None
            db = db_all if with_bias else None
        return dx, dw, db, None


class _Combine(torch.autograd.Function):
    """``out[t] = sum over t's slots of gate[a] * y[a]``; backward to the rows and the gates."""

    @staticmethod
    def forward(ctx, y, gates, table, token_idx):  # type: ignore[override]
        ctx.save_for_backward(y, gates, token_idx)
        return _combine_op(y, table, gates)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        y, gates, token_idx = ctx.saved_tensors
        grad_y, grad_gates = _combine_backward_op(grad, token_idx, y, gates)
        need_y, need_gates = ctx.needs_input_grad[:2]
        return grad_y if need_y else None, grad_gates if need_gates else None, None, None


# ----------------------------------------------------------------------------- public API
def scatter_rows(
    x: torch.Tensor, plan: RoutingPlan, table: torch.Tensor | None = None
) -> torch.Tensor:
    """Differentiable permute ``[T, d] -> [A, d]`` into the plan's expert order.

    ``table`` is :func:`~moesuite.core.kernels.triton.combine.slot_table` of the plan
    (computed when omitted); the backward sums each token's gradients in slot order.
    """
    table = slot_table(plan) if table is None else table
    return _ScatterRows.apply(x, plan.token_idx, table)


def grouped_linear(
    x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, expert_offsets: torch.Tensor
) -> torch.Tensor:
    """Differentiable grouped GEMM ``x[A, K] @ w[E, K, N] (+ bias[E, N]) -> [A, N]``."""
    return _GroupedLinear.apply(x, w, bias, expert_offsets)


def combine(y: torch.Tensor, plan: RoutingPlan, table: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable weighted combine ``[A, d] -> [T, d]`` by the plan's gates (deterministic)."""
    table = slot_table(plan) if table is None else table
    return _Combine.apply(y, plan.weight.to(y.dtype), table, plan.token_idx)


def triton_expert_mlp(x: torch.Tensor, plan: RoutingPlan, weights: ExpertWeights) -> torch.Tensor:
    """``y[t] = sum over t's assignments a of gate_a * expert_(e_a)(x[t])`` with the Triton kernels.

    Scatter into expert order, grouped GEMM (+ bias), activation/GLU in torch, grouped GEMM
    (+ bias), weighted combine. Gradients reach ``x``, the gates (``plan.weight``) and every
    weight; experts without tokens get exact-zero weight gradients.

    Args:
        x: ``[T, d]`` tokens (float32; bfloat16/float16 on a GPU).
        plan: the routing plan for ``x`` (``plan.num_tokens == T``).
        weights: ``w_in [E, d, H or 2H]``, ``w_out [E, H, d_out]`` and optional biases.

    Returns:
        ``[T, d_out]`` in ``x``'s dtype.

    Examples:
        >>> import torch
        >>> from moesuite.core.testing import random_plan
        >>> g = torch.Generator().manual_seed(0)
        >>> w = ExpertWeights(
        ...     torch.randn(3, 16, 16, generator=g),
        ...     torch.randn(3, 16, 16, generator=g),
        ...     None,
        ...     None,
        ...     "relu",
        ...     False,
        ... )
        >>> x, plan = torch.randn(4, 16, generator=g), random_plan(4, 3, 2)
        >>> y = triton_expert_mlp(x, plan, w)
        >>> from moesuite.core.reference import reference_expert_mlp
        >>> tuple(y.shape), bool(
        ...     torch.allclose(y.double(), reference_expert_mlp(x, plan, w), atol=1e-4)
        ... )
        ((4, 16), True)
    """
    _check_call(x, plan, weights)
    table = slot_table(plan)
    offsets = plan.expert_offsets
    xs = scatter_rows(x, plan, table)
    h = grouped_linear(xs, weights.w_in, weights.b_in, offsets)
    out = grouped_linear(weights.hidden(h), weights.w_out, weights.b_out, offsets)
    return combine(out, plan, table)


def _check_call(x: torch.Tensor, plan: RoutingPlan, weights: ExpertWeights) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a [T, d] tensor, got {shape}.")
    if not isinstance(plan, RoutingPlan):
        raise TypeError(f"plan must be a RoutingPlan, got {type(plan).__name__}.")
    if plan.num_tokens != x.shape[0]:
        raise ValueError(
            f"plan routes {plan.num_tokens} tokens but x has {x.shape[0]} rows; route the same x."
        )
    w_in, w_out = weights.w_in, weights.w_out
    if w_in.dim() != 3 or w_out.dim() != 3:
        raise ValueError(
            "w_in and w_out must be [E, d, H] and [E, H, d_out], "
            f"got {tuple(w_in.shape)} and {tuple(w_out.shape)}."
        )
    E = w_in.shape[0]
    if plan.num_experts != E or w_out.shape[0] != E:
        raise ValueError(
            f"plan has num_experts={plan.num_experts} "
            f"but w_in/w_out hold {E}/{w_out.shape[0]} experts."
        )
    if w_in.shape[1] != x.shape[1]:
        raise ValueError(
            f"x has width {x.shape[1]} but w_in expects d={w_in.shape[1]} "
            f"(w_in {tuple(w_in.shape)})."
        )
    hidden = w_out.shape[1] * (2 if weights.glu else 1)
    if w_in.shape[2] != hidden:
        what = "2 * H (GLU: gate then up)" if weights.glu else "H"
        raise ValueError(
            f"w_in must have {what} = {hidden} columns for w_out {tuple(w_out.shape)}, "
            f"got {w_in.shape[2]}."
        )
