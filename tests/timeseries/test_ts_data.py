"""CSV loading, the standard splits and scaling, windows and the absence of leakage."""

import numpy as np
import pandas as pd
import pytest

from moesuite.timeseries.data import (
    ForecastDataModule,
    SeriesTable,
    calendar_features,
    load_csv,
    make_synthetic,
    split_borders,
)


def test_load_csv_targets_covariates_and_calendar(small_csv):
    t = load_csv(small_csv, covariates="temp")
    assert t.columns == ["a", "b"] and t.covariate_columns == ["temp"] and len(t) == 600
    t2 = load_csv(small_csv, target="b", covariates=["temp"], known_covariates="temp")
    assert t2.columns == ["b"] and t2.known_covariates == ["temp"]
    cal, names = calendar_features(t.timestamps)
    assert names == ["hour", "weekday", "monthday", "yearday"]
    assert cal.min() >= -0.5 and cal.max() <= 0.5


def test_missing_values_are_interpolated(tmp_path, csv_writer):
    p = csv_writer(tmp_path / "gaps.csv", n=50)
    df = pd.read_csv(p)
    df.loc[10, "a"] = np.nan
    df.to_csv(p, index=False)
    t = load_csv(p)
    raw = pd.read_csv(p)["a"].to_numpy()
    assert np.isclose(t.values[10, 0], (raw[9] + raw[11]) / 2, atol=1e-5)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such file"),
        ("no_timestamp", "no timestamp column"),
        ("non_numeric", "is not numeric"),
        ("all_nan", "has no values"),
        ("unknown_target", "no data column 'zzz'"),
        ("known_not_covariate", "must also be listed in --covariates"),
    ],
)
def test_bad_csv_inputs_raise_clear_errors(tmp_path, case, message, csv_writer):
    p = csv_writer(tmp_path / "x.csv", n=40)
    kwargs = {}
    if case == "missing":
        p = tmp_path / "nope.csv"
    elif case == "no_timestamp":
        pd.read_csv(p).drop(columns="date").to_csv(p, index=False)
    elif case == "non_numeric":
        csv_writer(p, n=40, label=["x"] * 40)
    elif case == "all_nan":
        csv_writer(p, n=40, empty=[np.nan] * 40)
    elif case == "unknown_target":
        kwargs["target"] = "zzz"
    else:
        kwargs["known_covariates"] = "temp"
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_csv(p, **kwargs)


def test_etth1_split_rows_match_the_standard_protocol(etth1):
    t = load_csv(etth1)
    assert t.columns == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"] and len(t) == 17420
    L, H = 336, 96
    dm = ForecastDataModule(t, lookback=L, horizon=H)
    dm._test_open = True  # this test reads the test windows (as only the final evaluation does)
    s = dm.split
    assert s.protocol == "ett-hour"
    assert s.train == (0, 8640)
    assert (s.val[1] - s.val[0] - L, s.test[1] - s.test[0] - L) == (2880, 2880)
    assert s.val[0] == 8640 - L and s.test[0] == 8640 + 2880 - L
    # windows per split as in the Informer/PatchTST loaders: rows - L - H + 1
    assert [len(dm.dataset(k)) for k in ("train", "val", "test")] == [
        8640 - L - H + 1,
        2880 - H + 1,
        2880 - H + 1,
    ]
    # train-statistics scaling: mean 0 / std 1 on the training rows only
    raw = pd.read_csv(etth1).iloc[:8640, 1:].to_numpy()
    assert np.allclose(dm.scaler.mean, raw.mean(0)) and np.allclose(dm.scaler.std, raw.std(0))
    assert np.allclose(dm.values[:8640].mean(0), 0, atol=1e-4)
    assert not np.allclose(
        dm.values[8640:].mean(0), 0, atol=1e-2
    )  # later months drift: not re-fitted
    # the first test window's target starts right after the validation range
    first = dm.dataset("test")[0]
    assert np.allclose(first["y"][0].numpy(), dm.values[8640 + 2880])


def test_ratio_split_is_70_10_20():
    s = split_borders(1000, lookback=50, horizon=10, protocol="ratio")
    assert (s.train, s.val, s.test) == ((0, 700), (650, 800), (750, 1000))
    with pytest.raises(ValueError, match="too few rows"):
        split_borders(100, lookback=50, horizon=20)


def test_windows_are_aligned_and_covariates_ordered():
    t = make_synthetic(800, 2, seed=3)
    t.known_covariates = []
    dm = ForecastDataModule(t, lookback=48, horizon=24)
    item = dm.dataset("val")[5]
    row = dm.window_start_row("val", 5)
    assert np.allclose(item["x"].numpy(), dm.values[row : row + 48])
    assert np.allclose(item["y"].numpy(), dm.values[row + 48 : row + 72])
    assert (
        dm.covariate_names == ["driver", "hour", "weekday", "monthday", "yearday"]
        and dm.n_known == 4
    )
    assert np.allclose(item["z_future"].numpy(), dm.covariates[row + 48 : row + 72, 1:])


def _table(values, cov, known):
    return SeriesTable(
        pd.date_range("2020-01-01", periods=len(values), freq="h"),
        values,
        ["y0", "y1"],
        cov,
        ["u", "k"],
        known_covariates=known,
    )


def test_no_future_target_or_unknown_covariate_reaches_a_window():
    rng = np.random.default_rng(0)
    values, cov = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    L, H, i = 48, 24, 30
    base = ForecastDataModule(_table(values, cov, ["k"]), lookback=L, horizon=H, protocol="ratio")
    start = base.window_start_row("test", i)
    # change everything after the window's input: targets and the past-only covariate u
    v2, c2 = values.copy(), cov.copy()
    v2[start + L :] += 100.0
    c2[start + L :, 0] += 100.0
    changed = ForecastDataModule(_table(v2, c2, ["k"]), lookback=L, horizon=H, protocol="ratio")
    with base.final_evaluation(), changed.final_evaluation():
        a, b = base.dataset("test")[i], changed.dataset("test")[i]
    for key in ("x", "z_past", "z_future"):
        assert np.allclose(a[key].numpy(), b[key].numpy()), key
    assert not np.allclose(a["y"].numpy(), b["y"].numpy())
    # the covariate flagged as known does reach z_future
    c3 = cov.copy()
    c3[start + L :, 1] += 100.0
    known = ForecastDataModule(_table(values, c3, ["k"]), lookback=L, horizon=H, protocol="ratio")
    with known.final_evaluation():
        assert not np.allclose(known.dataset("test")[i]["z_future"].numpy(), a["z_future"].numpy())
    # ...and only when flagged
    unflagged = ForecastDataModule(_table(values, c3, []), lookback=L, horizon=H, protocol="ratio")
    assert unflagged.n_known == 4  # calendar only
    ref = ForecastDataModule(_table(values, cov, []), lookback=L, horizon=H, protocol="ratio")
    with unflagged.final_evaluation(), ref.final_evaluation():
        u, r = unflagged.dataset("test")[i], ref.dataset("test")[i]
    assert np.allclose(u["z_future"].numpy(), r["z_future"].numpy())
