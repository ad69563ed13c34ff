"""The parametric ODE family type and its registry (a core ``Registry``, written once at import)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from moesuite.core.registry import Registry

__all__ = [
    "FAMILIES",
    "ODEFamily",
    "register_family",
    "get_family",
    "list_families",
    "parse_families",
]

#: ``rhs(y[N, D], p[N, P]) -> dy/dt[N, D]``, vectorised over N trajectories
RHS = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: ``ic_transform(y0[N, D]) -> y0[N, D]``, applied after uniform sampling in ``ic_ranges``
ICTransform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, kw_only=True)
class ODEFamily:
    """An autonomous parametric ODE ``dy/dt = rhs(y; p)``: one family, many environments.

    An *environment* is one parameter vector ``p``; trajectories of an environment differ in
    their initial condition.

    Attributes:
        name: registry name (``snake_case``).
        state_names: one name per state variable (``D = len(state_names)``).
        param_names: one name per parameter (``P = len(param_names)``).
        rhs: vectorised right-hand side ``rhs(y[N, D], p[N, P]) -> [N, D]`` (numpy).
        param_ranges: default box ``name -> (lo, hi)`` the environments are drawn from
            (``lo == hi`` fixes a parameter).
        param_bounds: validity ``name -> (min, max)`` of each parameter (open bounds; e.g.
            rates must be positive); user ranges outside it are refused.
        ic_ranges: box ``(lo, hi)`` per state the initial conditions are drawn from.
        ic_transform: optional map applied to the sampled initial conditions (e.g. SIR puts
            ``S = 1 - I - R``).
        t_end: time span ``[0, t_end]`` of a trajectory, in the equations' time.
        scale: per-state unit of the stored trajectories, chosen once per family so states are
            O(1) (a choice of units, not a statistic of a particular dataset).
        offset: per-state origin of the stored trajectories: stored states are
            ``(y - offset) / scale``. With the defaults every family lives in the same O(1) box
            around 0, so a family cannot be told from where its states are, only from how
            they move (as in the paper's ODEBench, ten 2-D systems on comparable ranges).
        time_unit: the unit the stored time step ``dt`` is expressed in, chosen once per family
            so that every family's scaled state changes by O(1) per unit (e.g. Lorenz-63 is
            twenty times faster than a pendulum); ``dt = t_end / time_unit / (n_times - 1)``.
        description: one line, with the equations.
    """

    name: str
    state_names: tuple[str, ...]
    param_names: tuple[str, ...]
    rhs: RHS
    param_ranges: Mapping[str, tuple[float, float]]
    param_bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    ic_ranges: tuple[tuple[float, float], ...]
    ic_transform: ICTransform | None = None
    t_end: float
    scale: tuple[float, ...]
    offset: tuple[float, ...] | None = None
    time_unit: float = 1.0
    description: str = ""

    def __post_init__(self) -> None:
        D, P = len(self.state_names), len(self.param_names)
        if set(self.param_ranges) != set(self.param_names):
            raise ValueError(
                f"family {self.name!r}: param_ranges must name exactly {self.param_names}."
            )
        if self.offset is None:
            object.__setattr__(self, "offset", (0.0,) * D)
        if len(self.ic_ranges) != D or len(self.scale) != D or len(self.offset) != D:  # type: ignore[arg-type]
            raise ValueError(f"family {self.name!r}: ic_ranges, scale and offset need {D} entries.")
        if not (self.t_end > 0 and self.time_unit > 0):
            raise ValueError(f"family {self.name!r}: t_end and time_unit must be > 0.")
        if P == 0:
            raise ValueError(
                f"family {self.name!r}: a parametric family needs at least one parameter."
            )
        self.check_ranges(self.param_ranges)

    @property
    def state_dim(self) -> int:
        """``D``, the number of state variables."""
        return len(self.state_names)

    @property
    def num_params(self) -> int:
        """``P``, the number of parameters."""
        return len(self.param_names)

    def check_ranges(self, ranges: Mapping[str, object]) -> dict[str, tuple[float, float]]:
        """Validate (partial) parameter ranges; returns the full box with defaults filled in.

        A value is a number (fixes the parameter) or a ``(lo, hi)`` pair.

        Raises:
            ValueError: an unknown parameter name, a malformed or non-finite range, ``lo > hi``,
                or a range outside the parameter's validity bounds.
        """
        if not isinstance(ranges, Mapping):
            raise TypeError(
                f"parameter ranges for family {self.name!r} must be a mapping name -> (lo, hi), "
                f"got {type(ranges).__name__}."
            )
        full = {k: self._check_range(k, v) for k, v in self.param_ranges.items()}
        for key, value in ranges.items():
            full[key] = self._check_range(key, value)
        return full

    def _check_range(self, key: str, value: object) -> tuple[float, float]:
        if key not in self.param_names:
            raise ValueError(
                f"unknown parameter {key!r} for family {self.name!r}; expected one of "
                f"{list(self.param_names)}."
            )
        try:
            arr = np.asarray(value, dtype=float)
            if arr.ndim == 0:
                lo = hi = float(arr)
            elif arr.shape == (2,):
                lo, hi = float(arr[0]), float(arr[1])
            else:
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(
                f"parameter {key!r} of family {self.name!r}: expected a number or a (lo, hi) "
                f"pair, got {value!r}."
            ) from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(
                f"parameter {key!r} of family {self.name!r} must be finite, got ({lo}, {hi})."
            )
        if lo > hi:
            raise ValueError(
                f"parameter {key!r} of family {self.name!r}: lo={lo} > hi={hi}; "
                "give (lo, hi) with lo <= hi."
            )
        bmin, bmax = self.param_bounds.get(key, (-math.inf, math.inf))
        if not (bmin < lo and hi < bmax):
            raise ValueError(
                f"parameter {key!r} of family {self.name!r} must lie in the open interval "
                f"({bmin}, {bmax}), got ({lo}, {hi})."
            )
        return lo, hi

    def sample_params(
        self, n: int, rng: np.random.Generator, ranges: Mapping[str, object] | None = None
    ) -> np.ndarray:
        """``[n, P]`` parameter vectors drawn uniformly from the (validated) box."""
        box = self.check_ranges(ranges or {})
        lo = np.array([box[k][0] for k in self.param_names])
        hi = np.array([box[k][1] for k in self.param_names])
        return lo + (hi - lo) * rng.random((n, self.num_params))

    def to_units(self, y: np.ndarray) -> np.ndarray:
        """States in the family's stored units: ``(y - offset) / scale`` over the last axis."""
        return (y - np.asarray(self.offset)) / np.asarray(self.scale)

    def from_units(self, z: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_units`."""
        return z * np.asarray(self.scale) + np.asarray(self.offset)

    def sample_ics(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``[n, D]`` initial conditions drawn uniformly from ``ic_ranges`` (then transformed)."""
        lo = np.array([r[0] for r in self.ic_ranges])
        hi = np.array([r[1] for r in self.ic_ranges])
        y0 = lo + (hi - lo) * rng.random((n, self.state_dim))
        return self.ic_transform(y0) if self.ic_transform is not None else y0


#: the ODE family registry: name -> :class:`ODEFamily` (written once at import, read afterwards)
FAMILIES: Registry[ODEFamily] = Registry("ODE family")


def register_family(family: ODEFamily) -> ODEFamily:
    """Register ``family`` under its name (a name registered twice warns; the later one wins).

    ``FAMILIES.create(name)`` then returns ``family``, and ``FAMILIES.create(name, **fields)``
    a copy with other fields (e.g. another default ``param_ranges``), validated anew.
    """

    def build(**fields: object) -> ODEFamily:
        return dataclasses.replace(family, **fields) if fields else family

    FAMILIES.register(family.name, build, help=family.description)
    return family


def list_families(pattern: str = "*") -> list[str]:
    """Registered family names matching a shell-style wildcard.

    The ten built-in families come first, in the order of :data:`~.families.FAMILY_NAMES`
    (the order ``"all"`` generates them in), then any others, sorted.

    Examples:
        >>> from moesuite.physics import odes
        >>> odes.list_families("l*")
        ['lotka_volterra', 'lorenz']
    """
    from moesuite.physics.data.odes.families import FAMILY_NAMES

    names = FAMILIES.list(pattern)
    return [n for n in FAMILY_NAMES if n in names] + [n for n in names if n not in FAMILY_NAMES]


def get_family(name: str) -> ODEFamily:
    """The family registered as ``name``; one ``ValueError`` listing the valid names otherwise."""
    return FAMILIES.create(name)


def parse_families(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Family names from ``"all"``, a comma-separated string or a list; validated, de-duplicated.

    Examples:
        >>> parse_families("van_der_pol, lorenz")
        ('van_der_pol', 'lorenz')
        >>> len(parse_families("all"))
        10
    """
    if isinstance(spec, str):
        if spec.strip().lower() == "all":
            return tuple(list_families())
        names = [s.strip() for s in spec.split(",") if s.strip()]
    elif isinstance(spec, (list, tuple)):
        names = [str(s).strip() for s in spec]
    else:
        raise TypeError(
            "families must be 'all', a comma-separated string or a list, "
            f"got {type(spec).__name__}."
        )
    if not names:
        raise ValueError(
            f"families {spec!r} names no family; expected 'all' or some of {list_families()}."
        )
    out: list[str] = []
    for n in names:
        get_family(n)
        if n not in out:
            out.append(n)
    return tuple(out)
