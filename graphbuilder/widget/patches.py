"""Browser edits as IR edits: each patch op from the editor becomes `Graph` API calls, validated there.

Ops (snake_case here; docs/widget-protocol.md lists them with their wire form):

    {"op": "add", "op_name", "name"?, "params"?, "position"?, "parent"?}   new node, inputs unconnected; a
                                                                         `gb.models` network name adds it as a block
    {"op": "remove", "nodes": [id, ...]}                                 disconnects their users
    {"op": "connect", "source": [id, out], "target": [id, port]}        port == len(inputs) appends (variadic)
    {"op": "disconnect", "target": [id, port]}
    {"op": "params", "node": id, "params": {...}}                       validated; bad values change nothing
    {"op": "rename", "node": id, "name": str}
    {"op": "move", "positions": {id: [x, y]}}                           node.meta["position"]
    {"op": "meta", "node": id, "meta": {key: value | None}}             None deletes the key
    {"op": "group", "nodes": [id, ...], "name"?}                         passes.blocks.group
    {"op": "ungroup", "node": id}                                       passes.blocks.ungroup
    {"op": "paste", "fragment": {...}, "offset"?: [dx, dy], "parent"?}  nodes from `fragment_of`

`apply_ops` applies ops one by one. Each op is first checked against its schema (`requests.op`), then
applied whole or not at all: an op that fails (a malformed field, an unknown node among good ones, a bad
value, a cycle) is skipped and reported, leaving the graph as it was, and the others still apply. Ops that
make several edits check everything before the first (``remove``, ``move``, ``meta``) or undo what they did
(``paste``). Renames made along the way (a requested name that was taken, or a rename op) are reported so
the browser can re-point its pending edits.

Boundary: the IR's public editing API only (`Graph.add(..., allow_unconnected=True)` for nodes drawn before
they are wired, `Node.add_input_port` / `remove_input_port` for variadic ops, `Graph.replace_contents` to
apply a pass in place). Blocks re-infer by themselves when their inside changes (the IR's "block" events).
Never imports compile.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from graphbuilder.ir import paths, registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node, Port
from graphbuilder.ir.serialize import graph_from_dict, graph_to_dict
from graphbuilder.models import NETWORKS
from graphbuilder.passes.blocks import group, ungroup
from graphbuilder.widget import requests

Op = dict[str, Any]


class OpResult:
    """What applying a list of ops did: errors per op index, renamed ids, ids of created nodes."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.renamed: dict[str, str] = {}
        self.created: list[str] = []

    def to_json(self) -> dict[str, Any]:
        """Reply fields for the browser."""
        return {"errors": self.errors, "ids": dict(self.renamed), "created": list(self.created)}


# -- node creation with unconnected ports -------------------------------------------------------------------
def add_unconnected(graph: Graph, op: str, name: str | None, params: dict[str, Any], *,
                    block: Graph | None = None, ports: list[Port | None] | None = None,
                    meta: dict[str, Any] | None = None) -> Node:
    """Add a node whose inputs may be unconnected (the editor draws a node first, wires it after).

    Params are validated like `Graph.add` (bad ones raise, nothing changes); unconnected ports make the
    node report "not connected" until wired, as the IR's editing contract says. `meta` is deep-copied.
    """
    node = graph.add(block if block is not None else op, *(ports or []), name=name, allow_unconnected=True,
                     **({} if block is not None else params))
    if meta:
        node.meta.update(copy.deepcopy(meta))
    return node


# -- ops -------------------------------------------------------------------------------------------------------
def _parent_of(node_id: str) -> str | None:
    names = paths.split(node_id)
    return None if len(names) == 1 else paths.join_all(names[:-1])


def _op_add(graph: Graph, op: Op, result: OpResult) -> None:
    parent = op["parent"]
    where = paths.resolve_graph(graph, parent)
    op_name, wanted = op["op_name"], op["name"]
    name = where.unique_name(wanted) if wanted else None
    meta = {} if op["position"] is None else {"position": {"x": op["position"][0], "y": op["position"][1]}}
    network = None if op_name in registry.names() else NETWORKS.get(op_name)  # a palette network: a block
    node = add_unconnected(where, op_name, name, op["params"], meta=meta,
                           block=network.build() if network is not None else None)
    node_id = paths.join(parent, node.name)
    if wanted and paths.join(parent, wanted) != node_id:
        result.renamed[paths.join(parent, wanted)] = node_id
    result.created.append(node_id)


