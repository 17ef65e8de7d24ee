"""Dependencies are declared exactly: what artid imports is a dependency, what only tests use is an extra,
and requirements.txt pins every declared package at the version of constraints.txt."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
#: Declared without being imported by artid, and why.
NOT_IMPORTED = {"python-multipart": "fastapi needs it to parse the service's photo uploads"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return _norm(re.split(r"[\s<>=!~;\[]", spec.strip(), maxsplit=1)[0])


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _dependencies() -> set[str]:
    return {_requirement_name(s) for s in _project()["dependencies"]}


def _extras() -> dict[str, set[str]]:
    return {extra: {_requirement_name(s) for s in specs}
            for extra, specs in _project().get("optional-dependencies", {}).items()}


def _guarded(tree: ast.AST) -> set[int]:
    """ids of import statements inside ``try: ... except ImportError`` (optional imports)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def _imported_distributions(folder: str, guarded_too: bool = False) -> dict[str, set[str]]:
    """Distribution -> files of ``folder`` that import it (stdlib and local imports left out, and
    imports guarded by ``except ImportError`` unless ``guarded_too``)."""
    modules = importlib.metadata.packages_distributions()
    local = {p.stem for p in (ROOT / folder).glob("*.py")} | {"artid"}
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = set() if guarded_too else _guarded(tree)
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local:
                    continue
                if top not in modules:
                    pytest.fail(f"{path.relative_to(ROOT)} imports {top}, which no installed distribution provides")
                for dist in modules[top]:
                    found.setdefault(_norm(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_artid_imports_exactly_its_dependencies() -> None:
    imported = _imported_distributions("artid")
    declared = _dependencies()
    optional = set().union(*(deps for extra, deps in _extras().items() if extra not in ("test", "browser")))
    undeclared = {d: sorted(files) for d, files in imported.items() if d not in declared | optional}
    assert not undeclared, f"imported by artid but not declared in pyproject.toml: {undeclared}"
    unused = declared - set(_imported_distributions("artid", guarded_too=True)) - set(NOT_IMPORTED)
    assert not unused, f"declared as dependencies but never imported by artid (an extra?): {sorted(unused)}"


def test_tests_import_only_declared_packages() -> None:
    declared = _dependencies().union(*_extras().values())
    undeclared = {d: sorted(files) for d, files in _imported_distributions("tests").items() if d not in declared}
    assert not undeclared, f"imported by the tests but in no dependency or extra: {undeclared}"
    assert "scikit-image" in _extras()["test"] and "scikit-image" not in _dependencies()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[_norm(name)] = version.strip()
    return pins


def test_requirements_pin_every_declared_package_as_constraints_do() -> None:
    """``make setup`` installs requirements.txt: every dependency and extra, at the constrained version."""
    requirements, constraints = _pins(ROOT / "requirements.txt"), _pins(ROOT / "constraints.txt")
    declared = _dependencies().union(*_extras().values())
    assert set(requirements) == declared, (
        f"only in requirements.txt: {sorted(set(requirements) - declared)}; "
        f"only in pyproject.toml: {sorted(declared - set(requirements))}")
    differ = {n: (v, constraints.get(n)) for n, v in requirements.items() if constraints.get(n) != v}
    assert not differ, f"requirements.txt and constraints.txt pin differently: {differ}"
