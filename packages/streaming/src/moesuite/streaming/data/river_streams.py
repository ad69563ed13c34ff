"""Any river classification dataset or generator as a stream: ``--stream river:NAME``.

The names are discovered from river itself (``river.datasets`` and ``river.datasets.synth``),
never typed in: every class whose default instance is a binary or multi-class classification
task (datasets bundled with river's wheel read offline; the others download on first use).
``args`` are ``key=value`` strings (``--stream-arg``): constructor arguments of the river class
(values read as Python literals, else kept as text), plus, for a generator, a drift wrapper:

* ``drift_at=P`` (one or more positions, ``drift_at=5000`` or ``drift_at=(2500,5000)``; a
  number below 1 is a fraction of the stream) and ``drift_width=W`` (default 1, abrupt) chain
  concepts with :class:`~moesuite.streaming.data.drift.DriftStream`, the overflow-safe drift;
* concept ``i`` after drift ``i`` is the generator with the ``after.KEY=VALUE`` arguments on
  top of the others and every seed argument (given or not) ``+ i`` (a new random concept
  where the generator draws one, e.g. ``RandomTree``, ``Hyperplane``, ``RandomRBF``).

Seed arguments the user does not give (``seed``, ``seed_model``, ...) get the run's seed.

Examples:
    >>> s = make_river_stream("river:Agrawal", ("classification_function=0", "drift_at=0.5",
    ...                       "after.classification_function=4"), n_samples=1000, seed=0)
    >>> s.name, s.kind, s.drift_points, sum(1 for _ in s)
    ('river:Agrawal', 'synthetic', [500], 1000)
    >>> make_river_stream("river:Phishing").n_samples
    1250
    >>> make_river_stream("river:Agrawl")
    Traceback (most recent call last):
    ...
    ValueError: unknown river stream 'river:Agrawl'; expected one of [...].
"""

from __future__ import annotations

import ast
import functools
import inspect
import warnings
from collections.abc import Sequence
from typing import Any

from moesuite.streaming.data.drift import DriftStream
from moesuite.streaming.data.stream import QUICK_LENGTH, NamedStream

__all__ = ["RIVER_PREFIX", "river_streams", "is_river", "river_kind", "make_river_stream"]

RIVER_PREFIX = "river:"
#: a generator that is itself a drift wrapper (river's, which overflows): use ``drift_at``
_WRAPPERS = ("ConceptDriftStream",)
_DRIFT_KEYS = ("drift_at", "drift_width")
_AFTER = "after."


def is_river(name: str | None) -> bool:
    """Whether ``name`` asks for a river stream (``river:NAME``)."""
    return name is not None and name.startswith(RIVER_PREFIX)


@functools.cache
def river_streams() -> dict[str, tuple[type, str, str]]:
    """``river:NAME -> (class, kind, description)`` for river's classification streams.

    ``kind`` is ``"synthetic"`` (a generator) or ``"real"`` (a dataset); the description
    says how many instances and whether the data ships with river.
    """
    from river import datasets
    from river.datasets import base, synth

    out: dict[str, tuple[type, str, str]] = {}
    for module, kind in ((synth, "synthetic"), (datasets, "real")):
        for name in module.__all__:
            cls = getattr(module, name)
            if not inspect.isclass(cls) or name in _WRAPPERS:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    inst = cls()
            except Exception:  # a class that needs arguments is not a stream by default
                continue
            if getattr(inst, "task", None) not in (base.BINARY_CLF, base.MULTI_CLF):
                continue
            if kind == "synthetic":
                text = f"river generator, {inst.n_features} features"
            else:
                where = (
                    "downloads on first use"
                    if isinstance(inst, base.RemoteDataset)
                    else ("bundled, offline")
                )
                text = f"river dataset, {inst.n_samples:,} x {inst.n_features} ({where})"
            out[RIVER_PREFIX + name] = (cls, kind, f"{text}: {inst.task.lower()}")
    return out


def _entry(name: str) -> tuple[type, str, str]:
    streams = river_streams()
    if name in streams:
        return streams[name]
    folded = {k.lower(): k for k in streams}
    if name.lower() in folded:
        return streams[folded[name.lower()]]
    raise ValueError(f"unknown river stream {name!r}; expected one of {sorted(streams)}.")


