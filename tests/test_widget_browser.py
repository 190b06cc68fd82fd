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
s = g.add("add", r, c, name="sum")
p = g.add("adaptive_avg_pool2d", s, output_size=1, name="pool")
f = g.add("flatten", p, name="flat")
g.output(g.add("linear", f, out_features=10, name="fc"), name="out")
w = gb.GraphWidget(g, height=640, direction="TB")
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


# Cells 3 and 4: the second widget's graph as the kernel sees it, and its Python export.
STATE2 = 'print("G2=" + json.dumps({n.name: [n.op, [p and p.node.name for p in n.inputs]] for n in w2.graph}))'
EXPORT2 = 'from graphbuilder.export import to_python\nprint("PY=" + json.dumps(to_python(w2.graph)))'


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    with running_lab() as server:
        write_notebook(server.root / "editor.ipynb", [BUILD, STATE, BLOCK, STATE2, EXPORT2])
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
    root.evaluate("el => el.scrollIntoView({block: 'start'})")
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


def printed(nb: Notebook, cell: int, tag: str) -> Any:
    """Run `cell` and parse the JSON it prints after `tag`=."""
    text = nb.run(cell)
    match = re.search(tag + r"=(.*)", text, re.S)
    assert match, f"nothing printed for {tag}: {text!r}"
    return json.loads(match.group(1).strip())


def node_ids(root: Any) -> list[str]:
    """Ids of the React Flow nodes drawn in `root`, sorted."""
    return sorted(root.locator(".react-flow__node").evaluate_all("els => els.map(e => e.dataset.id)"))


def selected_ids(root: Any) -> list[str]:
    """Ids of the selected React Flow nodes, sorted."""
    return sorted(root.locator(".react-flow__node.selected").evaluate_all("els => els.map(e => e.dataset.id)"))


def node(root: Any, name: str) -> Any:
    return root.locator(f".react-flow__node[data-id='{name}']")


def click_node(root: Any, name: str, **kwargs: Any) -> None:
    """Click a node as a user would: if the minimap overlay covers it, zoom out first (the Controls' button)."""
    target = node(root, name)
    target.wait_for()
    for _ in range(4):
        box, mini = target.bounding_box(), root.locator(".gb-minimap").bounding_box()
        covered = box is not None and mini is not None and not (
            box["x"] + box["width"] < mini["x"] or mini["x"] + mini["width"] < box["x"]
            or box["y"] + box["height"] < mini["y"] or mini["y"] + mini["height"] < box["y"])
        if not covered:
            break
        root.locator(".react-flow__controls-zoomout").click()
        root.page.wait_for_timeout(250)  # the zoom animates
    target.click(**kwargs)


def handle(root: Any, name: str, handle_id: str) -> Any:
    return node(root, name).locator(f".react-flow__handle[data-handleid='{handle_id}']")


def edge_label(root: Any, source: str, target: str) -> str | None:
    """Text of the shape label on the edge source -> target (None if there is no such edge)."""
    return root.evaluate(
        """(root, [s, t]) => {
            for (const el of root.querySelectorAll('.react-flow__edge')) {
              const id = (el.getAttribute('data-testid') || '').replace('rf__edge-', '');
              const [from, to] = id.split('\u2192');
              if (from.split('#')[0] === s && to.split('#')[0] === t) {
                const text = el.querySelector('.react-flow__edge-text');
                return text ? text.textContent : '';
              }
            }
            return null;
        }""", [source, target])


