"""Plots of prequential runs: windowed accuracy with drift points, and DriftMoE expert usage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from moesuite.core.plotting import save_figure

__all__ = ["plot_windowed_accuracy", "plot_expert_usage"]


def _axes():
    """A new figure and its axes (a plain ``Figure``: no pyplot state, no backend switch)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))
    return fig, fig.subplots()


def plot_windowed_accuracy(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: str | Path,
    drift_points: Sequence[int] = (),
    title: str = "Windowed prequential accuracy",
) -> Path:
    """One line per model (``(end index, accuracy)`` points); dashed verticals at the drifts."""
    fig, ax = _axes()
    for name, pts in curves.items():
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, label=name, lw=1.2)
    for i, d in enumerate(drift_points):
        ax.axvline(d, color="grey", ls="--", lw=0.8, label="drift" if i == 0 else None)
    ax.set_xlabel("instances")
    ax.set_ylabel("accuracy (window)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_expert_usage(
    usage: Sequence[Sequence[float]],
    path: str | Path,
    window: int,
    drift_points: Sequence[int] = (),
    title: str = "DriftMoE expert usage",
) -> Path:
    """Stacked area of the fraction of predictions each expert led, per window."""
    if not usage:
        raise ValueError("usage is empty: the stream was shorter than one window.")
    E = max(len(u) for u in usage)
    rows = [[(u[e] if e < len(u) else 0.0) for u in usage] for e in range(E)]
    xs = [window * (i + 1) for i in range(len(usage))]
    fig, ax = _axes()
    ax.stackplot(xs, rows, labels=[f"expert {e}" for e in range(E)])
    for d in drift_points:
        ax.axvline(d, color="black", ls="--", lw=0.8)
    ax.set_xlabel("instances")
    ax.set_ylabel("share of predictions")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, path)
