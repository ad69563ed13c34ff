"""AdvMoE's figures: expert usage per class, robust accuracy against inference FLOPs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["plot_usage", "plot_robust_vs_flops"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_usage(path: str | Path, usage: Sequence[Sequence[float]], title: str) -> Path:
    """Stacked bars: share of each class's images per expert."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    bottom = [0.0] * len(usage)
    for e in range(len(usage[0])):
        share = [row[e] for row in usage]
        ax.bar(range(len(usage)), share, bottom=bottom, label=f"expert {e}")
        bottom = [b + s for b, s in zip(bottom, share, strict=True)]
    ax.set_xlabel("class")
    ax.set_ylabel("share of images")
    ax.set_xticks(range(len(usage)))
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_robust_vs_flops(
    path: str | Path, rows: Sequence[dict], metric: str = "pgd50_acc", title: str = ""
) -> Path:
    """One point per row (``label``, ``flops``, ``metric``); mean and min-max over seeds."""
    plt = _pyplot()
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get(metric) is not None:
            groups.setdefault(r["label"], []).append(r)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rs in groups.items():
        xs = sum(r["flops"] for r in rs) / len(rs) / 1e6
        ys = [100 * r[metric] for r in rs]
        mean = sum(ys) / len(ys)
        ax.errorbar(
            xs, mean, yerr=[[mean - min(ys)], [max(ys) - mean]], fmt="o", capsize=3, label=label
        )
    ax.set_xlabel("inference MFLOPs per image (chosen expert + router)")
    ax.set_ylabel(f"{metric.replace('_acc', '').upper()} robust accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
