"""An all-to-all of token rows with variable splits that autograd can differentiate.

Rank ``r`` sends rows ``input_splits[0]`` to rank 0, the next ``input_splits[1]`` to rank 1,
and so on, and receives ``output_splits[s]`` rows from each rank ``s`` (in rank order). The
gradient of an all-to-all is the all-to-all of the gradients with the splits swapped, so the
backward pass is one more collective: every rank of the group must run the backward too.

Built on ``dist.all_to_all_single`` with uneven splits, zero-row splits included: tested with
gloo on CPU (torch 2.14); NCCL supports the same call but is not exercised by the tests here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

__all__ = ["all_to_all", "group_rank", "group_size"]


def group_size(group: dist.ProcessGroup | None = None) -> int:
    """Number of ranks in ``group``; 1 when ``torch.distributed`` is not initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        if group is not None:
            raise RuntimeError(
                "a process group was given but torch.distributed is not initialised."
            )
        return 1
    return dist.get_world_size(group)


def group_rank(group: dist.ProcessGroup | None = None) -> int:
    """This process's rank in ``group``; 0 when ``torch.distributed`` is not initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        if group is not None:
            raise RuntimeError(
                "a process group was given but torch.distributed is not initialised."
            )
        return 0
    return dist.get_rank(group)


def _exchange(
    x: torch.Tensor,
    output_splits: list[int],
    input_splits: list[int],
    group: dist.ProcessGroup | None,
) -> torch.Tensor:
    out = x.new_empty((sum(output_splits), *x.shape[1:]))
    if group_size(group) == 1:  # nothing to exchange: a copy keeps forward and backward uniform
        return out.copy_(x)
    dist.all_to_all_single(out, x.contiguous(), output_splits, input_splits, group=group)
    return out


class _AllToAll(torch.autograd.Function):
    """Forward: all-to-all with ``(output_splits, input_splits)``; backward: the splits swapped."""

    @staticmethod
    def forward(ctx, x, output_splits, input_splits, group):  # type: ignore[override]
        ctx.output_splits, ctx.input_splits, ctx.group = output_splits, input_splits, group
        return _exchange(x, output_splits, input_splits, group)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return _exchange(grad, ctx.input_splits, ctx.output_splits, ctx.group), None, None, None


def all_to_all(
    x: torch.Tensor,
    output_splits: Sequence[int],
    input_splits: Sequence[int],
    group: dist.ProcessGroup | None = None,
) -> torch.Tensor:
    """Exchange rows of ``x`` between the ranks of ``group``, differentiably.

    Args:
        x: ``[sum(input_splits), ...]`` rows to send, grouped by destination rank.
        output_splits: rows received from each rank (``world`` ints, this rank's view).
        input_splits: rows sent to each rank (``world`` ints); must agree with what the
            receivers expect (``output_splits`` of rank ``s`` at position ``r`` equals
            ``input_splits`` of rank ``r`` at position ``s``).
        group: process group (``None``: the default group). Without an initialised
            ``torch.distributed``, the world is this process alone and the rows are copied.

    Returns:
        ``[sum(output_splits), ...]`` the received rows, ordered by source rank.

    Raises:
        ValueError: when the split lists do not have one entry per rank, hold negative
            values, or ``input_splits`` does not add up to the rows of ``x``.

    Examples:
        >>> import torch
        >>> x = torch.arange(6.0).view(3, 2).requires_grad_()
        >>> y = all_to_all(x, [3], [3])  # a single process: the identity
        >>> y.sum().backward()
        >>> y.tolist(), x.grad.tolist()
        ([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a tensor of rows [N, ...], got {type(x).__name__}.")
    world = group_size(group)
    output_splits = [int(s) for s in output_splits]
    input_splits = [int(s) for s in input_splits]
    for name, splits in (("output_splits", output_splits), ("input_splits", input_splits)):
        if len(splits) != world or min(splits) < 0:
            raise ValueError(
                f"{name} must hold {world} non-negative row counts (one per rank), got {splits}."
            )
    if sum(input_splits) != x.shape[0]:
        raise ValueError(
            f"input_splits add up to {sum(input_splits)} rows but x has {x.shape[0]} rows."
        )
    return _AllToAll.apply(x, output_splits, input_splits, group)
