"""`gb.diff`: random edits of random graphs are reported exactly; blocks, weights and the JSON form."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphbuilder as gb

ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu"]


@st.composite
def graph_and_edits(draw: st.DrawFn) -> tuple[gb.Graph, list[tuple[str, Any]]]:
    """A random DAG of linear, activation and add nodes over (4, 8) features, and a list of edits, each on
    a different node (so the expected diff is the edit list itself)."""
    g = gb.Graph("random")
    values = [g.input("x", shape=(4, 8))]
    for k in range(draw(st.integers(2, 9))):
        kind = draw(st.sampled_from(["linear", "act", "add"]))
        if kind == "linear":
            node = g.add("linear", draw(st.sampled_from(values)), out_features=8, bias=draw(st.booleans()),
                         name=f"n{k}")
        elif kind == "act":
            node = g.add(draw(st.sampled_from(ACTIVATIONS)), draw(st.sampled_from(values)), name=f"n{k}")
        else:
            node = g.add("add", draw(st.sampled_from(values)), draw(st.sampled_from(values)), name=f"n{k}")
        values.append(node)
    g.output(values[-1], name="out")

    inner = [n.name for n in g.nodes if n.op not in ("input", "output")]
    touched = draw(st.lists(st.sampled_from(inner), unique=True, max_size=len(inner))) if inner else []
    edits: list[tuple[str, Any]] = []
    for name in touched:
        edits.append((draw(st.sampled_from(["param", "rewire", "rename", "remove", "insert"])), name))
    return g, edits


def _signature(node: gb.Node) -> tuple[Any, ...]:
    return node.op, sorted(node.params.items()), tuple((p.node.name, p.index) for p in node.inputs if p)


def _apply(g: gb.Graph, edits: list[tuple[str, Any]]) -> dict[str, set[Any]]:
    """Apply the edits to `g` in place; return the expected diff as sets of names."""
    want: dict[str, set[Any]] = {"added": set(), "removed": set(), "renamed": set(), "params": set(),
                                 "rewired": set()}
    touched = {name for _, name in edits}
    # Renames last, and only of nodes no other edit rewired: a renamed and rewired node is, by definition,
    # a removed node plus an added one.
    edits = sorted(edits, key=lambda e: e[0] == "rename")
    signatures = [_signature(n) for n in g.nodes]
    for k, (kind, name) in enumerate(edits):
        node = g[name]
        if kind == "param":
            if node.op not in ("linear", "gelu"):
                continue  # no param worth changing
            node.update(**({"out_features": 6} if node.op == "linear" else {"approximate": "tanh"}))
            want["params"].add(name)
        elif kind == "rewire":
            current = {p.node for p in node.inputs if p is not None}
            later = g.descendants(node) | {node}
            choices = [n for n in g.nodes if n.op != "output" and n not in later and n not in current]
            if not choices:
                continue
            node.set_input(0, choices[0])
            want["rewired"].add(name)
        elif kind == "rename":
            if signatures.count(_signature(node)) > 1:
                continue  # a twin with the same op, params and inputs: the rename cannot be told apart
            if name in want["rewired"] or any(p is None or p.node.name in touched for p in node.inputs):
                continue  # its source is edited too; keep the expectation simple
            node.rename(f"{name}_renamed")
            want["renamed"].add((name, f"{name}_renamed"))
        elif kind == "remove":
            users = node.users
            node.remove(disconnect=True)
            want["removed"].add(name)
            want["rewired"].update(u.name for u in users)
        elif kind == "insert":
            # hardswish: an op no generated node has, so never taken for a rename; `node` may be invalid
            new = g.add("hardswish", node, name=f"inserted{k}", allow_unconnected=True)
            want["added"].add(new.name)
    want["rewired"] -= want["removed"]
    return want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph_and_edits())
def test_diff_reports_exactly_the_edits_made(case: tuple[gb.Graph, list[tuple[str, Any]]]) -> None:
    before, edits = case
    after = before.copy()
    want = _apply(after, edits)
    d = gb.diff(before, after)
    assert {p[-1] for p in d.added} == want["added"]
    assert {p[-1] for p in d.removed} == want["removed"]
    assert {(o[-1], n[-1]) for o, n in d.renamed} == want["renamed"]
    assert {c.path[-1] for c in d.changed if c.params} == want["params"]
    assert {p[-1] for p in d.rewired} == want["rewired"]
    assert bool(d) == any(want.values())
    assert not gb.diff(after, after.copy())
    json.dumps(d.to_json())


def _net() -> gb.Graph:
    g = gb.Graph("net")
    x = g.input("x", shape=(2, 3, 8, 8))
    h = g.add("conv2d", x, out_channels=4, kernel_size=3, padding=1, name="conv")
    g.output(g.add("linear", g.add("flatten", g.add("relu", h)), out_features=5, name="fc"))
    return g


def test_diff_of_a_param_edit_shows_params_and_shapes_and_prints() -> None:
    a = _net()
    b = a.copy()
    b["conv"].params["out_channels"] = 6
    d = gb.diff(a, b)
    conv = next(c for c in d.changed if c.path == ("conv",))
    assert conv.params == {"out_channels": (4, 6)}
    assert conv.shapes == ([[2, 4, 8, 8]], [[2, 6, 8, 8]])
    assert ("relu",) in [c.path for c in d.changed]  # shape-only change downstream
    assert not next(c for c in d.changed if c.path == ("relu",)).params
    text = str(d)
    assert "~ conv: out_channels: 4 -> 6; shape (2, 4, 8, 8) -> (2, 6, 8, 8)" in text


def test_diff_reports_weights_changed_added_and_dropped() -> None:
    a = _net()
    gb.store_weights(a, gb.compile(a))
    b = a.copy()
    b.weights["conv"] = {k: v.clone() for k, v in a.weights["conv"].items()}
    assert not gb.diff(a, b)  # equal values are no change
    b.weights["conv"]["weight"] = b.weights["conv"]["weight"] + 1
    del b.weights["fc"]
    d = gb.diff(a, b)
    assert {c.path[-1]: c.weights for c in d.changed} == {"conv": "changed", "fc": "dropped"}
    assert {c.path[-1]: c.weights for c in gb.diff(b, a).changed} == {"conv": "changed", "fc": "added"}


def test_diff_recurses_into_blocks_and_lists_edges() -> None:
    blk = gb.Graph("stage")
    i = blk.input("in", shape=(2, 4))
    blk.output(blk.add("relu", blk.add("linear", i, out_features=4, name="lin"), name="act"))
    a = gb.Graph("outer")
    a.output(a.add(blk, a.input("x", shape=(2, 4)), name="s1"))
    b = a.copy()
    inner = b["s1"].block
    assert inner is not None
    inner["lin"].params["out_features"] = 4
    extra = inner.add("tanh", inner["lin"], name="t")
    inner["act"].replace_input(inner["lin"], extra)
    d = gb.diff(a, b)
    assert d.added == [("s1", "t")]
    assert d.rewired == [("s1", "act")]
    assert (("s1", "t"), ("s1", "act")) in d.edges_added
    assert (("s1", "lin"), ("s1", "act")) in d.edges_removed
    assert d.to_json()["added"] == [["s1", "t"]]


def test_diff_pairs_a_rename_and_its_edges_are_unchanged() -> None:
    a = _net()
    b = a.copy()
    b["conv"].rename("stem")
    d = gb.diff(a, b)
    assert d.renamed == [(("conv",), ("stem",))]
    assert not d.added and not d.removed and not d.changed
    assert not d.edges_added and not d.edges_removed
