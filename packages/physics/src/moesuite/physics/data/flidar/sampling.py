"""Random parameter tables over the configured ranges."""

from __future__ import annotations

import numpy as np

from moesuite.physics.data.flidar.config import PARAM_NAMES, SimulationConfig

__all__ = ["sample_params"]


def sample_params(
    n: int, config: SimulationConfig | None = None, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """``[n, len(PARAM_NAMES)]`` parameters drawn uniformly from ``config.ranges``.

    Photon counts are drawn log-uniformly; the emission optics equal the excitation ones unless
    ``config.independent_emission``.

    Examples:
        >>> p = sample_params(1000, seed=0)
        >>> p.shape, bool(p[:, 0].min() >= 1.0 and p[:, 0].max() <= 20.0)
        ((1000, 10), True)
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (number of signals), got {n!r}.")
    config = config or SimulationConfig()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    r = config.ranges
    out = np.empty((int(n), len(PARAM_NAMES)))
    for j, name in enumerate(PARAM_NAMES):
        if name in ("mua_em", "musp_em"):
            continue
        lo, hi = r[name]
        if name == "photons":
            out[:, j] = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        else:
            out[:, j] = rng.uniform(lo, hi, n)
    ex = {"mua_em": PARAM_NAMES.index("mua_ex"), "musp_em": PARAM_NAMES.index("musp_ex")}
    for name, src in ex.items():
        j = PARAM_NAMES.index(name)
        if config.independent_emission:
            lo, hi = r.get(name, r[PARAM_NAMES[src]])
            out[:, j] = rng.uniform(lo, hi, n)
        else:
            out[:, j] = out[:, src]
    return out
