"""Data: the CSV loader, standard splits and scaling, windows as a DataModule, the generator."""

from moesuite.timeseries.data.datamodule import ForecastDataModule, WindowDataset
from moesuite.timeseries.data.generator import make_synthetic
from moesuite.timeseries.data.splits import Split, StandardScaler, detect_protocol, split_borders
from moesuite.timeseries.data.table import SeriesTable, calendar_features, load_csv

__all__ = [
    "ForecastDataModule",
    "SeriesTable",
    "Split",
    "StandardScaler",
    "WindowDataset",
    "calendar_features",
    "detect_protocol",
    "load_csv",
    "make_synthetic",
    "split_borders",
]
