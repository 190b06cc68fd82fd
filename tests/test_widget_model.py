"""The widget's Python model: traits, document, patches, conflicts, undo, errors (no browser).

Messages the widget would send are captured by replacing `widget.send`; the browser side of the protocol
is replayed with `apply_changes`, the same rule the front end uses (extension/src/doc.ts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

import graphbuilder as gb
from graphbuilder.ir import paths
from graphbuilder.ir.render import node_flops
from graphbuilder.passes import group, ungroup
from graphbuilder.widget.document import apply_changes
from graphbuilder.widget.wire import from_wire, to_wire


def small() -> gb.Graph:
    g = gb.Graph("small")
    x = g.input("x", shape=(2, 3, 8, 8))
    c = g.add("conv2d", x, out_channels=4, kernel_size=3, padding=1, name="conv")
    r = g.add("relu", c, name="relu")
    f = g.add("flatten", g.add("adaptive_avg_pool2d", r, output_size=1, name="pool"), name="flat")
    g.output(g.add("linear", f, out_features=5, name="fc"), name="out")
    return g


class Browser:
    """Replays the browser's side: keeps the confirmed document from the messages the widget sends."""

    def __init__(self, widget: gb.GraphWidget) -> None:
        self.widget = widget
        self.sent: list[dict[str, Any]] = []
        widget.send = lambda content, buffers=None: self.sent.append(json.loads(json.dumps(content)))
        wire = widget.get_state()["document"]
        self.doc = {"version": wire["version"], "nodes": {n["id"]: n for n in wire["nodes"]},
                    "totals": wire["totals"], "graph": wire["graph"]}
        self.counter = 0

    def receive(self) -> None:
        for msg in self.sent:
            if msg["kind"] == "update":
                assert msg["base"] == self.doc["version"], "an update must apply on the version it was made from"
                self.doc = apply_changes(self.doc, msg["changes"], msg["version"])
        self.sent.clear()

    def patch(self, *ops: dict[str, Any], base: int | None = None) -> dict[str, Any]:
        self.counter += 1
        pid = f"p{self.counter}"
        self.widget._on_message(self.widget, {"kind": "patch", "id": pid, "ops": list(ops),
                                              "baseVersion": self.doc["version"] if base is None else base}, [])
        replies = [m["reply"] for m in self.sent if m["kind"] == "update" and m.get("reply", {}).get("id") == pid]
        assert len(replies) == 1
        self.widget.graph.lint()  # every patch, applied or refused, leaves the IR whole
        self.receive()
        return replies[0]

    def send(self, kind: str, **payload: Any) -> list[dict[str, Any]]:
        self.widget._on_message(self.widget, {"kind": kind, "id": "r1", **payload}, [])
        out = list(self.sent)
        self.receive()
        return out


def touched(updates: list[dict[str, Any]]) -> set[str]:
    """Ids of the node entries that `updates` add or change."""
    return {c["node"]["id"] if c["op"] == "upsert" else c["id"] for u in updates for c in u["changes"]
            if c["op"] in ("upsert", "fields")}


@pytest.fixture
def widget() -> gb.GraphWidget:
    return gb.GraphWidget(small())


def test_document_has_shapes_errors_params_and_flops(widget: gb.GraphWidget) -> None:
    state = widget.get_state()
    doc = state["document"]
    nodes = {n["id"]: n for n in doc["nodes"]}
    g = widget.graph
    assert list(nodes) == [n.name for n in g._nodes.values()]
    assert nodes["conv"]["outputs"] == [{"shape": [2, 4, 8, 8], "dtype": "float32"}]
    assert nodes["conv"]["numParams"] == 3 * 4 * 9 + 4
    assert nodes["conv"]["inputs"] == [["x", 0]]
    assert nodes["conv"]["params"]["out_channels"] == 4  # params keep their snake_case names
    assert nodes["conv"]["flops"] == node_flops(g["conv"])
    summary = g.summary()
    assert doc["totals"]["params"] == summary.total_params
    assert doc["totals"]["flops"] == summary.total_flops
    assert doc["totals"]["errors"] == 0
    assert state["ops"] and {"name", "category", "params", "inputHint"} <= set(state["ops"][0])


