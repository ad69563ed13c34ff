"""Synthetic adverse weather on clean RGB images: rain streaks, haze and snow, with fixed seeds.

Every effect is defined in pixel units (streak lengths, particle sizes, the smoothness of the
haze depth), never relative to the image size, so a 64x64 training crop and a 500x500 test
image receive weather with the same local statistics.

- **rain**: sparse random drops, slightly widened, smeared by an oriented motion-blur line
  (one angle per image, 10-25 px long) and added to the image.
- **haze**: the atmospheric scattering model ``I = J t + A (1 - t)``, ``t = exp(-beta d)``, with
  a smooth depth proxy ``d``: a linear ramp in a random direction plus low-frequency noise.
- **snow**: particles at two scales (small dense flakes and large sparse ones), each a
  Gaussian blob, composited over the image towards a bright snow colour.

Examples:
    >>> import numpy as np
    >>> clean = np.full((32, 48, 3), 0.25, dtype=np.float32)
    >>> hazy = synthesize(clean, "haze", seed=0)
    >>> hazy.shape, hazy.dtype.name, bool(hazy.mean() > clean.mean())
    ((32, 48, 3), 'float32', True)
    >>> bool(np.array_equal(synthesize(clean, "rain", seed=3), synthesize(clean, "rain", seed=3)))
    True
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["WEATHERS", "synthesize", "add_rain", "add_haze", "add_snow"]

#: the weather types, in label order (label ``i`` is ``WEATHERS[i]``)
WEATHERS: tuple[str, ...] = ("rain", "haze", "snow")


def synthesize(image: np.ndarray, weather: str, seed: int | None = None, rng=None) -> np.ndarray:
    """``image`` (float ``[H, W, 3]`` in ``[0, 1]``) under ``weather``; float32, same shape.

    Args:
        image: a clean RGB image.
        weather: one of :data:`WEATHERS`.
        seed: seed of the random draws (the same seed gives the same weather).
        rng: a ``numpy.random.Generator`` to draw from instead of ``seed``.
    """
    if weather not in WEATHERS:
        raise ValueError(f"unknown weather {weather!r}; expected one of {list(WEATHERS)}.")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an RGB array [H, W, 3], got shape {image.shape}.")
    if rng is None:
        rng = np.random.default_rng(seed)
    fn = {"rain": add_rain, "haze": add_haze, "snow": add_snow}[weather]
    return np.clip(fn(image, rng), 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------ effects
def add_rain(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rain streaks: sparse noise, widened, oriented motion blur, added (``[H, W, 3]``)."""
    H, W, _ = image.shape
    density = rng.uniform(0.0015, 0.004)
    length = rng.uniform(10.0, 25.0)
    angle = rng.uniform(-25.0, 25.0)  # degrees from vertical
    strength = rng.uniform(0.35, 0.7)
    drops = (rng.random((H, W)) < density) * rng.uniform(0.6, 1.0, (H, W))
    drops = _gaussian(drops, 0.6) * (2 * math.pi * 0.6**2)  # widen, keep the peak height
    streaks = _convolve(drops, _line_kernel(length, angle))
    return image + strength * np.clip(streaks, 0.0, 1.0)[:, :, None]


def add_haze(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Haze by the scattering model with a smooth depth proxy (``[H, W, 3]``)."""
    H, W, _ = image.shape
    depth = _depth_proxy(H, W, rng)
    beta = rng.uniform(0.8, 1.8)
    airlight = rng.uniform(0.75, 0.95) + rng.uniform(-0.03, 0.03, 3)
    t = np.exp(-beta * depth)[:, :, None]
    return image * t + airlight[None, None, :] * (1.0 - t)


def add_snow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Snow: blurred particles at two scales composited over the image (``[H, W, 3]``)."""
    H, W, _ = image.shape
    mask = np.zeros((H, W), dtype=np.float64)
    # (density range, blob sigma in px, brightness range): small dense flakes, large sparse ones
    for density, sigma, (lo, hi) in (
        (rng.uniform(0.002, 0.006), 0.8, (0.5, 0.9)),
        (rng.uniform(0.0005, 0.0015), 2.0, (0.7, 1.0)),
    ):
        flakes = (rng.random((H, W)) < density) * rng.uniform(lo, hi, (H, W))
        blob = _gaussian(flakes, sigma) * (2 * math.pi * sigma**2)
        if sigma < 1.0:  # small flakes fall: a short motion trail
            blob = _convolve(blob, _line_kernel(rng.uniform(3.0, 6.0), rng.uniform(-30, 30)))
        mask += blob
    mask = np.clip(mask, 0.0, 1.0)[:, :, None]
    colour = rng.uniform(0.88, 1.0)
    return image * (1.0 - mask) + colour * mask


# ------------------------------------------------------------------ helpers
def _depth_proxy(H: int, W: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth relative depth, clipped to ``[0.05, 2]``.

    A ramp (depth grows in a random, mostly upward direction) plus unit-variance
    Gaussian-smoothed noise (sigma 24 px).
    """
    phi = math.radians(rng.uniform(-60.0, 60.0) - 90.0)  # -90: depth grows upwards
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    ramp = ((x - W / 2) * math.cos(phi) + (y - H / 2) * math.sin(phi)) / 256.0
    sigma = 24.0
    noise = _gaussian(rng.standard_normal((H, W)), sigma, mode="reflect")
    noise *= 2.0 * math.sqrt(math.pi) * sigma  # unit variance whatever the image size
    depth = rng.uniform(0.4, 1.0) + rng.uniform(0.2, 0.6) * ramp + 0.15 * noise
    return np.clip(depth, 0.05, 2.0)


def _gaussian(a: np.ndarray, sigma: float, mode: str = "constant") -> np.ndarray:
    from skimage.filters import gaussian

    return gaussian(a.astype(np.float64), sigma=sigma, mode=mode, preserve_range=True)


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A centred line of ones, ``length`` px long at ``angle_deg`` from vertical (anti-aliased)."""
    size = int(math.ceil(length)) | 1
    k = np.zeros((size, size), dtype=np.float64)
    c = size // 2
    a = math.radians(angle_deg)
    dy, dx = math.cos(a), math.sin(a)
    n = max(2, int(length * 3))
    for s in np.linspace(-length / 2, length / 2, n):
        y, x = c + s * dy, c + s * dx
        y0, x0 = int(math.floor(y)), int(math.floor(x))
        fy, fx = y - y0, x - x0
        for yy, xx, w in (
            (y0, x0, (1 - fy) * (1 - fx)),
            (y0 + 1, x0, fy * (1 - fx)),
            (y0, x0 + 1, (1 - fy) * fx),
            (y0 + 1, x0 + 1, fy * fx),
        ):
            if 0 <= yy < size and 0 <= xx < size:
                k[yy, xx] += w
    return k * (length / k.sum())  # ~1 per pixel along the line


def _convolve(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``a * kernel`` (same size, zero padding) by FFT."""
    H, W = a.shape
    kh, kw = kernel.shape
    shape = (H + kh - 1, W + kw - 1)
    out = np.fft.irfft2(np.fft.rfft2(a, shape) * np.fft.rfft2(kernel, shape), shape)
    return out[kh // 2 : kh // 2 + H, kw // 2 : kw // 2 + W]
