"""The editor through a real JupyterLab in headless Chromium: every interaction, end to end, on a small graph
and on real networks (an imported ResNet-50 layout and a Transformer encoder, tests/models.py).

One JupyterLab server and one browser page for the module (tests run in order and build on each other:
the notebook is opened once). Failing tests leave a screenshot in test-artifacts/. With
GB_UPDATE_SCREENSHOT=1 the real-model views are saved under docs/images/ (widget.png is the README's).
"""

from __future__ import annotations

import json
import os
import re
import time
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
# Cells 5 to 8: op docs from the registry and the palette's networks; node positions (meta) and the saved
# file's; an edit and a highlight made from Python. The docs are written to a file: printed, ~250 ops' docs
# would push the editor out of view, and JupyterLab does not draw cells out of view.
DOCS = ('open("ops.json", "w").write(json.dumps({o["name"]: [o["doc"], o["category"], o.get("advanced", False)] '
        'for o in w.ops}))')
POSITIONS = """\
w.save("moved.graph.json")
saved = gb.Graph.load("moved.graph.json")
print("POS=" + json.dumps([{n.name: n.meta.get("position") for n in g}
                           for g in (w.graph, saved)]))"""
PY_EDIT = """\
if "py_gelu" in w.graph:
    w.graph.remove("py_gelu")
else:
    w.graph.add("gelu", w.graph["fc"], name="py_gelu")"""
HIGHLIGHT = """\
if w.highlights:
    w.highlight([])
else:
    w.highlight(["conv", "relu"], style="added")"""
# Cell 9: a Python edit that waits for the test's go-ahead (a file), so the browser can edit meanwhile.
SLOW_EDIT = """\
import os, time
while not os.path.exists("go"):
    time.sleep(0.05)
os.remove("go")
fc = w.graph["fc"]
fc.params["out_features"] = 12 if fc.params["out_features"] == 10 else 10"""


# Cells 10 to 14: real networks from tests/models.py, imported with their hierarchy (blocks in blocks).
RESNET = f"""\
import json, sys
import graphbuilder as gb
sys.path.insert(0, {str(REPO / "tests")!r})
from models import MODELS
module, example = MODELS["resnet50"]()
wr = gb.GraphWidget(gb.from_module(module, (example,)))  # direction and height from the graph's shape
wr"""
RESNET_STATE = """\
print("WR=" + json.dumps({"direction": wr.direction, "view": wr.view,
                          "errors": sorted("/".join(p) for p in gb.passes.root_errors(wr.graph)),
                          "failing": len(wr.graph.errors())}))"""
# A pass like tutorial 01's `deepen`: a conv and a relu inserted before the max pool.
DEEPEN = """\
def deepen(graph):
    pool = graph["maxpool"]
    source = pool.inputs[0]
    act = graph.add("relu", graph.add("conv2d", source, out_channels=8, kernel_size=3, padding=1, name="conv3"),
                    name="relu3")
    pool.replace_input(source, act)
    return graph
print("INSERTED=" + json.dumps(wr.apply(deepen)))"""
# The most common residual bug: a 3x3 conv without padding shrinks one side of a residual add (16 vs 14).
BREAK = 'wr.graph["layer1"].block["0"].block["conv2"].params["padding"] = 0'
TRANSFORMER = """\
module, example = MODELS["transformer"]()
wt = gb.GraphWidget(gb.from_module(module, (example,)))
wt"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    with running_lab() as server:
        write_notebook(server.root / "editor.ipynb",
                       [BUILD, STATE, BLOCK, STATE2, EXPORT2, DOCS, POSITIONS, PY_EDIT, HIGHLIGHT,
                        SLOW_EDIT, RESNET, RESNET_STATE, DEEPEN, BREAK, TRANSFORMER])
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
    """The widget root in `cell`'s output, once laid out and in sync with Python. It is scrolled into view first:
    a canvas off screen has no size yet (JupyterLab skips laying out cells out of view), and the editor waits for
    one before choosing its first view."""
    root = nb.cell(cell).locator(".gb-root")
    root.wait_for(state="attached", timeout=60_000)
    root.evaluate("el => el.scrollIntoView({block: 'start'})")
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


def editor_and_state(nb: Notebook) -> tuple[Any, dict[str, Any]]:
    """The first widget, scrolled back into view after reading the kernel's state of its graph."""
    before = kernel_state(nb)
    return editor(nb), before


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


