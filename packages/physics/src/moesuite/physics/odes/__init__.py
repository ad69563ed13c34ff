"""Families of parametric ODEs for multi-environment meta-learning (MixER's data).

Ten registered families (:data:`FAMILY_NAMES`), each with many *environments* (parameter
settings) and many initial conditions per environment, generated with
``scipy.integrate.solve_ivp``, padded to a common state size with a mask and split into
``train`` / ``test`` (known environments, new initial conditions) and ``adapt`` /
``adapt_test`` (new environments).

Examples:
    >>> from moesuite.physics import odes
    >>> odes.FAMILY_NAMES[:3]
    ('lotka_volterra', 'fitzhugh_nagumo', 'van_der_pol')
    >>> ds = odes.generate(families="duffing,rossler", n_train_envs=2, n_adapt_envs=1, n_times=6)
    >>> ds.families, tuple(ds.split("train").shape)
    (('duffing', 'rossler'), (4, 8, 6, 3))
"""

from moesuite.physics.odes import families as _families  # noqa: F401  (registers the ten families)
from moesuite.physics.odes._registry import (
    ODEFamily,
    get_family,
    list_families,
    parse_families,
    register_family,
)
from moesuite.physics.odes.dataset import (
    SPLITS,
    EnvironmentSet,
    ODEDataset,
    load_dataset,
    save_dataset,
)
from moesuite.physics.odes.families import FAMILY_NAMES
from moesuite.physics.odes.generate import GenerationConfig, generate, simulate_family

__all__ = [
    "FAMILY_NAMES",
    "SPLITS",
    "EnvironmentSet",
    "GenerationConfig",
    "ODEDataset",
    "ODEFamily",
    "generate",
    "get_family",
    "list_families",
    "load_dataset",
    "parse_families",
    "register_family",
    "save_dataset",
    "simulate_family",
]
