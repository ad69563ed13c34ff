"""AdvMoE's image classification data: scikit-learn digits, MNIST idx files, labelled folders.

Every source gives ``float32 [N, C, H, W]`` images in ``[0, 1]`` (the attacks' pixel range)
and ``int64`` labels, split into training and held-out parts with a fixed seed:

- ``None`` (default) or ``"digits"``: scikit-learn's 1,797 8x8 digits, 80/20 class-stratified;
- ``"mnist"`` or a folder of MNIST idx files: the project's fixed 8,000 / 2,000 split;
- a folder with one subfolder of images per class: 80/20 class-stratified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["ImageData", "load_data"]


@dataclass(frozen=True)
class ImageData:
    """Training and held-out images (``[N, C, H, W]`` in ``[0, 1]``) and labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def in_chans(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])


def _stratified(labels: np.ndarray, frac: float = 0.2, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        held.append(rng.choice(idx, max(1, round(frac * len(idx))), replace=False))
    held_idx = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(labels)), held_idx), held_idx


def _pack(name: str, images: np.ndarray, labels: np.ndarray, train, held) -> ImageData:
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if x.dim() == 3:
        x = x[:, None]
    y = torch.from_numpy(labels.astype(np.int64))
    tr, te = torch.from_numpy(train), torch.from_numpy(held)
    return ImageData(name, x[tr], y[tr], x[te], y[te], int(labels.max()) + 1)


def load_data(data: str | Path | None = None) -> ImageData:
    """Load a data source (see the module docstring); clear errors for anything else."""
    if data is None or (str(data) == "digits" and not Path(data).exists()):
        from moesuite.vision.data.digits import load_digits_images

        images, labels = load_digits_images()
        return _pack("digits", images, labels, *_stratified(labels))
    from moesuite.vision.data.mnist import load_mnist, mnist_split

    path = Path(data)
    if str(data) == "mnist" and not path.exists():
        images, labels = load_mnist()
        return _pack("mnist", images / 255.0, labels, *mnist_split(labels))
    if not path.is_dir():
        raise FileNotFoundError(
            f"--data {path}: no such folder (expected MNIST idx files, a folder of class "
            "subfolders of images, or 'mnist' for the shared MNIST)."
        )
    if any(path.glob("*idx3-ubyte*")):
        images, labels = load_mnist(path)
        return _pack(f"mnist:{path}", images / 255.0, labels, *mnist_split(labels))
    from moesuite.vision.data.images import load_labelled_folder

    images, labels, _ = load_labelled_folder(path)
    return _pack(f"folder:{path}", images.transpose(0, 3, 1, 2), labels, *_stratified(labels))