def uncover(root: Any, target: Any) -> tuple[float, float]:
    """Screen point at the middle of `target` where a click reaches it; if something covers it there (a
    notice), zoom out first with the Controls' button, as a user would."""
    target.wait_for()
    for _ in range(5):
        x, y = center(target)
        if target.evaluate("(el, [x, y]) => el.contains(document.elementFromPoint(x, y))", [x, y]):
            return x, y
        root.locator(".react-flow__controls-zoomout").click()
        view_still(root)
    raise AssertionError(f"{target} stays covered")


def view_still(root: Any) -> None:
    """Wait until the view stops moving: zoom and fit animate, and a test reading the zoom mid-way measures wrong."""
    viewport = root.locator(".react-flow__viewport")
    last = None
    for _ in range(50):
        now = viewport.evaluate("el => el.style.transform")
        if now == last:
            return
        last = now
        root.page.wait_for_timeout(150)
    raise AssertionError(f"the view keeps moving: {last}")


def click_node(root: Any, name: str, **kwargs: Any) -> None:
    """Click a node where nothing covers it."""
    target = node(root, name)
    uncover(root, target)
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
    assert node(root, "conv").locator(".gb-node-name").inner_text() == "conv"  # each node shows name and op
    assert node(root, "conv").locator(".gb-node-op").inner_text().startswith("conv2d")
    assert node(root, "pool").locator(".gb-node-op").inner_text() == "adaptive_avg_pool2d"
    assert root.locator(".react-flow__edge").count() == 8
    assert edge_label(root, "conv", "relu") == "(2, 8, 16, 16)"  # Python's inferred shape on the edge
    assert edge_label(root, "flat", "fc") == "(2, 8)"
    # Parameter counts by the formula: conv 3*8*3*3 + 8, fc 8*10 + 10; FLOPs 2*MACs of conv and fc.
    assert node(root, "conv").locator(".gb-node-params").inner_text() == "224 params"
    assert node(root, "fc").locator(".gb-node-params").inner_text() == "90 params"
    assert node(root, "relu").locator(".gb-node-params").count() == 0
    totals = root.locator(".gb-totals")
    assert totals.get_attribute("data-params") == str(224 + 90) and "314 params" in totals.inner_text()
    assert totals.get_attribute("data-flops") == str(2 * (2 * 8 * 16 * 16 * 3 * 3 * 3) + 2 * (2 * 8 * 10))


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
    press(nb, root, "Escape")  # nothing selected: no node notice over the canvas
    connect(nb.page, root, "flat", "conv")  # refused (a cycle): the notice says why...
    root.locator(".gb-notice", has_text="not connected").wait_for()
    press(nb, root, "Control+z")
    root.locator(".gb-notice", has_text="not connected").wait_for(state="detached")  # ...until the undo
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
    # Edit inside: without padding c1 shrinks the map, and the residual sum no longer fits.
    click_node(root, "res/c1")
    field = root.locator(".gb-inspector [data-param='padding'] input")
    field.fill("0")
    field.press("Enter")
    settle(nb, root)
    node(root, "res/sum").locator(".gb-node-error").wait_for()
    outputs = root.locator(".gb-inspector .gb-outputs")  # edge labels may be hidden if clicking zoomed out
    assert "(2, 8, 14, 14)" in outputs.inner_text()
    block = node(root, "res").locator(".gb-block-open")
    assert "gb-block-bad" in block.get_attribute("class")  # an open block outlines the error inside it
    assert block.get_attribute("data-error-role") == "inside"
    assert node(root, "res/sum").locator(".gb-node").get_attribute("data-error-role") == "root"
    assert node(root, "res/y").locator(".gb-node").get_attribute("data-error-role") == "waiting"
    press(nb, root, "Control+z")
    node(root, "res/sum").locator(".gb-node-error").wait_for(state="detached")
    assert "(2, 8, 16, 16)" in outputs.inner_text()
    node(root, "res").locator(".gb-block-head .gb-toggle").click()
    nb.page.wait_for_function("el => el.querySelectorAll('.react-flow__node').length === 5", arg=root.element_handle())
    settle(nb, root)


def test_double_click_adds_op_by_name(nb: Notebook) -> None:
    root, before = editor_and_state(nb)
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
    root, before = editor_and_state(nb)
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
    root, before = editor_and_state(nb)
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


