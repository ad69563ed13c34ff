"""Activations by name (a :class:`~moesuite.core.registry.Registry`) for experts and reference."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from moesuite.core.registry import Registry

__all__ = ["get_activation", "ACTIVATIONS"]

ACTIVATIONS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("activation")
ACTIVATIONS.register("gelu", F.gelu, help="GELU (erf)")
ACTIVATIONS.register(
    "gelu_tanh", lambda t: F.gelu(t, approximate="tanh"), help="GELU (tanh approximation)"
)
ACTIVATIONS.register("relu", F.relu, help="ReLU")
ACTIVATIONS.register("silu", F.silu, help="SiLU / swish")
ACTIVATIONS.register("tanh", torch.tanh, help="tanh")
ACTIVATIONS.register("identity", lambda t: t, help="no activation")


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation registered under ``name``; ``ValueError`` listing the valid names otherwise.

    Examples:
        >>> import torch
        >>> get_activation("relu")(torch.tensor([-1.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    return ACTIVATIONS.get(name).obj
