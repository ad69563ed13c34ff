"""The settings of an EvidenceMoE (or baseline) training run."""

from __future__ import annotations

from dataclasses import dataclass

from moesuite.physics.evidence.critics import CRITIC_TARGETS
from moesuite.physics.evidence.features import KNOWN_OPTICS

__all__ = ["EvidenceTrainConfig"]


@dataclass(frozen=True, kw_only=True)
class EvidenceTrainConfig:
    """Training settings (the quick defaults run in a few minutes on 2 CPU cores).

    Attributes:
        n_train: simulated training signals (ignored with ``--data``).
        n_val: validation signals (simulated, or split off ``--data``).
        epochs: training epochs.
        batch_size: signals per step.
        lr: peak AdamW learning rate (cosine schedule).
        seed: data, initialisation and batching seed.
        d_hidden: EvidenceMoE expert width; the baselines get the same parameter count.
        physics_weight: weight of EvidenceMoE's windowed physics loss.
        lsq_max_nfev: residual evaluations per least-squares fit.
        lsq_max_signals: signals fitted by least squares when scoring (it is slow).
        known_optics: the "known optics" setting: the estimators are given the optical
            properties, refractive index and IRF width of each signal (measured separately in
            practice); ``False`` (the default) leaves them as unknown nuisances.
        expert_inputs: EvidenceMoE's ``"window"`` (default) or ``"full"`` expert inputs.
        critic_target: the critics' training target, ``"softmin"`` (graded by relative error,
            default) or ``"argmin"`` (one-hot on the closest expert; see
            :func:`~moesuite.physics.evidence.critics.critic_loss`).
        disagreement: EvidenceMoE adds its experts' weighted disagreement to the final
            predictive variance.
        shot_noise: EvidenceMoE's final variance has a photon-limited part scaling as ``1/N``.
        photon_extrapolation: below the training photon range EvidenceMoE reads the lowest
            trained count and scales its variance by ``N_min / N``.
    """

    n_train: int = 6000
    n_val: int = 1000
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    d_hidden: int = 128
    physics_weight: float = 0.05
    lsq_max_nfev: int = 40
    lsq_max_signals: int = 300
    known_optics: bool = False
    expert_inputs: str = "window"
    critic_target: str = "softmin"
    disagreement: bool = True
    shot_noise: bool = True
    photon_extrapolation: bool = True

    @property
    def known(self) -> tuple[str, ...]:
        """Parameter names fed to the estimators."""
        return KNOWN_OPTICS if self.known_optics else ()

    def __post_init__(self) -> None:
        for name in (
            "n_train",
            "n_val",
            "epochs",
            "batch_size",
            "d_hidden",
            "lsq_max_nfev",
            "lsq_max_signals",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}.")
        if self.expert_inputs not in ("full", "window"):
            raise ValueError(
                f"expert_inputs must be 'full' or 'window', got {self.expert_inputs!r}."
            )
        if self.critic_target not in CRITIC_TARGETS:
            raise ValueError(
                f"critic_target must be one of {CRITIC_TARGETS}, got {self.critic_target!r}."
            )
        if not self.lr > 0 or not self.physics_weight >= 0:
            raise ValueError(
                f"lr must be > 0 and physics_weight >= 0, got {self.lr!r}, {self.physics_weight!r}."
            )
