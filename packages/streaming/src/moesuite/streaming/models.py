"""Model registry: DriftMoE (both variants) and the river baselines, by name.

Baselines use river's defaults except the ensemble sizes (10 members, as in the ARF and SRP
papers' comparisons). ``create_model`` ignores ``None`` overrides so CLI defaults never
override model defaults.

Examples:
    >>> list_models()
    ['arf', 'driftmoe-data', 'driftmoe-data-fast', 'driftmoe-task', 'hat', 'ht', 'lb', 'srp']
    >>> type(create_model("arf", seed=1)).__name__
    'ARFClassifier'
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

__all__ = ["create_model", "list_models", "model_description", "BASELINES"]


def _driftmoe(variant: str, **preset: Any) -> Callable[..., Any]:
    def build(seed: int, **kw: Any) -> Any:
        from moesuite.streaming.classifier import DriftMoEClassifier

        return DriftMoEClassifier(variant=variant, seed=seed, **{**preset, **kw})

    return build


def _ht(seed: int, **kw: Any) -> Any:
    from river import tree

    return tree.HoeffdingTreeClassifier(**kw)


def _hat(seed: int, **kw: Any) -> Any:
    from river import tree

    return tree.HoeffdingAdaptiveTreeClassifier(seed=seed, **kw)


def _arf(seed: int, **kw: Any) -> Any:
    from river import forest

    return forest.ARFClassifier(**{"n_models": 10, "seed": seed, **kw})


def _srp(seed: int, **kw: Any) -> Any:
    from river import ensemble, tree

    kw = {"model": tree.HoeffdingTreeClassifier(grace_period=50, delta=0.01), "n_models": 10, "seed": seed, **kw}
    return ensemble.SRPClassifier(**kw)


def _lb(seed: int, **kw: Any) -> Any:
    from river import ensemble, tree

    return ensemble.LeveragingBaggingClassifier(**{"model": tree.HoeffdingTreeClassifier(), "n_models": 10, "seed": seed, **kw})


_MODELS: dict[str, tuple[Callable[..., Any], str]] = {
    "driftmoe-data": (_driftmoe("data"), "DriftMoE, MoE-Data: router over 6 Hoeffding trees, top-3 updates"),
    "driftmoe-data-fast": (_driftmoe("data", train_k=2),
                           "DriftMoE, MoE-Data with top-2 updates (train_k=2): faster, less accurate on LED/RandomRBF"),
    "driftmoe-task": (_driftmoe("task"), "DriftMoE, MoE-Task: one-vs-rest Hoeffding tree per class + router"),
    "ht": (_ht, "river HoeffdingTreeClassifier (defaults)"),
    "hat": (_hat, "river HoeffdingAdaptiveTreeClassifier (defaults)"),
    "arf": (_arf, "river ARFClassifier, 10 trees"),
    "srp": (_srp, "river SRPClassifier, 10 Hoeffding trees"),
    "lb": (_lb, "river LeveragingBaggingClassifier, 10 Hoeffding trees"),
}

#: the river baselines run side by side with DriftMoE
BASELINES: tuple[str, ...] = ("ht", "hat", "arf", "srp", "lb")


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def model_description(name: str) -> str:
    """One line describing a registered model."""
    _check(name)
    return _MODELS[name][1]


def _check(name: str) -> None:
    if name not in _MODELS:
        raise KeyError(f"model {name!r} is unknown; expected one of {list_models()}.")


def create_model(name: str, seed: int = 0, **overrides: Any) -> Any:
    """A fresh river classifier by registry name; ``None``-valued overrides are ignored."""
    _check(name)
    kw = {k: v for k, v in overrides.items() if v is not None}
    return _MODELS[name][0](seed, **kw)
