"""A report safe to hand over (issue 30): nothing from the client's file, mapping or command line
runs in the page or in a spreadsheet, and the delivered folder holds nothing that undoes the
pseudonyms."""

from __future__ import annotations

import csv
import os
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers import report
from helpers.report import text
from helpers.report.formatting import Formatter, escape, note_text
from helpers.report.orders import Note
from tests.report.clients import cli_args, raw_orders, run_cli, write_mapping

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
LINK = "[click](javascript:alert(3))"
AUTOLINK = "<javascript:alert(4)>"
PAYLOADS = (SCRIPT, IMG, LINK, AUTOLINK, "<a href='javascript:alert(5)'>x</a>", "`code`&")


class Page(HTMLParser):
    """The live parts of an HTML page: its script elements, event-handler attributes and
    ``javascript:`` URLs, found by parsing (not by searching the text)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[tuple, str]] = []
        self.handlers: list[tuple[str, str]] = []
        self.js_urls: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._in_script: list | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.handlers.append((tag, name))
            squeezed = "".join((value or "").split()).lower()
            if squeezed.startswith(("javascript:", "vbscript:")):
                self.js_urls.append((tag, value))
        if tag == "script":
            self._in_script = [tuple(sorted((k, v or "") for k, v in attrs)), ""]

    def handle_endtag(self, tag):
        if tag == "script" and self._in_script is not None:
            self.scripts.append((self._in_script[0], self._in_script[1]))
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script[1] += data
        else:
            self.text.append(data)


def markdown_html(markdown: str) -> str:
    """Markdown rendered as nbconvert renders a notebook's Markdown output."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(markdown)


def assert_inert(html: str, scripts: list | None = None) -> Page:
    page = Page(html)
    assert page.scripts == (scripts or []), page.scripts
    assert page.handlers == [], page.handlers
    assert page.js_urls == [], page.js_urls
    return page


# --------------------------------------------------------------------------------------------
# the one escaping function and where it is used


@pytest.mark.parametrize("payload", PAYLOADS)
def test_escaped_text_is_inert_in_markdown_and_html_and_reads_the_same(payload):
    shown = escape(payload)
    for html in (markdown_html(f"The client *says* {shown}."), f"<p>{shown}</p>"):
        page = assert_inert(html)
        assert payload in "".join(page.text)  # the reader sees the text as written
    assert escape(shown) == shown  # escaped once: joined sentences are not escaped twice


def test_line_breaks_in_a_value_stay_inside_the_sentence():
    assert escape("a\n# Heading\r\n\x00b") == "a # Heading b"


def test_message_values_are_escaped_and_templates_are_not():
    T = text.catalogue("en")
    title = T("summary.title", client=SCRIPT + IMG)
    assert title.startswith("# ") and "<" not in title and "&lt;script&gt;" in title
    assert T.plain("summary.title", client="<b>") == T.messages["summary.title"].format(
        client="<b>"
    )
    assert_inert(markdown_html(title))


def test_the_data_note_escapes_column_names_and_status_values():
    T, fmt = text.catalogue("en"), Formatter("EUR", "en_GB")
    notes = [
        Note("x", "data_note.other_status", rows=3, amount=12.0,
             statuses={SCRIPT: 1, IMG: 1, LINK: 1}),
        Note("x", "data_note.amount_from_lines", rows=3, quantity=IMG, unit_price=AUTOLINK),
        Note("x", "data_note.refunds_netted", rows=1, amount=-1.0, kinds={"status " + SCRIPT: 1}),
        SCRIPT + " a sentence without a key",
    ]  # fmt: skip
    shown = [note_text(n, T, fmt) for n in notes]
    markdown = T("summary.data_note", notes="; ".join(shown))  # as notebook 08 joins them
    page = assert_inert(markdown_html(markdown))
    assert all(p in "".join(page.text) for p in (SCRIPT, IMG, LINK, AUTOLINK))


