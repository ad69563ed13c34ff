"""The three models compared: MixER and its two baselines, built with matched parameter counts.

=================  ===========================================================================
name               model
=================  ===========================================================================
``mixer``          ``E`` experts, top-1 gate over contexts refitted by K-means + least squares
``mixer-gradgate`` the same experts with a top-1 softmax router trained by gradient descent
``mixer-shared``   one context-conditioned vector field whose hidden width is chosen so its
                   parameter count matches the ``E`` experts (+ gate) of MixER
=================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import replace

from moesuite.physics.mixer.model import MixERConfig
from moesuite.physics.mixer.vector_fields import expert_param_count

__all__ = ["MODELS", "model_config", "shared_hidden_width"]

MODELS: tuple[str, ...] = ("mixer", "mixer-shared", "mixer-gradgate")


def shared_hidden_width(config: MixERConfig) -> int:
    """Hidden width of one expert whose parameters best match ``E`` experts plus the gate.

    Examples:
        >>> shared_hidden_width(MixERConfig(state_dim=2, num_envs=8, num_experts=1, gate="none", hidden=32))
        32
    """
    c = config
    target = c.num_experts * expert_param_count(c.state_dim, c.context_dim, c.hidden, c.depth)
    if c.num_experts > 1:
        target += c.num_experts * (c.context_dim + 1)
    widths = range(1, 64 * c.hidden + 1)
    return min(widths, key=lambda h: abs(expert_param_count(c.state_dim, c.context_dim, h, c.depth) - target))


def model_config(name: str, *, state_dim: int, num_envs: int, num_experts: int, **overrides: object) -> MixERConfig:
    """The :class:`MixERConfig` of a registered model.

    Args:
        name: one of :data:`MODELS`.
        state_dim: padded state size of the data.
        num_envs: training environments.
        num_experts: experts of MixER (the shared model matches their parameter count).
        **overrides: other :class:`MixERConfig` fields (``None`` values keep the defaults).

    Examples:
        >>> c = model_config("mixer-shared", state_dim=3, num_envs=30, num_experts=10, hidden=64)
        >>> c.num_experts, c.gate, c.hidden
        (1, 'none', 226)
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODELS)}.")
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    base = MixERConfig(state_dim=state_dim, num_envs=num_envs, num_experts=num_experts,
                       gate="gradient" if name == "mixer-gradgate" else "least_squares", **kwargs)  # type: ignore[arg-type]
    if name != "mixer-shared":
        return base
    return replace(base, num_experts=1, gate="none", hidden=shared_hidden_width(base))
