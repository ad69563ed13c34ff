"""Prequential classification metrics: accuracy, Cohen's kappa, kappa-M, kappa-T, windowed accuracy.

river 0.26 has ``CohenKappa`` but neither kappa-M (against the majority-class classifier,
Bifet et al. 2015) nor kappa-T (against the no-change classifier that predicts the previous
label, Zliobaite et al. 2015); this module tracks all of them in one pass.

Examples:
    >>> m = PrequentialMetrics(window=2)
    >>> for y, p in [(0, 0), (0, 0), (1, 0), (1, 1)]:
    ...     m.update(y, p)
    >>> s = m.summary()
    >>> s["accuracy"], round(s["kappa"], 3), s["kappa_m"], s["kappa_t"]
    (0.75, 0.5, 0.6666666666666666, 0.5)
    >>> m.windows
    [(2, 1.0), (4, 0.5)]
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["PrequentialMetrics", "cohen_kappa"]


def cohen_kappa(confusion: Counter, n: int) -> float:
    """Cohen's kappa from a ``Counter`` of ``(y_true, y_pred)`` pairs over ``n`` instances."""
    if n == 0:
        return 0.0
    p0 = sum(c for (t, p), c in confusion.items() if t == p) / n
    true_m: Counter = Counter()
    pred_m: Counter = Counter()
    for (t, p), c in confusion.items():
        true_m[t] += c
        pred_m[p] += c
    pe = sum(true_m[k] * pred_m.get(k, 0) for k in true_m) / (n * n)
    return (p0 - pe) / (1 - pe) if pe < 1 else 0.0


class PrequentialMetrics:
    """Accumulates test-then-train predictions.

    Args:
        window: size of the tumbling windows of :attr:`windows` (``(end index, accuracy)`` each).
    """

    def __init__(self, window: int = 1000):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}.")
        self.window = window
        self.n = 0
        self.correct = 0
        self.confusion: Counter = Counter()
        self.windows: list[tuple[int, float]] = []
        self._win_correct = 0
        self._class_counts: Counter = Counter()
        self._majority_correct = 0
        self._last_y: Any = None
        self._nochange_correct = 0

    def update(self, y: Any, y_pred: Any) -> None:
        """Record one prediction ``y_pred`` made before the label ``y`` was learnt."""
        hit = y == y_pred
        self.n += 1
        self.correct += hit
        self._win_correct += hit
        self.confusion[(y, y_pred)] += 1
        if self._class_counts:
            self._majority_correct += self._class_counts.most_common(1)[0][0] == y
        self._class_counts[y] += 1
        self._nochange_correct += self._last_y == y and self.n > 1
        self._last_y = y
        if self.n % self.window == 0:
            self.windows.append((self.n, self._win_correct / self.window))
            self._win_correct = 0

    def summary(self) -> dict[str, float]:
        """``accuracy``, ``kappa``, ``kappa_m``, ``kappa_t`` and ``n`` so far."""
        n = max(self.n, 1)
        acc = self.correct / n
        maj = self._majority_correct / n
        noc = self._nochange_correct / n
        return {
            "n": self.n,
            "accuracy": acc,
            "kappa": cohen_kappa(self.confusion, self.n),
            "kappa_m": (acc - maj) / (1 - maj) if maj < 1 else 0.0,
            "kappa_t": (acc - noc) / (1 - noc) if noc < 1 else 0.0,
        }