def test_t_md_passes_no_raw_html_from_values(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    text.catalogue("en").md("at_risk.split", segment=IMG, n="1", revenue=LINK)
    assert_inert(markdown_html(shown[0]))


def test_a_currency_that_is_not_a_code_is_refused(tmp_path):
    from helpers.report.mapping import load_mapping
    from helpers.tables import DataValidationError

    cols = {"customer_id": "c", "order_date": "d", "amount": "a"}
    with pytest.raises(DataValidationError, match="'currency' .* three-letter ISO 4217 code"):
        load_mapping(write_mapping(tmp_path / "m.yaml", columns=cols, currency=SCRIPT))


# --------------------------------------------------------------------------------------------
# spreadsheet-safe CSV exports (OWASP "CSV injection")

FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "ok", "a=b"]


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": pd.Categorical(["=At risk"] + ["At risk"] * 7),
            "net_revenue": [-12.5, -1.0, 3.0, 0.0, -0.25, 7.0, 1.5, 2.0],  # refunds: negative
            "n_orders": [-1, 2, 3, 4, 5, 6, 7, 8],
            "channel": ["-web", "web", None, "@app", "app", "+x", "app", "=1"],
        },
        index=pd.Index(FORMULAS, name="customer_id"),
    )


def _read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(newline="", encoding="utf-8")))


def test_csv_exports_neutralise_formulas_in_text_cells_only(tmp_path, monkeypatch):
    monkeypatch.delenv("RETENTION_LAB_EXPORTS", raising=False)
    rows = _read(report.export_csv(_table(), tmp_path / "customers.csv"))
    assert [r["customer_id"] for r in rows] == ["'" + f for f in FORMULAS[:6]] + ["ok", "a=b"]
    assert rows[0]["segment"] == "'=At risk" and rows[1]["segment"] == "At risk"
    assert [r["channel"] for r in rows] == ["'-web", "web", "", "'@app", "app", "'+x", "app", "'=1"]
    assert [float(r["net_revenue"]) for r in rows] == _table()["net_revenue"].tolist()
    assert rows[0]["n_orders"] == "-1"  # numbers are numbers, negative ones too
    back = pd.read_csv(tmp_path / "customers.csv")
    assert back["net_revenue"].dtype == float and back["n_orders"].dtype == "int64"


def test_raw_csv_exports_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("RETENTION_LAB_EXPORTS", raising=False)
    rows = _read(report.export_csv(_table(), tmp_path / "a.csv", raw=True))
    assert [r["customer_id"] for r in rows] == FORMULAS
    monkeypatch.setenv("RETENTION_LAB_EXPORTS", "raw")  # what the report command sets
    assert _read(report.export_csv(_table(), tmp_path / "b.csv")) == rows
    monkeypatch.setenv("RETENTION_LAB_EXPORTS", "safe")
    assert _read(report.export_csv(_table(), tmp_path / "c.csv"))[0]["customer_id"][0] == "'"


def test_the_mapping_key_exports(tmp_path):
    from helpers.report.mapping import load_mapping
    from helpers.tables import DataValidationError

    cols = {"customer_id": "c", "order_date": "d", "amount": "a"}
    assert load_mapping(write_mapping(tmp_path / "m.yaml", columns=cols)).exports == "safe"
    m = load_mapping(write_mapping(tmp_path / "m.yaml", columns=cols, exports="raw"))
    assert m.exports == "raw"
    with pytest.raises(DataValidationError, match="'exports' is 'verbatim'; use one of"):
        load_mapping(write_mapping(tmp_path / "m.yaml", columns=cols, exports="verbatim"))


def test_run_execute_restores_the_environment(monkeypatch, tmp_path):
    from helpers import run

    seen = {}

    def fake(*args, **kwargs):
        seen.update(os.environ)

    monkeypatch.setattr("papermill.execute_notebook", fake)
    monkeypatch.delenv("RETENTION_LAB_EXPORTS", raising=False)
    run.execute(Path("x.ipynb"), tmp_path, {}, html_report=False,
                env={"RETENTION_LAB_EXPORTS": "raw"})  # fmt: skip
    assert seen["RETENTION_LAB_EXPORTS"] == "raw" and "RETENTION_LAB_EXPORTS" not in os.environ


