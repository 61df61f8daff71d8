"""The house's layout (issue 23): the import graph of ``helpers/`` has no cycle, counting imports
inside functions (so none can dodge one), no module reaches into another's private names, and no
module name is used twice."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

from helpers import paths

PACKAGE = paths.ROOT / "helpers"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(paths.ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, str]]:
    """(imported module, imported name or '') of every import in the module, at any depth."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, "") if sub in MODULES else (base, alias.name))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, "") for alias in node.names)
    return [(m, n) for m, n in found if m in MODULES]


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m, p) if t != m} for m, p in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph (depth-first search), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_helpers_import_graph_has_no_cycle():
    """Imports inside functions count too: a cycle cannot be hidden in a function body."""
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(name):
    private = [
        f"{m}.{n}" for m, n in _imports(name, MODULES[name]) if n.startswith("_") and m != name
    ]
    assert not private, f"{name} imports private names {private}"


def test_no_module_name_is_used_twice():
    leaves = Counter(
        m.rsplit(".", 1)[-1] for m, p in MODULES.items() if p.name != "__init__.py" and "." in m
    )
    leaves.update(m.rsplit(".", 1)[-1] for m, p in MODULES.items() if p.name == "__init__.py")
    twice = sorted(n for n, k in leaves.items() if k > 1 and n not in ("__main__",))
    assert not twice, f"module names used twice under helpers/: {twice}"
