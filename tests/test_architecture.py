"""The layout rules of DESIGN.md, checked on the source: which package may import which,
no import cycle between modules, and no module that has grown too many jobs (too long)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tools", "golden", "hw", "quant", "sim", "reports")

#: package -> the packages of ours it may import (DESIGN.md, "Layout").
ALLOWED = {
    "tools": set(),
    "golden": set(),
    "hw": {"golden", "tools"},
    "quant": {"golden", "tools"},
    "sim": {"hw", "golden", "tools"},
    "reports": {"hw", "golden", "tools"},
}
#: third-party packages a package must never import.
FORBIDDEN = {
    "hw": {"torch"},
    "golden": {"torch", "amaranth"},
    "tools": {"numpy", "torch"},
    "quant": {"amaranth"},
    "sim": {"torch"},
    "reports": {"torch"},
}

MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path, top_level_only: bool) -> set[str]:
    """Absolute names imported by module ``name`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                mod = ".".join(anchor + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found |= {f"{mod}.{a.name}" for a in node.names}  # submodules imported by name
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_one_way(name):
    pkg = name.split(".")[0]
    tops = {imp.split(".")[0] for imp in _imports(name, MODULES[name], top_level_only=False)}
    ours = (tops & set(PACKAGES)) - {pkg}
    assert ours <= ALLOWED[pkg], f"{name} imports {sorted(ours - ALLOWED[pkg])}"
    bad = tops & FORBIDDEN[pkg]
    assert not bad, f"{name} imports {sorted(bad)}"


def test_no_import_cycle():
    graph = {
        name: {m for m in _imports(name, path, top_level_only=False) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }
    # A package's __init__ importing its own submodules is the usual re-export, not a cycle
    # unless a submodule imports the package back at module level.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycle = stack[stack.index(m) :] + [m]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_does_too_many_jobs(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (> {MAX_LINES}): split it by job"