def _op_remove(graph: Graph, op: Op, result: OpResult) -> None:
    # Every id must name a removable node before any is removed; ids inside a removed block go with it.
    chosen_paths = {tuple(paths.split(i)) for i in op["nodes"]}
    chosen = [(node_id, paths.resolve(graph, node_id)) for node_id in op["nodes"]]
    doomed = [node for node_id, node in chosen
              if not any(tuple(paths.split(node_id))[:k] in chosen_paths for k in range(1, len(paths.split(node_id))))]
    for node in doomed:
        node.graph.check_remove(node)
    for node in dict.fromkeys(doomed):
        node.graph.remove(node, disconnect=True)


def _op_connect(graph: Graph, op: Op, result: OpResult) -> None:
    (src_id, out), (dst_id, index) = op["source"], op["target"]
    if _parent_of(src_id) != _parent_of(dst_id):
        raise GraphError(f"cannot connect {src_id!r} to {dst_id!r}: they are in different blocks; connect to the "
                         "block's ports instead", [src_id, dst_id])
    source, target = paths.resolve(graph, src_id), paths.resolve(graph, dst_id)
    port = source[out] if out else source
    if index == len(target.inputs) and target.op != BLOCK and registry.get(target.op).variadic:
        target.add_input_port(port)  # a variadic op (cat) grows a port, wired at once
    else:
        target.set_input(index, port)


def _op_disconnect(graph: Graph, op: Op, result: OpResult) -> None:
    dst_id, index = op["target"]
    target = paths.resolve(graph, dst_id)
    opdef = None if target.op == BLOCK else registry.get(target.op)
    if opdef is not None and opdef.variadic and len(opdef.inputs) <= index < len(target.inputs):
        target.remove_input_port(index)  # an extra variadic port goes with its wire
    else:
        target.set_input(index, None)


def _op_params(graph: Graph, op: Op, result: OpResult) -> None:
    paths.resolve(graph, op["node"]).update(**op["params"])


def _op_rename(graph: Graph, op: Op, result: OpResult) -> None:
    node_id = op["node"]
    node = paths.resolve(graph, node_id)
    node.rename(op["name"])
    new_id = paths.join(_parent_of(node_id), node.name)
    if new_id != node_id:
        result.renamed[node_id] = new_id


def _op_move(graph: Graph, op: Op, result: OpResult) -> None:
    moves = [(paths.resolve(graph, node_id), xy) for node_id, xy in op["positions"].items()]  # all ids first
    for node, (x, y) in moves:
        node.meta["position"] = {"x": x, "y": y}
        node.touch()


def _op_meta(graph: Graph, op: Op, result: OpResult) -> None:
    node = paths.resolve(graph, op["node"])
    for key, value in op["meta"].items():  # a checked JSON copy: nothing to fail on, nothing shared
        if value is None:
            node.meta.pop(key, None)
        else:
            node.meta[key] = value
    node.touch()


def _op_group(graph: Graph, op: Op, result: OpResult) -> None:
    ids = op["nodes"]
    if not ids:
        raise GraphError("group: select the nodes to put into a block")
    parents = {_parent_of(i) for i in ids}
    if len(parents) != 1:
        raise GraphError("group: the selected nodes are in different blocks; select nodes of one graph", ids)
    parent = parents.pop()
    where = paths.resolve_graph(graph, parent)
    names = [paths.split(i)[-1] for i in ids]
    before = {n.name for n in where}
    where.replace_contents(group(where, names, name=op["name"] or None))
    result.created += [paths.join(parent, n.name) for n in where
                       if n.name not in before or (n.op == BLOCK and n.name in names)]


def _op_ungroup(graph: Graph, op: Op, result: OpResult) -> None:
    node_id = op["node"]
    node = paths.resolve(graph, node_id)
    parent = _parent_of(node_id)
    where = node.graph
    before = {n.name for n in where if n is not node}
    where.replace_contents(ungroup(where, node.name))
    result.created += [paths.join(parent, n.name) for n in where if n.name not in before]


