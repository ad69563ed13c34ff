"""The FLiDAR models by name: EvidenceMoE and its three baselines, at EvidenceMoE's parameter count.

=====================  ======================================================================
name                   estimator
=====================  ======================================================================
``evidence``           :class:`~.model.EvidenceMoE`: physics-guided experts, Dirichlet critics,
                       decider
``evidence-dense``     :class:`~.baselines.DenseEvidential`: one MLP with the same NIG head
``evidence-softmax``   :class:`~.baselines.SoftmaxMoE`: a plain MoE, softmax gate, no critics
``evidence-lsq``       :class:`~.lsq.LeastSquaresFit`: per-signal least squares of the forward
                       model (nothing to train)
=====================  ======================================================================

Every builder takes ``(d_in, config, train_config)``: the feature width, the simulation config
and the :class:`~.training.EvidenceTrainConfig`. :data:`NETWORKS` maps the class names saved in
``checkpoints/model.pt`` back to the classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from moesuite.core.registry import Registry
from moesuite.physics.data.flidar import SimulationConfig
from moesuite.physics.evidence.baselines import (
    DenseEvidential,
    SoftmaxMoE,
    dense_width_for,
    moe_width_for,
)
from moesuite.physics.evidence.features import TargetScaler
from moesuite.physics.evidence.lsq import LeastSquaresFit
from moesuite.physics.evidence.model import EvidenceMoE

if TYPE_CHECKING:
    from moesuite.physics.evidence.config import EvidenceTrainConfig

__all__ = ["MODELS", "NETWORKS", "parameter_count"]

#: the FLiDAR models (``moesuite physics list`` prints them)
MODELS: Registry[nn.Module | LeastSquaresFit] = Registry("model")
#: network classes by the name ``checkpoints/model.pt`` stores
NETWORKS: Registry[nn.Module] = Registry("network class")
for _cls in (EvidenceMoE, DenseEvidential, SoftmaxMoE):
    NETWORKS.register(_cls.__name__, _cls)


def parameter_count(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


@MODELS.register("evidence", help="EvidenceMoE: physics-guided experts, critics and a decider")
def _evidence(d_in: int, config: SimulationConfig, tc: EvidenceTrainConfig) -> EvidenceMoE:
    scaler = TargetScaler.from_config(config)
    return EvidenceMoE(
        d_in,
        config.to_dict(),
        scaler.low,
        scaler.high,
        d_hidden=tc.d_hidden,
        physics_weight=tc.physics_weight,
        expert_inputs=tc.expert_inputs,
        critic_target=tc.critic_target,
        disagreement=tc.disagreement,
        shot_noise=tc.shot_noise,
        photon_extrapolation=tc.photon_extrapolation,
    )


@MODELS.register("evidence-dense", help="baseline: one MLP of equal parameter count")
def _dense(d_in: int, config: SimulationConfig, tc: EvidenceTrainConfig) -> DenseEvidential:
    budget = parameter_count(_evidence(d_in, config, tc))
    return DenseEvidential(d_in, dense_width_for(d_in, budget))


@MODELS.register(
    "evidence-softmax", help="baseline: softmax-gated MoE of equal parameter count, no critics"
)
def _softmax(d_in: int, config: SimulationConfig, tc: EvidenceTrainConfig) -> SoftmaxMoE:
    budget = parameter_count(_evidence(d_in, config, tc))
    return SoftmaxMoE(d_in, d_hidden=moe_width_for(d_in, budget))


@MODELS.register("evidence-lsq", help="baseline: least-squares fit of the forward model per signal")
def _lsq(d_in: int, config: SimulationConfig, tc: EvidenceTrainConfig) -> LeastSquaresFit:
    return LeastSquaresFit(tc.lsq_max_nfev, tc.lsq_max_signals, tc.known_optics)
