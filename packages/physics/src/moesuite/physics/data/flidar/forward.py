"""The FLiDAR forward model in numpy: diffusion Green's functions, decay, IRF, photon counts.

A TCSPC histogram of a fluorescent inclusion at depth ``d`` below the surface of a
semi-infinite turbid medium, excited by a pencil beam and detected in reflection on axis::

    s(t) = IRF(t) * [ G_ex(d, t) * F_tau(t) * G_em(d, t) ]        (* is convolution in time)

* ``G_ex(d, t)``: fluence rate at depth ``d`` after a unit pulse enters at the surface, from
  the time-domain diffusion approximation with an extrapolated boundary (Patterson, Chance &
  Wilson 1989; Contini et al. 1997): isotropic source at ``z0 = 1/mu_s'``, negative image at
  ``-(z0 + 2 z_e)``, ``z_e = 2 A D``, ``D = 1 / (3 (mu_a + mu_s'))``, speed ``v = c0 / n``::

      G_ex = v (4 pi D v t)^(-3/2) exp(-mu_a v t)
             [exp(-(d - z0)^2 / 4Dvt) - exp(-(d + z0 + 2 z_e)^2 / 4Dvt)]

* ``G_em(d, t)``: photon flux leaving the surface on axis from a unit isotropic point source at
  depth ``d`` (Fick's law on the same solution, emission-wavelength optics)::

      G_em = 1/2 (4 pi D v)^(-3/2) t^(-5/2) exp(-mu_a v t)
             [d exp(-d^2 / 4Dvt) + (d + 2 z_e) exp(-(d + 2 z_e)^2 / 4Dvt)]

* ``F_tau(t) = exp(-t / tau) / tau``; ``IRF``: a unit-area Gaussian of the given FWHM centred on
  the laser time ``t_offset_ns`` (or a measured IRF given per bin).

All convolutions run on a grid of ``n_bins * oversample`` sub-bins (midpoint samples, one FFT
per signal), the histogram is the sum of each bin's sub-bins, normalised so that the expected
counts are ``photons * ((1 - background) * shape + background / n_bins)`` and total exactly
``photons``; :func:`simulate_counts` adds Poisson noise.

Physics note: convolving decays does not add their rates. The late-time log slope of ``G``
alone tends to ``-mu_a v`` (with a ``-3/(2t)`` correction); that of the full signal tends to
``-min(1/tau, mu_a,ex v, mu_a,em v)`` (the slowest component), which is ``-1/tau`` for most of the
default ranges. The spec's ``-1/tau - mu_a c`` would hold only if the emission and absorption
clocks ran simultaneously, which they do not in this model.

Valid where the diffusion approximation is (``d`` larger than a few transport mean free paths
``1 / mu_s'`` and ``mu_a << mu_s'``); shallower inclusions are computed but less accurate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from moesuite.physics.data.flidar.config import (
    C0_MM_PER_NS,
    PARAM_NAMES,
    SimulationConfig,
    validate_params,
)

__all__ = [
    "boundary_coefficient",
    "log_green_excitation",
    "log_green_emission",
    "expected_shape",
    "expected_counts",
    "simulate_counts",
    "fine_times",
    "irf_on_grid",
    "fft_convolve",
]

_COL = {name: j for j, name in enumerate(PARAM_NAMES)}


def boundary_coefficient(n: Any, xp: Any = np) -> Any:
    """``A = (1 + R_eff) / (1 - R_eff)`` with Groenhuis' ``R_eff`` for a tissue/air interface."""
    r_eff = -1.440 / n**2 + 0.710 / n + 0.668 + 0.0636 * n
    return (1 + r_eff) / (1 - r_eff)


def _diffusion(mua: Any, musp: Any, n: Any, xp: Any) -> tuple[Any, Any, Any]:
    D = 1.0 / (3.0 * (mua + musp))
    v = C0_MM_PER_NS / n
    ze = 2.0 * boundary_coefficient(n, xp) * D
    return D, v, ze


