"""MixER: a sparse top-1 mixture of context-conditioned neural ODEs with a K-means + least-squares gate.

From "Towards Foundational Models for Dynamical System Reconstruction: Hierarchical
Meta-Learning via Mixture of Experts" (Feb 2025). Many related dynamical systems (families of
parametric ODEs, each with many environments) are learned at once: each environment owns a
context vector, a gate routes the environment to one expert vector field from its context, and
the gate is refitted by K-means + least squares instead of gradient descent.

Modules: :mod:`~.integrate` (RK4), :mod:`~.vector_fields` (experts), :mod:`~.gate` (the gate and
its update), :mod:`~.model`, :mod:`~.baselines` (model registry), :mod:`~.training`,
:mod:`~.adapt`, :mod:`~.evaluate`, :mod:`~.plots`, :mod:`~.api` (train / evaluate / demo).
"""

from moesuite.physics.mixer.adapt import AdaptConfig, adapt_contexts
from moesuite.physics.mixer.baselines import MODELS, model_config
from moesuite.physics.mixer.evaluate import Evaluation, adjusted_rand_index, evaluate_model
from moesuite.physics.mixer.gate import (
    GateUpdateConfig,
    GateUpdateResult,
    LeastSquaresGate,
    greedy_assignment,
    hungarian_assignment,
    kmeans,
    kmeans_least_squares_update,
    least_squares_gate,
)
from moesuite.physics.mixer.integrate import rk4
from moesuite.physics.mixer.model import MixERConfig, MixERModel
from moesuite.physics.mixer.training import (
    MixERSystem,
    TrainConfig,
    TrajectoryBatch,
    trajectory_mse,
)
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
    "TrainConfig",
    "TrajectoryBatch",
    "adapt_contexts",
    "adjusted_rand_index",
    "evaluate_model",
    "greedy_assignment",
    "hungarian_assignment",
    "kmeans",
    "kmeans_least_squares_update",
    "least_squares_gate",
    "model_config",
    "rk4",
    "trajectory_mse",
]
