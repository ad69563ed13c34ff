"""`moesuite timeseries` end to end on tiny configurations, and bad input as one line."""

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from moesuite.core.cli import app as root_app
from moesuite.timeseries.cli import app
from moesuite.timeseries.models import MODELS

runner = CliRunner()
TINY = ["--lookback", "48", "--horizon", "12", "--epochs", "1", "--limit-train-batches", "2"]
TINY = [*TINY, "--quiet"]


def test_list_prints_every_registered_model_with_its_help_line():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == MODELS.list()
    assert all(MODELS.get(line.split()[0]).help in line for line in lines)


def test_no_help_text_names_a_model():
    for verb in ("train", "eval", "compare", "list", "forecast"):
        text = runner.invoke(app, [verb, "--help"]).output.lower()
        assert not [m for m in MODELS.list() if m in text.replace("timeseries", "")], verb


def test_train_eval_forecast_on_a_csv(tmp_path, small_csv, csv_writer):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "mohets", "--data", str(small_csv), "--covariates",
                                 "temp", "--d-model", "8", "--experts", "3", *TINY,
                                 "--device", "cpu", "--out", str(run)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test MSE" in result.output
    for name in ("config.json", "metrics.json", "checkpoints/model.pt", "checkpoints/best.ckpt",
                 "checkpoints/last.ckpt", "plots/forecast_vs_truth.png",
                 "plots/expert_usage_by_position.png", "logs/metrics.jsonl"):  # fmt: skip
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["by_horizon"]) == {"12"} and metrics["test"]["mse"] > 0
    assert metrics["test"]["routing"]  # routing statistics per MoE layer
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["covariate_columns"][0] == "temp"
    assert config["model_config"]["num_experts"] == 3  # --experts reached the model

    other = csv_writer(tmp_path / "other.csv", n=400, seed=5)
    args = ["eval", str(run), "--data", str(other), "--out", str(tmp_path / "ev"), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["data"] == "other" and ev["test"]["mse"] > 0

    args = ["forecast", str(run), "--data", str(other), "--horizon", "30"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "fc")])
    assert result.exit_code == 0, result.output
    fc = pd.read_csv(tmp_path / "fc" / "forecast.csv")
    assert list(fc.columns) == ["date", "a", "b"] and len(fc) == 30
    assert fc["date"].iloc[0] == "2021-01-17 16:00:00"  # one hour after the last row
    assert (tmp_path / "fc" / "plots" / "forecast.png").is_file()


def test_compare_with_repeated_options_through_the_umbrella_command(tmp_path, small_csv):
    out = tmp_path / "cmp"
    args = ["timeseries", "compare", "--model", "naive", "--model", "dlinear", "--model",
            "mohets", "--data", str(small_csv), "--lookback", "48", "--horizon", "6",
            "--horizon", "12", "--epochs", "1", "--batch-size", "16", "--patience", "2",
            "--lr", "0.01", "--d-model", "8", "--d-ff", "8", "--limit-train-batches", "2",
            "--quiet", "--out", str(out)]  # fmt: skip
    result = runner.invoke(root_app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert {(r["model"], r["horizon"]) for r in rows} == {
        (m, h) for m in ("naive", "dlinear", "mohets") for h in (6, 12)
    }
    # MoHETS is trained once for both horizons, DLinear once per horizon
    assert len({r["run_dir"] for r in rows if r["model"] == "mohets"}) == 1
    assert len({r["run_dir"] for r in rows if r["model"] == "dlinear"}) == 2
    jsonl = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for r in (*rows, *jsonl):  # every recorded run directory exists after the command
        assert (tmp_path / r["run_dir"]).resolve().is_relative_to(out.resolve())
        assert (tmp_path / r["run_dir"] / "metrics.json").is_file(), r["run_dir"]
    config = json.loads((Path(rows[-1]["run_dir"]) / "config.json").read_text())
    assert config["recipe"]["batch_size"] == 16 and config["recipe"]["patience"] == 2
    assert config["model_config"]["d_ff"] == 8 and config["recipe"]["lr"] == 0.01
    assert (out / "plots" / "comparison_mse.png").is_file() and "| dlinear |" in result.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_compare_rejects_an_option_no_model_takes(tmp_path, small_csv):
    args = ["compare", "--model", "naive", "--model", "dlinear", "--data", str(small_csv),
            "--experts", "4", "--out", str(tmp_path / "cmp")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "taken by none of the models" in result.output
    assert not (tmp_path / "cmp").exists()


def _bad(tmp_path, case, write_csv):
    p = tmp_path / "bad.csv"
    if case == "missing file":
        return ["--data", str(tmp_path / "nope.csv")], "no such file"
    if case == "no timestamp":
        write_csv(p, n=300)
        pd.read_csv(p).drop(columns="date").to_csv(p, index=False)
        return ["--data", str(p)], "no timestamp column"
    if case == "non-numeric":
        write_csv(p, n=300, label=["x"] * 300)
        return ["--data", str(p)], "column 'label' is not numeric"
    if case == "all-NaN":
        write_csv(p, n=300, empty=[float("nan")] * 300)
        return ["--data", str(p)], "column 'empty' has no values"
    if case == "too few rows":
        write_csv(p, n=60)
        return ["--data", str(p)], "too few rows"
    if case == "unknown model":
        return [], "unknown model 'prophet'"
    if case == "option the model lacks":
        return ["--experts", "4"], "has no option 'num_experts'"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["missing file", "no timestamp", "non-numeric", "all-NaN", "too few rows", "unknown model",
     "option the model lacks"],
)  # fmt: skip
def test_bad_input_is_one_line_and_leaves_no_run_directory(tmp_path, case, csv_writer):
    args, message = _bad(tmp_path, case, csv_writer)
    out = tmp_path / "runs" / "r"
    model = "prophet" if case == "unknown model" else "dlinear"
    result = runner.invoke(app, ["train", model, *args, *TINY, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("verb", ["eval", "forecast"])
def test_a_missing_run_is_one_line(tmp_path, verb):
    result = runner.invoke(app, [verb, str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no such run directory" in result.output
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_commands_raise_no_warnings(tmp_path, small_csv):
    """No library warning reaches the user (pytest's own filters would hide some of them)."""
    run, data = tmp_path / "run", ["--data", str(small_csv)]
    commands = [
        ["train", "mohets", *data, "--d-model", "8", *TINY, "--out", str(run)],
        ["eval", str(run), "--out", str(tmp_path / "ev")],
        ["forecast", str(run), "--out", str(tmp_path / "fc")],
        ["compare", "--model", "naive", "--model", "dlinear", *data, "--lookback", "48",
         "--horizon", "12", "--epochs", "1", "--quiet", "--out", str(tmp_path / "cmp")],
        ["list"],
    ]  # fmt: skip
    for args in commands:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert [str(w.message) for w in caught] == [], args[0]
