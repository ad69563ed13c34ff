"""The built-in offline dataset: multivariate hourly series with structure a forecaster can learn.

Each channel is a sum of

- a slow trend (a random-slope line plus a slow sinusoid),
- several periodicities (daily, weekly and a channel-specific one) with random phases,
- regime switches: a Markov chain over regimes that changes the level and the amplitude of the
  daily cycle (non-stationarity),
- an exogenous driver: a smooth AR(1) series ``u`` entering every channel with a lag of
  ``driver_lag`` steps (``beta_c * u[t - lag]``), exposed as the covariate column ``driver``,
  so cross-attention over covariates has something to find,
- a little Gaussian noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from moesuite.timeseries.data.table import SeriesTable

__all__ = ["make_synthetic"]


def make_synthetic(
    n_steps: int = 4000,
    n_channels: int = 4,
    seed: int = 0,
    noise: float = 0.1,
    driver_lag: int = 24,
    n_regimes: int = 3,
    start: str = "2020-01-01",
) -> SeriesTable:
    """Generate the synthetic hourly dataset (targets ``ch0..``, covariate ``driver``).

    Args:
        n_steps: rows.
        n_channels: target channels ``C``.
        seed: random seed (same seed, same data).
        noise: standard deviation of the observation noise.
        driver_lag: delay (steps) with which the driver acts on the targets.
        n_regimes: regimes of the switching level/amplitude.
        start: first timestamp.

    Examples:
        >>> t = make_synthetic(n_steps=500, n_channels=3, seed=1)
        >>> t.values.shape, t.columns, t.covariate_columns
        ((500, 3), ['ch0', 'ch1', 'ch2'], ['driver'])
    """
    if n_steps < 10 or n_channels < 1:
        raise ValueError(f"need n_steps >= 10 and n_channels >= 1, got {n_steps}, {n_channels}.")
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps, dtype=np.float64)
    # exogenous driver: smooth AR(1)
    u = np.zeros(n_steps + driver_lag)
    eps = rng.normal(0, 1, n_steps + driver_lag)
    for i in range(1, len(u)):
        u[i] = 0.97 * u[i - 1] + 0.25 * eps[i]
    driver = u[driver_lag:]
    lagged = u[:n_steps]
    # regimes: sticky Markov chain
    regimes = np.zeros(n_steps, dtype=int)
    stay = 1.0 - 1.0 / 300.0
    for i in range(1, n_steps):
        regimes[i] = regimes[i - 1] if rng.random() < stay else rng.integers(n_regimes)
    level = rng.normal(0, 1.0, (n_regimes, n_channels))
    amp = rng.uniform(0.5, 1.5, (n_regimes, n_channels))
    values = np.zeros((n_steps, n_channels))
    for c in range(n_channels):
        slope = rng.normal(0, 1.0) / n_steps
        trend = slope * t + 0.5 * np.sin(
            2 * np.pi * t / (n_steps * rng.uniform(0.5, 1.5)) + rng.uniform(0, 6.3)
        )
        period_c = rng.choice([12.0, 8.0, 36.0])
        season = (
            amp[regimes, c] * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 6.3))
            + 0.5 * np.sin(2 * np.pi * t / 168 + rng.uniform(0, 6.3))
            + 0.3 * np.sin(2 * np.pi * t / period_c + rng.uniform(0, 6.3))
        )
        beta = rng.uniform(0.5, 1.0) * rng.choice([-1.0, 1.0])
        values[:, c] = (
            trend + season + level[regimes, c] + beta * lagged + rng.normal(0, noise, n_steps)
        )
    return SeriesTable(
        timestamps=pd.date_range(start, periods=n_steps, freq="h"),
        values=values,
        columns=[f"ch{c}" for c in range(n_channels)],
        covariates=driver[:, None],
        covariate_columns=["driver"],
        known_covariates=[],
        name="synthetic",
    )
