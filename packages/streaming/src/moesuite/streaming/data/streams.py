"""The stream registry: synthetic drift benchmarks and real streams, by name.

Synthetic drift streams follow the MOA benchmark settings used by the ARF, SRP and DriftMoE
papers (10% noise for SEA and LED, LED with 17 irrelevant attributes, SEA concepts
0 -> 1 -> 3 -> 0, RandomRBF with 5 classes and centroid speeds 1e-4 / 1e-3). Every stream with
discrete drifts has an ``_abrupt`` (width 1) and a ``_gradual`` (width ``n / 20``) variant, with
three drifts at 25%, 50% and 75% of the stream, built with
:class:`~moesuite.streaming.data.drift.DriftStream`. Real streams are river's bundled datasets
(offline) and Electricity, read from a CSV file.

Each entry of :data:`STREAMS` is a builder ``(n_samples, seed) -> NamedStream`` whose preset
holds its ``kind`` (``"synthetic"`` or ``"real"``).

Examples:
    >>> s = make_stream("sea_abrupt", n_samples=1000, seed=0)
    >>> s.drift_points, sum(1 for _ in s)
    ([250, 500, 750], 1000)
    >>> make_stream("sea_sudden")
    Traceback (most recent call last):
    ...
    ValueError: unknown stream 'sea_sudden'; expected one of [...].
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from moesuite.core.registry import Registry
from moesuite.streaming.data.drift import DriftStream
from moesuite.streaming.data.files import read_table
from moesuite.streaming.data.river_streams import is_river, make_river_stream, river_kind
from moesuite.streaming.data.stream import NamedStream

__all__ = [
    "DEFAULT_STREAM",
    "STREAMS",
    "make_stream",
    "list_streams",
    "stream_kind",
    "elec_path",
]

#: every named stream: ``STREAMS.create(name, n_samples=..., seed=...)`` builds one
STREAMS: Registry[NamedStream] = Registry("stream")

#: length of a synthetic stream when none is given (the benchmark's length)
SYNTHETIC_LENGTH = 100_000
#: the stream a command runs when none is named (``moesuite streaming list`` marks it *)
DEFAULT_STREAM = "sea_abrupt"


def make_stream(
    name: str, n_samples: int | None = None, seed: int = 0, args: tuple[str, ...] = ()
) -> NamedStream:
    """Build a registered stream, or any river stream (``river:NAME``), of ``n_samples``.

    Args:
        name: see :func:`list_streams`, or ``river:NAME`` (see
            :func:`~moesuite.streaming.data.river_streams.make_river_stream`).
        n_samples: stream length (``None``: 100,000 for a registered synthetic stream, 5,000
            of a river generator, the whole dataset for a real one); drift positions scale
            with it. Real streams are cut to it.
        seed: seed of the generators and of the drift draws.
        args: ``key=value`` arguments of a ``river:NAME`` stream.

    Raises:
        ValueError: unknown name (the message lists the valid ones), or ``n_samples < 1``.
    """
    if n_samples is not None and n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
    if is_river(name):
        return make_river_stream(name, args, n_samples, seed)
    entry = STREAMS.get(name)
    if args:
        raise ValueError(
            f"--stream-arg {args[0]}: {name} is a registered stream; stream arguments go with "
            "river:NAME."
        )
    stream = entry.build(n_samples=n_samples, seed=seed)
    stream.name = name
    return stream


def list_streams(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered stream names matching a shell-style ``pattern``, optionally of one ``kind``."""
    return [n for n in STREAMS.list(pattern) if kind is None or stream_kind(n) == kind]


def stream_kind(name: str) -> str:
    """``"synthetic"`` or ``"real"`` (``ValueError`` listing the names if ``name`` is unknown)."""
    if is_river(name):
        return river_kind(name)
    return STREAMS.get(name).preset["kind"]


# ---------------------------------------------------------------- synthetic drift streams


def _synth():
    from river.datasets import synth

    return synth


