"""What changed between two graphs: added, removed, renamed, rewired and changed nodes, blocks included.

    >>> d = gb.diff(before, after)          # doctest: +SKIP
    >>> print(d)                            # doctest: +SKIP
    diff 'net' -> 'net': 1 added, 1 renamed, 1 rewired, 3 changed
      + conv3  conv2d -> (8, 16, 32, 32)
      > conv -> stem
      ~ adaptive_avg_pool2d: inputs (relu[0]) -> (conv3[0])
      ~ fc: out_features: 10 -> 20; shape (8, 10) -> (8, 20)
      ~ output: shape (8, 10) -> (8, 20)

Nodes are matched by name inside each graph level, so a node is the "same" node when it keeps its name
(that is how the editor, passes and files identify nodes). A node that disappeared and one that appeared
with the same op, params and inputs are reported as one rename (when that pairing is unambiguous). Inside a
block present on both sides the diff recurses, and every entry carries its path through the blocks (a tuple
of names, outermost first; `path_text` writes it as a node path, `graphbuilder.ir.paths`).

Compared per node: op, params, inputs (which output of which node feeds each port), inferred output shapes
(None on a side where inference failed), and trained weights (present on both sides and equal, changed,
added or dropped). Meta (positions, notes) is not compared: moving a node is not a change of the network.

This module is pure Python: weight tensors are compared by duck typing (``shape`` and elementwise ``==``),
so the IR keeps its no-torch boundary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphbuilder.ir import paths
from graphbuilder.ir.graph import BLOCK, Graph, Node

NodePath = tuple[str, ...]
Edge = tuple[NodePath, NodePath]


def path_text(path: NodePath) -> str:
    """A path for display: the node path (`graphbuilder.ir.paths`), which `paths.resolve` reads back."""
    return paths.join_all(path)


@dataclass(frozen=True)
class NodeChange:
    """How one node present on both sides differs. Fields are None (or empty) where that aspect is equal.

    Attributes:
        path: the node's path (names through enclosing blocks, outermost first).
        op: (old op, new op) when the node's op changed (the node kept its name).
        params: param name -> (old value, new value), for params that differ.
        inputs: (old inputs, new inputs) when the node was rewired; each input is ``"name[i]"`` or None.
        shapes: (old output shapes, new output shapes) when the inferred outputs differ.
        weights: "changed", "added" or "dropped" when the node's trained weights differ.
    """

    path: NodePath
    op: tuple[str, str] | None = None
    params: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    inputs: tuple[list[str | None], list[str | None]] | None = None
    shapes: tuple[list[list[int]] | None, list[list[int]] | None] | None = None
    weights: str | None = None

    def describe(self) -> str:
        """One line: what changed, old -> new."""
        parts = []
        if self.op:
            parts.append(f"op {self.op[0]} -> {self.op[1]}")
        for k, (old, new) in self.params.items():
            parts.append(f"{k}: {old!r} -> {new!r}")
        if self.inputs:
            parts.append(f"inputs {_refs(self.inputs[0])} -> {_refs(self.inputs[1])}")
        if self.shapes:
            parts.append(f"shape {_shapes(self.shapes[0])} -> {_shapes(self.shapes[1])}")
        if self.weights:
            parts.append(f"weights {self.weights}")
        return "; ".join(parts)


@dataclass
class GraphDiff:
    """The difference from graph `a` to graph `b` (see the module docstring).

    Attributes:
        a_name, b_name: the graphs' names.
        added: paths of nodes only in `b` (a whole new block counts once; its insides are not listed).
        removed: paths of nodes only in `a`.
        renamed: (old path, new path) pairs: same op, params and inputs under a new name.
        changed: a `NodeChange` for every node present on both sides that differs (block nodes whose
            insides changed are listed by their inner nodes, not themselves).
        edges_added, edges_removed: (source path, target path) edges only in `b` / only in `a`, a rename
            not counting as a change of its edges.
    """

    a_name: str
    b_name: str
    added: list[NodePath] = field(default_factory=list)
    removed: list[NodePath] = field(default_factory=list)
    renamed: list[tuple[NodePath, NodePath]] = field(default_factory=list)
    changed: list[NodeChange] = field(default_factory=list)
    edges_added: list[Edge] = field(default_factory=list)
    edges_removed: list[Edge] = field(default_factory=list)
    labels: dict[NodePath, str] = field(default_factory=dict, repr=False, compare=False)
    """Display text (op and output shapes) of each added and removed node."""

    @property
    def rewired(self) -> list[NodePath]:
        """Paths of nodes whose inputs changed."""
        return [c.path for c in self.changed if c.inputs]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.changed)

    def counts(self) -> dict[str, int]:
        """How many nodes were added, removed, renamed, rewired and changed in any way."""
        return {"added": len(self.added), "removed": len(self.removed), "renamed": len(self.renamed),
                "rewired": len(self.rewired), "changed": len(self.changed)}

    def __str__(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v) or "no changes"
        lines = [f"diff {self.a_name!r} -> {self.b_name!r}: {counts}"]
        lines += [f"  + {path_text(p)}  {self.labels.get(p, '')}".rstrip() for p in self.added]
        lines += [f"  - {path_text(p)}  {self.labels.get(p, '')}".rstrip() for p in self.removed]
        lines += [f"  > {path_text(old)} -> {path_text(new)}" for old, new in self.renamed]
        lines += [f"  ~ {path_text(c.path)}: {c.describe()}" for c in self.changed]
        return "\n".join(lines)

    __repr__ = __str__

    def to_json(self) -> dict[str, Any]:
        """The diff as JSON-ready data (paths as lists of names)."""
        def change(c: NodeChange) -> dict[str, Any]:
            out: dict[str, Any] = {"path": list(c.path)}
            if c.op:
                out["op"] = list(c.op)
            if c.params:
                out["params"] = {k: [_plain(o), _plain(n)] for k, (o, n) in c.params.items()}
            if c.inputs:
                out["inputs"] = [c.inputs[0], c.inputs[1]]
            if c.shapes:
                out["shapes"] = [c.shapes[0], c.shapes[1]]
            if c.weights:
                out["weights"] = c.weights
            return out

        data = {"a": self.a_name, "b": self.b_name, "counts": self.counts(),
                "added": [list(p) for p in self.added], "removed": [list(p) for p in self.removed],
                "renamed": [[list(o), list(n)] for o, n in self.renamed],
                "changed": [change(c) for c in self.changed],
                "edges_added": [[list(s), list(t)] for s, t in self.edges_added],
                "edges_removed": [[list(s), list(t)] for s, t in self.edges_removed]}
        json.dumps(data)  # JSON-ready by construction; fail here, not in the caller's writer
        return data


def diff(a: Graph, b: Graph) -> GraphDiff:
    """What changed from graph `a` to graph `b` (nodes matched by name, blocks recursively): a `GraphDiff`
    that prints as a readable listing and has a JSON form (`to_json`)."""
    out = GraphDiff(a.name, b.name)
    _diff_level(a, b, (), out)
    return out


def _diff_level(a: Graph, b: Graph, prefix: NodePath, out: GraphDiff) -> None:
    a_nodes, b_nodes = a._nodes, b._nodes
    gone = [n for n in a_nodes if n not in b_nodes]
    new = [n for n in b_nodes if n not in a_nodes]
    renames = _pair_renames(a, b, gone, new)
    old_to_new = {old: nw for old, nw in renames}
    out.renamed += [((*prefix, old), (*prefix, nw)) for old, nw in renames]
    out.removed += [(*prefix, n) for n in gone if n not in old_to_new]
    paired_new = set(old_to_new.values())
    out.added += [(*prefix, n) for n in new if n not in paired_new]
    for graph, names in ((a, gone), (b, new)):
        for n in names:
            out.labels[(*prefix, n)] = f"{graph._nodes[n].op} -> {_shapes(_out_shapes(graph._nodes[n]))}"

    for name, node_b in b_nodes.items():
        node_a = a_nodes.get(name)
        if node_a is None:
            continue
        if node_a.op == BLOCK and node_b.op == BLOCK:
            assert node_a.block is not None and node_b.block is not None
            _diff_level(node_a.block, node_b.block, (*prefix, name), out)
            change = _compare(node_a, node_b, (*prefix, name), old_to_new, compare_contents=False)
        else:
            change = _compare(node_a, node_b, (*prefix, name), old_to_new, compare_contents=True)
        if change is not None:
            out.changed.append(change)

    edges_a = {_rename_edge(e, old_to_new) for e in _edges(a)}
    edges_b = set(_edges(b))
    out.edges_added += [((*prefix, s), (*prefix, t)) for s, t in _ordered(edges_b - edges_a, b)]
    out.edges_removed += [((*prefix, s), (*prefix, t)) for s, t in _ordered(edges_a - edges_b, a, old_to_new)]


def _compare(node_a: Node, node_b: Node, path: NodePath, renames: dict[str, str],
             compare_contents: bool) -> NodeChange | None:
    op = (node_a.op, node_b.op) if node_a.op != node_b.op else None
    params = {}
    if compare_contents:
        for key in dict.fromkeys([*node_a._params, *node_b._params]):
            old, new = node_a._params.get(key), node_b._params.get(key)
            if old != new:
                params[key] = (old, new)
    ins_a = [_ref(p, renames) for p in node_a._inputs]
    ins_b = [_ref(p, {}) for p in node_b._inputs]
    inputs = (ins_a, ins_b) if ins_a != ins_b else None
    shapes_a, shapes_b = _out_shapes(node_a), _out_shapes(node_b)
    shapes = (shapes_a, shapes_b) if shapes_a != shapes_b else None
    weights = _weights_change(node_a, node_b) if compare_contents else None
    if not (op or params or inputs or shapes or weights):
        return None
    return NodeChange(path, op, params, inputs, shapes, weights)


def _pair_renames(a: Graph, b: Graph, gone: list[str], new: list[str]) -> list[tuple[str, str]]:
    """Pairs (old, new) of a vanished and an appeared node with the same signature, where that signature
    belongs to exactly one vanished and one appeared node. Inputs compare by source name, so renames are
    paired in topological order: a renamed node's renamed source is known by the time its users compare."""
    if not gone or not new:
        return []
    pairs: dict[str, str] = {}
    gone_set, new_set = set(gone), set(new)
    for node in a.topological_order():
        if node.name not in gone_set:
            continue
        sig = _signature(node, pairs)
        matches = [n for n in new_set if _signature(b._nodes[n], {}) == sig]
        rivals = [g for g in gone_set if g != node.name and _signature(a._nodes[g], pairs) == sig]
        if len(matches) == 1 and not rivals:
            pairs[node.name] = matches[0]
            new_set.discard(matches[0])
    return list(pairs.items())


