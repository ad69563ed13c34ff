"""Concept-drift stream combinator that works for any drift width and stream length.

river's ``ConceptDriftStream`` draws from the new concept with probability
``1 / (1 + exp(-4 (t - position) / width))`` but evaluates ``exp`` unguarded, so it raises
``OverflowError`` as soon as ``4 |t - position| / width > 709`` (at once for an abrupt drift,
``width=1``, and after ~9k instances for ``width=50``). :func:`drift_probability` computes the
same sigmoid in a form that never overflows, and :class:`DriftStream` chains any number of
concepts with it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = ["drift_probability", "DriftStream"]


def drift_probability(t: float, position: float, width: float) -> float:
    """Probability that instance ``t`` is of the new concept: ``sigmoid(4 (t - position) / width)``.

    Evaluated as ``1 / (1 + exp(-z))`` for ``z >= 0`` and ``exp(z) / (1 + exp(z))`` for ``z < 0``,
    so the exponent is never positive and nothing overflows, whatever ``t``, ``position`` and
    ``width``.

    Examples:
        >>> drift_probability(5000, 5000, 1)
        0.5
        >>> drift_probability(0, 10**9, 1), drift_probability(10**9, 0, 1)
        (0.0, 1.0)
    """
    if width <= 0:
        raise ValueError(f"width must be > 0 (1 means an abrupt drift), got {width}.")
    z = 4.0 * (t - position) / width
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class DriftStream:
    """A stream whose concept moves from ``concepts[i]`` to ``concepts[i + 1]`` at ``positions[i]``.

    Instance ``t`` (1-based) is drawn from the later concept of drift ``i`` with probability
    :func:`drift_probability` ``(t, positions[i], widths[i])``, the MOA/river definition, applied
    drift after drift (a nested ``ConceptDriftStream``). Only the chosen concept's iterator
    advances. ``width=1`` is an abrupt drift.

    Args:
        concepts: two or more iterables of ``(x, y)`` (e.g. river synthetic datasets); each must be
            long enough for the instances drawn from it.
        positions: ``len(concepts) - 1`` drift centres, increasing.
        widths: one width for every drift, or one per drift.
        seed: seed of the draws that choose the concept.
        n_samples: stop after this many instances (``None``: when a concept runs out).

    Examples:
        >>> from river.datasets import synth
        >>> stream = DriftStream([synth.SEA(variant=0, seed=1), synth.SEA(variant=3, seed=2)],
        ...                      positions=[50_000], widths=1, seed=0, n_samples=100_000)
        >>> sum(1 for _ in stream)
        100000
    """

    def __init__(
        self,
        concepts: Sequence[Iterable[tuple[dict, Any]]],
        positions: Sequence[int],
        widths: int | Sequence[int] = 1,
        seed: int | None = None,
        n_samples: int | None = None,
    ):
        if len(concepts) < 2:
            raise ValueError(
                f"concepts: need at least 2 concepts to drift between, got {len(concepts)}."
            )
        if len(positions) != len(concepts) - 1:
            raise ValueError(
                f"positions: need len(concepts) - 1 = {len(concepts) - 1} drift positions, "
                f"got {len(positions)}."
            )
        if list(positions) != sorted(positions):
            raise ValueError(f"positions must be increasing, got {list(positions)}.")
        widths = [widths] * len(positions) if isinstance(widths, int | float) else list(widths)
        if len(widths) != len(positions):
            raise ValueError(
                f"widths: need one width per drift ({len(positions)}), got {len(widths)}."
            )
        for w in widths:
            if w <= 0:
                raise ValueError(f"widths must be > 0 (1 means an abrupt drift), got {w}.")
        self.concepts = list(concepts)
        self.positions = list(positions)
        self.widths = widths
        self.seed = seed
        self.n_samples = n_samples

    def __iter__(self) -> Iterator[tuple[dict, Any]]:
        rng = random.Random(self.seed)
        iters = [iter(c) for c in self.concepts]
        t = 0
        while self.n_samples is None or t < self.n_samples:
            t += 1
            # nested ConceptDriftStream: the last drift decides first, then the one before...
            i = len(self.positions)
            while i > 0 and rng.random() >= drift_probability(
                t, self.positions[i - 1], self.widths[i - 1]
            ):
                i -= 1
            try:
                yield next(iters[i])
            except StopIteration:
                return

    def __repr__(self) -> str:
        return (
            f"DriftStream({len(self.concepts)} concepts, positions={self.positions}, "
            f"widths={self.widths})"
        )
