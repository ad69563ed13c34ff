"""The MoHE layer: a shared depthwise-conv expert plus routed heterogeneous (Fourier) experts.

Everything about routing and dispatch is the core's: the layer is a
:class:`moesuite.core.layer.MoELayer` with a core router (token-choice top-k by default, so a
token's route depends on that token only) and a :class:`moesuite.core.experts.ExpertList` of
the experts below. This module defines the expert networks and the router factory.

Reading of the abstract (the paper's text is not available): "Fourier-based experts" are
Fourier-feature MLPs ``W_out [sin(W x + b), cos(W x + b)]`` with learnable frequencies and
phases, each expert's frequencies initialised in its own band (low to high) so the experts
differ from the start.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from moesuite.core import routers
from moesuite.core.experts import ExpertList
from moesuite.core.layer import MoELayer

__all__ = ["FourierExpert", "DepthwiseConvExpert", "build_mohe_layer", "create_forecast_router"]


class FourierExpert(nn.Module):
    """Fourier-feature MLP: ``[n, d] -> [n, d]``, ``y = W_out [sin(W x + b), cos(W x + b)]``.

    Args:
        d_model: token width ``d``.
        n_frequencies: rows of ``W`` (the hidden width is ``2 * n_frequencies``).
        scale: standard deviation of the initial frequencies (times ``1/sqrt(d)``): small
            scales give smooth, low-frequency responses, large scales oscillating ones.

    Examples:
        >>> import torch
        >>> tuple(FourierExpert(8, 16, scale=2.0)(torch.randn(5, 8)).shape)
        (5, 8)
    """

    def __init__(self, d_model: int, n_frequencies: int, scale: float = 1.0):
        super().__init__()
        self.d_model, self.n_frequencies, self.scale = d_model, n_frequencies, scale
        self.freq = nn.Linear(d_model, n_frequencies)
        nn.init.normal_(self.freq.weight, std=scale / math.sqrt(d_model))
        nn.init.uniform_(self.freq.bias, -math.pi, math.pi)
        self.out = nn.Linear(2 * n_frequencies, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.freq(x)
        return self.out(torch.cat([torch.sin(h), torch.cos(h)], -1))


class DepthwiseConvExpert(nn.Module):
    """The shared expert: depthwise 1-D convolution along the patch axis, then a pointwise map.

    Applied to every token with the sequence shape intact, so it carries continuity across
    neighbouring patches.

    Args:
        d_model: token width ``d`` (one filter per feature).
        kernel_size: odd kernel length along the patch axis.

    Shapes:
        ``x [B, N, d] -> [B, N, d]`` (a 2-D ``[T, d]`` input is treated as ``T`` sequences of one).

    Examples:
        >>> import torch
        >>> tuple(DepthwiseConvExpert(8, 3)(torch.randn(2, 6, 8)).shape)
        (2, 6, 8)
    """

    def __init__(self, d_model: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}.")
        self.conv = nn.Conv1d(
            d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model
        )
        self.act = nn.GELU()
        self.pointwise = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeeze = x.dim() == 2
        if squeeze:
            x = x.unsqueeze(1)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        y = self.pointwise(self.act(h))
        return y.squeeze(1) if squeeze else y


def create_forecast_router(
    name: str, d_model: int, num_experts: int, k: int, **cfg: Any
) -> routers.Router:
    """A core router for a forecaster: causal routers only, ``k`` where the router takes one.

    A forecast must depend on its own window only, so non-causal routers (``expert_choice``,
    whose experts pick among all tokens of a batch) are refused; routers without a fixed ``k``
    (``topp``) get none.

    Examples:
        >>> create_forecast_router("topp", d_model=8, num_experts=4, k=2).num_experts
        4
    """
    cls = routers.get_router_class(name)
    if not cls.causal:
        raise ValueError(
            f"router {name!r} is not causal (a window's forecast would depend on the other "
            f"windows of its batch); use a token-choice router such as 'topk'."
        )
    accepted = inspect.signature(cls.__init__).parameters
    cfg = {key: v for key, v in {"k": k, **cfg}.items() if key in accepted}
    return routers.create(name, d_model=d_model, num_experts=num_experts, **cfg)


def build_mohe_layer(
    d_model: int,
    d_ff: int,
    num_experts: int = 4,
    top_k: int = 2,
    router: str = "topk",
    conv_kernel: int = 3,
    shared_expert: bool = True,
    band_range: tuple[float, float] = (0.25, 4.0),
    lb_weight: float = 1e-2,
    z_weight: float = 1e-3,
) -> MoELayer:
    """A MoHE layer as a core :class:`MoELayer`.

    Args:
        d_model: token width.
        d_ff: hidden width of each routed expert (Fourier: ``d_ff / 2`` frequencies).
        num_experts: routed experts ``E``.
        top_k: experts per token.
        router: a core router name (token-choice ones keep each token's route independent of
            other samples; ``expert_choice`` would not).
        conv_kernel: kernel of the shared depthwise-conv expert.
        shared_expert: include the shared expert.
        band_range: initial frequency scales of the first and last Fourier expert
            (geometric spacing in between).
        lb_weight: Switch load-balancing loss weight.
        z_weight: router z-loss weight.

    Examples:
        >>> import torch
        >>> layer = build_mohe_layer(d_model=8, d_ff=16, num_experts=4, top_k=2)
        >>> y, out = layer(torch.randn(3, 5, 8))
        >>> tuple(y.shape), out.plan.num_tokens
        ((3, 5, 8), 15)
    """
    lo, hi = band_range
    scales = [lo * (hi / lo) ** (e / max(num_experts - 1, 1)) for e in range(num_experts)]
    experts = ExpertList(
        [FourierExpert(d_model, max(d_ff // 2, 1), s) for s in scales], d_model=d_model
    )
    r = create_forecast_router(
        router, d_model, num_experts, top_k, lb_weight=lb_weight, z_weight=z_weight
    )
    shared = DepthwiseConvExpert(d_model, conv_kernel) if shared_expert else None
    return MoELayer(r, experts, shared_experts=shared)
