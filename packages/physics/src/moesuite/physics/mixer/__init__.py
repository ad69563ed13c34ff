"""MixER: a top-1 mixture of context-conditioned neural ODEs, gated by K-means + least squares.

From "Towards Foundational Models for Dynamical System Reconstruction: Hierarchical
Meta-Learning via Mixture of Experts" (Feb 2025). Many related dynamical systems (families of
parametric ODEs, each with many environments) are learned at once: each environment owns a
context vector, a gate routes the environment to one expert vector field from its context, and
the gate is refitted by K-means + least squares instead of gradient descent.

Modules: :mod:`~.model` (:class:`MixERModel`) with its blocks :mod:`~.vector_fields` (experts),
:mod:`~.gate` (the gate and its update) and :mod:`~.integrate` (RK4); :mod:`~.registry` (MixER
and its baselines by name); :mod:`~.trajectories` (batches, loss); :mod:`~.training` (train,
compare); :mod:`~.adapt`; :mod:`~.evaluate` (metrics, saved runs); :mod:`~.plots`. The data are
:mod:`moesuite.physics.odes`.
"""

from moesuite.physics.mixer.adapt import AdaptConfig, adapt_contexts
from moesuite.physics.mixer.evaluate import Evaluation, adjusted_rand_index, evaluate_model
from moesuite.physics.mixer.gate import (
    GateUpdateConfig,
    GateUpdateResult,
    LeastSquaresGate,
    greedy_assignment,
    kmeans,
    kmeans_least_squares_update,
    least_squares_gate,
)
from moesuite.physics.mixer.integrate import rk4
from moesuite.physics.mixer.model import MixERConfig, MixERModel
from moesuite.physics.mixer.registry import MODELS, model_config
from moesuite.physics.mixer.training import MixERSystem, MixERTrainConfig, mixer_step
from moesuite.physics.mixer.trajectories import TrajectoryBatch, trajectory_mse
from moesuite.physics.mixer.vector_fields import ContextVectorFields

__all__ = [
    "MODELS",
    "AdaptConfig",
    "ContextVectorFields",
    "Evaluation",
    "GateUpdateConfig",
    "GateUpdateResult",
    "LeastSquaresGate",
    "MixERConfig",
    "MixERModel",
    "MixERSystem",
    "MixERTrainConfig",
    "TrajectoryBatch",
    "adapt_contexts",
    "adjusted_rand_index",
    "evaluate_model",
    "greedy_assignment",
    "kmeans",
    "kmeans_least_squares_update",
    "least_squares_gate",
    "mixer_step",
    "model_config",
    "rk4",
    "trajectory_mse",
]
