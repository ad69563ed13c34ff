"""Expert parallelism: each rank holds ``E / world`` experts and tokens travel to their experts.

Rank ``r`` owns the contiguous block of global experts ``r * E_local ... (r + 1) * E_local - 1``
(``E_local = E / world``). A forward pass on every rank, with its own tokens and a
:class:`~moesuite.core.routing.RoutingPlan` over the ``E`` global experts:

1. gathers the token rows into expert order (``ops.permute``); since the plan is sorted by
   expert, the rows for each destination rank are one contiguous block;
2. exchanges the per-expert counts (a small all-to-all, then one host sync for the splits);
3. sends the rows to the ranks that own their experts (:func:`all_to_all`);
4. runs the local experts on the received rows (grouped by source rank, then local expert);
5. sends the outputs back with the splits swapped, and combines them per token with the
   plan's gates, deterministically (``ops.unpermute``).

The result is the single-process layer's output for the same tokens, and the gradients of
the tokens, of the gates and of the local experts' weights are the single-process ones (the
local experts' gradients already sum the contributions of every rank's tokens). The module
keeps the ``experts(x, plan)`` contract, so it drops into :class:`~moesuite.core.MoELayer`.

Index legend: ``T`` local tokens, ``E`` global experts, ``A`` local assignments, ``R`` rows
received by this rank.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist
from torch import nn

from moesuite.core import ops
from moesuite.core.distributed.all_to_all import all_to_all, group_rank, group_size
from moesuite.core.experts import ExpertList, GroupedExperts, check_expert_call
from moesuite.core.routing import RoutingPlan

__all__ = ["ExpertParallelExperts", "expert_block", "shard_experts"]


def expert_block(num_experts: int, rank: int, world_size: int) -> range:
    """The global experts owned by ``rank``: a contiguous block of ``num_experts / world_size``.

    Raises:
        ValueError: when ``num_experts`` is not a multiple of ``world_size`` or ``rank`` is out
            of range.

    Examples:
        >>> expert_block(8, rank=1, world_size=4)
        range(2, 4)
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}.")
    if not isinstance(num_experts, int) or num_experts < 1 or num_experts % world_size:
        raise ValueError(
            f"num_experts must be a positive multiple of the world size {world_size} (each rank "
            f"holds num_experts / world_size experts), got num_experts={num_experts!r}."
        )
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size - 1}], got {rank!r}.")
    per_rank = num_experts // world_size
    return range(rank * per_rank, (rank + 1) * per_rank)


def shard_experts(
    experts: GroupedExperts | ExpertList, rank: int, world_size: int
) -> GroupedExperts | ExpertList:
    """A copy of the experts ``rank`` owns, cut from a full (single-process) expert module.

    Args:
        experts: all ``E`` experts (:class:`GroupedExperts` or :class:`ExpertList`).
        rank: the rank to build the shard for.
        world_size: the number of ranks sharing the experts.

    Returns:
        The same kind of module holding only the experts of :func:`expert_block`, with copied
        (not shared) parameters.

    Examples:
        >>> import torch
        >>> full = GroupedExperts(num_experts=4, d_model=8, d_hidden=16)
        >>> shard = shard_experts(full, rank=1, world_size=2)
        >>> shard.num_experts, torch.equal(shard.w_in, full.w_in[2:])
        (2, True)
    """
    block = expert_block(getattr(experts, "num_experts", -1), rank, world_size)
    if isinstance(experts, GroupedExperts):
        shard = GroupedExperts(
            len(block),
            experts.d_model,
            experts.d_hidden,
            activation=experts.activation,
            glu=experts.glu,
            bias=experts.b_in is not None,
            backend=experts.backend,
        ).to(device=experts.w_in.device, dtype=experts.w_in.dtype)
        with torch.no_grad():
            for name in ("w_in", "w_out", "b_in", "b_out"):
                full = getattr(experts, name)
                if full is not None:
                    getattr(shard, name).copy_(full[block.start : block.stop])
        return shard
    if isinstance(experts, ExpertList):
        return ExpertList(
            [copy.deepcopy(experts.experts[e]) for e in block], d_model=experts.d_model
        )
    raise TypeError(
        f"experts must be a GroupedExperts or an ExpertList, got {type(experts).__name__}."
    )


