"""Graphs as data for graph learning: `gb.to_networkx(graph)` and `gb.to_pyg(graph)`.

This is the input format of GNN-based architecture performance predictors (e.g. arXiv:1912.00848, BRP-NAS
arXiv:2007.08668): one vertex per operator, edges along the dataflow. The feature layout (also in
docs/interop.md) is, per node, concatenated:

    [0, V)            op one-hot over `op_vocabulary()`: every registered op name sorted, then "block"
    [V, V+6)          params: the op's first 6 declared params in declaration order, each one number:
                        int / ints   sign(v) * log2(1 + |v|) / 16   (mean over the elements of a tuple)
                        float        v clipped to [-1, 1]
                        bool         0 or 1
                        enum         index / (number of choices - 1)
                        None, str    0
                      slots beyond the op's param count are 0
    [V+6, V+11)       output 0: rank / 5, log2(1 + numel) / 32, log2(1 + dim 1) / 16 (channels; 0 for
                      rank < 2), log2(1 + prod(dims 2..)) / 16 (spatial; 0 for rank < 3),
                      log2(1 + parameter count) / 32

`feature_names(...)` returns the name of every column. Blocks are expanded into their nodes by default
for `to_pyg` (names joined with "/"), so the predictor sees operators, not containers.
Boundary: reads the IR and the registry only; no compile.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import torch

from graphbuilder.ir import registry
from graphbuilder.ir.graph import BLOCK, Graph, Node

PARAM_SLOTS = 6
SHAPE_FEATURES = ("rank", "log_numel", "log_channels", "log_spatial", "log_num_params")


def op_vocabulary() -> list[str]:
    """The op one-hot's order: every registered op name sorted, then ``"block"``."""
    return [*registry.names(), BLOCK]


def feature_names(vocabulary: list[str] | None = None) -> list[str]:
    """Names of the node feature columns of `to_pyg` (see the module docstring)."""
    vocab = vocabulary or op_vocabulary()
    return [f"op={name}" for name in vocab] + [f"param{i}" for i in range(PARAM_SLOTS)] + list(SHAPE_FEATURES)


def to_networkx(graph: Graph, expand_blocks: bool = False) -> nx.MultiDiGraph:
    """The graph as a `networkx.MultiDiGraph`: nodes by name with attributes ``op``, ``params``, ``shapes``
    (output shapes), ``num_params``; one edge per connection with ``src_output`` and ``dst_input`` (port
    indices). With `expand_blocks`, block nodes are replaced by their inner nodes (named ``block/inner``)."""
    graph.check()
    out = nx.MultiDiGraph(name=graph.name)
    _add(out, graph, "", expand_blocks)
    return out


def _add(out: nx.MultiDiGraph, graph: Graph, prefix: str, expand: bool,
         feeds: dict[str, tuple[str, int]] | None = None) -> dict[str, tuple[str, int]]:
    """Add `graph`'s nodes under `prefix`; returns, for each output node name, the (node, port) it yields."""
    where: dict[tuple[Node, int], tuple[str, int]] = {}  # (node, output) -> (nx node, output index)
    results: dict[str, tuple[str, int]] = {}
    for node in graph:
        name = prefix + node.name
        sources = [where[(p.node, p.index)] for p in node.inputs if p is not None]
        if prefix and node.op == "input" and feeds is not None:
            where[(node, 0)] = feeds[node.name]
            continue
        if prefix and node.op == "output":
            results[node.name] = sources[0]
            continue
        if node.op == BLOCK and expand:
            assert node.block is not None
            inner_feeds = {n.name: src for n, src in zip(node.block.inputs, sources, strict=True)}
            produced = _add(out, node.block, name + "/", expand, inner_feeds)
            for i, o in enumerate(node.block.outputs):
                where[(node, i)] = produced[o.name]
            continue
        params = {} if node.op == BLOCK else dict(node.params)
        out.add_node(name, op=node.op, params=params, shapes=[tuple(s.shape) for s in node.outputs],
                     num_params=node.num_params, block=node.block.name if node.block is not None else None)
        for i, (src, index) in enumerate(sources):
            out.add_edge(src, name, src_output=index, dst_input=i)
        for i in range(len(node.outputs)):
            where[(node, i)] = (name, i)
    return results


def _param_value(param: Any, value: Any) -> float:
    if value is None or isinstance(value, str) and param.kind != "enum":
        return 0.0
    if param.kind == "enum":
        choices = list(param.choices)
        return choices.index(value) / max(1, len(choices) - 1) if value in choices else 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (tuple, list)):
        value = sum(value) / len(value) if value else 0
    if isinstance(value, int):
        return math.copysign(math.log2(1 + abs(value)), value) / 16
    if isinstance(value, float):
        return max(-1.0, min(1.0, value))
    return 0.0


def node_features(op: str, params: dict[str, Any], shape: tuple[int, ...], num_params: int,
                  vocabulary: list[str]) -> list[float]:
    """One node's feature row (layout in the module docstring)."""
    onehot = [0.0] * len(vocabulary)
    if op in vocabulary:
        onehot[vocabulary.index(op)] = 1.0
    slots = [0.0] * PARAM_SLOTS
    if op != BLOCK:
        for i, p in enumerate(registry.get(op).params[:PARAM_SLOTS]):
            slots[i] = _param_value(p, params.get(p.name))
    rank = len(shape)
    numel = math.prod(shape) if shape else 1
    shape_feats = [rank / 5, math.log2(1 + numel) / 32, math.log2(1 + shape[1]) / 16 if rank >= 2 else 0.0,
                   math.log2(1 + math.prod(shape[2:])) / 16 if rank >= 3 else 0.0, math.log2(1 + num_params) / 32]
    return onehot + slots + shape_feats


def to_pyg(graph: Graph, expand_blocks: bool = True, vocabulary: list[str] | None = None) -> Any:
    """The graph as a `torch_geometric.data.Data`: ``x`` (nodes x features, layout in the module docstring),
    ``edge_index`` (2 x edges, source -> destination along the dataflow), ``edge_attr`` (edges x 2: source
    output index, destination input index), ``op_index`` (each node's position in the vocabulary) and
    ``node_names``. Pass a fixed `vocabulary` to keep columns stable across sessions with other ops."""
    from torch_geometric.data import Data

    vocab = list(vocabulary or op_vocabulary())
    nxg = to_networkx(graph, expand_blocks=expand_blocks)
    names = list(nxg.nodes)
    index = {n: i for i, n in enumerate(names)}
    rows = []
    for n in names:
        a = nxg.nodes[n]
        rows.append(node_features(a["op"], a["params"], a["shapes"][0] if a["shapes"] else (), a["num_params"], vocab))
    edges = [(index[u], index[v], d["src_output"], d["dst_input"]) for u, v, d in nxg.edges(data=True)]
    edge_index = torch.tensor([[e[0] for e in edges], [e[1] for e in edges]], dtype=torch.long).reshape(2, -1)
    edge_attr = torch.tensor([[e[2], e[3]] for e in edges], dtype=torch.float32).reshape(-1, 2)
    op_index = torch.tensor([vocab.index(nxg.nodes[n]["op"]) if nxg.nodes[n]["op"] in vocab else -1 for n in names])
    return Data(x=torch.tensor(rows, dtype=torch.float32).reshape(len(names), -1), edge_index=edge_index,
                edge_attr=edge_attr, op_index=op_index, node_names=names, num_nodes=len(names))
