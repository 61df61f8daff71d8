"""Every estimate of a planted effect a notebook prints is in its metrics.json (issue 24): the
stored notebooks' outputs are read, not re-run, and compared with the metrics.json of the
session's run on the bundled company (``metrics(nn, "bundled")`` of ``conftest.py``, the same code
and data as the stored outputs, which nbval holds equal to a fresh run).

Two checks per notebook of the registry (:mod:`helpers.synth.registry`):

* every metric the registry names for it is recorded as ``{"estimate", "ci_low", "ci_high",
  "truth"}``, all four numbers;
* every interval it prints beside a truth is recorded: in its text and Markdown outputs an
  ``estimate [low, high]`` or ``estimate (low to high)`` followed, within the sentence, by a word
  that compares it with the truth ("planted", "truth", "generator", "covers", "missed"...), and in
  its tables every row of an estimate / low / high column group in a table with a truth column
  (a column named truth, generator or planted). "Recorded" means some entry of metrics.json with a
  ``truth`` or ``generator_base`` holds the same three numbers to the printed precision (a printed
  percentage may be stored as a share).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from helpers.run import TRUTH_KEYS
from helpers.synth import read_truth, registry
from tests.collection.conftest import notebook

NOTEBOOKS = sorted({m.notebook for c in registry.registry().values() for m in c.metrics})

_NUM = r"[-−]?\d[\d,]*(?:\.\d+)?%?"
#: ``1.75 [1.13, 2.71]`` and ``49% (30% to 62%)`` / ``11.2 (8.0 to 14.5)`` / ``0.9 (0.8–1.0)``
INTERVAL = re.compile(
    rf"(?P<e>{_NUM})\s*(?:[\w%]+\s*)?"
    rf"(?:\[\s*(?P<l1>{_NUM})\s*,\s*(?P<h1>{_NUM})\s*\]"
    rf"|\(\s*(?:95\s*%\s*(?:CI|interval)?:?\s*)?(?P<l2>{_NUM})\s*(?:to|–)\s*(?P<h2>{_NUM})\s*[;),])"
)
#: Words that put a printed interval beside the truth it estimates.
MARKER = re.compile(r"\b(planted|truth|generator|covers|covered|misses|missed)\b", re.IGNORECASE)
#: Table columns that hold a truth.
TRUTH_COLUMN = re.compile(r"truth|generator|planted", re.IGNORECASE)
#: How far (characters) a marker may follow the interval it refers to.
REACH = 160


@dataclass(frozen=True)
class Number:
    value: float
    decimals: int
    percent: bool

    @classmethod
    def parse(cls, text: str) -> Number:
        t = text.strip().replace("−", "-").replace(",", "")
        percent = t.endswith("%")
        t = t.rstrip("%")
        decimals = len(t.split(".")[1]) if "." in t else 0
        return cls(float(t), decimals, percent)

    def matches(self, value: float) -> bool:
        """`value` (stored, rounded to 4 decimals) printed to this precision gives this number."""
        for scale in (1.0, 100.0) if self.percent else (1.0,):
            tol = 0.5 * 10.0**-self.decimals + 0.5e-4 * scale + 1e-9
            if abs(value * scale - self.value) <= tol:
                return True
        return False


@dataclass(frozen=True)
class Printed:
    """An estimate and its interval as a notebook prints them, and where."""

    cell: int
    estimate: Number
    low: Number
    high: Number
    context: str

    def matches(self, entry: dict[str, Any]) -> bool:
        vals = [entry.get(k) for k in ("estimate", "ci_low", "ci_high")]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in vals):
            return False
        return all(
            n.matches(float(v))
            for n, v in zip((self.estimate, self.low, self.high), vals, strict=True)
        )


def entries(metrics: Any, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every truth entry of a metrics dict (any depth): (dotted key, entry)."""
    if isinstance(metrics, dict):
        if {"estimate", "ci_low", "ci_high"} <= set(metrics) and set(TRUTH_KEYS) & set(metrics):
            yield prefix, metrics
        for k, v in metrics.items():
            yield from entries(v, f"{prefix}.{k}" if prefix else str(k))


def _texts(output: dict[str, Any]) -> Iterator[str]:
    if output.get("output_type") == "stream":
        yield output.get("text", "")
    data = output.get("data", {})
    if "text/markdown" in data:
        yield data["text/markdown"]
    elif "text/plain" in data and "text/html" not in data:
        yield data["text/plain"]


