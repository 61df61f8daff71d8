"""The generator's import graph (issue 23): no cycle between its modules, no import inside a
function (the usual way a cycle is dodged), no ``_private`` name imported from another module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import helpers.synth

SYNTH = Path(helpers.synth.__file__).resolve().parent
PACKAGE = "helpers.synth"


def _modules() -> dict[str, ast.Module]:
    return {
        f"{PACKAGE}.{p.stem}" if p.stem != "__init__" else PACKAGE: ast.parse(p.read_text())
        for p in sorted(SYNTH.glob("*.py"))
    }


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names of the modules an import statement loads (``from helpers.synth import x``
    loads the submodule ``helpers.synth.x`` when there is one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    subs = [f"{base}.{a.name}" for a in node.names if (SYNTH / f"{a.name}.py").exists()]
    return subs if base == PACKAGE and subs else [base]


def _graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Module -> the package modules it imports at module level (the package itself excluded: a
    submodule importing its parent package only runs ``__init__``, which imports the submodules)."""
    graph = {}
    for name, tree in modules.items():
        deps = set()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(m for m in _imported(node) if m in modules and m != PACKAGE)
        graph[name] = deps - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_synth_modules_import_each_other_without_a_cycle():
    assert _cycle(_graph(_modules())) is None


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_import_inside_a_function(name):
    tree = _modules()[name]
    nested = [
        (fn.name, inner.lineno)
        for fn in ast.walk(tree)
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
        for inner in ast.walk(fn)
        if isinstance(inner, (ast.Import, ast.ImportFrom))
    ]
    assert nested == [], f"{name}: imports inside functions {nested}"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_private_name_imported_from_another_module(name):
    tree = _modules()[name]
    private = [
        f"{node.module}.{a.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for a in node.names
        if a.name.startswith("_") and not a.name.startswith("__")
    ]
    assert private == [], f"{name} imports private names {private}"
