"""The book (make book): built offline from the stored notebooks, every notebook in order, cell
tags as in the reports, solutions folded, warnings fatal, nothing loaded from the web, and three
pages checked in headless Chromium (pytest -m chromium)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers import book, browser, paths, run

IN_CI = os.environ.get("CI") == "true"
# Sphinx announces API changes of its extensions (book theme, MyST) when built in-process
pytestmark = pytest.mark.filterwarnings("ignore:.*Check CHANGES for Sphinx API")


def unshare_works() -> bool:
    """Can this machine run a command in a network namespace of its own (no network)?"""
    if not shutil.which("unshare"):
        return False
    done = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    """The book built as `make book` builds it, into a temporary folder, with the network
    unshared when the machine allows it; records how long it took."""
    root = tmp_path_factory.mktemp("book")
    offline = unshare_works()
    cmd = [
        sys.executable,
        "-m",
        "helpers.book",
        "--out",
        str(root / "html"),
        "--src",
        str(root / "src"),
    ]
    if offline:
        cmd = ["unshare", "-rn", *cmd]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {"html": root / "html", "seconds": seconds, "offline": offline, "stdout": done.stdout}


def page(built: dict, rel: str) -> str:
    return (built["html"] / rel).read_text(encoding="utf-8")


class Links(HTMLParser):
    """Every <a href>, every element id and the page's text, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.rel: dict[str, str] = {}
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "link" and a.get("rel") in ("next", "prev"):
            self.rel[a["rel"]] = a.get("href", "")
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(text: str) -> Links:
    p = Links()
    p.feed(text)
    return p


def plain(text: str) -> str:
    """A page's text, whitespace collapsed and Sphinx's typographic quotes made straight."""
    joined = " ".join(" ".join(parse(text).text).split())
    return joined.translate(
        str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
    )


def cells(nb_path: Path) -> list[dict]:
    return json.loads(nb_path.read_text(encoding="utf-8"))["cells"]


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# --------------------------------------------------------------------------------------------
# the build


def test_book_builds_in_under_a_minute(built):
    assert built["seconds"] < 60, f"the book took {built['seconds']:.0f} s to build"
    assert "open " in built["stdout"] and (built["html"] / "index.html").exists()


def test_book_builds_with_the_network_unshared(built):
    if not built["offline"]:
        if IN_CI:
            pytest.fail("CI must be able to build the book with the network unshared (unshare -rn)")
        pytest.skip("this machine cannot unshare the network (unshare -rn)")
    assert built["offline"]


def test_every_notebook_is_in_the_book_in_order(built):
    expected = [p.stem for p in run.notebooks()]
    assert expected, "no notebooks"
    index = parse(page(built, "index.html"))
    # the table of contents (the sidebar and the front page's table) in document order
    listed = []
    for href in index.hrefs:
        m = re.match(r"^notebooks/([^/#]+)\.html$", href)
        if m and m.group(1) not in listed:
            listed.append(m.group(1))
    assert listed == expected
    # the reading order: "next" goes from the front page through every notebook, in order
    order, rel = [], "index.html"
    for _ in range(len(expected) + 5):
        nxt = parse(page(built, rel)).rel.get("next")
        if not nxt:
            break
        rel = str((Path(rel).parent / nxt).as_posix())
        rel = os.path.normpath(rel)
        order.append(Path(rel).stem)
    assert order[: len(expected)] == expected
    assert order[len(expected) :] == ["data", "glossary", "references"]
    for nb in book.collection():
        text = page(built, f"notebooks/{nb.path.stem}.html")
        assert f"<title>{html.escape(nb.title, quote=False)}" in text or nb.title in plain(text)


