"""MNIST in its original idx format (gzip or raw), and the project's fixed class-balanced split.

The shared data holds the MNIST test set (10,000 digits). :func:`mnist_split` splits it into
8,000 training and 2,000 held-out images, 200 per class held out, with a fixed seed, so every
system and every run sees the same split.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "load_mnist", "mnist_split"]

_MAGIC = {0x00000803: 3, 0x00000801: 1}  # idx3 images, idx1 labels (unsigned bytes)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (``.gz`` or raw) of bytes: images ``[N, H, W]`` or labels ``[N]``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such idx file (expected MNIST's *-idx3-ubyte[.gz] / *-idx1-ubyte[.gz])."
        )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read as an idx file ({exc}).") from None
    if len(raw) < 8:
        raise ValueError(f"{path}: too short to be an idx file ({len(raw)} bytes).")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise ValueError(
            f"{path}: not an idx file of unsigned bytes (magic {magic:#010x}, "
            "expected 0x00000803 or 0x00000801)."
        )
    ndim = _MAGIC[magic]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: header says {dims} ({expected} values) "
            f"but the file holds {len(raw) - offset}."
        )
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def load_mnist(folder: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` from a folder of MNIST idx files.

    Args:
        folder: a folder holding ``*images-idx3-ubyte[.gz]`` and ``*labels-idx1-ubyte[.gz]``
            (one pair); default: the shared data's ``mnist/``.
    """
    from moesuite.vision.data.paths import shared_path

    folder = Path(folder) if folder is not None else shared_path("mnist")
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{folder}: expected a folder with MNIST idx files (images and labels)."
        )
    images = sorted(folder.glob("*images-idx3-ubyte*"))
    labels = sorted(folder.glob("*labels-idx1-ubyte*"))
    if len(images) != 1 or len(labels) != 1:
        raise ValueError(
            f"{folder}: expected exactly one *images-idx3-ubyte[.gz] "
            "and one *labels-idx1-ubyte[.gz], "
            f"found {[p.name for p in images + labels]}."
        )
    x, y = read_idx(images[0]), read_idx(labels[0])
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{folder}: images {x.shape} and labels {y.shape} do not pair up.")
    if y.max() > 9:
        raise ValueError(f"{labels[0]}: labels must be digits 0-9, found {int(y.max())}.")
    return x, y.astype(np.int64)


def mnist_split(
    labels: np.ndarray, held_out_per_class: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, held_out)``: ``held_out_per_class`` random images of each class held out.

    Examples:
        >>> labels = np.repeat(np.arange(10), 30)
        >>> train, held = mnist_split(labels, held_out_per_class=5)
        >>> len(train), len(held), np.bincount(labels[held]).tolist()
        (250, 50, [5, 5, 5, 5, 5, 5, 5, 5, 5, 5])
    """
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) <= held_out_per_class:
            raise ValueError(
                f"class {c} has {len(idx)} images; cannot hold out {held_out_per_class}."
            )
        held.append(rng.choice(idx, held_out_per_class, replace=False))
    held_idx = np.sort(np.concatenate(held))
    train_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    return train_idx, held_idx