def test_palette_search_categories_and_docs(nb: Notebook, lab: Any) -> None:
    nb.run(5)
    docs = json.loads((lab.root / "ops.json").read_text())  # ops and the ready-made networks
    root = editor(nb)
    categories = root.locator(".gb-palette-list summary").evaluate_all(
        "els => els.map(e => e.childNodes[0].textContent.trim())")
    everyday = {name for name, (_, _, advanced) in docs.items() if not advanced}
    assert set(categories) == {docs[name][1] for name in everyday}  # one group per category of everyday ops
    assert categories.index("convolution") < categories.index("activation")  # palette order, not alphabetical
    assert docs["dropout"][1] == "regularization" and docs["linear"][1] == "linear"
    assert docs["mixed_op"][2] and docs["glore_project"][2] and not docs["glore_unit"][2]
    item = root.locator(".gb-palette-item[data-op='batch_norm2d']")
    if not item.is_visible():  # its category starts folded: open it
        root.locator(".gb-palette-list summary", has_text=docs["batch_norm2d"][1]).click()
    item.hover()  # the doc shows as the item's tooltip
    assert item.get_attribute("title") == docs["batch_norm2d"][0]
    search = root.locator(".gb-search")
    search.fill("norm")
    shown = root.locator(".gb-palette-item").evaluate_all("els => els.map(e => e.dataset.op)")
    assert shown and all("norm" in " ".join([op, docs[op][1], docs[op][0].lower()]) for op in shown)  # name, group, doc
    assert set(shown) >= {"batch_norm2d", "layer_norm"}
    search.fill("")
    assert root.locator(".gb-palette-item").count() == len(everyday)
    root.locator("[data-action='advanced']").check()  # search-space parts and internals on request
    assert root.locator(".gb-palette-item").count() == len(docs)
    root.locator("[data-action='advanced']").uncheck()


def test_param_form_enum_bool_and_tuple(nb: Notebook) -> None:
    root, before = editor_and_state(nb)
    click_node(root, "conv2d")
    form = root.locator(".gb-inspector")
    params_text = form.locator(".gb-outputs").inner_text()
    form.locator("[data-param='padding_mode'] select").select_option("reflect")  # enum: a dropdown
    settle(nb, root)
    form.locator("[data-param='bias'] input[type='checkbox']").uncheck()  # bool: a checkbox
    settle(nb, root)
    stride = form.locator("[data-param='stride'] input")  # int or tuple: typed as text
    stride.fill("1, x")
    assert form.locator("[data-param='stride']").evaluate("el => el.classList.contains('gb-field-bad')")
    stride.fill("(1, 2)")
    stride.press("Enter")
    nb.page.wait_for_function(
        "el => [...el.querySelectorAll('.react-flow__edge-text')].some(t => t.textContent === '(2, 16, 12, 6)')",
        arg=root.element_handle())
    settle(nb, root)
    assert form.locator(".gb-outputs").inner_text() != params_text  # no bias: fewer params shown
    state = kernel_state(nb)
    assert state["conv2d"][3]["padding_mode"] == "reflect" and state["conv2d"][3]["bias"] is False
    assert state["conv2d"][3]["stride"] == [1, 2] and state["conv2d"][2] == [[2, 16, 12, 6]]
    root = editor(nb)
    for _ in range(3):
        press(nb, root, "Control+z")
        settle(nb, root)
    assert kernel_state(nb) == before


def test_rename_node(nb: Notebook) -> None:
    root, before = editor_and_state(nb)
    click_node(root, "relu")
    field = root.locator(".gb-inspector .gb-rename")
    field.fill("act1")
    field.press("Enter")
    node(root, "act1").wait_for()
    node(root, "relu").wait_for(state="detached")
    settle(nb, root)
    assert edge_label(root, "conv", "act1") == "(2, 8, 16, 16)"
    state = kernel_state(nb)
    assert "relu" not in state and state["act1"][1] == [["conv", 0]]
    assert state["conv2d"][1] == [["act1", 0]] and state["sum"][1][0] == ["act1", 0]  # its users follow
    root = editor(nb)
    press(nb, root, "Control+z")
    node(root, "relu").wait_for()
    assert kernel_state(nb) == before


