"""MoHETS: an encoder-only patch Transformer with Mixture-of-Heterogeneous-Experts layers.

"MoHETS: Long-term Time Series Forecasting with Mixture-of-Heterogeneous-Experts" (Ortigossa,
Lutsker, Segal, 2026), as the authors' code builds it (evortigosa/mohe_forecast, Apache-2.0;
read, then written anew on moesuite's core; ``docs/fidelity.md`` lists every point):

1. Instance normalisation of each channel over the window (mean and standard deviation, no
   affine map), undone at the output.
2. Non-overlapping patches of each channel (``Conv1d`` with stride = ``patch_len``), channels
   independent and sharing every weight (:class:`~.blocks.PatchEmbedding`).
3. The exogenous embedding, the model's only path between channels: at every time step the
   known covariates (calendar features, ``--known-covariates``) and all ``C`` normalised
   channels are projected to a common width, fused back to ``C`` values and patched like the
   series, giving one covariate token per channel and patch, aligned with the series tokens.
4. ``n_layers`` pre-norm blocks (RMSNorm): grouped-query self-attention with rotary positions,
   cross-attention from the series tokens to the covariate tokens at the same positions, and
   the MoHE layer (:mod:`~.mohe`: a shared depthwise-conv expert scaled by a sigmoid gate plus
   top-2 of 8 routed Fourier experts through the core ``topk`` router); each residual branch
   with DropPath (rates rising linearly to ``drop_path`` over the blocks).
5. A final RMSNorm, a linear map per token and the convolutional un-patch decoder
   (:class:`~.blocks.UnPatchDecoder`): the output is the input window shifted by
   ``output_step`` (``H_o``) steps, i.e. ``L - H_o`` known steps and ``H_o`` new ones.
6. Forecasting rolls out: the ``H_o`` new steps are appended to the window, the oldest ``H_o``
   dropped, the calendar marks slid forward by the same steps, until ``H`` steps exist. No
   weight depends on the horizon: one trained model serves every horizon.

The training target (:meth:`MoHETS.training_pair`) is the shifted window, so training windows
need only ``H_o`` future steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from moesuite.core.layer import MoELayer
from moesuite.core.output import MoEOutput
from moesuite.core.routers import RouterOutput
from moesuite.timeseries.models._base import MODELS, Forecaster
from moesuite.timeseries.models.blocks import (
    DropPath,
    GroupedQueryAttention,
    PatchEmbedding,
    UnPatchDecoder,
)
from moesuite.timeseries.models.mohe import build_mohe_layer
from moesuite.timeseries.models.revin import RevIN

__all__ = ["MoHETS", "ExogenousEmbedding", "MoHETSBlock", "TINY", "SMALL"]

#: the authors' ``TinyConfig`` and ``SmallConfig`` (output step ``patch_len * width_factor``)
TINY = dict(patch_len=8, output_step=24, n_layers=4, d_model=64, n_heads=4, n_kv_heads=2, d_ff=128)
SMALL = dict(
    patch_len=16, output_step=24, n_layers=4, d_model=128, n_heads=4, n_kv_heads=2, d_ff=256
)


class ExogenousEmbedding(nn.Module):
    """Covariate tokens aligned with the series tokens: ``[B, C, T], [B, Ck, T] -> [B*C, N, d]``.

    Per time step, the ``C`` normalised channels and the ``Ck`` known covariates are each
    projected to ``max(C, Ck, d)`` values, concatenated and fused to ``C`` values; the fused
    series is patched by its own :class:`~.blocks.PatchEmbedding`. Every token mixes all
    channels: the only place where channels meet.
    """

    def __init__(self, n_channels: int, n_known: int, patch_len: int, d_model: int, dropout: float):
        super().__init__()
        hidden = max(n_channels, n_known, d_model)
        self.proj_data = nn.Linear(n_channels, hidden, bias=False)
        # the bias stands for the authors' constant minute feature of hourly data
        self.proj_time = nn.Linear(n_known, hidden)
        self.fuse = nn.Linear(2 * hidden, n_channels, bias=False)
        for lin in (self.proj_data, self.proj_time, self.fuse):
            nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(self.proj_time.bias)
        self.patch = PatchEmbedding(patch_len, d_model, dropout)

    def forward(self, x: torch.Tensor, marks: torch.Tensor) -> torch.Tensor:
        fused = self.fuse(
            torch.cat(
                [self.proj_data(x.transpose(1, 2)), self.proj_time(marks.transpose(1, 2))], -1
            )
        )
        return self.patch(fused.transpose(1, 2))


class MoHETSBlock(nn.Module):
    """Self-attention -> cross-attention to covariate tokens -> MoHE layer, pre-norm, DropPath."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int,
        mohe: MoELayer,
        cross_attention: bool,
        dropout: float,
        drop_path: float,
        rope_theta: float,
    ):
        super().__init__()
        self.norm_self = nn.RMSNorm(d_model, eps=1e-6)
        self.self_attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads, dropout, rope_theta)
        self.cross_attn = None
        if cross_attention:
            self.norm_cross = nn.RMSNorm(d_model, eps=1e-6)
            self.cross_attn = GroupedQueryAttention(
                d_model, n_heads, n_kv_heads, dropout, rope_theta
            )
        self.norm_ffn = nn.RMSNorm(d_model, eps=1e-6)
        self.mohe = mohe
        self.drop_path = DropPath(drop_path)

    def forward(
        self, h: torch.Tensor, memory: torch.Tensor | None, positions: torch.Tensor
    ) -> tuple[torch.Tensor, RouterOutput]:
        a = self.norm_self(h)
        h = h + self.drop_path(self.self_attn(a, a, positions, positions))
        if self.cross_attn is not None and memory is not None:
            a = self.norm_cross(h)
            h = h + self.drop_path(self.cross_attn(a, memory, positions, positions))
        f, routing = self.mohe(self.norm_ffn(h))
        return h + self.drop_path(f), routing


