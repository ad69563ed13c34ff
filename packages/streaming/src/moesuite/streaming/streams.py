"""Named streams: synthetic drift benchmarks, river's bundled real streams, and user files.

Synthetic drift streams follow the MOA benchmark settings used by the ARF, SRP and DriftMoE
papers (10% noise for SEA and LED, LED with 17 irrelevant attributes, SEA concepts
0 -> 1 -> 3 -> 0, RandomRBF with 5 classes and centroid speeds 1e-4 / 1e-3). Every stream with
discrete drifts has an ``_abrupt`` (width 1) and a ``_gradual`` (width ``n / 20``) variant, with
three drifts at 25%, 50% and 75% of the stream, built with :class:`~moesuite.streaming.drift.DriftStream`.

Examples:
    >>> s = make_stream("sea_abrupt", n_samples=1000, seed=0)
    >>> s.drift_points, sum(1 for _ in s)
    ([250, 500, 750], 1000)
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moesuite.streaming.drift import DriftStream
from moesuite.streaming.files import read_table

__all__ = ["NamedStream", "StreamInfo", "make_stream", "list_streams", "stream_info", "SYNTHETIC_DRIFT_STREAMS"]


@dataclass
class NamedStream:
    """An iterable of ``(x: dict, y)`` with what the evaluation and plots need to know about it.

    Attributes:
        name: registry name (or the file name).
        data: the underlying iterable; iterating a ``NamedStream`` iterates it, cut at ``n_samples``.
        n_samples: number of instances (``None`` if unknown).
        drift_points: instance indices of the drift centres (empty for real or incremental drift).
        kind: ``"synthetic"``, ``"real"`` or ``"file"``.
        description: one line for tables.
    """

    name: str
    data: Iterable[tuple[dict, Any]]
    n_samples: int | None
    drift_points: list[int] = field(default_factory=list)
    kind: str = "synthetic"
    description: str = ""

    def __iter__(self) -> Iterator[tuple[dict, Any]]:
        for i, xy in enumerate(self.data):
            if self.n_samples is not None and i >= self.n_samples:
                return
            yield xy


@dataclass(frozen=True)
class StreamInfo:
    """A registered stream: its builder ``(n_samples, seed) -> NamedStream`` and defaults."""

    name: str
    kind: str
    description: str
    default_samples: int | None
    build: Callable[[int | None, int], NamedStream]


_REGISTRY: dict[str, StreamInfo] = {}


def _register(name: str, kind: str, description: str, default_samples: int | None):
    def deco(fn: Callable[[int | None, int], NamedStream]):
        if name in _REGISTRY:
            raise ValueError(f"stream {name!r} is registered twice.")
        _REGISTRY[name] = StreamInfo(name, kind, description, default_samples, fn)
        return fn

    return deco


def list_streams(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered stream names matching a shell-style ``pattern``, optionally of one ``kind``."""
    return sorted(n for n, s in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (kind is None or s.kind == kind))


def stream_info(name: str) -> StreamInfo:
    """The :class:`StreamInfo` of a registered stream (``KeyError`` naming the choices if unknown)."""
    if name not in _REGISTRY:
        raise KeyError(f"stream {name!r} is unknown; expected one of {list_streams()} (or --data PATH --target COL).")
    return _REGISTRY[name]


def make_stream(name: str, n_samples: int | None = None, seed: int = 0) -> NamedStream:
    """Build a registered stream with ``n_samples`` instances (its default if ``None``).

    Args:
        name: see :func:`list_streams`.
        n_samples: stream length; drift positions scale with it. Real streams are cut to it.
        seed: seed of the generators and of the drift draws.
    """
    info = stream_info(name)
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
    return info.build(n_samples if n_samples is not None else info.default_samples, seed)


# ---------------------------------------------------------------- synthetic drift streams


