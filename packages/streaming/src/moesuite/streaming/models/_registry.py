"""The model registry (DriftMoE presets and the river baselines), filled by the model files."""

from __future__ import annotations

import inspect
from typing import Any

from moesuite.core.registry import Registry

__all__ = ["MODELS", "create_model", "list_models", "has_router"]

#: every model by name: ``MODELS.create(name, seed=..., **params)`` builds a river classifier
MODELS: Registry[Any] = Registry("model")


def create_model(name: str, seed: int = 0, **params: Any) -> Any:
    """A fresh river classifier by registry name (``None``-valued ``params`` are ignored).

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    return MODELS.create(name, seed=seed, **params)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``."""
    return MODELS.list(pattern)


def has_router(name: str) -> bool:
    """Whether the model ``name`` routes between experts (takes ``n_experts``)."""
    return "n_experts" in inspect.signature(MODELS.get(name).obj).parameters
