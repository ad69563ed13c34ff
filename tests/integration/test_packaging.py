"""Repository rules: one namespace, domains depend on core only, the core wheel stands alone."""

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
DOMAINS = ("timeseries", "vision", "streaming", "physics")


def test_no_package_owns_the_namespace():
    for pkg in PACKAGES:
        assert not (pkg / "src" / "moesuite" / "__init__.py").exists(), (
            f"{pkg.name} ships moesuite/__init__.py"
        )


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
        assert not bad, (
            f"{path.relative_to(ROOT)} imports moesuite.{sorted(bad)}: domains depend on core only"
        )


def test_core_wheel_contains_core_and_not_the_namespace(tmp_path):
    pytest.importorskip("hatchling")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT / "packages" / "core"),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("moesuite_core-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "moesuite/core/__init__.py" in names
    assert "moesuite/__init__.py" not in names
    assert any(n.endswith("entry_points.txt") for n in names)


def _top_level_imports(src: Path) -> set[str]:
    found = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(pkg: Path) -> set[str]:
    project = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    return {_normalise(re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0]) for r in reqs}


@pytest.mark.parametrize("pkg", [p.name for p in PACKAGES])
def test_every_imported_third_party_package_is_declared(pkg):
    """deptry's DEP001 as a test: a package imports only what its pyproject declares."""
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    src = ROOT / "packages" / pkg / "src"
    own = {"moesuite"}
    missing = {}
    for module in sorted(_top_level_imports(src) - set(sys.stdlib_module_names) - own):
        if module.startswith("_"):
            continue
        names = {_normalise(d) for d in dists.get(module, [module])}
        if not names & _declared(ROOT / "packages" / pkg):
            missing[module] = sorted(names)
    assert not missing, (
        f"packages/{pkg} imports {missing} without declaring them in its pyproject.toml"
    )
    for other in {m.split(".")[1] for m in _moesuite_modules(src)} - {pkg}:
        assert f"moesuite-{other}" in _declared(ROOT / "packages" / pkg), (
            f"packages/{pkg} uses moesuite.{other} undeclared"
        )


def _moesuite_modules(src: Path) -> set[str]:
    found = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.level == 0
                and node.module.startswith("moesuite.")
            ):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("moesuite."))
    return found


def test_ruff_passes_with_the_line_length_enforced():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment (make test installs it)")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert "E501" not in config["lint"].get("ignore", []), "the line length must be enforced"
    result = subprocess.run(
        [str(ruff), "check", "--no-cache", "packages", "tests", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-4000:]
