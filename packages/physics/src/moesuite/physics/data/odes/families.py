"""The ten parametric ODE families (two- and three-dimensional, all autonomous).

Each right-hand side is vectorised: ``rhs(y[N, D], p[N, P]) -> [N, D]`` with the parameters in
``param_names`` order. Default parameter boxes keep every family in one qualitative regime
(limit cycle, damped oscillation, epidemic wave, chaotic attractor...), so that environments
of a family are *related* and environments of different families are not. Stored states are in
each family's units, ``(y - offset) / scale``, chosen once per family so that every family
lives in the same O(1) box around 0 (about zero mean and unit spread), and ``time_unit`` is the
unit of the stored time step (every family spans 10 time units, so the stored states change by
O(1) per unit whichever family it is). A family therefore cannot be told from where its states
are, only from how they move.

=====================  ==  ==========================================================
family                 D   equations
=====================  ==  ==========================================================
``lotka_volterra``     2   x' = a x - b x y,  y' = d x y - g y
``fitzhugh_nagumo``    2   v' = v - v^3/3 - w + I,  w' = eps (v + a - b w)
``van_der_pol``        2   x' = y,  y' = mu (1 - x^2) y - x
``duffing``            2   x' = y,  y' = -delta y - alpha x - beta x^3
``damped_pendulum``    2   th' = om,  om' = -w0sq sin(th) - b om
``selkov``             2   x' = -x + a y + x^2 y,  y' = b - a y - x^2 y
``brusselator``        2   x' = A + x^2 y - (B + 1) x,  y' = B x - x^2 y
``sir``                3   S' = -beta S I,  I' = beta S I - gamma I,  R' = gamma I
``lorenz``             3   x' = sigma (y - x),  y' = x (rho - z) - y,  z' = x y - beta z
``rossler``            3   x' = -y - z,  y' = x + a y,  z' = b + z (x - c)
=====================  ==  ==========================================================
"""

from __future__ import annotations

import math

import numpy as np

from moesuite.physics.data.odes.family import ODEFamily, register_family

__all__ = ["FAMILY_NAMES"]

_POS = (0.0, math.inf)


