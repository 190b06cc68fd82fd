"""The editor's graph document: a `Graph` plus its analysis, as JSON, and node-level diffs between two.

The document is what the browser draws (docs/widget-protocol.md has the field list):

    {"version": 3, "graph": {"name", "meta"}, "totals": {"params", "flops", "errors"},
     "nodes": {id: {"id", "name", "op", "parent", "params", "inputs", "input_names", "outputs",
                    "error", "error_nodes", "num_params", "flops", "meta", "is_block", "variadic"}}}

Node ids are node paths (`graphbuilder.ir.paths`): a top-level node's id is its escaped name; a node inside
block ``b`` is ``b/inner``. Keys here are snake_case; `graphbuilder.widget.wire` converts them once, at the edge.

Boundary: reads the IR and `ir.render.node_flops` (FLOPs on meta tensors, cached per op, params and input
shapes); never edits the graph, never imports compile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from graphbuilder.ir import paths, registry, strict_json
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node
from graphbuilder.ir.render import node_flops
from graphbuilder.ir.serialize import _jsonable
from graphbuilder.ir.snapshot import same_items

NodeDoc = dict[str, Any]
Change = dict[str, Any]


# -- analysis ------------------------------------------------------------------------------------------------
class FlopCache:
    """FLOPs per (op, params, input specs): counting runs the op on meta tensors, so results are reused."""

    def __init__(self, limit: int = 20_000) -> None:
        self._cache: dict[tuple[Any, ...], int | None] = {}
        self._limit = limit

    def of(self, node: Node) -> int | None:
        """FLOPs of `node` at its input shapes, None if its inference failed or counting is impossible."""
        if node._error is not None or node._outputs is None:
            return None
        if node.op == BLOCK:
            assert node.block is not None
            total = 0
            for inner in node.block._nodes.values():
                value = self.of(inner)
                if value is None:
                    return None
                total += value
            return total
        specs = tuple(p.node._outputs[p.index] for p in node._inputs if p is not None and p.node._outputs)
        key = (node.op, repr(node._params), specs)
        if key not in self._cache:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            try:
                self._cache[key] = node_flops(node)
            except (GraphError, RuntimeError, TypeError, ValueError):
                self._cache[key] = None
        return self._cache[key]


def node_doc(node: Node, node_id: str, parent: str | None, flops: FlopCache, ids: Mapping[Node, str], *,
             params_json: Any = None, meta_json: Any = None) -> NodeDoc:
    """The document entry of one node; `ids` maps nodes to their ids (for input references).

    `params_json` and `meta_json`, when given, are the JSON forms of the node's params and meta from its
    previous entry (known unchanged), shared instead of rebuilt.
    """
    if node.op == BLOCK:
        assert node.block is not None
        input_names = [n.name for n in node.block.inputs]
        variadic = False
    else:
        opdef = registry.get(node.op)
        input_names = list(opdef.inputs)
        variadic = opdef.variadic
    return {
        "id": node_id,
        "name": node.name,
        "op": node.op,
        "parent": parent,
        "params": _jsonable(node._params) if params_json is None else params_json,
        "inputs": [None if p is None else [ids[p.node], p.index] for p in node._inputs],
        "input_names": input_names,
        "variadic": variadic,
        **inference_fields(node, flops),
        "meta": safe_json(node.meta) if meta_json is None else meta_json,
        "is_block": node.op == BLOCK,
    }


def inference_fields(node: Node, flops: FlopCache) -> NodeDoc:
    """The fields of a node's entry that re-inference changes: shapes, error, parameter count, FLOPs."""
    error = node._error
    return {
        "outputs": [s.to_json() for s in node._outputs] if node._outputs is not None and error is None else [],
        "error": None if error is None else error.message,
        "error_nodes": [] if error is None else list(error.nodes),
        "num_params": node._num_params,
        "flops": flops.of(node),
    }


