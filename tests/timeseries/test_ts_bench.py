"""benchmarks/timeseries/bench_ett.py: one invocation, resumable, selection on validation only."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "timeseries" / "bench_ett.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ett", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_ett"] = module  # its dataclass resolves annotations through it
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_ett", None)


def _row(model, L, seed, h, mse, val):
    return {"run_id": "r", "commit": "c", "data": "d", "model": model, "lookback": L,
            "seed": seed, "horizon": h, "mse": mse, "mae": mse, "val_mse": val, "params": 1,
            "overrides": {}}  # fmt: skip


def test_the_lookback_is_chosen_on_validation_never_on_test(bench):
    """L=336 has the better test MSE and the worse validation MSE: 672 is chosen."""
    rows = [_row("m", 336, s, h, mse=0.3, val=0.9) for s in (0, 1) for h in (96, 192)]
    rows += [_row("m", 672, s, h, mse=0.5, val=0.8) for s in (0, 1) for h in (96, 192)]
    summary = bench.summarise(rows, [96, 192])
    assert bench.choose_lookbacks(summary) == {"m": 672}
    # a seed missing a horizon is left out of the means; a lookback without a complete seed
    # cannot be chosen
    rows.append(_row("m", 720, 0, 96, mse=0.1, val=0.1))
    summary = bench.summarise(rows, [96, 192])
    assert summary[("m", 720)]["seeds"] == [] and bench.choose_lookbacks(summary) == {"m": 672}
    table = bench.format_table(rows, [96, 192])
    assert "| m | 672 | 0,1 |" in table and "partial [0]" in table
    assert "PatchTST/42 (published) | 0.424" in table
    assert "every test window scored" in table and "MoHETS (published) | 0.383" in table
    # a reduced budget is said in the table
    for r in rows:
        r["overrides"] = {"epochs": 2, "test_stride": 8}
    table = bench.format_table(rows, [96, 192])
    assert "one test window in 8 scored" in table and '"epochs": 2' in table


def test_one_invocation_writes_rows_table_and_plot_and_a_restart_skips_finished_rows(
    bench, tmp_path, csv_writer, capsys
):
    data = csv_writer(tmp_path / "small.csv", n=900)
    args = ["--data", str(data), "--results", str(tmp_path / "res"), "--runs",
            str(tmp_path / "runs"), "--models", "naive", "dlinear", "mohets", "--lookbacks",
            "48", "--seeds", "0", "--horizons", "12", "24", "--epochs", "1",
            "--limit-train-batches", "2", "--option", "d_model=8", "--option", "n_layers=1",
            "--allow-code-change"]  # fmt: skip
    assert bench.main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "res" / "ett.jsonl").read_text().splitlines()]
    assert {(r["model"], r["horizon"]) for r in rows} == {
        (m, h) for m in ("naive", "dlinear", "mohets") for h in (12, 24)
    }
    assert len({(r["run_id"], r["commit"]) for r in rows}) == 1
    assert all(Path(r["run_dir"], "metrics.json").is_file() for r in rows)
    # MoHETS: one run serves both horizons, each scored on all its test windows
    mohets = [r for r in rows if r["model"] == "mohets"]
    assert len({r["run_dir"] for r in mohets}) == 1
    assert mohets[0]["test_windows"] != mohets[1]["test_windows"]
    table = (tmp_path / "res" / "ett.md").read_text()
    assert "| **mohets** | 48 | 0 |" in table and "overrides" in table
    assert (tmp_path / "res" / "ett_forecast.png").is_file()
    capsys.readouterr()
    assert bench.main(args) == 0
    assert "5 runs, 5 done" in capsys.readouterr().out  # naive 2, dlinear 2, mohets 1
    assert len((tmp_path / "res" / "ett.jsonl").read_text().splitlines()) == len(rows)
    # another configuration cannot be appended to this run
    assert bench.main([*args[:-1], "--epochs", "2"]) == 2


def test_a_run_killed_in_training_is_adopted_for_resuming(bench, tmp_path):
    final = tmp_path / "mohets-L336-s0"
    tmp = tmp_path / ".mohets-L336-s0.tmp-4242"
    (tmp / "checkpoints").mkdir(parents=True)
    (tmp / "checkpoints" / "last.ckpt").write_text("x")
    stale = tmp_path / ".mohets-L336-s0.tmp-1"
    stale.mkdir()
    assert bench._adopt_leftover(final)
    assert (final / "INTERRUPTED").is_file() and not tmp.exists() and not stale.exists()
    assert bench._adopt_leftover(final)  # still resumable until it finishes
    assert not bench._adopt_leftover(tmp_path / "nothing-here")
