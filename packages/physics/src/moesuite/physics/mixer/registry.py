"""The ODE models by name: MixER and its two baselines, built with matched parameter counts.

=================  ===========================================================================
name               model
=================  ===========================================================================
``mixer``          ``E`` experts, top-1 gate over contexts refitted by K-means + least squares
``mixer-gradgate`` the same experts with a top-1 softmax router trained by gradient descent
``mixer-shared``   one context-conditioned vector field whose hidden width is chosen so its
                   parameter count matches the ``E`` experts (+ gate) of MixER
=================  ===========================================================================

Every builder takes the data's ``state_dim`` and ``num_envs``, MixER's ``num_experts`` and any
other :class:`~.model.MixERConfig` field (``None`` keeps the default) and returns a
:class:`~.model.MixERModel`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from moesuite.core.registry import Registry
from moesuite.physics.mixer.model import MixERConfig, MixERModel
from moesuite.physics.mixer.vector_fields import expert_param_count

__all__ = ["MODELS", "model_config", "shared_hidden_width"]

#: the ODE models (``moesuite physics list`` prints them)
MODELS: Registry[MixERModel] = Registry("model")


def shared_hidden_width(config: MixERConfig) -> int:
    """Hidden width of one expert whose parameters best match ``E`` experts plus the gate.

    Examples:
        >>> c = MixERConfig(state_dim=2, num_envs=8, num_experts=1, gate="none", hidden=32)
        >>> shared_hidden_width(c)
        32
    """
    c = config
    target = c.num_experts * expert_param_count(c.state_dim, c.context_dim, c.hidden, c.depth)
    if c.num_experts > 1:
        target += c.num_experts * (c.context_dim + 1)
    widths = range(1, 64 * c.hidden + 1)

    def mismatch(h: int) -> int:
        return abs(expert_param_count(c.state_dim, c.context_dim, h, c.depth) - target)

    return min(widths, key=mismatch)


def _configure(shared: bool = False, **fields: Any) -> MixERConfig:
    base = MixERConfig(**{k: v for k, v in fields.items() if v is not None})
    if not shared:
        return base
    return replace(base, num_experts=1, gate="none", hidden=shared_hidden_width(base))


def _build(shared: bool = False, **fields: Any) -> MixERModel:
    return MixERModel(_configure(shared, **fields))


MODELS.register(
    "mixer",
    _build,
    help="MixER: top-1 gate over contexts, refitted by K-means + least squares",
    gate="least_squares",
)
MODELS.register(
    "mixer-gradgate",
    _build,
    help="baseline: the same experts, a top-1 router trained by gradient descent",
    gate="gradient",
)
MODELS.register(
    "mixer-shared",
    _build,
    help="baseline: one shared vector field of equal parameter count",
    gate="least_squares",
    shared=True,
)


def model_config(name: str, **fields: Any) -> MixERConfig:
    """The :class:`~.model.MixERConfig` the model ``name`` is built with (nothing is built).

    Examples:
        >>> c = model_config("mixer-shared", state_dim=3, num_envs=30, num_experts=10, hidden=64)
        >>> c.num_experts, c.gate, c.hidden
        (1, 'none', 226)
    """
    entry = MODELS.get(name)
    return _configure(**{**entry.preset, **{k: v for k, v in fields.items() if v is not None}})
