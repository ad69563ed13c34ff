"""The MoHE layer: an always-on shared depthwise-conv expert plus routed Fourier (FAN) experts.

As the authors' code builds it (``MoEFeedForward`` in evortigosa/mohe_forecast), written on the
core's MoE machinery:

- routed experts: :class:`FANFeedForward` (two FAN layers, Dong et al. 2024), each token sent to
  its top-``k`` experts by a core ``topk`` router (softmax scores, the selected ones
  renormalised to sum to 1) through :class:`~moesuite.core.experts.ExpertList`;
- shared expert: :class:`DepthwiseConvFeedForward` (a depthwise convolution along the patch
  axis, pointwise expansion, GELU, pointwise projection) applied to every token and scaled by a
  per-token sigmoid gate (:class:`GatedSharedExpert`);
- the router's Switch load-balancing loss is part of its
  :class:`~moesuite.core.routers.RouterOutput` (``aux_loss``), which the model returns and the
  training step adds to its loss.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from moesuite.core import routers
from moesuite.core.experts import ExpertList
from moesuite.core.layer import MoELayer

__all__ = [
    "DepthwiseConvFeedForward",
    "FANFeedForward",
    "FANLayer",
    "GatedSharedExpert",
    "build_mohe_layer",
    "create_forecast_router",
]


class FANLayer(nn.Module):
    """Fourier Analysis Network layer: ``[cos(W_p x), sin(W_p x), GELU(W_b x)]``.

    A quarter of the outputs are cosines and a quarter sines of the same ``out / 4`` learned
    projections (the periodic part), the other half a GELU of a linear map. Weights are
    initialised from ``N(0, 1)`` as in the authors' code (wide, high-frequency features).

    Examples:
        >>> import torch
        >>> tuple(FANLayer(8, 16)(torch.randn(5, 8)).shape)
        (5, 16)
    """

    def __init__(self, d_in: int, d_out: int, freq_scale: float = 1.0):
        super().__init__()
        if d_out % 4:
            raise ValueError(f"a FAN layer's output width must be divisible by 4, got {d_out}.")
        self.periodic = nn.Linear(d_in, d_out // 4, bias=False)
        self.linear = nn.Linear(d_in, d_out - 2 * (d_out // 4), bias=False)
        for lin in (self.periodic, self.linear):
            nn.init.normal_(lin.weight, std=freq_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.periodic(x)
        return torch.cat([torch.cos(p), torch.sin(p), nn.functional.gelu(self.linear(x))], -1)


class FANFeedForward(nn.Module):
    """A routed Fourier expert: ``FAN(d -> d_ff)``, dropout, ``FAN(d_ff -> d)``.

    Examples:
        >>> import torch
        >>> tuple(FANFeedForward(8, 16)(torch.randn(5, 8)).shape)
        (5, 8)
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, freq_scale: float = 1.0):
        super().__init__()
        self.up = FANLayer(d_model, d_ff, freq_scale)
        self.drop = nn.Dropout(dropout)
        self.down = FANLayer(d_ff, d_model, freq_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.drop(self.up(x)))


class DepthwiseConvFeedForward(nn.Module):
    """The shared expert: depthwise conv along the tokens, pointwise ``d -> d_ff``, GELU, back.

    Shapes:
        ``[S, N, d] -> [S, N, d]`` (``S`` sequences of ``N`` patch tokens).

    Examples:
        >>> import torch
        >>> tuple(DepthwiseConvFeedForward(8, 16)(torch.randn(2, 5, 8)).shape)
        (2, 5, 8)
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, kernel_size: int = 3):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size}.")
        self.depthwise = nn.Conv1d(
            d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model, bias=False
        )
        self.up = nn.Conv1d(d_model, d_ff, 1, bias=False)
        self.drop = nn.Dropout(dropout)
        self.down = nn.Conv1d(d_ff, d_model, 1, bias=False)
        for conv in (self.depthwise, self.up, self.down):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(x.transpose(1, 2))
        h = self.down(self.drop(nn.functional.gelu(self.up(h))))
        return h.transpose(1, 2)


class GatedSharedExpert(nn.Module):
    """``expert(x) * sigmoid(w . x)``: the shared expert scaled by a per-token gate in ``(0, 1)``.

    Examples:
        >>> import torch
        >>> shared = GatedSharedExpert(DepthwiseConvFeedForward(8, 16), 8)
        >>> tuple(shared(torch.randn(2, 5, 8)).shape)
        (2, 5, 8)
    """

    def __init__(self, expert: nn.Module, d_model: int):
        super().__init__()
        self.expert = expert
        self.gate = nn.Linear(d_model, 1, bias=False)
        nn.init.xavier_uniform_(self.gate.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expert(x) * torch.sigmoid(self.gate(x))


def create_forecast_router(
    name: str, d_model: int, num_experts: int, k: int, **cfg: Any
) -> routers.Router:
    """A core router for a forecaster: causal routers only, ``k`` where the router takes one.

    A forecast must depend on its own window only, so non-causal routers (``expert_choice``,
    whose experts pick among all tokens of a batch) are refused; options the router does not
    take are dropped.

    Examples:
        >>> create_forecast_router("topk", d_model=8, num_experts=4, k=2).k
        2
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
    num_experts: int = 8,
    top_k: int = 2,
    router: str = "topk",
    dropout: float = 0.0,
    lb_weight: float = 0.02,
    z_weight: float = 0.0,
    shared_kernel: int = 3,
) -> MoELayer:
    """A MoHE layer as a core :class:`MoELayer` (see the module docstring).

    The router's weights get the authors' Glorot initialisation.

    Examples:
        >>> import torch
        >>> layer = build_mohe_layer(d_model=8, d_ff=16, num_experts=4, top_k=2)
        >>> y, out = layer(torch.randn(3, 5, 8))
        >>> tuple(y.shape), out.plan.num_tokens, sorted(out.aux_weights.items())
        ((3, 5, 8), 15, [('load_balance', 0.02), ('z_loss', 0.0)])
    """
    experts = ExpertList(
        [FANFeedForward(d_model, d_ff, dropout) for _ in range(num_experts)], d_model=d_model
    )
    r = create_forecast_router(
        router, d_model, num_experts, top_k, lb_weight=lb_weight, z_weight=z_weight
    )
    if isinstance(getattr(r, "weight", None), nn.Parameter):
        nn.init.xavier_uniform_(r.weight)
    shared = GatedSharedExpert(
        DepthwiseConvFeedForward(d_model, d_ff, dropout, shared_kernel), d_model
    )
    return MoELayer(r, experts, shared_experts=shared)
