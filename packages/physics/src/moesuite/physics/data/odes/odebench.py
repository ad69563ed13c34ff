"""ODEBench-2D: the ten two-dimensional families and environment grid of MixER's authors.

MixER's ten-family experiment uses ten 2-D systems of ODEBench (d'Ascoli et al., "ODEFormer",
2023), as the authors' public data generator defines them (equations, reference parameters,
initial-condition boxes and time horizons, re-typed here from their definitions):

=============================  =====================================================  ==========
family                         equations                                              reference
=============================  =====================================================  ==========
``harmonic``                   x' = y, y' = -c0 x                                     c0 2.1
``damped_harmonic``            x' = y, y' = -c0 x - c1 y                              4.5, 0.43
``pendulum``                   x' = y, y' = -c0 sin x                                 0.9
``double_well``                x' = y, y' = -c0 y - x^3 + x                           0.18
``bead_on_hoop``               x' = y, y' = (-c0 + cos x) sin x                       0.93
``shear_flow``                 x' = cos x / tan y, y' = sin x (c0 sin^2 y + cos^2 y)  4.2
``van_der_pol_standard``       x' = y, y' = -c0 y (x^2 - 1) - x                       0.43
``van_der_pol_simplified``     x' = c0 (x - x^3/3 + y), y' = -x / c0                  3.37
``glycolytic``                 x' = c0 y + x^2 y - x, y' = -c0 x + c1 - x^2 y         2.4, 0.07
``duffing_like``               x' = y, y' = c0 y (1 - x^2) - x                        0.886
=============================  =====================================================  ==========

Environments, as in the authors' generator: **16 training environments** per family on a
grid over ``[0.9, 1.1] x`` the reference (16 values for one parameter, 4 x 4 for two, each
rounded to 2 decimals as theirs are), and **4 adaptation environments** at ``0.8, 0.93, 1.07,
1.2 x`` the reference (rounded likewise). Their generator gives the adaptation *training*
trajectories the training grid's parameters instead (its test for "adaptation" compares the
split name with ``'adapt'``, which ``'adapt_train'`` is not); here both the few-shot
trajectories and the held-out ones of an adaptation environment share its parameters.

Trajectories: initial conditions uniform in the box spanned by the family's two reference
initial values (theirs always include the two corners, in every split; here none repeats
across splits), 20 observations over ``[0, 0.95 T]`` (their 100 steps of ``T / 100`` read every
5th step), states in the equations' own units (their script does not normalise), and the
stored time step in units of ``T / 10`` (every family spans 10 units, as ours do).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from moesuite.core.registry import Registry
from moesuite.physics.data.odes.dataset import ODEDataset
from moesuite.physics.data.odes.family import ODEFamily
from moesuite.physics.data.odes.generate import TrajectoryCounts, _family_rng, assemble

__all__ = [
    "ODEBENCH_FAMILIES",
    "ODEBENCH_NAMES",
    "ODEBenchConfig",
    "adaptation_grid",
    "generate_odebench",
    "training_grid",
]

_POS = (0.0, math.inf)


def _harmonic(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.stack([y[:, 1], -p[:, 0] * y[:, 0]], axis=1)


def _damped_harmonic(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.stack([y[:, 1], -p[:, 0] * y[:, 0] - p[:, 1] * y[:, 1]], axis=1)


def _pendulum(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return np.stack([y[:, 1], -p[:, 0] * np.sin(y[:, 0])], axis=1)


def _double_well(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    return np.stack([v, -p[:, 0] * v - x**3 + x], axis=1)


def _bead_on_hoop(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x = y[:, 0]
    return np.stack([y[:, 1], (-p[:, 0] + np.cos(x)) * np.sin(x)], axis=1)


def _shear_flow(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    return np.stack(
        [np.cos(x) / np.tan(v), np.sin(x) * (p[:, 0] * np.sin(v) ** 2 + np.cos(v) ** 2)], axis=1
    )


def _van_der_pol_standard(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    return np.stack([v, -p[:, 0] * v * (x**2 - 1.0) - x], axis=1)


def _van_der_pol_simplified(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    c0 = p[:, 0]
    return np.stack([c0 * (-(x**3) / 3.0 + x + v), -x / c0], axis=1)


def _glycolytic(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    c0, c1 = p[:, 0], p[:, 1]
    return np.stack([c0 * v + x**2 * v - x, -c0 * x + c1 - x**2 * v], axis=1)


def _duffing_like(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    return np.stack([v, p[:, 0] * v * (1.0 - x**2) - x], axis=1)


#: (name, rhs, reference parameters, the two reference initial values, horizon T, description)
_TABLE = (
    ("harmonic", _harmonic, {"c0": 2.1}, ((0.4, -0.03), (0.0, 0.2)), 10.0,
     "harmonic oscillator without damping (ODEBench 24)"),
    ("damped_harmonic", _damped_harmonic, {"c0": 4.5, "c1": 0.43}, ((0.12, 0.043), (0.0, -0.3)),
     8.0, "harmonic oscillator with damping (ODEBench 25)"),
    ("pendulum", _pendulum, {"c0": 0.9}, ((-1.9, 0.0), (0.3, 0.8)), 15.0,
     "pendulum without friction (ODEBench 28)"),
    ("double_well", _double_well, {"c0": 0.18}, ((-1.8, -1.8), (-2.8, 1.0)), 5.0,
     "damped double-well oscillator (ODEBench 32)"),
    ("bead_on_hoop", _bead_on_hoop, {"c0": 0.93}, ((2.1, 0.0), (-1.2, -0.2)), 20.0,
     "frictionless bead on a rotating hoop (ODEBench 34)"),
    ("shear_flow", _shear_flow, {"c0": 4.2}, ((1.13, -0.3), (0.7, -1.7)), 5.0,
     "rotation of an object in a shear flow (ODEBench 35)"),
    ("van_der_pol_standard", _van_der_pol_standard, {"c0": 0.43}, ((2.2, 0.0), (0.1, 3.2)), 15.0,
     "Van der Pol oscillator, standard form (ODEBench 37)"),
    ("van_der_pol_simplified", _van_der_pol_simplified, {"c0": 3.37},
     ((0.7, 0.0), (-1.1, -0.7)), 15.0, "Van der Pol oscillator, simplified form (ODEBench 38)"),
    ("glycolytic", _glycolytic, {"c0": 2.4, "c1": 0.07}, ((0.4, 0.31), (0.2, -0.7)), 4.0,
     "glycolytic oscillator (ODEBench 39)"),
    ("duffing_like", _duffing_like, {"c0": 0.886}, ((0.63, -0.03), (0.2, 0.2)), 10.0,
     "ODEBench's 'Duffing equation' 40 (a Van der Pol form)"),
)  # fmt: skip

#: the ten ODEBench-2D families (a registry of their own: ``--families all`` stays ours)
ODEBENCH_FAMILIES: Registry[ODEFamily] = Registry("ODEBench-2D family")
#: reference parameters of each family, in ``param_names`` order
REFERENCE: dict[str, np.ndarray] = {}

for _name, _rhs, _ref, (_a, _b), _horizon, _text in _TABLE:
    _family = ODEFamily(
        name=_name,
        state_names=("x", "y"),
        param_names=tuple(_ref),
        rhs=_rhs,
        param_ranges={k: (0.8 * v, 1.2 * v) for k, v in _ref.items()},
        param_bounds={k: _POS for k in _ref},
        ic_ranges=tuple((min(lo, hi), max(lo, hi)) for lo, hi in zip(_a, _b, strict=True)),
        t_end=0.95 * _horizon,
        scale=(1.0, 1.0),
        time_unit=_horizon / 10.0,
        description=_text,
    )
    ODEBENCH_FAMILIES.register(_name, _family, help=_text)
    REFERENCE[_name] = np.array(list(_ref.values()))

#: the ten names, in the authors' order
ODEBENCH_NAMES: tuple[str, ...] = tuple(row[0] for row in _TABLE)


def training_grid(reference: np.ndarray, n_envs: int = 16) -> np.ndarray:
    """The authors' training environments: a grid over ``[0.9, 1.1] x reference``.

    ``ceil(n_envs ** (1 / P))`` values per parameter, rounded to 2 decimals, combined in the
    authors' order and cut at ``n_envs``.

    Examples:
        >>> training_grid(np.array([2.1]), 4).ravel().tolist()
        [1.89, 2.03, 2.17, 2.31]
        >>> training_grid(np.array([4.5, 0.43]), 4).tolist()
        [[4.05, 0.39], [4.05, 0.47], [4.95, 0.39], [4.95, 0.47]]
    """
    reference = np.asarray(reference, dtype=float)
    per_dim = math.ceil(n_envs ** (1 / len(reference)) - 1e-9)
    values = [np.round(np.linspace(0.9 * r, 1.1 * r, per_dim), 2) for r in reference]
    combos = np.array(np.meshgrid(*values)).T.reshape(-1, len(reference))
    return combos[:n_envs]


def adaptation_grid(reference: np.ndarray, n_envs: int = 4) -> np.ndarray:
    """The adaptation environments: ``reference x linspace(0.8, 1.2, n_envs)``, 2 decimals.

    Examples:
        >>> adaptation_grid(np.array([2.1])).ravel().tolist()
        [1.68, 1.96, 2.24, 2.52]
    """
    scalings = np.linspace(0.8, 1.2, n_envs)
    return np.round(np.asarray(reference, dtype=float)[None] * scalings[:, None], 2)


@dataclass(frozen=True, kw_only=True)
class ODEBenchConfig(TrajectoryCounts):
    """Counts of the ODEBench-2D dataset (:class:`TrajectoryCounts`).

    The authors' 16 training environments with 4 trajectories each and 4 adaptation
    environments with one; 8 held-out trajectories per environment (the authors use 32).
    """

    n_train_envs: int = 16
    n_train_ics: int = 4
    n_test_ics: int = 8


def generate_odebench(
    config: ODEBenchConfig | None = None, families: tuple[str, ...] | None = None, **overrides: int
) -> ODEDataset:
    """The authors' ten ODEBench-2D families on their environment grid, split like ours.

    Args:
        config: counts (default :class:`ODEBenchConfig`).
        families: some of :data:`ODEBENCH_NAMES` (default: all ten, in the authors' order).
        **overrides: fields of :class:`ODEBenchConfig`.

    Examples:
        >>> ds = generate_odebench(families=("harmonic", "glycolytic"), n_test_ics=2)
        >>> ds.families, tuple(ds.split("train").shape), tuple(ds.split("adapt").shape)
        (('harmonic', 'glycolytic'), (32, 4, 20, 2), (8, 1, 20, 2))
    """
    config = ODEBenchConfig(**{**(asdict(config) if config else {}), **overrides})
    names = tuple(families) if families else ODEBENCH_NAMES
    fams = [ODEBENCH_FAMILIES.get(n).obj for n in names]
    env_params = [
        (
            training_grid(REFERENCE[f.name], config.n_train_envs),
            adaptation_grid(REFERENCE[f.name], config.n_adapt_envs),
            _family_rng(config.seed, "odebench/" + f.name),
        )
        for f in fams
    ]
    train, adapt = assemble(fams, env_params, config)
    record = {"dataset": "odebench2d", **asdict(config), "families": list(names)}
    return ODEDataset(names, train, adapt, record)
