"""The editor through a real JupyterLab in headless Chromium: every interaction of issue 5, end to end.

One JupyterLab server and one browser page for the module (tests run in order and build on each other:
the notebook is opened once). Failing tests leave a screenshot in test-artifacts/. The first test's
canvas is saved as docs/images/widget.png for the README when GB_UPDATE_SCREENSHOT=1.
"""

from __future__ import annotations

import json
import os
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
g = gb.Graph("demo")
x = g.input("x", shape=(2, 3, 16, 16))
c = g.add("conv2d", x, out_channels=8, kernel_size=3, padding=1, name="conv")
r = g.add("relu", c, name="relu")
p = g.add("adaptive_avg_pool2d", r, output_size=1, name="pool")
f = g.add("flatten", p, name="flat")
g.output(g.add("linear", f, out_features=10, name="fc"), name="out")
w = gb.GraphWidget(g, height=560)
w"""

# Prints the graph as the kernel sees it: name -> [op, inputs, output shape or error].
STATE = """\
def _state(graph):
    out = {}
    for n in graph:
        err = n.error
        out[n.name] = [n.op, [None if p is None else [p.node.name, p.index] for p in n.inputs],
                       err.message if err else [list(s.shape) for s in n.outputs], dict(n.params)]
    return out
print("STATE=" + json.dumps(_state(w.graph), default=list))"""

BLOCK = """\
inner = gb.Graph("resblock")
xi = inner.input("x", shape=(2, 8, 16, 16))
inner.output(inner.add("add", inner.add("relu", inner.add("conv2d", xi, out_channels=8, kernel_size=3, padding=1,
                                                              name="c1"), name="r1"), xi, name="sum"), name="y")
g2 = gb.Graph("blocks")
x2 = g2.input("x", shape=(2, 3, 16, 16))
s2 = g2.add("conv2d", x2, out_channels=8, kernel_size=1, name="stem")
b2 = g2.add(inner, s2, name="res")
g2.output(g2.add("relu", b2, name="act"), name="out")
w2 = gb.GraphWidget(g2, height=420)
w2"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    with running_lab() as server:
        write_notebook(server.root / "editor.ipynb", [BUILD, STATE, BLOCK])
        yield server


@pytest.fixture(scope="module")
def page(lab: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        yield pg
        context.close()
        browser.close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest, page: Any) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)


@pytest.fixture(scope="module")
def nb(lab: Any, page: Any) -> Notebook:
    return Notebook(page).open(lab, "editor.ipynb")


def editor(nb: Notebook, cell: int = 0) -> Any:
    """The widget root in `cell`'s output, once laid out and in sync with Python."""
    root = nb.cell(cell).locator(".gb-root")
    root.wait_for(state="visible", timeout=60_000)
    nb.page.wait_for_function(
        "el => el.dataset.gbReady === '1' && el.dataset.gbPending === '0'", arg=root.element_handle(),
        timeout=30_000)
    return root


def settle(nb: Notebook, root: Any) -> None:
    """Wait until no patch is pending (Python answered every edit)."""
    nb.page.wait_for_function("el => el.dataset.gbPending === '0'", arg=root.element_handle(), timeout=30_000)


def kernel_state(nb: Notebook) -> dict[str, Any]:
    """Run the STATE cell and parse what the kernel prints."""
    text = nb.run(1)
    match = re.search(r"STATE=(\{.*\})", text, re.S)
    assert match, f"no state printed: {text!r}"
    return json.loads(match.group(1))


def node(root: Any, name: str) -> Any:
    return root.locator(f".react-flow__node[data-id='{name}']")


def edge_label(root: Any, source: str, target: str) -> str:
    """Text of the shape label on the edge source -> target."""
    return root.page.evaluate(
        """([root, s, t]) => {
            const id = (e) => e.getAttribute('data-id') || '';
            for (const el of root.querySelectorAll('.react-flow__edge')) {
              const parts = id(el).split('\\u0000');
              if (parts[0] === s && parts[2] === t) {
                const label = root.querySelector(`.react-flow__edgelabel-renderer [data-edge-id]`);
                return el.getAttribute('aria-label') || '';
              }
            }
            return null;
        }""", [root.element_handle(), source, target])


def test_shows_one_flow_node_per_graph_node(nb: Notebook) -> None:
    nb.run(0)
    root = editor(nb)
    assert root.locator(".react-flow__node").count() == 7
    names = set(root.locator(".react-flow__node").evaluate_all("els => els.map(e => e.dataset.id)"))
    assert names == {"x", "conv", "relu", "pool", "flat", "fc", "out"}
    assert root.locator(".react-flow__edge").count() == 6
    assert "(2, 8, 16, 16)" in root.inner_text()  # conv's output shape on its edge
    if os.environ.get("GB_UPDATE_SCREENSHOT"):
        root.screenshot(path=str(REPO / "docs/images/widget.png"))
