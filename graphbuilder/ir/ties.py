"""Weights tied across nodes: one tensor read by two layers, possibly in different blocks.

Real models reuse a tensor across module boundaries: GPT-2's and T5's output projection is the input
embedding matrix, and a module may be called from two different blocks. `Graph.shared` covers a module called
twice within one graph (one submodule, called twice). A tie covers the rest, one tensor at a time:
``graph.tied[weight] = owner`` says that `weight` *is* `owner`. Both are weight paths relative to the graph
that holds the entry (the innermost graph containing both nodes): the node names from that graph down through
blocks, then the node's state key, as one node path (`graphbuilder.ir.paths`, the state key its last part):
``"lm_head/weight"`` -> ``"transformer/wte/weight"``.

`gb.compile` makes the tied module attribute the owner's tensor (one `nn.Parameter`, listed under both
names in the `state_dict`, as Hugging Face's ``tie_weights`` does), `to_python` writes the same assignment,
and the weights file stores the owner's tensor once. A node keeps its own entry in ``graph.weights`` (the same
tensor object as the owner's after an import), so every node's weights stay complete and editable alone.
Pure Python: shapes come from the op declarations' inference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphbuilder.ir import paths, registry
from graphbuilder.ir.errors import GraphError

if TYPE_CHECKING:
    from graphbuilder.ir.graph import Graph, Node


def split_path(path: str) -> tuple[list[str], str]:
    """``"a/b/weight"`` -> (``["a", "b"]``, ``"weight"``): node names, then the state key."""
    parts = paths.split(str(path))
    if len(parts) < 2 or not all(parts):
        raise GraphError(f"weight path {path!r} must name a node and its weight, e.g. 'lm_head/weight'")
    return parts[:-1], parts[-1]


def resolve(graph: Graph, path: str) -> tuple[Node, str]:
    """The layer node and state key that `path` names inside `graph`; raises `GraphError` saying what is missing."""
    names, key = split_path(path)
    try:
        node = paths.resolve(graph, paths.join_all(names))
    except GraphError as e:
        raise GraphError(f"weight path {path!r}: {e.message}; re-tie it to an existing node or untie with "
                         f"del graph.tied[{path!r}]", e.nodes) from None
    if node.block is not None:
        raise GraphError(f"weight path {path!r} ends at block {node.name!r}: tie the weights of a layer inside it",
                         [node.name])
    return node, key


def weight_shapes(node: Node) -> dict[str, tuple[int, ...]]:
    """The state keys and shapes of `node`'s module (from its op's inference; raises the node's error)."""
    opdef = registry.get(node.op)
    if opdef.infer is None:
        return {}
    inferred = opdef.infer(opdef, dict(node.params), [p.spec for p in node.inputs if p is not None])
    return dict(inferred.weight_shapes)


def check(graph: Graph, weight: str, owner: str) -> None:
    """Raise `GraphError` unless `weight` and `owner` name weights of layers in `graph` with one shape."""
    if weight == owner:
        raise GraphError(f"weight {weight!r} cannot be tied to itself")
    shapes = []
    for path in (weight, owner):
        node, key = resolve(graph, path)
        found = weight_shapes(node)
        if key not in found:
            raise GraphError(f"weight path {path!r}: node {node.name!r} ({node.op}) has no weight {key!r}; its "
                             f"weights are {sorted(found) or 'none'}", [node.name])
        shapes.append(found[key])
    if shapes[0] != shapes[1]:
        raise GraphError(f"weight {weight!r} of shape {shapes[0]} is tied to {owner!r} of shape {shapes[1]}; make "
                         f"the shapes equal or untie with del graph.tied[{weight!r}]",
                         [resolve(graph, weight)[0].name, resolve(graph, owner)[0].name])


def renamed(tied: dict[str, str], old: str, new: str) -> dict[str, str]:
    """`tied` after node `old` of its graph was renamed to `new` (paths into it follow)."""
    def move(path: str) -> str:
        parts = paths.split(path)
        return paths.join_all([new, *parts[1:]]) if parts[0] == old else path
    return {move(k): move(v) for k, v in tied.items()}


def without(tied: dict[str, str], name: str) -> dict[str, str]:
    """`tied` after node `name` of its graph was removed (its ties go with it)."""
    def inside(path: str) -> bool:
        return paths.split(path)[0] == name
    return {k: v for k, v in tied.items() if not (inside(k) or inside(v))}
