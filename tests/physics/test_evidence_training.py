"""The FLiDAR side end to end: run directories, re-evaluation, resume, compare, least squares."""

import json
import signal

import lightning as L
import numpy as np
import pytest
import torch

from moesuite.core.training import INTERRUPTED
from moesuite.physics.data.flidar import SimulationConfig, load_npz, save_npz, simulate_dataset
from moesuite.physics.evidence import evaluate, training
from moesuite.physics.evidence.lsq import lsq_fit

CFG = SimulationConfig(n_bins=64, bin_width_ns=0.195, oversample=2)


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    return save_npz(
        simulate_dataset(300, CFG, seed=0), tmp_path_factory.mktemp("data") / "small.npz"
    )


def test_train_writes_a_run_directory_that_evaluate_reads(tmp_path, small_npz):
    run = training.train(
        "evidence", data=small_npz, epochs=1, out=tmp_path / "run", progress=False, d_hidden=16
    )
    assert run == tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "evidence" and config["data"]["path"] == str(small_npz.resolve())
    metrics = json.loads((run / "metrics.json").read_text())
    for key in (
        "nrmse_depth",
        "nrmse_tau",
        "coverage90_depth",
        "nrmse_std_tau",
        "critic_spearman_depth",
        "params",
    ):
        assert key in metrics
    assert (run / "checkpoints" / "model.pt").is_file() and (
        run / "logs" / "metrics.jsonl"
    ).is_file()
    logged = json.loads((run / "logs" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train/loss", "train/task_loss", "train/aux_loss", "val/loss", "val/aux_loss"} <= set(
        logged
    )
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == [
        "example_histograms.png",
        "expert_wins.png",  # which expert wins where, over depth x lifetime
        "nrmse_vs_depth_photons.png",
        "pred_vs_true.png",
    ]
    again = evaluate.evaluate(run, data=small_npz)
    assert again["n_signals"] == 300 and 0 <= again["coverage90_tau"] <= 1
    assert (run / "eval" / "metrics.json").is_file() and len(
        list((run / "eval" / "plots").glob("*.png"))
    ) == 3
    # the reloaded network predicts exactly what the trained one did on the same data
    ds = load_npz(small_npz)
    p1, p2 = (
        evaluate.predict(evaluate.load_model(run), ds),
        evaluate.predict(evaluate.load_model(run), ds),
    )
    np.testing.assert_array_equal(p1.mean, p2.mean)


class _InterruptAtEpoch(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, small_npz):
    settings = {"data": small_npz, "epochs": 3, "progress": False, "d_hidden": 8, "batch_size": 64}
    straight = training.train("evidence-softmax", out=tmp_path / "straight", **settings)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown after Ctrl+C
            training.train(
                "evidence-softmax",
                out=tmp_path / "cut",
                callbacks=[_InterruptAtEpoch(2)],
                **settings,
            )
    finally:
        signal.signal(signal.SIGINT, handler)
    cut = tmp_path / "cut"
    assert (cut / INTERRUPTED).is_file() and not (cut / "metrics.json").exists()
    with pytest.raises(ValueError, match="drop"):
        training.train("evidence-softmax", resume=cut, epochs=5, progress=False)
    with pytest.raises(ValueError, match="not 'evidence'"):
        training.train("evidence", resume=cut, progress=False)
    assert training.train("evidence-softmax", resume=cut, progress=False) == cut
    assert not (cut / INTERRUPTED).exists() and (cut / "metrics.json").is_file()
    a = torch.load(straight / "checkpoints" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(cut / "checkpoints" / "model.pt", weights_only=True)["state_dict"]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    epochs = [
        json.loads(line)["epoch"]
        for line in (cut / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [0, 1, 2]
    with pytest.raises(ValueError, match="was not interrupted"):
        training.train("evidence-softmax", resume=cut, progress=False)


def test_compare_scores_every_model_on_the_same_test_signals(tmp_path, small_npz):
    path, rows = training.compare(
        ["evidence-dense", "evidence-lsq"],
        data=small_npz,
        epochs=1,
        out=tmp_path / "cmp",
        progress=False,
        d_hidden=8,
        lsq_max_signals=4,
    )
    assert [r["model"] for r in rows] == ["evidence-dense", "evidence-lsq"]
    assert (
        rows[0]["n_signals"] == 60 and rows[1]["n_signals"] == 4
    )  # a fifth of 300; LSQ: the first 4
    table = (path / "comparison.md").read_text()
    assert table.startswith("| model | NRMSE depth") and "| evidence-lsq |" in table
    assert (path / "plots" / "nrmse_vs_depth_photons.png").is_file()
    assert len(json.loads((path / "metrics.json").read_text())["models"]) == 2


def test_least_squares_recovers_parameters_when_optics_are_known():
    ds = simulate_dataset(12, SimulationConfig(ranges={"photons": (5e4, 1e5)}), seed=5)
    res = lsq_fit(ds, known_optics=True)
    y = np.stack([ds.column("depth_mm"), ds.column("tau_ns")], 1)
    np.testing.assert_allclose(res.mean, y, rtol=0.08)
    assert np.all(res.lower < res.upper)


def test_lsq_run_and_known_optics_network(tmp_path, small_npz):
    run = training.train(
        "evidence-lsq", data=small_npz, out=tmp_path / "lsq", progress=False, lsq_max_signals=5
    )
    assert json.loads((run / "metrics.json").read_text())["n_signals"] == 5
    run2 = training.train(
        "evidence-dense",
        data=small_npz,
        epochs=1,
        out=tmp_path / "known",
        progress=False,
        known_optics=True,
        d_hidden=16,
    )
    m = evaluate.evaluate(run2, data=small_npz, out=tmp_path / "known-eval")
    assert (tmp_path / "known-eval" / "metrics.json").is_file() and m["n_signals"] == 300


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"model": "nonsense"},
            r"unknown model 'nonsense'; expected one of \['evidence', 'evidence-dense'",
        ),
        ({"model": "evidence", "epochs": 0}, "epochs must be a positive int"),
        ({"model": "evidence", "colour": 3}, "unknown training settings"),
    ],
)
def test_bad_arguments_leave_no_run_directory(tmp_path, small_npz, kwargs, match):
    model = kwargs.pop("model")
    with pytest.raises(ValueError, match=match):
        training.train(model, data=small_npz, out=tmp_path / "run", progress=False, **kwargs)
    assert not (tmp_path / "run").exists()


def test_evaluate_refuses_mismatched_bins(tmp_path, small_npz):
    run = training.train(
        "evidence-dense", data=small_npz, epochs=1, out=tmp_path / "run", progress=False, d_hidden=8
    )
    other = save_npz(
        simulate_dataset(10, SimulationConfig(n_bins=32, bin_width_ns=0.39), seed=0),
        tmp_path / "o.npz",
    )
    with pytest.raises(ValueError, match="32 bins but the run was trained on 64"):
        evaluate.evaluate(run, data=other)
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        evaluate.evaluate(tmp_path / "nowhere")