class ExpertParallelExperts(nn.Module):
    """This rank's share of ``E`` experts, called like the full expert module.

    ``experts(x[T, d], plan) -> [T, d]`` with ``plan`` over all ``E`` global experts: the
    rows are sent to the ranks owning their experts and the outputs come back combined by
    the plan's gates. Every rank of ``group`` must call it (and, when training, run the
    backward pass) the same number of times in the same order, with the same
    ``requires_grad`` on ``x``; a rank with no tokens passes ``x`` of shape ``[0, d]``.

    Args:
        local_experts: the ``E / world`` experts of this rank, any module with the
            ``experts(x, plan)`` contract over local expert ids (e.g. from
            :func:`shard_experts` or :meth:`from_full`).
        num_experts: ``E``, the global number of experts (a multiple of the world size).
        group: process group (``None``: the default group; without an initialised
            ``torch.distributed`` the world is this process alone).

    Examples:
        A single process (world size 1) is the full layer; see the package README for two
        ranks on loopback.

        >>> import torch
        >>> from moesuite.core import GroupedExperts, MoELayer, routers
        >>> full = GroupedExperts(num_experts=4, d_model=8, d_hidden=16)
        >>> layer = MoELayer(routers.create("topk", d_model=8, num_experts=4, k=2),
        ...                  ExpertParallelExperts.from_full(full))
        >>> x = torch.randn(5, 8)
        >>> y, out = layer(x)
        >>> torch.allclose(y, full(x, out.plan), atol=1e-6)
        True
    """

    def __init__(
        self,
        local_experts: nn.Module,
        num_experts: int,
        group: dist.ProcessGroup | None = None,
    ):
        super().__init__()
        world, rank = group_size(group), group_rank(group)
        block = expert_block(num_experts, rank, world)
        local = getattr(local_experts, "num_experts", None)
        if local is not None and local != len(block):
            raise ValueError(
                f"local_experts holds {local} experts but rank {rank} of {world} owns "
                f"num_experts / world_size = {len(block)}."
            )
        self.local_experts = local_experts
        self.num_experts = num_experts
        self.group = group
        self.world_size = world
        self.rank = rank
        self.local_range = block

    @classmethod
    def from_full(
        cls, experts: GroupedExperts | ExpertList, group: dist.ProcessGroup | None = None
    ) -> ExpertParallelExperts:
        """Keep this rank's block of a full expert module (same weights on every rank).

        Build ``experts`` identically on every rank (same seed or a broadcast state dict);
        each rank then copies out the experts it owns.
        """
        world, rank = group_size(group), group_rank(group)
        return cls(shard_experts(experts, rank, world), experts.num_experts, group)

    @property
    def num_local_experts(self) -> int:
        """``E / world``."""
        return len(self.local_range)

    def _needs_grad(self, x: torch.Tensor) -> tuple[bool, bool]:
        grad = torch.is_grad_enabled()
        params = any(p.requires_grad for p in self.local_experts.parameters())
        return grad and x.requires_grad, grad and (x.requires_grad or params)

    def _exchange_counts(self, plan: RoutingPlan, flags: tuple[bool, bool]) -> torch.Tensor:
        """``[world, E_local]`` rows this rank receives from each source rank, per local expert.

        The two autograd flags travel with the counts, so a rank whose backward would skip a
        collective that its peers run raises here, on every rank, instead of hanging later.
        """
        world, per_rank = self.world_size, self.num_local_experts
        send = torch.empty(world, per_rank + 2, dtype=torch.long)
        send[:, :per_rank] = plan.counts.view(world, per_rank).cpu()
        send[:, per_rank:] = torch.tensor(flags, dtype=torch.long)
        if world == 1:
            recv = send
        else:
            device = torch.device("cuda") if dist.get_backend(self.group) == "nccl" else None
            recv = torch.empty_like(send, device=device)
            dist.all_to_all_single(recv, send.to(recv.device), group=self.group)
            recv = recv.cpu()
        seen = {tuple(row) for row in recv[:, per_rank:].tolist()}
        if len(seen) > 1:
            raise RuntimeError(
                "ranks disagree on autograd (x.requires_grad / grad mode / expert "
                f"parameters' requires_grad): saw {sorted(seen)}; every rank must call the "
                "expert-parallel layer the same way or the backward all-to-all would hang."
            )
        return recv[:, :per_rank]

    def forward(self, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """Compute ``x[T, d]`` with the experts of every rank; returns ``[T, d]``."""
        d_model = getattr(self.local_experts, "d_model", None) or (
            x.shape[-1] if isinstance(x, torch.Tensor) else 0
        )
        check_expert_call(x, plan, d_model, self.num_experts)  # num_experts: the global count
        world, per_rank = self.world_size, self.num_local_experts
        needs_x_grad, needs_out_grad = self._needs_grad(x)
        recv_counts = self._exchange_counts(plan, (needs_x_grad, needs_out_grad))
        send_splits = plan.counts.view(world, per_rank).sum(1).tolist()
        recv_splits = recv_counts.sum(1).tolist()

        received = all_to_all(ops.permute(x, plan), recv_splits, send_splits, self.group)
        num_rows = received.shape[0]
        local_expert = torch.arange(per_rank).repeat(world).repeat_interleave(recv_counts.flatten())
        local_plan = RoutingPlan.from_assignments(
            torch.arange(num_rows, device=x.device),
            local_expert.to(x.device),
            torch.ones(num_rows, dtype=x.dtype, device=x.device),
            per_rank,
            num_tokens=num_rows,
        )
        out = self.local_experts(received, local_plan)  # [R, d], in received order
        if needs_out_grad and not out.requires_grad:
            # e.g. no rows here: stay in the graph so this rank joins the backward all-to-all
            params = [p for p in self.local_experts.parameters() if p.requires_grad]
            out = out + sum((0 * t.sum() for t in [received, *params]), out.new_zeros(()))
        back = all_to_all(out, send_splits, recv_splits, self.group)  # [A, d], plan order
        return ops.unpermute(back, plan)

    def extra_repr(self) -> str:
        return (
            f"num_experts={self.num_experts}, rank={self.rank}, world_size={self.world_size}, "
            f"local_experts=[{self.local_range.start}, {self.local_range.stop})"
        )
