"""Graph files: a stable, diff-friendly JSON document, validated field by field on load.

The format is documented in docs/format.md and by the JSON Schema shipped beside this module
(`graph.schema.json`). Files are untrusted data: loading parses JSON and resolves ops only through the
registry. Nothing is imported, unpickled or evaluated, and every error names its JSON path
(``nodes[3].params.kernel_size``). Saving is atomic (temp file + rename), so a crash leaves the old file.

Weights are tensors, and this layer does not import torch: a torch-side module registers `WEIGHTS_IO`
handlers that write and read them as safetensors beside the JSON file (``name.graph.json`` +
``name.safetensors``).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError, GraphWarning
from graphbuilder.ir.graph import BLOCK, Graph, Node, Port

FORMAT = "graphbuilder.graph"
VERSION = 1
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NODES = 100_000
MAX_BLOCK_DEPTH = 32
_NODE_KEYS = {"name", "op", "params", "inputs", "meta", "block"}
_GRAPH_KEYS = {"name", "nodes", "meta", "shared"}

# Filled by the torch side (graphbuilder.compile.weights): save(graph, json_path) and load(graph, json_path).
WEIGHTS_IO: dict[str, Callable[[Graph, str], None]] = {}


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """The file document for `graph`: format tag, version, name, meta and nodes in creation order, plus
    ``ops``, where each op from user code (``@gb.op``) came from, when there are any."""
    doc = {"format": FORMAT, "version": VERSION, **_body(graph)}
    origins = user_op_origins(graph)
    if origins:
        doc["ops"] = origins
    return doc


def user_op_origins(graph: Graph) -> dict[str, str]:
    """Op name -> ``module.Class`` for every op in `graph` (blocks included) that user code registered."""
    origins: dict[str, str] = {}
    stack = [graph]
    while stack:
        for node in stack.pop()._nodes.values():
            if node.block is not None:
                stack.append(node.block)
            elif node.op not in origins:
                opdef = registry.get(node.op)
                if opdef.from_user_code:
                    origins[node.op] = opdef.source
    return dict(sorted(origins.items()))


def _body(graph: Graph) -> dict[str, Any]:
    nodes = []
    for node in graph._nodes.values():
        entry: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "params": {k: _jsonable(v) for k, v in node._params.items()},
            "inputs": [None if p is None else [p.node.name, p.index] for p in node._inputs],
            "meta": _jsonable(node.meta),
        }
        if node.op == BLOCK:
            assert node.block is not None
            entry["block"] = _body(node.block)
        nodes.append(entry)
    body = {"name": graph.name, "meta": _jsonable(graph.meta), "nodes": nodes}
    if graph.shared:
        body["shared"] = dict(graph.shared)
    return body


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise GraphError(f"value {value!r} of type {type(value).__name__} cannot be saved in a graph file; "
                     "keep meta and params to JSON types (dict, list, str, number, bool, None)")


def graph_from_dict(data: Any, strict: bool = True) -> Graph:
    """Validate a file document and build the `Graph`. With `strict`, shape errors raise too."""
    if not isinstance(data, Mapping):
        raise GraphError(f"a graph file must hold a JSON object, got {type(data).__name__}", path="$")
    if data.get("format") != FORMAT:
        raise GraphError(f"not a GraphBuilder graph: 'format' must be {FORMAT!r}, got {data.get('format')!r}",
                         path="format")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        raise GraphError(f"unsupported version {version!r}: this GraphBuilder reads version {VERSION}; "
                         "upgrade graphbuilder to read newer files", path="version")
    origins = _origins(data.get("ops", {}))
    body = {k: v for k, v in data.items() if k not in ("format", "version", "ops")}
    try:
        graph = _graph(body, "", depth=0)
    except GraphError as e:
        raise _explain_unknown_op(e, origins) from None
    if strict:
        errors = graph.infer()
        for index, node in enumerate(graph._nodes.values()):
            if node.name in errors:
                e = errors[node.name]
                raise GraphError(f"{e.message}. The file holds a graph with errors ({len(errors)} node(s)); "
                                 "load it anyway with gb.Graph.load(path, strict=False) to fix it (in the editor "
                                 "its broken nodes show red)", e.nodes, f"nodes[{index}]")
    return graph


def _origins(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in value.items()):
        raise GraphError("'ops' must map op names to the user module.Class that defines them", path="ops")
    return dict(value)


def _explain_unknown_op(error: GraphError, origins: dict[str, str]) -> GraphError:
    """An unknown op that the file says comes from user code: say which module to import (never import it)."""
    for op, source in origins.items():
        if error.message.startswith(f"unknown op {op!r}"):
            module, _, cls = source.rpartition(".")
            how = (f"run `import {module}` (which registers it with @gb.op)" if module and module != "__main__"
                   else "run the notebook cell or script that defines it with @gb.op")
            return GraphError(f"op {op!r} comes from user code ({source}), which is not loaded: {how}, then "
                              "load the file again. Loading never imports code named in a file", error.nodes,
                              error.path)
    return error


def _graph(body: Mapping[str, Any], path: str, depth: int) -> Graph:
    if depth > MAX_BLOCK_DEPTH:
        raise GraphError(f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels", path=path or "$")
    _expect_keys(body, _GRAPH_KEYS, {"name", "nodes"}, path)
    name = body["name"]
    if not isinstance(name, str) or not name:
        raise GraphError(f"'name' must be a non-empty string, got {name!r}", path=_join(path, "name"))
    graph = Graph(name)
    graph.meta = _expect(body.get("meta", {}), dict, _join(path, "meta"))
    nodes = _expect(body["nodes"], list, _join(path, "nodes"))
    if len(nodes) > MAX_NODES:
        raise GraphError(f"{len(nodes)} nodes is more than the limit of {MAX_NODES}", path=_join(path, "nodes"))
    wiring: list[tuple[Node, list[Any], str]] = []
    for i, entry in enumerate(nodes):
        where = _join(path, f"nodes[{i}]")
        node, inputs = _node(graph, entry, where, depth)
        graph._nodes[node.name] = node
        wiring.append((node, inputs, where))
    for node, inputs, where in wiring:
        node._inputs = [None] * len(inputs)
        for j, ref in enumerate(inputs):
            graph._wire(node, j, _port(graph, ref, f"{where}.inputs[{j}]"))
    try:
        graph.topological_order()
    except GraphError as e:
        raise e.at(_join(path, "nodes")) from None
    shared = _expect(body.get("shared", {}), dict, _join(path, "shared"))
    for name, owner in shared.items():
        if name not in graph._nodes or not isinstance(owner, str) or owner not in graph._nodes:
            raise GraphError(f"shared entry {name!r}: {owner!r} names no node of this graph",
                             path=_join(path, f"shared.{name}"))
        graph.shared[name] = owner
    graph._dirty = set(graph._nodes.values())
    return graph


def _node(graph: Graph, entry: Any, where: str, depth: int) -> tuple[Node, list[Any]]:
    _expect(entry, dict, where)
    _expect_keys(entry, _NODE_KEYS, {"name", "op"}, where)
    name = entry["name"]
    if not isinstance(name, str) or not name:
        raise GraphError(f"node name must be a non-empty string, got {name!r}", path=f"{where}.name")
    if name in graph._nodes:
        raise GraphError(f"duplicate node name {name!r}: names must be unique in a graph", [name],
                         path=f"{where}.name")
    op = entry["op"]
    if not isinstance(op, str):
        raise GraphError(f"'op' must be a string, got {op!r}", [name], path=f"{where}.op")
    params = _expect(entry.get("params", {}), dict, f"{where}.params")
    inputs = _expect(entry.get("inputs", []), list, f"{where}.inputs")
    meta = _expect(entry.get("meta", {}), dict, f"{where}.meta")
    if op == BLOCK:
        if params:
            raise GraphError("a block node takes no params", [name], path=f"{where}.params")
        block_body = _expect(entry.get("block"), dict, f"{where}.block")
        block = _graph(block_body, f"{where}.block", depth + 1)
        if len(inputs) != len(block.inputs):
            raise GraphError(f"block {name!r} has {len(block.inputs)} inputs but {len(inputs)} are wired", [name],
                             path=f"{where}.inputs")
        return Node(graph, name, op, {}, block=block, meta=meta), inputs
    if "block" in entry:
        raise GraphError("only nodes with op 'block' may have a 'block' field", [name], path=f"{where}.block")
    try:
        opdef = registry.get(op)
    except GraphError as e:
        raise GraphError(e.message, [name], path=f"{where}.op") from None
    for key, value in params.items():
        try:
            opdef.param(key).validate(value)
        except GraphError as e:
            raise GraphError(e.message, [name], path=f"{where}.params.{key}") from None
    try:
        checked = opdef.validate_params(params)
    except GraphError as e:
        raise GraphError(e.message, [name], path=f"{where}.params") from None
    need = len(opdef.inputs)
    if (len(inputs) < need) if opdef.variadic else (len(inputs) != need):
        raise GraphError(f"op {op!r} takes {'at least ' if opdef.variadic else ''}{need} input(s), "
                         f"got {len(inputs)}", [name], path=f"{where}.inputs")
    return Node(graph, name, op, checked, meta=meta), inputs


def _port(graph: Graph, ref: Any, where: str) -> Port | None:
    if ref is None:
        return None
    if (not isinstance(ref, list) or len(ref) != 2 or not isinstance(ref[0], str)
            or not isinstance(ref[1], int) or isinstance(ref[1], bool) or ref[1] < 0):
        raise GraphError(f"an input must be [node_name, output_index] or null, got {ref!r}", path=where)
    if ref[0] not in graph._nodes:
        raise GraphError(f"input refers to node {ref[0]!r}, which does not exist in graph {graph.name!r}",
                         [ref[0]], path=where)
    return Port(graph._nodes[ref[0]], ref[1])


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        names = {dict: "an object", list: "a list", str: "a string"}
        raise GraphError(f"expected {names.get(kind, kind.__name__)}, got {type(value).__name__}", path=where)
    return value


def _expect_keys(obj: Mapping[str, Any], allowed: set[str], required: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            raise GraphError(f"unknown field {key!r}; allowed fields are {sorted(allowed)}",
                             path=_join(where, str(key)))
    for key in sorted(required - set(obj)):
        raise GraphError(f"missing field {key!r}", path=_join(where, key))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def dumps(graph: Graph) -> str:
    """The file text: sorted keys, one field per line, trailing newline (diff-friendly)."""
    return json.dumps(graph_to_dict(graph), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str | bytes, strict: bool = True) -> Graph:
    """Parse file text into a `Graph` (raises `GraphError` for anything that is not a valid graph file)."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise GraphError(f"file is {len(text)} bytes, over the {MAX_FILE_BYTES}-byte limit", path="$")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise GraphError(f"not a UTF-8 JSON file (byte {e.start} is invalid); graph files are JSON text",
                             path="$") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise GraphError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", path="$") from None
    except RecursionError:
        raise GraphError("JSON nests too deeply to be a graph file", path="$") from None
    return graph_from_dict(data, strict=strict)


