"""Repository rules: one namespace, domains depend on core only, the core wheel stands alone."""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
DOMAINS = ("timeseries", "vision", "streaming", "physics")


def test_no_package_owns_the_namespace():
    for pkg in PACKAGES:
        assert not (pkg / "src" / "moesuite" / "__init__.py").exists(), f"{pkg.name} ships moesuite/__init__.py"


def _moesuite_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "moesuite" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("pkg", [p.name for p in PACKAGES])
def test_dependency_direction(pkg):
    src = ROOT / "packages" / pkg / "src" / "moesuite"
    allowed = {"core"} if pkg != "core" else {"core"}
    allowed.add(pkg)
    for path in src.rglob("*.py"):
        bad = _moesuite_imports(path) - allowed
        assert not bad, f"{path.relative_to(ROOT)} imports moesuite.{sorted(bad)}: domains depend on core only"


def test_core_wheel_contains_core_and_not_the_namespace(tmp_path):
    pytest.importorskip("hatchling")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT / "packages" / "core")],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("moesuite_core-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "moesuite/core/__init__.py" in names
    assert "moesuite/__init__.py" not in names
    assert any(n.endswith("entry_points.txt") for n in names)
