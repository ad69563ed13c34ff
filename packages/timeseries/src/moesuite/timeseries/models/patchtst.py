"""PatchTST (Nie et al., ICLR 2023), supervised, as its authors' code builds it.

From yuqinie98/PatchTST ``PatchTST_supervised`` (read, written anew): RevIN per channel
(``affine`` off in the ETTh1 script), patches of ``patch_len`` with ``stride`` after padding the
end with the last value ``stride`` times, a linear patch embedding plus a learnable position
table (uniform in [-0.02, 0.02]), dropout, ``n_layers`` post-norm encoder layers with
BatchNorm, residual attention (each layer adds the previous layer's attention scores before
its softmax, RealFormer) and a GELU feed-forward, and the flatten head (``N * d_model -> H``,
shared by the channels). The defaults are PatchTST/42 for ETTh1 (``scripts/PatchTST/etth1.sh``):
3 layers, ``d_model`` 16, 4 heads, ``d_ff`` 128, dropout 0.3, head dropout 0, patch 16,
stride 8.
"""

from __future__ import annotations

import torch
from torch import nn

from moesuite.timeseries.models._base import MODELS, Forecaster
from moesuite.timeseries.models.revin import RevIN

__all__ = ["PatchTST", "num_patches", "patchify"]


def num_patches(length: int, patch_len: int, stride: int) -> int:
    """Patches of a series of ``length`` after the end padding of ``stride`` values."""
    if length < patch_len:
        raise ValueError(
            f"lookback {length} is shorter than patch_len {patch_len}; use a longer --lookback."
        )
    return (length - patch_len) // stride + 2


def patchify(x: torch.Tensor, patch_len: int, stride: int) -> torch.Tensor:
    """``x [..., T] -> [..., N, P]`` after repeating the last value ``stride`` times.

    Examples:
        >>> import torch
        >>> patchify(torch.arange(6.0), 4, 2).tolist()
        [[0.0, 1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0], [4.0, 5.0, 5.0, 5.0]]
    """
    pad = x[..., -1:].expand(*x.shape[:-1], stride)
    return torch.cat([x, pad], -1).unfold(-1, patch_len, stride)


class _BatchNormTokens(nn.BatchNorm1d):
    """BatchNorm over the feature axis of ``[S, N, d]`` tokens."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ResidualAttention(nn.Module):
    """Multi-head attention whose pre-softmax scores add the previous layer's scores."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(dropout))

    def forward(
        self, x: torch.Tensor, prev: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        S, N, d = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(S, N, self.n_heads, self.d_head).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = q @ k.transpose(-1, -2) * self.d_head**-0.5
        if prev is not None:
            scores = scores + prev
        y = scores.softmax(-1) @ v
        return self.out(y.transpose(1, 2).reshape(S, N, d)), scores


class PatchTSTLayer(nn.Module):
    """Post-norm encoder layer: residual attention + BatchNorm, GELU FFN + BatchNorm."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.attn = ResidualAttention(d_model, n_heads, dropout)
        self.drop_attn = nn.Dropout(dropout)
        self.norm_attn = _BatchNormTokens(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.drop_ff = nn.Dropout(dropout)
        self.norm_ff = _BatchNormTokens(d_model)

    def forward(
        self, x: torch.Tensor, prev: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a, scores = self.attn(x, prev)
        x = self.norm_attn(x + self.drop_attn(a))
        x = self.norm_ff(x + self.drop_ff(self.ff(x)))
        return x, scores


@MODELS.register("patchtst", help="PatchTST/42: patch Transformer, BatchNorm, flatten head")
class PatchTST(Forecaster):
    """PatchTST forecaster (see the module docstring). Covariates are not used.

    Shapes:
        ``x [B, L, C] -> [B, H, C]``.

    Examples:
        >>> import torch
        >>> m = PatchTST(n_channels=2, lookback=48, horizon=12)
        >>> tuple(m(torch.randn(3, 48, 2)).shape), m.n_patches
        ((3, 12, 2), 6)
    """

    def __init__(
        self,
        n_channels: int,
        lookback: int,
        horizon: int,
        patch_len: int = 16,
        stride: int = 8,
        n_layers: int = 3,
        d_model: int = 16,
        n_heads: int = 4,
        d_ff: int = 128,
        dropout: float = 0.3,
        head_dropout: float = 0.0,
        revin: bool = True,
        revin_affine: bool = False,
    ):
        super().__init__()
        self._store_config(locals())
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}.")
        self.n_channels, self.lookback, self.horizon = n_channels, lookback, horizon
        self.patch_len, self.stride = patch_len, stride
        self.n_patches = num_patches(lookback, patch_len, stride)
        self.revin = RevIN(n_channels, affine=revin_affine) if revin else None
        self.embed = nn.Linear(patch_len, d_model)
        self.pos = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            PatchTSTLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers)
        )
        self.head = nn.Sequential(
            nn.Flatten(-2), nn.Linear(self.n_patches * d_model, horizon), nn.Dropout(head_dropout)
        )

    def forecast(
        self, x: torch.Tensor, horizon: int, *covariates: torch.Tensor | None
    ) -> torch.Tensor:
        B, L, C = x.shape
        if self.revin is not None:
            x = self.revin.normalize(x)
        patches = patchify(x.transpose(1, 2), self.patch_len, self.stride)  # [B, C, N, P]
        h = self.drop(self.embed(patches.reshape(B * C, self.n_patches, -1)) + self.pos)
        scores = None
        for layer in self.layers:
            h, scores = layer(h, scores)
        # the flatten order of the reference: [d_model, N] per channel
        y = self.head(h.transpose(1, 2)).reshape(B, C, -1)[:, :, :horizon].transpose(1, 2)
        return self.revin.denormalize(y) if self.revin is not None else y
