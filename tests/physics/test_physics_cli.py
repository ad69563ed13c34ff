"""``moesuite physics`` end to end on tiny configs, and one-line errors for bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from moesuite.physics.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "sim"
    res = invoke("simulate", "--n", 200, "--n-bins", 64, "--bin-width-ns", 0.195, "--out", out)
    assert res.exit_code == 0, res.output
    return out


def test_simulate_writes_dataset_and_plot(sim):
    assert (sim / "dataset.npz").is_file() and (sim / "plots" / "example_histograms.png").is_file()
    assert json.loads((sim / "metrics.json").read_text())["n_signals"] == 200


def test_train_and_eval_evidence(tmp_path, sim):
    res = invoke(
        "train",
        "evidence-softmax",
        "--data",
        sim / "dataset.npz",
        "--epochs",
        1,
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert "nrmse_depth=" in res.output and (tmp_path / "r" / "checkpoints" / "model.pt").is_file()
    res = invoke("eval", tmp_path / "r", "--data", sim / "dataset.npz")
    assert res.exit_code == 0, res.output
    assert "coverage90_tau=" in res.output and (tmp_path / "r" / "eval" / "metrics.json").is_file()


def test_train_and_eval_mixer(tmp_path, monkeypatch):
    import functools

    from moesuite.physics.mixer import training
    from moesuite.physics.odes import generate, save_dataset

    # the CLI routes to mixer.training (tested in test_mixer_training); keep adaptation short here
    monkeypatch.setattr(training, "AdaptConfig", functools.partial(training.AdaptConfig, steps=5))
    ds = generate(
        families="van_der_pol,lotka_volterra",
        n_train_envs=3,
        n_adapt_envs=1,
        n_train_ics=2,
        n_test_ics=1,
        n_times=6,
        seed=0,
    )
    data = save_dataset(ds, tmp_path / "odes.npz")
    res = invoke(
        "train", "mixer-shared", "--data", data, "--epochs", 1, "--out", tmp_path / "m", "--quiet"
    )
    assert res.exit_code == 0, res.output
    assert "ari=" in res.output
    res = invoke("eval", tmp_path / "m")
    assert res.exit_code == 0 and "mse_adapt=" in res.output, res.output
    res = invoke(
        "compare",
        "--model",
        "mixer",
        "--model",
        "mixer-shared",
        "--data",
        data,
        "--epochs",
        1,
        "--experts",
        2,
        "--out",
        tmp_path / "c",
        "--quiet",
    )
    assert res.exit_code == 0, res.output
    assert "| mixer-shared |" in res.output and (tmp_path / "c" / "comparison.md").is_file()


def test_list_prints_the_registries():
    res = invoke("list")
    assert res.exit_code == 0, res.output
    for name in (
        "evidence",
        "evidence-lsq",
        "mixer",
        "mixer-gradgate",
        "lotka_volterra",
        "rossler",
    ):
        assert f"  {name} " in res.output


def test_train_resumes_an_interrupted_run(tmp_path, sim):
    from moesuite.core.training import INTERRUPTED

    # an interrupted run as Ctrl+C leaves it: the checkpoint of epoch 0, no metrics yet
    first = invoke(
        "train",
        "evidence-dense",
        "--data",
        sim / "dataset.npz",
        "--epochs",
        1,
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert first.exit_code == 0, first.output
    run = tmp_path / "r"
    config = json.loads((run / "config.json").read_text())
    config["train_config"]["epochs"] = 2
    (run / "config.json").write_text(json.dumps(config))
    (run / INTERRUPTED).write_text("")
    (run / "metrics.json").unlink()
    res = invoke("train", "evidence-dense", "--resume", run, "--quiet", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert (
        "nrmse_depth=" in res.output
        and (run / "metrics.json").is_file()
        and not (run / INTERRUPTED).exists()
    )
    epochs = [
        json.loads(line)["epoch"]
        for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [0, 1]


def _bad_files(tmp_path, sim):
    z = dict(np.load(sim / "dataset.npz"))
    p = z["params"].copy()
    p[1, 1] = -0.5
    np.savez(tmp_path / "neg.npz", **{**z, "params": p})
    np.savez(tmp_path / "bins.npz", **{**z, "signals": z["signals"][:, :50]})
    (tmp_path / "junk.npz").write_text("not an archive")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("train", "evidence", "--data", "{tmp}/junk.npz"), "not a readable .npz"),
        (("train", "evidence", "--data", "{tmp}/neg.npz"), "tau_ns[1] = -0.5 is unphysical"),
        (
            ("train", "evidence", "--data", "{tmp}/bins.npz"),
            "50 bins but the config says n_bins=64",
        ),
        (("train", "evidence", "--data", "{tmp}/missing.npz"), "no such file"),
        (("train", "nonsense"), "unknown model 'nonsense'"),
        (("train", "mixer", "--families", "nonsense"), "unknown ODE family 'nonsense'"),
        (
            ("train", "evidence", "--families", "lorenz"),
            "--families applies to the ODE models only",
        ),
        (("train", "mixer", "--known-optics"), "--known-optics applies to the FLiDAR models only"),
        (("train", "evidence", "--resume", "{tmp}/nowhere"), "not a run directory"),
        (("compare",), "--model: give the models to compare"),
        (("compare", "--model", "evidence", "--model", "mixer"), "mix FLiDAR and ODE models"),
        (("eval", "{tmp}/nowhere"), "no such run directory"),
        (("simulate", "--n-bins", 4), "n_bins must be an int >= 8"),
    ],
)
def test_bad_input_is_one_line_nonzero_and_leaves_nothing(tmp_path, sim, args, match):
    _bad_files(tmp_path, sim)
    out = tmp_path / "run"
    args = [str(a).format(tmp=tmp_path) for a in args]
    res = (
        invoke(*args, "--out", out)
        if "--resume" not in args and args[0] != "eval"
        else invoke(*args)
    )
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], res.output
    assert not out.exists()


def test_simulate_has_an_option_per_sampling_range(tmp_path):
    out = tmp_path / "shifted"
    res = invoke("simulate", "--n", 50, "--n-bins", 32, "--bin-width-ns", 0.39, "--out", out,
                 "--photons", "300,1000", "--scattering", "2,3", "--depth", "2,4")  # fmt: skip
    assert res.exit_code == 0, res.output
    from moesuite.physics.data.flidar import load_npz

    ds = load_npz(out / "dataset.npz")
    assert ds.config.ranges["photons"] == (300.0, 1000.0)
    assert ds.column("musp_ex").min() >= 2 and ds.column("musp_ex").max() <= 3
    assert ds.column("depth_mm").max() <= 4 and ds.column("photons").max() <= 1000
    bad = invoke("simulate", "--n", 5, "--out", tmp_path / "bad", "--lifetime", "2")
    assert bad.exit_code == 2 and "--lifetime: expected LO,HI" in bad.output
    assert not (tmp_path / "bad").exists()
    bad = invoke("simulate", "--n", 5, "--out", tmp_path / "bad", "--absorption", "-1,1")
    assert bad.exit_code == 2 and "not a valid physical range" in bad.output
