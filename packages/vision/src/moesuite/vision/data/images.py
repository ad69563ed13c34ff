"""Image files and folders (PNG, JPEG, TIFF) as float32 arrays in ``[0, 1]``, with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "read_image", "list_images", "load_labelled_folder", "save_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def read_image(path: str | Path, channels: int | None = None) -> np.ndarray:
    """Read one image as ``float32 [H, W, C]`` in ``[0, 1]``.

    Args:
        path: a PNG, JPEG or TIFF file (8 or 16 bit).
        channels: require 1 (grayscale) or 3 (RGB); an RGBA image loses its alpha, a grayscale
            image asked for as RGB is an error (it cannot be restored as colour).
    """
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file.")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(
            f"{path}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})."
        )
    try:  # decode from bytes: a broken file must not leave an open handle behind
        img = np.asarray(iio.imread(path.read_bytes(), extension=path.suffix.lower()))
    except Exception as exc:  # imageio's plugins raise many types for a broken file
        raise ValueError(f"{path}: unreadable image ({type(exc).__name__}: {exc}).") from None
    if img.dtype == np.uint8:
        arr = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        arr = img.astype(np.float32) / 65535.0
    elif np.issubdtype(img.dtype, np.floating):
        arr = img.astype(np.float32)
    else:
        raise ValueError(
            f"{path}: unsupported pixel type {img.dtype} (expected 8/16-bit or float)."
        )
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"{path}: expected a 2-D image, got an array of shape {img.shape}.")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if channels is not None and arr.shape[2] != channels:
        kind = {1: "grayscale", 3: "RGB"}.get(channels, f"{channels}-channel")
        raise ValueError(
            f"{path}: a {arr.shape[2]}-channel image where a {kind} image was expected."
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: the image holds NaN or infinite values.")
    return np.clip(arr, 0.0, 1.0)


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: expected a folder of images (PNG, JPEG, TIFF).")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ValueError(f"{folder}: no image files (expected {', '.join(IMAGE_SUFFIXES)}).")
    return files


def load_labelled_folder(
    folder: str | Path, channels: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A folder with one subfolder per class (``0/``, ``1/``... or names): images, labels, classes.

    All images must share one size. Returns ``images float32 [N, H, W, C]``, ``labels int64 [N]``
    and the sorted class names (label ``i`` is ``classes[i]``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{folder}: expected a folder with one subfolder of images per class."
        )
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(
            f"{folder}: no class subfolders (expected e.g. {folder}/0/*.png, {folder}/1/*.png)."
        )
    images, labels = [], []
    for i, name in enumerate(classes):
        for path in list_images(folder / name):
            images.append(read_image(path, channels))
            labels.append(i)
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(
            f"{folder}: images of different sizes {sorted(shapes)[:3]}...; resize them to one size."
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write ``float [H, W, C]`` (or ``[H, W]``) in ``[0, 1]`` as an 8-bit PNG."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    iio.imwrite(path, (arr * 255 + 0.5).astype(np.uint8))
    return path
