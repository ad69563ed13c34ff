"""Router registry (a :class:`moesuite.core.registry.Registry`) filled by ``@register_router``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moesuite.core.registry import Registry
from moesuite.core.routers.base import Router

__all__ = ["ROUTERS", "register_router", "create", "list_routers", "get_router_class"]

ROUTERS: Registry[Router] = Registry("router")


def register_router(name: str) -> Callable[[type[Router]], type[Router]]:
    """Class decorator registering a router under ``name`` (warns on a duplicate)."""
    return ROUTERS.register(name)


def list_routers(pattern: str = "*") -> list[str]:
    """Registered router names matching a shell-style wildcard, sorted.

    Examples:
        >>> from moesuite.core import routers
        >>> routers.list_routers("*topk")
        ['noisy_topk', 'topk']
    """
    return ROUTERS.list(pattern)


def get_router_class(name: str) -> type[Router]:
    """The class registered under ``name``; ``ValueError`` listing the valid names otherwise."""
    return ROUTERS.get(name).obj  # type: ignore[return-value]


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
    return ROUTERS.create(name, d_model=d_model, num_experts=num_experts, **cfg)
