"""Group nodes into a block and ungroup a block: pure graph -> graph transforms on the IR.

    >>> g2 = group(g, ["conv", "relu"], name="stem")     # doctest: +SKIP
    >>> g3 = ungroup(g2, "stem")                          # back to the same nodes and wiring

`group` moves a connected piece of a graph into a nested `Graph` (a block node): every distinct outside
tensor the piece reads becomes a block input, every tensor of the piece read outside becomes a block
output, and the outside users are rewired to the block's outputs. `ungroup` inlines a block's nodes into
the enclosing graph again. Both return a new graph and leave the argument untouched; names, params, meta
(editor positions) and trained weights travel with the nodes, so ``ungroup(group(g, s), b)`` computes the
same function as ``g`` with the same weights.

Boundary: IR only (no torch, no editor). The editor's "Group selection into block" and "Ungroup" actions
call these functions. Blocks are the nested graphs of `graphbuilder.ir.graph` (``op == "block"``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node, Port
from graphbuilder.ir.naming import unique

__all__ = ["group", "ungroup"]


def _position(node: Node) -> tuple[float, float] | None:
    pos = node.meta.get("position")
    if isinstance(pos, dict) and isinstance(pos.get("x"), (int, float)) and isinstance(pos.get("y"), (int, float)):
        return float(pos["x"]), float(pos["y"])
    return None


def _add_like(target: Graph, node: Node, inputs: list[Port], name: str) -> Node:
    """Add a copy of `node` (op or block) to `target` reading `inputs`, keeping its meta."""
    if node.op == BLOCK:
        assert node.block is not None
        twin = target.add(node.block, *inputs, name=name)
    else:
        twin = target.add(node.op, *inputs, name=name, **dict(node.params))
    twin.meta.update(copy.deepcopy(node.meta))
    return twin


def _move_weights(source: Graph, old: str, target: Graph, new: str) -> None:
    if old in source.weights:
        target.weights[new] = dict(source.weights[old])


def group(graph: Graph, nodes: Iterable[str | Node], name: str | None = None) -> Graph:
    """Return a copy of `graph` where `nodes` are replaced by one block node called `name`.

    The block's inputs are the distinct outside outputs the selection reads (in topological order), its
    outputs the selection's outputs that outside nodes read (or, if none are, the selection's sinks).
    Raises `GraphError` naming the nodes when the selection is empty, holds graph inputs or outputs,
    has unconnected or invalid nodes, or is not convex (a path leaves the selection and comes back, which
    would make the block depend on itself).
    """
    names = [n.name if isinstance(n, Node) else n for n in nodes]
    if not names:
        raise GraphError("group: select at least one node to put into the block")
    for n in names:
        graph[n]  # raises GraphError for unknown names
    selected = set(names)
    for n in names:
        if graph[n].op in ("input", "output"):
            raise GraphError(f"group: node {n!r} is a graph {graph[n].op}; leave graph inputs and outputs outside "
                             "the block", [n])
    errors = graph.infer()
    bad = [n for n in names if n in errors]
    if bad:
        raise GraphError(f"group: fix node {bad[0]!r} first ({errors[bad[0]].message})", bad)
    # Convexity: no outside node may be both a descendant and an ancestor of the selection.
    outside_desc: set[Node] = set()
    for n in names:
        outside_desc |= {d for d in graph.descendants(graph[n]) if d.name not in selected}
    for n in names:
        back = [a.name for a in graph.ancestors(graph[n]) if a in outside_desc]
        if back:
            raise GraphError(f"group: the selection is not convex: {back[0]!r} reads the selection and feeds "
                             f"{n!r}; add {back[0]!r} to the selection or remove {n!r}", [back[0], n])

    new = graph.copy()
    order = [n for n in new.topological_order() if n.name in selected]
    block_name = name if name is not None else unique("block", new)
    if block_name in new and block_name not in selected:
        raise GraphError(f"group: the name {block_name!r} is taken; pick another block name", [block_name])

    inner = Graph(block_name)
    # Block inputs: distinct outside ports read by the selection, in order of first use.
    sources: list[Port] = []
    for node in order:
        for port in node.inputs:
            assert port is not None  # valid nodes have every port connected
            if port.node.name not in selected and port not in sources:
                sources.append(port)
    taken = set(selected)
    inner_port: dict[Port, Port] = {}
    for port in sources:
        label = unique(port.node.name if port.index == 0 else f"{port.node.name}_{port.index}", taken)
        taken.add(label)
        spec = port.spec
        inner_port[port] = Port(inner.input(label, shape=spec.shape, dtype=spec.dtype), 0)
    inner_nodes: dict[str, Node] = {}
    for node in order:
        ins = [inner_port[p] if p.node.name not in selected else Port(inner_nodes[p.node.name], p.index)
               for p in node.inputs if p is not None]
        inner_nodes[node.name] = _add_like(inner, node, ins, node.name)
        _move_weights(new, node.name, inner, node.name)
    # Block outputs: selection ports read outside, in topological order of their producer.
    exported: list[Port] = []
    for node in order:
        for user in node.users:
            if user.name in selected:
                continue
            for port in user.inputs:
                if port is not None and port.node is node and port not in exported:
                    exported.append(port)
    if not exported:  # a dangling piece: its sinks become the outputs so the block is well formed
        exported = [Port(n, 0) for n in order if not any(u.name in selected for u in n.users)]
    exported.sort(key=lambda p: (order.index(p.node), p.index))
    for port in exported:
        label = unique(f"{port.node.name}_out" if port.index == 0 else f"{port.node.name}_out{port.index}", taken)
        taken.add(label)
        inner.output(Port(inner_nodes[port.node.name], port.index), name=label)

    block_node = new.add(inner, *sources, name=block_name if block_name not in new else None)
    block_node.block.weights.update(inner.weights)  # add() copies the block; keep the moved weights
    positions = [p for p in (_position(n) for n in order) if p is not None]
    if positions:
        block_node.meta["position"] = {"x": sum(p[0] for p in positions) / len(positions),
                                       "y": sum(p[1] for p in positions) / len(positions)}
    for k, port in enumerate(exported):
        for user in list(port.node.users):
            if user.name in selected:
                continue
            for i, p in enumerate(user.inputs):
                if p == port:
                    user.set_input(i, block_node[k])
    for node in reversed(order):
        new.remove(node)
    if block_node.name != block_name:  # the wanted name was held by a selected node until now
        block_node.rename(block_name)
    return new


def ungroup(graph: Graph, block: str | Node) -> Graph:
    """Return a copy of `graph` with block node `block` replaced by its inner nodes.

    Inner names are kept where free in the enclosing graph (else suffixed ``_1``, ``_2``...), positions are
    offset by the block's position, weights move along. Raises `GraphError` if `block` is not a block or
    one of its inputs is not connected.
    """
    name = block.name if isinstance(block, Node) else block
    node = graph[name]
    if node.op != BLOCK or node.block is None:
        raise GraphError(f"ungroup: node {name!r} is a {node.op} node, not a block", [name])
    for i, port in enumerate(node.inputs):
        if port is None:
            raise GraphError(f"ungroup: input {i} of block {name!r} is not connected; connect it first", [name])
    count = len(node.block.outputs)
    for user in node.users:
        for port in user.inputs:
            if port is not None and port.node is node and port.index >= count:
                raise GraphError(f"ungroup: {user.name!r} reads output {port.index} of block {name!r}, which has "
                                 f"{count} output(s); connect it to an existing output first", [user.name, name])
    new = graph.copy()
    outer = new[name]
    inner = outer.block
    assert inner is not None
    origin = _position(outer) or (0.0, 0.0)
    mapping: dict[Node, Port] = {}
    for k, inp in enumerate(inner.inputs):
        port = outer.inputs[k]
        assert port is not None
        mapping[inp] = port
    taken = {n.name for n in new}
    created: list[Node] = []
    for inner_node in inner.topological_order():
        if inner_node.op == "input":
            continue
        ins: list[Port] = []
        for p in inner_node.inputs:
            if p is None:
                raise GraphError(f"ungroup: node {inner_node.name!r} inside block {name!r} has an unconnected "
                                 "input; connect it first", [name, inner_node.name])
            src = mapping[p.node]
            ins.append(src if p.node.op == "input" else Port(src.node, p.index))  # inputs map to outer ports
        if inner_node.op == "output":
            mapping[inner_node] = ins[0]
            continue
        label = unique(inner_node.name, taken)
        taken.add(label)
        twin = _add_like(new, inner_node, ins, label)
        pos = _position(inner_node)
        if pos is not None:
            twin.meta["position"] = {"x": origin[0] + pos[0], "y": origin[1] + pos[1]}
        if inner_node.name in inner.weights:
            new.weights[label] = dict(inner.weights[inner_node.name])
        mapping[inner_node] = Port(twin, 0)
        created.append(twin)
    outs = [mapping[o] for o in inner.outputs]
    for user in list(outer.users):
        for i, p in enumerate(user.inputs):
            if p is not None and p.node is outer:
                user.set_input(i, outs[p.index])
    new.remove(outer)
    return new

