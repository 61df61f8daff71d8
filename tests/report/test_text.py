"""Client reports in five languages: complete catalogues, locale formats, no English left behind.

The catalogues (helpers/report/text/*.yaml) must have exactly English's keys and placeholders. The
report runs on the bundled data in every language and on a foreign client file (Polish columns,
PLN, comma decimals) in Polish; the visible text of each HTML report must contain no English word
of the report's sentences (numbers, ids, model and author names aside) and numbers formatted by
the locale's rules. Images are checked in headless Chromium by the report's browser test.
"""

from __future__ import annotations

import html as html_lib
import re
import string

import pytest

from helpers import paths, report
from helpers.report import text

LANGS = sorted(text.LANGUAGES)


def placeholders(message: str) -> list[str]:
    return sorted({f for _, f, _, _ in string.Formatter().parse(message) if f})


@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang != "en"])
def test_every_language_has_every_message_with_the_same_placeholders(lang):
    en, other = text.catalogue("en").messages, text.catalogue(lang).messages
    assert set(other) == set(en), (
        f"{lang}.yaml: missing {set(en) - set(other)}, extra {set(other) - set(en)}"
    )
    for key, message in en.items():
        assert placeholders(other[key]) == placeholders(message), f"{lang}.yaml: {key}"
        assert other[key].strip(), f"{lang}.yaml: {key} is empty"


def test_glossary_names_every_language():
    glossary = (text.FOLDER / "GLOSSARY.md").read_text(encoding="utf-8")
    header = next(line for line in glossary.splitlines() if line.startswith("| concept"))
    assert [c.strip() for c in header.strip("|").split("|")][1:] == list(text.LANGUAGES)


@pytest.mark.parametrize(
    ("locale", "currency", "money", "pct", "day"),
    [
        ("nb_NO", "NOK", "1\xa0234,56\xa0kr", "12,5\xa0%", "31.12.2025"),
        ("pl_PL", "PLN", "1\xa0234,56\xa0zł", "12,5%", "31.12.2025"),
        ("nl_NL", "EUR", "€\xa01.234,56", "12,5%", "31-12-2025"),
        ("ru_RU", "RUB", "1\xa0234,56\xa0₽", "12,5\xa0%", "31.12.2025"),
        ("en_GB", "GBP", "£1,234.56", "12.5%", "31/12/2025"),
    ],
)
def test_numbers_follow_the_locale(locale, currency, money, pct, day):
    f = report.Formatter(currency, locale)
    assert (f.money(1234.56, 2), f.pct(0.125), f.date("2025-12-31")) == (money, pct, day)


def visible_text(html: str) -> str:
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r"(?is)<img\b[^>]*>", " ", html)
    return html_lib.unescape(re.sub(r"(?s)<[^>]+>", " ", html))


#: Words that are the same in every language: names of models, authors, file names, codes.
NAMES = {"BG/NBD", "MBG/NBD", "RFM", "Fader", "Hardie", "Batislam", "Denizel", "Filiztekin", "Lee",
         "at_risk_customers.csv", "segment", "cohort", "Sample", "company"}  # fmt: skip


def english_words(lang: str) -> set[str]:
    """Words of the English sentences that the other catalogue does not use itself."""
    words = lambda msgs: {w for m in msgs.values() for w in re.findall(r"[A-Za-z][a-z']{3,}", m)}  # noqa: E731
    return words(text.catalogue("en").messages) - words(text.catalogue(lang).messages) - NAMES


@pytest.fixture(scope="module")
def reports_root(tmp_path_factory):
    return tmp_path_factory.mktemp("reports_text")


_MADE: dict[str, object] = {}


def bundled_report(root, lang):
    """The bundled data's report in `lang`, made once per test session."""
    if lang not in _MADE:
        _MADE[lang] = make_report(root, lang)
    return _MADE[lang]


