"""Generate multi-environment ODE datasets with ``scipy.integrate.solve_ivp``.

Per family: ``n_train_envs + n_adapt_envs`` parameter vectors drawn uniformly from the
family's box; per environment, initial conditions drawn uniformly from the family's IC box
(``n_train_ics + n_test_ics`` for training environments, ``n_shots + n_test_ics`` for
adaptation environments). All trajectories of a family are integrated in one ``solve_ivp``
call (one stacked system), sampled at ``n_times`` uniform times on ``[0, t_end]``, expressed in
the family's units (``(y - offset) / scale``) and zero-padded to the common state size; the
stored time step is in the family's ``time_unit``.

Randomness is seeded per family from ``(seed, family name)``, so a family's environments do
not depend on which other families are generated with it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

from moesuite.physics.data.odes.dataset import EnvironmentSet, ODEDataset
from moesuite.physics.data.odes.families import FAMILY_NAMES
from moesuite.physics.data.odes.family import ODEFamily, get_family, parse_families

__all__ = ["GenerationConfig", "TrajectoryCounts", "assemble", "generate", "simulate_family"]

_METHODS = ("RK45", "DOP853", "Radau", "BDF", "LSODA")


@dataclass(frozen=True, kw_only=True)
class TrajectoryCounts:
    """Environments and trajectories per family, and how they are integrated.

    Attributes:
        n_train_envs: training environments per family (the paper's ODEBench uses 16).
        n_adapt_envs: adaptation environments per family (the paper uses 4).
        n_train_ics: trajectories per training environment used for training.
        n_test_ics: held-out trajectories per environment (in-domain and adaptation tests).
        n_shots: trajectories per adaptation environment used to fit its context.
        n_times: observations per trajectory, including ``t = 0``.
        noise: std of Gaussian observation noise added to the stored states (scaled units).
        method: ``solve_ivp`` method.
        rtol: relative tolerance of the solver.
        atol: absolute tolerance of the solver.
        seed: base seed.
    """

    n_train_envs: int = 8
    n_adapt_envs: int = 4
    n_train_ics: int = 8
    n_test_ics: int = 2
    n_shots: int = 1
    n_times: int = 20
    noise: float = 0.0
    method: str = "DOP853"
    rtol: float = 1e-8
    atol: float = 1e-10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train_envs", "n_adapt_envs", "n_train_ics", "n_test_ics", "n_shots"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not isinstance(self.n_times, int) or self.n_times < 2:
            raise ValueError(f"n_times must be an int >= 2, got {self.n_times!r}.")
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise must be a finite value >= 0, got {self.noise!r}.")
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}.")
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"rtol and atol must be > 0, got {self.rtol}, {self.atol}.")


@dataclass(frozen=True, kw_only=True)
class GenerationConfig(TrajectoryCounts):
    """How many environments and trajectories to generate, and how (:class:`TrajectoryCounts`).

    Attributes:
        families: family names (``"all"``, a comma-separated string or a tuple).
        param_ranges: per-family overrides ``{family: {param: (lo, hi) or value}}``.
    """

    families: tuple[str, ...] | str = FAMILY_NAMES
    param_ranges: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "families", parse_families(self.families))
        super().__post_init__()
        if not isinstance(self.param_ranges, Mapping):
            raise TypeError(
                "param_ranges must be a mapping family -> {param: (lo, hi)}, "
                f"got {type(self.param_ranges).__name__}."
            )
        for fam, ranges in self.param_ranges.items():
            if fam not in self.families:
                raise ValueError(
                    f"param_ranges names family {fam!r}, which is not generated; "
                    f"families are {list(self.families)}."
                )
            family = get_family(fam)
            box = family.check_ranges(ranges)
            if self.n_train_envs + self.n_adapt_envs > 1 and all(
                lo == hi for lo, hi in box.values()
            ):
                raise ValueError(
                    f"param_ranges fix every parameter of family {fam!r}: all its environments "
                    "would coincide; give at least one parameter a (lo, hi) range with lo < hi."
                )


def _family_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])


def simulate_family(
    name: str | ODEFamily,
    params: np.ndarray,
    y0: np.ndarray,
    n_times: int,
    *,
    method: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``N`` trajectories of one family at once.

    Args:
        name: family name, or an :class:`ODEFamily` (e.g. one of ODEBench-2D's).
        params: ``[N, P]`` parameters of each trajectory.
        y0: ``[N, D]`` initial conditions (the family's own units, not scaled).
        n_times: samples on ``[0, t_end]``.
        method: ``solve_ivp`` method.
        rtol: relative tolerance.
        atol: absolute tolerance.

    Returns:
        ``(t[n_times], y[N, n_times, D])`` in the family's own units.

    Examples:
        >>> import numpy as np
        >>> t, y = simulate_family("van_der_pol", np.array([[1.0]]), np.array([[2.0, 0.0]]), 5)
        >>> y.shape, round(float(t[-1]), 1)
        ((1, 5, 2), 10.0)
    """
    family = name if isinstance(name, ODEFamily) else get_family(name)
    name = family.name
    params = np.asarray(params, dtype=np.float64)
    y0 = np.asarray(y0, dtype=np.float64)
    N, D = y0.shape[0], family.state_dim
    if params.shape != (N, family.num_params) or y0.shape != (N, D):
        raise ValueError(
            f"family {name!r}: params must be [N, {family.num_params}] and y0 [N, {D}], got "
            f"{params.shape} and {y0.shape}."
        )
    t_eval = np.linspace(0.0, family.t_end, n_times)

    def rhs(_t: float, flat: np.ndarray) -> np.ndarray:
        return family.rhs(flat.reshape(N, D), params).reshape(-1)

    sol = solve_ivp(
        rhs, (0.0, family.t_end), y0.reshape(-1), t_eval=t_eval, method=method, rtol=rtol, atol=atol
    )
    if not sol.success or sol.y.shape[1] != n_times or not np.isfinite(sol.y).all():
        raise RuntimeError(
            f"solve_ivp failed for family {name!r} ({sol.message}); narrow its parameter or "
            "initial-condition ranges."
        )
    y = sol.y.reshape(N, D, n_times).transpose(0, 2, 1)
    if np.abs(y).max() > 1e6:
        raise RuntimeError(
            f"family {name!r} diverges for the sampled parameters; narrow its param_ranges."
        )
    return t_eval, y


def generate(config: GenerationConfig | None = None, **overrides: object) -> ODEDataset:
    """Generate a multi-family, multi-environment dataset.

    Args:
        config: generation settings (defaults: all ten families, 8 + 4 environments each).
        **overrides: fields of :class:`GenerationConfig` replacing those of ``config``.

    Returns:
        An :class:`~moesuite.physics.data.odes.ODEDataset` with splits ``train``, ``test``,
        ``adapt`` and ``adapt_test``.

    Examples:
        >>> ds = generate(families="sir", n_train_envs=2, n_adapt_envs=1, n_times=4)
        >>> tuple(ds.split("adapt_test").shape), ds.families
        ((1, 2, 4, 3), ('sir',))
    """
    if config is None:
        config = GenerationConfig(**overrides)  # type: ignore[arg-type]
    elif overrides:
        config = GenerationConfig(**{**asdict(config), **overrides})  # type: ignore[arg-type]
    families = config.families
    assert isinstance(families, tuple)
    fams = [get_family(f) for f in families]
    env_params = []
    for family in fams:
        rng = _family_rng(config.seed, family.name)
        n_env = config.n_train_envs + config.n_adapt_envs
        params = family.sample_params(n_env, rng, config.param_ranges.get(family.name, {}))
        env_params.append((params[: config.n_train_envs], params[config.n_train_envs :], rng))
    train, adapt = assemble(fams, env_params, config)
    record = asdict(config)
    record["families"] = list(families)
    record["param_ranges"] = {
        f: get_family(f).check_ranges(config.param_ranges.get(f, {})) for f in families
    }
    return ODEDataset(families, train, adapt, record)


def assemble(
    fams: list[ODEFamily],
    env_params: list[tuple[np.ndarray, np.ndarray, np.random.Generator]],
    config: TrajectoryCounts,
) -> tuple[EnvironmentSet, EnvironmentSet]:
    """Integrate and stack the training and adaptation environments of several families.

    Args:
        fams: the families, in the dataset's order.
        env_params: per family ``(train_params [E, P], adapt_params [A, P], rng)``; the
            family's generator draws its initial conditions (and noise), in this order: the
            training environments' ``n_train_ics + n_test_ics``, then the adaptation
            environments' ``n_shots + n_test_ics``.
        config: counts of trajectories, times, noise and solver settings.

    Returns:
        ``(train, adapt)`` environment sets, padded to the largest state and parameter sizes.
    """
    D = max(f.state_dim for f in fams)
    P = max(f.num_params for f in fams)
    parts: dict[str, list[dict[str, np.ndarray]]] = {"train": [], "adapt": []}
    for index, (family, (p_train, p_adapt, rng)) in enumerate(zip(fams, env_params, strict=True)):
        kinds = (("train", p_train, config.n_train_ics), ("adapt", p_adapt, config.n_shots))
        ics, rows, counts = [], [], []
        for _kind, params, n_fit in kinds:
            for p in params:
                n_ic = n_fit + config.n_test_ics
                ics.append(family.sample_ics(n_ic, rng))
                rows.append(np.repeat(p[None], n_ic, axis=0))
                counts.append(n_ic)
        t, y = simulate_family(
            family,
            np.concatenate(rows),
            np.concatenate(ics),
            config.n_times,
            method=config.method,
            rtol=config.rtol,
            atol=config.atol,
        )
        y = family.to_units(y)
        if config.noise > 0:
            y = y + config.noise * rng.standard_normal(y.shape)
        y_pad = np.zeros(y.shape[:2] + (D,), dtype=np.float32)
        y_pad[..., : family.state_dim] = y
        per_env = np.split(y_pad, np.cumsum(counts)[:-1])
        env = 0
        for kind, params, n_fit in kinds:
            n_kind = len(params)
            block = np.stack(per_env[env : env + n_kind])  # [envs, n_fit + n_test, T, D]
            mask = np.zeros((n_kind, D), dtype=bool)
            mask[:, : family.state_dim] = True
            padded_params = np.full((n_kind, P), np.nan)
            padded_params[:, : family.num_params] = params
            parts[kind].append(
                {
                    "family": np.full(n_kind, index, dtype=np.int64),
                    "params": padded_params,
                    "dt": np.full(n_kind, (t[1] - t[0]) / family.time_unit),
                    "mask": mask,
                    "fit": block[:, :n_fit],
                    "test": block[:, n_fit:],
                }
            )
            env += n_kind
    train, adapt = (
        EnvironmentSet(
            *(
                np.concatenate([p[k] for p in parts[kind]])
                for k in ("family", "params", "dt", "mask", "fit", "test")
            )
        )
        for kind in ("train", "adapt")
    )
    return train, adapt
