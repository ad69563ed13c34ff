"""The MixER public API used by the CLI and the demo: run directories, re-evaluation, bad input."""

import json

import pytest

from moesuite.physics.mixer import api
from moesuite.physics.odes import generate, save_dataset


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    ds = generate(families="van_der_pol,lotka_volterra", n_train_envs=3, n_adapt_envs=1, n_train_ics=2,
                  n_test_ics=1, n_times=6, seed=0)
    return save_dataset(ds, tmp_path_factory.mktemp("data") / "small.npz")


def test_train_writes_a_run_directory_that_evaluate_reads(tmp_path, small_npz):
    run = api.train("mixer", data=small_npz, epochs=1, out=tmp_path / "run", progress=False)
    assert run == tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "mixer" and config["families"] == ["van_der_pol", "lotka_volterra"]
    assert config["data"]["path"] == str(small_npz.resolve())
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("mse_in_domain", "mse_adapt", "ari", "train_seconds", "per_family"):
        assert key in metrics
    assert metrics["num_experts"] == 2 and metrics["gate_updates"] > 0
    assert (run / "checkpoints" / "model.pt").is_file()
    assert (run / "logs" / "metrics.jsonl").is_file()
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == [
        "expert_assignment.png", "trajectories_adapt.png", "trajectories_in_domain.png"]
    again = api.evaluate(run)
    assert again["mse_in_domain"] == pytest.approx(metrics["mse_in_domain"], rel=1e-5)
    assert again["ari"] == metrics["ari"]
    assert (run / "eval" / "metrics.json").is_file() and len(list((run / "eval" / "plots").glob("*.png"))) == 3
    out = api.evaluate(run, data=small_npz, out=tmp_path / "elsewhere")
    assert out["mse_adapt"] == pytest.approx(again["mse_adapt"], rel=1e-5)
    assert (tmp_path / "elsewhere" / "metrics.json").is_file()


def test_baselines_train_through_the_same_api(tmp_path, small_npz):
    for model in ("mixer-shared", "mixer-gradgate"):
        run = api.train(model, data=small_npz, epochs=1, out=tmp_path / model, progress=False)
        metrics = json.loads((run / "metrics.json").read_text())
        assert json.loads((run / "config.json").read_text())["model"] == model
        assert metrics["num_experts"] == (1 if model == "mixer-shared" else 2)


def test_bad_input_is_one_clear_error_and_leaves_nothing(tmp_path, small_npz):
    with pytest.raises(ValueError, match=r"unknown model 'mixr'; expected one of \['mixer', 'mixer-shared', 'mixer-gradgate'\]"):
        api.train("mixr", out=tmp_path / "a")
    with pytest.raises(ValueError, match=r"unknown ODE family 'lorentz'.*'lorenz'"):
        api.train("mixer", families="van_der_pol,lorentz", out=tmp_path / "b")
    with pytest.raises(ValueError, match=r"families \['sir'\] are not in this dataset"):
        api.train("mixer", families="sir", data=small_npz, out=tmp_path / "c")
    bad = tmp_path / "bad.npz"
    bad.write_text("not numpy")
    with pytest.raises(ValueError, match="not a readable .npz"):
        api.train("mixer", data=bad, out=tmp_path / "d")
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        api.train("mixer", epochs=0, out=tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        api.evaluate(tmp_path / "nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_constants_of_the_contract():
    assert api.MODELS == ("mixer", "mixer-shared", "mixer-gradgate")
    assert api.default_num_experts(10) == 10 and api.default_num_experts(1) == 3
