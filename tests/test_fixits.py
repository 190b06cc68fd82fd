"""Fix-its (graphbuilder/passes/fixits.py): root errors, and edits that make a failing node fit.

Every fix `fixits` returns is checked the way a user would: applied to a copy of the graph, after which the
graph must have no errors at all (these graphs have one mistake each).
"""

from __future__ import annotations

import pytest
from models import MODELS

import graphbuilder as gb
from graphbuilder.passes.fixits import Fix, fixits, root_errors, root_of


def residual_block(padding: int = 1) -> gb.Graph:
    """x -> stem -> res(c1 -> r1 -> sum(r1, x)) -> act -> out: c1's padding decides whether sum fits."""
    inner = gb.Graph("resblock")
    xi = inner.input("x", shape=(2, 8, 16, 16))
    c1 = inner.add("conv2d", xi, out_channels=8, kernel_size=3, padding=1, name="c1")
    inner.output(inner.add("add", inner.add("relu", c1, name="r1"), xi, name="sum"), name="y")
    g = gb.Graph("blocks")
    x = g.input("x", shape=(2, 3, 16, 16))
    stem = g.add("conv2d", x, out_channels=8, kernel_size=1, name="stem")
    g.output(g.add("relu", g.add(inner, stem, name="res"), name="act"), name="out")
    g["res"].block["c1"].params["padding"] = padding  # an edit records the error (builders refuse it)
    return g


def assert_each_fix_makes_graph_valid(g: gb.Graph, fixes: list[Fix]) -> None:
    before = g.to_dict()
    for fix in fixes:
        work = g.copy()
        fix.apply(work)
        assert work.errors() == {}, (fix.title, work.errors())
    assert g.to_dict() == before  # trying fixes never touches the graph


def test_spatial_mismatch_in_residual_block_offers_padding_first() -> None:
    g = residual_block(padding=0)  # c1 maps 16x16 to 14x14; sum adds it to the 16x16 input
    assert set(g.errors()) == {"res", "act", "out"}
    assert root_errors(g) == [("res", "sum")]  # one mistake, one root
    assert root_of(g, "out") == ("res", "sum") and root_of(g, ("res", "sum")) == ("res", "sum")
    assert root_of(g, "stem") is None
    fixes = fixits(g, "out")  # asked from a node waiting on the root: the root's fixes
    titles = [f.title for f in fixes]
    assert titles[0] == "set padding=1 on 'c1'"
    assert not any("out_channels" in t for t in titles)
    assert any(t.startswith("insert upsample(size=(16, 16)) between 'r1' and 'sum'") for t in titles)
    assert_each_fix_makes_graph_valid(g, fixes)
    fixes[0].apply(g)
    assert g.errors() == {} and g["res"].block["c1"].params["padding"] == 1


def test_channel_mismatch_offers_out_channels_and_a_1x1_conv() -> None:
    g = gb.Graph("ch")
    x = g.input("x", shape=(2, 8, 8, 8))
    a = g.add("conv2d", x, out_channels=8, kernel_size=3, padding=1, name="a")
    g.output(g.add("add", g.add("batch_norm2d", a, name="bn"), x, name="sum"), name="out")
    a.params["out_channels"] = 6
    fixes = fixits(g, "sum")
    titles = [f.title for f in fixes]
    assert "set out_channels=8 on 'a'" in titles
    assert "insert a 1x1 conv2d(out_channels=8) between 'bn' and 'sum'" in titles
    assert not any("padding" in t for t in titles)  # the spatial size is right: no padding "fix"
    assert_each_fix_makes_graph_valid(g, fixes)
    created = next(f for f in fixes if f.insert).apply(g)
    assert created == ["conv2d"] and g["conv2d"].meta["inserted_by"] == "fixit"
    assert g["sum"].inputs[0].node.name == "conv2d" and g.errors() == {}


