"""Models by name: DriftMoE (:class:`DriftMoEClassifier`, its router) and the river baselines.

:data:`MODELS` is the registry; :func:`create_model` builds a fresh river classifier.

Examples:
    >>> " ".join(list_models())
    'arf driftmoe-data driftmoe-data-fast driftmoe-paper driftmoe-task hat ht lb srp'
    >>> create_model("driftmoe-data-fast", seed=1).train_k
    2
"""

from moesuite.streaming.models import baselines as _baselines  # noqa: F401 (registers)
from moesuite.streaming.models._registry import MODELS, create_model, has_router, list_models
from moesuite.streaming.models.driftmoe import DriftMoEClassifier
from moesuite.streaming.models.router import OnlineRouter

__all__ = [
    "MODELS",
    "DriftMoEClassifier",
    "OnlineRouter",
    "create_model",
    "has_router",
    "list_models",
]
