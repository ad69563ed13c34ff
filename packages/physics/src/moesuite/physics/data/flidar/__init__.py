"""FLiDAR photon-transport simulator: diffusion Green's functions, decay, IRF, Poisson counts.

Modules: :mod:`~.config` (units, ranges, validation), :mod:`~.forward` (numpy forward model),
:mod:`~.torch_forward` (differentiable port), :mod:`~.sampling`, :mod:`~.dataset` (``.npz`` I/O).

Examples:
    >>> from moesuite.physics.data.flidar import SimulationConfig, simulate_dataset
    >>> ds = simulate_dataset(8, SimulationConfig(), seed=0)
    >>> ds.signals.shape, ds.params.shape
    ((8, 256), (8, 10))
"""

from moesuite.physics.data.flidar.config import (
    C0_MM_PER_NS,
    PARAM_NAMES,
    TARGETS,
    SimulationConfig,
    validate_params,
)
from moesuite.physics.data.flidar.dataset import (
    FLiDARDataset,
    load_irf,
    load_npz,
    save_npz,
    simulate_dataset,
)
from moesuite.physics.data.flidar.forward import (
    expected_counts,
    expected_shape,
    fine_times,
    log_green_emission,
    log_green_excitation,
    simulate_counts,
)
from moesuite.physics.data.flidar.sampling import sample_params
from moesuite.physics.data.flidar.torch_forward import expected_counts_torch, expected_shape_torch

__all__ = [
    "C0_MM_PER_NS",
    "PARAM_NAMES",
    "TARGETS",
    "SimulationConfig",
    "validate_params",
    "FLiDARDataset",
    "load_irf",
    "load_npz",
    "save_npz",
    "simulate_dataset",
    "expected_counts",
    "expected_shape",
    "fine_times",
    "log_green_emission",
    "log_green_excitation",
    "simulate_counts",
    "sample_params",
    "expected_counts_torch",
    "expected_shape_torch",
]
