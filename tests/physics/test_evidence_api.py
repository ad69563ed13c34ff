"""The FLiDAR public API: run directories, re-evaluation, least squares, known optics, bad input."""

import json

import numpy as np
import pytest

from moesuite.physics.evidence import api
from moesuite.physics.evidence.lsq import lsq_fit
from moesuite.physics.flidar import SimulationConfig, save_npz, simulate_dataset

CFG = SimulationConfig(n_bins=64, bin_width_ns=0.195, oversample=2)


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    return save_npz(simulate_dataset(300, CFG, seed=0), tmp_path_factory.mktemp("data") / "small.npz")


def test_train_writes_a_run_directory_that_evaluate_reads(tmp_path, small_npz):
    run = api.train("evidence", data=small_npz, epochs=1, out=tmp_path / "run", progress=False, d_hidden=16)
    assert run == tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "evidence" and config["data"]["path"] == str(small_npz.resolve())
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("nrmse_depth", "nrmse_tau", "coverage90_depth", "nrmse_std_tau", "critic_spearman_depth", "params"):
        assert key in metrics
    assert (run / "checkpoints" / "model.pt").is_file() and (run / "logs" / "metrics.jsonl").is_file()
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == [
        "example_histograms.png", "nrmse_vs_depth_photons.png", "pred_vs_true.png"]
    again = api.evaluate(run, data=small_npz)
    assert again["n_signals"] == 300 and 0 <= again["coverage90_tau"] <= 1
    assert (run / "eval" / "metrics.json").is_file() and len(list((run / "eval" / "plots").glob("*.png"))) == 2
    # the reloaded network predicts exactly what the trained one did on the same data
    net = api.load_model(run)
    from moesuite.physics.flidar import load_npz

    ds = load_npz(small_npz)
    p1, p2 = api.predict(net, ds), api.predict(api.load_model(run), ds)
    np.testing.assert_array_equal(p1.mean, p2.mean)


def test_least_squares_recovers_parameters_when_optics_are_known():
    ds = simulate_dataset(12, SimulationConfig(ranges={"photons": (5e4, 1e5)}), seed=5)
    res = lsq_fit(ds, known_optics=True)
    y = np.stack([ds.column("depth_mm"), ds.column("tau_ns")], 1)
    np.testing.assert_allclose(res.mean, y, rtol=0.08)
    assert np.all(res.lower < res.upper)


def test_lsq_run_and_known_optics_network(tmp_path, small_npz):
    run = api.train("evidence-lsq", data=small_npz, out=tmp_path / "lsq", progress=False, lsq_max_signals=5)
    assert json.loads((run / "metrics.json").read_text())["n_signals"] == 5
    run2 = api.train("evidence-dense", data=small_npz, epochs=1, out=tmp_path / "known", progress=False,
                     known_optics=True, d_hidden=16)
    m = api.evaluate(run2, data=small_npz, out=tmp_path / "known-eval")
    assert (tmp_path / "known-eval" / "metrics.json").is_file() and m["n_signals"] == 300


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model": "nonsense"}, "unknown model 'nonsense'"),
    ({"model": "evidence", "epochs": 0}, "epochs must be a positive int"),
    ({"model": "evidence", "colour": 3}, "unknown training settings"),
])
def test_bad_arguments_leave_no_run_directory(tmp_path, small_npz, kwargs, match):
    model = kwargs.pop("model")
    with pytest.raises(ValueError, match=match):
        api.train(model, data=small_npz, out=tmp_path / "run", progress=False, **kwargs)
    assert not (tmp_path / "run").exists()


def test_evaluate_refuses_mismatched_bins(tmp_path, small_npz):
    run = api.train("evidence-dense", data=small_npz, epochs=1, out=tmp_path / "run", progress=False, d_hidden=8)
    other = save_npz(simulate_dataset(10, SimulationConfig(n_bins=32, bin_width_ns=0.39), seed=0), tmp_path / "o.npz")
    with pytest.raises(ValueError, match="32 bins but the run was trained on 64"):
        api.evaluate(run, data=other)
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        api.evaluate(tmp_path / "nowhere")