def river_kind(name: str) -> str:
    """``"synthetic"`` (generator) or ``"real"`` (dataset); unknown names raise ``ValueError``."""
    return _entry(name)[1]


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_args(args: Sequence[str]) -> dict[str, Any]:
    """``("a=1", "b=x")`` -> ``{"a": 1, "b": "x"}`` (``ValueError`` on an item without ``=``)."""
    out: dict[str, Any] = {}
    for item in args:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--stream-arg {item!r}: expected KEY=VALUE.")
        out[key.strip()] = _value(text.strip())
    return out


def _check_keys(name: str, cls: type, params: dict[str, Any]) -> None:
    valid = [p for p in inspect.signature(cls).parameters if p not in ("self",)]
    for key in params:
        if key not in valid:
            raise ValueError(
                f"--stream-arg {key}: not an argument of {name}; expected one of {valid}"
                + (
                    f" or {list(_DRIFT_KEYS)} and after.KEY"
                    if river_kind(name) == "synthetic"
                    else ""
                )
                + "."
            )


def _seeded(cls: type, params: dict[str, Any], seed: int) -> dict[str, Any]:
    """``params`` with every seed argument of ``cls`` that they do not set set to ``seed``."""
    out = dict(params)
    for p in inspect.signature(cls).parameters:
        if p.startswith("seed") and p not in params:
            out[p] = seed
    return out


def _positions(at: Any, n: int) -> list[int]:
    values = list(at) if isinstance(at, list | tuple) else [at]
    out = []
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
            raise ValueError(
                f"--stream-arg drift_at={at!r}: expected positions > 0 (instances, or "
                "fractions of the stream below 1)."
            )
        pos = round(v * n) if v < 1 else int(v)
        if pos >= n:
            raise ValueError(
                f"--stream-arg drift_at={at!r}: position {pos} is not inside the stream "
                f"({n} instances, --n)."
            )
        out.append(pos)
    if out != sorted(out):
        raise ValueError(f"--stream-arg drift_at={at!r}: positions must be increasing.")
    return out


def make_river_stream(
    name: str, args: Sequence[str] = (), n_samples: int | None = None, seed: int = 0
) -> NamedStream:
    """The river stream ``river:NAME`` with ``args`` (see the module docstring).

    Args:
        name: ``river:NAME`` (see :func:`river_streams`; case-insensitive).
        args: ``key=value`` strings.
        n_samples: instances (``None``: 5,000 of a generator, the whole dataset).
        seed: the seed of every seed argument not given in ``args``.

    Raises:
        ValueError: unknown name (the message lists the streams), unknown argument (the message
            lists the class's arguments), drift arguments on a dataset, a drift outside the
            stream.
    """
    cls, kind, _ = _entry(name)
    name = RIVER_PREFIX + cls.__name__
    params = parse_args(args)
    drift = {k: params.pop(k) for k in _DRIFT_KEYS if k in params}
    after = {k[len(_AFTER) :]: params.pop(k) for k in list(params) if k.startswith(_AFTER)}
    _check_keys(name, cls, params)
    _check_keys(name, cls, after)
    if kind == "real":
        if drift or after:
            raise ValueError(
                f"--stream-arg {next(iter(drift or after))}: {name} is a dataset; drift "
                "arguments go with a river generator."
            )
        data = cls(**params)
        total = data.n_samples if n_samples is None else min(n_samples, data.n_samples)
        return NamedStream(name, data, total, [], "real")
    n = n_samples or QUICK_LENGTH
    if "drift_at" not in drift:
        if "drift_width" in drift or after:
            raise ValueError(
                "--stream-arg drift_width / after.KEY: give the drift position too (drift_at=P)."
            )
        return NamedStream(name, cls(**_seeded(cls, params, seed)), n, [], kind)
    positions = _positions(drift["drift_at"], n)
    width = drift.get("drift_width", 1)
    if not isinstance(width, int | float) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"--stream-arg drift_width={width!r}: expected a width > 0 (1: abrupt).")
    first = _seeded(cls, params, seed)
    concepts = [cls(**first)]
    for i in range(1, len(positions) + 1):
        later = {**first, **after}
        later = {
            k: v + i if k.startswith("seed") and isinstance(v, int) else v for k, v in later.items()
        }
        concepts.append(cls(**later))
    data = DriftStream(concepts, positions, width, seed=seed, n_samples=n)
    return NamedStream(name, data, n, positions, kind)
