"""FLiDAR datasets: .npz round trip and clear errors on bad files and unphysical parameters."""

import json

import numpy as np
import pytest

from moesuite.physics.data.flidar import (
    PARAM_NAMES,
    FLiDARDataset,
    SimulationConfig,
    load_irf,
    load_npz,
    sample_params,
    save_npz,
    simulate_counts,
    simulate_dataset,
    validate_params,
)

CFG = SimulationConfig(n_bins=64, bin_width_ns=0.195)


@pytest.fixture(scope="module")
def small():
    return simulate_dataset(20, CFG, seed=0)


def test_round_trip(tmp_path, small):
    path = save_npz(small, tmp_path / "d.npz")
    back = load_npz(path)
    np.testing.assert_array_equal(back.signals, small.signals)
    np.testing.assert_array_equal(back.params, small.params)
    assert back.config == small.config


def test_sampling_respects_ranges_and_ties_emission_optics():
    p = sample_params(500, CFG, seed=1)
    for j, name in enumerate(PARAM_NAMES):
        if name in CFG.ranges:
            lo, hi = CFG.ranges[name]
            assert lo <= p[:, j].min() and p[:, j].max() <= hi
    np.testing.assert_array_equal(
        p[:, PARAM_NAMES.index("mua_em")], p[:, PARAM_NAMES.index("mua_ex")]
    )
    free = sample_params(500, SimulationConfig(independent_emission=True), seed=1)
    assert not np.allclose(
        free[:, PARAM_NAMES.index("mua_em")], free[:, PARAM_NAMES.index("mua_ex")]
    )


def test_same_seed_same_data():
    a, b = simulate_dataset(5, CFG, seed=3), simulate_dataset(5, CFG, seed=3)
    np.testing.assert_array_equal(a.signals, b.signals)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("depth_mm", -1.0, r"depth_mm\[2\] = -1.0 is unphysical"),
        ("tau_ns", 0.0, r"tau_ns\[2\] = 0.0 is unphysical"),
        ("musp_ex", np.nan, "musp_ex"),
        ("background", 1.5, "background"),
    ],
)
def test_unphysical_parameters_are_refused(name, value, match):
    p = sample_params(4, CFG, seed=0)
    p[2, PARAM_NAMES.index(name)] = value
    with pytest.raises(ValueError, match=match):
        validate_params(p)
    with pytest.raises(ValueError, match=match):
        simulate_counts(p, CFG)


def test_bad_ranges_and_config():
    with pytest.raises(ValueError, match="depth_mm"):
        SimulationConfig(ranges={"depth_mm": (-1.0, 5.0)})
    with pytest.raises(ValueError, match="unknown parameter"):
        SimulationConfig(ranges={"colour": (0, 1)})
    with pytest.raises(ValueError, match="bin_width_ns"):
        SimulationConfig(bin_width_ns=-0.1)


def test_mismatched_bin_counts(tmp_path, small):
    path = tmp_path / "bad.npz"
    np.savez(
        path, signals=small.signals[:, :60], params=small.params, config=json.dumps(CFG.to_dict())
    )
    with pytest.raises(ValueError, match="60 bins but the config says n_bins=64"):
        load_npz(path)


def test_malformed_npz(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_npz(junk)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_npz(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="missing array 'signals'"):
        load_npz(other)


def test_rows_and_params_must_agree(tmp_path, small):
    path = tmp_path / "rows.npz"
    np.savez(path, signals=small.signals, params=small.params[:5], config=json.dumps(CFG.to_dict()))
    with pytest.raises(ValueError, match="params has 5 rows but signals has 20"):
        load_npz(path)
    bad = small.params.copy()
    bad[0, 0] = -3.0
    np.savez(path, signals=small.signals, params=bad, config=json.dumps(CFG.to_dict()))
    with pytest.raises(ValueError, match=r"depth_mm\[0\] = -3.0"):
        load_npz(path)


def test_unlabelled_measurements_load_without_params(tmp_path, small):
    path = save_npz(FLiDARDataset(small.signals, None, CFG), tmp_path / "meas.npz")
    with pytest.raises(ValueError, match="missing array 'params'"):
        load_npz(path)
    assert load_npz(path, require_params=False).params is None


def test_negative_counts_refused():
    with pytest.raises(ValueError, match="finite and >= 0"):
        FLiDARDataset(-np.ones((2, 64)), None, CFG)


def test_measured_irf(tmp_path):
    irf = np.exp(-0.5 * ((np.arange(64) - 3) / 0.8) ** 2)
    np.savetxt(tmp_path / "irf.txt", irf)
    loaded = load_irf(tmp_path / "irf.txt", 64)
    p = sample_params(3, CFG, seed=0)
    with_irf = simulate_dataset(3, CFG, seed=0, irf=loaded)
    assert with_irf.signals.shape == (3, 64)
    from moesuite.physics.data.flidar import expected_shape

    np.testing.assert_allclose(expected_shape(p, CFG, loaded).sum(1), 1.0)
    with pytest.raises(ValueError, match="IRF must hold 64"):
        np.savetxt(tmp_path / "short.txt", irf[:10])
        load_irf(tmp_path / "short.txt", 64)
