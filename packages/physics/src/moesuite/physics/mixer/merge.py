"""Merging a family split over two experts: an option around MixER's gate update.

The K-means + least-squares update can undo a *merge* (two families sharing an expert
separate in context space, and K-means follows), but not a *split*: once one family's
environments are clustered onto two experts, the two halves' contexts drift apart in two
experts' coordinate systems and nothing pulls them back. This step detects such a pair from
the experts' losses and moves one half's contexts onto the other half; the next K-means then
sees one cluster there and re-uses the freed centroid elsewhere (typically to split a cluster
that holds two families).

Redundancy of experts ``a`` and ``b`` (both in use): ``R[a, b]`` is the median, over the
environments routed to ``b``, of ``loss_a / loss_b`` (how much worse ``a`` does on ``b``'s
environments); the pair is redundant when ``max(R[a, b], R[b, a]) < ratio`` (each expert fits
the other's environments almost as well as their own). Experts of different families have
ratios of several times; halves of one family stay close to 1.

Index legend: ``N`` environments, ``C`` context size, ``E`` experts.
"""

from __future__ import annotations

import torch

__all__ = ["redundancy", "merge_split_pair"]


def redundancy(losses: torch.Tensor, routed: torch.Tensor) -> torch.Tensor:
    """``[E, E]`` symmetric redundancy ``max(R[a, b], R[b, a])`` of every pair of experts.

    ``inf`` on the diagonal and for unused experts; see the module docs.

    Examples:
        >>> import torch
        >>> L = torch.tensor([[0.1, 0.11, 1.0], [0.1, 0.1, 2.0], [3.0, 2.0, 0.1]])
        >>> redundancy(L, torch.tensor([0, 1, 2]))[0, 1].item()
        1.1
    """
    E = losses.shape[1]
    L = torch.nan_to_num(losses.detach().double(), nan=float("inf")).clamp_min(1e-12)
    R = torch.full((E, E), float("inf"), dtype=L.dtype)
    for b in range(E):
        members = routed == b
        if members.any():
            R[:, b] = (L[members] / L[members, b : b + 1]).median(0).values
    S = torch.maximum(R, R.t())
    S.fill_diagonal_(float("inf"))
    return S


@torch.no_grad()
def merge_split_pair(contexts: torch.Tensor, losses: torch.Tensor, routed: torch.Tensor, ratio: float) -> tuple[int, int] | None:
    """Merge the most redundant pair of experts' environments in context space (in place).

    The environments routed to the expert with fewer of them (``b``) have their contexts
    translated by ``mean(xi | a) - mean(xi | b)`` (their spread, which encodes their
    parameters, is kept), so they join ``a``'s cluster.

    Args:
        contexts: ``[N, C]`` contexts (modified in place).
        losses: ``[N, E]`` loss of every expert on every environment.
        routed: ``[N]`` expert each environment is routed to.
        ratio: redundancy threshold (> 1).

    Returns:
        ``(a, b)`` when a pair was merged (``b``'s environments moved onto ``a``'s), else ``None``.
    """
    if not ratio > 1:
        raise ValueError(f"ratio must be > 1, got {ratio!r}.")
    S = redundancy(losses, routed)
    flat = int(S.argmin())
    a, b = divmod(flat, S.shape[1])
    if not bool(S[a, b] < ratio):
        return None
    if (routed == a).sum() < (routed == b).sum():
        a, b = b, a
    shift = contexts[routed == a].mean(0) - contexts[routed == b].mean(0)
    contexts[routed == b] += shift
    return a, b
