"""`moesuite streaming` end to end: train, eval, compare, list, the umbrella, one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from moesuite.core.cli import app as umbrella
from moesuite.streaming.cli import app
from moesuite.streaming.models.checkpoint import load_model

runner = CliRunner()


def _ok(args):
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    return result


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def _csv(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _toy_csv(tmp_path, rows):
    lines = ["a,colour,label"] + [
        f"{i % 10},{'red' if i % 3 else 'blue'},{'yes' if i % 10 > 4 else 'no'}"
        for i in range(rows)
    ]
    return _csv(tmp_path, "\n".join(lines) + "\n", "toy.csv")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("train") / "run"
    _ok(["train", "driftmoe-data", "--stream", "sea_abrupt", "--n", "1200", "--out", str(run)])
    return run


def test_train_writes_a_run_directory_with_the_model(trained):
    (row,) = _metrics(trained)["rows"]
    assert row["model"] == "driftmoe-data" and row["n"] == 1200 and 0.6 < row["accuracy"] <= 1
    assert 1.0 <= row["expert_load_max_over_mean"] <= 6.0
    # the router's logged loss is its task loss plus its aux loss (0 with the default weight)
    assert row["router_loss"] == pytest.approx(row["router_task_loss"] + row["router_aux_loss"])
    (details,) = _metrics(trained)["runs"]
    assert len(details["expert_usage"]) == len(details["router_losses"]) == 1200 // 50
    config = json.loads((trained / "config.json").read_text())
    assert config["source"]["stream"] == "sea_abrupt" and config["n_processed"] == 1200
    assert (trained / "plots" / "sea_abrupt_accuracy.png").stat().st_size > 0
    assert (trained / "plots" / "sea_abrupt__driftmoe-data_experts.png").is_file()
    assert load_model(trained / "checkpoints" / "model.pkl")._n == 1200


def test_eval_continues_the_saved_model_on_new_instances(trained, tmp_path):
    out = tmp_path / "eval"
    _ok(["eval", str(trained), "--out", str(out)])
    (row,) = _metrics(out)["rows"]
    config = json.loads((out / "config.json").read_text())
    assert row["n"] == 1200 and config["source"]["seed"] == 1  # a new draw of the same stream
    assert load_model(out / "checkpoints" / "model.pkl")._n == 2400  # it kept learning
    # the loaded model starts where training left it: better than a fresh one at first
    fresh = tmp_path / "fresh"
    _ok(["train", "driftmoe-data", "--n", "1200", "--seed", "1", "--out", str(fresh)])
    first_window = [_metrics(r)["runs"][0]["windows"][0][1] for r in (out, fresh)]
    assert first_window[0] > first_window[1] + 0.1, first_window
    again = tmp_path / "again"  # an eval run can be continued in turn
    _ok(["eval", str(out), "--n", "300", "--out", str(again)])
    assert json.loads((again / "config.json").read_text())["source"]["seed"] == 2


def test_eval_on_a_file_and_train_reads_the_whole_file_by_default(tmp_path):
    data = _toy_csv(tmp_path, 6000)  # more than a generated stream's 5,000 default
    run = tmp_path / "run"
    _ok(["train", "ht", "--data", str(data), "--target", "label", "--n", "4000", "--out", str(run)])
    out = tmp_path / "eval"
    _ok(["eval", str(run), "--out", str(out)])  # the rest of the file
    assert _metrics(out)["rows"][0]["n"] == 2000
    whole = tmp_path / "whole"
    _ok(["train", "ht", "--data", str(data), "--target", "label", "--out", str(whole)])
    assert _metrics(whole)["rows"][0]["n"] == 6000


def test_compare_through_the_umbrella_cli_on_a_user_csv(tmp_path):
    data = _toy_csv(tmp_path, 600)
    out = tmp_path / "cmp"
    args = ["streaming", "compare", "--model", "driftmoe-task", "--model", "ht", "--experts", "4"]
    args += ["--data", str(data), "--target", "label", "--out", str(out), "--quiet"]
    result = runner.invoke(umbrella, args)
    assert result.exit_code == 0, result.output
    rows = _metrics(out)["rows"]
    assert [(r["stream"], r["model"], r["n"]) for r in rows] == [
        ("toy", "driftmoe-task", 600),
        ("toy", "ht", 600),
    ]
    assert rows[0]["accuracy"] > 0.9
    # --experts reaches the models with experts only
    assert json.loads((out / "config.json").read_text())["params"] == {
        "driftmoe-task": {"n_experts": 4}
    }
    assert load_model(out / "checkpoints" / "toy__driftmoe-task.pkl")._E == 4


def test_list_reads_the_registries_and_marks_the_defaults():
    from moesuite.streaming.data import STREAMS
    from moesuite.streaming.models import MODELS

    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    output = result.output
    for name in MODELS.list() + STREAMS.list():
        assert f"  {name} " in output
    assert "driftmoe-data       *" in output and "sea_abrupt          *" in output
    assert "--data PATH" in output


def _train(*args):
    return ["train", *args]


@pytest.mark.parametrize(
    "case, args, message",
    [
        (
            "missing file",
            lambda t: _train("ht", "--data", str(t / "no.csv"), "--target", "y"),
            "no such file",
        ),
        (
            "unknown target",
            lambda t: _train("ht", "--data", str(_csv(t, "a,y\n1,0\n")), "--target", "label"),
            "--target 'label' is not a column",
        ),
        (
            "empty stream",
            lambda t: _train("ht", "--data", str(_csv(t, "a,y\n")), "--target", "y"),
            "no data rows",
        ),
        (
            "unknown stream",
            lambda t: _train("ht", "--stream", "sea_sudden"),
            "unknown stream 'sea_sudden'",
        ),
        ("unknown model", lambda t: _train("xgboost"), "unknown model 'xgboost'; expected one of"),
        (
            "new type mid-stream",
            lambda t: _train(
                "ht", "--data", str(_csv(t, "a,y\n" + "1,0\n" * 300 + "abc,1\n")), "--target", "y"
            ),
            "column 'a': expected a number",
        ),
        (
            "target without data",
            lambda t: _train("ht", "--target", "y"),
            "--target goes with --data",
        ),
        (
            "data without target",
            lambda t: _train("ht", "--data", str(_csv(t, "a,y\n1,0\n"))),
            "--data needs --target",
        ),
        (
            "experts of a tree",
            lambda t: _train("ht", "--experts", "3"),
            "--experts: 'ht' has no experts",
        ),
        ("n below 1", lambda t: _train("ht", "--n", "0"), "--n"),
        (
            "stream and data",
            lambda t: _train(
                "ht",
                "--stream",
                "sea_abrupt",
                "--data",
                str(_csv(t, "a,y\n1,0\n")),
                "--target",
                "y",
            ),
            "give one of them",
        ),
        ("eval of no run", lambda t: ["eval", str(t / "nowhere")], "no such file"),
        (
            "compare of an unknown model",
            lambda t: ["compare", "--model", "xgboost"],
            "unknown model",
        ),
        (
            "unknown river stream",
            lambda t: _train("ht", "--stream", "river:Agrawl"),
            "unknown river stream 'river:Agrawl'; expected one of ['river:Agrawal',",
        ),
        (
            "unknown river argument",
            lambda t: _train("ht", "--stream", "river:SEA", "--stream-arg", "noize=0.1"),
            "--stream-arg noize: not an argument of river:SEA; expected one of ['variant',",
        ),
        (
            "drift on a river dataset",
            lambda t: _train("ht", "--stream", "river:Phishing", "--stream-arg", "drift_at=100"),
            "river:Phishing is a dataset",
        ),
        (
            "drift beyond the stream",
            lambda t: _train("ht", "--stream", "river:SEA", "--stream-arg", "drift_at=9000"),
            "position 9000 is not inside the stream (5000 instances",
        ),
        (
            "stream argument of a registered stream",
            lambda t: _train("ht", "--stream-arg", "seed=3"),
            "stream arguments go with a river stream",
        ),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run_directory(tmp_path, case, args, message):
    out = tmp_path / "run"
    result = runner.invoke(app, [*args(tmp_path), "--out", str(out), "--quiet"])
    assert result.exit_code == 2, (case, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert not out.exists()


def test_eval_of_a_compare_run_says_what_it_needs(tmp_path):
    cmp = tmp_path / "cmp"
    _ok(["compare", "--model", "ht", "--n", "200", "--out", str(cmp)])
    result = runner.invoke(app, ["eval", str(cmp), "--out", str(tmp_path / "e"), "--quiet"])
    assert result.exit_code == 2 and "written by `compare`, not by `train`" in result.output


def test_a_csv_of_12000_rows_is_read_whole_by_train_and_compare(tmp_path):
    # more than twice a generated stream's 5,000 default: --data means the whole file
    data = _toy_csv(tmp_path, 12_000)
    for verb, extra in (("train", ["ht"]), ("compare", ["--model", "ht"])):
        out = tmp_path / verb
        _ok([verb, *extra, "--data", str(data), "--target", "label", "--out", str(out)])
        assert [r["n"] for r in _metrics(out)["rows"]] == [12_000], verb
    cut = tmp_path / "cut"
    _ok(["train", "ht", "--data", str(data), "--target", "label", "--n", "700", "--out", str(cut)])
    assert _metrics(cut)["rows"][0]["n"] == 700


def test_river_generator_in_drift_and_a_bundled_river_dataset(tmp_path):
    out = tmp_path / "gen"
    args = ["compare", "--model", "ht", "--stream", "river:Agrawal", "--n", "1500"]
    args += ["--stream-arg", "classification_function=0", "--stream-arg", "drift_at=0.5"]
    args += ["--stream-arg", "after.classification_function=4", "--out", str(out)]
    _ok(args)
    (details,) = _metrics(out)["runs"]
    assert details["stream"] == "river:Agrawal" and details["n"] == 1500
    assert details["drift_points"] == [750]
    # the tree learnt concept 0; after the drift to concept 4 it is wrong more often
    windows = dict(details["windows"])
    assert windows[750] > windows[900] + 0.1, windows
    config = json.loads((out / "config.json").read_text())
    assert config["sources"][0]["args"] == [
        "classification_function=0",
        "drift_at=0.5",
        "after.classification_function=4",
    ]
    assert (out / "plots" / "river-Agrawal_accuracy.png").is_file()
    real = tmp_path / "real"
    _ok(["train", "ht", "--stream", "river:phishing", "--out", str(real)])  # case-insensitive
    (row,) = _metrics(real)["rows"]
    assert row["stream"] == "river:Phishing" and row["n"] == 1250 and row["accuracy"] > 0.8
    again = tmp_path / "again"  # eval continues a river generator with a new seed
    _ok(["train", "ht", "--stream", "river:SEA", "--n", "300", "--out", str(again)])
    _ok(["eval", str(again), "--out", str(tmp_path / "ev")])
    assert json.loads((tmp_path / "ev" / "config.json").read_text())["source"]["seed"] == 1


def test_list_shows_river_streams_discovered_from_river():
    from river.datasets import synth

    output = runner.invoke(app, ["list"]).output
    for name in ("river:Agrawal", "river:RandomTree", "river:Phishing", "river:Bananas"):
        assert f"  {name} " in output
    assert "river:ConceptDriftStream" not in output  # river's own drift wrapper overflows
    assert "river:Friedman" not in output and hasattr(synth, "Friedman")  # regression
