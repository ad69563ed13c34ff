"""What an expert-compute backend is: one function from (tokens, plan, weights) to outputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from moesuite.core.activations import get_activation
from moesuite.core.routing import RoutingPlan

__all__ = ["Backend", "BackendStatus", "ExpertWeights"]


@dataclass(frozen=True)
class ExpertWeights:
    """The parameters of ``E`` same-shaped MLP experts.

    Attributes:
        w_in: ``[E, d_model, d_hidden]`` (``2 * d_hidden`` with GLU: gate then up).
        w_out: ``[E, d_hidden, d_model]``.
        b_in: ``[E, w_in.shape[-1]]`` or ``None``.
        b_out: ``[E, d_model]`` or ``None``.
        activation: activation name (see :mod:`moesuite.core.activations`).
        glu: gated linear unit: ``act(x W_gate) * (x W_up)``.
    """

    w_in: torch.Tensor
    w_out: torch.Tensor
    b_in: torch.Tensor | None
    b_out: torch.Tensor | None
    activation: str
    glu: bool

    def hidden(self, h: torch.Tensor) -> torch.Tensor:
        """Apply the activation (and the GLU gate) to the first projection's output."""
        act = get_activation(self.activation)
        if self.glu:
            gate, up = h.chunk(2, dim=-1)
            return act(gate) * up
        return act(h)


@dataclass(frozen=True)
class BackendStatus:
    """Whether a backend can run on a device and dtype, and why not."""

    name: str
    available: bool
    reason: str = ""


class Backend:
    """Computes ``y[T, d] = sum_a weight_a * expert_(e_a)(x[t_a])`` for a routing plan."""

    name: str = ""

    def unavailable_reason(self, device: torch.device, dtype: torch.dtype) -> str | None:
        """``None`` when the backend runs on ``device``/``dtype``, else a one-line reason."""
        return None

    def expert_mlp(
        self, x: torch.Tensor, plan: RoutingPlan, weights: ExpertWeights
    ) -> torch.Tensor:
        """Run the plan's assignments through the experts and combine them per token."""
        raise NotImplementedError