def test_front_page_says_what_the_collection_teaches(built):
    text = plain(page(built, "index.html"))
    text = re.sub(r"\s+([,.;:])", r"\1", text)  # "<em>time</em>," is joined as "time ,"
    for needed in ("make report", "make test", "Copperleaf Roasters", "make book"):
        assert needed in text
    for nb in book.collection():
        shown = lambda md: re.sub(r"[*_`]", "", md)  # noqa: E731  (Markdown emphasis renders away)
        assert shown(nb.title) in text and shown(nb.purpose)[:60] in text
    company = book.company_description((paths.DATASETS / "README.md").read_text())
    assert plain(company.replace("`", ""))[:80] in text


def test_reference_pages(built):
    data = plain(page(built, "data.html"))
    assert "Tables (data dictionary)" in data and "customer_id" in data
    refs = plain(page(built, "references.html"))
    assert "Fader" in refs and "Kaplan" in refs


def test_references_page_is_the_projects_references():
    """book/references.md is a copy of the project's shared references.md (outside the repo, so
    the build does not depend on it); when that file is beside the clone they must agree."""
    candidates = [paths.ROOT.parent / "shared", paths.ROOT.parents[1] / "shared"]
    shared = next((c / "references.md" for c in candidates if (c / "references.md").exists()), None)
    if shared is None:
        pytest.skip("the shared references.md is not beside this clone")
    assert (book.BOOK / "references.md").read_text() == shared.read_text(), (
        f"book/references.md differs from {shared}: copy it (cp {shared} book/references.md)"
    )


# --------------------------------------------------------------------------------------------
# nothing from the web

EXTERNAL = re.compile(r"""^\s*(?:https?:)?//""", re.I)
FONT_OR_STYLE = (".css", ".js", ".mjs", ".woff", ".woff2", ".ttf", ".otf", ".eot")


def external_loads(html_dir: Path) -> list[str]:
    """Scripts, style sheets and fonts that the built pages load from http(s)."""
    found = []
    tag = re.compile(r"<(script|link|style)\b([^>]*)>", re.I)
    attr = re.compile(r"""\b(src|href|rel|as)\s*=\s*["']([^"']*)["']""", re.I)
    css_url = re.compile(r"""(?:url\(\s*|@import\s+)["']?((?:https?:)?//[^"')\s]+)""", re.I)
    for f in sorted(html_dir.rglob("*")):
        if f.suffix not in (".html", ".css"):
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        found += [f"{f.name}: css {u}" for u in css_url.findall(text)]
        if f.suffix != ".html":
            continue
        for name, attrs in tag.findall(text):
            a = {k.lower(): v for k, v in attr.findall(attrs)}
            url = a.get("src") or a.get("href") or ""
            if not EXTERNAL.match(url):
                continue
            rel = a.get("rel", "").lower()
            if (
                name.lower() == "script"
                or "stylesheet" in rel
                or "preload" in rel
                or "preconnect" in rel
                or a.get("as", "") in ("script", "style", "font")
                or url.lower().split("?")[0].endswith(FONT_OR_STYLE)
            ):
                found.append(f"{f.name}: {name} {url}")
    return found


def test_the_external_check_catches_scripts_styles_and_fonts(tmp_path):
    (tmp_path / "a.html").write_text(
        '<script src="https://cdn.example.org/mathjax.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/css?family=X">'
        '<link rel="preload" as="font" href="https://example.org/f.woff2">'
        '<link rel="next" href="b.html"><a href="https://example.org/paper">a paper</a>'
        "<style>@import url('https://example.org/x.css');</style>"
    )
    (tmp_path / "b.css").write_text("@font-face { src: url(https://example.org/font.woff); }")
    found = external_loads(tmp_path)
    assert len(found) == 5, found  # the two plain links are fine
    assert len(book.external_assets(tmp_path)) == 5, book.external_assets(tmp_path)


def test_no_page_loads_a_script_style_or_font_from_the_web(built):
    assert external_loads(built["html"]) == []
    mathjax = built["html"] / "_static" / "mathjax" / "MathJax.js"
    assert mathjax.exists(), "MathJax must ship inside the book"
    for nb in book.collection():
        text = page(built, f"notebooks/{nb.path.stem}.html")
        if 'class="math' in text:
            assert 'src="../_static/mathjax/MathJax.js' in text


