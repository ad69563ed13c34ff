"""Restoration data: random training crops under synthesised weather, paired crops, the test set.

- :class:`WeatherCrops`: random crops of clean photos (flips and 90-degree turns), each under one
  of the weathers (``index % 3``: balanced), synthesised on the fly from a seed derived from the
  index, so a crop is the same whenever it is drawn again (resumable, deterministic).
- :class:`PairedCrops`: aligned random crops of ``degraded/`` and ``clean/`` pairs (users' real
  weather data; the weather label is unknown, ``-1``).
- :class:`EpochSampler`: a fresh slice of crops every epoch (Lightning calls ``set_epoch``).
- :func:`weather_test_set`: a folder of clean photos (Kodak24 by default) under every weather,
  synthesised once with fixed seeds and cached as ``.npz`` outside the repository
  (``$MOESUITE_CACHE_DIR/vision`` or ``~/.cache/moesuite/vision``).

A sample is ``(degraded [3, h, w], clean [3, h, w], label)`` with float32 tensors in ``[0, 1]``;
the label (the index into :data:`~moesuite.vision.data.weather.WEATHERS`) is a diagnostic for
routing statistics, never a model input.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from moesuite.vision.data.images import list_images, read_image
from moesuite.vision.data.paired import Pair
from moesuite.vision.data.weather import WEATHERS, synthesize

__all__ = [
    "TRAIN_SETS",
    "TEST_SET",
    "load_folder_images",
    "WeatherCrops",
    "PairedCrops",
    "EpochSampler",
    "materialise",
    "WeatherTestSet",
    "weather_test_set",
    "cache_dir",
]

#: the shared clean photo sets MoFME trains on, and the one it is tested on
TRAIN_SETS: tuple[str, ...] = ("CBSD68", "McMaster")
TEST_SET = "Kodak24"
#: bump when the weather synthesis changes: cached test sets are then rebuilt
_SYNTH_VERSION = 1


def load_folder_images(folders: Sequence[str | Path], min_size: int = 1) -> list[np.ndarray]:
    """Every RGB image of the given folders as uint8 ``[H, W, 3]`` (sorted by folder, then name)."""
    images = []
    for folder in folders:
        for path in list_images(folder):
            img = read_image(path, channels=3)
            if min(img.shape[:2]) < min_size:
                raise ValueError(
                    f"{path} is {img.shape[1]}x{img.shape[0]}, smaller than the {min_size}px "
                    "training crop; use larger images or a smaller crop."
                )
            images.append(_to_uint8(img))
    return images


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))


def _crop_box(rng: np.random.Generator, shape: tuple[int, ...], crop: int) -> tuple[int, int]:
    H, W = shape[:2]
    return int(rng.integers(0, H - crop + 1)), int(rng.integers(0, W - crop + 1))


def _augment(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for a in arrays:
        a = np.rot90(a, turns)
        out.append(a[:, ::-1] if flip else a)
    return out


class WeatherCrops(Dataset):
    """Random crops of clean images, each under a synthesised weather.

    Args:
        images: clean uint8 ``[H, W, 3]`` images, each at least ``crop`` on both sides.
        crop: side of the square crops.
        size: number of distinct crops (indices ``0 .. size - 1``).
        seed: base seed; crop ``i`` is drawn from ``default_rng([seed, i])``.
        weathers: the weathers used (crop ``i`` gets ``weathers[i % len(weathers)]``).
        augment: random flips and 90-degree turns.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        crop: int,
        size: int,
        seed: int = 0,
        weathers: Sequence[str] = WEATHERS,
        augment: bool = True,
    ):
        if not images:
            raise ValueError("WeatherCrops needs at least one image.")
        small = [i for i, im in enumerate(images) if min(im.shape[:2]) < crop]
        if small:
            raise ValueError(f"images {small[:3]} are smaller than the {crop}px crop.")
        unknown = [w for w in weathers if w not in WEATHERS]
        if unknown or not weathers:
            raise ValueError(f"weathers must be a non-empty subset of {list(WEATHERS)}.")
        self.images = list(images)
        self.crop = crop
        self.size = size
        self.seed = seed
        self.weathers = tuple(weathers)
        self.augment = augment

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, int(index)])
        img = self.images[int(rng.integers(len(self.images)))]
        y, x = _crop_box(rng, img.shape, self.crop)
        clean = img[y : y + self.crop, x : x + self.crop].astype(np.float32) / 255.0
        if self.augment:
            (clean,) = _augment(rng, clean)
        weather = self.weathers[int(index) % len(self.weathers)]
        degraded = synthesize(np.ascontiguousarray(clean), weather, rng=rng)
        return _to_tensor(degraded), _to_tensor(clean), WEATHERS.index(weather)


