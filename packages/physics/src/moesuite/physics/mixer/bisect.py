"""A hierarchical warm-up for MixER: experts untied one bisection at a time.

The plain tied warm-up trains one shared field and then hands all ``E`` clusters of its
contexts to the gate at once; with ten overlapping families the shared model's contexts
cluster poorly (K-means ARI 0.46-0.53 at the end of the warm-up, seeds 0 and 1, whatever the
preprocessing). Here the experts are instead untied top-down, as in bisecting K-means: the
group of environments whose contexts are the most spread (largest sum of squared distances to
their mean) is split in two by 2-means, and the second half gets a copy of its parent expert.
Each expert then re-organises its own, smaller set of families before its group is split
again, so later splits are made on contexts that already separate the coarser structure.
After ``E - 1`` bisections the paper's K-means + least-squares gate takes over, warm-started
from the groups' centroids.

Index legend: ``N`` environments, ``C`` context size.
"""

from __future__ import annotations

import torch

from moesuite.physics.mixer.gate import kmeans

__all__ = ["bisect_widest_group", "split_schedule"]


def split_schedule(start: int, length: int, splits: int) -> list[int]:
    """Outer steps at which the ``splits`` bisections happen, evenly over ``[start, start + length)``.

    Examples:
        >>> split_schedule(10, 30, 3)
        [10, 20, 30]
    """
    if splits <= 0:
        return []
    return [start + (i * length) // splits for i in range(splits)]


@torch.no_grad()
def bisect_widest_group(contexts: torch.Tensor, groups: torch.Tensor, new_group: int,
                        generator: torch.Generator | None = None, restarts: int = 10) -> tuple[int, torch.Tensor]:
    """Split the most spread group (with at least 2 members) in two by 2-means.

    Args:
        contexts: ``[N, C]``.
        groups: ``[N]`` current group (= expert) of each environment.
        new_group: index given to the half that leaves (the smaller half of the 2-means).
        generator: k-means++ seeding.
        restarts: 2-means seedings (the lowest inertia wins).

    Returns:
        ``(parent group, new groups [N])``.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.2], [9.0]])
        >>> parent, g = bisect_widest_group(x, torch.tensor([0, 0, 0, 0, 0, 1]), 2, torch.Generator().manual_seed(0))
        >>> parent, g.tolist()  # group 0 is the most spread; its smaller half leaves
        (0, [0, 0, 0, 2, 2, 1])
    """
    x = contexts.detach().double()
    best, parent = -1.0, -1
    for g in groups.unique().tolist():
        members = groups == g
        if members.sum() >= 2:
            sse = float(((x[members] - x[members].mean(0)) ** 2).sum())
            if sse > best:
                best, parent = sse, g
    if parent < 0:
        raise ValueError("no group has two environments to split.")
    idx = (groups == parent).nonzero().flatten()
    labels, _ = kmeans(x[idx], 2, restarts=restarts, generator=generator)
    leaving = 1 if (labels == 1).sum() <= (labels == 0).sum() else 0
    out = groups.clone()
    out[idx[labels == leaving]] = new_group
    return parent, out
