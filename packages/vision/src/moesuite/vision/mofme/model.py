"""The all-weather restorer (MoFME and its baselines): conv head, ViT blocks, conv tail.

::

    image [B, 3, H, W] --conv head (conv + ResBlock)--> features [B, C, H, W]
      --patch embedding (p x p conv + LayerNorm)--> tokens [B, H/p * W/p, d]
      --depth x RestorerBlock (attention + dense | MoE | MoFME feed-forward)--> tokens
      --LayerNorm, linear d -> C p^2, unpatchify--> [B, C, H, W] (+ head features)
      --conv tail (ResBlock + conv)--> 3 channels --> output

``output="residual"`` (default) adds the tail to the input image (clamped to ``[0, 1]`` at
inference); ``output="sigmoid"`` is the authors' ``sigmoid(tail)`` with no image residual.
Images whose sides are not multiples of ``p`` are reflect-padded and cropped back. No position
embedding (as in the authors' code), so the restorer runs on tiles of any size.

Registered models (``MODELS``): ``mofme`` (FiLM experts, UaR router), ``moe-restorer`` (the
conventional MoE) and ``dense-restorer`` (dense feed-forward whose hidden width gives it the
active FLOPs of the default MoFME block). They return a :class:`moesuite.core.MoEOutput`
whose ``routing`` holds one router output per MoE block (empty for the dense restorer).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core import MoEOutput
from moesuite.core.registry import Registry
from moesuite.vision.mofme.blocks import DenseFFN, MoEFFN, MoFMEFFN, RestorerBlock, make_router
from moesuite.vision.mofme.experts import MODULATIONS

__all__ = ["BLOCKS", "OUTPUTS", "Restorer", "MODELS", "create_model"]

BLOCKS = ("dense", "moe", "mofme")
OUTPUTS = ("residual", "sigmoid")


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` (3x3 convolutions)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Restorer(nn.Module):
    """All-weather restorer: conv head, transformer blocks over feature patches, conv tail.

    The constructor's arguments are its configuration (saved in a run's ``config.json``).

    Args:
        block: feed-forward kind, ``"dense"``, ``"moe"`` or ``"mofme"``.
        dim: token width ``d``.
        depth: transformer blocks.
        heads: attention heads.
        patch: patch side ``p`` (tokens are ``p x p`` feature patches).
        channels: conv feature channels ``C``.
        mlp_ratio: hidden width of the dense FFN and of each conventional MoE expert, over ``d``.
        experts: ``n`` routed experts (MoE kinds).
        top_k: experts per token.
        modulation: MoFME's FiLM experts, ``"vector"`` or ``"linear"``.
        adaptor_ratio: hidden width of MoFME's adaptor MLP, over ``d``.
        uar: wrap the router in the core's uncertainty-aware router.
        uar_samples: UaR's Monte-Carlo passes in training.
        uar_dropout: UaR's dropout on the router input.
        lb_weight: load-balancing loss weight of the router.
        z_weight: router z-loss weight.
        output: ``"residual"`` or ``"sigmoid"`` (see the module docstring).

    Examples:
        >>> import torch
        >>> model = Restorer(block="mofme", dim=32, depth=1, heads=2, channels=8, experts=4)
        >>> out = model(torch.rand(2, 3, 18, 21))
        >>> tuple(out.output.shape), len(out.routing)
        ((2, 3, 18, 21), 1)
    """

    def __init__(
        self,
        block: str = "mofme",
        dim: int = 48,
        depth: int = 4,
        heads: int = 4,
        patch: int = 4,
        channels: int = 12,
        mlp_ratio: float = 4.0,
        experts: int = 8,
        top_k: int = 2,
        modulation: str = "vector",
        adaptor_ratio: float = 4.0,
        uar: bool = False,
        uar_samples: int = 4,
        uar_dropout: float = 0.1,
        lb_weight: float = 1e-2,
        z_weight: float = 1e-3,
        output: str = "residual",
    ):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}.")
        if modulation not in MODULATIONS:
            raise ValueError(f"modulation must be one of {MODULATIONS}, got {modulation!r}.")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        for name, value in (("dim", dim), ("depth", depth), ("patch", patch), ("experts", experts)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if block != "dense" and not 1 <= top_k <= experts:
            raise ValueError(f"top_k must be in [1, experts={experts}], got {top_k}.")
        self.block = block
        self.dim = dim
        self.depth = depth
        self.heads = heads
        self.patch = patch
        self.channels = channels
        self.mlp_ratio = mlp_ratio
        self.experts = experts
        self.top_k = top_k
        self.modulation = modulation
        self.adaptor_ratio = adaptor_ratio
        self.uar = uar
        self.uar_samples = uar_samples
        self.uar_dropout = uar_dropout
        self.lb_weight = lb_weight
        self.z_weight = z_weight
        self.output = output

        self.head = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), ResBlock(channels))
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.embed_norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(RestorerBlock(dim, heads, self._ffn()) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.unembed = nn.Linear(dim, channels * patch * patch)
        self.tail = nn.Sequential(ResBlock(channels), nn.Conv2d(channels, 3, 3, padding=1))
        if output == "residual":  # start as the identity: the output is the input image
            nn.init.zeros_(self.tail[-1].weight)
            nn.init.zeros_(self.tail[-1].bias)

    def _ffn(self) -> nn.Module:
        if self.block == "dense":
            return DenseFFN(self.dim, self.mlp_ratio)
        router = make_router(
            self.dim,
            self.experts,
            self.top_k,
            self.uar,
            self.uar_samples,
            self.uar_dropout,
            self.lb_weight,
            self.z_weight,
        )
        if self.block == "moe":
            return MoEFFN(self.dim, self.experts, self.mlp_ratio, router)
        return MoFMEFFN(self.dim, self.experts, self.modulation, self.adaptor_ratio, router)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (rebuild with ``Restorer(**model.config())``)."""
        names = Restorer.__init__.__code__.co_varnames[1 : Restorer.__init__.__code__.co_argcount]
        return {n: getattr(self, n) for n in names}

    def ffn_modules(self) -> list[nn.Module]:
        """The feed-forward module of every block (what "MoE-block parameters" counts)."""
        return [b.ffn for b in self.blocks]

    def forward(self, img: torch.Tensor) -> MoEOutput[torch.Tensor]:
        """Restore ``img[B, 3, H, W]`` (values in ``[0, 1]``); any ``H, W``."""
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError(f"img must be [B, 3, H, W], got {tuple(img.shape)}.")
        B, _, H, W = img.shape
        p = self.patch
        ph, pw = (-H) % p, (-W) % p
        x = F.pad(img, (0, pw, 0, ph), mode="reflect") if ph or pw else img
        feat = self.head(x)
        tokens = self.embed(feat)  # [B, d, h, w]
        h, w = tokens.shape[-2:]
        tokens = self.embed_norm(tokens.flatten(2).transpose(1, 2))  # [B, h*w, d]
        routing = []
        for blk in self.blocks:
            tokens, r = blk(tokens)
            if r is not None:
                routing.append(r)
        pix = self.unembed(self.norm(tokens))  # [B, h*w, C p p]
        pix = pix.view(B, h, w, self.channels, p, p).permute(0, 3, 1, 4, 2, 5)
        pix = pix.reshape(B, self.channels, h * p, w * p)
        out = self.tail(pix + feat)
        if self.output == "sigmoid":
            out = torch.sigmoid(out)
        else:
            out = x + out
            if not self.training:
                out = out.clamp(0.0, 1.0)
        return MoEOutput(out[:, :, :H, :W], routing)


#: the restorers, by name: MoFME and its two baselines
MODELS: Registry[Restorer] = Registry("mofme model")
MODELS.register(
    "mofme",
    Restorer,
    help="MoFME: shared FFN + FiLM experts (--modulation), uncertainty-aware router (--uar)",
    block="mofme",
    uar=True,
)
MODELS.register(
    "moe-restorer",
    Restorer,
    help="conventional MoE restorer: n FFN experts behind a top-k router (MoFME's baseline)",
    block="moe",
)
MODELS.register(
    "dense-restorer",
    Restorer,
    help="dense restorer with the active FLOPs of MoFME's default block (MoFME's baseline)",
    block="dense",
    mlp_ratio=5.0,
)


def create_model(name: str, **cfg: Any) -> Restorer:
    """``MODELS.create(name, **cfg)`` (``None`` values keep the model's defaults)."""
    return MODELS.create(name, **cfg)