# --------------------------------------------------------------------------------------------
# cell tags and folded solutions


def cell_divs(text: str) -> list[str]:
    """The class attribute of every code cell myst-nb wrote (one per code cell shown)."""
    return re.findall(r'<div class="(cell(?: [^"]*)?)"', text)


@pytest.mark.parametrize("nb_path", run.notebooks(), ids=lambda p: p.stem)
def test_tags_and_solutions_in_the_real_notebooks(built, nb_path):
    text = page(built, f"notebooks/{nb_path.stem}.html")
    code = [c for c in cells(nb_path) if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    shown = [c for c in code if "remove-cell" not in tags(c)]
    divs = cell_divs(text)
    assert len(divs) == len(shown), f"{len(divs)} code cells in the page, {len(shown)} expected"
    assert not any("tag_remove-cell" in d for d in divs)
    solutions = [d for d in divs if "tag_solution" in d]
    assert len(solutions) == sum("solution" in tags(c) for c in shown) > 0
    assert text.count(book.SHOW_SOLUTION) == len(solutions)
    assert "<details" in text and "<details open" not in text
    # removed lesson text is not in the page (its longest line, without Markdown marks; the
    # title line is kept as the page's title)
    words = plain(text)
    for cell in cells(nb_path):
        if cell["cell_type"] == "markdown" and "remove-cell" in tags(cell):
            lines = [ln for ln in "".join(cell["source"]).splitlines() if not ln.startswith("# ")]
            longest = max(lines, key=len, default="")
            bare = " ".join(re.sub(r"[#*_`$\\]", "", longest).split())
            if len(bare) > 30:
                assert bare[:60] not in words, f"removed cell shown: {bare[:60]}"


MARK = {
    "plain": "plain_cell_code_7351",
    "remove-cell": "removed_cell_code_1182",
    "remove-input": "removed_input_code_5520",
    "hide-input": "hidden_input_code_6406",
    "solution": "solution_code_9034",
}


def synthetic_notebook(folder: Path, extra_markdown: str = "", extra_output: dict | None = None):
    """A small notebook, 99_tags.ipynb, with one code cell per tag; each prints a marker."""

    def code(tag_list: list[str], name: str, n: int) -> dict:
        return {
            "cell_type": "code", "execution_count": n, "id": f"c{n}",
            "metadata": {"tags": tag_list},
            "source": f"{MARK[name]} = 1\nprint('output of {name}')",
            "outputs": [{"name": "stdout", "output_type": "stream", "text": f"output of {name}\n"}],
        }  # fmt: skip

    nb = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                     "language_info": {"name": "python"}},
        "cells": [
            {"cell_type": "markdown", "id": "m0", "metadata": {},
             "source": "# 99 · Tags\n\n**Purpose:** check the tags.\n\n## Section\n\n"
                       "Inline $E - N$ and display $$r = \\frac{E - N}{S}$$" + extra_markdown},
            code([], "plain", 1),
            code(["remove-cell"], "remove-cell", 2),
            code(["remove-input"], "remove-input", 3),
            code(["hide-input"], "hide-input", 4),
            code(["solution", "hide-input"], "solution", 5),
            {"cell_type": "markdown", "id": "m1", "metadata": {"tags": ["remove-cell"]},
             "source": "Removed lesson text 4471."},
        ],
    }  # fmt: skip
    if extra_output:
        nb["cells"][1]["outputs"].append(extra_output)
    path = folder / "99_tags.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def details_blocks(text: str) -> list[str]:
    return re.findall(r"<details.*?</details>", text, flags=re.S)


