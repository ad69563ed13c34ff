"""Where a run's instances come from: a registered stream or a user's file, how many, which seed.

A :class:`StreamSource` is what the commands take (``--stream`` or ``--data``/``--target``,
``--n``, ``--seed``) and what a run directory records, so that ``eval`` can continue where
``train`` stopped.

Examples:
    >>> src = StreamSource(stream="sea_abrupt", n=1000)
    >>> s = src.open()
    >>> s.name, s.n_samples, s.drift_points
    ('sea_abrupt', 1000, [250, 500, 750])
    >>> src.following(used=1000)
    StreamSource(stream='sea_abrupt', data=None, target=None, n=1000, seed=1, offset=0, args=())
    >>> StreamSource(stream="sea_abrupt", target="y")
    Traceback (most recent call last):
    ...
    ValueError: --target goes with --data: it names the label column of your file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from moesuite.streaming.data.files import read_table
from moesuite.streaming.data.river_streams import is_river
from moesuite.streaming.data.stream import QUICK_LENGTH, NamedStream
from moesuite.streaming.data.streams import make_stream, stream_kind

__all__ = ["StreamSource", "QUICK_LENGTH"]


@dataclass(frozen=True)
class StreamSource:
    """A registered stream or a CSV/ARFF file, cut to ``n`` instances from ``offset``.

    Args:
        stream: registered stream name (see ``moesuite streaming list``).
        data: a CSV or ARFF file instead of a registered stream.
        target: the label column of ``data`` (required with it, refused without it).
        n: instances (``None``: :data:`QUICK_LENGTH` of a synthetic stream, every remaining
            instance of a real stream or a file).
        seed: seed of a synthetic stream's generators and drifts.
        offset: instances skipped first (a real stream or file continued after a run).
        args: ``key=value`` arguments of a ``river:NAME`` stream (``--stream-arg``; see
            :mod:`~moesuite.streaming.data.river_streams`).

    Raises:
        ValueError: an unknown stream, both or neither of ``stream`` and ``data``, ``target``
            without ``data`` or the reverse, ``args`` without a river stream, ``n < 1`` or
            ``offset < 0``.
    """

    stream: str | None = None
    data: Path | None = None
    target: str | None = None
    n: int | None = None
    seed: int = 0
    offset: int = 0
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args or ()))
        if self.args and not is_river(self.stream):
            raise ValueError(
                f"--stream-arg {self.args[0]}: stream arguments go with a river stream "
                "(--stream river:NAME); `moesuite streaming list` shows them."
            )
        if self.data is not None:
            object.__setattr__(self, "data", Path(self.data))
            if self.stream is not None:
                raise ValueError(
                    f"--stream {self.stream} and --data {self.data}: give one of them, a "
                    "registered stream or your file."
                )
            if self.target is None:
                raise ValueError("--data needs --target: the name of the file's label column.")
        else:
            if self.target is not None:
                raise ValueError(
                    "--target goes with --data: it names the label column of your file."
                )
            if self.stream is None:
                raise ValueError(
                    "give a stream (--stream NAME) or a file (--data PATH --target COL)."
                )
            stream_kind(self.stream)  # ValueError listing the names if unknown
        if self.n is not None and self.n < 1:
            raise ValueError(f"--n must be >= 1 (instances to process), got {self.n}.")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset}.")

    @property
    def synthetic(self) -> bool:
        """Whether the instances come from a generator (a new ``seed`` gives new instances)."""
        return self.data is None and stream_kind(self.stream) == "synthetic"

    def open(self) -> NamedStream:
        """The stream, ready to iterate (files are checked now: a bad file fails here)."""
        if self.synthetic:
            return make_stream(self.stream, self.n or QUICK_LENGTH, self.seed, self.args)
        if self.data is not None:
            stream = read_table(self.data, self.target)
        else:
            stream = make_stream(self.stream, None, self.seed, self.args)
        total = stream.n_samples or 0
        if self.offset >= total:
            raise ValueError(
                f"{stream.name}: no instances after the first {self.offset} (it has {total}); "
                "pass another --stream or --data."
            )
        stream.offset = self.offset
        stream.n_samples = (
            total - self.offset if self.n is None else min(self.n, total - self.offset)
        )
        return stream

    def following(self, used: int) -> StreamSource:
        """The source a model that learnt ``used`` instances of this one continues on.

        A synthetic stream is drawn again with the next seed (new instances, same settings); a
        real stream or file continues after the instances used.
        """
        if self.synthetic:
            return replace(self, n=self.n or used, seed=self.seed + 1, offset=0)
        return replace(self, n=None, offset=self.offset + used)

    def to_config(self) -> dict[str, Any]:
        """JSON-safe fields (for ``config.json``)."""
        out = asdict(self)
        out["data"] = None if self.data is None else str(self.data)
        out["args"] = list(self.args)
        return out

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StreamSource:
        """The inverse of :meth:`to_config`."""
        return cls(
            **{k: config.get(k) for k in ("stream", "data", "target", "n")},
            seed=config.get("seed", 0),
            offset=config.get("offset", 0),
            args=tuple(config.get("args", ())),
        )
