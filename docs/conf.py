"""Sphinx configuration for GraphBuilder's documentation: the API reference (from docstrings) and the op
catalogue (from the op registry), beside the repository's Markdown docs.

Build: ``make docs`` (HTML in ``docs/_build/html``). `make test` builds it with warnings as errors
(tests/test_docs.py), so a broken internal link or a malformed docstring fails the suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

import graphbuilder  # noqa: E402

project = "GraphBuilder"
author = "The GraphBuilder developers"
release = version = graphbuilder.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "op_catalogue"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "images/README.md"]
myst_heading_anchors = 3  # `[link](file.md#a-heading)` anchors resolve and are checked

# Google-style docstrings ("Args:", "Attributes:", "Returns:").
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}

html_theme = "furo"
html_title = f"GraphBuilder {release}"
html_static_path: list[str] = []