def test_group_selection_into_block_and_ungroup(nb: Notebook) -> None:
    root, before = editor_and_state(nb)
    click_node(root, "pool")
    click_node(root, "flat", modifiers=["Control"])
    root.locator("button[data-action='group']").click()
    nb.page.wait_for_function("([el, n]) => el.querySelectorAll('.react-flow__node').length === n",
                              arg=[root.element_handle(), len(before) - 1])
    settle(nb, root)
    (block,) = set(node_ids(root)) - set(before)
    assert node(root, block).locator(".gb-block").count() == 1  # shown collapsed, as one node
    assert edge_label(root, block, "fc") == "(2, 16)"  # shapes flow through the block
    state = kernel_state(nb)
    assert state[block][0] == "block" and state["fc"][1] == [[block, 0]]
    assert "pool" not in state and "flat" not in state
    root = editor(nb)
    click_node(root, block)
    root.locator("button[data-action='ungroup']").click()
    node(root, "pool").wait_for()
    node(root, block).wait_for(state="detached")
    settle(nb, root)
    state = kernel_state(nb)
    assert {k: v[:3] for k, v in state.items()} == {k: v[:3] for k, v in before.items()}


def positions(nb: Notebook) -> tuple[dict[str, Any], dict[str, Any]]:
    """Node positions in the kernel's `w.graph` and in the file `w.save` writes."""
    live, saved = printed(nb, 6, "POS")
    return live, saved


def test_move_keeps_position_in_meta_and_file(nb: Notebook) -> None:
    root = editor(nb)
    before, _ = positions(nb)
    root = editor(nb)
    press(nb, root, "Escape")
    fc = node(root, "fc")
    x, y = uncover(root, fc)
    start, view_start = fc.bounding_box(), root.evaluate("el => el.__gbFlow.getViewport()")
    page = nb.page
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 30, y + 20, steps=5)
    page.mouse.move(x + 60, y + 40, steps=5)
    page.mouse.up()
    settle(nb, root)
    end, view_end = fc.bounding_box(), root.evaluate("el => el.__gbFlow.getViewport()")
    live, saved = positions(nb)
    # The node moved on screen, and the kernel holds the position the canvas shows. A drag near the pane's edge
    # pans the view too, so the node's canvas position is its screen position less the view's offset.
    assert end["x"] - start["x"] > 40 and end["y"] - start["y"] > 25
    zoom = view_start["zoom"]
    assert view_end["zoom"] == pytest.approx(zoom)
    for axis in ("x", "y"):
        moved = (end[axis] - view_end[axis]) - (start[axis] - view_start[axis])
        assert (live["fc"][axis] - before["fc"][axis]) * zoom == pytest.approx(moved, abs=1.5)
    assert saved["fc"] == live["fc"] and live["conv"] == before["conv"]


def chain_order(live: dict[str, Any], axis: str) -> list[float]:
    return [live[name][axis] for name in ("x", "conv", "relu", "conv2d", "pool", "flat", "fc", "out")]


def viewport_zoom(root: Any) -> float:
    transform = root.locator(".react-flow__viewport").evaluate("el => el.style.transform")
    return float(re.search(r"scale\(([\d.]+)\)", transform).group(1))


def choose_direction(nb: Notebook, root: Any, direction: str) -> None:
    """Pick a layout direction in the toolbar and wait until the layout it starts is done."""
    done = int(root.get_attribute("data-gb-layouts"))
    root.locator(".gb-header select[title='layout direction']").select_option(direction)
    nb.page.wait_for_function("([el, n]) => Number(el.dataset.gbLayouts) > n && el.dataset.gbPending === '0'",
                              arg=[root.element_handle(), done], timeout=30_000)


def test_layout_direction_fit_minimap_and_zoom(nb: Notebook) -> None:
    root = editor(nb)
    choose_direction(nb, root, "LR")
    live, _ = positions(nb)
    xs = chain_order(live, "x")
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # elkjs layered, left to right along the chain
    root = editor(nb)
    choose_direction(nb, root, "TB")
    live, _ = positions(nb)
    ys = chain_order(live, "y")
    assert ys == sorted(ys) and len(set(ys)) == len(ys)
    root = editor(nb)
    zoom = viewport_zoom(root)
    root.locator(".react-flow__controls-zoomin").click()
    nb.page.wait_for_function("([el, z]) => !el.style.transform.includes(`scale(${z})`)",
                              arg=[root.locator(".react-flow__viewport").element_handle(), zoom])
    nb.page.wait_for_timeout(300)  # the zoom animates
    assert viewport_zoom(root) > zoom
    root.locator("button[data-action='fit']").click()
    nb.page.wait_for_timeout(400)
    pane = root.locator(".react-flow__pane").bounding_box()
    for name in node_ids(root):
        box = node(root, name).bounding_box()
        assert pane["x"] - 1 <= box["x"] and box["x"] + box["width"] <= pane["x"] + pane["width"] + 1, name
        assert pane["y"] - 1 <= box["y"] and box["y"] + box["height"] <= pane["y"] + pane["height"] + 1, name
    assert root.locator(".gb-minimap .react-flow__minimap-node").count() == len(node_ids(root))