def test_tags_behave_as_in_the_reports_and_solutions_fold(tmp_path):
    nb = synthetic_notebook(tmp_path)
    book.build(tmp_path / "html", tmp_path / "src", notebooks=[nb])
    text = (tmp_path / "html" / "notebooks" / "99_tags.html").read_text(encoding="utf-8")
    folded = details_blocks(text)
    visible = re.sub(r"<details.*?</details>", "", text, flags=re.S)
    # remove-cell: neither code, output nor lesson text
    assert MARK["remove-cell"] not in text and "output of remove-cell" not in text
    assert "Removed lesson text 4471" not in text
    # remove-input: the output only
    assert MARK["remove-input"] not in text and "output of remove-input" in visible
    # hide-input: the code folded, the output shown
    assert MARK["hide-input"] not in visible and "output of hide-input" in visible
    assert any(MARK["hide-input"] in d and "Show code cell source" in d for d in folded)
    # solution: code and output folded together behind "Show the solution", closed
    assert MARK["solution"] not in visible and "output of solution" not in visible
    (solution,) = [d for d in folded if MARK["solution"] in d]
    assert book.SHOW_SOLUTION in solution and "output of solution" in solution
    assert not any(d.startswith("<details open") for d in folded)
    # a plain cell is shown whole; math is left for MathJax, in its delimiters
    assert MARK["plain"] in visible and "output of plain" in visible
    assert r"\(E - N\)" in text and r"\[r = \frac{E - N}{S}\]" in text


def test_a_broken_link_fails_the_build(tmp_path):
    nb = synthetic_notebook(tmp_path, "\n\nSee [the missing notebook](98_missing.ipynb).")
    with pytest.raises(book.BookError, match="warnings"):
        book.build(tmp_path / "html", tmp_path / "src", notebooks=[nb])


def test_a_missing_image_fails_the_build(tmp_path):
    nb = synthetic_notebook(tmp_path, "\n\n![a figure](figures/missing.png)")
    with pytest.raises(book.BookError, match="warnings"):
        book.build(tmp_path / "html", tmp_path / "src", notebooks=[nb])


def test_an_output_that_loads_a_web_script_fails_the_build(tmp_path):
    out = {
        "output_type": "display_data", "metadata": {},
        "data": {"text/html": ['<script src="https://cdn.example.org/widget.js"></script>'],
                 "text/plain": ["<widget>"]},
    }  # fmt: skip
    nb = synthetic_notebook(tmp_path, extra_output=out)
    with pytest.raises(book.BookError, match="cdn.example.org"):
        book.build(tmp_path / "html", tmp_path / "src", notebooks=[nb])


# --------------------------------------------------------------------------------------------
# the glossary


def test_glossary_terms_are_taught_where_it_says():
    glossary = book.load_glossary()
    assert set(glossary["planned"]) == {f"{n:02d}" for n in range(1, 9)}
    notebooks = {nb.number: nb for nb in book.collection()}
    wanted = {"retention rate", "churn", "cohort", "sbg", "derl", "bg/nbd", "p(alive)",
              "gamma-gamma", "clv", "rfm", "cost to serve", "kaplan", "censoring", "hazard ratio",
              "nps", "breakage", "did", "cuped", "qini"}  # fmt: skip
    terms = " ".join(t["term"].lower() for t in glossary["terms"])
    assert all(w in terms for w in wanted), [w for w in wanted if w not in terms]
    for entry in glossary["terms"]:
        for where in entry["taught_in"]:
            number, _, heading = where.partition("#")
            nb = notebooks.get(number)
            if nb is None:
                continue  # still to come: named in plain text
            text = book.markdown_text(json.loads(nb.path.read_text(encoding="utf-8")))
            assert re.search(entry["pattern"], text, flags=re.I), (
                f"glossary: '{entry['term']}' is said to be taught in {nb.path.name}, which never "
                f"mentions /{entry['pattern']}/: fix book/glossary.yml or the notebook"
            )
            if heading:
                assert heading in nb.headings, f"{nb.path.name} has no heading '{heading}'"


