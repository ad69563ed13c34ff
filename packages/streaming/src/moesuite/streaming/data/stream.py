"""The stream type every source returns: an iterable of ``(x, y)`` plus what a report needs."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NamedStream", "QUICK_LENGTH"]

#: instances of a generated stream when ``n`` is not given (a run of seconds, not minutes)
QUICK_LENGTH = 5000


@dataclass
class NamedStream:
    """An iterable of ``(x: dict, y)`` with what the evaluation and plots need to know about it.

    Attributes:
        name: registry name (or the file name).
        data: the underlying iterable; iterating a ``NamedStream`` iterates it from ``offset``,
            cut at ``n_samples`` instances.
        n_samples: number of instances (``None`` if unknown).
        drift_points: instance indices of the drift centres (empty for real or incremental drift).
        kind: ``"synthetic"``, ``"real"`` or ``"file"``.
        offset: instances of ``data`` skipped before the first one (a continued stream).

    Examples:
        >>> s = NamedStream("toy", [({"a": i}, i % 2) for i in range(10)], n_samples=3, offset=5)
        >>> [y for _, y in s]
        [1, 0, 1]
    """

    name: str
    data: Iterable[tuple[dict, Any]]
    n_samples: int | None
    drift_points: list[int] = field(default_factory=list)
    kind: str = "synthetic"
    offset: int = 0

    def __iter__(self) -> Iterator[tuple[dict, Any]]:
        stop = None if self.n_samples is None else self.offset + self.n_samples
        return itertools.islice(iter(self.data), self.offset, stop)