class Signature(NamedTuple):
    """What a node's document entry depends on. `layout` and meta keys compare by value; the params dict,
    inference results and meta values by identity: the IR replaces them on every edit, and they are held
    (not their ids), so a freed object's address can never match a new one."""

    layout: tuple[Any, ...]  # name, op, parent, inputs, parameter count
    params: Any
    outputs: Any
    error: Any
    meta_items: tuple[tuple[str, Any], ...]

    def same_meta(self, other: Signature) -> bool:
        """The very same meta values under the same keys."""
        return same_items(self.meta_items, other.meta_items)

    def same(self, other: Signature) -> bool:
        """Nothing the entry shows changed."""
        return self.layout == other.layout and self.params is other.params and self.outputs is other.outputs \
            and self.error is other.error and self.same_meta(other)


class DocCache:
    """Node entries from the last build, reused while the node's `Signature` is unchanged.

    So a browser edit rebuilds only the entries it touched, and a rebuilt entry (a re-inferred node: new
    shapes, same params) shares the JSON of its unchanged params and meta. In-place changes of nested meta
    values are not seen: builds after Python-side edits pass ``full=True``.
    """

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Signature, NodeDoc]] = {}

    @staticmethod
    def signature(node: Node, parent: str | None) -> Signature | None:
        """What an entry depends on, or None for blocks (their insides can change under them)."""
        if node.block is not None:
            return None
        inputs = tuple(None if p is None else (p.node.name, p.index) for p in node._inputs)
        return Signature((node.name, node.op, parent, inputs, node._num_params), node._params, node._outputs,
                         node._error, tuple(node.meta.items()))


def build_nodes(graph: Graph, flops: FlopCache, cache: DocCache | None = None,
                full: bool = True) -> dict[str, NodeDoc]:
    """Every node's document entry by id (inference brought up to date first, blocks included).

    With a `cache` and ``full=False``, entries of nodes whose signature did not change are reused, and other
    entries share the JSON of params and meta that did not change.
    """
    graph.infer()
    entries = list(paths.walk(graph))
    for _, _, node in entries:  # a block whose input is invalid was not re-inferred: bring its inside up to
        if node.block is not None:  # date now, or FLOPs would re-infer it halfway through and leave stale entries
            node.block.infer()
    ids = {node: node_id for node_id, _, node in entries}
    out: dict[str, NodeDoc] = {}
    fresh: dict[str, tuple[Signature, NodeDoc]] = {}
    for node_id, parent, node in entries:
        sig = DocCache.signature(node, parent) if cache is not None else None
        hit = cache.entries.get(node_id) if cache is not None and not full and sig is not None else None
        entry = _entry(node, node_id, parent, flops, ids, sig, hit)
        out[node_id] = entry
        if sig is not None:
            fresh[node_id] = (sig, entry)
    if cache is not None:
        cache.entries = fresh
    return out


def rebuilt_entry(node: Node, node_id: str, parent: str | None, flops: FlopCache, ids: Mapping[Node, str],
                  cache: DocCache) -> NodeDoc:
    """The entry of `node`, known changed (`cache` reused where its signature says so, and updated)."""
    sig = DocCache.signature(node, parent)
    entry = _entry(node, node_id, parent, flops, ids, sig, cache.entries.get(node_id) if sig is not None else None)
    if sig is None:
        cache.entries.pop(node_id, None)
    else:
        cache.entries[node_id] = (sig, entry)
    return entry


def _entry(node: Node, node_id: str, parent: str | None, flops: FlopCache, ids: Mapping[Node, str],
           sig: Signature | None, hit: tuple[Signature, NodeDoc] | None) -> NodeDoc:
    """A cached entry when nothing it shows changed, else a new one sharing unchanged params and meta JSON."""
    if hit is None or sig is None:
        return node_doc(node, node_id, parent, flops, ids)
    old, prev = hit
    if old.same(sig):
        return prev
    if old.layout == sig.layout and old.params is sig.params and old.same_meta(sig):  # re-inferred only
        return {**prev, **inference_fields(node, flops)}
    return node_doc(node, node_id, parent, flops, ids, params_json=prev["params"] if old.params is sig.params else None,
                    meta_json=prev["meta"] if old.same_meta(sig) else None)


