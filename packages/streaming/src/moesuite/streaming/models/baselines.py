"""The river baselines DriftMoE is compared with, registered in :data:`MODELS`.

River's defaults, except the ensemble sizes (10 members, as in the ARF and SRP papers'
comparisons) and SRP's member trees (grace period 50, delta 0.01, as in river's SRP examples).
Every builder takes ``seed`` (ignored by the deterministic single trees) and any constructor
argument of the river class.

Examples:
    >>> arf = MODELS.create("arf", seed=1)
    >>> type(arf).__name__, arf.n_models
    ('ARFClassifier', 10)
"""

from __future__ import annotations

from typing import Any

from river import base, ensemble, forest, tree

from moesuite.streaming.models._registry import MODELS

__all__ = [
    "hoeffding_tree",
    "hoeffding_adaptive_tree",
    "adaptive_random_forest",
    "streaming_random_patches",
    "leveraging_bagging",
]


@MODELS.register("ht", help="river HoeffdingTreeClassifier (defaults)")
def hoeffding_tree(seed: int | None = None, **params: Any) -> base.Classifier:
    """A Hoeffding tree (deterministic: ``seed`` is unused)."""
    return tree.HoeffdingTreeClassifier(**params)


@MODELS.register("hat", help="river HoeffdingAdaptiveTreeClassifier (defaults)")
def hoeffding_adaptive_tree(seed: int | None = None, **params: Any) -> base.Classifier:
    """A Hoeffding adaptive tree (ADWIN-monitored subtrees)."""
    return tree.HoeffdingAdaptiveTreeClassifier(seed=seed, **params)


@MODELS.register("arf", help="river ARFClassifier, 10 trees")
def adaptive_random_forest(seed: int | None = None, **params: Any) -> base.Classifier:
    """Adaptive random forest with 10 trees."""
    return forest.ARFClassifier(**{"n_models": 10, "seed": seed, **params})


@MODELS.register("srp", help="river SRPClassifier, 10 Hoeffding trees")
def streaming_random_patches(seed: int | None = None, **params: Any) -> base.Classifier:
    """Streaming random patches over 10 Hoeffding trees (grace period 50, delta 0.01)."""
    member = tree.HoeffdingTreeClassifier(grace_period=50, delta=0.01)
    return ensemble.SRPClassifier(**{"model": member, "n_models": 10, "seed": seed, **params})


@MODELS.register("lb", help="river LeveragingBaggingClassifier, 10 Hoeffding trees")
def leveraging_bagging(seed: int | None = None, **params: Any) -> base.Classifier:
    """Leveraging bagging over 10 Hoeffding trees (river's defaults)."""
    member = tree.HoeffdingTreeClassifier()
    return ensemble.LeveragingBaggingClassifier(
        **{"model": member, "n_models": 10, "seed": seed, **params}
    )
