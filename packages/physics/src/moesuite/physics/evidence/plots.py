"""Figures of the FLiDAR side: histograms, predicted vs true, NRMSE vs depth, expert wins."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moesuite.core.plotting import save_figure
from moesuite.physics.data.flidar import FLiDARDataset
from moesuite.physics.evidence.metrics import binned_nrmse

__all__ = ["plot_example_histograms", "plot_pred_vs_true", "plot_nrmse_vs", "plot_expert_wins"]

_NAMES = (("depth", "depth (mm)"), ("tau", "lifetime tau (ns)"))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_example_histograms(ds: FLiDARDataset, path: str | Path, k: int = 6) -> Path:
    """Up to ``k`` histograms (log counts) labelled with depth, lifetime and photons."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    t = ds.config.bin_centers_ns
    for i in range(min(k, len(ds))):
        label = f"#{i}"
        if ds.params is not None:
            depth, tau = ds.column("depth_mm")[i], ds.column("tau_ns")[i]
            label = f"d={depth:.1f} mm, tau={tau:.2f} ns, N={ds.signals[i].sum():.0f}"
        ax.semilogy(t, np.maximum(ds.signals[i], 0.5), lw=1, label=label)
    ax.set_xlabel("time (ns)")
    ax.set_ylabel("counts per bin")
    ax.set_title(
        f"simulated FLiDAR histograms ({ds.config.n_bins} bins of "
        f"{ds.config.bin_width_ns * 1e3:.1f} ps)"
    )
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)


def plot_pred_vs_true(
    y: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    path: str | Path,
    title: str,
    max_points: int = 300,
    seed: int = 0,
) -> Path:
    """Predicted vs true depth and lifetime with 90% intervals (a random subsample)."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=min(max_points, len(y)), replace=False)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for j, (ax, (_, label)) in enumerate(zip(axes, _NAMES, strict=True)):
        err = np.stack([mean[idx, j] - lower[idx, j], upper[idx, j] - mean[idx, j]]).clip(0)
        ax.errorbar(y[idx, j], mean[idx, j], yerr=err, fmt=".", ms=3, alpha=0.5, elinewidth=0.6)
        lo, hi = y[:, j].min(), y[:, j].max()
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel(f"true {label}")
        ax.set_ylabel(f"predicted {label}")
    fig.suptitle(title)
    return save_figure(fig, path, dpi=110)


def plot_nrmse_vs(
    y: np.ndarray,
    preds: dict[str, np.ndarray],
    depth: np.ndarray,
    photons: np.ndarray,
    path: str | Path,
    title: str = "",
) -> Path:
    """NRMSE of each target vs depth and vs photon count, one line per model."""
    plt = _plt()
    span = y.max(0) - y.min(0)
    d_edges = np.linspace(depth.min(), depth.max() + 1e-9, 9)
    p_edges = np.geomspace(photons.min(), photons.max() + 1e-9, 9)
    fig, axes = plt.subplots(2, 2, figsize=(9, 7))
    for j, (short, _) in enumerate(_NAMES):
        for name, pred in preds.items():
            axes[j, 0].plot(
                0.5 * (d_edges[1:] + d_edges[:-1]),
                binned_nrmse(y[:, j], pred[:, j], depth, d_edges, span[j]),
                "o-",
                label=name,
            )
            axes[j, 1].plot(
                np.sqrt(p_edges[1:] * p_edges[:-1]),
                binned_nrmse(y[:, j], pred[:, j], photons, p_edges, span[j]),
                "o-",
                label=name,
            )
        axes[j, 0].set_xlabel("depth (mm)")
        axes[j, 1].set_xlabel("photons")
        axes[j, 1].set_xscale("log")
        axes[j, 1].xaxis.set_minor_formatter(plt.NullFormatter())
        for ax in axes[j]:
            ax.set_ylabel(f"NRMSE {short} (range-normalised)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title or "NRMSE vs depth and photon count")
    return save_figure(fig, path, dpi=110)


def plot_expert_wins(
    y: np.ndarray,
    expert_mean: np.ndarray,
    reliability: np.ndarray,
    names: tuple[str, ...],
    path: str | Path,
    title: str = "",
    bins: int = 8,
) -> Path:
    """Which expert wins where, over depth x lifetime: the closest one, and the critics' pick.

    For each target (rows: depth, lifetime) two panels: the fraction of signals in each
    (depth, lifetime) cell whose closest expert is each expert, drawn as the colour of the most
    frequent one (intensity: how often it wins), and the same for the expert the critics rank
    first, with the agreement of the two in the title.

    Args:
        y: ``[N, 2]`` true (depth, tau).
        expert_mean: ``[N, E, 2]`` each expert's estimate.
        reliability: ``[N, E, 2]`` the critics' reliabilities.
        names: expert names (``E``).
        path: PNG to write.
        title: figure title.
        bins: cells per axis.
    """
    from matplotlib.colors import to_rgb

    plt = _plt()
    E = expert_mean.shape[1]
    d_edges = np.linspace(y[:, 0].min(), y[:, 0].max() + 1e-9, bins + 1)
    t_edges = np.linspace(y[:, 1].min(), y[:, 1].max() + 1e-9, bins + 1)
    di = np.clip(np.digitize(y[:, 0], d_edges) - 1, 0, bins - 1)
    ti = np.clip(np.digitize(y[:, 1], t_edges) - 1, 0, bins - 1)
    colours = np.array([to_rgb(f"C{e}") for e in range(E)])
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 8), squeeze=False)
    extent = (t_edges[0], t_edges[-1], d_edges[0], d_edges[-1])
    for j, target in enumerate(("depth", "lifetime")):
        best = np.abs(expert_mean[:, :, j] - y[:, None, j]).argmin(1)
        pick = reliability[:, :, j].argmax(1)
        for k, (choice, label) in enumerate(((best, "closest expert"), (pick, "critics' pick"))):
            img = np.ones((bins, bins, 3))
            for a in range(bins):
                for b in range(bins):
                    m = (di == a) & (ti == b)
                    if m.any():
                        share = np.bincount(choice[m], minlength=E) / m.sum()
                        e = int(share.argmax())
                        img[a, b] = 1 - share[e] * (1 - colours[e])
            ax = axes[j, k]
            ax.imshow(img, origin="lower", aspect="auto", extent=extent)
            agree = float(np.mean(best == pick))
            extra = f" (agrees with the closest {agree:.0%})" if k else ""
            ax.set_title(f"{target}: {label}{extra}", fontsize=9)
            ax.set_xlabel("lifetime (ns)")
            ax.set_ylabel("depth (mm)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[e]) for e in range(E)]
    fig.legend(handles, names, loc="lower center", ncol=E, fontsize=8)
    fig.suptitle(title or "which expert wins where (colour: most frequent, shade: how often)")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    return save_figure(fig, path, dpi=90)
