"""The restorer's transformer block and its three feed-forward kinds, at equal width and depth.

``RestorerBlock``: ``x = x + attn(norm(x))``, ``x = x + ffn(norm(x))`` where ``ffn`` is

- :class:`DenseFFN`: ``d -> r d -> d`` with GELU;
- :class:`MoEFFN`: the conventional MoE, ``n`` FFN experts ``d -> 4d -> d`` (core
  :class:`~moesuite.core.experts.GroupedExperts`) behind the core ``topk`` router;
- :class:`MoFMEFFN`: one shared block and ``n`` FiLM experts behind the router (core
  :class:`~moesuite.core.MoELayer` with :class:`~moesuite.vision.mofme.experts.SharedFiLMExperts`),
  then an adaptor MLP ``d -> r d -> d``.

Both MoE kinds take their router from :func:`make_router`: the core ``topk`` router, optionally
wrapped in the core's uncertainty-aware router (``uar=True``). Every ``ffn`` returns
``(y, RouterOutput | None)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core import GroupedExperts, MoELayer, routers
from moesuite.core.routers import Router, RouterOutput
from moesuite.vision.mofme.experts import SharedFiLMExperts

__all__ = ["make_router", "Attention", "DenseFFN", "MoEFFN", "MoFMEFFN", "RestorerBlock"]


def make_router(
    d_model: int,
    num_experts: int,
    k: int,
    uar: bool,
    uar_samples: int = 4,
    uar_dropout: float = 0.1,
    lb_weight: float = 1e-2,
    z_weight: float = 1e-3,
) -> Router:
    """The core ``topk`` softmax router, wrapped in the ``uncertainty`` router when ``uar``."""
    cfg = {"k": k, "lb_weight": lb_weight, "z_weight": z_weight}
    if uar:
        return routers.create(
            "uncertainty",
            d_model=d_model,
            num_experts=num_experts,
            base="topk",
            samples=uar_samples,
            dropout=uar_dropout,
            **cfg,
        )
    return routers.create("topk", d_model=d_model, num_experts=num_experts, **cfg)


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of one image (``[B, N, d] -> [B, N, d]``)."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"dim={d_model} must be divisible by heads={heads}.")
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, d = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, d))


class DenseFFN(nn.Module):
    """``d -> ratio * d -> d`` with GELU."""

    def __init__(self, d_model: int, ratio: float):
        super().__init__()
        hidden = int(round(d_model * ratio))
        self.net = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.net(x), None


class MoEFFN(nn.Module):
    """The conventional MoE feed-forward: ``n`` experts ``d -> ratio d -> d``, top-k routed."""

    def __init__(self, d_model: int, num_experts: int, ratio: float, router: Router):
        super().__init__()
        experts = GroupedExperts(num_experts, d_model, int(round(d_model * ratio)), bias=True)
        self.moe = MoELayer(router, experts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput]:
        return self.moe(x)


class MoFMEFFN(nn.Module):
    """MoFME's feed-forward: shared block + routed FiLM experts, then the adaptor MLP."""

    def __init__(
        self, d_model: int, num_experts: int, modulation: str, adaptor_ratio: float, router: Router
    ):
        super().__init__()
        self.moe = MoELayer(router, SharedFiLMExperts(num_experts, d_model, modulation))
        hidden = int(round(d_model * adaptor_ratio))
        self.adaptor = nn.Sequential(
            nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput]:
        y, routing = self.moe(x)
        return self.adaptor(y), routing


class RestorerBlock(nn.Module):
    """Pre-norm transformer block whose feed-forward is any of the kinds above."""

    def __init__(self, d_model: int, heads: int, ffn: nn.Module):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = ffn

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput | None]:
        x = x + self.attn(self.norm1(x))
        y, routing = self.ffn(self.norm2(x))
        return x + y, routing
