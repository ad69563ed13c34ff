"""moesuite-timeseries: MoHETS long-horizon forecasting with covariates, and its baselines.

Subpackages: :mod:`moesuite.timeseries.data` (CSV loader, splits, windows, generator),
:mod:`moesuite.timeseries.models` (MoHETS, PatchTST, DLinear, naive), and the training,
evaluation, comparison, CLI and demo modules.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("moesuite-timeseries")
except PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0"
