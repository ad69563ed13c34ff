"""scikit-learn's bundled digits (1,797 8x8 images): offline data for quick defaults and tests."""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits_images"]


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """``images float32 [1797, 8, 8]`` in ``[0, 1]`` and ``labels int64 [1797]``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    return images, bunch.target.astype(np.int64)
