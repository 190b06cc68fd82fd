"""Graph files: a stable, diff-friendly JSON document, validated field by field on load.

The format is documented in docs/format.md and by the JSON Schema shipped beside this module
(`graph.schema.json`). Files are untrusted data: loading parses JSON and resolves ops only through the
registry. Nothing is imported, unpickled or evaluated, and every error names its JSON path
(``nodes[3].params.kernel_size``). The writer and the reader apply the same rules (`strict_json` for
values, `limits` for sizes), so a graph that saves also loads, and a graph that cannot be saved raises
`GraphError` before any file is touched.

Weights are tensors, and this layer does not import torch: a torch-side module registers `WEIGHTS_IO`
handlers that encode and read them as safetensors beside the JSON file (``name.graph.json`` +
``name.safetensors``). The two files are one pair: `save` replaces both or neither (`replace_files`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from graphbuilder.ir import collector, paths, registry, strict_json
from graphbuilder.ir.errors import GraphError, GraphWarning
from graphbuilder.ir.graph import BLOCK, Graph, Node, Port
from graphbuilder.ir.limits import MAX_BLOCK_DEPTH, MAX_DOCUMENT_DEPTH, MAX_FILE_BYTES, MAX_NODES

FORMAT = "graphbuilder.graph"
VERSION = 2
_LEGACY_VERSION = 1  # tied paths percent-escaped per part; read, never written
_NODE_KEYS = {"name", "op", "params", "inputs", "meta", "block"}
_GRAPH_KEYS = {"name", "nodes", "meta", "shared", "tied"}

# Filled by the torch side (graphbuilder.compile.weights_io):
#   encode(graph, json_text) -> bytes of the weights file for the graph saved as `json_text`, or None (no weights);
#   load(graph, json_path) reads the weights file beside `json_path`, if any, into the graph.
WEIGHTS_IO: dict[str, Callable[..., Any]] = {}


def weights_path(json_path: str) -> str:
    """``net.graph.json`` -> ``net.safetensors`` (``net.json`` -> ``net.safetensors``)."""
    for suffix in (".graph.json", ".json"):
        if json_path.endswith(suffix):
            return json_path[: -len(suffix)] + ".safetensors"
    return json_path + ".safetensors"


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """The file document for `graph`: format tag, version, name, meta and nodes in creation order, plus
    ``ops``, where each op from user code (``@gb.op``) came from, when there are any.

    Raises `GraphError` with the JSON path of anything a file cannot hold (see `strict_json`) and for graphs
    over the loader's limits (`limits.MAX_NODES` in all, `limits.MAX_BLOCK_DEPTH`), so what saves also loads.
    """
    doc = {"format": FORMAT, "version": VERSION, **_body(graph, "", 0, [0])}
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


def _body(graph: Graph, path: str, depth: int, count: list[int]) -> dict[str, Any]:
    # `depth` counts blocks; a value in a node sits under 3 containers per block level plus 3 (or 4 for params)
    if depth > MAX_BLOCK_DEPTH:
        raise GraphError(f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels; a file this deep would not load",
                         path=path or "$")
    count[0] += len(graph._nodes)
    if count[0] > MAX_NODES:
        raise GraphError(f"the graph has more than {MAX_NODES} nodes (blocks included); a file this big would not "
                         "load", path=_join(path, "nodes"))
    room = MAX_DOCUMENT_DEPTH - 3 * depth
    nodes = []
    for i, node in enumerate(graph._nodes.values()):
        where = _join(path, f"nodes[{i}]")
        entry: dict[str, Any] = {
            "name": strict_json.check_text(node.name, f"{where}.name", "node name"),
            "op": node.op,
            "params": {k: strict_json.to_json(v, f"{where}.params.{k}", room - 4) for k, v in node._params.items()},
            "inputs": [None if p is None else [p.node.name, p.index] for p in node._inputs],
            "meta": strict_json.to_json(node.meta, f"{where}.meta", room - 3),
        }
        if node.op == BLOCK:
            assert node.block is not None
            entry["block"] = _body(node.block, f"{where}.block", depth + 1, count)
        nodes.append(entry)
    body = {"name": strict_json.check_text(graph.name, _join(path, "name"), "graph name"),
            "meta": strict_json.to_json(graph.meta, _join(path, "meta"), room - 1), "nodes": nodes}
    if graph.shared:
        body["shared"] = strict_json.to_json(dict(graph.shared), _join(path, "shared"), room - 1)
    if graph.tied:
        body["tied"] = strict_json.to_json(dict(graph.tied), _join(path, "tied"), room - 1)
    return body


def _jsonable(value: Any) -> Any:
    """`value` as JSON types by the file rules (`strict_json.to_json`); `GraphError` for anything else."""
    return strict_json.to_json(value)


def graph_from_dict(data: Any, strict: bool = True) -> Graph:
    """Validate a file document and build the `Graph`. With `strict`, shape errors raise too."""
    if not isinstance(data, Mapping):
        raise GraphError(f"a graph file must hold a JSON object, got {type(data).__name__}", path="$")
    if data.get("format") != FORMAT:
        raise GraphError(f"not a GraphBuilder graph: 'format' must be {FORMAT!r}, got {data.get('format')!r}",
                         path="format")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in (VERSION, _LEGACY_VERSION):
        raise GraphError(f"unsupported version {version!r}: this GraphBuilder reads versions {_LEGACY_VERSION} and "
                         f"{VERSION}; upgrade graphbuilder to read newer files", path="version")
    origins = _origins(data.get("ops", {}))
    body = {k: v for k, v in data.items() if k not in ("format", "version", "ops")}
    _count_nodes(body)
    try:
        graph = _graph(body, "", depth=0, legacy=version == _LEGACY_VERSION)
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


def _count_nodes(body: Mapping[str, Any]) -> None:
    """Refuse a document with more than `MAX_NODES` node entries, blocks included, before building any node
    (a file could otherwise spread them over blocks, each under the limit). Malformed parts are left to
    `_graph`, which reports them with their paths."""
    total, stack = 0, [(body, "")]
    while stack:
        graph, path = stack.pop()
        nodes = graph.get("nodes")
        if not isinstance(nodes, list):
            continue
        total += len(nodes)
        if total > MAX_NODES:
            raise GraphError(f"more than {MAX_NODES} nodes (blocks included), the limit for one file",
                             path=_join(path, "nodes"))
        inner = [(entry["block"], _join(path, f"nodes[{i}].block")) for i, entry in enumerate(nodes)
                 if isinstance(entry, Mapping) and isinstance(entry.get("block"), Mapping)]
        stack.extend(reversed(inner))  # document order: the error names the first block past the limit


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


def _legacy_path(path: str) -> str:
    """A version-1 tied path as a node path."""
    return paths.join_all(paths.split_legacy(path))


def _graph(body: Mapping[str, Any], path: str, depth: int, legacy: bool = False) -> Graph:
    if depth > MAX_BLOCK_DEPTH:
        raise GraphError(f"blocks nest deeper than {MAX_BLOCK_DEPTH} levels", path=path or "$")
    _expect_keys(body, _GRAPH_KEYS, {"name", "nodes"}, path)
    name = body["name"]
    if not isinstance(name, str) or not name:
        raise GraphError(f"'name' must be a non-empty string, got {name!r}", path=_join(path, "name"))
    graph = Graph(name)
    graph.meta = _expect(body.get("meta", {}), dict, _join(path, "meta"))
    nodes = _expect(body["nodes"], list, _join(path, "nodes"))
    wiring: list[tuple[Node, list[Any], str]] = []
    for i, entry in enumerate(nodes):
        where = _join(path, f"nodes[{i}]")
        node, inputs = _node(graph, entry, where, depth, legacy)
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
    tied = _expect(body.get("tied", {}), dict, _join(path, "tied"))
    for weight, owner in tied.items():  # checked by Graph.check (shapes need inference): strings here
        if not isinstance(owner, str):
            raise GraphError(f"tied entry {weight!r}: {owner!r} is not a weight path",
                             path=_join(path, f"tied.{weight}"))
        graph.tied[_legacy_path(weight) if legacy else weight] = _legacy_path(owner) if legacy else owner
    graph._dirty = set(graph._nodes.values())
    return graph


def _node(graph: Graph, entry: Any, where: str, depth: int, legacy: bool = False) -> tuple[Node, list[Any]]:
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
        block = _graph(block_body, f"{where}.block", depth + 1, legacy)
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
    try:
        checked = opdef.validate_params(params)
    except GraphError as e:
        raise GraphError(e.message, [name], path=f"{where}.params.{e.path}") from None
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
    """The file text: sorted keys, one field per line, trailing newline (diff-friendly). Raises `GraphError`
    (with the JSON path) for anything a file cannot hold."""
    return strict_json.dumps(graph_to_dict(graph), indent=1, sort_keys=True) + "\n"


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
    elif len(text) > MAX_FILE_BYTES:
        raise GraphError(f"text is {len(text)} characters, over the {MAX_FILE_BYTES}-byte limit", path="$")
    with collector.paused():  # tens of thousands of objects that live on: no full collections meanwhile
        return graph_from_dict(strict_json.loads(text, MAX_DOCUMENT_DEPTH), strict=strict)


def save(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write `graph` to `path` and its weights (if any) beside it as safetensors: both files or neither.

    Everything is encoded in memory first, so a graph that cannot be saved raises `GraphError` with no file
    touched; then both files are replaced together (`replace_files`). A graph without weights removes a
    weights file left from an earlier save, in the same step. A graph with errors saves too (work in progress
    is never lost), with a warning that names the broken nodes and how to load the file back (``strict=False``).
    """
    path = os.fspath(path)
    text = dumps(graph)
    errors = graph.infer()
    if errors:
        warnings.warn(f"graph {graph.name!r} has errors at {sorted(errors)[:5]}; saved anyway. Load it back "
                      f"with gb.Graph.load({path!r}, strict=False)", GraphWarning, stacklevel=3)
    files: dict[str, bytes | None] = {path: text.encode("utf-8")}
    if "encode" in WEIGHTS_IO:
        files[weights_path(path)] = WEIGHTS_IO["encode"](graph, text)
    elif _has_weights(graph):
        raise GraphError("this graph has weights; import graphbuilder (not only graphbuilder.ir) to save them")
    replace_files(files)


