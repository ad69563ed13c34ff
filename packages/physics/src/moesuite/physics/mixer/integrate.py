"""A fixed-step, differentiable fourth-order Runge-Kutta integrator (plain autograd, no adjoint).

Gradients flow through every stage by ordinary backpropagation ("discretise, then
optimise"), which is exact for the discrete solution and cheap for the short horizons used
here. Each trajectory may have its own step: ``dt`` broadcasts against ``y0[..., D]`` as
``dt[...]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["rk4", "rk4_step"]

VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def rk4_step(f: VectorField, t: torch.Tensor, y: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """One classical RK4 step of ``dy/dt = f(t, y)`` of size ``h`` (``h`` broadcasts like ``y``)."""
    half = 0.5 * h
    k1 = f(t, y)
    k2 = f(t + half, y + half * k1)
    k3 = f(t + half, y + half * k2)
    k4 = f(t + h, y + h * k3)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def rk4(
    f: VectorField,
    y0: torch.Tensor,
    dt: torch.Tensor | float,
    n_times: int,
    substeps: int = 1,
) -> torch.Tensor:
    """Integrate ``dy/dt = f(t, y)`` from ``y0`` and return the states at ``t_k = k * dt``.

    Args:
        f: vector field ``f(t, y) -> dy/dt``, ``t`` shaped like ``dt[..., 1]`` and ``y`` like
            ``y0``.
        y0: ``[..., D]`` initial states.
        dt: observation interval, a float or a tensor broadcastable to ``y0.shape[:-1]``
            (one interval per trajectory or group).
        n_times: number of returned times, including ``t = 0`` (``n_times >= 1``).
        substeps: RK4 steps per observation interval (step ``h = dt / substeps``).

    Returns:
        ``[..., n_times, D]`` with ``out[..., 0, :] == y0``.

    Examples:
        >>> import torch
        >>> y = rk4(lambda t, y: -y, torch.ones(2, 1), dt=0.1, n_times=11, substeps=2)
        >>> exact = round(float(torch.exp(torch.tensor(-1.0))), 6)
        >>> tuple(y.shape), round(float(y[0, -1, 0]), 6), exact
        ((2, 11, 1), 0.367879, 0.367879)
    """
    if not isinstance(n_times, int) or n_times < 1:
        raise ValueError(f"n_times must be a positive int, got {n_times!r}.")
    if not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"substeps must be a positive int, got {substeps!r}.")
    dt_t = torch.as_tensor(dt, dtype=y0.dtype, device=y0.device)
    try:
        dt_t = dt_t.expand(y0.shape[:-1]).unsqueeze(-1)
    except RuntimeError:
        raise ValueError(
            f"dt of shape {tuple(dt_t.shape)} does not broadcast to the trajectories "
            f"{tuple(y0.shape[:-1])}."
        ) from None
    h = dt_t / substeps
    t = torch.zeros_like(dt_t)
    y = y0
    states = [y0]
    for _ in range(n_times - 1):
        for _ in range(substeps):
            y = rk4_step(f, t, y, h)
            t = t + h
        states.append(y)
    return torch.stack(states, dim=-2)