@MODELS.register(
    "mohets",
    help="MoHETS (Tiny): MoHE encoder, exogenous cross-attention, conv un-patch decoder, "
    "roll-out to any horizon",
)
class MoHETS(Forecaster):
    """MoHETS forecaster (see the module docstring); defaults are the authors' Tiny size.

    Args:
        n_channels: ``C`` target channels.
        lookback: ``L`` (a multiple of ``patch_len``).
        horizon: the default forecast length (any horizon can be asked for).
        n_covariates: ``Cz`` covariate columns of ``z_past``.
        n_known: trailing covariate columns known in the future (calendar features and
            ``--known-covariates``): the exogenous embedding's inputs. Past-only covariates
            have no future to slide into the roll-out and are not used.
        patch_len: ``P``.
        output_step: ``H_o``, the steps each decoder pass adds (a multiple of nothing; at
            most ``L``).
        n_layers: blocks.
        d_model: token width.
        n_heads: query heads.
        n_kv_heads: key/value heads (grouped-query attention).
        d_ff: hidden width of the shared and of each routed expert.
        num_experts: routed Fourier experts per MoHE layer.
        top_k: routed experts per token.
        router: core router name (causal routers only).
        dropout: dropout of embeddings, attention weights and experts.
        drop_path: stochastic-depth rate of the last block (0 for the first, linear between).
        rope_theta: RoPE base.
        covariates: use the exogenous embedding and cross-attention (when known covariates
            are given).
        lb_weight: Switch load-balancing weight of every MoHE router.
        z_weight: router z-loss weight (0: the authors use none).

    Shapes:
        ``x [B, L, C]``, ``z_past [B, L, Cz]``, ``z_future [B, H, Ck] -> [B, H, C]`` (the
        ``output`` of the returned :class:`~moesuite.core.output.MoEOutput`).

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> m = MoHETS(n_channels=3, lookback=48, horizon=24, n_covariates=2, n_known=2,
        ...            d_model=16, n_layers=2, d_ff=32)
        >>> out = m(torch.randn(4, 48, 3), torch.randn(4, 48, 2), torch.randn(4, 60, 2), 60)
        >>> tuple(out.output.shape), len(out.routing)
        ((4, 60, 3), 2)
    """

    uses_covariates = True
    any_horizon = True

    def __init__(
        self,
        n_channels: int,
        lookback: int,
        horizon: int,
        n_covariates: int = 0,
        n_known: int = 0,
        patch_len: int = 8,
        output_step: int = 24,
        n_layers: int = 4,
        d_model: int = 64,
        n_heads: int = 4,
        n_kv_heads: int = 2,
        d_ff: int = 128,
        num_experts: int = 8,
        top_k: int = 2,
        router: str = "topk",
        dropout: float = 0.2,
        drop_path: float = 0.3,
        rope_theta: float = 10000.0,
        covariates: bool = True,
        lb_weight: float = 0.02,
        z_weight: float = 0.0,
    ):
        super().__init__()
        self._store_config(locals())
        if lookback % patch_len:
            raise ValueError(
                f"lookback {lookback} must be a multiple of patch_len {patch_len} "
                "(non-overlapping patches)."
            )
        if not 0 < output_step <= lookback:
            raise ValueError(f"output_step must be in [1, lookback={lookback}], got {output_step}.")
        if not 0 <= n_known <= n_covariates:
            raise ValueError(
                f"n_known={n_known} must be between 0 and n_covariates={n_covariates}."
            )
        self.n_channels, self.lookback, self.horizon = n_channels, lookback, horizon
        self.n_covariates, self.n_known = n_covariates, n_known
        self.patch_len, self.output_step = patch_len, output_step
        self.n_patches = lookback // patch_len
        self.uses_covariates = covariates and n_known > 0
        self.norm_in = RevIN(n_channels, affine=False)
        self.embed = PatchEmbedding(patch_len, d_model, dropout)
        self.exogenous = (
            ExogenousEmbedding(n_channels, n_known, patch_len, d_model, dropout)
            if self.uses_covariates
            else None
        )
        rates = torch.linspace(0, drop_path, n_layers).tolist() if n_layers > 1 else [drop_path]
        self.blocks = nn.ModuleList(
            MoHETSBlock(
                d_model,
                n_heads,
                n_kv_heads,
                build_mohe_layer(
                    d_model, d_ff, num_experts, top_k, router, dropout, lb_weight, z_weight
                ),
                cross_attention=self.uses_covariates,
                dropout=dropout,
                drop_path=rate,
                rope_theta=rope_theta,
            )
            for rate in rates
        )
        self.norm_out = nn.RMSNorm(d_model, eps=1e-6)
        self.head = nn.Linear(d_model, d_model, bias=False)
        nn.init.xavier_uniform_(self.head.weight)
        self.decoder = UnPatchDecoder(patch_len, d_model, n_channels)

    def train_horizon(self, horizon: int) -> int:
        """Future steps a training window needs: ``H_o`` (the target is the shifted window)."""
        return self.output_step

    def known(self, z_past: torch.Tensor | None) -> torch.Tensor | None:
        """The known-covariate columns of ``z_past`` (the last ``n_known``), or ``None``."""
        if not self.uses_covariates or z_past is None:
            return None
        return z_past[..., z_past.shape[-1] - self.n_known :]

    def reconstruct(
        self, x: torch.Tensor, marks: torch.Tensor | None = None
    ) -> MoEOutput[torch.Tensor]:
        """One decoder pass: the window ``x [B, L, C]`` shifted by ``H_o`` steps, ``[B, L, C]``.

        ``marks [B, L, Ck]`` are the known covariates over the window.
        """
        xn = self.norm_in.normalize(x).transpose(1, 2)  # [B, C, L]
        h = self.embed(xn)
        memory = self.exogenous(xn, marks.transpose(1, 2)) if marks is not None else None
        positions = torch.arange(h.shape[1], device=x.device)
        routing: list[RouterOutput] = []
        for block in self.blocks:
            h, r = block(h, memory, positions)
            routing.append(r)
        y = self.decoder(self.head(self.norm_out(h)))  # [B, C, L]
        return MoEOutput(self.norm_in.denormalize(y.transpose(1, 2)), routing)

    def training_pair(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[MoEOutput[torch.Tensor], torch.Tensor]:
        """The shifted window and its target ``[x[H_o:], y[:H_o]]`` (``y`` holds ``H_o`` steps)."""
        x, y = batch["x"], batch["y"]
        if y.shape[1] < self.output_step:
            raise ValueError(
                f"training windows need {self.output_step} future steps, got {y.shape[1]}."
            )
        out = self.reconstruct(x, self.known(batch.get("z_past")))
        return out, torch.cat([x[:, self.output_step :], y[:, : self.output_step]], 1)

    def forecast(
        self,
        x: torch.Tensor,
        horizon: int,
        z_past: torch.Tensor | None = None,
        z_future: torch.Tensor | None = None,
    ) -> MoEOutput[torch.Tensor]:
        """Roll out ``ceil(H / H_o)`` decoder passes; routing of the first pass is returned."""
        step = self.output_step
        marks = self.known(z_past)
        if marks is not None:
            need = (math.ceil(horizon / step) - 1) * step
            if need and (z_future is None or z_future.shape[1] < need):
                raise ValueError(
                    f"a {horizon}-step roll-out needs the known covariates of the first {need} "
                    "future steps (z_future)."
                )
        window, outputs, routing = x, [], None
        n_passes = math.ceil(horizon / step)
        for i in range(n_passes):
            out = self.reconstruct(window, marks)
            routing = routing if routing is not None else out.routing
            new = out.output[:, -step:]
            outputs.append(new)
            if i + 1 < n_passes:  # slide the window and its calendar marks by H_o steps
                window = torch.cat([window[:, step:], new], 1)
                if marks is not None and z_future is not None:
                    marks = torch.cat([marks[:, step:], z_future[:, i * step : (i + 1) * step]], 1)
        return MoEOutput(torch.cat(outputs, 1)[:, :horizon], routing or [])


MODELS.register("mohets-small", MoHETS, help="MoHETS (Small size of the authors' configs)", **SMALL)
MODELS.register(
    "mohets-nocov",
    MoHETS,
    help="MoHETS (Tiny) without the exogenous embedding and cross-attention",
    covariates=False,
)