def fragment_of(graph: Graph, ids: list[str]) -> dict[str, Any]:
    """The clipboard form of nodes `ids` (one graph level): file-format node entries; inputs from nodes
    outside the selection become null (unconnected) when pasted."""
    if not ids:
        raise GraphError("copy: select nodes to copy")
    nodes = [paths.resolve(graph, i) for i in ids]
    owner = nodes[0].graph
    if any(n.graph is not owner for n in nodes):
        raise GraphError("copy: the selected nodes are in different blocks; copy nodes of one graph", ids)
    body = graph_to_dict(owner)
    names = {n.name for n in nodes}
    entries = []
    for entry in body["nodes"]:
        if entry["name"] not in names:
            continue
        entry["inputs"] = [ref if ref is not None and ref[0] in names else None for ref in entry["inputs"]]
        entries.append(entry)
    return {"format": "graphbuilder.fragment", "nodes": entries}


def _op_paste(graph: Graph, op: Op, result: OpResult) -> None:
    fragment = op["fragment"]
    if fragment.get("format") != "graphbuilder.fragment":
        raise GraphError("paste: the clipboard holds no GraphBuilder nodes")
    parent = op["parent"]
    where = paths.resolve_graph(graph, parent)
    dx, dy = op["offset"] or (40.0, 40.0)
    # Validate the fragment as a graph file (no execution, every field checked), unconnected inputs allowed.
    piece = graph_from_dict({"format": "graphbuilder.graph", "version": 1, "name": "clipboard",
                             "nodes": fragment.get("nodes", [])}, strict=False)
    mapping: dict[str, Node] = {}
    try:
        for node in piece.topological_order():
            ports = [None if p is None else Port(mapping[p.node.name], p.index) for p in node.inputs]
            meta = copy.deepcopy(node.meta)
            pos = meta.get("position")
            if isinstance(pos, dict) and isinstance(pos.get("x"), (int, float)) and isinstance(pos.get("y"),
                                                                                             (int, float)):
                meta["position"] = {"x": pos["x"] + dx, "y": pos["y"] + dy}
            mapping[node.name] = add_unconnected(where, node.op, where.unique_name(node.name), dict(node.params),
                                                 block=node.block, ports=ports, meta=meta)
    except GraphError:  # e.g. an input node pasted into a block: take back what was pasted
        for twin in reversed(mapping.values()):
            where.remove(twin, disconnect=True)
        raise
    result.created += [paths.join(parent, twin.name) for twin in mapping.values()]


OPS: dict[str, Callable[[Graph, Op, OpResult], None]] = {
    "add": _op_add, "remove": _op_remove, "connect": _op_connect, "disconnect": _op_disconnect,
    "params": _op_params, "rename": _op_rename, "move": _op_move, "meta": _op_meta, "group": _op_group,
    "ungroup": _op_ungroup, "paste": _op_paste,
}


def remap(op: Op, renamed: dict[str, str]) -> Op:
    """`op` with node ids renamed per `renamed` (old id -> new id, prefixes of block paths included)."""
    if not renamed:
        return op

    def fix(node_id: Any) -> Any:
        if not isinstance(node_id, str):
            return node_id
        for old, new in renamed.items():
            if node_id == old:
                return new
            if node_id.startswith(old + "/"):
                return new + node_id[len(old):]
        return node_id

    out = dict(op)
    for key in ("node", "parent"):
        if key in out:
            out[key] = fix(out[key])
    for key in ("source", "target"):
        if isinstance(out.get(key), list) and out[key]:
            out[key] = [fix(out[key][0]), *out[key][1:]]
    if isinstance(out.get("nodes"), list):
        out["nodes"] = [fix(n) for n in out["nodes"]]
    if isinstance(out.get("positions"), dict):
        out["positions"] = {fix(k): v for k, v in out["positions"].items()}
    return out


def apply_ops(graph: Graph, ops: list[Any], renamed: dict[str, str] | None = None) -> OpResult:
    """Apply browser ops to `graph` in order, each whole or not at all. Failing ops are skipped and reported
    with their message (a malformed op: with the path of its bad field).

    `renamed` maps ids the browser may still use to current ids (renames it has not seen yet): the rebase.
    """
    result = OpResult()
    seen = dict(renamed or {})
    for index, raw in enumerate(ops):
        name = raw.get("op") if isinstance(raw, dict) and isinstance(raw.get("op"), str) else None
        try:
            op = remap(requests.op(raw, index), seen)
            before = dict(result.renamed)
            OPS[op["op"]](graph, op, result)
            for old, new in result.renamed.items():
                if before.get(old) != new:
                    seen[old] = new
        except GraphError as e:
            message = str(e) if isinstance(e, requests.RequestError) else e.message
            result.errors.append({"index": index, "op": name, "message": message, "nodes": list(e.nodes)})
    return result
