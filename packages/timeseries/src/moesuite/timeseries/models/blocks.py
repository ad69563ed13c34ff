"""Building blocks of MoHETS: patching and its inverse, rotary positions, grouped-query attention.

Each block follows the authors' code (evortigosa/mohe_forecast, Apache-2.0), written anew:

- :class:`PatchEmbedding`: non-overlapping patches as a ``Conv1d(1, d, P, stride=P)`` on each
  channel separately, a single-group ``GroupNorm`` over the patch map, dropout.
- :class:`UnPatchDecoder`: the convolutional un-patch head, a transposed convolution with
  kernel = stride = ``P`` back to the time axis, a depthwise convolution, ``GroupNorm`` and two
  pointwise convolutions to one value per time step.
- :func:`apply_rotary`: rotary position embedding (RoPE) of query and key heads, rotating
  consecutive pairs of a head's dimensions by ``position * theta ** (-2i / d_head)``.
- :class:`GroupedQueryAttention`: ``n_heads`` query heads sharing ``n_kv_heads`` key/value
  heads, RoPE on queries and keys, used for self-attention and for the cross-attention from
  series patches to covariate patches.
- :class:`DropPath`: stochastic depth on a residual branch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "DropPath",
    "GroupedQueryAttention",
    "PatchEmbedding",
    "UnPatchDecoder",
    "apply_rotary",
    "round_channels",
]


def round_channels(channels: float, divisor: int = 8) -> int:
    """The nearest multiple of ``divisor`` (at least ``divisor``, never 10 % below ``channels``).

    Examples:
        >>> round_channels(16), round_channels(32), round_channels(4)
        (16, 32, 8)
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * channels else rounded)


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.ConvTranspose1d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class PatchEmbedding(nn.Module):
    """Non-overlapping patch embedding of every channel: ``[B, C, T] -> [B * C, T / P, d]``.

    A ``Conv1d(1, d, kernel_size=P, stride=P)`` without bias on each channel's series (channels
    share it), ``GroupNorm(1, d)`` over the ``[d, N]`` map of each series, then dropout.

    Examples:
        >>> import torch
        >>> emb = PatchEmbedding(patch_len=4, d_model=8)
        >>> tuple(emb(torch.randn(2, 3, 16)).shape)
        (6, 4, 8)
    """

    def __init__(self, patch_len: int, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.patch_len = patch_len
        self.conv = nn.Conv1d(1, d_model, patch_len, stride=patch_len, bias=False)
        self.norm = nn.GroupNorm(1, d_model)
        self.drop = nn.Dropout(dropout)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T = x.shape
        if T % self.patch_len:
            raise ValueError(f"series length {T} is not a multiple of patch_len {self.patch_len}.")
        h = self.drop(self.norm(self.conv(x.reshape(B * C, 1, T))))
        return h.transpose(1, 2).contiguous()


class UnPatchDecoder(nn.Module):
    """The convolutional un-patch head: ``[B * C, N, d] -> [B, C, N * P]``.

    ``ConvTranspose1d(d, d, P, stride=P)`` turns each token back into ``P`` time steps, then
    GELU, a depthwise convolution along time (kernel 3 for ``P = 8``, 7 for ``P = 16``),
    ``GroupNorm(1, d)``, a pointwise convolution to ``round_channels(d / 4)`` channels, GELU
    and a pointwise convolution to one value per step. No weight depends on the number of
    tokens, so the same decoder serves any window length.

    Examples:
        >>> import torch
        >>> dec = UnPatchDecoder(patch_len=4, d_model=8, n_channels=3)
        >>> tuple(dec(torch.randn(6, 5, 8)).shape)
        (2, 3, 20)
    """

    def __init__(self, patch_len: int, d_model: int, n_channels: int, dropout: float = 0.0):
        super().__init__()
        self.n_channels = n_channels
        kernel = min(max(patch_len // 2 - 1, 1), 7)
        kernel = kernel - 1 if kernel % 2 == 0 else kernel
        hidden = round_channels(d_model / 4)
        self.drop = nn.Dropout(dropout)
        self.net = nn.Sequential(
            nn.ConvTranspose1d(d_model, d_model, patch_len, stride=patch_len, bias=False),
            nn.GELU(),
            nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model, bias=False),
            nn.GroupNorm(1, d_model),
            nn.Conv1d(d_model, hidden, 1, bias=False),
            nn.GELU(),
            nn.Conv1d(hidden, 1, 1, bias=False),
        )
        _xavier(self)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.net(self.drop(h).transpose(1, 2))  # [B * C, 1, N * P]
        return y.reshape(-1, self.n_channels, y.shape[-1])


def apply_rotary(x: torch.Tensor, positions: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotate consecutive pairs of each head's dimensions by their position (RoPE).

    Args:
        x: ``[B, T, heads, d_head]`` queries or keys (``d_head`` even).
        positions: ``[T]`` positions (any real numbers).
        theta: base of the frequencies ``theta ** (-2i / d_head)``.

    A dot product of a rotated query at position ``m`` and a rotated key at position ``n``
    depends on ``m - n`` only, so attention scores are invariant to a shift of all positions.

    Examples:
        >>> import torch
        >>> q = torch.randn(1, 3, 2, 4)
        >>> torch.allclose(apply_rotary(q, torch.zeros(3)), q)
        True
    """
    d_head = x.shape[-1]
    if d_head % 2:
        raise ValueError(f"rotary positions need an even head width, got {d_head}.")
    inv_freq = theta ** (-torch.arange(0, d_head, 2, device=x.device, dtype=torch.float32) / d_head)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None]  # [T, d_head / 2]
    cos, sin = angles.cos()[None, :, None], angles.sin()[None, :, None]
    pairs = x.float().reshape(*x.shape[:-1], d_head // 2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], -1)
    return out.reshape(x.shape).type_as(x)


class GroupedQueryAttention(nn.Module):
    """Multi-head attention with ``n_kv_heads`` key/value heads shared by groups of query heads.

    Queries, keys and values are projected with biases, rotated by :func:`apply_rotary` (queries
    at ``q_positions``, keys at ``k_positions``), keys and values are repeated to the number of
    query heads, and the heads are combined by an output projection without bias. Attention
    weights get dropout in training.

    Args:
        d_model: token width.
        n_heads: query heads.
        n_kv_heads: key/value heads (divides ``n_heads``).
        dropout: dropout on the attention weights.
        rope_theta: RoPE base (0 disables the rotation).

    Shapes:
        ``xq [B, Tq, d]``, ``xkv [B, Tk, d] -> [B, Tq, d]``.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int,
        dropout: float = 0.0,
        rope_theta: float = 10000.0,
    ):
        super().__init__()
        if d_model % n_heads or n_heads % n_kv_heads:
            raise ValueError(
                f"d_model={d_model} must be divisible by n_heads={n_heads}, and n_heads by "
                f"n_kv_heads={n_kv_heads}."
            )
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.d_head = d_model // n_heads
        self.dropout, self.rope_theta = dropout, rope_theta
        kv = self.d_head * n_kv_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, kv)
        self.v_proj = nn.Linear(d_model, kv)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)
        _xavier(self)

    def forward(
        self,
        xq: torch.Tensor,
        xkv: torch.Tensor,
        q_positions: torch.Tensor,
        k_positions: torch.Tensor,
    ) -> torch.Tensor:
        B, Tq, d = xq.shape
        Tk = xkv.shape[1]
        q = self.q_proj(xq).view(B, Tq, self.n_heads, self.d_head)
        k = self.k_proj(xkv).view(B, Tk, self.n_kv_heads, self.d_head)
        v = self.v_proj(xkv).view(B, Tk, self.n_kv_heads, self.d_head)
        if self.rope_theta > 0:
            q = apply_rotary(q, q_positions, self.rope_theta)
            k = apply_rotary(k, k_positions, self.rope_theta)
        rep = self.n_heads // self.n_kv_heads
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.o_proj(y.transpose(1, 2).reshape(B, Tq, d))


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for a whole sample with probability ``p``.

    Examples:
        >>> import torch
        >>> dp = DropPath(0.5).eval()
        >>> x = torch.ones(2, 3)
        >>> torch.equal(dp(x), x)
        True
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"