def _concept_drift(
    concepts: Callable[[int], list],
    gradual: bool,
    kind: str,
    n_samples: int | None = None,
    seed: int = 0,
) -> NamedStream:
    """Three drifts at 25/50/75% of the stream between the concepts ``concepts(seed)``."""
    n = n_samples or SYNTHETIC_LENGTH
    chain = concepts(seed)
    k = len(chain) - 1
    positions = [round(n * (i + 1) / (k + 1)) for i in range(k)]
    width = max(1, n // 20) if gradual else 1
    data = DriftStream(chain, positions, width, seed=seed, n_samples=n)
    return NamedStream("", data, n, positions, kind)


def _register_family(base: str, description: str, concepts: Callable[[int], list]) -> None:
    for mode in ("abrupt", "gradual"):
        STREAMS.register(
            f"{base}_{mode}",
            _concept_drift,
            help=f"{description}, {mode} drifts at 25/50/75%",
            concepts=concepts,
            gradual=mode == "gradual",
            kind="synthetic",
        )


_register_family(
    "sea",
    "SEA 10% noise, concepts 0-1-3-0",
    lambda s: [_synth().SEA(variant=v, noise=0.1, seed=s + i) for i, v in enumerate((0, 1, 3, 0))],
)
_register_family(
    "agrawal",
    "Agrawal, functions 0-2-5-8",
    lambda s: [
        _synth().Agrawal(classification_function=f, seed=s + i) for i, f in enumerate((0, 2, 5, 8))
    ],
)
_register_family(
    "led",
    "LED 10% noise, 24 attributes, 1-3-5-7 drifting attributes",
    lambda s: [
        _synth().LEDDrift(
            seed=s + i, noise_percentage=0.1, irrelevant_features=True, n_drift_features=d
        )
        for i, d in enumerate((1, 3, 5, 7))
    ],
)
_register_family(
    "hyperplane",
    "Hyperplane 10 attributes 5% noise, 4 random planes",
    lambda s: [
        _synth().Hyperplane(seed=s + i, n_features=10, n_drift_features=0) for i in range(4)
    ],
)
_register_family(
    "stagger",
    "STAGGER, functions 0-1-2-0",
    lambda s: [
        _synth().STAGGER(classification_function=f, seed=s + i) for i, f in enumerate((0, 1, 2, 0))
    ],
)
_register_family(
    "mixed",
    "Mixed, functions 0-1-0-1",
    lambda s: [
        _synth().Mixed(classification_function=f, seed=s + i) for i, f in enumerate((0, 1, 0, 1))
    ],
)
_register_family(
    "randomtree",
    "RandomTree 2 classes, 5 numeric + 5 categorical attributes, 4 random trees",
    lambda s: [_synth().RandomTree(seed_tree=s + i, seed_sample=s + i) for i in range(4)],
)
_register_family(
    "sine",
    "Sine with 2 irrelevant attributes, functions 0-2-1-3",
    lambda s: [
        _synth().Sine(classification_function=f, seed=s + i, has_noise=True)
        for i, f in enumerate((0, 2, 1, 3))
    ],
)


def _random_rbf(
    speed: float, kind: str, n_samples: int | None = None, seed: int = 0
) -> NamedStream:
    """RandomRBF with incremental drift: 5 classes, 10 features, all 50 centroids moving."""
    data = _synth().RandomRBFDrift(
        seed_model=seed,
        seed_sample=seed,
        n_classes=5,
        n_features=10,
        n_centroids=50,
        change_speed=speed,
        n_drift_centroids=50,
    )
    return NamedStream("", data, n_samples or SYNTHETIC_LENGTH, [], kind)


for _name, _speed, _label in (("rbf_moderate", 1e-4, "moderate"), ("rbf_fast", 1e-3, "fast")):
    STREAMS.register(
        _name,
        _random_rbf,
        help=f"RandomRBF 5 classes 50 centroids, incremental drift speed {_speed:g} ({_label})",
        speed=_speed,
        kind="synthetic",
    )

# ---------------------------------------------------------------- real streams


def _river_dataset(
    dataset: str, kind: str, n_samples: int | None = None, seed: int = 0
) -> NamedStream:
    """One of river's bundled datasets (offline), cut to ``n_samples``; ``seed`` is unused."""
    from river import datasets

    data = getattr(datasets, dataset)()
    total = data.n_samples if n_samples is None else min(n_samples, data.n_samples)
    return NamedStream("", data, total, [], kind)


for _name, _dataset, _description in (
    ("phishing", "Phishing", "Phishing websites, 1,250 x 9, binary"),
    ("bananas", "Bananas", "Bananas, 5,300 x 2, binary"),
    ("segment", "ImageSegments", "Image segments, 2,310 x 18, 7 classes"),
    ("shuttle", "Shuttle", "Statlog shuttle, 49,097 x 9, 7 classes (imbalanced)"),
):
    STREAMS.register(
        _name,
        _river_dataset,
        help=f"{_description} (bundled with river, offline)",
        dataset=_dataset,
        kind="real",
    )


def elec_path() -> Path:
    """Where ``elec.csv`` is read from: ``$MOESUITE_STREAMS_DIR`` or ``../shared/data/streams``."""
    env = os.environ.get("MOESUITE_STREAMS_DIR")
    candidates = [Path(env)] if env else []
    candidates += [
        Path.cwd().parent / "shared" / "data" / "streams",
        Path.cwd() / "data" / "streams",
    ]
    for c in candidates:
        if (c / "elec.csv").is_file():
            return c / "elec.csv"
    raise FileNotFoundError(
        f"elec: elec.csv not found in {[str(c) for c in candidates]}; set MOESUITE_STREAMS_DIR "
        "to its folder or pass --data PATH --target class."
    )


def _elec(kind: str, n_samples: int | None = None, seed: int = 0) -> NamedStream:
    """Electricity (Elec2) from ``elec.csv``, label column ``class``; ``seed`` is unused."""
    stream = read_table(elec_path(), target="class")
    stream.kind = kind
    if n_samples is not None:
        stream.n_samples = min(n_samples, stream.n_samples or n_samples)
    return stream


STREAMS.register(
    "elec",
    _elec,
    help="Electricity (Elec2) 45,312 x 6, binary; read from $MOESUITE_STREAMS_DIR/elec.csv",
    kind="real",
)
