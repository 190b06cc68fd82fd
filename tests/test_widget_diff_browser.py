"""The editor shows what a pass changed: after `editor.apply(insert_glore)` and `editor.compare(checkpoint)` the
canvas colours exactly the nodes and edges of the diff, in a real JupyterLab in headless Chromium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_fixtures import ARTIFACTS, CHROMIUM, REPO, Notebook, launch_chromium, running_lab, write_notebook

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (make test installs it)"),
              pytest.mark.skipif(not (REPO / "graphbuilder/widget/static/widget.js").exists(),
                                 reason="widget bundle not built (make setup)")]

BUILD = """\
import json
import graphbuilder as gb
from graphbuilder.passes import insert_glore
g = gb.Graph("res")
x = g.input("x", shape=(2, 8, 8, 8))
s1 = g.add("add", g.add("relu", g.add("conv2d", x, out_channels=8, kernel_size=3, padding=1, name="c1"), name="r1"),
           x, name="sum1")
s2 = g.add("add", g.add("relu", g.add("conv2d", s1, out_channels=8, kernel_size=3, padding=1, name="c2"), name="r2"),
           s1, name="sum2")
g.output(s2, name="out")
w = gb.GraphWidget(g, height=480)
w.checkpoint("before glore")
w"""
APPLY = """\
w.apply(lambda graph: insert_glore(graph, ["sum1"], unit="op", seed=0))
print("HL=" + json.dumps(w.highlights))
print("EDGES=" + json.dumps(w.edge_styles))"""
COMPARE = """\
w.graph["c2"].params["kernel_size"] = 1
w.graph["c2"].params["padding"] = 0
d = w.compare("before glore")
print("HL=" + json.dumps(w.highlights))
print(d)"""


@pytest.fixture(scope="module")
def nb() -> Iterator[Notebook]:
    from playwright.sync_api import sync_playwright

    with running_lab() as lab:
        write_notebook(lab.root / "diff.ipynb", [BUILD, APPLY, COMPARE])
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            try:
                yield Notebook(page).open(lab, "diff.ipynb")
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "widget_diff.png"), full_page=True)
                raise
            finally:
                context.close()
                browser.close()


def printed(text: str, tag: str) -> Any:
    match = re.search(tag + r"=(.*)", text)
    assert match, f"nothing printed for {tag}: {text!r}"
    return json.loads(match.group(1))


def marked(nb: Notebook, root: Any, style: str, count: int) -> list[str]:
    """Names of the nodes drawn in highlight `style`, once there are `count` of them."""
    nb.page.wait_for_function(f"([el, n]) => el.querySelectorAll('.gb-hl-{style}').length === n",
                              arg=[root.element_handle(), count], timeout=30_000)
    return sorted(root.locator(f".gb-hl-{style}").evaluate_all("els => els.map(e => e.dataset.nodeName)"))


def test_apply_glore_then_compare_colours_exactly_the_diff(nb: Notebook) -> None:
    nb.run(0)
    root = nb.cell(0).locator(".gb-root")
    root.wait_for(state="visible", timeout=60_000)
    nb.page.wait_for_function("el => el.dataset.gbReady === '1'", arg=root.element_handle(), timeout=30_000)

    text = nb.run(1)
    highlights, edges = printed(text, "HL"), printed(text, "EDGES")
    added = sorted(k for k, v in highlights.items() if v == "added")
    changed = sorted(k for k, v in highlights.items() if v == "changed")
    assert len(added) == 1 and added[0].startswith("glore") and changed == ["c2", "sum2"], highlights
    assert marked(nb, root, "added", 1) == added
    assert marked(nb, root, "changed", 2) == changed
    green = nb.page.wait_for_function(
        "([el, n]) => { const p = [...el.querySelectorAll('.react-flow__edge path')]"
        ".filter(e => ['rgb(67, 160, 71)', '#43a047'].includes(e.style.stroke)); return p.length >= n && p.length; }",
        arg=[root.element_handle(), len(edges)], timeout=30_000).json_value()
    assert len(edges) == 3 and green >= len(edges)  # sum1 -> glore, glore -> c2, glore -> sum2 (path + hit band)

    text = nb.run(2)
    highlights = printed(text, "HL")
    assert sorted(k for k, v in highlights.items() if v == "changed") == ["c2", "sum2"]
    assert "kernel_size: 3 -> 1" in text
    assert marked(nb, root, "changed", 2) == ["c2", "sum2"]
    assert marked(nb, root, "added", 1) == added