def _drift_stream(name: str, concepts: list, n: int, seed: int, gradual: bool, description: str) -> NamedStream:
    k = len(concepts) - 1
    positions = [round(n * (i + 1) / (k + 1)) for i in range(k)]
    width = max(1, n // 20) if gradual else 1
    data = DriftStream(concepts, positions, width, seed=seed, n_samples=n)
    return NamedStream(name, data, n, positions, "synthetic", description)


def _register_drift_family(base: str, description: str, concepts: Callable[[int], list]) -> None:
    for mode in ("abrupt", "gradual"):
        name = f"{base}_{mode}"

        def build(n: int | None, seed: int, name: str = name, mode: str = mode) -> NamedStream:
            return _drift_stream(name, concepts(seed), n or 100_000, seed, mode == "gradual", f"{description}, {mode}")

        _register(name, "synthetic", f"{description}, {mode} drifts at 25/50/75%", 100_000)(build)


def _synth():
    from river.datasets import synth

    return synth


_register_drift_family(
    "sea", "SEA 10% noise, concepts 0-1-3-0",
    lambda s: [_synth().SEA(variant=v, noise=0.1, seed=s + i) for i, v in enumerate((0, 1, 3, 0))],
)
_register_drift_family(
    "agrawal", "Agrawal, functions 0-2-5-8",
    lambda s: [_synth().Agrawal(classification_function=f, seed=s + i) for i, f in enumerate((0, 2, 5, 8))],
)
_register_drift_family(
    "led", "LED 10% noise, 24 attributes, 1-3-5-7 drifting attributes",
    lambda s: [
        _synth().LEDDrift(seed=s + i, noise_percentage=0.1, irrelevant_features=True, n_drift_features=d)
        for i, d in enumerate((1, 3, 5, 7))
    ],
)
_register_drift_family(
    "hyperplane", "Hyperplane 10 attributes 5% noise, 4 random planes",
    lambda s: [_synth().Hyperplane(seed=s + i, n_features=10, n_drift_features=0) for i in range(4)],
)
_register_drift_family(
    "stagger", "STAGGER, functions 0-1-2-0",
    lambda s: [_synth().STAGGER(classification_function=f, seed=s + i) for i, f in enumerate((0, 1, 2, 0))],
)
_register_drift_family(
    "mixed", "Mixed, functions 0-1-0-1",
    lambda s: [_synth().Mixed(classification_function=f, seed=s + i) for i, f in enumerate((0, 1, 0, 1))],
)


def _register_rbf(name: str, speed: float, label: str) -> None:
    def build(n: int | None, seed: int) -> NamedStream:
        data = _synth().RandomRBFDrift(
            seed_model=seed, seed_sample=seed, n_classes=5, n_features=10, n_centroids=50,
            change_speed=speed, n_drift_centroids=50,
        )
        return NamedStream(name, data, n or 100_000, [], "synthetic", f"RandomRBF 5 classes, {label} incremental drift")

    _register(name, "synthetic", f"RandomRBF 5 classes 50 centroids, incremental drift speed {speed:g} ({label})", 100_000)(build)


_register_rbf("rbf_moderate", 1e-4, "moderate")
_register_rbf("rbf_fast", 1e-3, "fast")

#: the streams averaged for the benchmark target
SYNTHETIC_DRIFT_STREAMS: tuple[str, ...] = tuple(list_streams(kind="synthetic"))

# ---------------------------------------------------------------- real streams


def _register_river_dataset(name: str, cls_name: str, description: str) -> None:
    def build(n: int | None, seed: int) -> NamedStream:
        from river import datasets

        data = getattr(datasets, cls_name)()
        total = data.n_samples if n is None else min(n, data.n_samples)
        return NamedStream(name, data, total, [], "real", description)

    _register(name, "real", f"{description} (bundled with river, offline)", None)(build)


_register_river_dataset("phishing", "Phishing", "Phishing websites, 1,250 x 9, binary")
_register_river_dataset("bananas", "Bananas", "Bananas, 5,300 x 2, binary")
_register_river_dataset("segment", "ImageSegments", "Image segments, 2,310 x 18, 7 classes")
_register_river_dataset("shuttle", "Shuttle", "Statlog shuttle, 49,097 x 9, 7 classes (imbalanced)")


def elec_path() -> Path:
    """Where ``elec.csv`` is read from: ``$MOESUITE_STREAMS_DIR`` or ``../shared/data/streams``."""
    candidates = [Path(os.environ["MOESUITE_STREAMS_DIR"])] if os.environ.get("MOESUITE_STREAMS_DIR") else []
    candidates += [Path.cwd().parent / "shared" / "data" / "streams", Path.cwd() / "data" / "streams"]
    for c in candidates:
        if (c / "elec.csv").is_file():
            return c / "elec.csv"
    raise FileNotFoundError(
        f"elec: elec.csv not found in {[str(c) for c in candidates]}; set MOESUITE_STREAMS_DIR to its folder "
        "or pass --data PATH --target class."
    )


@_register("elec", "real", "Electricity (Elec2) 45,312 x 6, binary; read from $MOESUITE_STREAMS_DIR/elec.csv", None)
def _elec(n: int | None, seed: int) -> NamedStream:
    stream = read_table(elec_path(), target="class")
    stream.name, stream.kind = "elec", "real"
    if n is not None:
        stream.n_samples = min(n, stream.n_samples or n)
    return stream
