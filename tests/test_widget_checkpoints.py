"""Named checkpoints in the editor: compare the graph with one (coloured diff), return to one (one undo step),
and their record in the widget state that is saved with the notebook."""

from __future__ import annotations

import json

import pytest
from models import resnet50

import graphbuilder as gb
from graphbuilder.passes import insert_glore


def small() -> gb.Graph:
    g = gb.Graph("small")
    x = g.input("x", shape=(2, 3, 8, 8))
    c = g.add("conv2d", x, out_channels=4, kernel_size=3, padding=1, name="conv")
    g.output(g.add("linear", g.add("flatten", g.add("relu", c, name="relu"), name="flat"), out_features=5,
                   name="fc"), name="out")
    return g


def test_checkpoint_compare_and_restore() -> None:
    w = gb.GraphWidget(small())
    gb.store_weights(w.graph, gb.compile(w.graph))
    w.checkpoint("start")
    state = w.get_state()["checkpoints"]
    assert set(state) == {"start"} and state["start"]["nodes"] == 6
    assert gb.Graph.from_dict(state["start"]["graph"]).to_dict() == w.graph.to_dict()
    json.dumps(state)  # travels in the notebook's widget state

    g = w.graph
    g["conv"].params["out_channels"] = 6  # changes conv; relu, flat and fc only change shape (fc drops weights)
    g.add("gelu", g["fc"], name="extra")
    d = w.compare("start")
    assert d is not None and d.added == [("extra",)]
    assert w.highlights == {"extra": "added", "conv": "changed", "fc": "changed"}
    assert [(e["source"], e["target"]) for e in w.edge_styles] == [("fc", "extra")]

    w.restore("start")
    assert w.graph is g and w.graph.to_dict() == gb.Graph.from_dict(state["start"]["graph"]).to_dict()
    assert set(w.graph.weights) == {"conv", "fc"} and w.highlights == {}
    assert not gb.diff(w._checkpoints["start"], w.graph)
    assert w.undo() and "extra" in w.graph  # restoring was one undo step

    assert w.compare(None) is None and w.highlights == {}
    with pytest.raises(gb.GraphError, match="no checkpoint 'nope'.*'start'"):
        w.compare("nope")
    with pytest.raises(gb.GraphError, match="non-empty name"):
        w.checkpoint(" ")


def test_apply_glore_colours_the_inserted_units_inside_blocks() -> None:
    import torch

    g = gb.from_module(resnet50(width=8), (torch.randn(1, 3, 32, 32),))
    w = gb.GraphWidget(g)
    w.apply(lambda graph: insert_glore(graph, "res4x3"))
    added = {k for k, v in w.highlights.items() if v == "added"}
    units = {k for k in added if "glore" in k}
    assert len(units) == 3 and all(k.startswith("layer3/") for k in units), added