def test_python_edit_appears_without_rerender(nb: Notebook) -> None:
    root = editor(nb)
    root.evaluate("el => { el.querySelector(\".react-flow__node[data-id='conv']\").__gbMark = 1; }")
    nb.run(7)
    root = editor(nb)  # back in view: JupyterLab skips drawing cells scrolled out of sight
    node(root, "py_gelu").wait_for()
    edge = "el => el.querySelector(\".react-flow__edge[data-testid='rf__edge-fc#0\u2192py_gelu#0']\")"
    nb.page.wait_for_function(edge, arg=root.element_handle())  # drawn once the new node is measured
    assert edge_label(root, "fc", "py_gelu") == "(2, 10)"
    # The canvas was patched in place: the conv node's element is the very one drawn before.
    assert root.evaluate("el => el.querySelector(\".react-flow__node[data-id='conv']\").__gbMark") == 1
    nb.run(7)
    node(root, "py_gelu").wait_for(state="detached")
    assert "py_gelu" not in kernel_state(nb)


def test_highlight_from_python(nb: Notebook) -> None:
    root = editor(nb)
    nb.run(8)
    marked = root.locator(".gb-hl-added")
    nb.page.wait_for_function("el => el.querySelectorAll('.gb-hl-added').length === 2", arg=root.element_handle())
    assert sorted(marked.evaluate_all("els => els.map(e => e.dataset.nodeName)")) == ["conv", "relu"]
    nb.run(8)
    marked.first.wait_for(state="detached")


def shown_outputs(root: Any, name: str) -> str:
    """The inspector's output shapes for node `name` (selects it)."""
    click_node(root, name)
    root.locator(f".gb-inspector[data-node='{name}']").wait_for()
    return root.locator(".gb-inspector .gb-outputs").inner_text()


def test_browser_and_python_edit_at_once_both_survive(nb: Notebook, lab: Any) -> None:
    root = editor(nb)
    before = kernel_state(nb)
    nb.start(9)  # Python is about to edit fc; meanwhile the browser edits conv2d
    root = editor(nb)
    click_node(root, "conv2d")
    field = root.locator(".gb-inspector [data-param='kernel_size'] input")
    field.fill("3")
    field.press("Enter")
    assert root.get_attribute("data-gb-pending") == "1"  # sent while the kernel is busy: waits for its answer
    (lab.root / "go").touch()  # now Python edits fc, then handles the browser's patch made on the older version
    nb.wait_idle()
    settle(nb, root)
    state = kernel_state(nb)
    assert state["conv2d"][3]["kernel_size"] == 3 and state["conv2d"][2] == [[2, 16, 14, 14]]
    assert state["fc"][3]["out_features"] == 12 and state["fc"][2] == [[2, 12]]
    root = editor(nb)
    assert "(2, 16, 14, 14)" in shown_outputs(root, "conv2d")
    assert "(2, 12)" in shown_outputs(root, "fc")  # the kernel's edit reached the canvas too
    # Put both back: the browser's edit, then Python's.
    click_node(root, "conv2d")
    field.fill("5")
    field.press("Enter")
    settle(nb, root)
    (lab.root / "go").touch()
    nb.run(9)
    assert kernel_state(nb) == before


def test_export_canvas_as_svg_and_png(nb: Notebook) -> None:
    import io
    import xml.etree.ElementTree as ET

    from PIL import Image

    root = editor(nb, 2)
    files = {}
    for kind in ("svg", "png"):
        with nb.page.expect_download() as info:
            root.locator("select[data-action='export']").select_option(kind)
        assert info.value.suggested_filename == f"blocks.{kind}"
        files[kind] = Path(info.value.path()).read_bytes()
    svg = files["svg"].decode()
    ET.fromstring(svg)  # well-formed
    for name in ("stem", "res", "act"):
        assert f'data-id="{name}"' in svg and f">{name}<" in svg  # every node, with its label
    image = Image.open(io.BytesIO(files["png"]))
    assert image.format == "PNG" and image.width >= 200 and image.height >= 200
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16  # drawn, not blank


