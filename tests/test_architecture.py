"""The package's shape: data flows one way (DESIGN.md), no import circles, no torch below models."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "artid"
#: What each lower room may never import (at module level or inside a function).
FORBIDDEN = {
    "artid.retrieval": ("artid.attributes", "artid.service", "artid.commands", "artid.training",
                        "artid.evaluation", "artid.models"),
    "artid.evaluation": ("artid.service", "artid.commands", "artid.training", "artid.models"),
    "artid.metrics": ("artid.retrieval", "artid.evaluation", "artid.service", "artid.models"),
    "artid.extraction.local": ("artid.retrieval", "artid.attributes", "artid.service"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        name = ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = p
    return out


def _imports(path: Path, module_level: bool) -> set[str]:
    """Modules of artid a file imports: at module level (``if TYPE_CHECKING`` blocks included:
    a circle of type names is still a circle), or anywhere (function bodies included). The package
    root's type-checking names of its public API (``artid/__init__.py``) are not edges."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes: list[ast.AST] = []
    if module_level:
        for n in tree.body:
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                nodes += [] if path == PACKAGE / "__init__.py" else n.body
            else:
                nodes.append(n)
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for n in nodes:
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("artid"):
            found.add(n.module)
            found.update(f"{n.module}.{a.name}" for a in n.names)
        elif isinstance(n, ast.Import):
            found.update(a.name for a in n.names if a.name.startswith("artid"))
    return found


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    mods = _modules()
    graph = {m: {t for t in _imports(p, True) if t in mods and t != m} for m, p in mods.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_lower_rooms_never_import_the_rooms_above_them() -> None:
    bad = []
    for name, path in _modules().items():
        for room, above in FORBIDDEN.items():
            if name == room or name.startswith(room + "."):
                bad += [f"{name} imports {t}" for t in sorted(_imports(path, False))
                        if t.startswith(above)]
    assert not bad, bad


def test_retrieval_evaluation_and_local_features_load_without_torch() -> None:
    code = ("import sys, artid.retrieval.pipeline, artid.evaluation.run, artid.extraction.local; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