def test_flatten_is_never_asked_for_channels() -> None:
    g = gb.Graph("flat")
    x = g.input("x", shape=(2, 3, 8, 8))
    p = g.add("max_pool2d", g.add("conv2d", x, out_channels=8, kernel_size=3, padding=1, name="conv"),
              kernel_size=2, name="pool")
    flat = g.add("flatten", p, name="flat")  # (2, 128)
    fc = g.add("linear", g.add("flatten", x, name="fx"), out_features=100, name="fc")  # (2, 100)
    s = g.add("relu", fc, name="s")
    s.set_input(0, flat)  # fine
    g.output(g.add("add", flat, flat, name="sum"), name="out")
    g["sum"].set_input(1, fc)  # 128 vs 100
    message = g.errors()["sum"].message
    assert "do not match at dim 1 (128 vs 100)" in message and "out_channels" not in message
    fixes = fixits(g, "sum")
    titles = [f.title for f in fixes]
    assert titles[0] == "set out_features=128 on 'fc'"
    assert not any("flat'" in t and "set " in t for t in titles)  # nothing set on either flatten
    assert_each_fix_makes_graph_valid(g, fixes)


def test_kernel_larger_than_input_gets_padding_on_the_node_itself() -> None:
    g = gb.Graph("k")
    x = g.input("x", shape=(1, 3, 4, 4))
    g.output(g.add("conv2d", x, out_channels=4, kernel_size=3, name="conv"), name="out")
    g["conv"].params["kernel_size"] = 5
    fixes = fixits(g, "conv")
    titles = [f.title for f in fixes]
    assert titles[:2] == ["set padding=1 on 'conv'", "set padding=2 on 'conv'"]
    assert "set kernel_size=3 on 'conv'" in titles or len(titles) == 4
    assert_each_fix_makes_graph_valid(g, fixes)


def test_no_fix_for_a_broadcast_that_only_fits_by_accident() -> None:
    # A stride of 2 on the last conv makes a 1x1 map, which broadcasts onto 4x4: fits, but not a fix.
    g = gb.Graph("b")
    x = g.input("x", shape=(1, 4, 4, 4))
    c = g.add("conv2d", x, out_channels=4, kernel_size=3, padding=1, name="c")
    g.output(g.add("add", c, x, name="sum"), name="out")
    c.params["padding"] = 0  # 2x2
    titles = [f.title for f in fixits(g, "sum", limit=10)]
    assert "set padding=1 on 'c'" in titles
    assert not any("stride" in t for t in titles)


def test_unconnected_input_and_valid_nodes_get_no_fixes() -> None:
    g = residual_block()
    assert fixits(g, "act") == [] and root_errors(g) == []
    node = g.add("relu", None, name="loose", allow_unconnected=True)
    assert node.error is not None and root_errors(g) == [("loose",)]
    assert fixits(g, "loose") == []  # the fix is a wire, which the user draws


def test_fix_json_round_trip_and_bad_input() -> None:
    g = residual_block(padding=0)
    fix = fixits(g, ("res", "sum"))[2]
    assert Fix.from_json(fix.to_json()) == fix
    for bad, words in [(None, "must be an object"), ({"path": []}, "non-empty list"),
                       ({"path": ["a"], "params": 3}, "params must be an object"),
                       ({"path": ["a"], "port": -1}, "port must be an input index")]:
        with pytest.raises(gb.GraphError, match=words):
            Fix.from_json(bad)
    with pytest.raises(gb.GraphError, match="no node 'res/gone'"):
        Fix("t", ("res", "gone"), {"padding": 1}).apply(g)


def test_imported_resnet50_root_error_deep_in_a_stage() -> None:
    module, x = MODELS["resnet50"]()
    g = gb.from_module(module, (x,))
    g["layer3"].block["2"].block["conv2"].params["padding"] = 0
    assert root_errors(g) == [("layer3", "2", "add")]
    assert root_of(g, "fc") == ("layer3", "2", "add")
    fixes = fixits(g, "fc", budget_s=5.0)
    assert fixes[0].title == "set padding=1 on 'conv2'" and fixes[0].path == ("layer3", "2", "conv2")
    assert_each_fix_makes_graph_valid(g, fixes)
