"""moesuite.streaming: DriftMoE (a neural router over Hoeffding-tree experts) on drifting streams.

Main entry points: :class:`DriftMoEClassifier` (a river classifier), :func:`make_stream`
(named drift / real streams), :func:`read_table` (CSV/ARFF), :func:`prequential`
(test-then-train evaluation) and :func:`create_model` (DriftMoE and river baselines by name).
"""

from importlib.metadata import PackageNotFoundError, version

from moesuite.streaming.classifier import DriftMoEClassifier
from moesuite.streaming.drift import DriftStream, drift_probability
from moesuite.streaming.evaluate import PrequentialResult, prequential
from moesuite.streaming.files import read_table
from moesuite.streaming.models import create_model, list_models
from moesuite.streaming.streams import NamedStream, list_streams, make_stream

try:
    __version__ = version("moesuite-streaming")
except PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0"

__all__ = [
    "DriftMoEClassifier",
    "DriftStream",
    "drift_probability",
    "NamedStream",
    "make_stream",
    "list_streams",
    "read_table",
    "prequential",
    "PrequentialResult",
    "create_model",
    "list_models",
]
