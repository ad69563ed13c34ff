"""Classical baseline: nonlinear least squares of the forward model, started from a grid.

Per histogram, fit ``theta = (depth_mm, tau_ns, mua, musp, background)`` (emission optics tied
to the excitation ones; refractive index and IRF width fixed at the middle of their ranges,
since the networks do not get them either; the photon count is the measured total) by
``scipy.optimize.least_squares`` on variance-stabilised Poisson residuals
``2 (sqrt(c) - sqrt(lambda(theta)))``. The start is the best of a template grid (found with one
matrix product). With ``known_optics`` the optics, refractive index and IRF width are set to
each signal's true values and only ``(depth, tau, background)`` are fitted. The 90% interval
is ``+- 1.645 sigma`` from the Gauss-Newton covariance
``(J^T J)^-1``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from moesuite.physics.data.flidar import (
    PARAM_NAMES,
    FLiDARDataset,
    SimulationConfig,
    expected_shape,
)

__all__ = ["LSQResult", "LeastSquaresFit", "lsq_fit", "FIT_PARAMS"]

FIT_PARAMS = ("depth_mm", "tau_ns", "mua_ex", "musp_ex", "background")
_Z90 = 1.6448536269514722


@dataclass(frozen=True)
class LSQResult:
    """``mean, lower, upper`` are ``[N, 2]`` (depth mm, tau ns); ``nfev[N]``; ``seconds`` total."""

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    nfev: np.ndarray
    seconds: float


def _full_params(
    theta: np.ndarray,
    photons: np.ndarray,
    config: SimulationConfig,
    truth: np.ndarray | None = None,
) -> np.ndarray:
    theta = np.atleast_2d(theta)
    p = np.empty((theta.shape[0], len(PARAM_NAMES)))
    col = PARAM_NAMES.index
    p[:, col("depth_mm")], p[:, col("tau_ns")] = theta[:, 0], theta[:, 1]
    p[:, col("mua_ex")] = p[:, col("mua_em")] = theta[:, 2]
    p[:, col("musp_ex")] = p[:, col("musp_em")] = theta[:, 3]
    p[:, col("background")] = theta[:, 4]
    p[:, col("n")] = np.mean(config.ranges["n"])
    p[:, col("irf_fwhm_ns")] = np.mean(config.ranges["irf_fwhm_ns"])
    p[:, col("photons")] = photons
    if truth is not None:  # known optics: overwrite with the signal's own values
        for name in ("mua_ex", "musp_ex", "mua_em", "musp_em", "n", "irf_fwhm_ns"):
            p[:, col(name)] = truth[col(name)]
    return p


def _grid(config: SimulationConfig) -> np.ndarray:
    r = config.ranges
    mid_bg = float(np.mean(r["background"]))
    axes = [
        np.linspace(*r["depth_mm"], 10),
        np.linspace(*r["tau_ns"], 6),
        np.geomspace(max(r["mua_ex"][0], 1e-3), r["mua_ex"][1], 2),
        np.linspace(*r["musp_ex"], 3),
    ]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 4)
    return np.concatenate([mesh, np.full((mesh.shape[0], 1), mid_bg)], axis=1)


def lsq_fit(
    dataset: FLiDARDataset, max_nfev: int = 40, progress: bool = False, known_optics: bool = False
) -> LSQResult:
    """Fit every histogram of ``dataset``; see the module docs.

    Examples:
        >>> from moesuite.physics.data.flidar import simulate_dataset
        >>> ds = simulate_dataset(2, SimulationConfig(n_bins=64, bin_width_ns=0.195), seed=0)
        >>> res = lsq_fit(ds, max_nfev=10)
        >>> res.mean.shape, bool((res.lower <= res.upper).all())
        ((2, 2), True)
    """
    config = dataset.config
    r = config.ranges
    start = time.perf_counter()
    counts = dataset.signals.astype(np.float64)
    photons = counts.sum(axis=1)
    grid = _grid(config)
    shapes = expected_shape(_full_params(grid, 1.0, config), config, dataset.irf)
    bg = grid[:, 4:5]
    q = (1 - bg) * shapes + bg / config.n_bins
    best = np.argmax(np.sqrt(counts) @ np.sqrt(q).T, axis=1)
    lo = np.array(
        [
            r["depth_mm"][0] * 0.5,
            r["tau_ns"][0] * 0.5,
            max(r["mua_ex"][0] * 0.5, 1e-4),
            r["musp_ex"][0] * 0.5,
            0.0,
        ]
    )
    hi = np.array(
        [
            r["depth_mm"][1] * 1.5,
            r["tau_ns"][1] * 1.5,
            r["mua_ex"][1] * 2,
            r["musp_ex"][1] * 2,
            min(0.5, 0.05 + 3 * r["background"][1]),
        ]
    )
    scale = hi - lo
    n = len(dataset)
    mean, sig, nfev = np.empty((n, 2)), np.empty((n, 2)), np.zeros(n, dtype=int)
    iterator = range(n)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="least squares", mininterval=2.0)
    if known_optics and dataset.params is None:
        raise ValueError("known_optics needs the dataset's params (the optics of each signal).")
    free = np.array([0, 1, 4]) if known_optics else np.arange(5)
    for i in iterator:
        c, N = counts[i], photons[i]
        truth = dataset.params[i] if known_optics else None
        x_full = np.clip(grid[best[i]], lo + 1e-6, hi - 1e-6)

        def resid(
            th: np.ndarray,
            c: np.ndarray = c,
            N: float = N,
            truth: np.ndarray | None = truth,
            x_full: np.ndarray = x_full,
        ) -> np.ndarray:
            theta = x_full.copy()
            theta[free] = th
            shape = expected_shape(_full_params(theta, N, config, truth), config, dataset.irf)[0]
            lam = N * ((1 - theta[4]) * shape + theta[4] / config.n_bins)
            return 2 * (np.sqrt(c) - np.sqrt(lam))

        sol = least_squares(
            resid,
            x_full[free],
            bounds=(lo[free], hi[free]),
            x_scale=scale[free],
            max_nfev=max_nfev,
            method="trf",
        )
        Jall = sol.jac
        dof = max(c.shape[0] - len(free), 1)
        s2 = max(float(sol.fun @ sol.fun) / dof, 1.0)  # inflate by over-dispersion
        cov = np.linalg.pinv(Jall.T @ Jall) * s2
        mean[i] = sol.x[:2]
        sig[i] = np.sqrt(np.clip(np.diag(cov)[:2], 0, None))
        nfev[i] = sol.nfev
    return LSQResult(mean, mean - _Z90 * sig, mean + _Z90 * sig, nfev, time.perf_counter() - start)


@dataclass(frozen=True)
class LeastSquaresFit:
    """The ``evidence-lsq`` baseline as an estimator: nothing to train, :func:`lsq_fit` per signal.

    Args:
        max_nfev: residual evaluations per fit.
        max_signals: signals fitted when scoring a dataset (the first ones: one nonlinear fit
            per signal is far slower than a network's prediction).
        known_optics: fit only ``(depth, tau, background)`` with each signal's optics given.
    """

    max_nfev: int = 40
    max_signals: int = 300
    known_optics: bool = False

    @property
    def num_params(self) -> int:
        """Fitted parameters per signal."""
        return 3 if self.known_optics else len(FIT_PARAMS)

    def fit(
        self, dataset: FLiDARDataset, progress: bool = False
    ) -> tuple[LSQResult, FLiDARDataset]:
        """Fit the first :attr:`max_signals` signals; returns the result and the signals scored."""
        scored = dataset.subset(slice(0, min(len(dataset), self.max_signals)))
        res = lsq_fit(scored, self.max_nfev, progress=progress, known_optics=self.known_optics)
        return res, scored
