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


#: Arguments that name a day of the data: their one default is the day of the last row
#: (helpers.periods.default_as_of), never a literal date.
_DAY_ARGS = {"as_of", "holdout_end", "calibration_end", "end", "start"}


def test_no_signature_defaults_a_day_to_a_literal_date():
    """One meaning and one default of as-of (issue 23): no helper defaults a day argument to a
    date written in the code (six used to default to "2025-12-31")."""
    bad = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            a = node.args
            pairs = list(zip(a.args[len(a.args) - len(a.defaults) :], a.defaults, strict=True)) + [
                (arg, d)
                for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)
                if d is not None
            ]
            bad += [
                f"{name}.{node.name}({arg.arg}={d.value!r})"
                for arg, d in pairs
                if arg.arg in _DAY_ARGS and isinstance(d, ast.Constant) and isinstance(d.value, str)
            ]
    assert not bad, bad
