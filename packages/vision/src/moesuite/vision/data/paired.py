"""Paired restoration data: a folder with ``degraded/`` and ``clean/`` images matched by name.

This is how real weather data sets are distributed (e.g. rain/haze/snow photographs with their
clear counterparts): ``ROOT/degraded/0001.png`` pairs with ``ROOT/clean/0001.png`` (the file
stem must match; the extensions may differ). Both must be RGB and of the same size.

Examples:
    >>> import tempfile, pathlib, numpy as np
    >>> from moesuite.vision.data.images import save_image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for sub in ("degraded", "clean"):
    ...     _ = save_image(root / sub / "a.png", np.full((8, 12, 3), 0.5))
    >>> [(p.name, p.degraded.shape) for p in load_pairs(root)]
    [('a', (8, 12, 3))]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moesuite.vision.data.images import list_images, read_image

__all__ = ["Pair", "is_paired_folder", "pair_paths", "load_pairs"]


@dataclass(frozen=True)
class Pair:
    """One degraded image and its clean counterpart, float32 ``[H, W, 3]`` in ``[0, 1]``."""

    name: str
    degraded: np.ndarray
    clean: np.ndarray


def is_paired_folder(root: str | Path) -> bool:
    """Whether ``root`` has both a ``degraded/`` and a ``clean/`` subfolder."""
    root = Path(root)
    return (root / "degraded").is_dir() and (root / "clean").is_dir()


def pair_paths(root: str | Path) -> list[tuple[str, Path, Path]]:
    """``(name, degraded path, clean path)`` for every pair under ``root``, sorted by name.

    Raises one clear error when a subfolder is missing or the file names do not match.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(
            f"{root}: expected a folder with degraded/ and clean/ subfolders of paired images."
        )
    missing = [sub for sub in ("degraded", "clean") if not (root / sub).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{root}: no {' or '.join(m + '/' for m in missing)} subfolder (paired data needs "
            f"{root}/degraded/*.png and {root}/clean/*.png with matching names)."
        )
    degraded = {p.stem: p for p in list_images(root / "degraded")}
    clean = {p.stem: p for p in list_images(root / "clean")}
    only_d, only_c = sorted(set(degraded) - set(clean)), sorted(set(clean) - set(degraded))
    if only_d or only_c:
        parts = []
        if only_d:
            parts.append(f"{len(only_d)} degraded without a clean image (e.g. {only_d[:3]})")
        if only_c:
            parts.append(f"{len(only_c)} clean without a degraded image (e.g. {only_c[:3]})")
        raise ValueError(f"{root}: mismatched pairs: {'; '.join(parts)}; names must match.")
    return [(name, degraded[name], clean[name]) for name in sorted(degraded)]


def load_pairs(root: str | Path) -> list[Pair]:
    """Read every pair under ``root`` (RGB, same size within a pair)."""
    pairs = []
    for name, dpath, cpath in pair_paths(root):
        degraded, clean = read_image(dpath, channels=3), read_image(cpath, channels=3)
        if degraded.shape != clean.shape:
            raise ValueError(
                f"{dpath} is {degraded.shape[1]}x{degraded.shape[0]} but {cpath} is "
                f"{clean.shape[1]}x{clean.shape[0]}; a pair must have one size."
            )
        pairs.append(Pair(name, degraded, clean))
    return pairs
