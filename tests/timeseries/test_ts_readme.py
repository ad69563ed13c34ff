"""The ```python blocks of the timeseries README run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "timeseries" / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code):
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})


def test_demo_rows_have_the_contract_keys(tmp_path):
    from moesuite.timeseries.demo import run_demo

    rows = run_demo(tmp_path, epochs=1)
    assert [r["model"] for r in rows] == ["mohets", "dlinear", "naive"]
    for r in rows:
        assert {"domain", "task", "model", "metric", "value", "seconds", "note"} <= set(r)
        assert r["domain"] == "timeseries" and r["value"] > 0
    assert (tmp_path / "mohets" / "plots" / "expert_usage_by_position.png").is_file()