class PairedCrops(Dataset):
    """Aligned random crops of degraded/clean pairs (label ``-1``: the weather is unknown).

    Pairs smaller than the crop are reflect-padded to it.
    """

    def __init__(self, pairs: Sequence[Pair], crop: int, size: int, seed: int = 0, augment=True):
        if not pairs:
            raise ValueError("PairedCrops needs at least one pair.")
        self.pairs = [(_pad_to(p.degraded, crop), _pad_to(p.clean, crop)) for p in pairs]
        self.crop = crop
        self.size = size
        self.seed = seed
        self.augment = augment

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, int(index)])
        degraded, clean = self.pairs[int(rng.integers(len(self.pairs)))]
        y, x = _crop_box(rng, degraded.shape, self.crop)
        box = (slice(y, y + self.crop), slice(x, x + self.crop))
        d, c = degraded[box], clean[box]
        if self.augment:
            d, c = _augment(rng, d, c)
        return _to_tensor(d), _to_tensor(c), -1


def _pad_to(img: np.ndarray, size: int) -> np.ndarray:
    H, W = img.shape[:2]
    if H >= size and W >= size:
        return img
    return np.pad(img, ((0, max(0, size - H)), (0, max(0, size - W)), (0, 0)), mode="reflect")


class EpochSampler(Sampler[int]):
    """Yields ``per_epoch`` new indices each epoch (``epoch * per_epoch + shuffled offsets``).

    Lightning calls :meth:`set_epoch` before every epoch (also when a run is resumed), so epoch
    ``e`` always sees the same crops, and no epoch repeats another's.
    """

    def __init__(self, per_epoch: int, seed: int = 0):
        self.per_epoch = per_epoch
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the slice of indices of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        offsets = torch.randperm(self.per_epoch, generator=g)
        return iter((self.epoch * self.per_epoch + offsets).tolist())


def materialise(dataset: Dataset) -> torch.utils.data.TensorDataset:
    """Every sample of a (small) dataset stacked into tensors: a fixed validation set."""
    items = [dataset[i] for i in range(len(dataset))]
    return torch.utils.data.TensorDataset(
        torch.stack([d for d, _, _ in items]),
        torch.stack([c for _, c, _ in items]),
        torch.tensor([label for _, _, label in items], dtype=torch.long),
    )


# ------------------------------------------------------------------ the cached test set
@dataclass
class WeatherTestSet:
    """Clean test photos and their synthesised degraded versions (uint8 ``[H, W, 3]``).

    Attributes:
        names: image names (file stems).
        clean: one clean image per name.
        degraded: ``{weather: [one degraded image per name]}``.
        path: the ``.npz`` cache it was read from (``None`` if not cached).
    """

    names: list[str]
    clean: list[np.ndarray]
    degraded: dict[str, list[np.ndarray]]
    path: Path | None = None

    @property
    def weathers(self) -> list[str]:
        """The weathers, in label order."""
        return list(self.degraded)


def cache_dir() -> Path:
    """``$MOESUITE_CACHE_DIR/vision`` or ``~/.cache/moesuite/vision`` (never inside the repo)."""
    root = os.environ.get("MOESUITE_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "moesuite"
    return base / "vision"


def weather_test_set(
    folder: str | Path,
    weathers: Sequence[str] = WEATHERS,
    seed: int = 2024,
    cache: str | Path | None = None,
) -> WeatherTestSet:
    """The clean images of ``folder`` under each weather, synthesised once and cached as ``.npz``.

    Image ``i`` under weather ``w`` is drawn from ``default_rng([seed, i, WEATHERS.index(w)])``.
    The cache file's name hashes the folder's files (names, sizes, modification times), the
    weathers, the seed and the synthesis version, so a change in any of them rebuilds it.

    Args:
        folder: a folder of clean RGB photos (e.g. ``shared/data/images/Kodak24``).
        weathers: the weathers to synthesise.
        seed: base seed.
        cache: directory of the cache (default :func:`cache_dir`).
    """
    folder = Path(folder)
    paths = list_images(folder)
    key = hashlib.sha256()
    for p in paths:
        st = p.stat()
        key.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    key.update(f"{list(weathers)}:{seed}:{_SYNTH_VERSION}".encode())
    target = Path(cache or cache_dir()) / f"weather-{folder.name}-{key.hexdigest()[:16]}.npz"
    if target.is_file():
        with np.load(target) as z:
            names = [str(n) for n in z["names"]]
            clean = [z[f"clean_{i}"] for i in range(len(names))]
            degraded = {w: [z[f"{w}_{i}"] for i in range(len(names))] for w in weathers}
        return WeatherTestSet(names, clean, degraded, target)
    names = [p.stem for p in paths]
    arrays: dict[str, np.ndarray] = {"names": np.asarray(names)}
    clean, degraded = [], {w: [] for w in weathers}
    for i, p in enumerate(paths):
        img = read_image(p, channels=3)
        clean.append(_to_uint8(img))
        arrays[f"clean_{i}"] = clean[-1]
        for w in weathers:
            rng = np.random.default_rng([seed, i, WEATHERS.index(w)])
            degraded[w].append(_to_uint8(synthesize(img, w, rng=rng)))
            arrays[f"{w}_{i}"] = degraded[w][-1]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, target)
    return WeatherTestSet(names, clean, degraded, target)