def center(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def connect(page: Any, root: Any, source: str, target: str, port: int = 0, release: bool = True) -> None:
    """Draw a connection with the mouse from `source`'s output 0 to `target`'s input `port`."""
    sx, sy = center(handle(root, source, "out-0"))
    tx, ty = center(handle(root, target, f"in-{port}"))
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move((sx + tx) / 2, (sy + ty) / 2, steps=8)
    page.mouse.move(tx, ty, steps=8)
    page.wait_for_timeout(300)
    if release:
        page.mouse.up()


def press(nb: Notebook, root: Any, keys: str) -> None:
    """Focus the editor and press `keys` (the canvas takes Ctrl+Z and friends, not JupyterLab)."""
    root.evaluate("el => el.focus()")
    nb.page.keyboard.press(keys)


def test_shows_one_flow_node_per_graph_node(nb: Notebook) -> None:
    nb.run(0)
    root = editor(nb)
    assert root.locator(".react-flow__node").count() == 8
    names = set(root.locator(".react-flow__node").evaluate_all("els => els.map(e => e.dataset.id)"))
    assert names == {"x", "conv", "relu", "sum", "pool", "flat", "fc", "out"}
    assert root.locator(".react-flow__edge").count() == 8
    assert edge_label(root, "conv", "relu") == "(2, 8, 16, 16)"  # Python's inferred shape on the edge
    assert edge_label(root, "flat", "fc") == "(2, 8)"
    assert "params" in root.locator(".gb-totals").inner_text()
    if os.environ.get("GB_UPDATE_SCREENSHOT"):
        root.screenshot(path=str(REPO / "docs/images/widget.png"))


def test_drag_conv2d_connect_set_kernel_size(nb: Notebook) -> None:
    root = editor(nb)
    page = nb.page
    pane = root.locator(".react-flow__pane")
    box = pane.bounding_box()
    page.drag_and_drop(".gb-palette-item[data-op='conv2d']", ".gb-canvas .react-flow__pane",
                       target_position={"x": 70, "y": 70})
    node(root, "conv2d").wait_for()
    settle(nb, root)
    assert box is not None
    connect(page, root, "relu", "conv2d")
    settle(nb, root)
    connect(page, root, "conv2d", "pool")
    settle(nb, root)
    assert edge_label(root, "conv2d", "pool") == "(2, 16, 14, 14)"  # suggested out_channels=16, kernel 3
    click_node(root, "conv2d")
    field = root.locator(".gb-inspector [data-param='kernel_size'] input")
    field.fill("5")
    field.press("Enter")
    page.wait_for_function(
        "el => [...el.querySelectorAll('.react-flow__edge-text')].some(t => t.textContent === '(2, 16, 12, 12)')",
        arg=root.element_handle())
    assert edge_label(root, "conv2d", "pool") == "(2, 16, 12, 12)"
    # A bad value is shown inline and never sent.
    field.fill("0")
    assert "must be >= 1" in root.locator(".gb-inspector [data-param='kernel_size']").inner_text()
    field.fill("5")
    state = kernel_state(nb)
    assert state["conv2d"][0] == "conv2d" and state["conv2d"][1] == [["relu", 0]]
    assert state["conv2d"][3]["kernel_size"] == 5 and state["conv2d"][2] == [[2, 16, 12, 12]]
    assert state["pool"][1] == [["conv2d", 0]]


def test_refused_connection_and_mismatch_turns_node_red(nb: Notebook) -> None:
    root = editor(nb)
    page = nb.page
    reason = root.locator(".gb-reason")
    # flat into conv would close a loop (conv feeds flat): refused while drawn, with the reason.
    connect(page, root, "flat", "conv", release=False)
    reason.wait_for()
    assert "cycle" in reason.inner_text()
    page.mouse.up()
    # x (2, 3, 16, 16) as sum's second input: add cannot take it next to (2, 8, 16, 16): refused.
    connect(page, root, "x", "sum", port=1, release=False)
    page.wait_for_function("el => (el.querySelector('.gb-reason') || {}).textContent?.includes('cannot take')",
                           arg=root.element_handle())
    assert "do not match" in reason.inner_text()
    page.mouse.up()
    settle(nb, root)
    assert edge_label(root, "flat", "conv") is None and edge_label(root, "x", "sum") is None
    # x (2, 3, 16, 16) into relu is fine for relu, but sum then adds 3 channels to 8: sum turns red.
    connect(page, root, "x", "relu")
    settle(nb, root)
    red = node(root, "sum").locator(".gb-node-error")
    red.wait_for()
    assert "do not match" in red.get_attribute("title")
    click_node(root, "sum")
    assert "do not match" in root.locator(".gb-inspector .gb-error-text").inner_text()
    assert "error" in root.locator(".gb-totals").inner_text()


def test_undo_and_redo(nb: Notebook) -> None:
    root = editor(nb)
    sum_node = node(root, "sum").locator(".gb-node")
    assert "gb-node-error" in sum_node.get_attribute("class")
    press(nb, root, "Control+z")
    nb.page.wait_for_function("el => !el.classList.contains('gb-node-error')", arg=sum_node.element_handle())
    assert edge_label(root, "conv", "relu") == "(2, 8, 16, 16)"
    press(nb, root, "Control+Shift+z")
    nb.page.wait_for_function("el => el.classList.contains('gb-node-error')", arg=sum_node.element_handle())
    assert edge_label(root, "x", "relu") == "(2, 3, 16, 16)"
    press(nb, root, "Control+z")
    nb.page.wait_for_function("el => !el.classList.contains('gb-node-error')", arg=sum_node.element_handle())
    state = kernel_state(nb)
    assert state["relu"][1] == [["conv", 0]] and isinstance(state["sum"][2], list)


def test_collapse_and_expand_block(nb: Notebook) -> None:
    nb.run(2)
    root = editor(nb, 2)
    assert root.locator(".react-flow__node").count() == 5
    res = node(root, "res")
    assert res.locator(".gb-block").count() == 1
    res.locator(".gb-toggle").click()
    nb.page.wait_for_function("el => el.querySelectorAll('.react-flow__node').length === 10", arg=root.element_handle())
    settle(nb, root)
    for inner in ("res/x", "res/c1", "res/r1", "res/sum", "res/y"):
        assert node(root, inner).count() == 1
    assert edge_label(root, "res/c1", "res/r1") == "(2, 8, 16, 16)"
    node(root, "res").locator(".gb-block-head .gb-toggle").click()
    nb.page.wait_for_function("el => el.querySelectorAll('.react-flow__node').length === 5", arg=root.element_handle())
    settle(nb, root)


def test_save_reload_shows_same_graph(nb: Notebook, lab: Any) -> None:
    root = editor(nb)
    before = sorted(root.locator(".react-flow__node").evaluate_all("els => els.map(e => e.dataset.id)"))
    nb.save()
    saved = json.loads((lab.root / "editor.ipynb").read_text())
    state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    docs = [m["state"]["document"] for m in state.values() if "document" in m.get("state", {})]
    assert any(sorted(n["id"] for n in d["nodes"] if n["parent"] is None) == before for d in docs)
    nb.page.reload()
    nb.page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    root = editor(nb)
    after = sorted(root.locator(".react-flow__node").evaluate_all("els => els.map(e => e.dataset.id)"))
    assert after == before
    assert edge_label(root, "conv2d", "pool") == "(2, 16, 12, 12)"


def test_double_click_adds_op_by_name(nb: Notebook) -> None:
    root = editor(nb)
    before = kernel_state(nb)
    root = editor(nb)
    pane = root.locator(".react-flow__pane")
    pane.dblclick(position={"x": 12, "y": 12})
    box = root.locator(".gb-adder input")
    box.wait_for()
    box.fill("gel")
    assert root.locator(".gb-adder-item").first.inner_text() == "gelu"  # the list narrows as you type
    box.press("Enter")
    node(root, "gelu").wait_for()
    settle(nb, root)
    state = kernel_state(nb)
    assert state["gelu"][0] == "gelu" and state["gelu"][1] == [None]  # added unconnected, in Python too
    assert set(state) == set(before) | {"gelu"}
    root = editor(nb)
    press(nb, root, "Control+z")
    node(root, "gelu").wait_for(state="detached")
    assert set(kernel_state(nb)) == set(before)


def test_copy_paste_within_widget(nb: Notebook) -> None:
    root = editor(nb)
    before = kernel_state(nb)
    root = editor(nb)
    click_node(root, "conv")
    click_node(root, "relu", modifiers=["Control"])  # React Flow's multi-select key off macOS
    assert selected_ids(root) == ["conv", "relu"]
    press(nb, root, "Control+c")
    root.locator(".gb-notice", has_text="copied 2 node(s)").wait_for()
    press(nb, root, "Control+v")
    node(root, "relu_1").wait_for()
    settle(nb, root)
    assert selected_ids(root) == ["conv_1", "relu_1"]  # the pasted nodes are selected
    state = kernel_state(nb)
    assert state["conv_1"][3] == before["conv"][3]  # same params
    assert state["relu_1"][1] == [["conv_1", 0]]  # the wire inside the selection is kept...
    assert state["conv_1"][1] == [None]  # ...the one from outside is not
    root = editor(nb)
    press(nb, root, "Control+z")  # the paste is one undo step
    node(root, "conv_1").wait_for(state="detached")
    assert node(root, "relu_1").count() == 0
    assert kernel_state(nb) == before


def test_copy_paste_across_widgets(nb: Notebook) -> None:
    root = editor(nb)
    click_node(root, "fc")
    press(nb, root, "Control+c")
    root.locator(".gb-notice", has_text="copied 1 node(s)").wait_for()
    other = editor(nb, 2)
    assert node(other, "fc").count() == 0
    press(nb, other, "Control+v")
    node(other, "fc").wait_for()
    settle(nb, other)
    g2 = printed(nb, 3, "G2")
    assert g2["fc"] == ["linear", [None]]
    fc = node(other, "fc").locator(".gb-node")
    assert "gb-node-error" in fc.get_attribute("class")  # unconnected: red until wired
    other = editor(nb, 2)
    press(nb, other, "Control+z")
    node(other, "fc").wait_for(state="detached")
    assert "fc" not in printed(nb, 3, "G2")


def test_box_select_and_delete_is_one_undo_step(nb: Notebook) -> None:
    root = editor(nb)
    before = kernel_state(nb)
    root = editor(nb)
    press(nb, root, "Escape")  # nothing selected
    assert selected_ids(root) == []
    pane = root.locator(".react-flow__pane").bounding_box()
    assert pane is not None
    page = nb.page
    page.keyboard.down("Shift")  # Shift+drag on the pane draws a selection box
    page.mouse.move(pane["x"] + 4, pane["y"] + 4)
    page.mouse.down()
    page.mouse.move(pane["x"] + pane["width"] * 0.6, pane["y"] + pane["height"] * 0.6, steps=10)
    page.mouse.move(pane["x"] + pane["width"] - 4, pane["y"] + pane["height"] - 4, steps=10)
    page.mouse.up()
    page.keyboard.up("Shift")
    chosen = selected_ids(root)
    assert len(chosen) >= 2, chosen
    press(nb, root, "Delete")
    page.wait_for_function("([el, n]) => el.querySelectorAll('.react-flow__node').length === n",
                           arg=[root.element_handle(), len(before) - len(chosen)])
    settle(nb, root)
    assert set(kernel_state(nb)) == set(before) - set(chosen)
    root = editor(nb)
    press(nb, root, "Control+z")  # every deleted node and wire comes back in one step
    page.wait_for_function("([el, n]) => el.querySelectorAll('.react-flow__node').length === n",
                           arg=[root.element_handle(), len(before)])
    assert kernel_state(nb) == before


def test_export_network_as_python(nb: Notebook) -> None:
    root = editor(nb, 2)
    root.locator("select[data-action='export']").select_option("py")
    dialog = root.locator(".gb-dialog .gb-python")
    dialog.wait_for()
    shown = dialog.inner_text()
    expected = printed(nb, 4, "PY")
    assert shown.strip() == expected.strip()
    assert "class " in shown and "def forward" in shown
    root.locator(".gb-dialog button", has_text="Close").click()
    dialog.wait_for(state="detached")
