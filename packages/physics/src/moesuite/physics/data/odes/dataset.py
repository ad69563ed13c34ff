"""Multi-environment trajectory datasets: the split layout, validation and ``.npz`` I/O.

A dataset holds two *environment sets*: the training environments (whose contexts are learned
during meta-training) and the adaptation environments (unseen parameter settings, whose
contexts are fitted afterwards with everything else frozen). Each set stores, per environment,
trajectories to fit on and held-out trajectories from other initial conditions:

==============  ============================  ===========================================
split           array                         use
==============  ============================  ===========================================
``train``       ``train.fit  [E, n, T, D]``   meta-training
``test``        ``train.test [E, m, T, D]``   in-domain test: known environments, new ICs
``adapt``       ``adapt.fit  [A, s, T, D]``   few-shot fit of a fresh context per env
``adapt_test``  ``adapt.test [A, m, T, D]``   adaptation test: new environments, new ICs
==============  ============================  ===========================================

States of every family are padded with zeros to the common size ``D``; ``mask[env, D]`` marks
the real ones. Time is uniform per environment: ``t_k = k * dt[env]``, ``k = 0 .. T - 1``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EnvironmentSet", "ODEDataset", "save_dataset", "load_dataset", "SPLITS"]

SPLITS = ("train", "test", "adapt", "adapt_test")
_FORMAT = "moesuite.physics.odes/1"
_SET_KEYS = ("family", "params", "dt", "mask", "fit", "test")


@dataclass(frozen=True)
class EnvironmentSet:
    """Environments of one kind (training or adaptation) and their trajectories.

    Attributes:
        family: ``[E]`` int, index into :attr:`ODEDataset.families`.
        params: ``[E, P_max]`` float64 parameters in the family's ``param_names`` order,
            NaN-padded (``P_max`` is the largest parameter count of the dataset's families).
        dt: ``[E]`` float, observation interval of each environment (in its family's time unit).
        mask: ``[E, D]`` bool, which state dimensions are real (the rest are zero padding).
        fit: ``[E, n, T, D]`` float32 trajectories to fit on.
        test: ``[E, m, T, D]`` float32 held-out trajectories (other initial conditions).
    """

    family: np.ndarray
    params: np.ndarray
    dt: np.ndarray
    mask: np.ndarray
    fit: np.ndarray
    test: np.ndarray

    @property
    def num_envs(self) -> int:
        """``E``."""
        return int(self.family.shape[0])

    def select(self, keep: np.ndarray) -> EnvironmentSet:
        """The environments where the boolean ``keep[E]`` is true."""
        return EnvironmentSet(*(getattr(self, k)[keep] for k in _SET_KEYS))

    def validate(self, name: str, num_families: int) -> None:
        """Raise ``ValueError`` naming the set and the array unless shapes/values are consistent."""
        E = self.family.shape[0] if self.family.ndim == 1 else -1
        if E < 1:
            raise ValueError(
                f"{name}.family must be a non-empty 1-D integer array, "
                f"got shape {self.family.shape}."
            )
        if (
            not np.issubdtype(self.family.dtype, np.integer)
            or self.family.min() < 0
            or self.family.max() >= num_families
        ):
            raise ValueError(f"{name}.family must hold integers in [0, {num_families - 1}].")
        for key, ndim in (("params", 2), ("dt", 1), ("mask", 2), ("fit", 4), ("test", 4)):
            arr = getattr(self, key)
            if arr.ndim != ndim or arr.shape[0] != E:
                raise ValueError(
                    f"{name}.{key} must have {ndim} dimensions with {E} environments first, "
                    f"got shape {arr.shape}."
                )
        D = self.mask.shape[1]
        for key in ("fit", "test"):
            arr = getattr(self, key)
            if arr.shape[-1] != D or arr.shape[1] < 1 or arr.shape[2] < 2:
                raise ValueError(
                    f"{name}.{key} must be [envs, >=1 trajectories, >=2 times, D={D}], "
                    f"got shape {arr.shape}."
                )
            if not np.isfinite(arr).all():
                raise ValueError(f"{name}.{key} contains NaN or infinite values.")
        if self.fit.shape[2] != self.test.shape[2]:
            raise ValueError(f"{name}.fit and {name}.test must have the same number of times.")
        if not (np.isfinite(self.dt).all() and (self.dt > 0).all()):
            raise ValueError(f"{name}.dt must be finite and > 0.")
        if self.mask.dtype != bool or not self.mask.any(axis=1).all():
            raise ValueError(
                f"{name}.mask must be boolean with at least one real state per environment."
            )


@dataclass(frozen=True)
class ODEDataset:
    """Trajectories of several parametric ODE families, split for meta-learning.

    Attributes:
        families: family names; ``EnvironmentSet.family`` indexes this tuple.
        train: training environments (``train`` and in-domain ``test`` splits).
        adapt: adaptation environments (``adapt`` and ``adapt_test`` splits).
        config: how the data was made (generation settings), for the record.

    Examples:
        >>> from moesuite.physics.data.odes import generate, GenerationConfig
        >>> ds = generate(GenerationConfig(families=("van_der_pol", "lorenz"), n_train_envs=2,
        ...                                n_adapt_envs=1, n_times=5))
        >>> ds.state_dim, ds.n_times, ds.train.num_envs, ds.adapt.num_envs
        (3, 5, 4, 2)
        >>> tuple(ds.split("train").shape), ds.train.mask.sum(1).tolist()
        ((4, 8, 5, 3), [2, 2, 3, 3])
    """

    families: tuple[str, ...]
    train: EnvironmentSet
    adapt: EnvironmentSet
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.families or len(set(self.families)) != len(self.families):
            raise ValueError(f"families must be non-empty and distinct, got {self.families!r}.")
        self.train.validate("train", len(self.families))
        self.adapt.validate("adapt", len(self.families))
        if (
            self.train.mask.shape[1] != self.adapt.mask.shape[1]
            or self.train.fit.shape[2] != self.adapt.fit.shape[2]
        ):
            raise ValueError(
                "train and adapt environments must share the state size D and the number "
                "of times T."
            )

    @property
    def state_dim(self) -> int:
        """``D``, the padded state size."""
        return int(self.train.mask.shape[1])

    @property
    def n_times(self) -> int:
        """``T``, observations per trajectory."""
        return int(self.train.fit.shape[2])

    def split(self, name: str) -> np.ndarray:
        """Trajectories of a split: ``train``, ``test``, ``adapt`` or ``adapt_test``."""
        table = {
            "train": self.train.fit,
            "test": self.train.test,
            "adapt": self.adapt.fit,
            "adapt_test": self.adapt.test,
        }
        if name not in table:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}.")
        return table[name]

    def subset(self, families: tuple[str, ...] | list[str]) -> ODEDataset:
        """The dataset restricted to some of its families (indices renumbered)."""
        missing = [f for f in families if f not in self.families]
        if missing:
            raise ValueError(
                f"families {missing} are not in this dataset; it holds {list(self.families)}."
            )
        old = [self.families.index(f) for f in families]
        remap = np.full(len(self.families), -1)
        remap[old] = np.arange(len(old))
        sets = []
        for s in (self.train, self.adapt):
            sub = s.select(np.isin(s.family, old))
            sets.append(
                EnvironmentSet(remap[sub.family], *(getattr(sub, k) for k in _SET_KEYS[1:]))
            )
        return ODEDataset(tuple(families), sets[0], sets[1], dict(self.config))


def save_dataset(dataset: ODEDataset, path: str | Path) -> Path:
    """Write ``dataset`` to ``path`` (``.npz``), atomically (temp file, then rename)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"dataset path {str(path)!r} must end in .npz.")
    arrays: dict[str, np.ndarray] = {
        "format": np.array(_FORMAT),
        "families": np.array(dataset.families),
        "config_json": np.array(json.dumps(dataset.config, default=str)),
    }
    for prefix, s in (("train", dataset.train), ("adapt", dataset.adapt)):
        for key in _SET_KEYS:
            arrays[f"{prefix}_{key}"] = getattr(s, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)
    return path


def load_dataset(path: str | Path) -> ODEDataset:
    """Read a dataset written by :func:`save_dataset` (or by hand in the same layout).

    Required keys: ``families`` (str array) and, for ``train`` and ``adapt``,
    ``<set>_family, <set>_params, <set>_dt, <set>_mask, <set>_fit, <set>_test`` with the
    shapes of :class:`EnvironmentSet`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an ``.npz`` archive, a missing key, or inconsistent shapes/values
            (the message names the file and the offending array).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such dataset file (expected an .npz written by save_dataset)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc}).") from None
    required = ["families"] + [f"{p}_{k}" for p in ("train", "adapt") for k in _SET_KEYS]
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(
            f"{path}: malformed ODE dataset, missing arrays {missing}; expected keys {required}."
        )
    try:
        sets = []
        for prefix in ("train", "adapt"):
            sets.append(
                EnvironmentSet(
                    family=data[f"{prefix}_family"].astype(np.int64)
                    if np.issubdtype(data[f"{prefix}_family"].dtype, np.integer)
                    else data[f"{prefix}_family"],
                    params=data[f"{prefix}_params"].astype(np.float64),
                    dt=data[f"{prefix}_dt"].astype(np.float64),
                    mask=data[f"{prefix}_mask"],
                    fit=data[f"{prefix}_fit"].astype(np.float32),
                    test=data[f"{prefix}_test"].astype(np.float32),
                )
            )
        config = json.loads(str(data["config_json"])) if "config_json" in data else {}
        return ODEDataset(
            tuple(str(f) for f in np.atleast_1d(data["families"])), sets[0], sets[1], config
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: malformed ODE dataset: {exc}") from None