def _reject_constant(name: str) -> Any:
    raise GraphError(f"{name} is not valid JSON; use a finite number", path="$")


def save(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write `graph` to `path` atomically; its weights (if any) go beside it as safetensors.

    A graph with errors saves too (work in progress is never lost), with a warning that names the broken
    nodes and how to load the file back (``strict=False``)."""
    path = os.fspath(path)
    text = dumps(graph)
    errors = graph.infer()
    if errors:
        warnings.warn(f"graph {graph.name!r} has errors at {sorted(errors)[:5]}; saved anyway. Load it back "
                      f"with gb.Graph.load({path!r}, strict=False)", GraphWarning, stacklevel=3)
    if "save" in WEIGHTS_IO:  # called without weights too, so a stale weights file is removed
        WEIGHTS_IO["save"](graph, path)
    elif _has_weights(graph):
        raise GraphError("this graph has weights; import graphbuilder (not only graphbuilder.ir) to save them")
    atomic_write(path, text.encode("utf-8"))


def load(path: str | os.PathLike[str], strict: bool = True) -> Graph:
    """Read a graph file (and its weights file, if present). Never executes anything from either."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise GraphError(f"{path} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", path="$")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GraphError(f"cannot read graph file {path!r}: {e.strerror}") from None
    graph = loads(data, strict=strict)
    if "load" in WEIGHTS_IO:
        WEIGHTS_IO["load"](graph, path)
    return graph


def _has_weights(graph: Graph) -> bool:
    return bool(graph.weights) or any(n.block is not None and _has_weights(n.block) for n in graph._nodes.values())


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder and a rename: all or nothing."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
