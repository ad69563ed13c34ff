"""The routing contract between routers and expert compute.

A router decides, for each token, which experts see it and with what weight. Every router in
moesuite hands that decision to the experts as one :class:`RoutingPlan`: a flat list of
``A`` (token, expert, weight) assignments sorted by expert, plus the offsets at which each
expert's rows start. Because it is a flat list, a token may get any number of experts
(top-k, top-p, expert choice, thresholds, dropped tokens), and fixed top-k is the special
case ``token_idx = arange(T).repeat_interleave(k)``.

Index legend: ``T`` tokens, ``E`` experts, ``k`` experts per token, ``A`` assignments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["RoutingPlan"]


@dataclass(frozen=True)
class RoutingPlan:
    """Flat (token, expert, weight) assignments sorted by expert.

    Attributes:
        token_idx: ``[A]`` int64, the token each assignment reads from and writes back to.
        expert_idx: ``[A]`` int64, non-decreasing; the expert of each assignment.
        weight: ``[A]`` float, the gate that scales the expert's output (carries gradients
            back to the router).
        expert_offsets: ``[E + 1]`` int64, assignments of expert ``e`` are rows
            ``expert_offsets[e]:expert_offsets[e + 1]``.
        num_experts: ``E``.
        num_tokens: ``T``, the number of rows of the input the plan indexes.
        num_dropped: assignments removed by a capacity limit (0 when dropless).

    Examples:
        >>> import torch
        >>> plan = RoutingPlan.from_topk(torch.tensor([[1, 0], [1, 2]]),
        ...                              torch.tensor([[0.7, 0.3], [0.6, 0.4]]), num_experts=3)
        >>> plan.expert_idx.tolist(), plan.token_idx.tolist()
        ([0, 1, 1, 2], [0, 0, 1, 1])
        >>> plan.counts.tolist(), plan.expert_offsets.tolist()
        ([1, 2, 1], [0, 1, 3, 4])
    """

    token_idx: torch.Tensor
    expert_idx: torch.Tensor
    weight: torch.Tensor
    expert_offsets: torch.Tensor
    num_experts: int
    num_tokens: int
    num_dropped: int = 0

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_topk(
        cls, expert_idx: torch.Tensor, weight: torch.Tensor, num_experts: int
    ) -> RoutingPlan:
        """Build a plan from a fixed-k choice ``expert_idx[T, k]`` with gates ``weight[T, k]``.

        Assignments are sorted stably by expert, so within an expert tokens keep their order
        and the plan is deterministic.
        """
        if not isinstance(expert_idx, torch.Tensor) or expert_idx.dim() != 2:
            raise ValueError(
                f"expert_idx must be a [T, k] integer tensor, got "
                f"{_describe(expert_idx)}; pass the indices returned by torch.topk(..., k)."
            )
        if not isinstance(weight, torch.Tensor) or weight.shape != expert_idx.shape:
            raise ValueError(
                f"weight must have the shape of expert_idx {tuple(expert_idx.shape)}, got "
                f"{_describe(weight)}."
            )
        T, k = expert_idx.shape
        token_idx = torch.arange(T, device=expert_idx.device).repeat_interleave(k)
        return cls.from_assignments(
            token_idx, expert_idx.reshape(-1), weight.reshape(-1), num_experts, num_tokens=T
        )

    @classmethod
    def from_assignments(
        cls,
        token_idx: torch.Tensor,
        expert_idx: torch.Tensor,
        weight: torch.Tensor,
        num_experts: int,
        num_tokens: int,
        num_dropped: int = 0,
    ) -> RoutingPlan:
        """Build a plan from unsorted flat assignments (any number of experts per token)."""
        _check_flat("token_idx", token_idx, integer=True)
        _check_flat("expert_idx", expert_idx, integer=True)
        _check_flat("weight", weight, integer=False)
        if not (token_idx.numel() == expert_idx.numel() == weight.numel()):
            raise ValueError(
                "token_idx, expert_idx and weight must have the same length, got "
                f"{token_idx.numel()}, {expert_idx.numel()} and {weight.numel()}."
            )
        if not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"num_experts must be a positive int, got {num_experts!r}.")
        if expert_idx.numel():
            lo, hi = int(expert_idx.min()), int(expert_idx.max())
            if lo < 0 or hi >= num_experts:
                raise ValueError(
                    f"expert_idx must lie in [0, {num_experts - 1}] for num_experts="
                    f"{num_experts}, got values in [{lo}, {hi}]."
                )
            tlo, thi = int(token_idx.min()), int(token_idx.max())
            if tlo < 0 or thi >= num_tokens:
                raise ValueError(
                    f"token_idx must lie in [0, {num_tokens - 1}] for num_tokens={num_tokens}, "
                    f"got values in [{tlo}, {thi}]."
                )
        expert_idx = expert_idx.long()
        order = torch.sort(expert_idx, stable=True).indices
        counts = torch.bincount(expert_idx, minlength=num_experts)
        offsets = torch.zeros(num_experts + 1, dtype=torch.long, device=expert_idx.device)
        offsets[1:] = torch.cumsum(counts, 0)
        return cls(
            token_idx=token_idx.long()[order],
            expert_idx=expert_idx[order],
            weight=weight[order],
            expert_offsets=offsets,
            num_experts=num_experts,
            num_tokens=int(num_tokens),
            num_dropped=int(num_dropped),
        )

    # ------------------------------------------------------------------ views
    @property
    def num_assignments(self) -> int:
        """``A``, the number of (token, expert) pairs that will be computed."""
        return int(self.token_idx.numel())

    @property
    def counts(self) -> torch.Tensor:
        """``[E]`` tokens per expert."""
        return self.expert_offsets[1:] - self.expert_offsets[:-1]

    @property
    def drop_rate(self) -> float:
        """Fraction of the router's assignments removed by a capacity limit."""
        total = self.num_assignments + self.num_dropped
        return self.num_dropped / total if total else 0.0

    def experts_per_token(self) -> torch.Tensor:
        """``[T]`` number of experts each token was assigned to."""
        return torch.bincount(self.token_idx, minlength=self.num_tokens)

    def slot_idx(self) -> torch.Tensor:
        """``[A]`` rank of each assignment among its token's assignments (0, 1, ...).

        Assignments of one token are ranked in expert order, so ``(token_idx, slot_idx)`` is a
        unique, deterministic address used by the deterministic combine.
        """
        A = self.num_assignments
        if A == 0:
            return torch.zeros(0, dtype=torch.long, device=self.token_idx.device)
        by_token = torch.sort(self.token_idx, stable=True).indices
        sorted_tokens = self.token_idx[by_token]
        first = torch.ones(A, dtype=torch.bool, device=sorted_tokens.device)
        first[1:] = sorted_tokens[1:] != sorted_tokens[:-1]
        pos = torch.arange(A, device=sorted_tokens.device)
        start = torch.cummax(torch.where(first, pos, torch.zeros_like(pos)), 0).values
        slot = torch.empty_like(pos)
        slot[by_token] = pos - start
        return slot

    @cached_property
    def token_major_rows(self) -> torch.Tensor | None:
        """Gather index putting the assignments in token-major order, when k is uniform.

        If every token has the same number ``k`` of assignments, row ``t * k + j`` of
        ``rows[token_major_rows]`` is token ``t``'s ``j``-th assignment (experts in ascending
        order), so ``[A, d] -> [T, k, d]`` is a pure gather, and its backward a gather by the
        inverse permutation (no scatter, no atomics). ``None`` for variable-k plans.
        """
        A, T = self.num_assignments, self.num_tokens
        if T == 0 or A == 0 or A % T:
            return None
        k = A // T
        if not bool((self.experts_per_token() == k).all()):
            return None
        dest = self.token_idx * k + self.slot_idx()
        rows = torch.empty_like(dest)
        rows[dest] = torch.arange(A, device=dest.device)
        return rows

    def with_weight(self, weight: torch.Tensor) -> RoutingPlan:
        """Same assignments with new gates (e.g. a cast or a detached copy)."""
        if weight.shape != self.weight.shape:
            raise ValueError(
                f"weight must have shape {tuple(self.weight.shape)}, got {tuple(weight.shape)}."
            )
        plan = RoutingPlan(
            self.token_idx,
            self.expert_idx,
            weight,
            self.expert_offsets,
            self.num_experts,
            self.num_tokens,
            self.num_dropped,
        )
        if "token_major_rows" in self.__dict__:  # same assignments: reuse the cached index
            plan.__dict__["token_major_rows"] = self.__dict__["token_major_rows"]
        return plan

    def select(self, keep: torch.Tensor) -> RoutingPlan:
        """Keep the assignments where the boolean mask ``keep[A]`` is true (order preserved)."""
        dropped = int((~keep).sum())
        expert_idx = self.expert_idx[keep]
        counts = torch.bincount(expert_idx, minlength=self.num_experts)
        offsets = torch.zeros_like(self.expert_offsets)
        offsets[1:] = torch.cumsum(counts, 0)
        return RoutingPlan(
            self.token_idx[keep],
            expert_idx,
            self.weight[keep],
            offsets,
            self.num_experts,
            self.num_tokens,
            self.num_dropped + dropped,
        )

    def to_dense(self) -> torch.Tensor:
        """``[T, E]`` gate matrix (zeros where a token does not use an expert)."""
        dense = self.weight.new_zeros(self.num_tokens, self.num_experts)
        return dense.index_put((self.token_idx, self.expert_idx), self.weight, accumulate=True)


def _describe(t: object) -> str:
    if isinstance(t, torch.Tensor):
        return f"a {t.dtype} tensor of shape {tuple(t.shape)}"
    return f"{type(t).__name__}"


def _check_flat(name: str, t: object, integer: bool) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor, got {_describe(t)}.")
    if integer and (t.is_floating_point() or t.is_complex()):
        raise TypeError(f"{name} must be an integer tensor, got {t.dtype}.")
    if not integer and not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}.")