def luminance(root: Any, selector: str) -> float:
    """Relative luminance (0 black, 1 white) of the background of `selector` inside `root`."""
    rgb = root.evaluate("(el, s) => getComputedStyle(el.querySelector(s)).backgroundColor", selector)
    r, g, b = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def set_theme(nb: Notebook, theme: str) -> None:
    """Pick `theme` from JupyterLab's Settings > Theme menu, as a user would."""
    page = nb.page
    page.locator(".lm-MenuBar-item", has_text="Settings").click()
    page.locator(".lm-Menu-item", has=page.get_by_text("Theme", exact=True)).hover()
    page.locator(".lm-Menu-item", has=page.get_by_text(theme, exact=True)).click()


def test_follows_jupyterlab_theme(nb: Notebook) -> None:
    root = editor(nb)
    parts = (".gb-header", ".gb-palette", ".react-flow__node .gb-node")
    assert "gb-dark" not in root.get_attribute("class")
    assert all(luminance(root, part) > 0.8 for part in parts)
    set_theme(nb, "JupyterLab Dark")
    nb.page.wait_for_function("el => el.classList.contains('gb-dark')", arg=root.element_handle())
    assert root.locator(".react-flow").evaluate("el => el.classList.contains('dark')")  # React Flow's own colours
    nb.page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    nb.page.wait_for_timeout(500)  # the theme's stylesheet loads
    assert all(luminance(root, part) < 0.3 for part in parts)
    set_theme(nb, "JupyterLab Light")
    nb.page.wait_for_function("el => !el.classList.contains('gb-dark')", arg=root.element_handle())
    nb.page.wait_for_timeout(500)
    assert all(luminance(root, part) > 0.8 for part in parts)


# -- real networks ---------------------------------------------------------------------------------------------
# Sibling boxes (React Flow nodes with the same parent, positions relative to it) that overlap, as pairs of ids.
OVERLAPS = """el => {
  const byParent = {};
  for (const n of el.__gbFlow.getNodes()) (byParent[n.parentId ?? ''] ??= []).push(n);
  const out = [];
  for (const list of Object.values(byParent)) {
    for (let i = 0; i < list.length; i++) for (let j = i + 1; j < list.length; j++) {
      const [a, b] = [list[i], list[j]];
      if (a.position.x < b.position.x + b.width && b.position.x < a.position.x + a.width
          && a.position.y < b.position.y + b.height && b.position.y < a.position.y + a.height) out.push([a.id, b.id]);
    }
  }
  return out;
}"""


def overlaps(root: Any) -> list[list[str]]:
    return root.evaluate(OVERLAPS)


def toggle_block(nb: Notebook, root: Any, block: str) -> None:
    """Expand or collapse `block` with its own toggle and wait until the move that makes room has landed."""
    open_before = node(root, block).locator(".gb-block-open").count() > 0
    root.evaluate("(el, id) => el.querySelector(`.react-flow__node[data-id='${id}'] .gb-toggle`).click()", block)
    nb.page.wait_for_function("([el, id, was]) => !!el.querySelector(`.react-flow__node[data-id='${id}'] "
                              ".gb-block-open`) !== was", arg=[root.element_handle(), block, open_before])
    settle(nb, root)


def save_view(root: Any, name: str) -> None:
    if os.environ.get("GB_UPDATE_SCREENSHOT"):
        root.screenshot(path=str(REPO / "docs/images" / name))


def test_real_model_first_view_is_readable(nb: Notebook) -> None:
    nb.run(10)
    root = editor(nb, 10)
    assert root.get_attribute("data-gb-direction") == "TB"  # a 13-node chain of stages: top down, tall canvas
    assert root.evaluate("el => el.getBoundingClientRect().height") >= 700
    # Node names at the default zoom are legible (>= 9 px tall on screen), not fitted down to 3 px.
    sizes = node(root, "conv1").locator(".gb-node-name").evaluate(
        "(el, root) => [parseFloat(getComputedStyle(el).fontSize) * root.__gbFlow.getZoom(),"
        " el.getBoundingClientRect().height]", root.element_handle())
    assert sizes[0] >= 9 and sizes[1] >= 9, sizes
    assert node(root, "x").is_visible() and node(root, "conv1").is_visible()  # the start of the graph is in view
    # The minimap never covers the graph: it sits beside the canvas; panels fold away and give it room.
    canvas = root.locator(".gb-canvas").bounding_box()
    mini = root.locator(".gb-minimap").bounding_box()
    assert mini["x"] >= canvas["x"] + canvas["width"] - 1
    for panel in ("palette", "inspector", "minimap"):
        root.locator(f"[data-panel='{panel}']").click()
    assert root.locator(".gb-palette, .gb-inspector, .gb-minimap").count() == 0
    assert root.locator(".gb-canvas").bounding_box()["width"] > canvas["width"] + 300
    for panel in ("palette", "inspector", "minimap"):
        root.locator(f"[data-panel='{panel}']").click()
    save_view(root, "widget.png")


