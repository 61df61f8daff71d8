"""Every word the client reads, one message catalogue per language (``<code>.yaml`` here).

The client report (notebook 08) says nothing in its own words: each heading, sentence, table
header, segment name, plot title and axis label is a key of the catalogue of the report's
language, filled with numbers formatted by the locale's rules (:class:`helpers.report.Formatter`,
Babel/CLDR). A new language is one file; ``tests/report/test_text.py`` fails when a language lacks
a key that English has, or has one English lacks, or uses other placeholders.

The terms chosen per language (retention, churn, cohort, lifetime value, ...) are in
``GLOSSARY.md`` next to the catalogues.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["LANGUAGES", "Catalogue", "catalogue", "Reason", "escape"]

FOLDER = Path(__file__).resolve().parent

#: Report languages and the CLDR locale whose number, percent, money and date rules they use.
LANGUAGES: dict[str, str] = {
    "en": "en_GB",
    "nb": "nb_NO",
    "pl": "pl_PL",
    "nl": "nl_NL",
    "ru": "ru_RU",
}


#: An HTML character reference (``&lt;``, ``&#91;``): already escaped, left as it is.
_REFERENCE = r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});"
_MARKUP = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "&#91;", "]": "&#93;", "`": "&#96;"}
_UNSAFE = re.compile(f"{_REFERENCE}|[&<>\\[\\]`]|[\\r\\n\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]+")


def escape(value: object) -> str:
    """`value` as text that is safe in the report's HTML and in the Markdown rendered into it: ``&``,
    ``<`` and ``>`` become character references (no element, attribute or handler can start), and so
    do ``[``, ``]`` and a backtick (no Markdown link, image or autolink such as
    ``[x](javascript:...)``, no code span); line breaks and control characters become one space (a
    value stays inside its sentence). Character references already in `value` are kept, so text
    escaped once is not escaped again (the report joins escaped sentences into others).

    Every string from the client's file, mapping or command line passes through here where it
    enters the HTML: the data note (:func:`note_text`), headings and sentences (the values of
    :class:`helpers.report.text.Catalogue` messages), and plot labels made from them; table cells
    are escaped by pandas' HTML rendering."""

    def sub(m: re.Match[str]) -> str:
        hit = m[0]
        if hit in _MARKUP:
            return _MARKUP[hit]
        return hit if hit.startswith("&") else " "

    return _UNSAFE.sub(sub, str(value))


class Reason(str):
    """Why something was not done: an English sentence that also carries its message key and
    values, so the report can say it in the client's language (:mod:`helpers.report.text`)."""

    key: str
    values: dict[str, Any]

    def __new__(cls, sentence: str, key: str, **values: Any) -> Reason:
        obj = super().__new__(cls, sentence)
        obj.key, obj.values = key, values
        return obj


class Catalogue:
    """The messages of one language: ``T("key", name=value)`` formats a message with
    ``str.format``; ``T.segment(name)`` translates an RFM segment name.

    The messages become Markdown and HTML in the report, and their values may come from the
    client's file, mapping or command line: ``T(...)`` escapes every text value
    (:func:`escape`; numbers and the templates are left as they are), so
    a value can neither open an HTML element nor a Markdown link. ``T.plain(...)`` fills a message
    with its values as they are, for text that is not HTML (a page title that nbconvert escapes)."""

    def __init__(self, language: str):
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {sorted(LANGUAGES)}, got {language!r}")
        self.language = language
        self.locale = LANGUAGES[language]
        self.messages: dict[str, str] = yaml.safe_load(
            (FOLDER / f"{language}.yaml").read_text(encoding="utf-8")
        )

    def __call__(self, key: str, **values: Any) -> str:
        return self.plain(
            key, **{k: escape(v) if isinstance(v, str) else v for k, v in values.items()}
        )

    def plain(self, key: str, **values: Any) -> str:
        """The message with `values` as they are (not escaped): not for Markdown or HTML."""
        try:
            return self.messages[key].format(**values)
        except KeyError as err:
            raise KeyError(f"{self.language}.yaml: no message {key!r} or no value {err}") from None

    def segment(self, name: str) -> str:
        """The RFM segment name in this language (segment names are keys ``segment.<name>``)."""
        return self.messages.get(f"segment.{name}", name)

    def md(self, key: str, **values: Any) -> None:
        """Display a message as Markdown (in a notebook)."""
        from IPython.display import Markdown, display

        display(Markdown(self(key, **values)))


@cache
def catalogue(language: str = "en") -> Catalogue:
    """The catalogue of `language` (en, nb, pl, nl, ru), loaded once."""
    return Catalogue(language)