def printed_in_text(cell: int, text: str) -> list[Printed]:
    """The intervals a marker word follows within :data:`REACH` characters (the nearest one
    before each marker, with no other interval and no paragraph break in between)."""
    found = list(INTERVAL.finditer(text))
    out: dict[int, Printed] = {}
    for marker in MARKER.finditer(text):
        before = [m for m in found if m.end() <= marker.start()]
        if not before:
            continue
        m = before[-1]
        between = text[m.end() : marker.start()]
        if marker.start() - m.end() > REACH or "\n\n" in between:
            continue
        low, high = m["l1"] or m["l2"], m["h1"] or m["h2"]
        out[m.start()] = Printed(
            cell, Number.parse(m["e"]), Number.parse(low), Number.parse(high),
            text[max(0, m.start() - 60) : marker.end() + 20].replace("\n", " "),
        )  # fmt: skip
    return list(out.values())


def _html_rows(html: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """A pandas HTML table's column labels (of the data cells) and rows (index label, cells)."""
    from bs4 import BeautifulSoup

    table = BeautifulSoup(html, "html.parser").find("table")
    if table is None or table.thead is None or table.tbody is None:
        return [], []
    header = [th.get_text(" ", strip=True) for th in table.thead.find("tr").find_all("th")]
    rows = []
    for tr in table.tbody.find_all("tr"):
        tds = [td.get_text(" ", strip=True) for td in tr.find_all("td")]
        label = " ".join(th.get_text(" ", strip=True) for th in tr.find_all("th"))
        rows.append((label, tds))
    n = max((len(tds) for _, tds in rows), default=0)
    return header[len(header) - n :] if n else [], rows


def printed_in_table(cell: int, html: str) -> list[Printed]:
    """Rows of a table with a truth column: for each low column (``ci_low``, ``low``,
    ``X ci_low``) the estimate is the nearest column before it that is not a standard error
    (``se``) and the high one the column after it."""
    columns, rows = _html_rows(html)
    if not any(TRUTH_COLUMN.search(c) for c in columns):
        return []
    low_cols = [i for i, c in enumerate(columns) if re.search(r"(^|\s|_)(ci_)?low$", c)]
    out = []
    for i in low_cols:
        if i == 0 or i + 1 >= len(columns) or not re.search(r"high$", columns[i + 1]):
            continue
        est = i - 1  # the estimate: the nearest column to the left that is not a standard error
        while est > 0 and re.fullmatch(r"(.*\s)?(se|std\.? err(or)?)", columns[est], re.IGNORECASE):
            est -= 1
        for label, cells in rows:
            if len(cells) != len(columns):
                continue
            triple = [cells[est], cells[i], cells[i + 1]]
            if not all(re.fullmatch(_NUM, c or "") for c in triple):
                continue  # NaN: no interval printed
            truths = [cells[j] for j, c in enumerate(columns) if TRUTH_COLUMN.search(c)]
            if not any(re.fullmatch(_NUM, t or "") for t in truths):
                continue  # no truth in this row: not compared with one
            e, lo, hi = (Number.parse(c) for c in triple)
            out.append(Printed(cell, e, lo, hi, f"table row {label!r}, {columns[est]!r}"))
    return out


def printed_estimates(nb: Any) -> list[Printed]:
    """Every interval notebook `nb` prints beside a truth, in text and in tables."""
    out: list[Printed] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            for text in _texts(output):
                out.extend(printed_in_text(i, text))
            html = output.get("data", {}).get("text/html")
            if html:
                out.extend(printed_in_table(i, html))
    return out


def unrecorded(nb: Any, metrics: dict[str, Any]) -> list[str]:
    """The printed intervals beside a truth that no truth entry of `metrics` holds."""
    recorded = [e for _, e in entries(metrics)]
    return [
        f"cell {p.cell}: {p.estimate.value:g} [{p.low.value:g}, {p.high.value:g}] ({p.context})"
        for p in printed_estimates(nb)
        if not any(p.matches(e) for e in recorded)
    ]


def missing_registry_metrics(nn: str, metrics: dict[str, Any], data: Path | None) -> list[str]:
    """Registry metrics of notebook `nn` not recorded with all four numbers."""
    truth = read_truth(data)
    problems = []
    for m in registry.metrics_for(nn, truth["parameters"]):
        node: Any = metrics
        for part in m.key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        keys = ("estimate", "ci_low", "ci_high", "truth")
        if not isinstance(node, dict) or not all(
            isinstance(node.get(k), int | float) for k in keys
        ):
            problems.append(f"{m.key}: {node!r}")
    return problems


# --- the checks on the collection -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("nn", NOTEBOOKS)
def test_every_registry_metric_is_recorded_with_estimate_interval_and_truth(nn, metrics):
    problems = missing_registry_metrics(nn, metrics(nn, "bundled"), None)
    assert not problems, f"{notebook(nn).name}: not recorded\n" + "\n".join(problems)


#: Notebooks found printing estimates beside a truth that they do not record, when this check was
#: written (issue 24; not this check's owners' notebooks): strict, so the marker must go once fixed.
KNOWN_GAPS: dict[str, str] = {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "nn",
    [
        pytest.param(nn, marks=pytest.mark.xfail(reason=KNOWN_GAPS[nn], strict=True))
        if nn in KNOWN_GAPS
        else nn
        for nn in NOTEBOOKS
    ],
)
def test_every_estimate_printed_beside_a_truth_is_recorded(nn, metrics):
    nb = nbformat.read(notebook(nn), as_version=4)
    problems = unrecorded(nb, metrics(nn, "bundled"))
    assert not problems, (
        f"{notebook(nn).name} prints estimates of planted effects that its metrics.json does not "
        "record (record them with helpers.run.truth_entry):\n" + "\n".join(problems)
    )


# --- the check itself can fail ---------------------------------------------------------------


def _notebook(*outputs: dict[str, Any]) -> Any:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells = [cell]
    return nb


def test_the_check_finds_a_printed_estimate_that_is_not_recorded():
    text = "referral: 0.73 [0.42, 1.21], planted 0.7; drop 49% (30% to 62%; planted 50%)\n"
    nb = _notebook({"output_type": "stream", "name": "stdout", "text": text})
    assert len(printed_estimates(nb)) == 2
    both = {
        "a": {"estimate": 0.7301, "ci_low": 0.42, "ci_high": 1.2149, "truth": 0.7},
        "b": {"nested": {"estimate": 0.4912, "ci_low": 0.3, "ci_high": 0.6213, "truth": 0.5}},
    }
    assert unrecorded(nb, both) == []
    assert len(unrecorded(nb, {"a": both["a"]})) == 1  # the reduction is not recorded
    assert len(unrecorded(nb, {})) == 2
    # a number off by more than the printed precision, or an entry without a truth, does not count
    off = {
        "a": {**both["a"], "ci_high": 1.23},
        "b": {k: v for k, v in both["b"]["nested"].items() if k != "truth"},
    }
    assert len(unrecorded(nb, off)) == 2


def test_the_check_reads_tables_with_a_truth_column():
    html = (
        "<table><thead><tr><th></th><th>estimate</th><th>ci_low</th><th>ci_high</th>"
        "<th>generator</th></tr></thead><tbody>"
        "<tr><th>r</th><td>0.827</td><td>0.786</td><td>0.871</td><td>0.9</td></tr>"
        "<tr><th>x</th><td>1.0</td><td>NaN</td><td>NaN</td><td>0.9</td></tr>"
        "</tbody></table>"
    )
    nb = _notebook({"output_type": "execute_result", "execution_count": 1, "metadata": {},
                    "data": {"text/html": html, "text/plain": "…"}})  # fmt: skip
    assert len(printed_estimates(nb)) == 1
    entry = {"estimate": 0.8271, "ci_low": 0.7862, "ci_high": 0.8709, "truth": 0.9}
    assert unrecorded(nb, {"bgnbd_r": entry}) == []
    assert len(unrecorded(nb, {})) == 1
    # text without a word comparing it with a truth is not an estimate of a planted effect
    plain = _notebook({"output_type": "stream", "name": "stdout", "text": "CLV 12.3 [10.1, 14.2]"})
    assert printed_estimates(plain) == []


def test_missing_registry_metric_is_reported():
    assert missing_registry_metrics("04", {}, None)
    assert any(
        p.startswith("referral_dropout_multiplier")
        for p in missing_registry_metrics("04", {}, None)
    )
