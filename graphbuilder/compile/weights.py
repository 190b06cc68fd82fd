"""Moving trained weights between compiled modules and `graph.weights` (keyed by node name)."""

from __future__ import annotations

from torch import fx

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph


def store_weights(graph: Graph, module: fx.GraphModule) -> Graph:
    """Copy `module`'s trained tensors into `graph.weights` (blocks into their own graphs); returns `graph`.

    `module` must come from ``gb.compile(graph)``. The next compile then starts from these weights, and
    `graph.save` writes them beside the graph file.
    """
    names = module.meta.get("graphbuilder_names")
    if names is None:
        raise GraphError("this module was not made by gb.compile; store_weights needs the module compiled from "
                         f"graph {graph.name!r}")
    for node in graph:
        if node.op in ("input", "output") or node.name in graph.shared:  # a shared node's weights are its owner's
            continue
        # the module attribute (a multi-output node's fx value is a getitem, not the module call)
        ident = module.meta.get("graphbuilder_modules", {}).get(node.name) or names.get(node.name)
        sub = getattr(module, ident, None) if ident else None
        if sub is None:
            continue
        if node.op == BLOCK:
            assert node.block is not None
            store_weights(node.block, sub)
            continue
        state = {k: v.detach().clone() for k, v in sub.state_dict().items()}
        if state:
            graph.weights[node.name] = state
    return graph