def load(path: str | os.PathLike[str], strict: bool = True) -> Graph:
    """Read a graph file (and its weights file, if present). Never executes anything from either."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise GraphError(f"{path} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", path="$")
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
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
    replace_files({path: data})


def replace_files(files: Mapping[str, bytes | None]) -> None:
    """Give each path in `files` its bytes (None: remove the file), all together or not at all.

    Each new file is written to a temp file beside its target and flushed to disk; each old file is kept as a
    hard link (a copy where links are not supported). Only then are targets renamed over. If anything fails,
    the targets already replaced get their old files back, and temp and backup files are removed, so the
    folder is as before. (A power cut between two renames can still leave a new file beside an old one; the
    weights file records the hash of the graph file it was saved with, so loading notices such a pair.)
    """
    staged: dict[str, str] = {}
    backups: dict[str, str] = {}
    done: list[str] = []
    try:
        for target, data in files.items():
            if data is not None:
                staged[target] = _write_temp(target, data)
        for target in files:
            if os.path.exists(target):
                backups[target] = _keep_old(target)
        for target, data in files.items():
            if data is not None:
                os.replace(staged[target], target)
                del staged[target]
            elif target in backups:
                os.unlink(target)
            done.append(target)
    except BaseException:
        for target in reversed(done):
            if target in backups:
                os.replace(backups.pop(target), target)
            elif os.path.exists(target):
                os.unlink(target)
        raise
    finally:
        for leftover in [*staged.values(), *backups.values()]:
            if os.path.exists(leftover):
                os.unlink(leftover)
    for folder in {os.path.dirname(os.path.abspath(t)) for t in files}:
        _sync_folder(folder)


def _write_temp(target: str, data: bytes) -> str:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(os.path.abspath(target)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _keep_old(target: str) -> str:
    fd, backup = tempfile.mkstemp(prefix=".old-", dir=os.path.dirname(os.path.abspath(target)))
    os.close(fd)
    try:
        os.unlink(backup)
        os.link(target, backup)
    except OSError:
        shutil.copyfile(target, backup)
    return backup


def _sync_folder(folder: str) -> None:
    """Make the renames durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
