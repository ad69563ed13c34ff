"""EvidenceMoE: physics-guided temporal experts, Dirichlet critics and a decider network.

``x[B, d_in]`` (histogram features) flows as::

    experts (ExpertList, dense plan)  -> per expert NIG(depth, tau) + feature      [B, E, ...]
    critics (detached opinions)       -> reliability (Dirichlet), residuals        [B, E, 2]
    decider (x, corrected opinions,   -> fusion weights over experts + final NIG   [B, 2]
             reliability, evidence)

The critics read the experts' opinions and the signal itself (so they can learn in which regime
which expert is right). The final prediction is ``sum_e w_e (gamma_e + r_e)`` with ``w =
softmax(decider logits + log reliability)``. Its uncertainty is that of a mixture: the
decider's NIG plus the experts' weighted disagreement ``sum_e w_e (gamma_e + r_e - gamma)^2``,
added to the NIG's predictive variance (and so to its epistemic part). Experts that read
different windows agree where the training data taught them the same answer and disagree off
the training ranges, which widens the intervals there (``disagreement=False`` turns it off).

Losses (:meth:`EvidenceMoE.loss_terms`): evidential loss of every expert and of the final
output, the experts' windowed physics loss, and the critic loss. EvidenceMoE has no router (its
experts are called with a dense plan and fused by the critics and the decider), so it has no
aux losses. Targets are in scaled units (see :class:`~.features.TargetScaler`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moesuite.physics.data.flidar import SimulationConfig
from moesuite.physics.evidence.critics import (
    CRITIC_TARGETS,
    CriticOutput,
    DirichletCritic,
    critic_loss,
)
from moesuite.physics.evidence.experts import WINDOWS, ExpertBank, physics_window_loss, window_masks
from moesuite.physics.evidence.nig import NIG, evidential_loss, nig_from_raw

__all__ = ["EvidenceOutput", "EvidenceMoE"]


@dataclass(frozen=True)
class EvidenceOutput:
    """The final NIG ``[B, 2]``, the experts' NIG ``[B, E, 2]``, critics, weights ``[B, E, 2]``."""

    nig: NIG
    experts: NIG
    critic: CriticOutput
    weights: torch.Tensor