def log_green_excitation(depth: Any, mua: Any, musp: Any, n: Any, t: Any, xp: Any = np) -> Any:
    """``log G_ex`` (fluence rate, 1/(mm^2 ns)) at times ``t > 0`` (ns); arguments broadcast.

    Examples:
        >>> t = np.array([0.2, 0.5, 1.0])
        >>> np.round(np.exp(log_green_excitation(5.0, 0.01, 1.0, 1.4, t)), 4)
        array([0.0354, 0.0033, 0.0002])
    """
    D, v, ze = _diffusion(mua, musp, n, xp)
    z0 = 1.0 / musp
    fourDvt = 4.0 * D * v * t
    a = (depth - z0) ** 2 / fourDvt
    b = (depth + z0 + 2.0 * ze) ** 2 / fourDvt
    # log[exp(-a) - exp(-b)] = -a + log(1 - exp(a - b)), b > a for every depth >= 0
    return xp.log(v) - 1.5 * xp.log(np.pi * fourDvt) - mua * v * t - a + xp.log(-xp.expm1(a - b))


def log_green_emission(depth: Any, mua: Any, musp: Any, n: Any, t: Any, xp: Any = np) -> Any:
    """``log G_em`` (surface flux, 1/(mm^2 ns)) at times ``t > 0`` (ns); arguments broadcast."""
    D, v, ze = _diffusion(mua, musp, n, xp)
    fourDvt = 4.0 * D * v * t
    z1 = depth
    z2 = depth + 2.0 * ze
    a = z1**2 / fourDvt
    b = z2**2 / fourDvt
    # log[z1 exp(-a) + z2 exp(-b)] = log z1 - a + log(1 + (z2/z1) exp(a - b))
    return (
        np.log(0.5)
        - 1.5 * xp.log(4 * np.pi * D * v)
        - 2.5 * xp.log(t)
        - mua * v * t
        + xp.log(z1)
        - a
        + xp.log1p((z2 / z1) * xp.exp(a - b))
    )


def fine_times(config: SimulationConfig) -> np.ndarray:
    """``[n_bins * oversample]`` midpoint times (ns) of the internal sub-bin grid."""
    dt = config.bin_width_ns / config.oversample
    return (np.arange(config.n_bins * config.oversample) + 0.5) * dt


def irf_on_grid(
    config: SimulationConfig, fwhm_ns: np.ndarray | None = None, irf: np.ndarray | None = None
) -> np.ndarray:
    """IRF samples on the sub-bin grid, unit area; ``[N, M]`` for Gaussians or ``[1, M]`` measured.

    The Gaussian is centred ``1.5`` sub-bins before ``t_offset_ns``: the four midpoint-sampled
    factors of the convolution add ``2`` sub-bins of delay and the result is read at sub-bin
    midpoints, so the net shift cancels. A measured ``irf`` (``[n_bins]``, counts per bin
    with its peak at the laser time) is spread evenly over each bin's sub-bins.
    """
    M = config.n_bins * config.oversample
    dt = config.bin_width_ns / config.oversample
    if irf is not None:
        irf = np.asarray(irf, dtype=np.float64)
        if irf.ndim != 1 or irf.shape[0] != config.n_bins:
            raise ValueError(
                f"irf: expected a 1-D array of n_bins={config.n_bins} values, "
                f"got shape {irf.shape}."
            )
        if not np.all(np.isfinite(irf)) or (irf < 0).any() or irf.sum() <= 0:
            raise ValueError("irf: values must be finite, >= 0 and not all zero.")
        fine = np.repeat(irf, config.oversample)
        # measured IRFs give the delay relative to bin 0; drop the 2-sub-bin convolution delay
        fine = np.concatenate([fine[2:], np.zeros(2)]) if M > 2 else fine
        return (fine / (fine.sum() * dt))[None, :]
    sigma = np.asarray(fwhm_ns, dtype=np.float64)[:, None] / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    t = fine_times(config)[None, :] - (config.t_offset_ns - 1.5 * dt)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    return g / (g.sum(axis=1, keepdims=True) * dt)


def fft_convolve(arrays: list[np.ndarray], dt: float) -> np.ndarray:
    """Linear convolution ``dt^(k-1) (a_1 * ... * a_k)`` along the last axis, first ``M`` samples.

    Each ``a_i`` is ``[..., M]`` (broadcasting over leading axes); one zero-padded FFT.

    Examples:
        >>> a, b = np.array([[1.0, 2.0, 0.0]]), np.array([[0.5, 0.5, 0.0]])
        >>> np.round(fft_convolve([a, b], 1.0), 6).tolist()
        [[0.5, 1.5, 1.0]]
    """
    M = arrays[0].shape[-1]
    nfft = 1 << int(np.ceil(np.log2(2 * M)))
    spec = np.fft.rfft(arrays[0], nfft, axis=-1)
    for a in arrays[1:]:
        spec = spec * np.fft.rfft(a, nfft, axis=-1) * dt
    return np.fft.irfft(spec, nfft, axis=-1)[..., :M]