# --------------------------------------------------------------------------------------------
# a whole report from a hostile file


def _client(folder: Path, hostile: bool) -> tuple[Path, Path]:
    """600 bundled orders as a client exports them: order lines with quantity and unit price, a
    status and a channel; with `hostile`, every header, every text field and the ids carry
    payloads (and some rows carry statuses that are left out, quoted in the data note)."""
    raw = raw_orders().sample(600, random_state=7).sort_values("order_date").reset_index(drop=True)
    mark = (lambda s, p: s + p) if hostile else (lambda s, p: s)
    names = {
        "order_id": mark("order", SCRIPT),
        "customer_id": mark("customer", IMG),
        "order_date": mark("date", LINK),
        "quantity": mark("qty", AUTOLINK),
        "unit_price": mark("price", "<svg onload=alert(6)>"),
        "channel": mark("channel", SCRIPT),
        "status": mark("status", IMG),
    }
    other = [mark("pending", p) for p in PAYLOADS]
    status = ["paid"] * len(raw)
    for i, s in zip(range(5, len(raw), 97), other, strict=False):
        status[i] = s
    client = pd.DataFrame(
        {
            names["order_id"]: raw["order_id"].map(lambda v: mark(f"A{v}", LINK)),
            # ids that a spreadsheet would run as formulas
            names["customer_id"]: raw["customer_id"].map(
                lambda v: mark(f"{'=+-@'[int(v) % 4]}c{v}", IMG)
            ),
            names["order_date"]: raw["order_date"],
            names["quantity"]: "1",
            names["unit_price"]: raw["amount"],
            names["channel"]: raw["channel"].map(lambda v: mark(v, IMG + LINK)),
            names["status"]: status,
        }
    )
    data = folder / "orders.csv"
    client.to_csv(data, index=False)
    mapping = write_mapping(
        folder / "client.yaml",
        columns={k: v for k, v in names.items() if k != "status"},
        status={"column": names["status"], "keep": ["paid"], "cancelled": []},
        pseudonymize=False,  # the real (hostile) ids are shown in the at-risk table
        **({} if hostile else {"exports": "raw"}),  # the ids as written, on request only
        as_of="2025-12-31",
        period="Q",
    )
    return data, mapping


@pytest.mark.slow
def test_a_report_of_a_hostile_file_has_no_live_script_handler_or_javascript_url(tmp_path, capsys):
    pages = {}
    exports = {}
    for hostile in (False, True):
        folder = tmp_path / ("hostile" if hostile else "clean")
        folder.mkdir()
        data, mapping = _client(folder, hostile)
        args = cli_args(data, mapping, "acme", folder / "reports")
        client = "ACME " + (SCRIPT + IMG + LINK + " javascript:alert(7)" if hostile else "")
        rc, _, err = run_cli([*args, "--client", client], capsys)
        assert rc == 0, err
        pages[hostile] = (folder / "reports" / "acme" / "report.html").read_text(encoding="utf-8")
        exports[hostile] = {
            name: list(csv.DictReader((folder / "reports" / "acme" / name).open(newline="")))
            for name in ("customers.csv", "at_risk_customers.csv")
        }
    clean = Page(pages[False])
    page = assert_inert(pages[True], clean.scripts)  # only the scripts nbconvert itself emits
    shown = "".join(page.text)
    # the payloads reached the page, as text: the client name, a status, a column name, an id
    assert "ACME " + SCRIPT + IMG + LINK in shown
    assert "pending" + SCRIPT in shown and "qty" + AUTOLINK in shown
    assert "=c" in shown and IMG in shown
    assert "<title>Retention report: ACME &lt;script&gt;alert(1)" in pages[True]  # escaped once
    # spreadsheet-safe exports by default, the ids as written behind `exports: raw`; numbers stay
    for name in ("customers.csv", "at_risk_customers.csv"):
        safe, raw = exports[True][name], exports[False][name]
        assert len(safe) == len(raw) > 0
        assert all(r["customer_id"].startswith(("'=", "'+", "'-", "'@")) for r in safe)
        assert all(r["customer_id"][0] in "=+-@" for r in raw)
        assert {r["customer_id"] for r in safe} == {"'" + r["customer_id"] + IMG for r in raw}
        assert all(float(r["monetary_total"]) > 0 for r in safe)


