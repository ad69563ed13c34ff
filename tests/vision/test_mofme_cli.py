"""`moesuite vision train|eval|restore|compare` for MoFME: run dirs, sizes, one-line errors."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from moesuite.core.training import INTERRUPTED
from moesuite.vision.cli import app
from moesuite.vision.data.images import read_image, save_image

runner = CliRunner()


def _photo(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([x, y, 1 - x * y], -1) * 0.7 + 0.1
    return (base + 0.05 * rng.standard_normal((h, w, 3))).clip(0, 1)


def _ok(args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _error(args):
    result = runner.invoke(app, [str(a) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (
        result.output
    )
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mofme")
    for i in range(3):
        save_image(root / "photos" / f"p{i}.png", _photo(64, 72, i))
        save_image(root / "pairs" / "degraded" / f"q{i}.png", _photo(56, 60, i) * 0.6 + 0.3)
        save_image(root / "pairs" / "clean" / f"q{i}.png", _photo(56, 60, i))
    save_image(root / "odd.png", _photo(333, 517, 9))
    run = root / "run"
    out = _ok(["train", "mofme", "--data", root / "photos", "--steps", 3, "--batch-size", 4,
               "--threads", 1, "--out", run, "--quiet"])  # fmt: skip
    assert "validation PSNR" in out
    return root


def test_train_writes_a_run_directory(data):
    run = data / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["system"] == "mofme" and config["model"] == "mofme"
    assert config["restorer"]["uar"] is True
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["val_psnr"]) == {"rain", "haze", "snow"} and metrics["steps"] == 3
    for f in ("checkpoints/model.pt", "checkpoints/last.ckpt", "plots/validation.png"):
        assert (run / f).is_file()


def test_resume_continues_a_run_in_place(data, tmp_path):
    assert "was not interrupted" in _error(["train", "mofme", "--resume", data / "run"])
    cut = tmp_path / "cut"  # a run stopped after its last checkpoint, before its report
    shutil.copytree(data / "run", cut)
    (cut / "metrics.json").unlink()
    (cut / INTERRUPTED).write_text("")
    assert "its model is 'mofme'" in _error(["train", "moe-restorer", "--resume", cut])
    out = _ok(["train", "mofme", "--resume", cut, "--quiet"])
    assert "validation PSNR" in out and str(cut) in out
    assert (cut / "metrics.json").is_file() and not (cut / INTERRUPTED).exists()


def test_eval_on_paired_folders_and_on_a_folder_of_photos(data, tmp_path, monkeypatch):
    monkeypatch.setenv("MOESUITE_CACHE_DIR", str(tmp_path / "cache"))
    out = _ok(["eval", data / "run", "--data", data / "pairs", "--out", tmp_path / "e1"])
    assert "test PSNR" in out
    m = json.loads((tmp_path / "e1" / "metrics.json").read_text())
    assert m["images"] == 3 and np.isfinite(m["psnr_mean"]) and m["parameters"]["total"] > 0
    out = _ok(
        ["eval", data / "run", "--data", data / "photos", "--out", tmp_path / "e2", "--quiet"]
    )
    m = json.loads((tmp_path / "e2" / "metrics.json").read_text())
    assert set(m["psnr"]) == {"rain", "haze", "snow"} and np.isfinite(m["clean_input_psnr"])
    assert 0 <= m["routing"]["task_expert_mi"] <= np.log(3) + 1e-6
    assert (tmp_path / "e2" / "plots" / "test_strip.png").is_file()


def test_restore_keeps_any_size_and_writes_a_folder(data, tmp_path):
    out = _ok(["restore", data / "run", data / "odd.png", "--out", tmp_path / "r"])
    assert "restored 1 image" in out
    assert read_image(tmp_path / "r" / "odd.png").shape == (333, 517, 3)
    _ok(["restore", data / "run", data / "photos", "--out", tmp_path / "r2", "--tile", 32])
    assert sorted(p.name for p in (tmp_path / "r2").iterdir()) == ["p0.png", "p1.png", "p2.png"]


def test_bad_input_is_one_error_line_and_writes_nothing(data, tmp_path):
    bad = tmp_path / "in"
    save_image(bad / "good.png", _photo(40, 40, 1))
    (bad / "broken.png").write_bytes(b"not a png")
    assert "unreadable image" in _error(["restore", data / "run", bad, "--out", tmp_path / "o"])
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.tmp*"))
    gray = tmp_path / "gray.png"
    save_image(gray, _photo(40, 40, 2)[:, :, 0])
    assert "RGB" in _error(["restore", data / "run", gray, "--out", tmp_path / "o"])
    line = _error(["restore", data / "run", data / "odd.png", "--tile", 2, "--out", tmp_path / "o"])
    assert "smaller than the model's 4px patch" in line
    assert not (tmp_path / "o").exists()
    mism = tmp_path / "mism"
    save_image(mism / "degraded" / "a.png", _photo(20, 20, 0))
    save_image(mism / "clean" / "b.png", _photo(20, 20, 0))
    assert "mismatched pairs" in _error(
        ["eval", data / "run", "--data", mism, "--out", tmp_path / "e"]
    )
    assert not (tmp_path / "e").exists()
    assert "--modulation applies to mofme" in _error(
        ["train", "moe-restorer", "--modulation", "linear", "--out", tmp_path / "t"]
    )
    assert "give one of them" in _error(["train", "mofme", "--epochs", 1, "--steps", 2])
    assert "--scheme does not apply" in _error(["train", "mofme", "--scheme", "joint"])
    assert not (tmp_path / "t").exists()


def test_compare_two_models_on_paired_data(data, tmp_path):
    out = _ok(["compare", "--model", "mofme", "--model", "dense-restorer", "--data", data / "pairs",
               "--steps", 2, "--batch-size", 4, "--experts", 4, "--modulation", "linear",
               "--threads", 1, "--out", tmp_path / "c", "--quiet"])  # fmt: skip
    assert "mofme-linear-uar-n4" in out and "dense-restorer" in out
    rows = [json.loads(x) for x in (tmp_path / "c" / "results.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == ["mofme-linear-uar-n4", "dense-restorer"]
    assert (tmp_path / "c" / "table.md").is_file()


def test_the_benchmark_continues_an_interrupted_variant(data, tmp_path):
    from moesuite.vision.data.paired import load_pairs
    from moesuite.vision.mofme.compare import Variant, run_variant
    from moesuite.vision.mofme.training import TrainConfig

    cut = tmp_path / "cut"  # stopped mid-training: checkpoints, no model, no report
    shutil.copytree(data / "run", cut)
    (cut / "metrics.json").unlink()
    (cut / "checkpoints" / "model.pt").unlink()
    (cut / INTERRUPTED).write_text("")
    budget = TrainConfig(data=str(data / "photos"), steps=3, batch_size=4, threads=1)
    row = run_variant(Variant("mofme"), 0, budget, load_pairs(data / "pairs"), cut)
    assert row["steps"] == 3 and np.isfinite(row["psnr_mean"])
    assert (cut / "checkpoints" / "model.pt").is_file() and not (cut / INTERRUPTED).exists()
