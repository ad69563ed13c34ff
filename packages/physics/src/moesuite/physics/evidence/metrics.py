"""Scores of (depth, tau) estimates: NRMSE under three normalisations, MAE, coverage, Spearman."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "nrmse",
    "coverage",
    "spearman",
    "within_spearman",
    "ranking_scores",
    "score",
    "binned_nrmse",
]


def nrmse(y: np.ndarray, pred: np.ndarray, norm: str = "range") -> float:
    """``RMSE / n`` with ``n`` = ``max - min`` (``"range"``), ``mean`` or ``std`` of ``y``.

    Examples:
        >>> round(nrmse(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.3])), 4)
        0.0866
    """
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
    if norm == "range":
        d = float(y.max() - y.min())
    elif norm == "mean":
        d = float(np.abs(y.mean()))
    elif norm == "std":
        d = float(y.std())
    else:
        raise ValueError(f"norm must be 'range', 'mean' or 'std', got {norm!r}.")
    return rmse / d if d > 0 else float("nan")


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of truths inside ``[lower, upper]``."""
    return float(np.mean((np.asarray(lower) <= y) & (y <= np.asarray(upper))))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (``nan`` when either side is constant)."""
    from scipy import stats

    a, b = np.ravel(a), np.ravel(b)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def within_spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of the Spearman correlation *across columns* of ``a[N, E]`` and ``b[N, E]``.

    Rows where either side is constant are skipped (``nan`` if all are). With ``E = 3`` experts
    each row's value is one of -1, -0.5, 0.5, 1.

    Examples:
        >>> rel = np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])
        >>> within_spearman(rel, np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
        1.0
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = (a.std(1) > 0) & (b.std(1) > 0)
    if not ok.any():
        return float("nan")
    ra, rb = stats.rankdata(a[ok], axis=1), stats.rankdata(b[ok], axis=1)
    ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    rho = (ra * rb).sum(1) / np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    return float(rho.mean())


def ranking_scores(reliability: np.ndarray, err: np.ndarray) -> dict[str, float]:
    """How well per-expert reliabilities ``[N, E]`` rank the experts' errors ``[N, E]``.

    ``pooled``: Spearman over all (signal, expert) pairs of reliability vs ``-err`` (dominated by
    signal-to-signal differences of the error, which reliabilities summing to 1 per signal
    cannot follow); ``within``: the mean within-signal Spearman across experts
    (:func:`within_spearman`); ``relative``: pooled Spearman vs ``-err / sum_e err`` (each
    expert's share of the signal's error); ``top1``: fraction of signals whose most reliable
    expert is the most accurate one (chance ``1/E``).
    """
    rel = err / np.maximum(err.sum(1, keepdims=True), 1e-300)
    return {
        "pooled": spearman(reliability, -err),
        "within": within_spearman(reliability, -err),
        "relative": spearman(reliability, -rel),
        "top1": float(np.mean(reliability.argmax(1) == err.argmin(1))),
    }


def score(
    y: np.ndarray,
    mean: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    names: tuple[str, ...] = ("depth", "tau"),
) -> dict[str, Any]:
    """All scalar metrics of ``[N, T]`` estimates, keyed ``<metric>_<target>``."""
    out: dict[str, Any] = {"n_signals": int(y.shape[0])}
    for j, name in enumerate(names):
        out[f"nrmse_{name}"] = nrmse(y[:, j], mean[:, j])
        out[f"nrmse_mean_{name}"] = nrmse(y[:, j], mean[:, j], "mean")
        out[f"nrmse_std_{name}"] = nrmse(y[:, j], mean[:, j], "std")
        out[f"mae_{name}"] = float(np.mean(np.abs(y[:, j] - mean[:, j])))
        out[f"coverage90_{name}"] = coverage(y[:, j], lower[:, j], upper[:, j])
        out[f"interval_width_{name}"] = float(np.mean(upper[:, j] - lower[:, j]))
    return out


def binned_nrmse(
    y: np.ndarray, pred: np.ndarray, by: np.ndarray, edges: np.ndarray, span: float
) -> np.ndarray:
    """RMSE / ``span`` of ``pred`` within each bin of ``by`` (``nan`` for empty bins)."""
    out = np.full(len(edges) - 1, np.nan)
    which = np.digitize(by, edges) - 1
    for b in range(len(edges) - 1):
        m = which == b
        if m.any():
            out[b] = np.sqrt(np.mean((y[m] - pred[m]) ** 2)) / span
    return out
