"""`moesuite timeseries` end to end on tiny configurations, and bad input as one line."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from moesuite.core.cli import app as root_app
from moesuite.timeseries.cli import app

runner = CliRunner()
TINY = ["--lookback", "48", "--horizon", "12", "--epochs", "1", "--limit-train-batches", "2", "--quiet"]


def test_train_eval_forecast_on_a_csv(tmp_path, small_csv, csv_writer):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "mohets", "--data", str(small_csv), "--covariates", "temp",
                                 "--d-model", "8", *TINY, "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "test MSE" in result.output
    for name in ("config.json", "metrics.json", "checkpoints/model.pt", "checkpoints/best.ckpt",
                 "plots/forecast_vs_truth.png", "plots/expert_usage_by_position.png", "logs/metrics.jsonl"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]["by_horizon"]) == {"12"} and metrics["test"]["mse"] > 0
    assert metrics["test"]["routing"]  # routing statistics per MoE layer
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["covariate_columns"][0] == "temp"

    other = csv_writer(tmp_path / "other.csv", n=400, seed=5)
    result = runner.invoke(app, ["eval", str(run), "--data", str(other), "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["data"] == "other" and ev["test"]["mse"] > 0

    result = runner.invoke(app, ["forecast", str(run), "--data", str(other), "--horizon", "30", "--out", str(tmp_path / "fc")])
    assert result.exit_code == 0, result.output
    fc = pd.read_csv(tmp_path / "fc" / "forecast.csv")
    assert list(fc.columns) == ["date", "a", "b"] and len(fc) == 30
    assert fc["date"].iloc[0] == "2021-01-17 16:00:00"  # one hour after the last row
    assert (tmp_path / "fc" / "plots" / "forecast.png").is_file()


def test_umbrella_command_and_compare(tmp_path, small_csv):
    out = tmp_path / "cmp"
    result = runner.invoke(root_app, ["timeseries", "compare", "--models", "naive,dlinear", "--data", str(small_csv),
                                      "--lookback", "48", "--horizons", "6,12", "--epochs", "1", "--quiet",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert {(r["model"], r["horizon"]) for r in rows} == {(m, h) for m in ("naive", "dlinear") for h in (6, 12)}
    assert all((out / "runs" / f"{r['model']}-L48-H{r['horizon']}" / "metrics.json").is_file() for r in rows)
    assert (out / "plots" / "comparison_mse.png").is_file() and "| dlinear |" in result.output


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
        return ["prophet"], "unknown model 'prophet'"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing file", "no timestamp", "non-numeric", "all-NaN", "too few rows", "unknown model"])
def test_bad_input_is_one_line_and_leaves_no_run_directory(tmp_path, case, csv_writer):
    args, message = _bad(tmp_path, case, csv_writer)
    out = tmp_path / "runs" / "r"
    if args and args[0] == "prophet":
        cmd = ["train", *args, *TINY, "--out", str(out)]
    else:
        cmd = ["train", "dlinear", *args, *TINY, "--out", str(out)]
    result = runner.invoke(app, cmd)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_eval_of_a_missing_run_is_one_line(tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no such run directory" in result.output
