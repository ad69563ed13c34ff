"""Grouped expert GEMM over expert-sorted rows, and its weight gradient.

Index legend: ``A`` rows sorted by expert, ``E`` experts, ``K`` input width, ``N`` output
width; expert ``e`` owns rows ``offsets[e]:offsets[e + 1]``.

Forward (and the input gradient, with the weights transposed)::

    y[offsets[e]:offsets[e+1]] = x[offsets[e]:offsets[e+1]] @ w[e] (+ b[e])

Every program computes one ``[BLOCK_M, BLOCK_N]`` tile that lies inside a single expert's
rows. The tile-to-expert map is built inside the kernel from ``offsets``: expert ``e`` needs
``ceil(count_e / BLOCK_M)`` row tiles, their running sum says where each expert's tiles start,
and program ``m`` belongs to the expert whose tiles it falls into. Building it in the kernel
keeps ``BLOCK_M`` free for the autotuner, and there are at most ``A // BLOCK_M + E`` tiles
(empty experts own none; the ragged tail of each expert is masked).

Weight gradient (deterministic: no atomics; each program owns one expert's output tile)::

    dw[e] = x[rows of e]^T @ dy[rows of e]        db[e] = sum of dy[rows of e]

Empty experts get exact zeros.
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

__all__ = ["grouped_mm", "grouped_weight_grad"]

# fp32 tl.dot defaults to TF32 on NVIDIA GPUs; "ieee" keeps results within CPU tolerances
# (the interpreter computes exact fp32 either way; for fp16/bf16 inputs it changes nothing).
_DOT_PRECISION = "ieee"

_MM_CONFIGS = [
    # first = the single config used under TRITON_INTERPRET=1 (few, large programs)
    triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 64}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 64}, num_warps=4, num_stages=4),
]

_WGRAD_CONFIGS = [
    triton.Config({"BLOCK_M": 32, "BLOCK_K": 64, "BLOCK_N": 64}, num_warps=4, num_stages=2),
    triton.Config({"BLOCK_M": 32, "BLOCK_K": 64, "BLOCK_N": 128}, num_warps=4, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_K": 128, "BLOCK_N": 64}, num_warps=8, num_stages=3),
    triton.Config({"BLOCK_M": 64, "BLOCK_K": 64, "BLOCK_N": 64}, num_warps=4, num_stages=4),
]


@autotune(configs=_MM_CONFIGS, key=["N", "K", "E"])
@triton.jit
def _grouped_mm_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    offsets_ptr,
    E,
    K,
    N,
    stride_xm,
    stride_xk,
    stride_we,
    stride_wk,
    stride_wn,
    stride_be,
    stride_bn,
    stride_ym,
    stride_yn,
    HAS_BIAS: tl.constexpr,
    BLOCK_E: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """Program ``(m, n)``: row tile ``m`` of the expert that owns it, column tile ``n``."""
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)

    # tile -> expert map from the offsets (see the module docstring)
    experts = tl.arange(0, BLOCK_E)
    in_range = experts < E
    starts = tl.load(offsets_ptr + experts, mask=in_range, other=0)
    ends = tl.load(offsets_ptr + experts + 1, mask=in_range, other=0)
    tiles = (ends - starts + BLOCK_M - 1) // BLOCK_M
    tiles_end = tl.cumsum(tiles, 0)  # inclusive: tiles of experts 0..e
    if pid_m >= tl.sum(tiles):
        return  # the grid is an upper bound on the number of tiles
    e = tl.sum((tiles_end <= pid_m).to(tl.int32))
    is_e = experts == e
    row_start = tl.sum(tl.where(is_e, starts, 0))
    row_end = tl.sum(tl.where(is_e, ends, 0))
    first_tile = tl.sum(tl.where(is_e, tiles_end - tiles, 0))

    rows = row_start + (pid_m - first_tile) * BLOCK_M + tl.arange(0, BLOCK_M)
    rows = rows.to(tl.int64)
    row_mask = rows < row_end
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < N
    w_base = w_ptr + e.to(tl.int64) * stride_we

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_mask = ks < K
        a = tl.load(
            x_ptr + rows[:, None] * stride_xm + ks[None, :] * stride_xk,
            mask=row_mask[:, None] & k_mask[None, :],
            other=0.0,
        )
        b = tl.load(
            w_base + ks[:, None] * stride_wk + cols[None, :] * stride_wn,
            mask=k_mask[:, None] & col_mask[None, :],
            other=0.0,
        )
        acc = tl.dot(a, b, acc, input_precision=DOT_PRECISION)
    if HAS_BIAS:
        bias = tl.load(
            b_ptr + e.to(tl.int64) * stride_be + cols * stride_bn, mask=col_mask, other=0.0
        )
        acc += bias.to(tl.float32)[None, :]
    tl.store(
        y_ptr + rows[:, None] * stride_ym + cols[None, :] * stride_yn,
        acc.to(y_ptr.dtype.element_ty),
        mask=row_mask[:, None] & col_mask[None, :],
    )


@autotune(configs=_WGRAD_CONFIGS, key=["N", "K", "E"])
@triton.jit
def _grouped_wgrad_kernel(
    x_ptr,
    dy_ptr,
    dw_ptr,
    db_ptr,
    offsets_ptr,
    E,
    K,
    N,
    stride_xm,
    stride_xk,
    stride_dym,
    stride_dyn,
    stride_dwe,
    stride_dwk,
    stride_dwn,
    stride_dbe,
    stride_dbn,
    HAS_BIAS: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    """Program ``(e, kn)``: tile ``kn`` of ``dw[e]``, summing the expert's rows in order."""
    e = tl.program_id(0)
    pid_kn = tl.program_id(1)
    n_tiles_n = tl.cdiv(N, BLOCK_N)
    pid_k = pid_kn // n_tiles_n
    pid_n = pid_kn % n_tiles_n
    row_start = tl.load(offsets_ptr + e)
    row_end = tl.load(offsets_ptr + e + 1)

    ks = pid_k * BLOCK_K + tl.arange(0, BLOCK_K)
    k_mask = ks < K
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_mask = cols < N

    acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=tl.float32)
    bias_acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    for m0 in range(row_start, row_end, BLOCK_M):
        rows = (m0 + tl.arange(0, BLOCK_M)).to(tl.int64)
        row_mask = rows < row_end
        xt = tl.load(
            x_ptr + rows[None, :] * stride_xm + ks[:, None] * stride_xk,
            mask=k_mask[:, None] & row_mask[None, :],
            other=0.0,
        )  # [BLOCK_K, BLOCK_M]
        dy = tl.load(
            dy_ptr + rows[:, None] * stride_dym + cols[None, :] * stride_dyn,
            mask=row_mask[:, None] & col_mask[None, :],
            other=0.0,
        )  # [BLOCK_M, BLOCK_N]
        acc = tl.dot(xt, dy, acc, input_precision=DOT_PRECISION)
        if HAS_BIAS:
            bias_acc += tl.sum(dy.to(tl.float32), 0)
    e64 = e.to(tl.int64)
    tl.store(
        dw_ptr + e64 * stride_dwe + ks[:, None] * stride_dwk + cols[None, :] * stride_dwn,
        acc.to(dw_ptr.dtype.element_ty),
        mask=k_mask[:, None] & col_mask[None, :],
    )
    if HAS_BIAS:
        # every k-tile computed the same column sums; the first one writes them
        tl.store(
            db_ptr + e64 * stride_dbe + cols * stride_dbn,
            bias_acc.to(db_ptr.dtype.element_ty),
            mask=col_mask & (pid_k == 0),
        )


