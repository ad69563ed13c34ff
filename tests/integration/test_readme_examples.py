"""The ```python blocks of the READMEs and package docs run as written (docs that cannot rot)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = [
    ROOT / "README.md",
    *sorted((ROOT / "packages").glob("*/README.md")),
    *sorted((ROOT / "packages").glob("*/docs/*.md")),
]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks():
    for readme in READMES:
        if readme.is_file():
            for i, code in enumerate(BLOCK.findall(readme.read_text())):
                yield pytest.param(code, id=f"{readme.relative_to(ROOT)}#{i}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_readme_block_runs(code, capsys):
    exec(compile(code, "<readme>", "exec"), {"__name__": "__readme__"})
