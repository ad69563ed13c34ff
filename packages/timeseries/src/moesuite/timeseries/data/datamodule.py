"""Sliding windows over a :class:`SeriesTable` as a Lightning DataModule.

A window starting at row ``i`` of a split gives the model

- ``x [L, C]``: targets at rows ``i .. i+L-1`` (the lookback),
- ``z_past [L, Cz]``: every covariate over the lookback,
- ``z_future [H, Ck]``: only the covariates *known in the future* (calendar features and
  columns flagged as known), at rows ``i+L .. i+L+H-1``,

and the loss compares the forecast with ``y [H, C]`` (targets at rows ``i+L .. i+L+H-1``).
Nothing else from the future is in a batch, so a model cannot see future targets or future
values of unknown covariates. Covariate columns are ordered ``[past-only..., known...]``; the
last ``Ck`` columns of ``z_past`` are the columns of ``z_future``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from moesuite.timeseries.data.splits import Split, StandardScaler, split_borders
from moesuite.timeseries.data.table import SeriesTable, calendar_features

__all__ = ["WindowDataset", "ForecastDataModule"]


class WindowDataset(Dataset):
    """The windows of one split: every one, or every ``stride``-th (the first included).

    Args:
        values: ``[T, C]`` scaled targets of the split (lookback rows included).
        covariates: ``[T, Cz]`` scaled covariates, known ones last.
        lookback: ``L``.
        horizon: ``H``.
        n_known: ``Ck``, how many trailing covariate columns are known in the future.
        stride: keep every ``stride``-th window (training windows of a reduced budget).
    """

    def __init__(
        self,
        values: np.ndarray,
        covariates: np.ndarray,
        lookback: int,
        horizon: int,
        n_known: int,
        stride: int = 1,
    ):
        self.values = torch.as_tensor(values, dtype=torch.float32)
        self.covariates = torch.as_tensor(covariates, dtype=torch.float32)
        self.lookback, self.horizon, self.n_known = lookback, horizon, n_known
        self.stride = stride
        self.n_windows = len(values) - lookback - horizon + 1
        if stride < 1:
            raise ValueError(f"the window stride must be >= 1, got {stride}.")
        if self.n_windows < 1:
            raise ValueError(
                f"too few rows: {len(values)} rows hold no window of lookback + horizon = "
                f"{lookback} + {horizon}; use more rows or a shorter --lookback/--horizon."
            )

    def __len__(self) -> int:
        return -(-self.n_windows // self.stride)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} of {len(self)}")
        i *= self.stride
        L, H = self.lookback, self.horizon
        cz = self.covariates.shape[1]
        return {
            "x": self.values[i : i + L],
            "y": self.values[i + L : i + L + H],
            "z_past": self.covariates[i : i + L],
            "z_future": self.covariates[i + L : i + L + H, cz - self.n_known :],
        }


class ForecastDataModule(L.LightningDataModule):
    """Standard splits, train-statistics scaling and windowing of a :class:`SeriesTable`.

    Args:
        table: the series.
        lookback: input length ``L``.
        horizon: forecast length ``H``.
        protocol: split protocol (``auto`` picks 12/4/4 months for ETT files, else 70/10/20).
        batch_size: training batch size (evaluation uses twice that).
        covariates: feed the table's covariate columns to the model.
        calendar: add calendar features of the timestamps as known covariates.
        seed: shuffling seed.
        train_stride: keep every ``train_stride``-th training window (a reduced training
            budget; validation and test windows are never thinned here).

    Examples:
        >>> from moesuite.timeseries.data.generator import make_synthetic
        >>> dm = ForecastDataModule(make_synthetic(1000, 2), lookback=48, horizon=24)
        >>> dm.setup()
        >>> b = next(iter(dm.train_dataloader()))
        >>> [tuple(b[k].shape) for k in ("x", "y", "z_past", "z_future")]
        [(32, 48, 2), (32, 24, 2), (32, 48, 5), (32, 24, 4)]
    """

    def __init__(
        self,
        table: SeriesTable,
        lookback: int = 96,
        horizon: int = 96,
        protocol: str = "auto",
        batch_size: int = 32,
        covariates: bool = True,
        calendar: bool = True,
        seed: int = 0,
        train_stride: int = 1,
    ):
        super().__init__()
        self.train_stride = train_stride
        self.table = table
        self.lookback, self.horizon = lookback, horizon
        self.batch_size, self.seed = batch_size, seed
        self.split: Split = split_borders(len(table), lookback, horizon, protocol, table.name)
        train_rows = slice(*self.split.train)
        self.scaler = StandardScaler().fit(table.values[train_rows])
        # covariates ordered [past-only user columns, known user columns, calendar]
        names, blocks, n_known = [], [], 0
        if covariates and table.covariate_columns:
            order = [c for c in table.covariate_columns if c not in table.known_covariates]
            order += [c for c in table.covariate_columns if c in table.known_covariates]
            idx = [table.covariate_columns.index(c) for c in order]
            cov = table.covariates[:, idx]
            self.covariate_scaler: StandardScaler | None = StandardScaler().fit(cov[train_rows])
            blocks.append(self.covariate_scaler.transform(cov))
            names += order
            n_known += len(table.known_covariates)
        else:
            self.covariate_scaler = None
        if calendar:
            cal, cal_names = calendar_features(table.timestamps)
            blocks.append(cal)
            names += cal_names
            n_known += len(cal_names)
        self.covariate_names: list[str] = names
        self.n_known = n_known
        self.values = self.scaler.transform(table.values)
        self.covariates = (
            np.concatenate(blocks, 1) if blocks else np.zeros((len(table), 0), np.float32)
        )
        self.datasets: dict[str, WindowDataset] = {}
        self._shuffle_state: torch.Tensor | None = None
        self._generator: torch.Generator | None = None
        self._test_open = False
        self.drop_last = False

    @property
    def n_channels(self) -> int:
        """``C``."""
        return self.table.n_channels

    @property
    def n_covariates(self) -> int:
        """``Cz`` (past covariates, calendar included)."""
        return self.covariates.shape[1]

    def dataset(self, split: str, horizon: int | None = None) -> WindowDataset:
        """The windows of ``split`` (``train``, ``val`` or ``test``), of ``horizon`` future steps.

        The test windows exist only inside :meth:`final_evaluation`: training, early stopping
        and every selection see the training and validation windows alone.
        """
        if split == "test" and not self._test_open:
            raise RuntimeError(
                "the test split is read only by the final evaluation (inside "
                "ForecastDataModule.final_evaluation()); selection uses train and val only."
            )
        h = horizon or self.horizon
        key = split if h == self.horizon else f"{split}:{h}"
        if key not in self.datasets:
            start, stop = self.split.rows(split)
            self.datasets[key] = WindowDataset(
                self.values[start:stop],
                self.covariates[start:stop],
                self.lookback,
                h,
                self.n_known,
                stride=self.train_stride if split == "train" else 1,
            )
        return self.datasets[key]

    @contextmanager
    def final_evaluation(self) -> Iterator[ForecastDataModule]:
        """Open the test split for the final evaluation of a trained model."""
        self._test_open = True
        try:
            yield self
        finally:
            self._test_open = False
            for key in [k for k in self.datasets if k.split(":")[0] == "test"]:
                del self.datasets[key]

    def window_start_row(self, split: str, index: int) -> int:
        """Row of the table where window ``index`` of ``split`` starts (its first input row)."""
        return self.split.rows(split)[0] + index

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            self.dataset(split)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training windows; the shuffling generator resumes from a checkpoint."""
        self._generator = torch.Generator().manual_seed(self.seed)
        if self._shuffle_state is not None:
            self._generator.set_state(self._shuffle_state)
        return DataLoader(
            self.dataset("train"),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=self.drop_last and len(self.dataset("train")) > self.batch_size,
            generator=self._generator,
        )

    def state_dict(self) -> dict[str, Any]:
        """The shuffling generator's state.

        Lightning saves it in checkpoints, so ``--resume`` draws the same batches as the
        uninterrupted run would.
        """
        return {"shuffle_state": self._generator.get_state()} if self._generator else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` before the training loader is built."""
        self._shuffle_state = state_dict.get("shuffle_state")

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset("val"), batch_size=2 * self.batch_size)

    def test_dataloader(self) -> DataLoader:
        """Every test window (no dropped last batch); only inside :meth:`final_evaluation`."""
        return DataLoader(self.dataset("test"), batch_size=2 * self.batch_size)
