"""The README stays true: its notebook table lists every notebook, its title and the helpers it uses."""

from __future__ import annotations

import json
import re

from helpers import paths, run

ROW = re.compile(
    r"^\|\s*(\d\d)\s*\|\s*\[([^\]]+)\]\((notebooks/[^)]+\.ipynb)\)\s*\|([^|]+)\|([^|]+)\|\s*$", re.M
)


def table() -> dict[str, tuple[str, str, str, str]]:
    readme = (paths.ROOT / "README.md").read_text()
    return {
        m.group(1): (m.group(2).strip(), m.group(3), m.group(4).strip(), m.group(5))
        for m in ROW.finditer(readme)
    }


def notebook_title(nb) -> str:
    first = "".join(json.loads(nb.read_text())["cells"][0]["source"]).splitlines()[0]
    return re.sub(r"^#\s*(\d\d\s*[·—–:.-]\s*)?", "", first).strip()


def helpers_used(nb) -> set[str]:
    code = "\n".join(
        "".join(c["source"])
        for c in json.loads(nb.read_text())["cells"]
        if c["cell_type"] == "code"
    )
    used = set()
    for sub, names in re.findall(r"from helpers(?:\.(\w+))? import ([\w, ]+)", code):
        used |= {sub} if sub else {n.strip() for n in names.split(",")}
    return used


def test_readme_starts_with_the_two_commands():
    readme = (paths.ROOT / "README.md").read_text()
    assert readme.index("make report") < readme.index("| ") and "make test" in readme


def test_every_notebook_has_a_complete_row():
    rows = table()
    for nb in run.notebooks():
        num = nb.name[:2]
        assert num in rows, f"README has no row for {nb.name}"
        title, link, learn, helpers_col = rows[num]
        assert link == f"notebooks/{nb.name}"
        assert title == notebook_title(nb), f"README title of {nb.name} differs from its H1"
        assert learn, f"README row {num}: say what you learn"
        listed = set(re.findall(r"`(\w+)`", helpers_col))
        assert listed == helpers_used(nb), (
            f"README row {num}: helpers listed {sorted(listed)} but the notebook uses {sorted(helpers_used(nb))}"
        )
    assert set(rows) == {nb.name[:2] for nb in run.notebooks()}, (
        "README lists a notebook that does not exist"
    )
