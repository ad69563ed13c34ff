"""ProMoE's data: class-labelled images as ``[N, C, H, W]`` in ``[0, 1]``, split train / held out.

Sources: scikit-learn's digits (the offline quick default), a folder of MNIST idx files (the
shared data's ``mnist/`` is the MNIST test set: 8,000 train / 2,000 held out, 200 per class), or
a folder with one subfolder of images per class. The held-out part is class-balanced:
``min(200, smallest class // 4)`` images per class, fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["ImageData", "load_data"]


@dataclass(frozen=True)
class ImageData:
    """Training and held-out images with labels.

    Attributes:
        name: ``"digits"``, ``"mnist"`` or the folder's name.
        source: ``"digits"`` or the folder path.
        train_images: ``float32 [N, C, H, W]`` in ``[0, 1]``.
        train_labels: ``int64 [N]``.
        held_images: held-out images (FID/KID reference, feature-net accuracy).
        held_labels: their labels.
        classes: class names (label ``i`` is ``classes[i]``).
    """

    name: str
    source: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    held_images: torch.Tensor
    held_labels: torch.Tensor
    classes: list[str]

    @property
    def channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_images.shape[2]), int(self.train_images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> dict:
        """What ``config.json`` records about the data."""
        return {
            "name": self.name,
            "source": self.source,
            "image_size": list(self.image_size),
            "channels": self.channels,
            "classes": self.classes,
            "num_train": int(self.train_images.shape[0]),
            "num_held_out": int(self.held_images.shape[0]),
        }


def _split(name: str, source: str, images: np.ndarray, labels: np.ndarray, classes) -> ImageData:
    from moesuite.vision.data.mnist import mnist_split

    counts = np.bincount(labels, minlength=len(classes))
    if counts.min() < 2:
        raise ValueError(
            f"--data: {source}: every class needs at least 2 images (one to train on, one to "
            f"hold out); class {classes[int(counts.argmin())]!r} has {int(counts.min())}."
        )
    per_class = max(1, min(200, int(counts.min()) // 4))
    train, held = mnist_split(labels, held_out_per_class=per_class)
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    return ImageData(name, source, x[train], y[train], x[held], y[held], [str(c) for c in classes])


def load_data(data: str | Path | None = None) -> ImageData:
    """Load ``data``: digits, the shared MNIST, MNIST idx files or class subfolders.

    ``None`` or ``"digits"``: scikit-learn's digits; ``"mnist"``: the shared data's MNIST; else a
    folder of MNIST idx files or a folder with one subfolder of images per class.

    Examples:
        >>> d = load_data()
        >>> d.name, tuple(d.train_images.shape), tuple(d.held_images.shape), d.num_classes
        ('digits', (1367, 1, 8, 8), (430, 1, 8, 8), 10)
    """
    if data is None or str(data) == "digits":
        from moesuite.vision.data.digits import load_digits_images

        images, labels = load_digits_images()
        return _split("digits", "digits", images[:, None], labels, list(range(10)))
    folder = Path(data)
    if str(data) == "mnist" and not folder.exists():
        from moesuite.vision.data.paths import shared_path

        folder = shared_path("mnist")
    if not folder.exists():
        raise FileNotFoundError(
            f"--data: {folder}: no such folder (expected MNIST idx files or one subfolder of "
            "images per class)."
        )
    if not folder.is_dir():
        raise NotADirectoryError(
            f"--data: {folder}: expected a folder (MNIST idx files or class subfolders), "
            "got a file."
        )
    if any(folder.glob("*images-idx3-ubyte*")):
        from moesuite.vision.data.mnist import load_mnist

        images, labels = load_mnist(folder)
        classes = list(range(int(labels.max()) + 1))
        return _split("mnist", str(folder), images[:, None] / 255.0, labels, classes)
    from moesuite.vision.data.images import load_labelled_folder

    images, labels, classes = load_labelled_folder(folder)
    return _split(folder.name, str(folder), images.transpose(0, 3, 1, 2), labels, classes)
