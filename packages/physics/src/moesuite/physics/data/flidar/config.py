"""Simulation settings and the parameter table of the FLiDAR simulator, with validation.

Units used throughout :mod:`moesuite.physics.data.flidar`:

=================  ======  ===========================================================
quantity           unit    meaning
=================  ======  ===========================================================
``depth_mm``       mm      depth of the fluorescent inclusion below the surface
``tau_ns``         ns      fluorescence lifetime (mono-exponential decay)
``mua_ex/_em``     1/mm    absorption coefficient at excitation / emission wavelength
``musp_ex/_em``    1/mm    reduced scattering coefficient mu_s' at excitation / emission
``n``              --      refractive index of the medium (speed of light c0 / n)
``irf_fwhm_ns``    ns      full width at half maximum of the Gaussian IRF
``photons``        counts  expected total photon count of the histogram
``background``     --      fraction of the photons that are uniform background
=================  ======  ===========================================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PARAM_NAMES", "TARGETS", "SimulationConfig", "validate_params", "C0_MM_PER_NS"]

#: speed of light in vacuum, mm/ns
C0_MM_PER_NS = 299.792458

#: columns of every parameter table ``params[N, len(PARAM_NAMES)]``
PARAM_NAMES: tuple[str, ...] = (
    "depth_mm",
    "tau_ns",
    "mua_ex",
    "musp_ex",
    "mua_em",
    "musp_em",
    "n",
    "irf_fwhm_ns",
    "photons",
    "background",
)
#: the two quantities the estimators recover
TARGETS: tuple[str, ...] = ("depth_mm", "tau_ns")

# (lowest allowed, highest allowed) physical limits, independent of the sampling ranges
_PHYSICAL = {
    "depth_mm": (0.0, 200.0, False),  # (low, high, low inclusive?)
    "tau_ns": (0.0, 100.0, False),
    "mua_ex": (0.0, 10.0, True),
    "musp_ex": (0.0, 100.0, False),
    "mua_em": (0.0, 10.0, True),
    "musp_em": (0.0, 100.0, False),
    "n": (1.0, 3.0, True),
    "irf_fwhm_ns": (0.0, 10.0, False),
    "photons": (0.0, 1e12, False),
    "background": (0.0, 1.0, True),
}


def _default_ranges() -> dict[str, tuple[float, float]]:
    # tissue-like defaults of the design spec
    return {
        "depth_mm": (1.0, 20.0),
        "tau_ns": (0.3, 2.0),
        "mua_ex": (0.005, 0.05),
        "musp_ex": (0.5, 2.0),
        "n": (1.33, 1.44),
        "irf_fwhm_ns": (0.1, 0.3),
        "photons": (1e3, 1e5),  # sampled log-uniformly
        "background": (0.0, 0.05),
    }


@dataclass(frozen=True, kw_only=True)
class SimulationConfig:
    """Time grid and parameter ranges of the simulator.

    Attributes:
        n_bins: histogram bins (TCSPC channels).
        bin_width_ns: width of one bin in ns (48.8 ps by default: 256 bins cover 12.5 ns).
        oversample: sub-bins per bin of the internal grid the convolutions run on; the
            histogram is the sum of its sub-bins (a midpoint rule for the bin integrals).
        t_offset_ns: arrival time of the laser pulse (centre of the IRF) in the window.
        ranges: ``name -> (low, high)`` sampling ranges for :func:`sample_params`; missing
            names take the tissue-like defaults (emission optics default to the excitation
            ones unless ``independent_emission``).
        independent_emission: sample ``mua_em``/``musp_em`` independently from the
            ``mua_ex``/``musp_ex`` ranges (``False``: the emission optics equal the excitation
            ones).

    Examples:
        >>> cfg = SimulationConfig(n_bins=128)
        >>> cfg.window_ns, cfg.ranges["depth_mm"]
        (6.2464, (1.0, 20.0))
        >>> SimulationConfig(n_bins=0)
        Traceback (most recent call last):
        ...
        ValueError: n_bins must be an int >= 8, got 0.
    """

    n_bins: int = 256
    bin_width_ns: float = 0.0488
    oversample: int = 4
    t_offset_ns: float = 0.5
    ranges: dict[str, tuple[float, float]] = field(default_factory=_default_ranges)
    independent_emission: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.n_bins, int) or self.n_bins < 8:
            raise ValueError(f"n_bins must be an int >= 8, got {self.n_bins!r}.")
        if not self.bin_width_ns > 0:
            raise ValueError(f"bin_width_ns must be > 0 (ns), got {self.bin_width_ns!r}.")
        if not isinstance(self.oversample, int) or self.oversample < 1:
            raise ValueError(f"oversample must be an int >= 1, got {self.oversample!r}.")
        if not 0 <= self.t_offset_ns < self.window_ns:
            raise ValueError(
                f"t_offset_ns must lie in [0, window {self.window_ns} ns), "
                f"got {self.t_offset_ns!r}."
            )
        merged = _default_ranges()
        for name, rng in dict(self.ranges).items():
            if name not in PARAM_NAMES:
                raise ValueError(
                    f"ranges: unknown parameter {name!r}; expected some of {list(PARAM_NAMES)}."
                )
            lo, hi = (float(v) for v in rng)
            plo, phi, incl = _PHYSICAL[name]
            if not (lo <= hi) or lo < plo or (lo == plo and not incl) or hi > phi:
                raise ValueError(
                    f"ranges[{name!r}] = {rng!r} is not a valid physical range "
                    f"(need {plo} {'<=' if incl else '<'} low <= high <= {phi})."
                )
            merged[name] = (lo, hi)
        object.__setattr__(self, "ranges", merged)

    @property
    def window_ns(self) -> float:
        """Length of the histogram window in ns."""
        return round(self.n_bins * self.bin_width_ns, 10)

    @property
    def bin_centers_ns(self) -> np.ndarray:
        """``[n_bins]`` bin centre times in ns."""
        return (np.arange(self.n_bins) + 0.5) * self.bin_width_ns

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (inverse of :meth:`from_dict`)."""
        d = dataclasses.asdict(self)
        d["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimulationConfig:
        """Rebuild from :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"simulation config: unknown keys {unknown}; expected some of {sorted(names)}."
            )
        d = dict(d)
        if "ranges" in d:
            d["ranges"] = {k: tuple(v) for k, v in d["ranges"].items()}
        return cls(**d)


def validate_params(params: np.ndarray, where: str = "params") -> np.ndarray:
    """Check a ``[N, len(PARAM_NAMES)]`` table is finite and physical; returns it as float64.

    Raises:
        ValueError: naming the column, the first offending row and value, and the allowed range.

    Examples:
        >>> p = np.array([[5.0, 1.0, 0.01, 1.0, 0.01, 1.0, 1.4, 0.2, 1e4, 0.01]])
        >>> validate_params(p).shape
        (1, 10)
        >>> p[0, 0] = -1.0
        >>> validate_params(p)
        Traceback (most recent call last):
        ...
        ValueError: params: depth_mm[0] = -1.0 is unphysical; expected 0.0 < depth_mm <= 200.0 (mm
        below the surface).
    """
    arr = np.asarray(params, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != len(PARAM_NAMES):
        raise ValueError(
            f"{where}: expected shape [N, {len(PARAM_NAMES)}] with columns {list(PARAM_NAMES)}, "
            f"got {arr.shape}."
        )
    units = {"depth_mm": " (mm below the surface)", "tau_ns": " (fluorescence lifetime, ns)"}
    for j, name in enumerate(PARAM_NAMES):
        col = arr[:, j]
        lo, hi, incl = _PHYSICAL[name]
        bad = ~np.isfinite(col) | (col > hi) | ((col < lo) if incl else (col <= lo))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}: {name}[{i}] = {float(col[i])!r} is unphysical; "
                f"expected {lo} {'<=' if incl else '<'} {name} <= {hi}{units.get(name, '')}."
            )
    return arr