def test_real_model_expand_each_stage_then_layout_nothing_overlaps(nb: Notebook) -> None:
    root = editor(nb, 10)
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        toggle_block(nb, root, stage)
        assert overlaps(root) == [], stage  # the siblings made room for the stage's real size
        if stage == "layer2" and os.environ.get("GB_UPDATE_SCREENSHOT"):
            root.evaluate("el => el.__gbFlow.fitView({nodes: [{id: 'layer1'}, {id: 'layer2'}], duration: 0})")
            nb.page.wait_for_timeout(300)
            save_view(root, "editor-resnet-expanded.png")
    zoom = root.evaluate("el => el.__gbFlow.getZoom()")
    assert node(root, "layer4").bounding_box()["height"] > 4 * 58 * zoom  # open, at its real size (3 blocks)
    for direction in ("LR", "TB"):
        choose_direction(nb, root, direction)  # a hierarchical Layout in that direction
        assert overlaps(root) == [], direction
    done = int(root.get_attribute("data-gb-layouts"))
    root.locator("button[data-action='layout']").click()
    nb.page.wait_for_function("([el, n]) => Number(el.dataset.gbLayouts) > n", arg=[root.element_handle(), done])
    assert overlaps(root) == []
    for stage in ("layer2", "layer4", "layer1", "layer3"):
        toggle_block(nb, root, stage)
        assert overlaps(root) == [], stage


