"""ProMoE end to end on scikit-learn digits: it learns class-conditional generation, and the CLI
(`train`, `eval`, `sample`, `--resume`, bad input) behaves."""

import csv
import json

import lightning as L
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from moesuite.vision.cli import app
from moesuite.vision.data.images import save_image

runner = CliRunner()
STEPS = 400


def _ok(args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _error(args, flag):
    result = runner.invoke(app, [str(a) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], result.output
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """ProMoE trained by the CLI for a few hundred steps on digits (rectified flow)."""
    root = tmp_path_factory.mktemp("promoe")
    mp = pytest.MonkeyPatch()
    mp.setenv("MOESUITE_CACHE_DIR", str(root / "cache"))
    out = _ok(["train", "promoe", "--steps", STEPS, "--threads", 1, "--out", root / "run",
               "--quiet"])  # fmt: skip
    assert "class accuracy" in out
    yield root / "run"
    mp.undo()


def test_promoe_learns_class_conditional_generation(run):
    config = json.loads((run / "config.json").read_text())
    assert config["system"] == "promoe" and config["model"] == "promoe"
    assert config["objective"] == "rf" and config["data"]["name"] == "digits"
    m = json.loads((run / "metrics.json").read_text())
    assert m["steps"] >= STEPS
    assert m["feature_net"]["held_out_accuracy"] > 0.9
    # chance is 0.1: the samples of each asked class are that class
    assert m["cfg_1.5"]["class_accuracy"] > 0.6, m["cfg_1.5"]
    assert m["cfg_1.0"]["class_accuracy"] > 0.4, m["cfg_1.0"]
    assert m["cfg_1.5"]["fid"] < m["cfg_1.0"]["fid"] * 1.5 and np.isfinite(m["cfg_1.5"]["kid"])
    assert 0 < m["class_expert"]["mi"] <= m["class_expert"]["max_mi"]
    for f in ("checkpoints/ema.pt", "checkpoints/last.ckpt", "plots/samples_cfg1.5.png"):
        assert (run / f).is_file()


def test_training_loss_drops(run):
    with (run / "logs" / "metrics.csv").open() as fh:
        losses = [float(r["train/task_loss_step"]) for r in csv.DictReader(fh)
                  if r.get("train/task_loss_step")]  # fmt: skip
    assert len(losses) >= 10
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.5 * first, (first, last)
    log = (run / "logs" / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line) for line in log if line.strip()]
    val = [e["val/task_loss"] for e in epochs if "val/task_loss" in e]
    assert len(val) >= 2 and val[-1] < val[0], val
    m = json.loads((run / "metrics.json").read_text())
    assert m["final_val_task_loss"] == pytest.approx(val[-1])


def test_sampling_one_class_produces_that_class(run, tmp_path):
    out = _ok(["sample", run, "--class", 3, "--cfg", 1.5, "--steps", 20, "--n", 24,
               "--threads", 1, "--out", tmp_path / "three.png"])  # fmt: skip
    assert (tmp_path / "three.png").is_file()
    accuracy = float(out.split("classifies ")[1].split("%")[0]) / 100
    assert accuracy > 0.6, out


def test_eval_writes_an_evaluation_directory(run, tmp_path):
    out = _ok(["eval", run, "--cfg", 1.5, "--steps", 10, "--threads", 1, "--out", tmp_path / "ev",
               "--quiet"])  # fmt: skip
    assert "FID" in out
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(k for k in m if k.startswith("cfg_")) == {"cfg_1.5"}
    assert m["parameters"]["activated"] < m["parameters"]["total"] and m["flops_per_image"] > 0


class _Interrupt(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 25:  # after the first epoch (21 steps) was checkpointed
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes(tmp_path, monkeypatch):
    from moesuite.vision.promoe.training import TrainConfig, train_diffusion

    monkeypatch.setenv("MOESUITE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = TrainConfig(model="tc-dit", objective="ddpm", steps=42, threads=1, eval_steps=2,
                      eval_per_class=2, eval_cfgs=(1.0,))  # fmt: skip
    with pytest.raises(SystemExit):
        train_diffusion(cfg, out=tmp_path / "cut", progress=False, callbacks=[_Interrupt()])
    assert (tmp_path / "cut" / "INTERRUPTED").is_file()
    _ok(["train", "tc-dit", "--resume", tmp_path / "cut", "--threads", 1, "--quiet"])
    m = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert m["steps"] == 42 and not (tmp_path / "cut" / "INTERRUPTED").exists()
    state = torch.load(tmp_path / "cut" / "checkpoints" / "ema.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values())


def test_bad_input_is_one_error_line_and_writes_nothing(run, tmp_path):
    out = tmp_path / "never"
    _error(["train", "no-such-model", "--out", out], "no-such-model")
    _error(["train", "promoe", "--data", tmp_path / "missing", "--out", out], "--data")
    _error(["train", "promoe", "--objective", "edm", "--out", out], "--objective")
    _error(["train", "promoe", "--patch-size", 3, "--out", out], "not divisible by the patch")
    folder = tmp_path / "odd"
    for c in ("a", "b"):
        for i in range(3):
            save_image(folder / c / f"{i}.png", np.full((9, 9), 0.5))
    _error(["train", "promoe", "--data", folder, "--out", out], "9x9 is not divisible")
    _error(["sample", run, "--cfg", -1, "--out", tmp_path / "g.png"], "--cfg")
    _error(["sample", run, "--steps", 0, "--out", tmp_path / "g.png"], "--steps")
    _error(["sample", run, "--class", 12, "--out", tmp_path / "g.png"], "--class 12")
    _error(["eval", run, "--cfg", -0.5, "--out", out], "--cfg")
    _error(["eval", run, "--steps", 0, "--out", out], "--steps")
    _error(["train", "dit", "--experts", 4, "--out", out], "--experts")
    assert not out.exists() and not (tmp_path / "g.png").exists()
    assert not list(tmp_path.glob(".never*"))


def test_compare_trains_each_model_at_one_budget_into_one_table(tmp_path, monkeypatch):
    monkeypatch.setenv("MOESUITE_CACHE_DIR", str(tmp_path / "cache"))
    out = _ok(["compare", "--model", "dit", "--model", "promoe", "--steps", 21, "--threads", 1,
               "--out", tmp_path / "cmp", "--quiet"])  # fmt: skip
    table = (tmp_path / "cmp" / "compare.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| dit") or
            line.startswith("| promoe")]  # fmt: skip
    assert len(rows) == 2 and "| dit |" in out
    results = json.loads((tmp_path / "cmp" / "metrics.json").read_text())["results"]
    for m in ("dit", "promoe"):
        (run,) = results[m]["runs"]
        assert run["steps"] >= 21 and run["model"] == m
        assert (tmp_path / "cmp" / f"{m}-s0" / "checkpoints" / "ema.pt").is_file()
    dense, moe = (results[m]["runs"][0]["parameters"] for m in ("dit", "promoe"))
    assert abs(moe["activated"] - dense["activated"]) / dense["activated"] < 0.02
    assert moe["total"] > dense["total"]