def _signature(node: Node, renames: dict[str, str]) -> tuple[Any, ...]:
    params = json.dumps(node._params, sort_keys=True, default=repr)
    block = json.dumps(node.block.to_dict(), sort_keys=True) if node.block is not None else ""
    return node.op, params, block, tuple(_ref(p, renames) for p in node._inputs)


def _ref(port: Any, renames: dict[str, str]) -> str | None:
    if port is None:
        return None
    return f"{renames.get(port.node.name, port.node.name)}[{port.index}]"


def _edges(graph: Graph) -> Iterator[tuple[str, str]]:
    for node in graph._nodes.values():
        for port in node._inputs:
            if port is not None:
                yield port.node.name, node.name


def _rename_edge(edge: tuple[str, str], renames: dict[str, str]) -> tuple[str, str]:
    return renames.get(edge[0], edge[0]), renames.get(edge[1], edge[1])


def _ordered(edges: set[tuple[str, str]], graph: Graph, renames: dict[str, str] | None = None
             ) -> list[tuple[str, str]]:
    """`edges` in the graph's node order (by target, then source), for stable output."""
    back = {v: k for k, v in (renames or {}).items()}
    order = {name: i for i, name in enumerate(graph._nodes)}

    def key(e: tuple[str, str]) -> tuple[int, int]:
        return order.get(back.get(e[1], e[1]), -1), order.get(back.get(e[0], e[0]), -1)

    return sorted(edges, key=key)


def _out_shapes(node: Node) -> list[list[int]] | None:
    node.graph.infer()
    if node._error is not None or node._outputs is None:
        return None
    return [list(s.shape) for s in node._outputs]


def _weights_change(node_a: Node, node_b: Node) -> str | None:
    wa, wb = node_a.graph.weights.get(node_a.name), node_b.graph.weights.get(node_b.name)
    if not wa and not wb:
        return None
    if not wa:
        return "added"
    if not wb:
        return "dropped"
    if set(wa) != set(wb) or not all(_same_tensor(wa[k], wb[k]) for k in wa):
        return "changed"
    return None


def _same_tensor(x: Any, y: Any) -> bool:
    if x is y:
        return True
    if tuple(getattr(x, "shape", ())) != tuple(getattr(y, "shape", ())):
        return False
    if getattr(x, "dtype", None) != getattr(y, "dtype", None):
        return False
    return bool((x == y).all())


def _refs(refs: list[str | None]) -> str:
    return "(" + ", ".join("-" if r is None else r for r in refs) + ")"


def _shapes(shapes: list[list[int]] | None) -> str:
    if shapes is None:
        return "error"
    return ", ".join(str(tuple(s)) for s in shapes)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
