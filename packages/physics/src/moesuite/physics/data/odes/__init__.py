"""Families of parametric ODEs for multi-environment meta-learning (MixER's data).

Also importable as :mod:`moesuite.physics.odes`. Ten registered families (:data:`FAMILY_NAMES`,
registry :data:`FAMILIES`), each with many *environments* (parameter
settings) and many initial conditions per environment, generated with
``scipy.integrate.solve_ivp``, padded to a common state size with a mask and split into
``train`` / ``test`` (known environments, new initial conditions) and ``adapt`` /
``adapt_test`` (new environments). :func:`generate_odebench` makes the MixER authors' own
ten-family set (ODEBench-2D, their environment grid) in the same layout.

Examples:
    >>> from moesuite.physics import odes
    >>> odes.FAMILY_NAMES[:3]
    ('lotka_volterra', 'fitzhugh_nagumo', 'van_der_pol')
    >>> ds = odes.generate(families="duffing,rossler", n_train_envs=2, n_adapt_envs=1, n_times=6)
    >>> ds.families, tuple(ds.split("train").shape)
    (('duffing', 'rossler'), (4, 8, 6, 3))
"""

from moesuite.physics.data.odes import families as _families  # noqa: F401  (registers the ten families)
from moesuite.physics.data.odes.dataset import (
    SPLITS,
    EnvironmentSet,
    ODEDataset,
    load_dataset,
    save_dataset,
)
from moesuite.physics.data.odes.families import FAMILY_NAMES
from moesuite.physics.data.odes.family import (
    FAMILIES,
    ODEFamily,
    get_family,
    list_families,
    parse_families,
    register_family,
)
from moesuite.physics.data.odes.generate import GenerationConfig, generate, simulate_family
from moesuite.physics.data.odes.odebench import (
    ODEBENCH_FAMILIES,
    ODEBENCH_NAMES,
    ODEBenchConfig,
    generate_odebench,
)

__all__ = [
    "FAMILIES",
    "FAMILY_NAMES",
    "ODEBENCH_FAMILIES",
    "ODEBENCH_NAMES",
    "ODEBenchConfig",
    "SPLITS",
    "EnvironmentSet",
    "GenerationConfig",
    "ODEDataset",
    "ODEFamily",
    "generate",
    "generate_odebench",
    "get_family",
    "list_families",
    "load_dataset",
    "parse_families",
    "register_family",
    "save_dataset",
    "simulate_family",
]
