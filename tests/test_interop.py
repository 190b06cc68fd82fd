"""gb.to_networkx / gb.to_pyg: nodes, edges along the dataflow and the documented feature layout, checked
against a hand-built graph and an imported ResNet (reference: the graph's own nodes and shapes)."""

from __future__ import annotations

import math

import networkx as nx
import pytest
import torch
from models import MODELS

import graphbuilder as gb
from graphbuilder.export.interop import PARAM_SLOTS, SHAPE_FEATURES, feature_names, op_vocabulary


def _residual() -> gb.Graph:
    block = gb.Graph("res")
    bx = block.input("x", shape=(2, 8, 4, 4))
    block.output(block.add("add", block.add("conv2d", bx, out_channels=8, kernel_size=3, padding=1), bx))
    g = gb.Graph("net")
    x = g.input("x", shape=(2, 3, 4, 4))
    h = g.add("conv2d", x, name="stem", out_channels=8, kernel_size=1, bias=False)
    h = g.add(block, h, name="b1")
    g.output(g.add("relu", h))
    return g


def test_networkx_collapsed_and_expanded() -> None:
    g = _residual()
    flat = gb.to_networkx(g)
    assert isinstance(flat, nx.MultiDiGraph) and set(flat.nodes) == {"x", "stem", "b1", "relu", "output"}
    assert flat.nodes["b1"]["op"] == "block" and flat.nodes["stem"]["params"]["out_channels"] == 8
    assert flat.nodes["stem"]["shapes"] == [(2, 8, 4, 4)] and flat.nodes["stem"]["num_params"] == 3 * 8
    assert sorted(flat.edges()) == [("b1", "relu"), ("relu", "output"), ("stem", "b1"), ("x", "stem")]
    deep = gb.to_networkx(g, expand_blocks=True)
    assert set(deep.nodes) == {"x", "stem", "b1/conv2d", "b1/add", "relu", "output"}
    # the block's input fans out to the conv and the residual add; ports are kept on the edges
    edges = {(u, v, d["dst_input"]) for u, v, d in deep.edges(data=True)}
    assert {("stem", "b1/conv2d", 0), ("b1/conv2d", "b1/add", 0), ("stem", "b1/add", 1), ("b1/add", "relu", 0)} <= edges
    assert nx.is_directed_acyclic_graph(deep)


def test_pyg_features_follow_the_documented_layout() -> None:
    g = _residual()
    data = gb.to_pyg(g)
    vocab = op_vocabulary()
    names = feature_names()
    assert data.x.shape == (6, len(vocab) + PARAM_SLOTS + len(SHAPE_FEATURES)) and len(names) == data.x.shape[1]
    assert data.edge_index.shape == (2, 6) and data.edge_attr.shape == (6, 2)
    row = data.x[data.node_names.index("stem")]
    assert row[: len(vocab)].sum() == 1 and row[vocab.index("conv2d")] == 1
    assert int(data.op_index[data.node_names.index("stem")]) == vocab.index("conv2d")
    params = row[len(vocab): len(vocab) + PARAM_SLOTS]
    # conv2d's first params: out_channels=8, kernel_size=1, stride=1, padding=0, dilation=1, groups=1
    expected = [math.log2(9) / 16, math.log2(2) / 16, math.log2(2) / 16, 0.0, math.log2(2) / 16, math.log2(2) / 16]
    assert torch.allclose(params, torch.tensor(expected))
    shape = row[len(vocab) + PARAM_SLOTS:]
    want = [4 / 5, math.log2(1 + 2 * 8 * 16) / 32, math.log2(9) / 16, math.log2(17) / 16, math.log2(1 + 24) / 32]
    assert torch.allclose(shape, torch.tensor(want))
    # every edge follows the dataflow: source before destination in the graph's topological order
    order = {n: i for i, n in enumerate(data.node_names)}
    for s, d in data.edge_index.t().tolist():
        assert order[data.node_names[s]] < order[data.node_names[d]]


@pytest.mark.parametrize("name", ["resnet50", "transformer"])
def test_pyg_of_imported_models(name: str) -> None:
    module, x = MODELS[name]()
    g = gb.from_module(module, (x,))
    data = gb.to_pyg(g)
    expanded = gb.to_networkx(g, expand_blocks=True)
    assert data.num_nodes == expanded.number_of_nodes() and data.edge_index.shape[1] == expanded.number_of_edges()
    assert "block" not in {expanded.nodes[n]["op"] for n in expanded}
    total = sum(expanded.nodes[n]["num_params"] for n in expanded)
    assert total == sum(p.numel() for p in module.parameters())
    collapsed = gb.to_pyg(g, expand_blocks=False)
    assert collapsed.num_nodes < data.num_nodes
    assert bool((collapsed.x[:, op_vocabulary().index("block")] == 1).any())
