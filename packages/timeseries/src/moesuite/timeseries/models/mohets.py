"""MoHETS: an encoder-only patch Transformer with Mixture-of-Heterogeneous-Experts layers.

"MoHETS: Long-term Time Series Forecasting with Mixture-of-Heterogeneous-Experts" (Jan 2026).
Only the abstract is available; this is our reading of it, in the PatchTST/TimeXer family, with
every open choice a constructor argument (``docs/fidelity.md`` compares it with the abstract):

1. RevIN per channel (``revin``), undone at the output.
2. Channel-independent patching (``patch_len`` P, ``stride`` S) and linear patch embedding with
   learnable positions: ``B * C`` sequences of ``N`` tokens sharing every weight.
3. ``n_layers`` pre-norm encoder blocks: self-attention over patches -> cross-attention from the
   series tokens to covariate patch tokens (``covariates``) -> MoHE layer (``ffn="mohe"``: shared
   depthwise-conv expert + routed Fourier experts, through the core's ``MoELayer``) or a dense
   GELU FFN (``ffn="dense"``, PatchTST).
4. Covariate tokens: the covariates' lookback is patched like the series and each patch
   position (all covariates together) is embedded linearly with a sinusoidal time position; the
   covariates known in the future (the last ``n_known`` columns: calendar features, flagged
   columns) add tokens for non-overlapping patches of their future values. Unknown covariates
   contribute past patches only, so no future information enters except what is flagged as
   known.
5. Head, with weights that do not depend on the horizon (``head="lookback"``, the default): a
   mixture of ``lookback_experts`` linear maps of each channel's normalised lookback onto a
   fixed Fourier basis of the forecast step (:class:`~.heads.BasisHead`), mixed per channel
   sequence by a core router (``gate_router``, top-``gate_top_k``) on the mean of the encoder's
   output tokens: the encoder chooses, the linear experts forecast. ``head="flatten"`` is
   PatchTST's flatten head on the tokens (``N * d_model * H`` weights).

The model returns a :class:`~moesuite.core.output.MoEOutput`: the forecast and the output of
every router it called (the MoHE layers' and the gate's), whose weighted aux losses the
training step adds to its loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moesuite.core.output import MoEOutput
from moesuite.core.routers import RouterOutput
from moesuite.timeseries.models._base import MODELS, Forecaster
from moesuite.timeseries.models.encoder import (
    EncoderBlock,
    PatchEmbedding,
    num_patches,
    patchify,
    sinusoidal_positions,
)
from moesuite.timeseries.models.heads import BasisHead, FlattenHead
from moesuite.timeseries.models.mohe import build_mohe_layer, create_forecast_router
from moesuite.timeseries.models.revin import RevIN

__all__ = ["MoHETS"]

_FFNS = ("mohe", "dense")
_HEADS = ("lookback", "flatten")


@MODELS.register(
    "mohets",
    help="MoHETS: MoHE encoder (conv shared + Fourier routed experts), "
    "covariates, gated linear lookback experts",
)
class MoHETS(Forecaster):
    """MoHETS forecaster (see the module docstring for the architecture).

    Args:
        n_channels: ``C`` target channels.
        lookback: ``L``.
        horizon: ``H`` the model trains at (the ``lookback`` head forecasts any horizon).
        n_covariates: ``Cz`` covariate columns in ``z_past``.
        n_known: trailing covariate columns whose future values come in ``z_future``.
        patch_len: ``P``.
        stride: ``S``.
        d_model: token width.
        n_heads: attention heads.
        n_layers: encoder blocks.
        d_ff: hidden width of the dense FFN and of each routed expert.
        num_experts: routed experts ``E`` of each MoHE layer.
        top_k: experts per token.
        router: core router name of the MoHE layers (causal routers only).
        conv_kernel: kernel of the shared depthwise-conv expert.
        ffn: ``mohe`` or ``dense`` (PatchTST).
        head: ``lookback`` (gated linear lookback experts) or ``flatten`` (PatchTST).
        covariates: use covariate cross-attention (when covariates are given).
        revin: reversible instance normalisation.
        revin_affine: learnable RevIN affine map.
        lookback_experts: linear lookback forecasters of the ``lookback`` head (at least 2: the
            gate is how the encoder reaches the forecast).
        gate_router: core router name of their gate, on the mean encoder token (its initial
            weights are scaled to a default ``nn.Linear``'s std, ``1/sqrt(3 d)``).
        gate_top_k: lookback experts per sequence (default: all, a dense softmax gate).
        basis_frequencies: harmonics ``K`` of the Fourier basis of the forecast step.
        basis_period: its base period ``T`` in steps (``T = 384``, ``K = 96``: periods 384
            down to 4 steps, so a daily cycle of hourly data and its harmonics are members).
        dropout: dropout.
        lb_weight: load-balancing loss weight of the MoHE routers.
        z_weight: z-loss weight of the MoHE routers.
        gate_lb_weight: load-balancing loss weight of the gate. 0 by default: with the dense
            default gate (``gate_top_k`` = all experts) every expert is selected for every
            sequence, so the Switch loss is the constant 1 and has no gradient; set it with a
            sparse ``gate_top_k``.
        gate_z_weight: z-loss weight of the gate. 0 by default, deliberately: the benchmarked
            default trains the gate without it (``docs/experiments.md``).

    Shapes:
        ``x [B, L, C]``, ``z_past [B, L, Cz]``, ``z_future [B, H, n_known] -> [B, H, C]``
        (the ``output`` of the returned :class:`~moesuite.core.output.MoEOutput`).

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> m = MoHETS(n_channels=3, lookback=48, horizon=24, n_covariates=2, n_known=1, d_model=16)
        >>> out = m(torch.randn(4, 48, 3), torch.randn(4, 48, 2), torch.randn(4, 24, 1))
        >>> tuple(out.output.shape), len(out.routing)  # two MoHE layers and the gate
        ((4, 24, 3), 3)
        >>> tuple(m.predict(torch.randn(4, 48, 3), horizon=60).shape)  # any horizon
        (4, 60, 3)
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
        router: str = "topk",
        conv_kernel: int = 3,
        ffn: str = "mohe",
        head: str = "lookback",
        covariates: bool = True,
        revin: bool = True,
        revin_affine: bool = True,
        lookback_experts: int = 4,
        gate_router: str = "topk",
        gate_top_k: int | None = None,
        basis_frequencies: int = 96,
        basis_period: float = 384.0,
        dropout: float = 0.1,
        lb_weight: float = 1e-2,
        z_weight: float = 1e-3,
        gate_lb_weight: float = 0.0,
        gate_z_weight: float = 0.0,
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
            raise ValueError(
                f"n_known={n_known} must be between 0 and n_covariates={n_covariates}."
            )
        if head == "lookback" and lookback_experts < 2:
            raise ValueError(
                f"head='lookback' needs lookback_experts >= 2, got {lookback_experts}: the gate "
                "over them is how the encoder reaches the forecast."
            )
        self.n_channels, self.lookback, self.horizon = n_channels, lookback, horizon
        self.n_covariates, self.n_known = n_covariates, n_known
        self.patch_len, self.stride = patch_len, stride
        self.n_patches = num_patches(lookback, patch_len, stride)
        self.uses_covariates = covariates and n_covariates > 0
        self.any_horizon = head == "lookback"
        # the construction order fixes the random initialisation: keep it
        self.revin = RevIN(n_channels, affine=revin_affine) if revin else None
        self.embed = PatchEmbedding(patch_len, d_model, self.n_patches)
        if self.uses_covariates:
            self.cov_past = nn.Linear(n_covariates * patch_len, d_model)
            self.cov_future = nn.Linear(n_known * patch_len, d_model) if n_known else None
            self.cov_norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

        def make_ffn() -> nn.Module:
            if ffn == "dense":
                return nn.Sequential(
                    nn.Linear(d_model, d_ff),
                    nn.GELU(),
                    nn.Dropout(dropout),
                    nn.Linear(d_ff, d_model),
                )
            return build_mohe_layer(
                d_model, d_ff, num_experts=num_experts, top_k=top_k, router=router,
                conv_kernel=conv_kernel, lb_weight=lb_weight, z_weight=z_weight,
            )  # fmt: skip

        self.blocks = nn.ModuleList(
            EncoderBlock(
                d_model, n_heads, make_ffn(), cross_attention=self.uses_covariates, dropout=dropout
            )
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = (
            FlattenHead(self.n_patches, d_model, horizon, dropout=dropout)
            if head == "flatten"
            else None
        )
        self.lookback_head = None
        self.gate = None
        if head == "lookback":
            self.lookback_head = BasisHead(
                lookback, basis_frequencies, basis_period, n_experts=lookback_experts
            )
            self.gate = create_forecast_router(
                gate_router, d_model, lookback_experts, gate_top_k or lookback_experts,
                lb_weight=gate_lb_weight, z_weight=gate_z_weight,
            )  # fmt: skip
            if isinstance(getattr(self.gate, "weight", None), nn.Parameter):
                with torch.no_grad():  # start the gate as small as a default nn.Linear
                    self.gate.weight.mul_(3**-0.5)

    def covariate_tokens(self, z_past: torch.Tensor, z_future: torch.Tensor | None) -> torch.Tensor:
        """Covariate patch tokens ``[B, K, d]``: ``N`` past (+ ``M`` future when some are known).

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
            pad = fut[..., -1:].expand(*fut.shape[:-1], M * self.patch_len - H)
            fut = torch.cat([fut, pad], -1)
            fut = fut.reshape(B, self.n_known, M, self.patch_len).permute(0, 2, 1, 3)
            start = (L + self.patch_len * torch.arange(M, device=z_past.device)) / self.stride
            tokens.append(self.cov_future(fut.reshape(B, M, -1)) + sinusoidal_positions(start, d))
        return self.cov_norm(torch.cat(tokens, 1))

    def forecast(
        self,
        x: torch.Tensor,
        horizon: int,
        z_past: torch.Tensor | None = None,
        z_future: torch.Tensor | None = None,
    ) -> MoEOutput[torch.Tensor]:
        H = horizon
        B, L, C = x.shape
        if self.revin is not None:
            x = self.revin.normalize(x)
        patches = patchify(x.transpose(1, 2), self.patch_len, self.stride)  # [B, C, N, P]
        h = self.drop(self.embed(patches.reshape(B * C, self.n_patches, self.patch_len)))
        memory = None
        if self.uses_covariates and z_past is not None and z_past.shape[-1] > 0:
            memory = self.covariate_tokens(z_past, z_future)
        routing: list[RouterOutput] = []
        for block in self.blocks:
            h, r = block(h, memory)
            if r is not None:
                routing.append(r)
        h = self.norm(h)
        if self.head is not None:
            y = self.head(h, H)
        else:
            gate = self.gate(h.mean(1))  # one routing decision per channel sequence
            routing.append(gate)
            y = self.lookback_head(x.transpose(1, 2).reshape(B * C, L), H, gate.plan.to_dense())
        y = y.reshape(B, C, H).transpose(1, 2)
        if self.revin is not None:
            y = self.revin.denormalize(y)
        return MoEOutput(y, routing)


MODELS.register("mohets-nocov", MoHETS, help="MoHETS without covariates", covariates=False)
MODELS.register(
    "mohets-flatten",
    MoHETS,
    help="MoHETS with PatchTST's flatten head instead of the lookback experts",
    head="flatten",
)