def totals(graph: Graph, nodes: dict[str, NodeDoc]) -> dict[str, Any]:
    """Header figures: total params and FLOPs of the top level (FLOPs None while any node is invalid)."""
    top = [d for d in nodes.values() if d["parent"] is None]
    flops = [d["flops"] for d in top]
    return {
        "params": sum(d["num_params"] for d in top),
        "flops": None if any(f is None for f in flops) else sum(flops),
        "errors": sum(1 for d in nodes.values() if d["error"] is not None),
        "nodes": len(top),
    }


def graph_header(graph: Graph) -> dict[str, Any]:
    """The graph-level fields of the document."""
    return {"name": graph.name, "meta": safe_json(graph.meta)}


def safe_json(value: Any) -> Any:
    """`value` as JSON types for display; meta that a file could not hold shows as text (objects, NaN, lone
    surrogates), and nesting beyond `limits.MAX_VALUE_DEPTH` as "…" (`strict_json.displayable`; never raises,
    never recurses)."""
    return strict_json.displayable(value)


def document(graph: Graph, version: int, flops: FlopCache, cache: DocCache | None = None,
             full: bool = True) -> dict[str, Any]:
    """The full document of `graph` at `version` (see `build_nodes` for `cache` and `full`)."""
    nodes = build_nodes(graph, flops, cache, full)
    return {"version": version, "graph": graph_header(graph), "totals": totals(graph, nodes), "nodes": nodes}


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Node-level changes that turn document `old` into `new` (versions aside).

    Changes are ``{"op": "upsert", "node": entry}`` (a new node), ``{"op": "fields", "id": id, "fields":
    {key: value}}`` (only what changed in an existing entry: after an edit that re-infers many nodes that is
    their shapes and FLOPs, a fraction of each entry), ``{"op": "delete", "id": id}``,
    ``{"op": "totals", "totals": ...}`` and ``{"op": "graph", "graph": ...}``.
    """
    changes: list[Change] = []
    if old.get("graph") != new["graph"]:
        changes.append({"op": "graph", "graph": new["graph"]})
    old_nodes = old.get("nodes", {})
    for node_id in old_nodes:
        if node_id not in new["nodes"]:
            changes.append({"op": "delete", "id": node_id})
    for node_id, entry in new["nodes"].items():
        before = old_nodes.get(node_id)
        if before is entry:
            continue
        if before is None or before.keys() != entry.keys():
            changes.append({"op": "upsert", "node": entry})
            continue
        fields = {k: v for k, v in entry.items() if before[k] is not v and before[k] != v}
        if fields:
            changes.append({"op": "fields", "id": node_id, "fields": fields})
    if old.get("totals") != new["totals"]:
        changes.append({"op": "totals", "totals": new["totals"]})
    return changes


def apply_changes(doc: dict[str, Any], changes: list[Change], version: int) -> dict[str, Any]:
    """Apply `changes` to `doc` (a new dict; node entries are shared). The browser does the same."""
    nodes = dict(doc.get("nodes", {}))
    out = {**doc, "version": version, "nodes": nodes}
    for change in changes:
        kind = change["op"]
        if kind == "upsert":
            nodes[change["node"]["id"]] = change["node"]
        elif kind == "fields":
            nodes[change["id"]] = {**nodes[change["id"]], **change["fields"]}
        elif kind == "delete":
            nodes.pop(change["id"], None)
        elif kind == "totals":
            out["totals"] = change["totals"]
        elif kind == "graph":
            out["graph"] = change["graph"]
    return out
