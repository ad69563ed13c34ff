"""The umbrella `moesuite` CLI: info, bench, demo, one-line errors."""

import json

from typer.testing import CliRunner

from moesuite.core.cli import app

runner = CliRunner()


def test_info_lists_backends_with_reasons():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "grouped_mm" in result.output and "loop" in result.output
    assert "routers: expert_choice" in result.output


def test_bench_prints_json_lines_with_ratios(tmp_path):
    out = tmp_path / "bench.jsonl"
    args = [
        "bench",
        "--tokens",
        "64",
        "--d-model",
        "16",
        "--d-hidden",
        "32",
        "--experts",
        "4",
        "--k",
        "2",
        "--repeats",
        "1",
        "--backend",
        "loop",
        "--backend",
        "grouped_mm",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    kinds = [(r["kind"], r["backend"]) for r in rows]
    assert kinds == [
        ("dense", "dense"),
        ("experts", "loop"),
        ("experts", "grouped_mm"),
        ("layer", "auto"),
        ("hf_loop", "hf_loop"),
    ]
    assert all(r["fwdbwd_ms"] > 0 and r["plr_fwdbwd"] > 0 for r in rows)
    assert len(out.read_text().splitlines()) == 5


def test_bench_bad_input_is_one_line():
    result = runner.invoke(app, ["bench", "--experts", "4", "--k", "5"])
    assert result.exit_code == 2
    assert "error: --k 5 is larger than --experts 4" in result.output
    assert "Traceback" not in result.output


def test_demo_core_writes_a_run_directory(tmp_path):
    result = runner.invoke(app, ["demo", "--only", "core", "--out", str(tmp_path / "tour")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "tour" / "metrics.json").read_text())
    models = {r["model"]: r["value"] for r in metrics["rows"]}
    assert set(models) == {"moe-topk", "moe-sinkhorn", "dense"}
    assert all(v > 0.85 for v in models.values()), models
    assert (tmp_path / "tour" / "core" / "plots" / "expert_load_moe-topk.png").is_file()


def test_demo_unknown_domain_leaves_nothing(tmp_path):
    result = runner.invoke(app, ["demo", "--only", "astrology", "--out", str(tmp_path / "tour")])
    assert result.exit_code == 2
    assert "error: --only ['astrology']: not installed" in result.output
    assert not (tmp_path / "tour").exists()
