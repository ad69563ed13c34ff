"""River feature dicts to the fixed-width vector ``v[d]`` the neural router reads.

Numeric values are standardised with running (Welford) means and variances and clipped to
``[-clip, clip]``; any other value is one-hot encoded as ``(feature, value)``; a missing feature
(or ``None``/NaN) leaves its slots at 0, the running mean. Slots are handed out in order of
first appearance (keys new in the same instance in sorted order, so the vector does not depend
on the order of the dict), up to ``width``; later keys share slots by a stable hash (CRC-32),
so a stream with unbounded categories still gives a fixed-width vector and never fails.

Examples:
    >>> vec = FeatureVectorizer(width=4)
    >>> for x in ({"a": 1.0, "c": "red"}, {"a": 3.0, "c": "blue"}):
    ...     vec.learn_one(x)
    >>> vec.transform_one({"a": 3.0, "c": "red"}).round(2).tolist()
    [1.0, 1.0, 0.0, 0.0]
    >>> vec.transform_one({}).tolist()  # missing features: all at the mean
    [0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import math
import numbers
import zlib
from typing import Any

import numpy as np

__all__ = ["FeatureVectorizer"]


def _key(name: Any, value: Any) -> tuple[Any, Any] | None:
    """``(name, None)`` for a number, ``(name, str(value))`` for a category, None if missing."""
    if value is None:
        return None
    if isinstance(value, numbers.Number) and not isinstance(value, complex):
        return None if isinstance(value, float) and math.isnan(value) else (name, None)
    return (name, str(value))


class FeatureVectorizer:
    """Online standard scaling + one-hot into a fixed-width ``float64`` vector.

    Args:
        width: length of the vector (number of slots).
        clip: standardised values are clipped to ``[-clip, clip]``.
    """

    def __init__(self, width: int = 64, clip: float = 5.0):
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}.")
        self.width = width
        self.clip = clip
        self._slots: dict[tuple[Any, Any], int] = {}
        self._count = [0] * width
        self._mean = [0.0] * width
        self._m2 = [0.0] * width

    def _slot(self, key: tuple[Any, Any]) -> int:
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) < self.width:
                slot = len(self._slots)
            else:
                slot = zlib.crc32(repr(key).encode()) % self.width
            self._slots[key] = slot
        return slot

    def _register(self, x: dict) -> None:
        new = [
            k for k in (_key(n, v) for n, v in x.items()) if k is not None and k not in self._slots
        ]
        for key in sorted(new, key=repr):
            self._slot(key)

    def learn_one(self, x: dict) -> None:
        """Update the running statistics of the numeric features in ``x``."""
        self._register(x)
        for name, value in x.items():
            key = _key(name, value)
            if key is None or key[1] is not None:
                continue
            s = self._slots[key]
            v = float(value)
            self._count[s] += 1
            d = v - self._mean[s]
            self._mean[s] += d / self._count[s]
            self._m2[s] += d * (v - self._mean[s])

    def transform_one(self, x: dict) -> np.ndarray:
        """The vector ``[width]`` of ``x`` (pure: unseen keys are looked up, not registered)."""
        out = [0.0] * self.width
        slots, clip = self._slots, self.clip
        for name, value in x.items():
            key = _key(name, value)
            if key is None:
                continue
            s = slots.get(key)
            if s is None:  # unseen key: same slot it would get, without registering it
                if len(slots) >= self.width:
                    s = zlib.crc32(repr(key).encode()) % self.width
                else:
                    continue
            if key[1] is not None:
                out[s] += 1.0
                continue
            c = self._count[s]
            if c < 2:
                continue
            std = math.sqrt(self._m2[s] / c)
            z = (float(value) - self._mean[s]) / std if std > 0 else 0.0
            out[s] += clip if z > clip else -clip if z < -clip else z
        return np.asarray(out)