# --------------------------------------------------------------------------------------------
# odd files at the command line: one clear message naming the client's file, no traceback


def test_a_date_format_with_an_unknown_directive_is_one_message(tmp_path, capsys):
    from tests.report.clients import small_client

    _, data, _ = small_client(tmp_path)
    cols = {"customer_id": "customer_id", "order_date": "order_date", "amount": "amount"}
    mapping = write_mapping(tmp_path / "client.yaml", columns=cols, date_format="%Y-%m-%i")
    rc, _, err = run_cli(cli_args(data, mapping, "acme", tmp_path / "r"), capsys)
    assert rc == 2 and "Traceback" not in err
    assert "client.yaml: 'date_format' '%Y-%m-%i' has '%i', not a strptime directive" in err


def test_messages_name_the_clients_path_not_a_links_target(tmp_path, capsys):
    from tests.report.clients import SAMPLE_MAPPING, small_client

    raw, data, _ = small_client(tmp_path)
    raw.loc[3, "amount"] = "n/a"
    target = tmp_path / "store" / "blob-7f3a.csv"
    target.parent.mkdir()
    raw.to_csv(target, index=False)
    link = tmp_path / "acme_orders.csv"
    link.symlink_to(target)
    rc, _, err = run_cli(cli_args(link, SAMPLE_MAPPING, "acme", tmp_path / "r"), capsys)
    assert rc == 2 and "acme_orders.csv, column 'amount'" in err and "blob-7f3a" not in err


# --------------------------------------------------------------------------------------------
# the delivered folder: no salt in it, no report written through a symbolic link


def test_a_report_folder_that_is_a_symbolic_link_is_refused(tmp_path, capsys):
    from tests.report.clients import SAMPLE_MAPPING, small_client

    _, data, _ = small_client(tmp_path)
    root = tmp_path / "reports"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "keep").mkdir(parents=True)
    root.mkdir()
    (root / "acme").symlink_to(elsewhere)
    for extra in ([], ["--overwrite"]):
        rc, _, err = run_cli([*cli_args(data, SAMPLE_MAPPING, "acme", root), *extra], capsys)
        assert rc == 1 and "Traceback" not in err
        assert f"{root / 'acme'} is a symbolic link (to {elsewhere}), not a report folder" in err
    assert (elsewhere / "keep").is_dir() and (root / "acme").is_symlink()


def test_publish_refuses_a_symbolic_link(tmp_path):
    from helpers import run

    (tmp_path / "new").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "missing")  # a dangling link too
    with pytest.raises(run.RunError, match="is a symbolic link"):
        run.publish(tmp_path / "new", tmp_path / "link", overwrite=True)


def test_the_salt_comes_from_the_parameter_the_environment_or_the_data(tmp_path, monkeypatch):
    import hashlib

    data = tmp_path / "orders.csv"
    data.write_text("x")
    monkeypatch.delenv("RETENTION_LAB_SALT", raising=False)
    assert report.pseudonym_salt("", data) == hashlib.sha256(b"x").hexdigest()
    monkeypatch.setenv("RETENTION_LAB_SALT", "from-env")
    assert report.pseudonym_salt("", data) == "from-env"
    assert report.pseudonym_salt("given", data) == "given"


@pytest.mark.slow
def _small_report(folder: Path, capsys) -> str:
    """The report of 600 bundled orders as a CSV, written to `folder`/r/acme; its standard
    error."""
    raw = raw_orders().sample(600, random_state=7).sort_values("order_date")
    data = folder / "orders.csv"
    raw.to_csv(data, index=False)
    cols = {c: c for c in ("order_id", "customer_id", "order_date", "amount")}
    mapping = write_mapping(folder / "m.yaml", columns=cols, as_of="2025-12-31")
    rc, _, err = run_cli(cli_args(data, mapping, "acme", folder / "r"), capsys)
    assert rc == 0, err
    return err


