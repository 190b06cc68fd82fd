"""Immutable graph snapshots that share unchanged nodes: the states an undo history keeps.

`snapshot(graph, previous)` records every node as a `NodeState`. A node whose params dict, inference results,
inputs and meta values are the very objects they were when `previous` recorded it (the IR replaces them on
every edit) keeps `previous`'s state object. So after a one-node edit on a 1,000-node graph a snapshot holds
one new state and 999 shared ones, where a `Graph.copy` would hold 1,000 new nodes with their dicts and lists:
memory, copy time and garbage-collector work all grow with what changed, not with the graph.
`restore(snapshot)` builds a new, independent `Graph` (params and meta copied, weight tensors shared, as
`Graph.copy` does).

In-place changes of nested meta values (``node.meta["position"]["x"] = 1``) keep the outer value's identity,
so sharing cannot see them: take a snapshot without `previous` after edits that may have made them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphbuilder.ir.graph import Graph, Node, Port, _copy_meta


class NodeState(NamedTuple):
    """One node in a snapshot; never changed once made, and shared by snapshots while the node is unchanged."""

    name: str
    op: str
    params: dict[str, Any]  # the node's own dict: the IR replaces it on edits and never mutates it
    inputs: tuple[tuple[str, int] | None, ...]  # (source node name, output index) per input port
    meta: dict[str, Any]  # a private copy of node.meta
    meta_source: tuple[tuple[str, Any], ...]  # node.meta's items when copied, compared by identity
    block: GraphSnapshot | None
    outputs: Any
    error: Any
    num_params: int
    packed: Any
    stamp: int  # the node's journal tick when recorded (`ir.journal`): unchanged since if still equal


class GraphSnapshot(NamedTuple):
    """A graph's whole state: `snapshot` takes one, `restore` rebuilds a graph from it."""

    name: str
    meta: dict[str, Any]
    weights: dict[str, dict[str, Any]]
    nodes: tuple[NodeState, ...]  # in the graph's insertion order
    dirty: frozenset[str]  # nodes still to re-infer


def same_items(a: tuple[tuple[str, Any], ...], b: tuple[tuple[str, Any], ...]) -> bool:
    """Equal keys holding the very same values, in order: how meta is compared for sharing."""
    if len(a) != len(b):
        return False
    for (ka, va), (kb, vb) in zip(a, b):  # noqa: B905 (equal lengths checked above); a loop: hot, per node
        if va is not vb or ka != kb:
            return False
    return True


def _node_state(node: Node, old: NodeState | None) -> NodeState:
    meta_items = tuple(node.meta.items())
    same_meta = old is not None and same_items(old.meta_source, meta_items)
    if old is not None and same_meta and node._stamp and old.stamp == node._stamp and node.block is None:
        return old  # the journal saw no change of the node since (meta, which it may not see, is checked above)
    inputs = tuple(None if p is None else (p.node.name, p.index) for p in node._inputs)
    if (old is not None and same_meta and node.block is None and old.block is None and old.op == node.op
            and old.params is node._params and old.inputs == inputs and old.outputs is node._outputs
            and old.error is node._error and old.num_params == node._num_params and old.packed is node._packed):
        return old
    block = None
    if node.block is not None:  # a block's inside changes in place: snapshot it, sharing its unchanged nodes
        block = snapshot(node.block, old.block if old is not None else None)
    if old is not None:  # keep the old tuples where equal: fewer long-lived objects for the collector
        inputs = old.inputs if old.inputs == inputs else inputs
        meta_items = old.meta_source if same_meta else meta_items
    return NodeState(node.name, node.op, node._params, inputs, old.meta if same_meta else _copy_meta(node.meta),
                     meta_items, block, node._outputs, node._error, node._num_params, node._packed, node._stamp)


def _weights(graph: Graph, previous: GraphSnapshot | None) -> dict[str, dict[str, Any]]:
    """The weights table, reusing `previous`'s per-node dicts that hold the very same tensors."""
    before = previous.weights if previous is not None else {}
    out = {}
    for name, tensors in graph.weights.items():
        old = before.get(name)
        same = old is not None and old.keys() == tensors.keys() and all(old[k] is v for k, v in tensors.items())
        out[name] = old if same else dict(tensors)
    return out


def snapshot(graph: Graph, previous: GraphSnapshot | None = None) -> GraphSnapshot:
    """`graph`'s current state, sharing `previous`'s states of the nodes that did not change since."""
    before = {s.name: s for s in previous.nodes} if previous is not None else {}
    nodes = tuple(_node_state(node, before.get(node.name)) for node in graph._nodes.values())
    return GraphSnapshot(graph.name, _copy_meta(graph.meta), _weights(graph, previous), nodes,
                         frozenset(n.name for n in graph._dirty))


def restore(snap: GraphSnapshot) -> Graph:
    """A new graph in the state `snap` recorded (`snap` stays unchanged and can be restored again)."""
    graph = Graph(snap.name)
    graph.meta = _copy_meta(snap.meta)
    graph.weights = {k: dict(v) for k, v in snap.weights.items()}
    for s in snap.nodes:
        node = Node(graph, s.name, s.op, dict(s.params), block=restore(s.block) if s.block is not None else None,
                    meta=_copy_meta(s.meta))
        node._outputs, node._error, node._num_params, node._packed = s.outputs, s.error, s.num_params, s.packed
        graph._nodes[s.name] = node
    for s in snap.nodes:
        node = graph._nodes[s.name]
        node._inputs = [None] * len(s.inputs)
        for i, ref in enumerate(s.inputs):
            if ref is not None:
                graph._wire(node, i, Port(graph._nodes[ref[0]], ref[1]))
    graph._dirty = {graph._nodes[name] for name in snap.dirty}
    return graph
