"""The IR's work per edit is proportional to what the edit touches (counted, never timed), and `lint` catches
broken invariants. benchmarks/bench_scale.py measures the times these counts imply."""

from __future__ import annotations

import gc
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphbuilder as gb
from graphbuilder.ir import collector
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph


@pytest.fixture
def inferred(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts `Graph._infer_node` calls by node name (the real method runs)."""
    counts: Counter[str] = Counter()
    original = Graph._infer_node

    def counting(self: Graph, node: gb.Node) -> None:
        counts[node.name] += 1
        original(self, node)

    monkeypatch.setattr(Graph, "_infer_node", counting)
    return counts


def chain(n: int) -> gb.Graph:
    g = gb.Graph("chain")
    h = g.input("x", shape=(1, 4, 8, 8))
    for k in range(n):
        h = g.add("conv2d", h, out_channels=4, kernel_size=3, padding=1, name=f"conv{k}")
        h = g.add("relu", h, name=f"relu{k}")
    g.output(h, name="out")
    return g


def test_building_infers_each_node_once_and_keeps_the_order(inferred: Counter[str]) -> None:
    g = chain(200)
    assert len(g) == 402
    assert set(inferred.values()) == {1}, "each add infers its own node only"
    order = g.topological_order()
    g.add("relu", g["relu199"], name="tail")
    assert g.topological_order() is order, "an appended node extends the cached order; nothing is recomputed"
    assert order[-1] is g["tail"]
    g.lint()


def test_an_edit_re_infers_only_nodes_whose_inputs_changed(inferred: Counter[str]) -> None:
    g = chain(100)
    inferred.clear()
    g["conv0"].update(kernel_size=1, padding=0)  # same output shape: nothing downstream changes
    g.infer()
    assert dict(inferred) == {"conv0": 1}
    inferred.clear()
    g["conv0"].update(padding=1)  # 4x8x8 -> 4x10x10: every node after it changes
    g.infer()
    assert len(inferred) == len(g) - 1 and set(inferred.values()) == {1}
    assert g["out"].shape == (1, 4, 10, 10)
    inferred.clear()
    g["conv99"].update(kernel_size=1, padding=0)
    assert g["out"].shape == (1, 4, 10, 10)
    assert dict(inferred) == {"conv99": 1}, "reading a shape refreshes only what is dirty"
    g.lint()


def test_rewiring_to_an_earlier_node_keeps_the_order_and_a_later_one_recomputes_it() -> None:
    g = chain(5)
    order = g.topological_order()
    g["relu3"].set_input(0, g["conv0"])  # conv0 comes before relu3: no cycle check needed, order still valid
    assert g.topological_order() is order
    side = g.add("relu", g["x"], name="side")  # appended last, then read by an early node
    g["conv1"].set_input(0, side)
    fresh = g.topological_order()
    assert fresh.index(side) < fresh.index(g["conv1"])
    g.lint()
    with pytest.raises(GraphError, match="cycle"):
        g["conv0"].set_input(0, g["relu4"])
    g.lint()


def reference_unique(base: str, taken: set[str]) -> str:
    """The documented rule, straightforwardly: `base`, else the first free ``base_i`` from i = 1."""
    if base not in taken:
        return base
    i = 1
    while f"{base}_{i}" in taken:
        i += 1
    return f"{base}_{i}"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "add", "add", "remove", "rename"]), st.integers(0, 30)),
                max_size=60))
def test_unique_names_are_the_first_free_suffix(steps: list[tuple[str, int]]) -> None:
    """Remembering the free suffix (linear naming) gives the same names as searching from 1 every time."""
    g = gb.Graph("names")
    x = g.input("x", shape=(1, 4))
    for action, k in steps:
        others = [n for n in g if n is not x]
        if action == "add":
            expected = reference_unique("relu", set(g._nodes))
            assert g.add("relu", x).name == expected
        elif others and action == "remove":
            victim = others[k % len(others)]
            if not victim.users:
                g.remove(victim)
        elif others:
            node = others[k % len(others)]
            new = f"relu_{k}"
            if new not in g:
                node.rename(new)
    g.lint()


def test_lint_names_what_is_broken() -> None:
    g = chain(3)
    g.lint()
    relu = g["relu0"]
    del g["conv0"]._users[relu]  # a user that its input does not list
    with pytest.raises(GraphError, match="lint") as e:
        g.lint()
    assert "relu0" in " ".join(e.value.nodes) or "conv0" in " ".join(e.value.nodes)

    g = chain(3)
    order = g.topological_order()
    order[1], order[2] = order[2], order[1]  # a cached order where a node precedes its input
    with pytest.raises(GraphError, match="lint"):
        g.lint()

    g = chain(3)
    g._nodes["alias"] = g["relu1"]  # stored under a name that is not its own
    with pytest.raises(GraphError, match="lint"):
        g.lint()


def test_lint_checks_inside_blocks() -> None:
    inner = chain(2)
    g = gb.Graph("outer")
    x = g.input("x", shape=(1, 4, 8, 8))
    g.output(g.add(inner, x, name="stage"), name="out")
    g.lint()
    block = g["stage"].block
    assert block is not None
    del block["conv0"]._users[block["relu0"]]
    with pytest.raises(GraphError, match="lint") as e:
        g.lint()
    assert any(name.startswith("stage/") for name in e.value.nodes)


def test_collector_pause_restores_the_users_setting() -> None:
    was = gc.isenabled()
    try:
        gc.enable()
        with collector.paused():
            assert not gc.isenabled()
            with collector.paused():
                assert not gc.isenabled()
            assert not gc.isenabled(), "a nested pause does not switch the collector back on early"
        assert gc.isenabled()
        gc.disable()  # a user who turned it off keeps it off
        with collector.paused():
            pass
        assert not gc.isenabled()
        with pytest.raises(ValueError), collector.paused():
            raise ValueError
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


@pytest.fixture
def entries_built(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts editor document entries rebuilt after a patch, by node id (the real `rebuilt_entry` runs)."""
    from graphbuilder.widget import incremental

    counts: Counter[str] = Counter()
    original = incremental.rebuilt_entry

    def counting(node: gb.Node, node_id: str, *args: object) -> dict:
        counts[node_id] += 1
        return original(node, node_id, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(incremental, "rebuilt_entry", counting)
    return counts


def test_an_editor_reply_rebuilds_only_what_the_patch_changed(entries_built: Counter[str]) -> None:
    from graphbuilder.widget.document import FlopCache, apply_changes, document
    from graphbuilder.widget.session import Session

    g = chain(1000)
    sent: list[dict] = []
    session = Session(g, sent.append)
    doc = session.snapshot()

    def patch(*ops: dict) -> list[dict]:
        nonlocal doc
        sent.clear()
        entries_built.clear()
        session.handle({"kind": "patch", "id": "p", "base_version": session.version, "ops": list(ops)})
        (update,) = [m for m in sent if m["kind"] == "update"]
        doc = apply_changes(doc, update["changes"], update["version"])
        return update["changes"]

    assert patch() == [] and not entries_built  # an empty patch looks at nothing
    patch({"op": "params", "node": "conv999", "params": {"kernel_size": 1, "padding": 0}})
    assert set(entries_built) == {"conv999"}, "a shape-preserving edit rebuilds its own entry only"
    patch({"op": "rename", "node": "conv500", "name": "mid"})
    assert set(entries_built) == {"mid", "relu500"}, "a rename rebuilds the node and its users (they name it)"
    patch({"op": "move", "positions": {"relu10": [5.0, 7.0]}})
    assert set(entries_built) == {"relu10"}
    changes = patch({"op": "params", "node": "conv0", "params": {"padding": 0}})
    assert len(entries_built) == len(g) - 1 and "x" not in entries_built, "the edited node and every node after it"
    assert {c["op"] for c in changes} == {"fields", "totals"}
    fresh = document(g, session.version, FlopCache())  # the browser's copy equals a document built afresh
    assert doc["nodes"] == fresh["nodes"] and doc["totals"] == fresh["totals"]
