"""The graph IR's public API: building, editing, incremental inference, errors, blocks, custom ops, views."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import graphbuilder as gb
from graphbuilder.ir.schema import TensorSpec


def tiny() -> gb.Graph:
    g = gb.Graph("tiny")
    x = g.input("x", shape=(8, 3, 32, 32))
    h = g.add("conv2d", x, out_channels=16, kernel_size=3, padding=1)
    h = g.add("relu", h)
    h = g.add("adaptive_avg_pool2d", h, output_size=1)
    y = g.add("linear", g.add("flatten", h), out_features=10)
    g.output(y)
    return g


def test_issue_example_shapes_and_compile() -> None:
    g = tiny()
    assert g["linear"].shape == (8, 10)
    assert g["x"].dtype == "float32"
    model = gb.compile(g)
    assert isinstance(model, torch.fx.GraphModule)
    assert model(torch.randn(8, 3, 32, 32)).shape == (8, 10)


def test_compiled_equals_hand_written_module() -> None:
    g = tiny()
    model = gb.compile(g).eval()
    ref = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, 10)).eval()
    ref[0].load_state_dict(model.conv2d.state_dict())
    ref[4].load_state_dict(model.linear.state_dict())
    x = torch.randn(8, 3, 32, 32)
    assert torch.equal(model(x), ref(x))


def test_param_edit_reinfers_downstream_and_validates() -> None:
    g = tiny()
    conv = g["conv2d"]
    conv.params["out_channels"] = 32
    assert g["relu"].shape == (8, 32, 32, 32)
    assert g["linear"].shape == (8, 10)
    with pytest.raises(gb.GraphError, match="out_channels.*>= 1"):
        conv.params["out_channels"] = 0
    assert conv.params["out_channels"] == 32  # a rejected value changes nothing
    with pytest.raises(gb.GraphError, match="no parameter 'kernal_size'"):
        conv.update(kernal_size=3)


def test_incremental_inference_touches_only_downstream(monkeypatch: pytest.MonkeyPatch) -> None:
    g = gb.Graph("chain")
    x = g.input("x", shape=(2, 4))
    a = g.add("linear", x, out_features=4, name="a")
    b = g.add("relu", a, name="b")
    side = g.add("linear", x, out_features=3, name="side")
    c = g.add("linear", b, out_features=5, name="c")
    g.output(c)
    g.output(side, name="out2")
    g.infer()
    seen: list[str] = []
    original = g._infer_node
    monkeypatch.setattr(g, "_infer_node", lambda n: (seen.append(n.name), original(n)))
    a.params["bias"] = False  # same output shape: propagation stops at 'a'
    g.infer()
    assert seen == ["a"]
    seen.clear()
    a.params["out_features"] = 6  # shape changes: b and c re-infer, 'side' never does
    g.infer()
    assert seen == ["a", "b", "c"]


def test_rewire_rename_remove() -> None:
    g = gb.Graph("edit")
    x = g.input("x", shape=(2, 4))
    a = g.add("relu", x, name="a")
    b = g.add("tanh", x, name="b")
    c = g.add("add", a, a, name="c")
    g.output(c)
    c.replace_input(a, b)
    assert [p.node.name for p in c.inputs] == ["b", "b"]
    assert a.users == [] and b.users == [c]
    b.replace_all_uses_with(a)
    assert [p.node.name for p in c.inputs] == ["a", "a"]
    a.rename("first; drop table")
    assert g["first; drop table"] is a
    with pytest.raises(gb.GraphError, match="read by"):
        g.remove(a)
    g.remove(b)
    assert "b" not in g
    g.remove(a, disconnect=True)
    assert c.inputs == (None, None)
    assert "not connected" in str(c.error)
    with pytest.raises(gb.GraphError, match="not connected"):
        gb.compile(g)


def test_cycle_is_refused_and_named() -> None:
    g = gb.Graph("cyc")
    x = g.input("x", shape=(2, 4))
    a = g.add("relu", x, name="a")
    b = g.add("relu", a, name="b")
    c = g.add("relu", b, name="c")
    with pytest.raises(gb.GraphError) as err:
        a.replace_input(x, c)
    assert set(err.value.nodes) == {"a", "b", "c"}
    assert "cycle" in str(err.value)
    assert a.inputs[0].node is x  # unchanged


@pytest.mark.parametrize("build, match, nodes", [
    (lambda g, x: g.add("conv2dd", x), r"unknown op 'conv2dd': did you mean 'conv2d'", ()),
    (lambda g, x: g.add("conv2d", x, out_channels=4), "kernel_size' is required", ("conv2d",)),
    (lambda g, x: g.add("conv2d", x, out_channels=4, kernel_size=3.5), "must be an integer", ("conv2d",)),
    (lambda g, x: g.add("add", x), r"takes 2 input\(s\)", ("add",)),
    (lambda g, x: g.add("relu", x, name="x"), "duplicate node name 'x'", ("x",)),
    (lambda g, x: g.add("linear", x, out_features=2, bias="yes"), "true or false", ("linear",)),
])
def test_bad_input_raises_graph_error(build, match, nodes) -> None:
    g = gb.Graph("bad")
    x = g.input("x", shape=(8, 16, 32, 32))
    before = len(g)
    with pytest.raises(gb.GraphError, match=match) as err:
        build(g, x)
    assert isinstance(err.value, ValueError)
    assert err.value.nodes == nodes
    assert len(g) == before  # nothing half-added


def test_shape_mismatch_names_inputs_and_fix() -> None:
    g = gb.Graph("mismatch")
    x = g.input("x", shape=(8, 16, 32, 32))
    h = g.add("conv2d", x, out_channels=8, kernel_size=1, name="h")
    with pytest.raises(gb.GraphError) as err:
        g.add("add", x, h, name="sum")
    msg = str(err.value)
    assert "(8, 16, 32, 32)" in msg and "(8, 8, 32, 32)" in msg and "dim 1" in msg and "out_channels=16" in msg
    assert err.value.nodes[:1] == ("sum",) and {"x", "h"} <= set(err.value.nodes)
    with pytest.raises(gb.GraphError, match=r"expects input of shape \(N, C, H, W\)"):
        g.add("conv2d", g.add("flatten", x), out_channels=2, kernel_size=1)


def test_editing_into_a_bad_shape_marks_node_and_keeps_graph() -> None:
    g = tiny()
    g["conv2d"].params["kernel_size"] = 64  # larger than the 34x34 padded input
    assert g["conv2d"].error is not None and "conv2d" in g.errors()
    assert "fix 'conv2d' first" in str(g["relu"].error)
    with pytest.raises(gb.GraphError) as err:
        g.check()
    assert err.value.nodes[0] == "conv2d"
    g["conv2d"].params["kernel_size"] = 3
    assert g.errors() == {}


def test_weights_dropped_only_where_edits_reach() -> None:
    g = tiny()
    model = gb.compile(g)
    from graphbuilder.compile import store_weights

    store_weights(g, model)
    assert set(g.weights) == {"conv2d", "linear"}
    g["linear"].params["bias"] = False
    assert set(g.weights) == {"conv2d"}
    store_weights(g, gb.compile(g))
    g["conv2d"].params["out_channels"] = 8  # linear's input shape changes too
    g.infer()
    assert set(g.weights) == set()


def test_blocks_compile_to_submodules_and_adapt_shapes() -> None:
    block = gb.Graph("residual")
    bx = block.input("x", shape=(1, 4, 8, 8))
    h = block.add("conv2d", bx, out_channels=4, kernel_size=3, padding=1)
    block.output(block.add("relu", block.add("add", h, bx)))
    g = gb.Graph("net")
    x = g.input("img", shape=(3, 4, 16, 16))
    b1 = g.add(block, x)
    b2 = g.add(block, b1)
    g.output(b2)
    assert b2.shape == (3, 4, 16, 16)
    assert block["x"].shape == (1, 4, 8, 8)  # the original block is untouched
    assert b1.num_params == 4 * 4 * 9 + 4
    model = gb.compile(g)
    assert isinstance(model.residual, torch.fx.GraphModule) and isinstance(model.residual_1, torch.fx.GraphModule)
    t = torch.randn(3, 4, 16, 16)
    ref = torch.relu(model.residual.conv2d(t) + t)
    ref = torch.relu(model.residual_1.conv2d(ref) + ref)
    assert torch.equal(model(t), ref)
    bad = gb.Graph("other")
    y = bad.input("y", shape=(3, 5, 16, 16))
    with pytest.raises(gb.GraphError, match="inside block"):
        bad.add(block, y)


def test_custom_op_from_signature() -> None:
    @gb.op("scaled_linear", replace=True)
    class ScaledLinear(nn.Module):
        """Linear layer followed by a fixed scale."""

        def __init__(self, in_features: int, out_features: int, scale: float = 2.0) -> None:
            super().__init__()
            self.fc = nn.Linear(in_features, out_features)
            self.scale = scale

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) * self.scale

    try:
        assert "scaled_linear" in gb.ops.names()
        schema = gb.ops.get("scaled_linear")
        assert [p.name for p in schema.params] == ["out_features", "scale"]
        g = gb.Graph("custom")
        x = g.input("x", shape=(4, 6))
        y = g.add("scaled_linear", x, out_features=3, scale=0.5)
        g.output(y)
        assert y.shape == (4, 3) and y.num_params == 21
        model = gb.compile(g)
        t = torch.randn(4, 6)
        assert torch.equal(model(t), model.scaled_linear.fc(t) * 0.5)
        with pytest.raises(gb.GraphError, match="must be a finite number"):
            y.params["scale"] = "big"
    finally:
        gb.ops.unregister("scaled_linear")


def test_views_listing_summary_svg() -> None:
    g = tiny()
    text = str(g)
    assert "conv2d" in text and "(8, 16, 32, 32)" in text and "out_channels=16" in text
    s = g.summary()
    conv_flops = 2 * 8 * 16 * 32 * 32 * 3 * 3 * 3  # 2 FLOPs per multiply-add
    row = next(r for r in s.rows if r.name == "conv2d")
    assert row.params == 16 * 3 * 9 + 16 and row.flops == conv_flops
    assert s.total_params == sum(p.numel() for p in gb.compile(g).parameters())
    assert "total" in str(s) and "<table>" in s._repr_html_()
    svg = g._repr_svg_()
    assert svg.lstrip().startswith("<?xml") or "<svg" in svg
    assert "(8, 16, 32, 32)" in svg


def test_tensor_spec_json() -> None:
    assert TensorSpec((2, 3)).to_json() == {"shape": [2, 3], "dtype": "float32"}
    assert str(TensorSpec((2, 3), "int64")) == "(2, 3) int64"


def test_edit_inside_block_reinfers_outer_graph_and_notifies() -> None:
    block = gb.Graph("widen")
    bx = block.input("x", shape=(1, 4, 8, 8))
    block.output(block.add("conv2d", bx, out_channels=4, kernel_size=1, name="conv"))
    g = gb.Graph("outer")
    node = g.add(block, g.input("x", shape=(2, 4, 8, 8)), name="b")
    after = g.add("relu", node)
    g.output(after)
    events: list[dict] = []
    g.subscribe(events.append)
    node.block["conv"].params["out_channels"] = 6
    assert after.shape == (2, 6, 8, 8)
    assert events == [{"kind": "block", "node": "b", "event": {"kind": "params", "node": "conv",
                                                                   "params": ["out_channels"]}}]
    copy = g.copy()
    copy["b"].block["conv"].params["out_channels"] = 5
    assert copy["relu"].shape == (2, 5, 8, 8) and after.shape == (2, 6, 8, 8)


def test_copy_deep_copies_meta() -> None:
    class Tag:  # not JSON: copied with copy.deepcopy
        def __init__(self, items: list[int]) -> None:
            self.items = items

    g = tiny()
    node = next(iter(g))
    node.meta.update(position={"x": 1.0, "y": 2.0}, tags=["a", {"b": [1, 2]}], note="n", tag=Tag([1]))
    g.meta["notes"] = {"author": ["me"]}
    twin = g.copy()
    copied = twin[node.name].meta
    assert copied == {**node.meta, "tag": copied["tag"]} and copied["tag"].items == [1]
    copied["position"]["x"] = 9.0
    copied["tags"][1]["b"].append(3)
    copied["tag"].items.append(2)
    twin.meta["notes"]["author"].append("you")
    assert node.meta["position"] == {"x": 1.0, "y": 2.0} and node.meta["tags"] == ["a", {"b": [1, 2]}]
    assert node.meta["tag"].items == [1] and g.meta["notes"] == {"author": ["me"]}


def test_new_batch_size_keeps_weights_and_width_change_drops_exactly_the_misfits() -> None:
    g = gb.Graph("keep")
    x = g.input("x", shape=(4, 3, 8, 8))
    c1 = g.add("conv2d", x, out_channels=6, kernel_size=3, padding=1, name="c1")
    bn = g.add("batch_norm2d", c1, name="bn")
    c2 = g.add("conv2d", g.add("relu", bn), out_channels=5, kernel_size=1, name="c2")
    g.output(c2)
    gb.store_weights(g, gb.compile(g))
    x.params["shape"] = (16, 3, 8, 8)  # a new batch size: every weight still fits
    g.infer()
    assert set(g.weights) == {"c1", "bn", "c2"}
    c1.params["out_channels"] = 7  # c1 edited; bn and c2 now need 7-channel weights
    g.infer()
    assert set(g.weights) == set()
    gb.store_weights(g, gb.compile(g))
    c1.params["padding"] = 0  # edited node drops; spatial size changes, but bn/c2 weights still fit
    g.infer()
    assert set(g.weights) == {"bn", "c2"}


# -- editor-facing public edits: unconnected nodes, variadic ports, in-place replacement --------------------
def test_add_allow_unconnected_keeps_node_with_error_until_wired() -> None:
    g = gb.Graph("draw")
    x = g.input("x", shape=(2, 3, 8, 8))
    with pytest.raises(gb.GraphError, match="allow_unconnected"):
        g.add("conv2d", None, out_channels=4, kernel_size=3)
    conv = g.add("conv2d", out_channels=4, kernel_size=3, allow_unconnected=True)
    assert conv.inputs == (None,)
    assert "not connected" in conv.error.message
    conv.set_input(0, x)
    assert conv.error is None and conv.shape == (2, 4, 6, 6)  # (8 - 3) + 1 = 6
    # A node whose shapes do not fit raises (graph unchanged) unless unconnected nodes are allowed.
    y = g.input("y", shape=(2, 5, 8, 8))
    with pytest.raises(gb.GraphError, match="add"):
        g.add("add", x, y, name="bad")
    assert "bad" not in g
    bad = g.add("add", x, y, name="bad", allow_unconnected=True)
    assert bad.error is not None and "bad" in g
    with pytest.raises(gb.GraphError, match="out_channels"):  # params are still validated at once
        g.add("conv2d", out_channels=0, kernel_size=3, allow_unconnected=True)
    with pytest.raises(gb.GraphError, match="takes 1"):  # so is arity
        g.add("relu", x, y, allow_unconnected=True)


def test_variadic_ports_grow_and_shrink() -> None:
    g = gb.Graph("cat")
    a, b, c = (g.input(n, shape=(2, k, 4, 4)) for n, k in (("a", 1), ("b", 2), ("c", 3)))
    cat = g.add("cat", a, b, dim=1)
    assert cat.shape == (2, 3, 4, 4)
    events: list[dict] = []
    g.subscribe(events.append)
    index = cat.add_input_port(c)
    assert index == 2 and cat.shape == (2, 6, 4, 4) and cat in c.users
    assert events[-1] == {"kind": "inputs", "node": "cat"}
    free = cat.add_input_port()
    assert cat.inputs[free] is None and "not connected" in cat.error.message
    cat.remove_input_port(free)
    cat.remove_input_port(1)  # b goes; c moves down to port 1
    assert [p.node.name for p in cat.inputs] == ["a", "c"] and cat.shape == (2, 4, 4, 4)
    assert cat not in b.users
    with pytest.raises(gb.GraphError, match="keeps its first 1"):
        cat.remove_input_port(0)
    relu = g.add("relu", a)
    with pytest.raises(gb.GraphError, match="fixed number"):
        relu.add_input_port(b)
    with pytest.raises(gb.GraphError, match="cycle"):
        cat.add_input_port(g.add("relu", cat, name="after"))
    assert len(cat.inputs) == 2  # the refused port was not kept


def test_replace_contents_keeps_object_and_listeners_and_block_events() -> None:
    inner = gb.Graph("inner")
    inner.output(inner.add("relu", inner.input("x", shape=(2, 4)), name="r"), name="y")
    g = gb.Graph("outer")
    g.output(g.add("linear", g.input("x", shape=(2, 3)), out_features=4, name="fc"))
    events: list[dict] = []
    g.subscribe(events.append)
    other = g.copy("renamed")
    other.add(inner, other["fc"], name="blk")
    held = g
    g.replace_contents(other)
    assert held is g and g.name == "renamed" and "blk" in g and len(other) == 0
    assert events[-1] == {"kind": "replace", "node": None}
    assert all(n.graph is g for n in g.nodes)
    # Edits inside a block that arrived by replacement reach this graph's listeners and re-infer the block.
    g["blk"].block.add("linear", g["blk"].block["r"], out_features=7, name="grow")
    g["blk"].block["y"].set_input(0, g["blk"].block["grow"])
    assert events[-1]["kind"] == "block" and events[-1]["node"] == "blk"
    assert g["blk"].shape == (2, 7)
    with pytest.raises(gb.GraphError, match="itself"):
        g.replace_contents(g)


def _with_block_and_weights() -> gb.Graph:
    inner = gb.Graph("res")
    xi = inner.input("x", shape=(2, 4, 8, 8))
    inner.output(inner.add("add", inner.add("conv2d", xi, out_channels=4, kernel_size=3, padding=1, name="c"), xi))
    g = gb.Graph("outer")
    x = g.input("x", shape=(2, 3, 8, 8))
    stem = g.add("conv2d", x, out_channels=4, kernel_size=1, name="stem")
    b = g.add(inner, stem, name="res")
    g.output(g.add("linear", g.add("flatten", g.add("adaptive_avg_pool2d", b, output_size=1)), out_features=5,
                   name="fc"))
    gb.store_weights(g, gb.compile(g))
    for i, node in enumerate(g):
        node.meta["position"] = {"x": float(i), "y": 0.0}
    return g


def test_snapshot_restores_the_graph_independently() -> None:
    from graphbuilder.ir.snapshot import restore, snapshot

    g = _with_block_and_weights()
    snap = snapshot(g)
    back = restore(snap)
    assert back.to_dict() == g.to_dict() == g.copy().to_dict()
    assert [n.shape for n in back] == [n.shape for n in g] and back["res"].block is not g["res"].block
    assert back.weights["fc"]["weight"] is g.weights["fc"]["weight"]  # tensors shared, as Graph.copy does
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(gb.compile(back)(x), gb.compile(g)(x))
    # Editing the restored graph (or the original) leaves the snapshot as it was: it restores again unchanged.
    back["fc"].params["out_features"] = 7
    back["stem"].meta["position"]["x"] = 99.0
    back["res"].block["c"].params["kernel_size"] = 1
    g["fc"].meta["position"]["y"] = -1.0
    again = restore(snap)
    assert again["fc"].params["out_features"] == 5 and again["stem"].meta["position"] == {"x": 1.0, "y": 0.0}
    assert again["res"].block["c"].params["kernel_size"] == 3 and again["fc"].meta["position"]["y"] == 0.0


def test_snapshot_shares_exactly_the_unchanged_nodes() -> None:
    from graphbuilder.ir.snapshot import snapshot

    g = _with_block_and_weights()
    first = snapshot(g)
    g["fc"].params["out_features"] = 6  # changes fc and the output only
    g["stem"].meta["position"] = {"x": 5.0, "y": 5.0}  # a browser move: a new value
    g.infer()
    second = snapshot(g, first)
    old = {s.name: s for s in first.nodes}
    changed = {s.name for s in second.nodes if s is not old[s.name]}
    assert changed == {"fc", "output", "stem", "res"}  # blocks are re-recorded, sharing their inner nodes
    res = {s.name: s for s in second.nodes}["res"]
    assert all(a is b for a, b in zip(old["res"].block.nodes, res.block.nodes, strict=True))
    assert second.weights["stem"] is first.weights["stem"] and "fc" not in second.weights  # fc's weights no longer fit
    # Nested in-place meta changes keep the outer value, so only a snapshot without `previous` sees them.
    g["x"].meta["position"]["x"] = 42.0
    assert {s.name: s for s in snapshot(g, second).nodes}["x"].meta["position"]["x"] == 0.0
    assert {s.name: s for s in snapshot(g).nodes}["x"].meta["position"]["x"] == 42.0


# -- blocks keep as many inner inputs as ports --------------------------------------------------------------------
def _blocked() -> gb.Graph:
    inner = gb.Graph("res")
    bx = inner.input("bi", shape=(2, 4))
    inner.output(inner.add("relu", bx, name="r"), name="bo")
    g = gb.Graph("outer")
    x = g.input("x", shape=(2, 4))
    g.output(g.add("linear", g.add(inner, x, name="blk"), out_features=3, name="fc"))
    return g


def _still_whole(g: gb.Graph) -> None:
    """The graph reopens, compiles and ungroups."""
    assert gb.Graph.from_dict(g.to_dict()).to_dict() == g.to_dict()
    assert gb.compile(g)(torch.randn(2, 4)).shape == (2, 3)
    assert "blk" not in gb.passes.ungroup(g, "blk")


def test_removing_a_block_input_node_is_refused() -> None:
    g = _blocked()
    before = g.to_dict()
    with pytest.raises(gb.GraphError, match="port of block 'blk'") as err:
        g["blk"].block.remove("bi", disconnect=True)
    assert "bi" in err.value.nodes
    assert g.to_dict() == before
    _still_whole(g)


def test_adding_an_input_inside_a_block_is_refused() -> None:
    g = _blocked()
    before = g.to_dict()
    with pytest.raises(gb.GraphError, match="block 'blk'"):
        g["blk"].block.input("extra", shape=(2, 4))
    with pytest.raises(gb.GraphError, match="block 'blk'"):
        g["blk"].block.add("input", allow_unconnected=True, shape=(2, 4))
    assert g.to_dict() == before
    _still_whole(g)


def test_replacing_a_block_body_keeps_its_port_count() -> None:
    g = _blocked()
    other = gb.Graph("two")
    a, b = other.input("a", shape=(2, 4)), other.input("b", shape=(2, 4))
    other.output(other.add("add", a, b))
    with pytest.raises(gb.GraphError, match="1 input"):
        g["blk"].block.replace_contents(other)
    _still_whole(g)
    same = gb.Graph("one")
    same.output(same.add("sigmoid", same.input("z", shape=(2, 4))))
    g["blk"].block.replace_contents(same)  # the same number of ports: fine
    _still_whole(g)


def test_block_marks_survive_copy_and_snapshot() -> None:
    from graphbuilder.ir.snapshot import restore, snapshot

    for g in (_blocked().copy(), restore(snapshot(_blocked())), gb.Graph.from_dict(_blocked().to_dict())):
        with pytest.raises(gb.GraphError, match="port of block 'blk'"):
            g["blk"].block.remove("bi", disconnect=True)


def test_ungroup_refuses_a_user_of_a_missing_block_output() -> None:
    g = _blocked()
    inner = g["blk"].block
    inner.output(inner["r"], name="bo2")
    g.infer()
    g.output(g["blk"][1], name="second")
    inner.remove("bo2")
    with pytest.raises(gb.GraphError, match="reads output 1 of block 'blk'"):
        gb.passes.ungroup(g, "blk")


def test_op_check_that_trips_on_an_odd_rank_is_a_graph_error() -> None:
    g = gb.Graph("g")
    scalar = g.add("mean", g.input("x", shape=(2, 3)), dim=(0, 1))  # rank 0: multihead attention's check indexes it
    with pytest.raises(gb.GraphError, match="expects"):
        g.add("multihead_attention", scalar, scalar, scalar, num_heads=1)
    node = g.add("multihead_attention", scalar, scalar, scalar, num_heads=1, allow_unconnected=True)
    assert isinstance(node.error, gb.GraphError)
    assert gb.GraphWidget(g).get_state()["document"]["totals"]["errors"] == 1
