"""`Graph.lint()`: check the invariants the IR keeps by construction, in O(nodes + edges).

torch.fx's habit: every rewrite can end with ``graph.lint()``. The IR never lets an edit break these (every
rewiring goes through `Graph._set_input`), so a failure here is a bug in the IR, a pass, or code that reached
into private fields; the tests assert it after every step of the property tests and every editor patch.

Checked, recursively through blocks:
    names       each node is stored under its own name and belongs to this graph
    def-use     ``node.users`` mirrors the inputs, both ways; inputs read nodes of this graph
    acyclic     a topological order exists (computed afresh), and the cached one, if any, is valid
    blocks      a block's inputs match its inner input nodes (its ports); the inner graph points back to it
    inference   after `infer()` nothing is dirty, every node has outputs or an error, and no node is fine
                while an input is unconnected, failed, or reads an output its source does not have
    references  `shared`, `weights` and `tied` name nodes that exist
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from graphbuilder.ir import ties
from graphbuilder.ir.errors import GraphError

if TYPE_CHECKING:
    from graphbuilder.ir.graph import Graph


def lint(graph: Graph) -> None:
    """Raise `GraphError` naming the first broken invariant of `graph` (and the nodes involved)."""
    stack: list[tuple[Graph, str]] = [(graph, "")]
    while stack:
        current, where = stack.pop()
        _lint_one(current, where)
        stack.extend((n.block, f"{where}{n.name}/") for n in current._nodes.values() if n.block is not None)


def _broken(where: str, what: str, nodes: list[str]) -> GraphError:
    return GraphError(f"lint: {what} (an IR invariant is broken: report this with the edits that led here)",
                      [where + n for n in nodes])


def _lint_one(graph: Graph, where: str) -> None:
    nodes = graph._nodes
    for name, node in nodes.items():
        if node.name != name or node.graph is not graph:
            raise _broken(where, f"node stored as {name!r} is named {node.name!r} or belongs to graph "
                          f"{node.graph.name!r}", [name])
        for i, port in enumerate(node._inputs):
            if port is None:
                continue
            if nodes.get(port.node.name) is not port.node:
                raise _broken(where, f"input {i} of {name!r} reads {port.node.name!r}, which is not in graph "
                              f"{graph.name!r}", [name, port.node.name])
            if node not in port.node._users:
                raise _broken(where, f"{name!r} reads {port.node.name!r} but is not among its users",
                              [name, port.node.name])
        for user in node._users:
            if nodes.get(user.name) is not user or not any(p is not None and p.node is node for p in user._inputs):
                raise _broken(where, f"{user.name!r} is listed as a user of {name!r} but does not read it",
                              [name, user.name])
        if node.block is not None:
            ports = node.block.inputs
            if node.block._block_node is not node or len(ports) != len(node._inputs):
                raise _broken(where, f"block {name!r} has {len(node._inputs)} input(s) but its graph has "
                              f"{len(ports)} port(s), or does not point back to it", [name])
    _lint_order(graph, where)
    _lint_inference(graph, where)
    for name, owner in graph.shared.items():
        if name not in nodes or owner not in nodes:
            raise _broken(where, f"shared entry {name!r} -> {owner!r} names a missing node", [name])
    for name in graph.weights:
        if name not in nodes:
            raise _broken(where, f"weights are kept for {name!r}, which is not a node", [name])
    for weight, owner in graph.tied.items():
        for path in (weight, owner):
            ties.resolve(graph, path)


def _lint_order(graph: Graph, where: str) -> None:
    indegree = {n: len({id(p.node) for p in n._inputs if p is not None}) for n in graph._nodes.values()}
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for user in node._users:
            indegree[user] -= 1
            if indegree[user] == 0:
                ready.append(user)
    if seen != len(graph._nodes):
        stuck = [n.name for n, d in indegree.items() if d > 0]
        raise _broken(where, f"the graph has a cycle through {stuck[:5]}", stuck[:5])
    order = graph._order
    if order is None:
        return
    if len(order) != len(graph._nodes) or any(graph._nodes.get(n.name) is not n for n in order):
        raise _broken(where, "the cached topological order does not list exactly the graph's nodes", [])
    for i, node in enumerate(order):
        if i and node._rank <= order[i - 1]._rank:
            raise _broken(where, f"ranks in the cached order do not increase at {node.name!r}", [node.name])
        for port in node._inputs:
            if port is not None and port.node._rank >= node._rank:
                raise _broken(where, f"{node.name!r} comes before its input {port.node.name!r} in the cached "
                              "order", [node.name, port.node.name])


def _lint_inference(graph: Graph, where: str) -> None:
    graph._refresh()
    if graph._dirty:
        raise _broken(where, "nodes are still dirty after infer()", [n.name for n in graph._dirty])
    for node in graph._nodes.values():
        if (node._outputs is None) == (node._error is None):
            raise _broken(where, f"{node.name!r} has {'neither' if node._error is None else 'both'} outputs "
                          "and an error after infer()", [node.name])
        if node._error is not None:
            continue
        for port in node._inputs:
            source = None if port is None else port.node
            if source is None or source._error is not None or port.index >= len(source._outputs or ()):
                raise _broken(where, f"{node.name!r} is fine although its input "
                              f"{'is not connected' if source is None else repr(source.name) + ' does not fit'}",
                              [node.name])
