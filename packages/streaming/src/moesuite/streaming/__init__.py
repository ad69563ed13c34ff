"""moesuite.streaming: DriftMoE (a neural router over Hoeffding-tree experts) on drifting streams.

Main entry points: :class:`DriftMoEClassifier` (a river classifier), :func:`make_stream`
(named drift and real streams), :func:`read_table` (CSV/ARFF), :func:`prequential`
(test-then-train evaluation), :func:`create_model` (DriftMoE and the river baselines by name),
:func:`train` / :func:`compare` (run directories, what the CLI calls).
"""

from importlib.metadata import PackageNotFoundError, version

from moesuite.streaming.data import (
    STREAMS,
    DriftStream,
    NamedStream,
    StreamSource,
    drift_probability,
    list_streams,
    make_stream,
    read_table,
)
from moesuite.streaming.evaluate import PrequentialResult, compare, evaluate_run, prequential
from moesuite.streaming.models import MODELS, DriftMoEClassifier, create_model, list_models
from moesuite.streaming.training import train

try:
    __version__ = version("moesuite-streaming")
except PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0"

__all__ = [
    "DriftMoEClassifier",
    "DriftStream",
    "drift_probability",
    "NamedStream",
    "StreamSource",
    "STREAMS",
    "make_stream",
    "list_streams",
    "read_table",
    "prequential",
    "PrequentialResult",
    "MODELS",
    "create_model",
    "list_models",
    "train",
    "compare",
    "evaluate_run",
]