def _components(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = {k: p[:, j : j + 1] for k, j in _COL.items()}
    lex = log_green_excitation(c["depth_mm"], c["mua_ex"], c["musp_ex"], c["n"], t)
    lem = log_green_emission(c["depth_mm"], c["mua_em"], c["musp_em"], c["n"], t)
    ldec = -t / c["tau_ns"] - np.log(c["tau_ns"])
    # scale each row by its maximum: the histogram is normalised at the end anyway, and this
    # keeps deep, absorbing cases far from float underflow
    return tuple(np.exp(x - x.max(axis=1, keepdims=True)) for x in (lex, ldec, lem))  # type: ignore[return-value]


def expected_shape(
    params: np.ndarray,
    config: SimulationConfig | None = None,
    irf: np.ndarray | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Noise-free, background-free histogram shapes ``[N, n_bins]`` (each row sums to 1).

    Args:
        params: ``[N, len(PARAM_NAMES)]`` table (see :data:`PARAM_NAMES`); validated.
        config: time grid (default :class:`SimulationConfig`).
        irf: optional measured IRF ``[n_bins]`` replacing the Gaussian of ``irf_fwhm_ns``.
        chunk: signals per FFT batch (bounds memory).

    Examples:
        >>> from moesuite.physics.data.flidar.sampling import sample_params
        >>> p = sample_params(3, SimulationConfig(), seed=0)
        >>> s = expected_shape(p)
        >>> s.shape, np.allclose(s.sum(axis=1), 1.0)
        ((3, 256), True)
    """
    config = config or SimulationConfig()
    p = validate_params(params)
    t = fine_times(config)[None, :]
    dt = config.bin_width_ns / config.oversample
    out = np.empty((p.shape[0], config.n_bins))
    measured = irf_on_grid(config, irf=irf) if irf is not None else None
    for s in range(0, p.shape[0], chunk):
        pc = p[s : s + chunk]
        h = measured if measured is not None else irf_on_grid(config, pc[:, _COL["irf_fwhm_ns"]])
        fine = fft_convolve([*_components(pc, t), h], dt) * dt
        bins = (
            np.clip(fine, 0.0, None)
            .reshape(pc.shape[0], config.n_bins, config.oversample)
            .sum(axis=2)
        )
        total = bins.sum(axis=1, keepdims=True)
        if (total <= 0).any():
            i = s + int(np.flatnonzero(total[:, 0] <= 0)[0])
            raise ValueError(
                f"params[{i}]: no signal falls inside the {config.window_ns} ns window; "
                "lower the depth or absorption, or widen the window."
            )
        out[s : s + chunk] = bins / total
    return out


def expected_counts(
    params: np.ndarray, config: SimulationConfig | None = None, irf: np.ndarray | None = None
) -> np.ndarray:
    """Expected counts ``photons * ((1 - bg) * shape + bg / n_bins)``; rows total ``photons``."""
    config = config or SimulationConfig()
    p = validate_params(params)
    shape = expected_shape(p, config, irf)
    photons = p[:, _COL["photons"], None]
    bg = p[:, _COL["background"], None]
    return photons * ((1.0 - bg) * shape + bg / config.n_bins)


def simulate_counts(
    params: np.ndarray,
    config: SimulationConfig | None = None,
    seed: int | np.random.Generator | None = 0,
    irf: np.ndarray | None = None,
) -> np.ndarray:
    """Poisson-noisy TCSPC histograms ``[N, n_bins]`` (float32 counts).

    Examples:
        >>> from moesuite.physics.data.flidar.sampling import sample_params
        >>> p = sample_params(4, SimulationConfig(), seed=1)
        >>> h = simulate_counts(p, seed=1)
        >>> h.shape, h.dtype.name, bool((h >= 0).all())
        ((4, 256), 'float32', True)
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    lam = expected_counts(params, config, irf)
    return rng.poisson(lam).astype(np.float32)
