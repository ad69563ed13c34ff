"""moesuite-timeseries: MoHETS long-horizon forecasting with covariates, and its baselines.

Modules: :mod:`~moesuite.timeseries.data` (CSV loader, splits, windows, generator),
:mod:`~moesuite.timeseries.models` (one file per model, registered in ``MODELS``),
:mod:`~moesuite.timeseries.config` (a run's settings and what rebuilds its data and model),
:mod:`~moesuite.timeseries.training` (train, resume, compare), :mod:`~moesuite.timeseries.evaluate`
(metrics, evaluation of a run, the comparison table), :mod:`~moesuite.timeseries.forecast`
(forecast past the end of a file), :mod:`~moesuite.timeseries.cli` and
:mod:`~moesuite.timeseries.demo`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("moesuite-timeseries")
except PackageNotFoundError:  # pragma: no cover - source checkout without install
    __version__ = "0.0.0"
