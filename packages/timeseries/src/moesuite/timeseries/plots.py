"""Figures: forecasts against the truth, expert usage by patch position, and comparison bars.

Figures are built with matplotlib's object API (``Figure``), so plotting never changes the
caller's pyplot backend or state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moesuite.core.plotting import save_figure

__all__ = [
    "plot_forecasts",
    "plot_expert_usage_by_position",
    "plot_comparison",
    "plot_forecast_comparison",
]


def _figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def plot_forecasts(
    windows: Sequence[dict[str, np.ndarray]],
    path: str | Path,
    channel: int = -1,
    channel_name: str = "",
    title: str = "",
) -> Path:
    """One panel per window: lookback, truth and forecast of one channel.

    Args:
        windows: dicts with ``x [L, C]``, ``y [H, C]`` and ``pred [H, C]`` (any scale).
        path: PNG to write.
        channel: channel index to draw (default: the last, the target in ETT files).
        channel_name: its name for the axis label.
        title: figure title.
    """
    fig = _figure((9, 2.4 * len(windows)))
    axes = fig.subplots(len(windows), 1, squeeze=False)
    for ax, w in zip(axes[:, 0], windows, strict=True):
        L, H = len(w["x"]), len(w["y"])
        ax.plot(np.arange(L), w["x"][:, channel], color="0.4", lw=1, label="input")
        ax.plot(np.arange(L, L + H), w["y"][:, channel], color="k", lw=1, label="truth")
        ax.plot(
            np.arange(L, L + H), w["pred"][:, channel], color="tab:red", lw=1.2, label="forecast"
        )
        ax.axvline(L - 0.5, color="0.7", ls="--", lw=0.8)
        ax.set_ylabel(channel_name or f"channel {channel}")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title or "forecast vs truth (test windows)")
    return save_figure(fig, path, dpi=100)


def plot_expert_usage_by_position(
    routing: Mapping[str, np.ndarray], path: str | Path, title: str = ""
) -> Path:
    """Heatmaps, one per MoE layer: fraction of each patch position's assignments per expert."""
    if not routing:
        raise ValueError("routing is empty: the model has no MoE layers.")
    fig = _figure((3.6 * len(routing), 3.6))
    axes = fig.subplots(1, len(routing), squeeze=False)
    for i, (ax, (name, counts)) in enumerate(zip(axes[0], routing.items(), strict=True)):
        frac = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        im = ax.imshow(frac, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("expert")
        if i == 0:
            ax.set_ylabel("patch position (oldest at top)")
        ax.set_xticks(range(counts.shape[1]))
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="share of assignments")
    fig.suptitle(title or "expert usage by patch position (test set)")
    path = Path(path)  # not save_figure: tight_layout cannot place the shared colorbar
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def plot_comparison(
    rows: Sequence[Mapping[str, object]], path: str | Path, metric: str = "mse", title: str = ""
) -> Path:
    """Grouped bars: ``metric`` per horizon (groups) and model (bars), from result rows."""
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    horizons = sorted({int(r["horizon"]) for r in rows})  # type: ignore[call-overload]
    width = 0.8 / max(len(models), 1)
    fig = _figure((1.6 + 1.4 * len(horizons) * max(1, len(models) / 3), 3.8))
    ax = fig.subplots()
    for i, m in enumerate(models):
        vals = [
            next(
                (float(r[metric]) for r in rows if r["model"] == m and int(r["horizon"]) == h),
                np.nan,
            )  # type: ignore[call-overload,arg-type]
            for h in horizons
        ]
        ax.bar(np.arange(len(horizons)) + i * width, vals, width, label=m)
    ax.set_xticks(np.arange(len(horizons)) + width * (len(models) - 1) / 2)
    ax.set_xticklabels([f"H={h}" for h in horizons])
    ax.set_ylabel(f"test {metric.upper()} (standardised)")
    ax.legend(fontsize=8)
    ax.set_title(title or f"test {metric.upper()} by horizon")
    return save_figure(fig, path, dpi=100)


def plot_forecast_comparison(
    past: np.ndarray,
    truth: np.ndarray,
    forecasts: Mapping[str, np.ndarray],
    path: str | Path,
    ylabel: str = "",
    title: str = "",
) -> Path:
    """Several models' forecasts of one window against the truth, after the end of its input."""
    fig = _figure((10, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.arange(-len(past), 0), past, color="0.4", lw=1, label="input")
    ax.plot(np.arange(len(truth)), truth, color="k", lw=1.5, label="truth")
    for name, y in forecasts.items():
        ax.plot(np.arange(len(y)), y, lw=1.1, label=name)
    ax.axvline(-0.5, color="0.7", ls="--", lw=0.8)
    ax.set_xlabel("steps after the input window")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    return save_figure(fig, path, dpi=100)