def saved_widget_state(path: Path, timeout: float = 30.0) -> dict[str, Any]:
    """The widget state in the notebook file at `path`, once the server has finished writing it (it rewrites
    the file in place, so a read during a save can see it empty)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            saved = json.loads(path.read_text())
            return saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        except (json.JSONDecodeError, KeyError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_save_reload_keeps_graphs_viewport_and_direction(nb: Notebook, lab: Any) -> None:
    demo = editor(nb)
    before = node_ids(demo)
    label = edge_label(demo, "conv2d", "pool")
    root = editor(nb, 10)
    choose_direction(nb, root, "LR")
    root.locator(".react-flow__controls-zoomin").click()
    nb.page.wait_for_timeout(800)  # the zoom animates; the view is saved 300 ms after it ends
    viewport = root.evaluate("el => el.__gbFlow.getViewport()")
    state = printed(nb, 11, "WR")
    assert state["direction"] == "LR"  # the kernel's widget holds the choice...
    assert state["view"]["zoom"] == pytest.approx(viewport["zoom"], abs=1e-3)
    nb.save()  # the reloaded page shows the notebook's saved outputs: the widgets, fed by the live kernel
    widgets = saved_widget_state(lab.root / "editor.ipynb")
    docs = [m["state"]["document"] for m in widgets.values() if "document" in m.get("state", {})]
    top = [n for n in before if "/" not in n]
    assert any(sorted(n["id"] for n in d["nodes"] if n["parent"] is None) == top for d in docs)
    nb.page.reload()
    nb.page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
    demo = editor(nb)
    assert node_ids(demo) == before and edge_label(demo, "conv2d", "pool") == label  # the same graph
    root = editor(nb, 10)
    after = root.evaluate("el => el.__gbFlow.getViewport()")  # ...so a reload shows the same view
    assert after == pytest.approx(viewport, abs=0.5)
    assert root.locator(".gb-header select[title='layout direction']").input_value() == "LR"
    assert root.get_attribute("data-gb-direction") == "LR"
    xs = [node(root, n).bounding_box()["x"] for n in ("conv1", "bn1", "relu")]
    assert xs == sorted(xs)  # laid out left to right, as the dropdown says


def test_pass_applied_from_python_adds_nodes_that_overlap_nothing(nb: Notebook) -> None:
    root = editor(nb, 10)
    before = root.evaluate("el => Object.fromEntries(el.__gbFlow.getNodes().map(n => [n.id, n.position]))")
    inserted = printed(nb, 12, "INSERTED")
    assert set(inserted) == {"conv3", "relu3"}
    root = editor(nb, 10)
    node(root, "relu3").wait_for()
    settle(nb, root)
    assert overlaps(root) == []
    after = root.evaluate("el => Object.fromEntries(el.__gbFlow.getNodes().map(n => [n.id, n.position]))")
    assert {k: after[k] for k in before} == before  # placed near their neighbours, nothing else moved
    near = node(root, "relu").bounding_box()
    new = node(root, "conv3").bounding_box()
    assert abs(new["x"] - near["x"]) + abs(new["y"] - near["y"]) < 600


def test_spatial_mismatch_offers_padding_fix_that_makes_the_graph_valid(nb: Notebook) -> None:
    root = editor(nb, 10)
    nb.run(13)
    root = editor(nb, 10)
    count = root.locator("button[data-action='next-error']")
    count.wait_for()
    state = printed(nb, 11, "WR")
    assert state["errors"] == ["layer1/0/add"] and state["failing"] > 3  # one mistake, many failing nodes
    assert count.inner_text() == "1 error"  # the header counts the root only
    root = editor(nb, 10)
    waiting = node(root, "layer2")
    assert waiting.locator("[data-error-role]").get_attribute("data-error-role") == "waiting"
    assert "waiting on layer1/0/add" in waiting.inner_text()  # grey, pointing at the cause
    count.click()  # jumps to the root: opens its block as a view, selects it, shows its fix-its
    nb.page.wait_for_function("el => el.dataset.gbView === 'layer1/0'", arg=root.element_handle())
    assert root.locator(".gb-crumb").evaluate_all("els => els.map(e => e.textContent)") == ["ResNet", "layer1", "0"]
    fix = root.locator(".gb-fix").first
    fix.wait_for()
    assert fix.inner_text() == "Fix: set padding=1 on 'conv2'"
    assert "out_channels" not in root.locator(".gb-fixits").inner_text()
    save_view(root, "editor-fixit.png")
    fix.click()
    count.wait_for(state="detached")
    settle(nb, root)
    state = printed(nb, 11, "WR")
    assert state["errors"] == [] and state["failing"] == 0
    root = editor(nb, 10)
    root.locator(".gb-crumb[data-crumb='']").click()  # back to the whole graph
    nb.page.wait_for_function("el => el.dataset.gbView === ''", arg=root.element_handle())


def test_transformer_nested_blocks_and_labelled_attention_ports(nb: Notebook) -> None:
    nb.run(14)
    root = editor(nb, 14)
    root.locator("select[data-action='expand']").select_option("99")  # expand all: blocks in blocks
    node(root, "layers/1/mlp/0").wait_for()
    settle(nb, root)
    assert overlaps(root) == []
    for direction in ("LR", "TB"):
        choose_direction(nb, root, direction)
        assert overlaps(root) == [], direction
    attn = node(root, "layers/0/attn")
    ports = attn.locator(".gb-port-label").evaluate_all("els => els.map(e => e.textContent)")
    assert ports == ["query", "key", "value"]
    root.locator(".gb-find-input").fill("attn")
    root.locator(".gb-find-item[data-id='layers/0/attn']").click()  # the search box centres the node
    nb.page.wait_for_function("el => el.__gbFlow.getZoom() >= 0.74", arg=root.element_handle())
    canvas = root.locator(".gb-canvas").bounding_box()
    box = attn.bounding_box()
    assert canvas["x"] < box["x"] and box["x"] + box["width"] < canvas["x"] + canvas["width"]
    # The three shape labels into query, key and value (all from norm1) are apart.
    labels = root.evaluate("""el => [...el.querySelectorAll('.react-flow__edge')]
        .filter(e => (e.getAttribute('data-testid') || '').includes('\u2192layers/0/attn#'))
        .map(e => { const r = e.querySelector('.react-flow__edge-text').getBoundingClientRect();
                    return [r.x, r.y, r.width, r.height]; })""")
    assert len(labels) == 3
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            apart = a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]
            assert apart, (a, b)
    save_view(root, "editor-transformer.png")
    if os.environ.get("GB_UPDATE_SCREENSHOT"):  # the same view in JupyterLab's dark theme
        set_theme(nb, "JupyterLab Dark")
        nb.page.wait_for_function("el => el.classList.contains('gb-dark')", arg=root.element_handle())
        nb.page.wait_for_timeout(500)
        save_view(root, "editor-dark.png")
        set_theme(nb, "JupyterLab Light")
        nb.page.wait_for_function("el => !el.classList.contains('gb-dark')", arg=root.element_handle())
