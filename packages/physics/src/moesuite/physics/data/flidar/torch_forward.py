"""Differentiable torch port of :func:`moesuite.physics.data.flidar.forward.expected_shape`.

Same Green's functions (shared code, ``xp=torch``), same sub-bin grid and FFT convolutions, so
gradients with respect to every parameter (depth, lifetime, optics, IRF width) flow; used by the
physics-guided losses of :mod:`moesuite.physics.evidence`. The numpy version is the reference
(tests check the two agree and that gradients match finite differences).
"""

from __future__ import annotations

import math

import torch

from moesuite.physics.data.flidar.config import PARAM_NAMES, SimulationConfig
from moesuite.physics.data.flidar.forward import log_green_emission, log_green_excitation

__all__ = ["expected_shape_torch", "expected_counts_torch"]

_COL = {name: j for j, name in enumerate(PARAM_NAMES)}


def expected_shape_torch(
    params: torch.Tensor, config: SimulationConfig | None = None, irf: torch.Tensor | None = None
) -> torch.Tensor:
    """Noise-free normalised histogram shapes ``[N, n_bins]`` from ``params[N, 10]`` (any dtype).

    Args:
        params: parameter table, columns :data:`~moesuite.physics.data.flidar.config.PARAM_NAMES`
            (not validated here: keep values physical, e.g. by a softplus/sigmoid head).
        config: time grid.
        irf: optional measured IRF ``[n_bins]`` (not differentiated).

    Examples:
        >>> import numpy as np
        >>> from moesuite.physics.data.flidar import expected_shape, sample_params
        >>> p = sample_params(2, seed=0)
        >>> s = expected_shape_torch(torch.tensor(p))
        >>> bool(np.allclose(s.numpy(), expected_shape(p), atol=1e-9))
        True
    """
    config = config or SimulationConfig()
    if params.dim() != 2 or params.shape[1] != len(PARAM_NAMES):
        raise ValueError(
            f"params: expected shape [N, {len(PARAM_NAMES)}], got {tuple(params.shape)}."
        )
    dtype, device = params.dtype, params.device
    M = config.n_bins * config.oversample
    dt = config.bin_width_ns / config.oversample
    t = ((torch.arange(M, dtype=dtype, device=device) + 0.5) * dt)[None, :]
    c = {k: params[:, j : j + 1] for k, j in _COL.items()}
    lex = log_green_excitation(c["depth_mm"], c["mua_ex"], c["musp_ex"], c["n"], t, xp=torch)
    lem = log_green_emission(c["depth_mm"], c["mua_em"], c["musp_em"], c["n"], t, xp=torch)
    ldec = -t / c["tau_ns"] - torch.log(c["tau_ns"])
    nfft = 1 << math.ceil(math.log2(2 * M))
    spec = None
    for x in (lex, ldec, lem):
        comp = torch.exp(x - x.max(dim=1, keepdim=True).values.detach())
        f = torch.fft.rfft(comp, nfft, dim=1) * dt
        spec = f if spec is None else spec * f
    if irf is None:
        sigma = c["irf_fwhm_ns"] / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        g = torch.exp(-0.5 * ((t - (config.t_offset_ns - 1.5 * dt)) / sigma) ** 2)
    else:
        fine = torch.repeat_interleave(
            torch.as_tensor(irf, dtype=dtype, device=device), config.oversample
        )
        g = torch.cat([fine[2:], fine.new_zeros(2)])[None, :]
    g = g / (g.sum(dim=1, keepdim=True) * dt)
    spec = spec * torch.fft.rfft(g, nfft, dim=1) * dt
    fine_sig = torch.fft.irfft(spec, nfft, dim=1)[:, :M].clamp_min(0.0)
    bins = fine_sig.reshape(-1, config.n_bins, config.oversample).sum(dim=2)
    return bins / bins.sum(dim=1, keepdim=True).clamp_min(torch.finfo(dtype).tiny)


def expected_counts_torch(
    params: torch.Tensor, config: SimulationConfig | None = None, irf: torch.Tensor | None = None
) -> torch.Tensor:
    """``photons * ((1 - background) * shape + background / n_bins)``, ``[N, n_bins]``."""
    config = config or SimulationConfig()
    shape = expected_shape_torch(params, config, irf)
    photons = params[:, _COL["photons"], None]
    bg = params[:, _COL["background"], None]
    return photons * ((1.0 - bg) * shape + bg / config.n_bins)