def _check_offsets(offsets: torch.Tensor, num_experts: int, like: torch.Tensor) -> None:
    check_index("expert_offsets", offsets, like)
    if offsets.shape[0] != num_experts + 1:
        raise ValueError(
            f"expert_offsets must have E + 1 = {num_experts + 1} entries for {num_experts} "
            f"experts, got {offsets.shape[0]}; pass RoutingPlan.expert_offsets."
        )


def grouped_mm(
    x: torch.Tensor,
    w: torch.Tensor,
    expert_offsets: torch.Tensor,
    bias: torch.Tensor | None = None,
    transpose_w: bool = False,
) -> torch.Tensor:
    """Grouped GEMM: ``y[rows of e] = x[rows of e] @ w[e] (+ bias[e])``.

    Args:
        x: ``[A, K]`` rows sorted by expert.
        w: ``[E, K, N]`` per-expert weights (``[E, N, K]`` with ``transpose_w``, which
            multiplies by ``w[e]^T``: the input gradient of a forward grouped GEMM).
        expert_offsets: ``[E + 1]`` row offsets, ``expert_offsets[-1] == A``.
        bias: ``[E, N]`` or ``None``.
        transpose_w: use ``w[e]^T`` (strided, no copy).

    Returns:
        ``[A, N]`` in ``x``'s dtype (accumulated in fp32).

    Examples:
        >>> import torch
        >>> x, w = torch.ones(3, 16), torch.stack([torch.eye(16), 2 * torch.eye(16)])
        >>> grouped_mm(x, w, torch.tensor([0, 1, 3]))[:, 0].tolist()
        [1.0, 2.0, 2.0]
    """
    check_float("x", x, 2)
    check_float("w", w, 3, like=x, like_name="x")
    wk = w.transpose(1, 2) if transpose_w else w
    E, K, N = wk.shape
    if x.shape[1] != K:
        what = "w[e]^T" if transpose_w else "w[e]"
        raise ValueError(
            f"x must have shape [A, {K}] to multiply {what} of shape [{K}, {N}], "
            f"got {tuple(x.shape)}."
        )
    A = x.shape[0]
    _check_offsets(expert_offsets, E, x)
    if bias is not None:
        check_float("bias", bias, 2, like=x, like_name="x")
        if tuple(bias.shape) != (E, N):
            raise ValueError(f"bias must have shape [E, N] = [{E}, {N}], got {tuple(bias.shape)}.")
    _check_widths(K, N)
    y = x.new_empty(A, N)
    if A == 0:
        return y
    check_launchable(_grouped_mm_kernel, "x", x)
    b = bias if bias is not None else y  # dummy pointer, never read

    def grid(meta):
        return (min(A, A // meta["BLOCK_M"] + E), triton.cdiv(N, meta["BLOCK_N"]))

    _grouped_mm_kernel[grid](
        x,
        wk,
        b,
        y,
        expert_offsets.contiguous(),
        E,
        K,
        N,
        x.stride(0),
        x.stride(1),
        wk.stride(0),
        wk.stride(1),
        wk.stride(2),
        b.stride(0),
        b.stride(1),
        y.stride(0),
        y.stride(1),
        HAS_BIAS=bias is not None,
        BLOCK_E=max(2, triton.next_power_of_2(E)),
        DOT_PRECISION=_DOT_PRECISION,
    )
    return y


def grouped_weight_grad(
    x: torch.Tensor,
    dy: torch.Tensor,
    expert_offsets: torch.Tensor,
    num_experts: int,
    with_bias: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-expert ``dw[e] = x[rows of e]^T @ dy[rows of e]`` and, with ``with_bias``, ``db[e]``.

    Args:
        x: ``[A, K]`` the forward input rows (sorted by expert).
        dy: ``[A, N]`` the gradient of the forward output.
        expert_offsets: ``[E + 1]`` row offsets.
        num_experts: ``E``.
        with_bias: also return ``db[E, N]``, the per-expert column sums of ``dy``.

    Returns:
        ``(dw[E, K, N], db[E, N] or None)`` in ``x``'s dtype; experts without rows get zeros.

    Examples:
        >>> import torch
        >>> dw, db = grouped_weight_grad(
        ...     torch.ones(3, 16), torch.ones(3, 16), torch.tensor([0, 0, 3]), 2, True
        ... )
        >>> dw[:, 0, 0].tolist(), db[:, 0].tolist()
        ([0.0, 3.0], [0.0, 3.0])
    """
    check_float("x", x, 2)
    check_float("dy", dy, 2, like=x, like_name="x")
    if dy.shape[0] != x.shape[0]:
        raise ValueError(
            f"dy must have one row per row of x ({x.shape[0]}), got {tuple(dy.shape)}."
        )
    E, (A, K), N = num_experts, x.shape, dy.shape[1]
    _check_offsets(expert_offsets, E, x)
    _check_widths(K, N)
    dw = x.new_empty(E, K, N)
    db = x.new_empty(E, N) if with_bias else None
    if A == 0:
        return dw.zero_(), None if db is None else db.zero_()
    check_launchable(_grouped_wgrad_kernel, "x", x)
    dbp = db if db is not None else dw[0]  # dummy pointer, never written

    def grid(meta):
        return (E, triton.cdiv(K, meta["BLOCK_K"]) * triton.cdiv(N, meta["BLOCK_N"]))

    _grouped_wgrad_kernel[grid](
        x,
        dy,
        dw,
        dbp,
        expert_offsets.contiguous(),
        E,
        K,
        N,
        x.stride(0),
        x.stride(1),
        dy.stride(0),
        dy.stride(1),
        dw.stride(0),
        dw.stride(1),
        dw.stride(2),
        dbp.stride(0),
        dbp.stride(1),
        HAS_BIAS=with_bias,
        DOT_PRECISION=_DOT_PRECISION,
    )
    return dw, db


def _check_widths(K: int, N: int) -> None:
    if K == 0 or N == 0:
        raise ValueError(
            f"the grouped GEMM needs positive widths, got K={K} (input) and N={N} (output)."
        )
