"""Physics-guided experts: one per temporal component of the FLiDAR histogram.

Each expert outputs Normal-Inverse-Gamma parameters for ``(depth, tau)`` plus a small feature
vector for the critics. It reads its own temporal window of the signal (``window`` inputs, the
default: the histogram features outside the window are zeroed; the photon count is always
seen) and is guided by a physics loss: the expert's own ``(depth, tau)`` is pushed through the
differentiable forward model (:func:`~moesuite.physics.data.flidar.expected_counts_torch`, with
the simulation's optical properties, IRF and photon count of that signal) and the mismatch with
the measured histogram is penalised on the expert's window only:

==========  ===================================  =====================================
expert      window (cumulative photon fraction)  physics it sees
==========  ===================================  =====================================
``early``   0.00 - 0.35                          rising edge: time of flight -> depth
``late``    0.60 - 1.00                          decay tail -> lifetime (and absorption)
``global``  0.00 - 1.00                          the whole histogram
==========  ===================================  =====================================

Experts that read different parts of the signal are right in different places (which is what
the critics learn to rank); ``full`` inputs give every expert the whole signal.

The experts run through the core's :class:`~moesuite.core.experts.ExpertList` with a dense
plan (every signal to every expert, gate 1): expert ``e`` writes into its own slot of the
``d_model`` output, so the combined output is the concatenation of all experts' opinions, which
the critics and the decider then weigh (EvidenceMoE fuses after the experts, not with a gate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core.experts import ExpertList
from moesuite.core.routing import RoutingPlan
from moesuite.physics.data.flidar import PARAM_NAMES, SimulationConfig, expected_counts_torch

__all__ = ["WINDOWS", "PhysicsExpert", "ExpertBank", "window_masks", "physics_window_loss"]

#: name -> (low, high) bounds of the cumulative photon fraction
WINDOWS: dict[str, tuple[float, float]] = {
    "early": (0.0, 0.35),
    "late": (0.6, 1.0),
    "global": (0.0, 1.0),
}
N_NIG = 8  # 2 targets x (gamma, nu, alpha, beta)


class PhysicsExpert(nn.Module):
    """MLP ``x[n, d_model] -> [n, d_model]`` writing ``[nig_raw(8), feature(d_feat)]`` in a slot.

    Args:
        d_in: feature width actually read (the first ``d_in`` columns of the input).
        d_model: width of the shared input/output (``>= d_in`` and ``>= (index + 1) * slot``).
        index: slot of this expert.
        d_hidden: hidden width.
        d_feat: feature width handed to the critics.
        window: ``(low, high)`` cumulative-fraction window of this expert, used only with
            ``n_bins`` set: the histogram features outside the window are zeroed (option
            ``expert_inputs="window"`` of :class:`~.model.EvidenceMoE`, its default; ``None``
            feeds the whole signal unchanged).
        n_bins: number of histogram features at the start of the input (for ``window``).
    """

    def __init__(
        self,
        d_in: int,
        d_model: int,
        index: int,
        d_hidden: int = 128,
        d_feat: int = 8,
        window: tuple[float, float] | None = None,
        n_bins: int | None = None,
    ):
        super().__init__()
        self.d_in, self.d_model, self.index, self.d_hidden, self.d_feat = (
            d_in,
            d_model,
            index,
            d_hidden,
            d_feat,
        )
        self.window, self.n_bins = window, n_bins
        self.slot = N_NIG + d_feat
        if (index + 1) * self.slot > d_model:
            raise ValueError(f"d_model={d_model} too small for slot {index} of width {self.slot}.")
        self.net = nn.Sequential(
            nn.Linear(d_in, d_hidden),
            nn.GELU(),
            nn.Linear(d_hidden, d_hidden),
            nn.GELU(),
            nn.Linear(d_hidden, self.slot),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, : self.d_in]
        if self.window is not None and self.n_bins is not None:
            shape = x[:, : self.n_bins]
            mask = window_masks(shape.detach() ** 2, {"w": self.window})[:, 0].to(x.dtype)
            x = torch.cat([shape * mask, x[:, self.n_bins :]], dim=1)
        out = self.net(x)
        left = self.index * self.slot
        return F.pad(out, (left, self.d_model - left - self.slot))


class ExpertBank(nn.Module):
    """The temporal experts behind an :class:`ExpertList`; returns per-expert raw outputs.

    Shapes: ``x[B, d_in] -> nig_raw[B, E, 2, 4], feats[B, E, d_feat]``.
    """

    def __init__(
        self,
        d_in: int,
        num_experts: int = 3,
        d_hidden: int = 128,
        d_feat: int = 8,
        windowed_inputs_bins: int | None = None,
    ):
        super().__init__()
        self.d_in, self.num_experts, self.d_feat = d_in, num_experts, d_feat
        self.slot = N_NIG + d_feat
        self.d_model = max(d_in, num_experts * self.slot)
        bounds = list(WINDOWS.values())
        self.experts = ExpertList(
            [
                PhysicsExpert(
                    d_in,
                    self.d_model,
                    e,
                    d_hidden,
                    d_feat,
                    window=bounds[e] if windowed_inputs_bins else None,
                    n_bins=windowed_inputs_bins,
                )
                for e in range(num_experts)
            ],
            d_model=self.d_model,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, E = x.shape[0], self.num_experts
        xp = F.pad(x, (0, self.d_model - x.shape[1]))
        idx = torch.arange(E, device=x.device).expand(B, E)
        plan = RoutingPlan.from_topk(idx, torch.ones(B, E, device=x.device, dtype=x.dtype), E)
        y = self.experts(xp, plan)[:, : E * self.slot].reshape(B, E, self.slot)
        return y[..., :N_NIG].reshape(B, E, 2, 4), y[..., N_NIG:]


def window_masks(
    counts: torch.Tensor, windows: dict[str, tuple[float, float]] | None = None
) -> torch.Tensor:
    """``[B, n_bins] -> [B, W, n_bins]`` bool masks of each window by cumulative photon fraction.

    Examples:
        >>> m = window_masks(torch.ones(1, 10))
        >>> m.sum(-1).tolist()
        [[4, 4, 10]]
    """
    windows = windows or WINDOWS
    cdf = counts.cumsum(-1) / counts.sum(-1, keepdim=True).clamp_min(1.0)
    prev = cdf - counts / counts.sum(-1, keepdim=True).clamp_min(1.0)  # fraction before the bin
    masks = [(cdf > lo) & (prev < hi) if lo > 0 else prev < hi for lo, hi in windows.values()]
    return torch.stack(masks, dim=1)


_DEPTH, _TAU = PARAM_NAMES.index("depth_mm"), PARAM_NAMES.index("tau_ns")


def physics_window_loss(
    depth_tau: torch.Tensor,
    counts: torch.Tensor,
    params: torch.Tensor,
    masks: torch.Tensor,
    config: SimulationConfig,
) -> torch.Tensor:
    """Per-expert windowed mismatch between re-simulated and measured histograms, ``[B, E]``.

    Args:
        depth_tau: ``[B, E, 2]`` each expert's (depth mm, tau ns).
        counts: ``[B, n_bins]`` measured counts.
        params: ``[B, 10]`` the signal's other parameters (optics, IRF, photons, background).
        masks: ``[B, E, n_bins]`` each expert's window.
        config: the time grid.

    The mismatch is ``4 * mean_window (sqrt(lambda) - sqrt(c))^2`` (variance-stabilised Poisson
    residuals: about 1 at the noise floor).
    """
    B, E, _ = depth_tau.shape
    p = params[:, None, :].expand(B, E, params.shape[1]).clone()
    p[..., _DEPTH] = depth_tau[..., 0].clamp_min(0.2)
    p[..., _TAU] = depth_tau[..., 1].clamp_min(0.05)
    lam = expected_counts_torch(p.reshape(B * E, -1), config).reshape(B, E, -1)
    r2 = (lam.clamp_min(0).sqrt() - counts[:, None, :].sqrt()) ** 2
    m = masks.to(r2.dtype)
    return 4 * (r2 * m).sum(-1) / m.sum(-1).clamp_min(1.0)
