"""Router registry: written once at import by ``@register_router``, read-only afterwards."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable
from typing import Any

from moesuite.core.routers.base import Router

__all__ = ["register_router", "create", "list_routers", "get_router_class"]

_ROUTERS: dict[str, type[Router]] = {}


def register_router(name: str) -> Callable[[type[Router]], type[Router]]:
    """Class decorator registering a router under ``name`` (warns on a duplicate)."""

    def deco(cls: type[Router]) -> type[Router]:
        if name in _ROUTERS and _ROUTERS[name] is not cls:
            warnings.warn(f"router {name!r} registered twice; the later one wins", stacklevel=2)
        _ROUTERS[name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def list_routers(pattern: str = "*") -> list[str]:
    """Registered router names matching a shell-style wildcard, sorted.

    Examples:
        >>> from moesuite.core import routers
        >>> routers.list_routers("*topk")
        ['noisy_topk', 'topk']
    """
    return sorted(n for n in _ROUTERS if fnmatch.fnmatch(n, pattern))


def get_router_class(name: str) -> type[Router]:
    """The class registered under ``name``; raises with the valid names otherwise."""
    try:
        return _ROUTERS[name]
    except KeyError:
        raise ValueError(
            f"unknown router {name!r}; expected one of {list_routers()} "
            "(see moesuite.core.routers.list_routers())."
        ) from None


def create(name: str, *, d_model: int, num_experts: int, **cfg: Any) -> Router:
    """Build a registered router; ``None`` values in ``cfg`` keep the router's defaults.

    Examples:
        >>> import torch
        >>> from moesuite.core import routers
        >>> r = routers.create("topk", d_model=16, num_experts=4, k=2)
        >>> out = r(torch.randn(5, 16))
        >>> out.plan.num_assignments, tuple(out.probs.shape)
        (10, (5, 4))
    """
    cls = get_router_class(name)
    kwargs = {key: value for key, value in cfg.items() if value is not None}
    return cls(d_model=d_model, num_experts=num_experts, **kwargs)
