"""Physics of the FLiDAR forward model: Green's functions, late-time slopes, photon totals."""

import numpy as np
import pytest

from moesuite.physics.data.flidar import (
    C0_MM_PER_NS,
    PARAM_NAMES,
    SimulationConfig,
    expected_counts,
    expected_shape,
    log_green_emission,
    log_green_excitation,
    simulate_counts,
)
from moesuite.physics.data.flidar.forward import fft_convolve

COL = {n: i for i, n in enumerate(PARAM_NAMES)}


def params(**kw):
    base = dict(
        depth_mm=5.0,
        tau_ns=1.0,
        mua_ex=0.01,
        musp_ex=1.0,
        mua_em=0.01,
        musp_em=1.0,
        n=1.4,
        irf_fwhm_ns=0.15,
        photons=1e4,
        background=0.0,
    )
    base.update(kw)
    return np.array([[base[n] for n in PARAM_NAMES]])


@pytest.mark.parametrize("green", [log_green_excitation, log_green_emission])
def test_green_peak_moves_later_with_depth(green):
    t = np.linspace(1e-3, 5.0, 20000)
    peaks = [t[np.argmax(green(d, 0.01, 1.0, 1.4, t))] for d in (2.0, 5.0, 10.0, 15.0, 20.0)]
    assert np.all(np.diff(peaks) > 0)


def test_excitation_peak_solves_the_analytic_stationarity_condition():
    # G_ex ~ t^-3/2 exp(-mu_a v t) (exp(-a/t) - exp(-b/t)),
    # a = (d - z0)^2/4Dv, b = (d + z0 + 2 z_e)^2/4Dv;
    # its peak is the root of the analytic d/dt log G_ex (solved here independently with brentq)
    from scipy.optimize import brentq

    from moesuite.physics.data.flidar.forward import boundary_coefficient

    mua, musp, n, d = 0.01, 1.0, 1.4, 12.0
    D, v = 1 / (3 * (mua + musp)), C0_MM_PER_NS / n
    z0, ze = 1 / musp, 2 * boundary_coefficient(n) * D
    a, b = (d - z0) ** 2 / (4 * D * v), (d + z0 + 2 * ze) ** 2 / (4 * D * v)

    def dlog(t):
        ea, eb = np.exp(-a / t), np.exp(-b / t)
        return -1.5 / t - mua * v + (a * ea - b * eb) / (t**2 * (ea - eb))

    expected = brentq(dlog, 0.01, 5.0)
    t = np.linspace(1e-3, 3.0, 300001)
    assert t[np.argmax(log_green_excitation(d, mua, musp, n, t))] == pytest.approx(
        expected, abs=2e-5
    )


def test_histogram_peak_grows_with_depth():
    depths = [2.0, 5.0, 10.0, 15.0, 20.0]
    peaks = [expected_shape(params(depth_mm=d)).argmax() for d in depths]
    assert np.all(np.diff(peaks) > 0)


@pytest.mark.parametrize(
    ("green", "power"), [(log_green_excitation, 1.5), (log_green_emission, 2.5)]
)
def test_green_late_log_slope_is_absorption(green, power):
    mua, n = 0.02, 1.4
    v = C0_MM_PER_NS / n
    t = np.array([20.0, 20.01])
    slope = np.diff(green(8.0, mua, 1.0, n, t))[0] / 0.01
    # d/dt log G -> -mu_a v - power / t (+ O(d^2 / t^2))
    assert slope == pytest.approx(-mua * v - power / t[0], rel=0.02)


def test_signal_late_slope_follows_the_slowest_decay():
    # 1/tau = 0.67/ns is much slower than mu_a v = 6.4/ns: the tail decays with the lifetime
    cfg = SimulationConfig(n_bins=512, bin_width_ns=0.05)
    for tau in (1.5, 2.0):
        s = expected_shape(params(tau_ns=tau, mua_ex=0.03, mua_em=0.03), cfg)[0]
        t = cfg.bin_centers_ns
        late = (t > 12) & (t < 20)
        slope = np.polyfit(t[late], np.log(s[late]), 1)[0]
        assert slope == pytest.approx(-1 / tau, rel=0.03)


def test_expected_counts_total_the_requested_photons():
    p = np.concatenate(
        [params(photons=1e3, background=0.0), params(photons=5e4, background=0.05, depth_mm=15.0)]
    )
    lam = expected_counts(p)
    np.testing.assert_allclose(lam.sum(1), [1e3, 5e4], rtol=1e-10)
    # background is spread uniformly: its share of each bin is photons * bg / n_bins
    assert lam[1].min() >= 5e4 * 0.05 / 256 - 1e-9


def test_poisson_totals_scatter_around_the_photon_count():
    p = np.repeat(params(photons=2000.0, background=0.02), 400, axis=0)
    totals = simulate_counts(p, seed=0).sum(1)
    assert totals.mean() == pytest.approx(2000.0, abs=3 * np.sqrt(2000.0 / 400))
    assert totals.var() == pytest.approx(2000.0, rel=0.25)  # Poisson: variance = mean


def test_convolution_conserves_area_and_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = np.zeros(64), np.zeros(64)
    a[:20], b[:20] = rng.random(20), rng.random(20)
    dt = 0.1
    c = fft_convolve([a, b], dt)
    assert c.sum() * dt == pytest.approx(a.sum() * dt * b.sum() * dt, rel=1e-12)
    np.testing.assert_allclose(c, np.convolve(a, b)[:64] * dt, atol=1e-12)


def test_irf_width_blurs_but_keeps_the_timing():
    narrow = expected_shape(params(irf_fwhm_ns=0.1))[0]
    wide = expected_shape(params(irf_fwhm_ns=0.3))[0]
    t = SimulationConfig().bin_centers_ns
    assert narrow.max() > wide.max()
    assert (narrow * t).sum() == pytest.approx((wide * t).sum(), abs=0.02)  # mean time preserved


def test_longer_lifetime_delays_the_mean_arrival_by_the_lifetime_difference():
    cfg = SimulationConfig(n_bins=1024, bin_width_ns=0.05)
    t = cfg.bin_centers_ns
    m1 = (expected_shape(params(tau_ns=0.5), cfg)[0] * t).sum()
    m2 = (expected_shape(params(tau_ns=1.5), cfg)[0] * t).sum()
    assert m2 - m1 == pytest.approx(1.0, rel=0.02)  # means add under convolution


def test_simulation_is_fast_enough_to_vectorise():
    from moesuite.physics.data.flidar import sample_params

    p = sample_params(2000, seed=0)
    assert simulate_counts(p, seed=0).shape == (2000, 256)