def make_report(root, lang, data=paths.DATASETS / "orders.csv", mapping=None, name=None):
    mapping = mapping or paths.NOTEBOOKS / "08_sample_mapping.yaml"
    name = name or f"sample-{lang}"
    rc = report.main(["--data", str(data), "--mapping", str(mapping), "--name", name,
                      "--reports-dir", str(root), "--language", lang])  # fmt: skip
    assert rc == 0
    return root / name


@pytest.mark.slow
@pytest.mark.parametrize("lang", [lang for lang in LANGS if lang != "en"])
def test_report_in_the_clients_language_on_the_bundled_data(reports_root, lang):
    folder = bundled_report(reports_root, lang)
    body = visible_text((folder / "report.html").read_text(encoding="utf-8"))
    leftovers = sorted(w for w in english_words(lang) if re.search(rf"\b{w}\b", body))
    assert not leftovers, f"English words in the {lang} report: {leftovers}"
    T = text.catalogue(lang)
    assert T("summary.title", client="").lstrip("# ").strip() in body
    title = re.search(r"<title>(.*?)</title>", (folder / "report.html").read_text(encoding="utf-8"))
    assert title and title.group(1).startswith(T("summary.title", client="").lstrip("# ").strip())
    assert T.segment("Champions") in body
    # numbers by the locale's rules: a thousands-separated amount in EUR with a decimal comma
    assert re.search(r"\d{1,3}([\xa0.]\d{3})+(,\d{2})?", body)
    assert "31.12.2025" in body or "31-12-2025" in body


@pytest.mark.slow
def test_report_in_polish_on_a_foreign_client_file(reports_root, tmp_path):
    from tests.report.clients import second_client

    data, mapping = second_client(tmp_path)
    folder = make_report(reports_root, "pl", data=data, mapping=mapping, name="klient-pl")
    body = visible_text((folder / "report.html").read_text(encoding="utf-8"))
    leftovers = sorted(w for w in english_words("pl") if re.search(rf"\b{w}\b", body))
    assert not leftovers, f"English words in the Polish report: {leftovers}"
    assert "zł" in body and "Raport retencji klientów" in body


def test_an_unknown_language_is_refused(capsys):
    with pytest.raises(SystemExit):
        report.main(["--data", "x.csv", "--mapping", "m.yaml", "--name", "n", "--language", "de"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.chromium
@pytest.mark.parametrize("lang", LANGS)
def test_each_language_renders_in_headless_chromium(reports_root, lang, tmp_path):
    """Every language's HTML opens offline in Chromium: the text is there (Cyrillic included,
    with a system font that covers it), no console error, every image decodes."""
    import os
    import subprocess

    from helpers import browser

    if not browser.CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{browser.CHROMIUM} not found: CI must run the browser checks")
        pytest.skip("needs Debian's chromium (make chromium)")
    folder = bundled_report(reports_root, lang) if lang != "en" else make_report(reports_root, "en")
    html = (folder / "report.html").read_text(encoding="utf-8")
    # nbconvert links MathJax and require.js from a CDN; the report has no math: drop them
    offline = re.sub(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>', "", html)
    page = tmp_path / "report.html"
    page.write_text(offline, encoding="utf-8")
    got = browser.open_page(page.as_uri(), screenshot=tmp_path / "report.png")
    T = text.catalogue(lang)
    assert T("summary.title", client="").lstrip("# ").strip() in got.text
    assert T.segment("Champions") in got.text
    assert got.console_errors == [] and got.external_requests == []
    assert len(got.images) == len(re.findall(r"<img ", html)) >= 4
    assert all(i["decoded"] and i["width"] > 0 for i in got.images), got.images
    if lang == "ru":  # a font with Cyrillic glyphs is installed, so the text is not tofu
        fonts = subprocess.run(["fc-list", ":lang=ru"], capture_output=True, text=True)
        assert fonts.stdout.strip(), "no font covers Cyrillic (install fonts-dejavu-core)"
