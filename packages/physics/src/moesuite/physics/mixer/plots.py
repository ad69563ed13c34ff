"""Figures: reconstructed trajectories per family and the expert chosen per family."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from moesuite.core.plotting import save_figure
from moesuite.physics.data.odes import EnvironmentSet

__all__ = ["plot_trajectories", "plot_expert_assignment", "plot_assignment_panels"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_trajectories(
    path: str | Path,
    families: tuple[str, ...],
    envs: EnvironmentSet,
    pred: np.ndarray,
    which: str = "test",
    title: str = "",
) -> Path:
    """One panel per family: its first environment's first trajectory, truth (dots) vs model.

    Args:
        path: PNG to write.
        families: family names (``envs.family`` indexes them).
        envs: the environments.
        pred: ``[E, n, T, D]`` predictions of ``envs.<which>``.
        which: ``"fit"`` or ``"test"``.
        title: figure title.
    """
    plt = _pyplot()
    true = getattr(envs, which)
    present = [i for i in range(len(families)) if (envs.family == i).any()]
    cols = min(5, len(present))
    rows = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(present) :]:
        ax.axis("off")
    for ax, fam in zip(axes.flat, present, strict=False):
        env = int(np.flatnonzero(envs.family == fam)[0])
        t = np.arange(true.shape[2]) * envs.dt[env]
        for d in np.flatnonzero(envs.mask[env]):
            color = f"C{d}"
            ax.plot(t, true[env, 0, :, d], "o", ms=3, color=color, alpha=0.6)
            ax.plot(t, pred[env, 0, :, d], "-", lw=1.5, color=color, label=f"state {d}")
        ax.set_title(families[fam], fontsize=9)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.suptitle(title or "reconstructed trajectories (dots: truth, lines: model)", fontsize=10)
    return save_figure(fig, path, dpi=100)


def plot_expert_assignment(
    path: str | Path,
    families: tuple[str, ...],
    family_idx: np.ndarray,
    experts: np.ndarray,
    num_experts: int,
    title: str = "",
) -> Path:
    """Heatmap of how many environments of each family the gate sends to each expert.

    Args:
        path: PNG to write.
        families: family names.
        family_idx: ``[N]`` family of each environment.
        experts: ``[N]`` expert chosen for each environment.
        num_experts: ``E``.
        title: figure title.
    """
    panel = (title or "environments per family and expert", families, family_idx, experts)
    return plot_assignment_panels(path, [panel], num_experts)


def plot_assignment_panels(
    path: str | Path,
    panels: list[tuple[str, tuple[str, ...], np.ndarray, np.ndarray]],
    num_experts: int,
    cols: int = 2,
) -> Path:
    """Several :func:`plot_expert_assignment` heatmaps side by side.

    Args:
        path: PNG to write.
        panels: ``(title, families, family_idx[N], experts[N])`` per panel.
        num_experts: ``E`` (the same for every panel).
        cols: panels per row.
    """
    plt = _pyplot()
    cols = min(cols, len(panels))
    rows = math.ceil(len(panels) / cols)
    n_fam = max(len(p[1]) for p in panels)
    size = (1.0 + 0.55 * num_experts + 2.2, 0.9 + 0.42 * n_fam)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, families, family_idx, experts) in zip(axes.flat, panels, strict=False):
        counts = np.zeros((len(families), num_experts), dtype=int)
        np.add.at(counts, (np.asarray(family_idx), np.asarray(experts)), 1)
        im = ax.imshow(counts, cmap="Blues", aspect="auto", vmin=0)
        for i, j in zip(*np.nonzero(counts), strict=True):
            dark = counts[i, j] > counts.max() / 2
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(num_experts))
        ax.set_yticks(range(len(families)), families, fontsize=8)
        ax.set_xlabel("expert")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, label="environments")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
