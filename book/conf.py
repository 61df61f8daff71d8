"""Sphinx configuration of the book (``make book``; built by ``python -m helpers.book``).

The book is built from a staged copy of the sources (``book/_build/src``): this folder's pages, the
stored notebooks, the data dictionary and the glossary rendered from ``glossary.yml``. Nothing is
executed and nothing is fetched: the notebooks' stored outputs are shown as they are, and MathJax
comes from a local copy (the ``jupyter-server-mathjax`` package) in ``_static/mathjax``.
"""

from __future__ import annotations

project = "Retention Lab"
author = "Retention Lab"
copyright = "Retention Lab contributors"  # noqa: A001 - Sphinx's name for it

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings: list[str] = []

# --- notebooks: stored outputs only, never re-executed -------------------------------------
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"  # text/markdown outputs may hold $...$ math
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # the glossary links to sections of the notebooks
myst_dmath_double_inline = True

# --- math: a local MathJax 2.7, typeset in the reader's browser with no network -------------
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    "tex2jax": {
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        "processEscapes": True,
        "processEnvironments": False,
        # MyST marks each page "ignore" and the math it parsed (and cell outputs) "process"
        "processClass": "tex2jax_process|mathjax_process|math|output_area",
    },
    "HTML-CSS": {
        "availableFonts": [],
        "preferredFont": None,
        "webFont": "STIX-Web",
        "imageFont": None,
        # MathJax's placeholder font points to about:blank, which Chromium refuses with a console
        # error on every page; a local() source that does not exist fails the same way, silently
        "styles": {"@font-face": {"font-family": "MathJax_Blank", "src": "local('MathJax Blank')"}},
    },
    "messageStyle": "none",
}

# --- look: the book theme, with nothing that points outside the book -------------------------
html_theme = "sphinx_book_theme"
html_title = "Retention Lab"
# light by default: the stored figures have white backgrounds (and an empty mode logs an error)
html_context = {"default_mode": "light"}
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_issues_button": False,
    "use_source_button": False,
    "show_navbar_depth": 1,
    "navigation_with_keys": False,
}
