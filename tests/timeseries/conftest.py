"""Fixtures for the timeseries tests: small CSV files, the ETTh1 path, one CPU thread per test.

The 2-core CI machine is shared; torch's intra-op threads then spin against each other and
small models run many times slower, so each test runs with one thread (restored afterwards).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ETTH1 = Path(__file__).resolve().parents[3] / "shared" / "data" / "ett" / "ETTh1.csv"


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def etth1() -> Path:
    if not ETTH1.is_file():
        pytest.skip(f"ETTh1 not found at {ETTH1} (the data is not part of the repository)")
    return ETTH1


def write_csv(path: Path, n: int = 600, seed: int = 0, **extra_columns) -> Path:
    """An hourly CSV with columns date, a, b, temp (+ extra columns as given)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    df = pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=n, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
            "a": np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=n),
            "b": np.cos(2 * np.pi * t / 12) + 0.05 * t / n,
            "temp": rng.normal(size=n).cumsum() * 0.1,
        }
    )
    for k, v in extra_columns.items():
        df[k] = v
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def csv_writer():
    """The :func:`write_csv` helper, as a fixture (test modules do not import conftest)."""
    return write_csv


@pytest.fixture
def small_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "small.csv")
