"""The ten parametric ODE families: shapes, physics of the generated data, bad parameters."""

import numpy as np
import pytest

from moesuite.physics import odes
from moesuite.physics.data.odes import (
    FAMILY_NAMES,
    GenerationConfig,
    generate,
    get_family,
    simulate_family,
)


def test_ten_families_registered():
    assert len(FAMILY_NAMES) == 10
    assert odes.list_families() == list(FAMILY_NAMES)
    assert {get_family(n).state_dim for n in FAMILY_NAMES} == {2, 3}


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_family_generates_finite_trajectories_of_the_right_shape(name):
    family = get_family(name)
    ds = generate(
        families=name,
        n_train_envs=3,
        n_adapt_envs=2,
        n_train_ics=2,
        n_test_ics=1,
        n_shots=1,
        n_times=7,
    )
    D = family.state_dim
    assert ds.state_dim == D and ds.n_times == 7
    assert ds.split("train").shape == (3, 2, 7, D)
    assert ds.split("test").shape == (3, 1, 7, D)
    assert ds.split("adapt").shape == (2, 1, 7, D)
    assert ds.split("adapt_test").shape == (2, 1, 7, D)
    for split in odes.SPLITS:
        assert np.isfinite(ds.split(split)).all()
    # parameters are inside the family's box and differ between environments
    params = np.concatenate([ds.train.params, ds.adapt.params])[:, : family.num_params]
    for j, p in enumerate(family.param_names):
        lo, hi = family.param_ranges[p]
        assert (params[:, j] >= lo).all() and (params[:, j] <= hi).all()
    assert len({tuple(p) for p in params}) == len(params)
    # the stored dt is the family's span over n_times - 1 intervals, in its time unit
    assert np.allclose(ds.train.dt, family.t_end / family.time_unit / 6)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_trajectories_solve_the_family_ode(name):
    """Fourth-order central differences of a finely sampled solution match the right-hand side."""
    family = get_family(name)
    rng = np.random.default_rng(0)
    p = family.sample_params(2, rng)
    y0 = family.sample_ics(2, rng)
    t, y = simulate_family(name, p, y0, 801)
    h = t[1] - t[0]
    deriv = (-y[:, 4:] + 8 * y[:, 3:-1] - 8 * y[:, 1:-3] + y[:, :-4]) / (12 * h)
    mid = y[:, 2:-2]
    rhs = np.stack([family.rhs(mid[:, k], p) for k in range(mid.shape[1])], axis=1)
    scale = np.abs(rhs).max()
    assert np.abs(deriv - rhs).max() < 1e-4 * scale
    assert np.allclose(y[:, 0], y0)


def test_sir_conserves_population_and_lotka_volterra_stays_positive():
    ds = generate(families="sir,lotka_volterra", n_train_envs=2, n_adapt_envs=1, n_times=10)
    sir = get_family("sir").from_units(ds.train.fit[ds.train.family == 0])  # undo the stored units
    assert np.allclose(sir.sum(-1), 1.0, atol=1e-5)
    lv = get_family("lotka_volterra").from_units(ds.train.fit[ds.train.family == 1][..., :2])
    assert (lv > 0).all()
    assert (ds.train.fit[ds.train.family == 1][..., 2] == 0).all()  # padding stays zero


def test_seeded_and_independent_of_the_other_families():
    a = generate(families="duffing", n_train_envs=2, n_adapt_envs=1, n_times=5, seed=3)
    b = generate(families="lorenz,duffing", n_train_envs=2, n_adapt_envs=1, n_times=5, seed=3)
    c = generate(families="duffing", n_train_envs=2, n_adapt_envs=1, n_times=5, seed=4)
    assert np.array_equal(a.train.fit[..., :2], b.train.fit[b.train.family == 1][..., :2])
    assert not np.allclose(a.train.fit, c.train.fit)


def test_unknown_family_is_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown ODE family 'lorenz96'.*lotka_volterra"):
        generate(families="lorenz96")
    with pytest.raises(ValueError, match="unknown ODE family"):
        odes.parse_families("van_der_pol,nope")
    with pytest.raises(ValueError, match="names no family"):
        odes.parse_families(" , ")
    assert odes.parse_families("all") == FAMILY_NAMES


@pytest.mark.parametrize(
    "ranges, message",
    [
        ({"lorenz": {"kappa": (1, 2)}}, r"unknown parameter 'kappa' for family 'lorenz'.*sigma"),
        ({"lorenz": {"rho": (30, 20)}}, r"lo=30.0 > hi=20.0"),
        ({"lorenz": {"rho": (-5, 20)}}, r"open interval \(0.0, inf\)"),
        ({"lorenz": {"rho": (float("nan"), 20)}}, "must be finite"),
        ({"lorenz": {"rho": (1, 2, 3)}}, r"a number or a \(lo, hi\) pair"),
        ({"lorenz": {"rho": "high"}}, r"a number or a \(lo, hi\) pair"),
        ({"van_der_pol": {"mu": 1.0}}, "fix every parameter"),
        ({"rossler": {"a": (0.1, 0.2)}}, "not generated"),
    ],
)
def test_bad_parameters_are_refused(ranges, message):
    fams = "lorenz,van_der_pol"
    with pytest.raises(ValueError, match=message):
        GenerationConfig(families=fams, param_ranges=ranges)


def test_parameter_override_is_used():
    ds = generate(
        families="van_der_pol",
        n_train_envs=3,
        n_adapt_envs=1,
        n_times=4,
        param_ranges={"van_der_pol": {"mu": (1.5, 1.6)}},
    )
    assert (ds.train.params[:, 0] >= 1.5).all() and (ds.train.params[:, 0] <= 1.6).all()
    assert ds.config["param_ranges"]["van_der_pol"]["mu"] == (1.5, 1.6)


@pytest.mark.parametrize(
    "field, value",
    [("n_train_envs", 0), ("n_times", 1), ("noise", -0.1), ("method", "Euler"), ("n_shots", 1.5)],
)
def test_bad_generation_settings(field, value):
    with pytest.raises(ValueError, match=field if field != "method" else "method"):
        GenerationConfig(families="sir", **{field: value})
