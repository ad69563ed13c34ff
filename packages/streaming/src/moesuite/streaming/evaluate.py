"""Prequential (test-then-train) evaluation of one river classifier on one stream.

river's own loop (``river/evaluate/progressive_validation.py``) with what the benchmark needs
on top: throughput timed around the model calls only (stream generation and metric
book-keeping excluded, so every model is timed the same way), windowed accuracy, kappa-M and
kappa-T, and, for models that expose ``expert_usage()``, expert usage per window.

Examples:
    >>> from river import tree
    >>> from moesuite.streaming.streams import make_stream
    >>> r = prequential(tree.HoeffdingTreeClassifier(), make_stream("sea_abrupt", 2000), window=500)
    >>> r.n, len(r.windows), 0.5 < r.accuracy <= 1.0
    (2000, 4, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from moesuite.streaming.metrics import PrequentialMetrics

__all__ = ["PrequentialResult", "prequential"]


@dataclass
class PrequentialResult:
    """Figures of one prequential run (all JSON-serialisable via :meth:`to_dict`).

    Attributes:
        accuracy, kappa, kappa_m, kappa_t: over the whole stream.
        n: instances seen.
        seconds: time spent inside ``predict_one`` + ``learn_one``.
        throughput: ``n / seconds`` (instances per second).
        windows: ``(end index, accuracy)`` per tumbling window.
        expert_usage: per window, the fraction of predictions each expert made (DriftMoE only).
    """

    accuracy: float
    kappa: float
    kappa_m: float
    kappa_t: float
    n: int
    seconds: float
    throughput: float
    windows: list[tuple[int, float]] = field(default_factory=list)
    expert_usage: list[list[float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prequential(
    model: Any,
    stream: Iterable[tuple[dict, Any]],
    window: int = 1000,
    on_step: Callable[[int], None] | None = None,
    step_every: int = 500,
) -> PrequentialResult:
    """Test-then-train ``model`` on ``stream``: predict each ``x``, score it, then learn ``(x, y)``.

    Args:
        model: a river classifier (``predict_one``, ``learn_one``).
        stream: iterable of ``(x, y)``.
        window: tumbling window for the windowed accuracy (and expert usage).
        on_step: called with the number of instances processed every ``step_every`` instances
            (progress bars).
        step_every: see ``on_step``.

    Raises:
        ValueError: the stream is empty.
    """
    metrics = PrequentialMetrics(window)
    usage_fn = getattr(model, "expert_usage", None)
    usage: list[list[float]] = []
    last_usage = list(usage_fn()) if usage_fn else None
    clock = time.perf_counter
    spent = 0.0
    n = 0
    for x, y in stream:
        t0 = clock()
        y_pred = model.predict_one(x)
        model.learn_one(x, y)
        spent += clock() - t0
        metrics.update(y, y_pred)
        n += 1
        if usage_fn is not None and n % window == 0:
            now = list(usage_fn())
            delta = [a - b for a, b in zip(now, last_usage + [0] * (len(now) - len(last_usage)), strict=True)]
            total = sum(delta) or 1
            usage.append([d / total for d in delta])
            last_usage = now
        if on_step is not None and n % step_every == 0:
            on_step(n)
    if n == 0:
        raise ValueError("the stream is empty: expected at least one (x, y) instance.")
    if on_step is not None:
        on_step(n)
    s = metrics.summary()
    return PrequentialResult(
        accuracy=s["accuracy"], kappa=s["kappa"], kappa_m=s["kappa_m"], kappa_t=s["kappa_t"], n=n,
        seconds=spent, throughput=n / spent if spent > 0 else float("inf"),
        windows=metrics.windows, expert_usage=usage,
    )
