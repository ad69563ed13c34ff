"""EvidenceMoE: physics-guided experts, evidential heads, Dirichlet critics and a decider for FLiDAR.

From "EvidenceMoE: A Physics-Guided Mixture-of-Experts with Evidential Critics for Advancing
Fluorescence Light Detection and Ranging in Scattering Media" (May 2025). Modules:
:mod:`~.nig` (Normal-Inverse-Gamma heads and loss), :mod:`~.experts` (temporal experts through
the core's ``ExpertList``, physics loss), :mod:`~.critics`, :mod:`~.model`, :mod:`~.baselines`,
:mod:`~.lsq` (least-squares fit), :mod:`~.data`, :mod:`~.metrics`, :mod:`~.plots`, :mod:`~.api`.
"""

from moesuite.physics.evidence.baselines import DenseEvidential, SoftmaxMoE
from moesuite.physics.evidence.critics import CriticOutput, DirichletCritic, critic_loss
from moesuite.physics.evidence.experts import (
    WINDOWS,
    ExpertBank,
    PhysicsExpert,
    physics_window_loss,
    window_masks,
)
from moesuite.physics.evidence.lsq import lsq_fit
from moesuite.physics.evidence.model import EvidenceMoE, EvidenceOutput
from moesuite.physics.evidence.nig import (
    NIG,
    evidential_loss,
    nig_from_raw,
    nig_nll,
    student_t_interval,
)

__all__ = [
    "DenseEvidential", "SoftmaxMoE", "CriticOutput", "DirichletCritic", "critic_loss", "WINDOWS", "ExpertBank",
    "PhysicsExpert", "physics_window_loss", "window_masks", "lsq_fit", "EvidenceMoE", "EvidenceOutput", "NIG",
    "evidential_loss", "nig_from_raw", "nig_nll", "student_t_interval",
]
