"""Structure of every notebook (fast, no kernel): the conventions of STYLE.md that nbval cannot see.

nbval itself (stored outputs re-executed and compared) runs on notebooks/ in `make test`.
"""

from __future__ import annotations

import ast
import json
import re

import papermill
import pytest

from helpers import paths, run

NOTEBOOKS = run.notebooks()


def cells(nb_path):
    return json.loads(nb_path.read_text())["cells"]


def src(cell) -> str:
    return "".join(cell["source"])


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_the_runner_finds_exactly_the_numbered_notebooks():
    """helpers.run.notebooks() (what `make report` and nbval run) is every notebooks/NN_name.ipynb,
    in number order, and the folder holds no other notebook that would be silently left out."""
    files = sorted(p.name for p in paths.NOTEBOOKS.iterdir() if p.suffix == ".ipynb")
    numbered = [f for f in files if re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", f)]
    assert numbered, "no notebooks found"
    assert files == numbered, (
        f"notebooks the runner would skip: {sorted(set(files) - set(numbered))}"
    )
    assert [p.name for p in NOTEBOOKS] == numbered
    assert len({f[:2] for f in numbered}) == len(numbered), "two notebooks share a number"


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_of_typed_commented_literals(nb_path):
    code = [c for c in cells(nb_path) if c["cell_type"] == "code"]
    tagged = [c for c in code if "parameters" in tags(c)]
    assert len(tagged) == 1
    lines = [
        ln for ln in src(tagged[0]).splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    assert lines
    for line in lines:
        node = ast.parse(line.split("  #")[0]).body[0]
        assert isinstance(node, ast.AnnAssign), (
            f"{nb_path.name}: '{line}' is not a typed assignment"
        )
        assert isinstance(node.value, ast.Constant), f"{nb_path.name}: '{line}' is not a literal"
        assert "  # " in line, (
            f"{nb_path.name}: '{line}' has no comment for papermill --help-notebook"
        )
    # papermill must read every line (it silently skips, e.g., a comment holding '=')
    declared = papermill.inspect_notebook(str(nb_path))
    names = [ast.parse(ln.split("  #")[0]).body[0].target.id for ln in lines]
    assert list(declared) == names, f"{nb_path.name}: papermill reads {list(declared)}"
    assert all(p["help"] and p["inferred_type_name"] != "None" for p in declared.values())


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shape_and_stored_run(nb_path):
    nb = json.loads(nb_path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    all_cells = nb["cells"]
    assert all_cells[0]["cell_type"] == "markdown" and src(all_cells[0]).startswith("# ")
    assert 20 <= len(all_cells) <= 45, f"{nb_path.name} has {len(all_cells)} cells"
    code = [c for c in all_cells if c["cell_type"] == "code" and src(c).strip()]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), (
        "store it executed top to bottom"
    )
    for c in code:
        for out in c["outputs"]:
            assert out["output_type"] != "error"
            assert not (out.get("name") == "stderr" and "Warning" in "".join(out.get("text", "")))
    assert any("solution" in tags(c) for c in code), (
        "exercises need executed solutions tagged 'solution'"
    )
    assert "record_metrics(" in src(code[-1]), "the last code cell records the headline figures"
    assert "from helpers" in "".join(src(c) for c in code)
    assert "../datasets" not in "".join(src(c) for c in code)
