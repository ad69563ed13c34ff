"""EvidenceMoE: physics-guided experts, evidential heads, Dirichlet critics, a decider (FLiDAR).

From "EvidenceMoE: A Physics-Guided Mixture-of-Experts with Evidential Critics for Advancing
Fluorescence Light Detection and Ranging in Scattering Media" (May 2025). The model:
:mod:`~.model` (:class:`EvidenceMoE`) with its blocks :mod:`~.experts` (temporal experts through
the core's ``ExpertList``, physics loss), :mod:`~.critics` and :mod:`~.nig` (Normal-Inverse-Gamma
heads and loss); the baselines :mod:`~.baselines` and :mod:`~.lsq` (least-squares fit);
:mod:`~.registry` (the models by name); :mod:`~.features` (histograms to tensors);
:mod:`~.config`, :mod:`~.training` (train, compare), :mod:`~.evaluate` (predict, score, saved
runs), :mod:`~.metrics`, :mod:`~.plots`. The simulator is :mod:`moesuite.physics.data.flidar`.
"""

from moesuite.physics.evidence.baselines import DenseEvidential, SoftmaxMoE
from moesuite.physics.evidence.config import EvidenceTrainConfig
from moesuite.physics.evidence.critics import CriticOutput, DirichletCritic, critic_loss
from moesuite.physics.evidence.experts import (
    WINDOWS,
    ExpertBank,
    PhysicsExpert,
    physics_window_loss,
    window_masks,
)
from moesuite.physics.evidence.lsq import LeastSquaresFit, lsq_fit
from moesuite.physics.evidence.model import EvidenceMoE, EvidenceOutput
from moesuite.physics.evidence.nig import (
    NIG,
    evidential_loss,
    nig_from_raw,
    nig_nll,
    student_t_interval,
)
from moesuite.physics.evidence.registry import MODELS

__all__ = [
    "MODELS",
    "NIG",
    "WINDOWS",
    "CriticOutput",
    "DenseEvidential",
    "DirichletCritic",
    "EvidenceMoE",
    "EvidenceOutput",
    "EvidenceTrainConfig",
    "ExpertBank",
    "LeastSquaresFit",
    "PhysicsExpert",
    "SoftmaxMoE",
    "critic_loss",
    "evidential_loss",
    "lsq_fit",
    "nig_from_raw",
    "nig_nll",
    "physics_window_loss",
    "student_t_interval",
    "window_masks",
]