class EvidenceMoE(nn.Module):
    """The EvidenceMoE estimator of (depth, tau).

    Args:
        d_in: feature width (``n_bins + 1``).
        sim_config: the simulation config as a dict (time grid for the physics loss).
        scale_low: target scaling lower bounds ``(depth, tau)``.
        scale_high: target scaling upper bounds.
        d_hidden: hidden width of each expert.
        d_feat: expert feature width given to the critics.
        d_critic: hidden width of the critics and the decider.
        physics_weight: weight of the windowed physics loss (0 disables it).
        evidence_coeff: weight of the evidence regulariser.
        expert_inputs: ``"window"`` (the default: the early and late experts read only their
            window of the histogram, the global one all of it) or ``"full"`` (every expert
            reads the whole signal).
        critic_target: the critics' target (:func:`~.critics.critic_loss`; default the graded
            ``"softmin"``).
        disagreement: add the experts' weighted disagreement to the final predictive variance.
        shot_noise: give the final predictive variance a photon-limited part ``b(x) N_ref / N``
            (``N`` the signal's photon count, ``N_ref = 10^4``) besides the decider's own, so
            that it grows as photon counts fall, below the training range too (shot noise
            scales so; a learned function of ``log N`` would level off outside its range).
        photon_extrapolation: below the training range's lowest photon count ``N_min`` (the
            ``photons`` range of ``sim_config``), the networks read ``N_min`` instead of ``N``
            and every variance of the output is multiplied by ``N_min / N`` (shot noise), so
            that nothing extrapolates a learned function of ``N``; in range it does nothing.
        physics_subsample: signals per batch the physics loss re-simulates (the first ones of
            the shuffled batch, 8 by default; ``None``: all), since the forward model dominates
            a step's cost (with 64 of 128 a step cost about 45 times a dense network's).

    Examples:
        >>> cfg = SimulationConfig(n_bins=32, bin_width_ns=0.39)
        >>> scale = (1.0, 0.3), (20.0, 2.0)
        >>> model = EvidenceMoE(33, cfg.to_dict(), *scale, d_hidden=16, d_critic=16)
        >>> out = model(torch.randn(5, 33))
        >>> tuple(out.nig.gamma.shape), tuple(out.experts.gamma.shape)
        ((5, 2), (5, 3, 2))
    """

    def __init__(
        self,
        d_in: int,
        sim_config: dict[str, Any],
        scale_low: tuple[float, float],
        scale_high: tuple[float, float],
        d_hidden: int = 128,
        d_feat: int = 8,
        d_critic: int = 64,
        physics_weight: float = 0.05,
        evidence_coeff: float = 0.01,
        physics_subsample: int | None = 8,
        expert_inputs: str = "window",
        critic_target: str = "softmin",
        disagreement: bool = True,
        shot_noise: bool = True,
        photon_extrapolation: bool = True,
    ):
        super().__init__()
        if critic_target not in CRITIC_TARGETS:
            raise ValueError(
                f"critic_target must be one of {CRITIC_TARGETS}, got {critic_target!r}."
            )
        self.critic_target = critic_target
        self.disagreement = disagreement
        self.shot_noise = shot_noise
        self.photon_extrapolation = photon_extrapolation
        self.d_in, self.d_hidden, self.d_feat, self.d_critic = d_in, d_hidden, d_feat, d_critic
        self.sim_config = dict(sim_config)
        self.scale_low, self.scale_high = tuple(scale_low), tuple(scale_high)
        self.physics_weight, self.evidence_coeff = physics_weight, evidence_coeff
        self.physics_subsample = physics_subsample
        if expert_inputs not in ("full", "window"):
            raise ValueError(f"expert_inputs must be 'full' or 'window', got {expert_inputs!r}.")
        self.expert_inputs = expert_inputs
        self.num_experts = len(WINDOWS)
        self._config = SimulationConfig.from_dict(self.sim_config)
        n_bins = self._config.n_bins
        self.bank = ExpertBank(
            d_in,
            self.num_experts,
            d_hidden,
            d_feat,
            windowed_inputs_bins=n_bins if expert_inputs == "window" else None,
        )
        d_op = 8 + d_feat  # gamma, log nu, log alpha, log beta per target + feature
        self.critic = DirichletCritic(d_op, self.num_experts, 2, d_critic, d_context=d_in)
        E = self.num_experts
        self.decider = nn.Sequential(
            nn.Linear(d_in + E * 2 * 3 + 2, d_critic),
            nn.GELU(),
            nn.Linear(d_critic, d_critic),
            nn.GELU(),
            nn.Linear(d_critic, E * 2 + 2 * 4),
        )
        self.register_buffer("_low", torch.tensor(self.scale_low), persistent=False)
        self.register_buffer(
            "_span", torch.tensor(self.scale_high) - torch.tensor(self.scale_low), persistent=False
        )

    def init_kwargs(self) -> dict[str, Any]:
        """Constructor arguments (saved next to the weights)."""
        return {
            "d_in": self.d_in,
            "sim_config": self.sim_config,
            "scale_low": self.scale_low,
            "scale_high": self.scale_high,
            "d_hidden": self.d_hidden,
            "d_feat": self.d_feat,
            "d_critic": self.d_critic,
            "physics_weight": self.physics_weight,
            "evidence_coeff": self.evidence_coeff,
            "physics_subsample": self.physics_subsample,
            "expert_inputs": self.expert_inputs,
            "critic_target": self.critic_target,
            "disagreement": self.disagreement,
            "shot_noise": self.shot_noise,
            "photon_extrapolation": self.photon_extrapolation,
        }

    def forward(self, x: torch.Tensor) -> EvidenceOutput:
        """``x[B, d_in] -> EvidenceOutput``."""
        below = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
        if self.photon_extrapolation:  # x[:, n_bins] is log10(N) / 5
            col = self._config.n_bins
            floor = float(np.log10(self._config.ranges["photons"][0])) / 5.0
            below = torch.pow(10.0, 5.0 * (floor - x[:, col]).clamp_min(0.0))  # N_min / N >= 1
            x = torch.cat([x[:, :col], x[:, col : col + 1].clamp_min(floor), x[:, col + 1 :]], 1)
        raw, feat = self.bank(x)
        experts = nig_from_raw(raw)  # [B, E, 2]
        ex = experts.detach()
        opinions = torch.cat(
            [ex.gamma, ex.nu.log(), ex.alpha.log(), ex.beta.log(), feat.detach()], dim=-1
        )
        critic = self.critic(opinions, x)
        corrected = ex.gamma + critic.residual
        B, E = x.shape[0], self.num_experts
        dec_in = torch.cat(
            [
                x,
                corrected.reshape(B, -1),
                critic.reliability.reshape(B, -1),
                ex.aleatoric.log().reshape(B, -1),
                critic.strength.log(),
            ],
            dim=-1,
        )
        dec = self.decider(dec_in)
        logits = dec[:, : E * 2].reshape(B, E, 2) + critic.reliability.log()
        weights = torch.softmax(logits, dim=1)
        gamma = (weights * corrected).sum(1)
        spread = dec[:, E * 2 :].reshape(B, 2, 4)
        nu = F.softplus(spread[..., 0]) + 1e-4
        alpha = F.softplus(spread[..., 1]) + 1.0 + 1e-4
        beta = F.softplus(spread[..., 2]) + 1e-4
        if self.shot_noise:  # x[:, n_bins] is log10(N) / 5
            ref_over_n = torch.pow(10.0, 4.0 - 5.0 * x[:, self._config.n_bins]).clamp(max=1e4)
            beta = beta + F.softplus(spread[..., 3]) * ref_over_n[:, None]
        if self.disagreement:  # Student-t variance beta (1 + nu) / (nu alpha) += disagreement
            disagree = (weights * (corrected - gamma[:, None, :]) ** 2).sum(1).detach()
            beta = beta + disagree * nu * alpha / (1 + nu)
        final = NIG(gamma, nu, alpha, beta * below[:, None])
        return EvidenceOutput(final, experts, critic, weights)

    def loss_terms(
        self, out: EvidenceOutput, y: torch.Tensor, counts: torch.Tensor, params: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Training terms of ``out = self(x)``; ``"task"`` is their weighted sum.

        Args:
            out: the forward pass on the batch.
            y: ``[B, 2]`` scaled targets.
            counts: ``[B, n_bins]`` measured histograms (for the physics loss).
            params: ``[B, 10]`` each signal's simulation parameters (its optics, IRF, photons).
        """
        E = self.num_experts
        y_e = y[:, None, :].expand(-1, E, -1)
        expert_loss = evidential_loss(y_e, out.experts, self.evidence_coeff)
        final_loss = evidential_loss(y, out.nig, self.evidence_coeff)
        crit = critic_loss(out.critic, out.experts.gamma.detach(), y, target=self.critic_target)
        result = {"expert_nig": expert_loss, "final_nig": final_loss, "critic": crit}
        task = expert_loss + final_loss + crit
        if self.physics_weight > 0:
            B = y.shape[0]
            k = B if self.physics_subsample is None else min(self.physics_subsample, B)
            depth_tau = out.experts.gamma[:k] * self._span + self._low
            masks = window_masks(counts[:k])
            phys = physics_window_loss(depth_tau, counts[:k], params[:k], masks, self._config)
            result["physics"] = phys.mean()
            task = task + self.physics_weight * result["physics"]
        result["mae_scaled"] = (out.nig.gamma - y).abs().mean().detach()
        result["task"] = task
        return result
