"""A Sphinx directive that writes the op catalogue from the registry: every registered op with its category,
inputs, params (kind, default, range or choices), doc and the papers its doc cites (arXiv ids).

    .. op-catalogue::

(in a reStructuredText page: the generated text is reStructuredText).

The catalogue is generated at build time, so it lists exactly the ops `gb.ops.names()` knows.
"""

from __future__ import annotations

import re
from itertools import groupby
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")


def _range(p: dict[str, Any]) -> str:
    if p["choices"]:
        return "one of " + ", ".join(f"``{c!r}``" for c in p["choices"])
    lo, hi = p["min"], p["max"]
    if lo is None and hi is None:
        return ""
    return f"{'' if lo is None else lo} .. {'' if hi is None else hi}"


def _cell(text: str) -> str:
    """A docstring fragment as inline reStructuredText: `code` in Markdown style becomes literal text, and
    characters that start markup (``*``, ``|``) are escaped."""
    text = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", " ".join(text.split()))
    parts = re.split(r"(``[^`]+``)", text)
    return "".join(p if p.startswith("``") else p.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|")
                   for p in parts)


def catalogue_rst(ops: list[dict[str, Any]]) -> list[str]:
    """reStructuredText for the catalogue of `ops` (entries of `gb.ops.schema_json()`), by category."""
    lines = [f"{len(ops)} ops in {len({o['category'] for o in ops})} categories.", ""]
    for category, group in groupby(sorted(ops, key=lambda o: (o["category"], o["name"])), key=lambda o: o["category"]):
        lines += [category, "-" * len(category), ""]
        for op in group:
            lines += [f".. _op-{op['name']}:", "", f"``{op['name']}``", "~" * (len(op["name"]) + 4), ""]
            lines += [_cell(op["doc"]), ""]
            inputs = ", ".join(op["inputs"]) + (", ..." if op["variadic"] else "")
            lines += [f"**Inputs:** {inputs or 'none'}", ""]
            papers = sorted(set(ARXIV.findall(op["doc"])))
            if papers:
                links = ", ".join(f"`arXiv:{p} <https://arxiv.org/abs/{p}>`__" for p in papers)
                lines += [f"**Papers:** {links}", ""]
            if op["user_code"]:
                lines += [f"**Defined by:** ``{op['source']}``", ""]
            if op["params"]:
                lines += [".. list-table::", "   :header-rows: 1", "", "   * - param", "     - kind",
                          "     - default", "     - range", "     - meaning"]
                for p in op["params"]:
                    default = "required" if p["required"] else f"``{p['default']!r}``"
                    lines += [f"   * - ``{p['name']}``", f"     - {p['kind']}{' or None' if p['optional'] else ''}",
                              f"     - {default}", f"     - {_range(p)}", f"     - {_cell(p['doc'])}"]
                lines.append("")
    return lines


class OpCatalogue(SphinxDirective):
    """``op-catalogue``: the registry's ops, generated at build time."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import graphbuilder as gb

        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(StringList(catalogue_rst(gb.ops.schema_json()), "op-catalogue"), 0, container,
                                match_titles=True)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("op-catalogue", OpCatalogue)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
