"""MoHETS: an encoder-only patch Transformer with Mixture-of-Heterogeneous-Experts layers.

"MoHETS: Long-term Time Series Forecasting with Mixture-of-Heterogeneous-Experts" (Jan 2026).
Only the abstract is available; this is our reading of it, in the PatchTST/TimeXer family, with
every open choice a constructor argument:

1. RevIN per channel (``revin``), undone at the output.
2. Channel-independent patching (``patch_len`` P, ``stride`` S) and linear patch embedding with
   learnable positions: ``B * C`` sequences of ``N`` tokens sharing every weight.
3. ``n_layers`` pre-norm encoder blocks: self-attention over patches -> cross-attention from the
   series tokens to covariate patch tokens (``covariates``) -> MoHE layer (``ffn="mohe"``: shared
   depthwise-conv expert + routed experts of kind ``expert``, through the core's ``MoELayer``)
   or a dense GELU FFN (``ffn="dense"``, PatchTST).
4. Covariate tokens: the covariates' lookback is patched like the series and each patch
   position (all covariates together) is embedded linearly with a sinusoidal time position; the
   covariates known in the future (the last ``n_known`` columns: calendar features, flagged
   columns) add tokens for non-overlapping patches of their future values. Unknown covariates
   contribute past patches only, so no future information enters except what is flagged as
   known. (Alternative reading, not implemented: one token per covariate and patch.)
5. Head: the patch decoder (``head="conv"``, weights independent of ``H``;
   ``decoder="fourier"``: a linear map of the flattened tokens to the coefficients of a fixed
   Fourier basis of the forecast step; ``"latent"``: ``r`` latent tokens mixed by position-generated coefficients, then
   convolutions over the future tokens; ``"implicit"``: a long token-axis convolution with an
   MLP-generated kernel;
   ``"rollout"`` rolls a token-axis convolution forward one future patch at a time;
   ``"query"`` uses attention queries and a conv stack) or
   PatchTST's flatten head (``head="flatten"``, ``N * d_model * H`` weights).
6. Lookback experts (``lookback_skip``, default on): ``skip_experts`` horizon-free linear maps
   of each channel's normalised lookback onto the same Fourier basis, mixed by a core router
   (``skip_router``, top-``skip_top_k``) on the mean encoder token, added to the head's
   forecast (``head_scale`` times it). The default
   ``head_scale=0`` builds no token head: the encoder only gates the linear experts, the best
   configuration using the encoder that we measured on ETTh1 (see the package README; adding
   the tokens to the forecast directly overfitted there, while on the built-in generator the
   token decoder is better).

Routing statistics and router losses come from the core (``RoutingRecorder``,
``MoEAuxLossCallback``); the model returns only the forecast.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moesuite.timeseries.models._base import Forecaster
from moesuite.timeseries.models.basis import BasisHead
from moesuite.timeseries.models.decoders import ConvPatchDecoder, FlattenHead
from moesuite.timeseries.models.encoder import (
    EncoderBlock,
    PatchEmbedding,
    num_patches,
    patchify,
    sinusoidal_positions,
)
from moesuite.timeseries.models.mohe import build_mohe_layer, create_forecast_router
from moesuite.timeseries.models.revin import RevIN

__all__ = ["MoHETS"]

_FFNS = ("mohe", "dense")
_HEADS = ("conv", "flatten")


class MoHETS(Forecaster):
    """MoHETS forecaster (see the module docstring for the architecture).

    Args:
        n_channels: ``C`` target channels.
        lookback: ``L``.
        horizon: ``H`` the model trains at (the conv head forecasts any horizon).
        n_covariates: ``Cz`` covariate columns in ``z_past``.
        n_known: trailing covariate columns whose future values come in ``z_future``.
        patch_len: ``P`` (also the decoder's values per future token).
        stride: ``S``.
        d_model: token width.
        n_heads: attention heads.
        n_layers: encoder blocks.
        d_ff: hidden width of the dense FFN and of each routed expert.
        num_experts: routed experts ``E``.
        top_k: experts per token.
        expert: ``fourier``, ``spectral`` or ``mlp`` (homogeneous ablation).
        router: core router name (token-choice).
        conv_kernel: kernel of the shared depthwise-conv expert.
        ffn: ``mohe`` or ``dense`` (PatchTST).
        head: ``conv`` or ``flatten`` (PatchTST).
        covariates: use covariate cross-attention (when covariates are given).
        revin: reversible instance normalisation.
        revin_affine: learnable RevIN affine map.
        decoder: decoder variant, ``fourier``, ``latent``, ``implicit``, ``rollout`` or ``query``
            (see :class:`ConvPatchDecoder`).
        decoder_frequencies: harmonics ``K`` of the ``fourier`` decoder and of the lookback skip.
        decoder_period: their base period ``T`` in steps.
        head_dropout: dropout on the flattened tokens before the ``fourier`` decoder
            (``None``: ``dropout``).
        lookback_skip: add a horizon-free linear forecast from the normalised lookback.
        skip_experts: ``E`` linear lookback forecasters in the skip, mixed per channel sequence by a
            core router's gates on the mean of the encoder's output tokens (a mixture of linear experts
            routed by the MoHE encoder; 1: a single linear skip).
        skip_router: core router name of that gate (its dense gate matrix mixes the experts; its
            initial weights are scaled to a default ``nn.Linear``'s std, ``1/sqrt(3 d)``, which
            did better on ETTh1 than the router's own ``d**-0.5``, see the package README).
        skip_top_k: lookback experts per sequence (default: all, a dense softmax gate).
        head_scale: fixed factor on the head's forecast (with Adam, a smaller effective step
            for the Transformer path than for the lookback skip; 1: plain sum). ``0`` builds no
            token head at all: the forecast is the gated mixture of lookback experts, and the
            encoder's only job is the gate (needs ``lookback_skip`` and ``skip_experts > 1``).
        decoder_latent: latent tokens of the ``latent`` decoder.
        decoder_context: tokens the rollout kernel spans (default: all ``N``).
        decoder_layers: convolution blocks of the ``query`` decoder.
        decoder_kernel: their kernel.
        dropout: dropout.
        lb_weight: router load-balancing loss weight.
        z_weight: router z-loss weight.

    Shapes:
        ``x [B, L, C]``, ``z_past [B, L, Cz]``, ``z_future [B, H, n_known] -> [B, H, C]``.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> m = MoHETS(n_channels=3, lookback=48, horizon=24, n_covariates=2, n_known=1, d_model=16)
        >>> y = m(torch.randn(4, 48, 3), torch.randn(4, 48, 2), torch.randn(4, 24, 1))
        >>> tuple(y.shape), tuple(m(torch.randn(4, 48, 3), horizon=60).shape)
        ((4, 24, 3), (4, 60, 3))
    """

    def __init__(
        self,
        n_channels: int,
        lookback: int,
        horizon: int,
        n_covariates: int = 0,
        n_known: int = 0,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 64,
        num_experts: int = 4,
        top_k: int = 2,
        expert: str = "fourier",
        router: str = "topk",
        conv_kernel: int = 3,
        ffn: str = "mohe",
        head: str = "conv",
        covariates: bool = True,
        revin: bool = True,
        revin_affine: bool = True,
        decoder: str = "fourier",
        decoder_latent: int = 32,
        decoder_context: int | None = None,
        decoder_layers: int = 2,
        decoder_kernel: int = 3,
        decoder_frequencies: int = 96,
        decoder_period: float = 384.0,
        head_dropout: float | None = None,
        lookback_skip: bool = True,
        skip_experts: int = 4,
        skip_router: str = "topk",
        skip_top_k: int | None = None,
        head_scale: float = 0.0,
        dropout: float = 0.1,
        lb_weight: float = 1e-2,
        z_weight: float = 1e-3,
    ):
        super().__init__()
        self._store_config(locals())
        if ffn not in _FFNS:
            raise ValueError(f"ffn must be one of {_FFNS}, got {ffn!r}.")
        if head not in _HEADS:
            raise ValueError(f"head must be one of {_HEADS}, got {head!r}.")
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}.")
        if not 0 <= n_known <= n_covariates:
            raise ValueError(f"n_known={n_known} must be between 0 and n_covariates={n_covariates}.")
        self.n_channels, self.lookback, self.horizon = n_channels, lookback, horizon
        self.n_covariates, self.n_known = n_covariates, n_known
        self.patch_len, self.stride = patch_len, stride
        self.n_patches = num_patches(lookback, patch_len, stride)
        self.uses_covariates = covariates and n_covariates > 0
        self.any_horizon = head == "conv" or head_scale == 0
        self.revin = RevIN(n_channels, affine=revin_affine) if revin else None
        self.embed = PatchEmbedding(patch_len, d_model, self.n_patches)
        if self.uses_covariates:
            self.cov_past = nn.Linear(n_covariates * patch_len, d_model)
            self.cov_future = nn.Linear(n_known * patch_len, d_model) if n_known else None
            self.cov_norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

        def make_ffn() -> nn.Module:
            if ffn == "dense":
                return nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
            return build_mohe_layer(
                d_model, d_ff, num_experts=num_experts, top_k=top_k, expert=expert, router=router,
                conv_kernel=conv_kernel, lb_weight=lb_weight, z_weight=z_weight,
            )

        self.blocks = nn.ModuleList(
            EncoderBlock(d_model, n_heads, make_ffn(), cross_attention=self.uses_covariates, dropout=dropout)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        if head_scale == 0 and not (lookback_skip and skip_experts > 1):
            raise ValueError("head_scale=0 leaves only the lookback skip: it needs lookback_skip=True and "
                             "skip_experts > 1 (otherwise the encoder would not be used).")
        self.head: nn.Module | None
        if head_scale == 0:
            self.head = None
        elif head == "conv":
            self.head = ConvPatchDecoder(
                d_model, patch_len, self.n_patches, mode=decoder, context=decoder_context, n_layers=decoder_layers,
                kernel_size=decoder_kernel, n_heads=n_heads, dropout=dropout, latent_tokens=decoder_latent,
                n_frequencies=decoder_frequencies, period=decoder_period,
                head_dropout=dropout if head_dropout is None else head_dropout,
            )
        else:
            self.head = FlattenHead(self.n_patches, d_model, horizon, dropout=dropout)
        self.head_scale = head_scale
        self.skip = (BasisHead(lookback, decoder_frequencies, decoder_period, n_experts=skip_experts)
                     if lookback_skip else None)
        self.skip_gate = (create_forecast_router(skip_router, d_model, skip_experts, skip_top_k or skip_experts)
                          if lookback_skip and skip_experts > 1 else None)
        if isinstance(getattr(self.skip_gate, "weight", None), nn.Parameter):
            # start the gate as small as a default nn.Linear: std 1/sqrt(3 d)
            with torch.no_grad():
                self.skip_gate.weight.mul_(3**-0.5)

    def covariate_tokens(self, z_past: torch.Tensor, z_future: torch.Tensor | None) -> torch.Tensor:
        """Covariate patch tokens ``[B, K, d]``: ``N`` past tokens (+ ``M`` future tokens when some are known).

        A past token embeds one patch of every covariate (``Cz * P`` values); a future token
        embeds one non-overlapping patch of the known covariates (``Ck * P`` values). Both get a
        sinusoidal encoding of the patch's start time (in strides).
        """
        B, L, Cz = z_past.shape
        d = self.cov_past.out_features
        past = patchify(z_past.transpose(1, 2), self.patch_len, self.stride)  # [B, Cz, N, P]
        N = past.shape[2]
        pos = sinusoidal_positions(torch.arange(N, device=z_past.device) * 1.0, d)
        tokens = [self.cov_past(past.permute(0, 2, 1, 3).reshape(B, N, Cz * self.patch_len)) + pos]
        if self.n_known and z_future is not None and z_future.shape[1] > 0:
            H = z_future.shape[1]
            M = math.ceil(H / self.patch_len)
            fut = z_future.transpose(1, 2)  # [B, Ck, H]
            fut = torch.cat([fut, fut[..., -1:].expand(*fut.shape[:-1], M * self.patch_len - H)], -1)
            fut = fut.reshape(B, self.n_known, M, self.patch_len).permute(0, 2, 1, 3).reshape(B, M, -1)
            start = (L + self.patch_len * torch.arange(M, device=z_past.device)) / self.stride
            tokens.append(self.cov_future(fut) + sinusoidal_positions(start, d))
        return self.cov_norm(torch.cat(tokens, 1))

    def forward(
        self,
        x: torch.Tensor,
        z_past: torch.Tensor | None = None,
        z_future: torch.Tensor | None = None,
        horizon: int | None = None,
    ) -> torch.Tensor:
        H = horizon or self.horizon
        self.check_inputs(x, z_past, z_future)
        B, L, C = x.shape
        if self.revin is not None:
            x = self.revin.normalize(x)
        patches = patchify(x.transpose(1, 2), self.patch_len, self.stride)  # [B, C, N, P]
        h = self.drop(self.embed(patches.reshape(B * C, self.n_patches, self.patch_len)))
        memory = None
        if self.uses_covariates and z_past is not None and z_past.shape[-1] > 0:
            memory = self.covariate_tokens(z_past, z_future)
        for block in self.blocks:
            h = block(h, memory)
        h = self.norm(h)
        y = 0.0
        if self.head is not None:
            y = self.head_scale * self.head(h, H)
        if self.skip is not None:
            gate = self.skip_gate(h.mean(1)).plan.to_dense() if self.skip_gate is not None else None
            y = y + self.skip(x.transpose(1, 2).reshape(B * C, L), H, gate)
        y = y.reshape(B, C, H).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y)
        return y
