"""`moesuite streaming` end to end: run directories, the umbrella mount, one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from moesuite.core.cli import app as umbrella
from moesuite.streaming.cli import app

runner = CliRunner()


def test_run_writes_a_run_directory(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--stream", "sea_abrupt", "--n", "1200", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    (row,) = metrics["rows"]
    assert row["model"] == "driftmoe-data" and row["n"] == 1200 and 0.6 < row["accuracy"] <= 1
    assert 1.0 <= row["expert_load_max_over_mean"] <= 6.0
    assert len(metrics["runs"][0]["expert_usage"]) == 1200 // 50
    assert json.loads((out / "config.json").read_text())["n_samples"] == 1200
    assert (out / "plots" / "sea_abrupt_accuracy.png").stat().st_size > 0
    assert (out / "plots" / "sea_abrupt__driftmoe-data_experts.png").is_file()
    assert (out / "checkpoints" / "sea_abrupt__driftmoe-data.pkl").is_file()


def test_compare_through_the_umbrella_cli_on_a_user_csv(tmp_path):
    data = tmp_path / "toy.csv"
    lines = ["a,colour,label"] + [f"{i % 10},{'red' if i % 3 else 'blue'},{'yes' if i % 10 > 4 else 'no'}" for i in range(600)]
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "cmp"
    result = runner.invoke(umbrella, ["streaming", "compare", "--model", "driftmoe-task", "--model", "ht",
                                      "--data", str(data), "--target", "label", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "metrics.json").read_text())["rows"]
    assert [(r["stream"], r["model"], r["n"]) for r in rows] == [("toy", "driftmoe-task", 600), ("toy", "ht", 600)]
    assert rows[0]["accuracy"] > 0.9


def test_list_shows_streams_and_models():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "led_gradual" in result.output and "driftmoe-task" in result.output and "--data PATH" in result.output


def _csv(tmp_path, text):
    p = tmp_path / "d.csv"
    p.write_text(text)
    return p


@pytest.mark.parametrize("case, args, message", [
    ("missing file", lambda t: ["--data", str(t / "nope.csv"), "--target", "y"], "no such file"),
    ("unknown target", lambda t: ["--data", str(_csv(t, "a,y\n1,0\n")), "--target", "label"], "--target 'label' is not a column"),
    ("empty stream", lambda t: ["--data", str(_csv(t, "a,y\n")), "--target", "y"], "no data rows"),
    ("unknown stream", lambda t: ["--stream", "sea_sudden"], "stream 'sea_sudden' is unknown"),
    ("unknown model", lambda t: ["--model", "xgboost"], "model 'xgboost' is unknown"),
    ("new type mid-stream", lambda t: ["--data", str(_csv(t, "a,y\n" + "1,0\n" * 300 + "abc,1\n")), "--target", "y"],
     "column 'a': expected a number"),
    ("target without data", lambda t: ["--target", "y"], "--data and --target go together"),
])
def test_bad_input_is_one_line_and_leaves_no_run_directory(tmp_path, case, args, message):
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", *args(tmp_path), "--n", "500", "--out", str(out), "--quiet"])
    assert result.exit_code == 2, (case, result.output)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output
    assert not out.exists()