def _lotka_volterra(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    a, b, d, g = p.T
    return np.stack([a * x - b * x * v, d * x * v - g * v], axis=1)


def _fitzhugh_nagumo(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    v, w = y[:, 0], y[:, 1]
    a, b, eps, current = p.T
    return np.stack([v - v**3 / 3.0 - w + current, eps * (v + a - b * w)], axis=1)


def _van_der_pol(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    mu = p[:, 0]
    return np.stack([v, mu * (1.0 - x**2) * v - x], axis=1)


def _duffing(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    delta, alpha, beta = p.T
    return np.stack([v, -delta * v - alpha * x - beta * x**3], axis=1)


def _damped_pendulum(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    th, om = y[:, 0], y[:, 1]
    w0sq, b = p.T
    return np.stack([om, -w0sq * np.sin(th) - b * om], axis=1)


def _selkov(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    a, b = p.T
    return np.stack([-x + a * v + x**2 * v, b - a * v - x**2 * v], axis=1)


def _brusselator(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v = y[:, 0], y[:, 1]
    A, B = p.T
    return np.stack([A + x**2 * v - (B + 1.0) * x, B * x - x**2 * v], axis=1)


def _sir(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    s, i = y[:, 0], y[:, 1]
    beta, gamma = p.T
    infections = beta * s * i
    return np.stack([-infections, infections - gamma * i, gamma * i], axis=1)


def _sir_ics(y0: np.ndarray) -> np.ndarray:
    y0 = y0.copy()
    y0[:, 0] = 1.0 - y0[:, 1] - y0[:, 2]  # closed population: S + I + R = 1
    return y0


def _lorenz(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v, z = y[:, 0], y[:, 1], y[:, 2]
    sigma, rho, beta = p.T
    return np.stack([sigma * (v - x), x * (rho - z) - v, x * v - beta * z], axis=1)


def _rossler(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    x, v, z = y[:, 0], y[:, 1], y[:, 2]
    a, b, c = p.T
    return np.stack([-v - z, x + a * v, b + z * (x - c)], axis=1)


_DEFINITIONS = [
    ODEFamily(
        name="lotka_volterra",
        state_names=("prey", "predator"),
        param_names=("alpha", "beta", "delta", "gamma"),
        rhs=_lotka_volterra,
        param_ranges={
            "alpha": (0.5, 0.5),
            "beta": (0.5, 1.0),
            "delta": (0.5, 1.0),
            "gamma": (0.5, 0.5),
        },
        param_bounds={"alpha": _POS, "beta": _POS, "delta": _POS, "gamma": _POS},
        ic_ranges=((0.5, 2.0), (0.5, 2.0)),
        t_end=10.0,
        scale=(0.4, 0.6),
        offset=(0.5, 0.8),
        description="predator-prey: x' = a x - b x y, y' = d x y - g y",
    ),
    ODEFamily(
        name="fitzhugh_nagumo",
        state_names=("v", "w"),
        param_names=("a", "b", "eps", "I"),
        rhs=_fitzhugh_nagumo,
        param_ranges={"a": (0.6, 0.8), "b": (0.7, 0.9), "eps": (0.08, 0.2), "I": (0.3, 0.6)},
        param_bounds={"eps": _POS, "b": _POS},
        ic_ranges=((-2.0, 2.0), (-1.0, 2.0)),
        t_end=20.0,
        scale=(1.2, 0.6),
        offset=(-0.6, 0.3),
        time_unit=2.0,
        description="excitable neuron: v' = v - v^3/3 - w + I, w' = eps (v + a - b w)",
    ),
    ODEFamily(
        name="van_der_pol",
        state_names=("x", "y"),
        param_names=("mu",),
        rhs=_van_der_pol,
        param_ranges={"mu": (0.5, 2.0)},
        param_bounds={"mu": _POS},
        ic_ranges=((-2.0, 2.0), (-2.0, 2.0)),
        t_end=10.0,
        scale=(1.4, 1.4),
        description="relaxation oscillator: x' = y, y' = mu (1 - x^2) y - x",
    ),
    ODEFamily(
        name="duffing",
        state_names=("x", "y"),
        param_names=("delta", "alpha", "beta"),
        rhs=_duffing,
        param_ranges={"delta": (0.1, 0.3), "alpha": (-1.2, -0.8), "beta": (0.8, 1.2)},
        param_bounds={"delta": _POS, "beta": _POS},
        ic_ranges=((-1.5, 1.5), (-1.0, 1.0)),
        t_end=10.0,
        scale=(1.0, 0.4),
        description="damped double-well oscillator: x' = y, y' = -delta y - alpha x - beta x^3",
    ),
    ODEFamily(
        name="damped_pendulum",
        state_names=("theta", "omega"),
        param_names=("w0sq", "b"),
        rhs=_damped_pendulum,
        param_ranges={"w0sq": (1.0, 3.0), "b": (0.1, 0.5)},
        param_bounds={"w0sq": _POS, "b": (-1e-12, math.inf)},
        ic_ranges=((-2.0, 2.0), (-1.0, 1.0)),
        t_end=10.0,
        scale=(0.6, 0.6),
        description="pendulum with friction: th' = om, om' = -w0sq sin(th) - b om",
    ),
    ODEFamily(
        name="selkov",
        state_names=("adp", "f6p"),
        param_names=("a", "b"),
        rhs=_selkov,
        param_ranges={"a": (0.06, 0.1), "b": (0.45, 0.75)},
        param_bounds={"a": _POS, "b": _POS},
        ic_ranges=((0.0, 2.0), (0.0, 2.0)),
        t_end=20.0,
        scale=(0.4, 0.7),
        offset=(0.6, 1.4),
        time_unit=2.0,
        description="Sel'kov glycolysis: x' = -x + a y + x^2 y, y' = b - a y - x^2 y",
    ),
    ODEFamily(
        name="brusselator",
        state_names=("x", "y"),
        param_names=("A", "B"),
        rhs=_brusselator,
        param_ranges={"A": (0.8, 1.2), "B": (2.5, 3.5)},
        param_bounds={"A": _POS, "B": _POS},
        ic_ranges=((0.5, 2.0), (1.0, 3.0)),
        t_end=10.0,
        scale=(0.8, 1.3),
        offset=(0.9, 3.0),
        description="autocatalytic reaction: x' = A + x^2 y - (B + 1) x, y' = B x - x^2 y",
    ),
    ODEFamily(
        name="sir",
        state_names=("S", "I", "R"),
        param_names=("beta", "gamma"),
        rhs=_sir,
        param_ranges={"beta": (1.5, 3.0), "gamma": (0.3, 0.6)},
        param_bounds={"beta": _POS, "gamma": _POS},
        ic_ranges=((0.0, 1.0), (0.01, 0.1), (0.0, 0.1)),
        ic_transform=_sir_ics,
        t_end=20.0,
        scale=(0.25, 0.15, 0.3),
        offset=(0.1, 0.1, 0.8),
        time_unit=2.0,
        description="epidemic: S' = -beta S I, I' = beta S I - gamma I, R' = gamma I",
    ),
    ODEFamily(
        name="lorenz",
        state_names=("x", "y", "z"),
        param_names=("sigma", "rho", "beta"),
        rhs=_lorenz,
        param_ranges={"sigma": (8.0, 12.0), "rho": (25.0, 32.0), "beta": (2.0, 3.0)},
        param_bounds={"sigma": _POS, "rho": _POS, "beta": _POS},
        ic_ranges=((-10.0, 10.0), (-10.0, 10.0), (10.0, 30.0)),
        t_end=0.5,
        scale=(8.5, 10.0, 9.0),
        offset=(0.0, 0.0, 24.0),
        time_unit=0.05,
        description="Lorenz-63: x' = sigma (y - x), y' = x (rho - z) - y, z' = x y - beta z",
    ),
    ODEFamily(
        name="rossler",
        state_names=("x", "y", "z"),
        param_names=("a", "b", "c"),
        rhs=_rossler,
        param_ranges={"a": (0.1, 0.3), "b": (0.1, 0.3), "c": (4.0, 7.0)},
        param_bounds={"a": _POS, "b": _POS, "c": _POS},
        ic_ranges=((-5.0, 5.0), (-5.0, 5.0), (0.0, 1.0)),
        t_end=10.0,
        scale=(4.5, 4.5, 2.5),
        offset=(0.0, -0.6, 0.5),
        description="Rossler: x' = -y - z, y' = x + a y, z' = b + z (x - c)",
    ),
]

for _family in _DEFINITIONS:
    register_family(_family)

#: the ten registered names, in the order above
FAMILY_NAMES: tuple[str, ...] = tuple(f.name for f in _DEFINITIONS)
