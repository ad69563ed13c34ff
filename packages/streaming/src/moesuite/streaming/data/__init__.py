"""Streams: the synthetic drift benchmarks and real streams by name, drift wrappers, CSV/ARFF files.

:func:`make_stream` builds a registered stream (:data:`STREAMS`), :func:`read_table` reads a
user's CSV or ARFF file, :class:`DriftStream` chains concepts with overflow-safe drifts; all
return or wrap a :class:`NamedStream`, an iterable of river ``(x: dict, y)`` pairs.
:func:`make_river_stream` runs any river classification dataset or generator (``river:NAME``).
:class:`StreamSource` is either one, as the commands take it and run directories record it.
"""

from moesuite.streaming.data.drift import DriftStream, drift_probability
from moesuite.streaming.data.files import read_table
from moesuite.streaming.data.river_streams import make_river_stream, river_streams
from moesuite.streaming.data.source import StreamSource
from moesuite.streaming.data.stream import QUICK_LENGTH, NamedStream
from moesuite.streaming.data.streams import (
    DEFAULT_STREAM,
    STREAMS,
    elec_path,
    list_streams,
    make_stream,
    stream_kind,
)

__all__ = [
    "DEFAULT_STREAM",
    "NamedStream",
    "QUICK_LENGTH",
    "StreamSource",
    "STREAMS",
    "DriftStream",
    "drift_probability",
    "elec_path",
    "list_streams",
    "make_stream",
    "make_river_stream",
    "read_table",
    "river_streams",
    "stream_kind",
]
