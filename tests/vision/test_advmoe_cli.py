"""AdvMoE from the command line: train, eval, attack, compare; bad input is one error line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from moesuite.core.training import torch_threads
from moesuite.vision.cli import app
from moesuite.vision.data.digits import load_digits_images
from moesuite.vision.data.images import save_image

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread (a second one spin-waits on a busy machine)."""
    with torch_threads(1):
        yield


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_error_line(result, *needles):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for n in needles:
        assert n in lines[0], result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A labelled folder of 60 digits (6 per class), 8x8 grayscale PNGs."""
    root = tmp_path_factory.mktemp("digits")
    images, labels = load_digits_images()
    for c in range(10):
        for i, k in enumerate(np.flatnonzero(labels == c)[:6]):
            save_image(root / str(c) / f"{i}.png", images[k])
    return root


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "advmoe"
    result = _invoke(
        "train", "advmoe", "--data", folder, "--epochs", 1, "--batch-size", 16,
        "--threads", 1, "--device", "cpu", "--out", out, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_complete_run_directory(run):
    config = json.loads((run / "config.json").read_text())
    assert config["system"] == "advmoe" and config["model"] == "advmoe"
    assert config["scheme"] == "advmoe" and config["model_cfg"]["experts"] == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"clean_acc", "pgd10_acc", "flops", "usage_per_class"} <= set(metrics)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "plots" / "usage_per_class.png").is_file()


def test_eval_and_attack_write_their_reports(run, tmp_path):
    result = _invoke("eval", run, "--steps", 2, "--out", tmp_path / "ev", "--threads", 1)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {"pgd2_acc", "router_attack_acc", "latency_ms"} <= set(metrics)
    result = _invoke(
        "attack", run, "--eps", 0.3, "--steps", 2, "--restarts", 2, "--out", tmp_path / "at"
    )
    assert result.exit_code == 0, result.output
    assert "router-only attack" in result.output
    metrics = json.loads((tmp_path / "at" / "metrics.json").read_text())
    assert metrics["restarts"] == 2 and 0 <= metrics["pgd_acc"] <= 1


def test_compare_makes_one_table(folder, tmp_path):
    out = tmp_path / "cmp"
    result = _invoke(
        "compare", "--model", "advmoe", "--model", "resnet18-half", "--scheme", "joint",
        "--data", folder, "--epochs", 1, "--batch-size", 32, "--out", out, "--threads", 1,
        "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "advmoe (joint, shared)" in result.output and "resnet18-half (dense" in result.output
    assert (out / "plots" / "robust_vs_flops.png").is_file()
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["train", "advmoe", "--eps", "-0.1"], ["--eps"]),
        (["train", "advmoe", "--scheme", "alternate"], ["--scheme", "advmoe"]),
        (["train", "resnet18", "--scheme", "joint"], ["--scheme joint", "dense"]),
        (["train", "advmoe", "--routing", "global"], ["--routing"]),
        (["attack", "RUN", "--steps", "0"], ["--steps"]),
        (["attack", "RUN", "--eps", "-1"], ["--eps"]),
        (["eval", "RUN", "--restarts", "0"], ["--restarts"]),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, args, needles):
    out = tmp_path / "out"
    args = [str(tmp_path) if a == "RUN" else a for a in args]
    _one_error_line(_invoke(*args, "--out", out), *needles)
    assert not out.exists()


def test_images_the_stem_cannot_take_are_one_error_line(tmp_path):
    for c in range(2):
        for i in range(3):
            save_image(tmp_path / "tiny" / str(c) / f"{i}.png", np.full((5, 5), 0.5 * c))
    out = tmp_path / "out"
    _one_error_line(
        _invoke("train", "advmoe", "--data", tmp_path / "tiny", "--out", out), "5x5", "stem"
    )
    assert not out.exists()


def test_resume_continues_a_run_to_more_epochs(folder, tmp_path):
    out = tmp_path / "run"
    base = ["--data", folder, "--batch-size", 32, "--threads", 1, "--device", "cpu", "--quiet"]
    assert _invoke("train", "advmoe", "--epochs", 1, "--out", out, *base).exit_code == 0
    _one_error_line(_invoke("train", "advmoe", "--resume", out, "--lr", 0.1), "--lr", "--resume")
    result = _invoke("train", "advmoe", "--resume", out, "--epochs", 2, "--threads", 1, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 2
    epochs = [
        json.loads(line) for line in (out / "logs" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(epochs) == 2