def test_param_edit_reinfers_and_replies_with_shapes(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    reply = b.patch({"op": "params", "node": "conv", "params": {"kernel_size": 5}})
    assert reply["ok"] and reply["errors"] == []
    assert widget.graph["conv"].params["kernel_size"] == 5
    assert b.doc["nodes"]["conv"]["outputs"][0]["shape"] == [2, 4, 6, 6]  # padding 1, kernel 5
    assert b.doc["nodes"]["relu"]["outputs"][0]["shape"] == [2, 4, 6, 6]
    assert b.doc["nodes"]["conv"]["numParams"] == 3 * 4 * 25 + 4


def test_bad_param_is_rejected_and_changes_nothing(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    version = b.doc["version"]
    reply = b.patch({"op": "params", "node": "conv", "params": {"kernel_size": 0}})
    assert not reply["ok"]
    assert ">= 1" in reply["errors"][0]["message"] and reply["errors"][0]["nodes"] == ["conv"]
    assert widget.graph["conv"].params["kernel_size"] == 3
    assert b.doc["version"] == version


def test_add_connect_and_shape_mismatch_error(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    reply = b.patch({"op": "add", "opName": "conv2d", "name": "c2", "position": [10, 20],
                     "params": {"out_channels": 6, "kernel_size": 3}})
    assert reply["created"] == ["c2"]
    c2 = b.doc["nodes"]["c2"]
    assert c2["inputs"] == [None] and "not connected" in c2["error"]
    assert widget.graph["c2"].meta["position"] == {"x": 10.0, "y": 20.0}
    b.patch({"op": "connect", "source": ["relu", 0], "target": ["c2", 0]})
    assert b.doc["nodes"]["c2"]["error"] is None
    assert b.doc["nodes"]["c2"]["outputs"][0]["shape"] == [2, 6, 6, 6]
    # Rewire fc's input to c2 (4-D): linear then sees 6 features; make a mismatch with an add instead.
    b.patch({"op": "add", "opName": "add", "name": "sum"},
            {"op": "connect", "source": ["c2", 0], "target": ["sum", 0]},
            {"op": "connect", "source": ["conv", 0], "target": ["sum", 1]})
    err = b.doc["nodes"]["sum"]["error"]
    assert err is not None and "do not match" in err
    assert widget.graph["sum"].error.message == err
    assert b.doc["totals"]["errors"] >= 1 and b.doc["totals"]["flops"] is None


def test_cycle_is_refused_with_reason(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    reply = b.patch({"op": "connect", "source": ["relu", 0], "target": ["conv", 0]})
    assert not reply["ok"] and "cycle" in reply["errors"][0]["message"]
    assert widget.graph["conv"].inputs[0].node.name == "x"


def test_probe_lists_cycles_and_shape_refusals(widget: gb.GraphWidget) -> None:
    widget.graph.add("linear", widget.graph["flat"], out_features=3, name="head")
    targets = widget._session.probe("relu", 0)
    assert "conv" in targets and "cycle" in targets["conv"]["0"]  # conv feeds relu
    assert "relu" in targets  # its own output
    assert "head" not in targets  # linear takes (2, 4, 8, 8): its last dim is the features
    widget.graph.add("conv2d", widget.graph["x"], out_channels=2, kernel_size=1, name="side")
    refusals = widget._session.probe("flat", 0)  # (2, 4): conv2d needs a 4-D input
    assert "cannot take (2, 4)" in refusals["side"]["0"] and "(N, C, H, W)" in refusals["side"]["0"]
    assert "fc" not in refusals


def test_rename_remove_move_meta_and_undo_redo(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    reply = b.patch({"op": "rename", "node": "relu", "name": "act"})
    assert reply["ids"] == {"relu": "act"} and "act" in b.doc["nodes"] and "relu" not in b.doc["nodes"]
    assert b.doc["nodes"]["pool"]["inputs"] == [["act", 0]]
    b.patch({"op": "move", "positions": {"conv": [100, 50], "act": [300, 50]}})
    assert widget.graph["conv"].meta["position"] == {"x": 100.0, "y": 50.0}
    b.patch({"op": "remove", "nodes": ["pool", "flat"]})
    assert "pool" not in widget.graph and widget.graph["fc"].inputs == (None,)
    assert widget.undo()
    b.receive()
    assert "pool" in widget.graph and b.doc["nodes"]["flat"]["inputs"] == [["pool", 0]]
    assert widget.undo() and widget.undo()
    b.receive()
    assert "relu" in widget.graph and "act" not in widget.graph
    assert widget.redo()
    b.receive()
    assert "act" in b.doc["nodes"]
    b.send("redo")
    assert widget.graph["conv"].meta["position"] == {"x": 100.0, "y": 50.0}


def test_multi_op_patch_is_one_undo_step(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    b.patch({"op": "add", "opName": "relu", "name": "r2"}, {"op": "add", "opName": "relu", "name": "r3"},
            {"op": "connect", "source": ["conv", 0], "target": ["r2", 0]},
            {"op": "connect", "source": ["r2", 0], "target": ["r3", 0]})
    assert {"r2", "r3"} <= set(widget.graph._nodes)
    b.send("undo")
    assert "r2" not in widget.graph and "r3" not in widget.graph
    assert "r2" not in b.doc["nodes"]


def test_python_edit_and_browser_edit_at_once_both_survive(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    base = b.doc["version"]
    widget._session.throttle_s = 10.0  # Python's edits wait in the batch, as during a running cell
    widget._session._last_flush = 1e18
    widget.graph["fc"].update(out_features=7)  # Python side, not yet seen by the browser
    widget.graph["relu"].rename("act")  # the browser will still say "relu"
    reply = b.patch({"op": "params", "node": "conv", "params": {"out_channels": 9}},
                    {"op": "move", "positions": {"relu": [5, 5]}}, base=base)
    assert reply["ok"], reply
    g = widget.graph
    assert g["fc"].params["out_features"] == 7 and g["conv"].params["out_channels"] == 9
    assert g["act"].meta["position"] == {"x": 5.0, "y": 5.0}  # rebased through the rename
    assert b.doc["nodes"]["fc"]["outputs"][0]["shape"] == [2, 7]
    assert b.doc["nodes"]["conv"]["outputs"][0]["shape"][1] == 9


def test_op_on_node_removed_in_python_is_rejected_others_apply(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    base = b.doc["version"]
    widget.graph.remove("out")
    reply = b.patch({"op": "move", "positions": {"out": [1, 1]}},
                    {"op": "params", "node": "fc", "params": {"out_features": 3}}, base=base)
    assert not reply["ok"] and reply["errors"][0]["index"] == 0
    assert "removed or renamed" in reply["errors"][0]["message"]
    assert widget.graph["fc"].params["out_features"] == 3


def test_python_side_edits_reach_the_browser_as_patches(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    widget.graph.add("relu", widget.graph["fc"], name="extra")
    widget.flush()
    updates = [m for m in b.sent if m["kind"] == "update"]
    assert updates and all(c["op"] in ("upsert", "fields", "totals", "graph") for c in updates[-1]["changes"])
    assert touched(updates) == {"extra"}  # not the whole graph
    b.receive()
    assert b.doc["nodes"]["extra"]["inputs"] == [["fc", 0]]


def test_assigning_a_graph_sends_a_diff(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    other = small()
    other["conv"].update(out_channels=2)
    widget.graph = other
    b.receive()
    assert widget.graph is other
    assert b.doc["nodes"]["conv"]["params"]["out_channels"] == 2
    assert b.doc["nodes"]["conv"]["numParams"] == 3 * 2 * 9 + 2


def test_group_and_ungroup_patch_ops(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    g = widget.graph
    reply = b.patch({"op": "group", "nodes": ["conv", "relu"], "name": "stem"})
    assert reply["ok"], reply
    assert widget.graph is g and g["stem"].op == "block"
    assert b.doc["nodes"]["stem"]["isBlock"] and b.doc["nodes"]["stem/conv"]["parent"] == "stem"
    assert b.doc["nodes"]["pool"]["inputs"] == [["stem", 0]]
    assert b.doc["nodes"]["stem"]["outputs"][0]["shape"] == [2, 4, 8, 8]
    b.patch({"op": "params", "node": "stem/conv", "params": {"out_channels": 6}})  # edit inside the block
    assert b.doc["nodes"]["stem"]["outputs"][0]["shape"] == [2, 6, 8, 8]
    assert b.doc["nodes"]["fc"]["error"] is None
    b.patch({"op": "ungroup", "node": "stem"})
    assert g["conv"].params["out_channels"] == 6 and "stem" not in g
    assert b.doc["nodes"]["relu"]["inputs"] == [["conv", 0]]


def test_copy_paste_across_widgets() -> None:
    w1, w2 = gb.GraphWidget(small()), gb.GraphWidget(small())
    b1, b2 = Browser(w1), Browser(w2)
    copied = b1.send("copy", nodes=["conv", "relu"])
    fragment = next(m for m in copied if m["kind"] == "copied")["fragment"]
    reply = b2.patch({"op": "paste", "fragment": fragment, "offset": [10, 10]})
    assert reply["created"] == ["conv_1", "relu_1"]
    g2 = w2.graph
    assert g2["relu_1"].inputs[0].node is g2["conv_1"] and g2["conv_1"].inputs == (None,)
    assert g2["conv_1"].params == w1.graph["conv"].params
    reply = b2.patch({"op": "paste", "fragment": {"format": "nope"}})
    assert not reply["ok"] and "clipboard" in reply["errors"][0]["message"]


def test_apply_pass_is_one_step_and_colours_its_diff(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    g = widget.graph

    def insert_identity(graph: gb.Graph) -> gb.Graph:
        node = graph.add("identity", graph["relu"], name="tap")
        node.meta["inserted_by"] = "test"
        graph["pool"].replace_input(graph["relu"], node)
        graph.add("identity", graph["conv"], name="untagged")
        return graph

    inserted = widget.apply(insert_identity)
    assert inserted == ["tap"] and widget.graph is g and g["pool"].inputs[0].node.name == "tap"
    assert widget.highlights == {"tap": "added", "untagged": "added", "pool": "changed"}
    assert {(e["source"], e["target"]) for e in widget.edge_styles} == {("relu", "tap"), ("tap", "pool"),
                                                                        ("conv", "untagged")}
    b.receive()
    assert b.doc["nodes"]["pool"]["inputs"] == [["tap", 0]]
    assert widget.undo()
    assert "tap" not in g and "untagged" not in g


def test_action_runs_registered_pass(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    widget.on_action("Add tap", lambda graph, sel: graph.add("identity", graph[sel[0]], name="tap") and graph)
    assert widget.actions[-1]["name"] == "Add tap"
    msgs = b.send("action", name="Add tap", selection=["conv"])
    reply = [m["reply"] for m in msgs if m.get("reply")][-1]
    assert reply["ok"] and reply["created"] == ["tap"]
    msgs = b.send("action", name="missing", selection=[])
    assert "unknown action" in [m["reply"] for m in msgs if m.get("reply")][-1]["errors"][0]["message"]


def test_highlight_and_edge_styles_validate(widget: gb.GraphWidget) -> None:
    widget.highlight(["conv", widget.graph["relu"]], style="removed")
    widget.highlight(["fc"], style={"color": "#f00", "border_width": 3})
    assert widget.highlights == {"conv": "removed", "relu": "removed", "fc": {"color": "#f00", "border_width": 3}}
    widget.highlight(["pool"], style="removed")  # replaces the earlier "removed" set
    assert widget.highlights == {"pool": "removed", "fc": {"color": "#f00", "border_width": 3}}
    widget.highlight([])
    assert widget.highlights == {}
    with pytest.raises(gb.GraphError, match="not one of"):
        widget.highlight(["conv"], style="glow")
    widget.style_edges({("conv", "relu"): {"width": 3.0, "color": "#0a0", "opacity": 0.5, "label": "0.9"}})
    assert widget.edge_styles == [{"source": "conv", "target": "relu", "width": 3.0, "color": "#0a0",
                                   "opacity": 0.5, "label": "0.9"}]
    with pytest.raises(gb.GraphError, match="edge style"):
        widget.style_edges({("conv", "relu"): {"dash": 1}})


def test_traits_validate_and_errors_say_the_fix() -> None:
    with pytest.raises(gb.GraphError, match="needs a gb.Graph"):
        gb.GraphWidget("not a graph")  # type: ignore[arg-type]
    w = gb.GraphWidget(small(), direction="TB", height=300)
    assert w.direction == "TB" and w.height == 300
    import traitlets

    with pytest.raises(traitlets.TraitError, match="'LR'"):
        w.direction = "RL"
    b = Browser(w)
    msgs = b.send("bogus")
    assert msgs[-1]["kind"] == "error" and "unknown message kind" in msgs[-1]["message"]
    reply = b.patch({"op": "explode"})
    assert "unknown patch op" in reply["errors"][0]["message"]


def test_save_writes_graph_with_positions(widget: gb.GraphWidget, tmp_path: Any) -> None:
    b = Browser(widget)
    b.patch({"op": "move", "positions": {"conv": [11, 22]}})
    path = tmp_path / "net.graph.json"
    widget.save(path)
    loaded = gb.Graph.load(str(path))
    assert loaded["conv"].meta["position"] == {"x": 11.0, "y": 22.0}
    assert [n.name for n in loaded] == [n.name for n in widget.graph]


def test_state_holds_current_graph_for_notebook_save(widget: gb.GraphWidget) -> None:
    widget.graph.add("relu", widget.graph["fc"], name="late")
    nodes = {n["id"] for n in widget.get_state()["document"]["nodes"]}
    assert "late" in nodes  # read when the notebook is saved or the page reloads


def test_ids_escape_and_wire_keeps_user_keys() -> None:
    for names in (["a"], ["blk", "in/ner"], ["we\\ird/", "x"]):
        node_id = paths.join(None, names[0])
        for n in names[1:]:
            node_id = paths.join(node_id, n)
        assert paths.split(node_id) == names
    msg = {"kind": "update", "error_nodes": ["x"], "node": {"input_names": ["a"], "params": {"out_channels": 3}}}
    wire = to_wire(msg)
    assert wire == {"kind": "update", "errorNodes": ["x"], "node": {"inputNames": ["a"], "params": {"out_channels": 3}}}
    assert from_wire(wire) == msg


def test_group_ungroup_passes_keep_function_and_weights() -> None:
    import torch

    g = small()
    model = gb.compile(g)
    gb.store_weights(g, model)
    grouped = group(g, ["conv", "relu"], name="stem")
    assert "conv" in g and "stem" not in g  # pure: the argument is untouched
    assert grouped["stem"].block is not None and {n.name for n in grouped["stem"].block} >= {"conv", "relu"}
    back = ungroup(grouped, "stem")
    x = torch.randn(2, 3, 8, 8)
    want = model(x)
    for graph in (grouped, back):
        torch.testing.assert_close(gb.compile(graph)(x), want)
    assert [n.op for n in back] == [n.op for n in g]
    with pytest.raises(gb.GraphError, match="not convex"):
        group(g, ["conv", "pool"])  # relu sits between them outside the selection
    with pytest.raises(gb.GraphError, match="graph input"):
        group(g, ["x", "conv"])
    with pytest.raises(gb.GraphError, match="not a block"):
        ungroup(g, "conv")


def test_python_edits_inside_blocks_reach_the_browser_without_flush() -> None:
    g = small()
    g.replace_contents(group(g, ["conv", "relu"], name="stem"))
    widget = gb.GraphWidget(g)
    b = Browser(widget)
    widget._session._last_flush = 0.0  # the batch window has passed: the edit is sent at once
    inner = g["stem"].block
    inner["conv"].update(out_channels=6)  # no widget.flush()
    updates = [m for m in b.sent if m["kind"] == "update"]
    assert updates, "an edit inside a block must reach the browser by itself"
    assert {"stem", "stem/conv"} <= touched(updates) and "x" not in touched(updates)  # not the whole graph
    b.receive()
    assert b.doc["nodes"]["stem/conv"]["params"]["out_channels"] == 6
    assert b.doc["nodes"]["stem"]["outputs"][0]["shape"] == [2, 6, 8, 8]  # the block re-inferred
    # A rename inside the block, made in Python while a browser patch naming the old id was in flight.
    base = b.doc["version"]
    widget._session._last_flush = 0.0
    inner["relu"].rename("act")
    b.receive()
    assert "stem/act" in b.doc["nodes"] and "stem/relu" not in b.doc["nodes"]
    reply = b.patch({"op": "meta", "node": "stem/relu", "meta": {"note": "hi"}}, base=base)
    assert reply["ok"], reply
    assert inner["act"].meta["note"] == "hi"


def test_node_entries_convert_like_any_other_dict() -> None:
    # The fast path for node entries must give exactly what the generic key-by-key conversion gives.
    from graphbuilder.widget.wire import OPAQUE, camel, node_to_wire

    def generic(value: Any) -> Any:
        if isinstance(value, dict):
            return {camel(k): (v if k in OPAQUE else generic(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [generic(v) for v in value]
        return value

    w = gb.GraphWidget(small())
    w.graph["conv"].meta["note"] = {"some_key": [1, 2]}
    doc = w._session.snapshot()
    whole = {**doc, "nodes": list(doc["nodes"].values())}
    assert to_wire(whole) == generic(whole)
    entry = doc["nodes"]["conv"]
    assert node_to_wire(entry)["inputNames"] == entry["input_names"] and node_to_wire(entry)["meta"] == entry["meta"]
    assert node_to_wire({"error_nodes": ["a"]}) == {"errorNodes": ["a"]}  # not an entry: converted generically


def test_rebuilt_entry_shares_unchanged_params_json_and_shows_new_shapes() -> None:
    w = gb.GraphWidget(small())
    b = Browser(w)
    before = w._session.snapshot()["nodes"]
    b.patch({"op": "params", "node": "conv", "params": {"padding": 0}})
    after = w._session.snapshot()["nodes"]
    assert after["relu"] is not before["relu"]  # re-inferred: a new entry with the new shape
    assert after["relu"]["outputs"] == [{"shape": [2, 4, 6, 6], "dtype": "float32"}]
    assert after["relu"]["params"] is before["relu"]["params"]  # its params did not change: JSON shared
    assert after["conv"]["params"]["padding"] == 0 and before["conv"]["params"]["padding"] == 1
    assert b.doc["nodes"]["relu"]["outputs"] == [{"shape": [2, 4, 6, 6], "dtype": "float32"}]


def test_changed_entries_travel_as_their_changed_fields() -> None:
    widget = gb.GraphWidget(small())
    b = Browser(widget)
    before = {k: dict(v) for k, v in b.doc["nodes"].items()}
    widget._on_message(widget, {"kind": "patch", "id": "p", "baseVersion": b.doc["version"],
                                "ops": [{"op": "params", "node": "conv", "params": {"out_channels": 6}}]}, [])
    (update,) = [m for m in b.sent if m["kind"] == "update"]
    fields = {c["id"]: c["fields"] for c in update["changes"] if c["op"] == "fields"}
    assert not [c for c in update["changes"] if c["op"] == "upsert"]  # no new node: no whole entry
    assert {"conv", "relu", "pool", "flat", "fc"} <= set(fields) and "x" not in fields
    assert "params" in fields["conv"] and set(fields["relu"]) <= {"outputs", "flops"}  # re-inferred: shapes only
    assert "numParams" in fields["fc"] and "outputs" not in fields["fc"]  # wider input, same output
    for node_id, changed in fields.items():  # only what changed travels, in the wire's naming
        assert changed and all(before[node_id][k] != v for k, v in changed.items())
    b.receive()
    fresh = widget.get_state()["document"]
    assert b.doc["nodes"] == {n["id"]: n for n in fresh["nodes"]}  # replaying the fields gives the document


# -- the editor cannot break a block's ports ------------------------------------------------------------------------
def grouped() -> gb.GraphWidget:
    g = small()
    g.replace_contents(group(g, ["conv", "relu"], name="stem"))
    return gb.GraphWidget(g)


def test_editor_cannot_remove_or_add_block_inputs(tmp_path: Any) -> None:
    widget = grouped()
    b = Browser(widget)
    g = widget.graph
    before, version = g.to_dict(), b.doc["version"]
    fragment = next(m for m in b.send("copy", nodes=["x"]) if m["kind"] == "copied")["fragment"]
    for op in ({"op": "remove", "nodes": ["stem/x"]},
               {"op": "add", "op_name": "input", "parent": "stem", "params": {"shape": [2, 3, 8, 8]}},
               {"op": "paste", "fragment": fragment, "parent": "stem"}):
        reply = b.patch(op)
        assert not reply["ok"] and "block 'stem'" in reply["errors"][0]["message"], reply
        assert reply["created"] == []
    assert g.to_dict() == before and b.doc["version"] == version
    widget.save(tmp_path / "g.graph.json")
    assert gb.Graph.load(tmp_path / "g.graph.json").to_dict() == before
    assert gb.compile(g)(torch.randn(2, 3, 8, 8)).shape == (2, 5)
    assert b.patch({"op": "ungroup", "node": "stem"})["ok"]


def test_removing_a_block_with_its_inner_nodes_selected_removes_the_block() -> None:
    widget = grouped()
    b = Browser(widget)
    reply = b.patch({"op": "remove", "nodes": ["stem/x", "stem", "stem/conv"]})
    assert reply["ok"], reply
    assert "stem" not in widget.graph and not any(i.startswith("stem") for i in b.doc["nodes"])


# -- every request is validated first and answered exactly once -------------------------------------------------------
def replies_to(sent: list[dict[str, Any]], rid: Any) -> list[dict[str, Any]]:
    return [m for m in sent if m.get("reply_to", "absent") == rid or m.get("reply", {}).get("id", "absent") == rid]


def deep_value(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


MALFORMED = [
    ("probed", {"kind": "probe", "source": "conv"}),
    ("probed", {"kind": "probe", "source": [["conv"], 0]}),
    ("probed", {"kind": "probe", "source": ["conv", "0"]}),
    ("probed", {"kind": "probe", "source": ["conv", -1]}),
    ("probed", {"kind": "probe", "source": ["conv", 10**40]}),
    ("probed", {"kind": "probe"}),
    ("copied", {"kind": "copy", "nodes": "conv"}),
    ("copied", {"kind": "copy", "nodes": [1, 2]}),
    ("copied", {"kind": "copy", "nodes": [["conv"]]}),
    ("update", {"kind": "action", "name": ["x"], "selection": []}),
    ("update", {"kind": "action", "name": {"a": 1}, "selection": []}),
    ("update", {"kind": "action", "name": "Insert GloRe", "selection": "conv"}),
    ("error", {"kind": ["patch"]}),
    ("error", {"kind": {"a": 1}}),
    ("error", {"kind": None}),
    ("update", {"kind": "patch", "ops": "remove"}),
    ("update", {"kind": "patch", "ops": [{"op": ["add"]}]}),
    ("update", {"kind": "patch", "ops": [{"op": "params", "node": "conv", "params": {"out_channels": 6}}],
                "base_version": "x"}),
    ("update", {"kind": "patch", "ops": [], "record": "no"}),
    ("update", {"kind": "patch", "ops": [{"op": "meta", "node": "conv", "meta": {"deep": deep_value(900)}}]}),
    ("update", {"kind": "patch", "ops": [{"op": "meta", "node": "conv", "meta": {"x": float("nan")}}]}),
    ("update", {"kind": "patch", "ops": [{"op": "rename", "node": "conv", "name": "c\ud800"}]}),
    ("update", {"kind": "patch", "ops": [{"op": "move", "positions": {"conv": [float("inf"), 0]}}]}),
    ("update", {"kind": "patch", "ops": [{"op": "add", "op_name": "relu", "position": [1]}]}),
    ("update", {"kind": "patch", "ops": [{"op": "connect", "source": ["x", 0], "target": "conv"}]}),
    ("update", {"kind": "patch", "ops": [{"op": "params", "node": "conv", "params": ["out_channels"]}]}),
    ("update", {"kind": "patch", "ops": [{"op": "group", "nodes": ["conv"], "name": 3}]}),
    ("update", {"kind": "patch", "ops": [{"op": "paste", "fragment": {"format": "graphbuilder.fragment",
                                                                       "nodes": [deep_value(900)]}}]}),
    ("update", {"kind": "undo", "extra": 1}),
    ("error", {"kind": "sync", "extra": 1}),
    ("exported", {"kind": "export_python", "extra": 1}),
]


@pytest.mark.parametrize("answer, message", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_malformed_request_gets_one_reply_and_changes_nothing(answer: str, message: dict[str, Any]) -> None:
    from graphbuilder.widget.session import Session

    g = small()
    sent: list[dict[str, Any]] = []
    session = Session(g, sent.append)
    before, history = g.to_dict(), (session._history.can_undo, session._history.can_redo)
    session.handle({**message, "id": "m1"})
    got = replies_to(sent, "m1")
    assert len(got) == 1 and got[0]["kind"] == answer, sent
    reply = got[0].get("reply", got[0])
    assert reply.get("ok") is False or answer == "error", reply
    assert g.to_dict() == before and session.version == 0
    assert (session._history.can_undo, session._history.can_redo) == history


def test_unanswerable_id_still_gets_one_reply() -> None:
    from graphbuilder.widget.session import Session

    sent: list[dict[str, Any]] = []
    Session(small(), sent.append).handle({"kind": "probe", "id": {"not": "hashable"}, "source": ["conv", 0]})
    assert len(sent) == 1 and sent[0]["kind"] == "probed" and sent[0]["reply_to"] is None and not sent[0]["ok"]


def test_wire_messages_of_any_shape_get_one_reply() -> None:
    widget = gb.GraphWidget(small())
    sent: list[dict[str, Any]] = []
    widget.send = lambda content, buffers=None: sent.append(content)
    for content in ({"kind": "probe", "id": "w1", "sourceNode": deep_value(900)}, ["not", "an", "object"]):
        sent.clear()
        widget._on_message(widget, content, [])
        assert len(sent) == 1 and sent[0]["kind"] in ("probed", "error"), sent


def test_python_add_that_raises_leaves_no_ghost_in_browser_or_history(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    g = widget.graph
    widget._session._last_flush = 0.0  # an event would be flushed at once
    events: list[dict[str, Any]] = []
    g.subscribe(events.append)
    with pytest.raises(gb.GraphError):
        g.add("conv2d", g["flat"], out_channels=3, kernel_size=3, name="ghost")  # (2, 4) into a conv: refused
    assert events == [] and "ghost" not in g
    widget.flush()
    b.receive()
    assert "ghost" not in b.doc["nodes"]
    g.add("relu", g["fc"], name="real")
    widget.flush()
    b.receive()
    assert widget.undo() and widget.redo()
    b.receive()
    assert "ghost" not in g and "ghost" not in b.doc["nodes"] and "real" in g


def test_view_inside_a_block_with_an_invalid_input_matches_the_graph() -> None:
    inner = gb.Graph("blk")
    bi = inner.input("bi", shape=(2, 4, 8, 8))
    inner.output(inner.add("relu", inner.add("conv2d", bi, out_channels=4, kernel_size=1, name="c"), name="d"))
    g = gb.Graph("g")
    a = g.add("conv2d", g.input("x", shape=(2, 3, 8, 8)), out_channels=4, kernel_size=1, name="a")
    g.output(g.add(inner, a, name="blk"))
    widget = gb.GraphWidget(g)
    b = Browser(widget)
    assert b.patch({"op": "params", "node": "a", "params": {"kernel_size": 9}})["ok"]  # 'a' fails: blk is invalid
    assert b.patch({"op": "params", "node": "blk/c", "params": {"out_channels": 5}})["ok"]
    for name in ("c", "d"):
        shown = b.doc["nodes"][f"blk/{name}"]["outputs"]
        assert shown and shown[0]["shape"] == list(g["blk"].block[name].shape) == [2, 5, 8, 8], (name, shown)


@pytest.mark.parametrize("levels", [700, 900])
def test_deep_or_unsaveable_meta_shows_in_the_editor_without_crashing(levels: int, tmp_path: Any) -> None:
    g = small()
    g["conv"].meta["deep"] = deep_value(levels)
    g["relu"].meta.update(nan=float("nan"), text="a\ud800b", obj=object())
    widget = gb.GraphWidget(g)
    b = Browser(widget)
    json.dumps(widget.get_state()["document"], allow_nan=False)  # what the comm sends: plain, finite JSON
    shown = b.doc["nodes"]["conv"]["meta"]["deep"]
    depth = 0
    while isinstance(shown, dict):
        shown, depth = shown["a"], depth + 1
    assert shown == "…" and depth < 100  # cut where the editor's view stops, marked
    assert b.doc["nodes"]["relu"]["meta"]["nan"] == "nan" and b.doc["nodes"]["relu"]["meta"]["text"] == "a\ufffdb"
    g["fc"].meta["deep"] = deep_value(levels)  # a Python-side edit, then an undo step
    g["fc"].update(out_features=6)
    widget.flush()
    b.receive()
    assert widget.undo()
    with pytest.raises(gb.GraphError, match="nests deeper"):
        widget.save(tmp_path / "g.graph.json")
    assert list(tmp_path.iterdir()) == []


def test_remove_or_move_naming_one_bad_id_is_skipped_whole(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    g = widget.graph
    before, version = g.to_dict(), b.doc["version"]
    reply = b.patch({"op": "remove", "nodes": ["relu", "ghost", "pool"]})
    assert not reply["ok"] and "ghost" in reply["errors"][0]["message"]
    reply = b.patch({"op": "move", "positions": {"conv": [1, 2], "ghost": [3, 4]}})
    assert not reply["ok"] and "ghost" in reply["errors"][0]["message"]
    assert g.to_dict() == before and b.doc["version"] == version and not widget._session._history.can_undo
    reply = b.patch({"op": "move", "positions": {"conv": [1, 2]}}, {"op": "remove", "nodes": ["ghost"]})
    assert [e["index"] for e in reply["errors"]] == [1] and g["conv"].meta["position"] == {"x": 1.0, "y": 2.0}
def test_fixits_request_and_apply_fix_is_one_undo_step(widget: gb.GraphWidget) -> None:
    b = Browser(widget)
    g = widget.graph
    skip = g.add("conv2d", g["x"], out_channels=4, kernel_size=1, name="skip")
    g.add("relu", g.add("add", g["relu"], skip, name="sum"), name="after")
    g["conv"].params["padding"] = 0  # relu's map 8x8 -> 6x6: sum no longer fits, after waits on it
    b.receive()
    msgs = b.send("fixits", node="after")  # asked from a node waiting on the root
    (answer,) = [m for m in msgs if m["kind"] == "fixits"]
    assert answer["ok"] and answer["replyTo"] == "r1" and answer["root"] == "sum"
    titles = [f["title"] for f in answer["fixes"]]
    assert titles[0] == "set padding=1 on 'conv'"
    msgs = b.send("apply_fix", fix=answer["fixes"][0])
    reply = [m["reply"] for m in msgs if m.get("reply")][-1]
    assert reply["ok"] and g.errors() == {} and g["conv"].params["padding"] == 1
    assert b.doc["nodes"]["after"]["error"] is None
    assert widget.undo() and g["conv"].params["padding"] == 0  # the fix was one step
    msgs = b.send("apply_fix", fix={"path": ["gone"], "params": {"padding": 1}})
    reply = [m["reply"] for m in msgs if m.get("reply")][-1]
    assert not reply["ok"] and "no node 'gone'" in reply["errors"][0]["message"]
    msgs = b.send("fixits", node="conv")
    assert [m for m in msgs if m["kind"] == "fixits"][0]["fixes"] == []  # conv fits: nothing to fix


def test_probe_checks_only_the_nodes_on_screen(widget: gb.GraphWidget) -> None:
    widget.graph.add("conv2d", widget.graph["x"], out_channels=2, kernel_size=1, name="side")
    b = Browser(widget)
    msgs = b.send("probe", source=["flat", 0], nodes=["fc", "conv"])
    (answer,) = [m for m in msgs if m["kind"] == "probed"]
    assert set(answer["targets"]) == {"conv"}  # conv feeds flat: a cycle; fc takes (2, 4)
    assert "side" not in answer["targets"]  # off screen: not checked now, checked when connected
    everything = widget._session.probe("flat", 0)
    assert "side" in everything and {"x", "relu", "pool", "flat"} <= set(everything)


def test_first_view_direction_and_height_from_the_graph_shape() -> None:
    from graphbuilder.widget.view import first_view, layers

    chain = small()  # a 7-node chain: top down in a tall canvas
    assert layers(chain) == [1] * 7
    w = gb.GraphWidget(chain)
    assert (w.direction, w.height) == first_view(chain) and w.direction == "TB" and 360 <= w.height <= 760
    wide = gb.Graph("wide")
    x = wide.input("x", shape=(2, 4))
    wide.output(wide.add("cat", *[wide.add("relu", x) for _ in range(8)], dim=1))
    assert layers(wide) == [1, 8, 1, 1] and first_view(wide)[0] == "LR"  # 8 branches side by side
    w = gb.GraphWidget(wide, direction="TB", height=400)  # given values win
    assert (w.direction, w.height) == ("TB", 400)
    for i, node in enumerate(chain):  # laid out left to right before (a saved file): the toolbar says so
        node.meta["position"] = {"x": 240.0 * i, "y": 0.0}
    assert first_view(chain)[0] == "LR"


def test_view_and_direction_from_the_browser_are_kept_in_widget_state(widget: gb.GraphWidget) -> None:
    view = {"x": -40.5, "y": 12.0, "zoom": 0.8, "root": None, "panels": {"palette": False}}
    widget.set_state({"view": view, "direction": "LR"})  # what the browser's model.save_changes() does
    state = widget.get_state()
    assert state["view"] == view and state["direction"] == "LR"
