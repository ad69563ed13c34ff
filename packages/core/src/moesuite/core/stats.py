"""Routing statistics (expert load, entropy, drop rate) and a plot of expert load per layer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from moesuite.core.losses import routing_entropy
from moesuite.core.plotting import save_figure
from moesuite.core.routers.base import RouterOutput

__all__ = ["expert_load", "load_imbalance", "routing_summary", "plot_expert_load"]


def expert_load(counts: torch.Tensor) -> torch.Tensor:
    """Fraction of assignments per expert (sums to 1; uniform ``1/E`` when balanced).

    Examples:
        >>> import torch
        >>> expert_load(torch.tensor([3, 1, 0, 0])).tolist()
        [0.75, 0.25, 0.0, 0.0]
    """
    c = counts.detach().double()
    total = c.sum()
    return (c / total if total > 0 else torch.full_like(c, 1.0 / max(c.numel(), 1))).float()


def load_imbalance(counts: torch.Tensor) -> float:
    """``max / mean`` of the per-expert counts: 1.0 is perfectly balanced, ``E`` is collapse."""
    c = counts.detach().double()
    mean = c.mean()
    return float(c.max() / mean) if mean > 0 else 1.0


def routing_summary(out: RouterOutput) -> dict[str, float]:
    """Scalar figures of one routing decision, for logs and metrics files.

    Keys: ``load_max_over_mean``, ``load_cv``, ``entropy`` (mean per-token router entropy,
    nats), ``normalized_entropy`` (divided by ``log E``), ``experts_per_token``,
    ``drop_rate``, ``unused_experts``.
    """
    counts = out.plan.counts.detach().double()
    E = out.plan.num_experts
    ent = float(routing_entropy(out.probs.detach())) if out.probs.numel() else 0.0
    mean = counts.mean()
    cv = float(counts.std(unbiased=False) / mean) if mean > 0 else 0.0
    T = max(out.plan.num_tokens, 1)
    return {
        "load_max_over_mean": load_imbalance(counts),
        "load_cv": cv,
        "entropy": ent,
        "normalized_entropy": ent / math.log(E) if E > 1 else 0.0,
        "experts_per_token": out.plan.num_assignments / T,
        "drop_rate": out.plan.drop_rate,
        "unused_experts": float((counts == 0).sum()),
    }


def plot_expert_load(
    loads: Mapping[str, torch.Tensor | Sequence[float]],
    path: str | Path,
    title: str = "Expert load per layer",
) -> Path:
    """Write a PNG heatmap of the fraction of tokens each expert received, one row per layer.

    Args:
        loads: layer name -> per-expert counts (or fractions); layers may differ in ``E``.
        path: where to write the PNG (parent directories are created).
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not loads:
        raise ValueError("loads is empty: record at least one MoE layer call before plotting.")
    names = list(loads)
    fractions = [
        expert_load(torch.as_tensor(loads[n], dtype=torch.float64)).tolist() for n in names
    ]
    E = max(len(f) for f in fractions)
    grid = [f + [float("nan")] * (E - len(f)) for f in fractions]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * E + 2.5), 0.5 * len(names) + 1.8))
    im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0.0)
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks(range(E))
    ax.set_xlabel("expert")
    ax.set_title(f"{title}\n(uniform = {1 / E:.3f})")
    fig.colorbar(im, ax=ax, label="fraction of assignments")
    return save_figure(fig, path, dpi=110)