def test_glossary_links_only_to_notebooks_that_exist():
    planned = {"01": "retention", "03": "survival"}
    entry = {"term": "Churn", "taught_in": ["01#2. Rates", "03"]}
    nb01 = book.Notebook("01", Path("notebooks/01_rates.ipynb"), "Rates", "", ("2. Rates",))
    got = book.taught_in(entry, {"01": nb01}, planned)
    assert got == [
        "[01 · Rates: Rates](notebooks/01_rates.ipynb#2-rates)",
        "notebook 03, survival (still to come)",
    ]
    nb03 = book.Notebook("03", Path("notebooks/03_survival.ipynb"), "Survival", "", ())
    assert book.taught_in(entry, {"01": nb01, "03": nb03}, planned)[1] == (
        "[03 · Survival](notebooks/03_survival.ipynb)"
    )
    with pytest.raises(book.BookError, match="no heading"):
        book.taught_in({"term": "x", "taught_in": ["01#9. Nowhere"]}, {"01": nb01}, planned)


def test_glossary_links_land_on_sections(built):
    glossary = parse(page(built, "glossary.html"))
    links = [h for h in glossary.hrefs if h.startswith("notebooks/")]
    assert links, "the glossary links no notebook"
    for href in links:
        target, _, anchor = href.partition("#")
        assert (built["html"] / target).exists(), href
        if anchor:
            assert anchor in parse(page(built, target)).ids, f"{href}: no such section"


# --------------------------------------------------------------------------------------------
# in a real browser


def image_outputs(nb_path: Path) -> int:
    return sum(
        "image/png" in o.get("data", {})
        for c in cells(nb_path)
        if c["cell_type"] == "code" and "remove-cell" not in tags(c)
        for o in c.get("outputs", [])
    )


def browser_pages() -> list[str]:
    nbs = {p.name[:2]: p for p in run.notebooks()}
    return ["index.html"] + [f"notebooks/{nbs[n].stem}.html" for n in ("02", "08") if n in nbs]


@pytest.mark.chromium
@pytest.mark.parametrize("rel", browser_pages())
def test_page_in_headless_chromium(built, rel, tmp_path):
    """The page renders offline: no console error, no failed or outside request, every image
    decodes, the LaTeX is typeset (no raw $$ left), and solutions are closed until clicked."""
    if not browser.CHROMIUM.exists():
        message = f"{browser.CHROMIUM} not found (make chromium)"
        if IN_CI:
            pytest.fail(message + ": CI must run the browser checks")
        pytest.skip(message)
    report = browser.open_page((built["html"] / rel).as_uri(), screenshot=tmp_path / "page.png")
    assert report.title.endswith("Retention Lab")
    assert report.console_errors == []
    assert report.failed_requests == [] and report.external_requests == []
    assert all(i["decoded"] and i["width"] > 0 for i in report.images), report.images
    assert "$$" not in report.prose
    assert not re.search(r"\$[^$\s][^$]*\\[a-zA-Z]+", report.prose), "raw $...$ LaTeX left"
    assert report.math_errors == 0 and report.math_raw == []
    assert report.math_typeset == report.math_elements
    assert (tmp_path / "page.png").stat().st_size > 10_000
    if rel.startswith("notebooks/"):
        nb_path = paths.NOTEBOOKS / (Path(rel).stem + ".ipynb")
        assert len(report.images) == image_outputs(nb_path) > 0
        solutions = [d for d in report.details if d["summary"].startswith(book.SHOW_SOLUTION)]
        n_solutions = sum(
            "solution" in tags(c) and "remove-cell" not in tags(c) for c in cells(nb_path)
        )
        assert len(solutions) == n_solutions > 0
        for d in solutions:  # closed: its code is in the page but not shown
            assert not d["open"]
            code = d["text"].split(book.HIDE_SOLUTION)[-1].strip()[:30]
            assert code and code not in report.text
    if "02_" in rel:
        assert report.math_elements > 20  # the cohort and sBG formulas
