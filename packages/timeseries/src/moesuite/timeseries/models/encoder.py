"""Patch embedding and the encoder block shared by MoHETS and PatchTST.

Patching follows PatchTST: each channel's lookback ``[L]`` is padded at the end by repeating
its last value ``stride`` times and cut into ``N = (L - P) // S + 2`` patches of length ``P``
with stride ``S``; channels are independent sequences sharing all weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moesuite.core.layer import MoELayer
from moesuite.core.routers import RouterOutput

__all__ = ["num_patches", "patchify", "sinusoidal_positions", "PatchEmbedding", "EncoderBlock"]


def num_patches(length: int, patch_len: int, stride: int) -> int:
    """Patches of a series of ``length`` with end padding of ``stride`` (PatchTST)."""
    if length < patch_len:
        raise ValueError(
            f"lookback {length} is shorter than patch_len {patch_len}; use a longer --lookback."
        )
    return (length - patch_len) // stride + 2


def patchify(x: torch.Tensor, patch_len: int, stride: int) -> torch.Tensor:
    """``x [..., T] -> [..., N, P]`` with PatchTST's end padding (the last value ``stride`` times).

    Examples:
        >>> import torch
        >>> patchify(torch.arange(6.0), 4, 2).tolist()
        [[0.0, 1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0], [4.0, 5.0, 5.0, 5.0]]
    """
    pad = x[..., -1:].expand(*x.shape[:-1], stride)
    return torch.cat([x, pad], -1).unfold(-1, patch_len, stride)


def sinusoidal_positions(positions: torch.Tensor, d_model: int) -> torch.Tensor:
    """Fixed sine/cosine encodings ``[len(positions), d_model]`` (Vaswani et al.)."""
    half = d_model // 2
    freqs = torch.exp(
        -math.log(10000.0)
        * torch.arange(half, dtype=torch.float32, device=positions.device)
        / max(half, 1)
    )
    angles = positions.float()[:, None] * freqs[None]
    enc = torch.cat([torch.sin(angles), torch.cos(angles)], -1)
    return nn.functional.pad(enc, (0, d_model - enc.shape[-1]))


class PatchEmbedding(nn.Module):
    """Linear patch embedding plus a learnable positional embedding.

    Args:
        patch_len: ``P``.
        d_model: embedding width.
        n_positions: ``N`` learnable positions.

    Shapes:
        ``patches [B', N, P] -> [B', N, d]``.
    """

    def __init__(self, patch_len: int, d_model: int, n_positions: int):
        super().__init__()
        self.proj = nn.Linear(patch_len, d_model)
        self.pos = nn.Parameter(torch.randn(n_positions, d_model) * 0.02)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.proj(patches) + self.pos[: patches.shape[-2]]


class EncoderBlock(nn.Module):
    """Pre-norm block: self-attention -> cross-attention to covariate tokens -> FFN or MoHE layer.

    Args:
        d_model: token width.
        n_heads: attention heads.
        ffn: the feed-forward part: a :class:`MoELayer` (MoHE) or any ``[..., d] -> [..., d]``
            module.
        cross_attention: build the cross-attention sub-layer (skipped at run time when no
            covariate tokens are given).
        dropout: dropout on every residual branch.
        attn_dropout: dropout on attention weights (0 as in PatchTST; it is costly on CPU).

    Returns:
        The new tokens and the MoE layer's router output (``None`` with a dense FFN).

    Shapes:
        ``h [B * C, N, d]``, ``memory [B, K, d] | None -> [B * C, N, d]``: the ``C`` channel
        sequences of a sample share its covariate tokens; their ``C * N`` queries attend to them
        in one call (the same as per-channel cross-attention, without copying the memory).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        ffn: nn.Module,
        cross_attention: bool = False,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
    ):
        super().__init__()
        self.norm_sa = nn.LayerNorm(d_model)
        self.self_attn = nn.MultiheadAttention(
            d_model, n_heads, dropout=attn_dropout, batch_first=True
        )
        self.cross_attention = cross_attention
        if cross_attention:
            self.norm_ca = nn.LayerNorm(d_model)
            self.cross_attn = nn.MultiheadAttention(
                d_model, n_heads, dropout=attn_dropout, batch_first=True
            )
        self.norm_ff = nn.LayerNorm(d_model)
        self.ffn = ffn
        self.drop = nn.Dropout(dropout)

    def forward(
        self, h: torch.Tensor, memory: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, RouterOutput | None]:
        a = self.norm_sa(h)
        h = h + self.drop(self.self_attn(a, a, a, need_weights=False)[0])
        if self.cross_attention and memory is not None and memory.shape[1] > 0:
            B, N, d = memory.shape[0], h.shape[1], h.shape[2]
            q = self.norm_ca(h).reshape(B, -1, d)
            ca = self.cross_attn(q, memory, memory, need_weights=False)[0]
            h = h + self.drop(ca.reshape(-1, N, d))
        f = self.ffn(self.norm_ff(h))
        routing = None
        if isinstance(self.ffn, MoELayer):
            f, routing = f
        return h + self.drop(f), routing