def test_the_delivered_notebook_holds_no_salt(tmp_path, capsys, monkeypatch):
    import secrets

    salt = "5a1t" * 8
    monkeypatch.setattr(secrets, "token_hex", lambda n=16: salt)
    _small_report(tmp_path, capsys)
    folder = tmp_path / "r" / "acme"
    for path in folder.iterdir():
        assert salt not in path.read_text(encoding="utf-8", errors="replace"), path.name
    nb = nbformat.read(folder / "report.ipynb", as_version=4)
    assert "pseudonym_salt" not in nb.metadata["papermill"]["parameters"]
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and all("pseudonym_salt" not in c.source for c in injected)
    # the salt was used: the at-risk table shows the pseudonyms it makes
    at_risk = pd.read_csv(folder / "at_risk_customers.csv", dtype={"customer_id": str})
    html = (folder / "report.html").read_text(encoding="utf-8")
    first = report.pseudonymize(at_risk["customer_id"].head(1), salt).iloc[0]
    assert first in html and "RETENTION_LAB_SALT" not in os.environ


# --------------------------------------------------------------------------------------------
# a corpus of odd files at the command line: one message each, nothing left behind

ODD = {  # file bytes -> what the one message must say
    "NUL byte": (
        b"order_id,customer_id,order_date,amount\n1,4\x002,2025-01-05,3.50\n",
        "orders.csv, column 'customer_id': 1 row has a NUL byte",
    ),
    "duplicate header": (
        b"order_id,customer_id,order_date,amount,amount\n1,42,2025-01-05,3.50,3.00\n",
        "orders.csv, column 'amount': the header names 2 columns 'amount'",
    ),
    "decimal commas": (
        b"order_id,customer_id,order_date,amount\n1,42,2025-01-05,3,50\n2,43,2025-01-06,4,50\n",
        "orders.csv: line 2 has 5 fields where the header has 4",
    ),
}


@pytest.mark.parametrize("case", list(ODD))
def test_odd_files_get_one_message_and_leave_nothing(tmp_path, capsys, case):
    from tests.report.clients import SAMPLE_MAPPING, assert_nothing_left

    content, fragment = ODD[case]
    data = tmp_path / "orders.csv"
    data.write_bytes(content)
    rc, out, err = run_cli(cli_args(data, SAMPLE_MAPPING, "acme", tmp_path / "r"), capsys)
    problems = [ln for ln in err.splitlines() if ln.startswith("  - ")]
    assert rc == 2 and out == "" and len(problems) == 1 and fragment in problems[0], err
    assert "Traceback" not in err
    assert_nothing_left(tmp_path / "r")


def test_what_the_notebook_writes_to_its_standard_error_stays_out_of_the_report(
    tmp_path, capsys, monkeypatch
):
    """What the machine prints on the way (a library's warning, a child process's log: Spark's
    JVM printed the host's name and network address) goes to the consultant's terminal, never
    into the report's HTML or notebook. Here an IPython startup file in the kernel writes such a
    line to its standard error (the descriptor, as a child process would) before every cell."""
    import textwrap

    line = "26/12/07 WARN Utils: Your hostname, host-7f3, resolves to 192.0.2.77 " + SCRIPT
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-noise.py").write_text(textwrap.dedent(f"""
        import os
        def _noise(*args):
            os.write(2, {(line + chr(10)).encode()!r})
        get_ipython().events.register("pre_run_cell", _noise)
    """), encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    # ipykernel passes a child's writes to its descriptors on to the cell's output, except
    # under pytest (it looks for this variable, which the kernel would inherit)
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    err = _small_report(tmp_path, capsys)
    assert "left out of the report): " + line in err  # the consultant sees it
    folder = tmp_path / "r" / "acme"
    for name in ("report.html", "report.ipynb"):
        text_ = (folder / name).read_text(encoding="utf-8")
        assert "host-7f3" not in text_ and "192.0.2.77" not in text_, name
    nb = nbformat.read(folder / "report.ipynb", as_version=4)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
