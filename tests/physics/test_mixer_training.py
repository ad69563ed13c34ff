"""MixER's training and evaluation entry points: run directories, re-evaluation, resume, errors."""

import json
import signal

import lightning as L
import pytest
import torch

from moesuite.core.training import INTERRUPTED
from moesuite.physics.mixer import evaluate, training
from moesuite.physics.odes import generate, save_dataset


@pytest.fixture(autouse=True)
def _short_adaptation(monkeypatch):
    """Runs adapt with 20 steps (the default's 300 are for the benchmark, not these checks)."""
    import functools

    monkeypatch.setattr(training, "AdaptConfig", functools.partial(training.AdaptConfig, steps=20))


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    ds = generate(
        families="van_der_pol,lotka_volterra",
        n_train_envs=3,
        n_adapt_envs=1,
        n_train_ics=2,
        n_test_ics=1,
        n_times=6,
        seed=0,
    )
    return save_dataset(ds, tmp_path_factory.mktemp("data") / "small.npz")


def test_train_writes_a_run_directory_that_evaluate_reads(tmp_path, small_npz):
    run = training.train("mixer", data=small_npz, epochs=1, out=tmp_path / "run", progress=False)
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
        "expert_assignment.png",
        "trajectories_adapt.png",
        "trajectories_in_domain.png",
    ]
    again = evaluate.evaluate(run)
    assert again["mse_in_domain"] == pytest.approx(metrics["mse_in_domain"], rel=1e-5)
    assert again["ari"] == metrics["ari"]
    assert (run / "eval" / "metrics.json").is_file() and len(
        list((run / "eval" / "plots").glob("*.png"))
    ) == 3
    out = evaluate.evaluate(run, data=small_npz, out=tmp_path / "elsewhere")
    assert out["mse_adapt"] == pytest.approx(again["mse_adapt"], rel=1e-5)
    assert (tmp_path / "elsewhere" / "metrics.json").is_file()


def test_baselines_train_through_the_same_entry_point(tmp_path, small_npz):
    for model in ("mixer-shared", "mixer-gradgate"):
        run = training.train(model, data=small_npz, epochs=1, out=tmp_path / model, progress=False)
        metrics = json.loads((run / "metrics.json").read_text())
        assert json.loads((run / "config.json").read_text())["model"] == model
        assert metrics["num_experts"] == (1 if model == "mixer-shared" else 2)


class _InterruptAtEpoch(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, small_npz):
    # 4 epochs x 10 outer steps: the tied warm-up ends in epoch 1, the curriculum and the lr
    # decay run across the interruption; gate updates draw from the K-means generator
    settings = {"data": small_npz, "epochs": 4, "progress": False}
    straight = training.train("mixer", out=tmp_path / "straight", **settings)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):
            training.train(
                "mixer", out=tmp_path / "cut", callbacks=[_InterruptAtEpoch(2)], **settings
            )
    finally:
        signal.signal(signal.SIGINT, handler)
    cut = tmp_path / "cut"
    assert (cut / INTERRUPTED).is_file()
    with pytest.raises(ValueError, match=r"families: --resume continues"):
        training.train("mixer", resume=cut, families="lorenz", progress=False)
    training.train("mixer", resume=cut, progress=False)
    a = torch.load(straight / "checkpoints" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(cut / "checkpoints" / "model.pt", weights_only=True)["state_dict"]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    m_a, m_b = (json.loads((r / "metrics.json").read_text()) for r in (straight, cut))
    assert m_a["gate_updates"] == m_b["gate_updates"] and m_a["mse_adapt"] == m_b["mse_adapt"]


def test_compare_trains_each_model_on_the_same_data(tmp_path, small_npz):
    path, rows = training.compare(
        ["mixer", "mixer-shared"], data=small_npz, epochs=1, out=tmp_path / "cmp", progress=False
    )
    assert [r["model"] for r in rows] == ["mixer", "mixer-shared"]
    assert "| mixer-shared | 1 |" in (path / "comparison.md").read_text()
    assert sorted(p.name for p in (path / "plots").glob("*.png")) == [
        "expert_assignment_mixer-shared.png",
        "expert_assignment_mixer.png",
    ]


def test_bad_input_is_one_clear_error_and_leaves_nothing(tmp_path, small_npz):
    with pytest.raises(
        ValueError, match=r"unknown model 'mixr'; expected one of \['mixer', 'mixer-gradgate'"
    ):
        training.train("mixr", out=tmp_path / "a")
    with pytest.raises(ValueError, match=r"unknown ODE family 'lorentz'.*'lorenz'"):
        training.train("mixer", families="van_der_pol,lorentz", out=tmp_path / "b")
    with pytest.raises(ValueError, match=r"families \['sir'\] are not in this dataset"):
        training.train("mixer", families="sir", data=small_npz, out=tmp_path / "c")
    bad = tmp_path / "bad.npz"
    bad.write_text("not numpy")
    with pytest.raises(ValueError, match="not a readable .npz"):
        training.train("mixer", data=bad, out=tmp_path / "d")
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        training.train("mixer", epochs=0, out=tmp_path / "e")
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        evaluate.evaluate(tmp_path / "nope")
    lightning = {"accelerator": "cpu", "devices": 2, "strategy": "ddp"}
    with pytest.raises(ValueError, match="ddp_find_unused_parameters_true"):
        training.train("mixer", data=small_npz, out=tmp_path / "f", lightning=lightning)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_constants_of_the_contract():
    assert training.MODELS.list() == ["mixer", "mixer-gradgate", "mixer-shared"]
    assert training.default_num_experts(10) == 10 and training.default_num_experts(1) == 3
