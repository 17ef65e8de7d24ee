"""Dependencies are declared exactly: what the library imports is a dependency, the web service and
open_clip are extras, what only tests use is an extra, and requirements.txt pins every declared
package at the version of constraints.txt."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
#: The files that may import the ``serve`` extra's packages.
SERVE_FILES = {"artid/service/api.py", "artid/commands/serve.py"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return _norm(re.split(r"[\s<>=!~;\[]", spec.strip(), maxsplit=1)[0])


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _dependencies() -> set[str]:
    return {_requirement_name(s) for s in _project()["dependencies"]}


def _extras() -> dict[str, set[str]]:
    """Extra -> its packages; a self-reference (``artid[serve,clip]``) stands for those extras'."""
    specs = _project().get("optional-dependencies", {})

    def expand(extra: str) -> set[str]:
        names = set()
        for spec in specs[extra]:
            own = re.fullmatch(r"artid\[([\w,\s-]+)\]", spec.strip())
            if own:
                names |= set().union(*(expand(e.strip()) for e in own.group(1).split(",")))
            else:
                names.add(_requirement_name(spec))
        return names

    return {extra: expand(extra) for extra in specs}


def _guarded(tree: ast.AST) -> set[int]:
    """ids of import statements inside ``try: ... except ImportError`` (optional imports)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def _is_require(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "require"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _imported_distributions(folder: str, guarded_too: bool = False) -> dict[str, set[str]]:
    """Distribution -> files of ``folder`` that import it (stdlib and local imports left out, and
    imports guarded by ``except ImportError`` unless ``guarded_too``)."""
    modules = importlib.metadata.packages_distributions()
    local = {p.stem for p in (ROOT / folder).rglob("*.py")} | {"artid"}
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
            elif guarded_too and _is_require(node):
                # artid.models.export.require("onnxruntime", extra): the optional runtimes'
                # lazy import, with the error that names the extra
                names = [node.args[0].value]  # type: ignore[attr-defined]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local:
                    continue
                if top not in modules:
                    pytest.fail(
                        f"{path.relative_to(ROOT)} imports {top}, which no installed "
                        "distribution provides"
                    )
                for dist in modules[top]:
                    found.setdefault(_norm(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_artid_imports_exactly_its_dependencies() -> None:
    imported = _imported_distributions("artid")
    declared = _dependencies()
    optional = set().union(
        *(deps for extra, deps in _extras().items() if extra not in ("test", "browser"))
    )
    undeclared = {d: sorted(files) for d, files in imported.items() if d not in declared | optional}
    assert not undeclared, f"imported by artid but not declared in pyproject.toml: {undeclared}"
    unused = (declared | optional) - set(_imported_distributions("artid", guarded_too=True))
    assert not unused, f"declared for artid but never imported by it: {sorted(unused)}"


def test_the_web_service_is_an_extra_imported_only_by_the_service() -> None:
    serve = _extras()["serve"]
    assert serve == {"fastapi", "starlette", "anyio", "uvicorn", "python-multipart"}
    assert not serve & _dependencies()
    assert serve <= _extras()["test"]
    imported = _imported_distributions("artid", guarded_too=True)
    elsewhere = {d: sorted(set(imported[d]) - SERVE_FILES) for d in serve if d in imported}
    assert not any(elsewhere.values()), f"the serve extra imported outside the service: {elsewhere}"


#: Imports artid's base the way the CLI and a library user do, with the serve extra uninstalled.
WITHOUT_SERVE = """
import importlib.abc, sys
BLOCKED = {"fastapi", "starlette", "anyio", "uvicorn", "python_multipart", "multipart"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
import artid, artid.cli, artid.service.recognizer, artid.service.builder, artid.evaluation.run
import artid.commands.evaluate
parser = artid.cli.build_parser()
assert parser.parse_args(["serve", "--bundle", "b"]).command == "serve"
code = artid.cli.main(["serve", "--bundle", "no-such-bundle"])
assert code == 2, code
assert not BLOCKED & {m.split(".")[0] for m in sys.modules}, sorted(sys.modules)
print("ok")
"""


def test_the_library_and_cli_work_without_the_serve_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    assert "artid serve needs the web service extra: pip install 'artid[serve]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_tests_import_only_declared_packages() -> None:
    declared = _dependencies().union(*_extras().values())
    undeclared = {
        d: sorted(files)
        for d, files in _imported_distributions("tests").items()
        if d not in declared
    }
    assert not undeclared, f"imported by the tests but in no dependency or extra: {undeclared}"
    assert "scikit-image" in _extras()["test"] and "scikit-image" not in _dependencies()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[_norm(name.split("[", 1)[0])] = version.strip()  # ray[data]==...: ray's pin
    return pins


def test_requirements_pin_every_declared_package_as_constraints_do() -> None:
    """``make setup`` installs requirements.txt: every dependency and extra, at the constraints'
    version."""
    requirements, constraints = _pins(ROOT / "requirements.txt"), _pins(ROOT / "constraints.txt")
    declared = _dependencies().union(*_extras().values())
    assert set(requirements) == declared, (
        f"only in requirements.txt: {sorted(set(requirements) - declared)}; "
        f"only in pyproject.toml: {sorted(declared - set(requirements))}"
    )
    differ = {
        n: (v, constraints.get(n)) for n, v in requirements.items() if constraints.get(n) != v
    }
    assert not differ, f"requirements.txt and constraints.txt pin differently: {differ}"
