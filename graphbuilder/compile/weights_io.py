"""Graph weights on disk: ``name.safetensors`` beside ``name.graph.json``, registered as `WEIGHTS_IO`.

Boundary: the IR (`graphbuilder.ir.serialize`) writes the JSON and calls these two handlers; this module is
the torch side. It reads and writes safetensors only, so loading never unpickles anything.

File layout. One tensor per (node, state_dict key), nested blocks included. A tensor's key is the node path
(`graphbuilder.ir.paths`) of the node names from the top graph down, then the state_dict key, so any node name
round-trips unambiguously: ``layer1/0/conv1/weight`` is the ``weight`` of node ``conv1`` in block ``0`` of block
``layer1``, and ``a\\/b/weight`` is the ``weight`` of node ``a/b``. A tied weight (``graph.tied``, see
`graphbuilder.ir.ties`) is stored once, under its owner's key, and loading gives the tied node the owner's
tensor. The safetensors metadata holds ``format = graphbuilder.weights``, ``version = 2`` and ``graph_sha256``,
the hash of the graph JSON the weights were saved with.

Version 1 files (before node paths had one encoding) escaped each key part as ``%`` -> ``%25``, ``/`` -> ``%2F``;
they still load: their keys (and per-node hashes) are decoded by that rule, and only for that version.

On load, weights whose graph file is unchanged load as they are. If the JSON was edited since (the hash
differs) a warning says so and a node's weights load only when the node still exists with the same op and
params (a per-node hash, also in the metadata as ``nodes``) and every tensor fits the module its params build
for its current input shapes: the same rule editing in Python applies.

Writing: `encode_weights` makes the file's bytes in memory; `graphbuilder.ir.serialize.save` then replaces
the graph file and the weights file together (both or neither), and removes a stale weights file when the
graph has no weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from graphbuilder.compile.weights import check_file_dtype, declared_dtype, fits_dtypes
from graphbuilder.ir import paths, registry, serialize, strict_json
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph
from graphbuilder.ir.serialize import weights_path
from graphbuilder.ir.ties import split_path

FORMAT = "graphbuilder.weights"
VERSION = "2"
_LEGACY_VERSION = "1"  # keys percent-escaped per part; read, never written


def tensor_key(path: list[str], node: str, key: str) -> str:
    """The file key of weight `key` of `node` inside the blocks named by `path` (see the module docstring)."""
    return paths.join_all([*path, node, key])


def flatten_weights(graph: Graph, path: list[str] | None = None) -> dict[str, torch.Tensor]:
    """All weights of `graph` and its nested blocks as ``{file key: tensor}``."""
    path = path or []
    out: dict[str, torch.Tensor] = {}
    for node_name, state in graph.weights.items():
        for key, tensor in state.items():
            if not isinstance(tensor, torch.Tensor):
                raise GraphError(f"graph.weights[{node_name!r}][{key!r}] is {type(tensor).__name__}, not a tensor",
                                 [node_name])
            check_file_dtype(paths.join_all([*path, node_name]), key, tensor, "cannot save",
                             declared_dtype(graph._nodes.get(node_name)))
            out[tensor_key(path, node_name, key)] = tensor.detach().cpu().contiguous().clone()
    for node in graph._nodes.values():
        if node.op == BLOCK and node.block is not None:
            out.update(flatten_weights(node.block, [*path, node.name]))
    for weight in graph.tied:  # stored once, under the owner's key
        out.pop(paths.join_all([*path, *paths.split(weight)]), None)
    return out


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _same_graph_text(saved_hash: str | None, json_path: str, graph: Graph) -> bool:
    """Whether the graph file is the text the weights were saved with: its bytes as read (the usual case, no
    re-encoding; also how a version-1 weights file matches the version-1 graph text it was saved with), else the
    graph encoded again (a file re-formatted by hand but meaning the same)."""
    try:
        with open(json_path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == saved_hash:
                return True
    except OSError:
        pass
    return saved_hash == _text_hash(serialize.dumps(graph))


def _tie_loaded(graph: Graph, grouped: dict[tuple[str, ...], dict[str, torch.Tensor]],
                path: tuple[str, ...] = ()) -> None:
    """Give each tied weight its owner's tensor from the file (`flatten_weights` stored it once)."""
    for weight, owner in graph.tied.items():
        (w_nodes, w_key), (o_nodes, o_key) = split_path(weight), split_path(owner)
        tensor = grouped.get((*path, *o_nodes), {}).get(o_key)
        if tensor is not None:
            grouped.setdefault((*path, *w_nodes), {})[w_key] = tensor
    for node in graph._nodes.values():
        if node.op == BLOCK and node.block is not None:
            _tie_loaded(node.block, grouped, (*path, node.name))


def _node_hashes(graph: Graph, path: list[str] | None = None, every: bool = False) -> dict[str, str]:
    """Per node with weights (with `every`, per node): a hash of its op and params, what editing in Python
    drops weights for. Keys are node paths."""
    path = path or []
    out = {}
    for node in graph._nodes.values():
        if node.op == BLOCK and node.block is not None:
            out.update(_node_hashes(node.block, [*path, node.name], every))
        elif every or node.name in graph.weights:
            text = json.dumps([node.op, serialize._jsonable(dict(node._params))], sort_keys=True)
            out[paths.join_all([*path, node.name])] = hashlib.sha256(text.encode()).hexdigest()
    return out


def encode_weights(graph: Graph, json_text: str) -> bytes | None:
    """The weights file for `graph` saved as `json_text` (safetensors bytes), or None when it has no weights."""
    tensors = flatten_weights(graph)
    if not tensors:
        return None
    metadata = {"format": FORMAT, "version": VERSION, "graph_sha256": _text_hash(json_text),
                "nodes": json.dumps(_node_hashes(graph), sort_keys=True)}
    return st_save(tensors, metadata=metadata)


def load_weights(graph: Graph, json_path: str) -> None:
    """Read the weights file beside `json_path` (if any) into `graph.weights` and its blocks' weights.

    The file is untrusted data like the graph file: its metadata is parsed by the strict JSON rule and
    checked field by field, and every tensor's dtype by the dtype rule (`compile.weights`); anything else
    raises `GraphError` naming the file.
    """
    source = weights_path(json_path)
    if not os.path.exists(source):
        return
    try:
        with open(source, "rb") as f:
            data = f.read()
        tensors = st_load(data)
    except (OSError, SafetensorError, ValueError) as e:
        raise GraphError(f"cannot read weights file {source!r}: {e}; delete it to load the graph without "
                         "weights") from None
    metadata = _metadata(data, source)
    if metadata.get("format") != FORMAT or metadata.get("version") not in (VERSION, _LEGACY_VERSION):
        raise GraphError(f"{source!r} is not a GraphBuilder weights file (format {metadata.get('format')!r}, "
                         f"version {metadata.get('version')!r}); this GraphBuilder reads versions "
                         f"{_LEGACY_VERSION} and {VERSION}")
    legacy = metadata.get("version") == _LEGACY_VERSION
    split = paths.split_legacy if legacy else paths.split
    edited = not _same_graph_text(metadata.get("graph_sha256"), json_path, graph)
    grouped: dict[tuple[str, ...], dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        parts = split(key)
        if len(parts) < 2:
            raise GraphError(f"weights file {source!r}: key {key!r} does not name a node and a weight")
        scope = _owner(graph, parts[:-2])
        node = scope._nodes.get(parts[-2]) if scope is not None else None
        check_file_dtype(paths.join_all(parts[:-1]), parts[-1], tensor, f"weights file {source!r}",
                         declared_dtype(node))
        grouped.setdefault(tuple(parts[:-1]), {})[parts[-1]] = tensor
    _tie_loaded(graph, grouped)
    skipped = []
    saved_hashes = _saved_hashes(metadata, source) if edited else {}
    if legacy:
        saved_hashes = {paths.join_all(paths.split_legacy(k)): v for k, v in saved_hashes.items()}
    current_hashes = _node_hashes(graph, every=True) if edited else {}
    for parts, state in grouped.items():
        owner = _owner(graph, list(parts[:-1]))
        name = parts[-1]
        if owner is None or name not in owner:
            if edited:  # a node (or a block holding it) renamed or removed in the edited file
                skipped.append(paths.join_all(parts))
                continue
            raise GraphError(f"weights file {source!r} has weights for node {paths.join_all(parts)!r}, which the graph "
                             "does not have; delete the weights file or restore the node", [name])
        node_key = paths.join_all(parts)
        if edited and (saved_hashes.get(node_key) != current_hashes.get(node_key) or not _fits(owner, name, state)):
            skipped.append(paths.join_all(parts))
            continue
        owner.weights[name] = state
    if edited:
        warnings.warn(f"{json_path} changed since its weights were saved; loaded the weights that still fit"
                      + (f", re-initialising {', '.join(skipped)}" if skipped else ""), stacklevel=3)


def _metadata(data: bytes, source: str = "weights file") -> dict[str, str]:
    """The safetensors header's ``__metadata__`` (string to string), read by the strict JSON rule."""
    header_len = int.from_bytes(data[:8], "little")
    try:
        header = strict_json.loads(data[8:8 + header_len].decode("utf-8"))
    except (GraphError, UnicodeDecodeError) as e:
        raise GraphError(f"weights file {source!r}: its header is not valid JSON ({e}); delete it to load the "
                         "graph without weights") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise GraphError(f"weights file {source!r}: its metadata must map strings to strings")
    return metadata


def _saved_hashes(metadata: dict[str, str], source: str) -> dict[str, str]:
    """The per-node hashes (``nodes``) the file was saved with: a JSON object of strings."""
    try:
        hashes = strict_json.loads(metadata.get("nodes", "{}"), max_depth=1)
    except GraphError as e:
        raise GraphError(f"weights file {source!r}: its 'nodes' metadata is not valid JSON ({e.message}); delete "
                         "the file to load the graph without weights") from None
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise GraphError(f"weights file {source!r}: its 'nodes' metadata must be an object of node hashes, got "
                         f"{type(hashes).__name__}; delete the file to load the graph without weights")
    return hashes


def _owner(graph: Graph, blocks: list[str]) -> Graph | None:
    """The graph inside the blocks named by `blocks`, or None if one is missing."""
    current = graph
    for name in blocks:
        node = current._nodes.get(name)
        if node is None or node.op != BLOCK or node.block is None:
            return None
        current = node.block
    return current


def _fits(graph: Graph, name: str, state: dict[str, torch.Tensor]) -> bool:
    """Whether `state` loads into the module that node `name`'s params build (meta tensors, no memory)."""
    node = graph._nodes[name]
    if node.op == BLOCK or node.error is not None:
        return False
    opdef = registry.get(node.op)
    if opdef.build is None:
        return False
    specs = [p.spec for p in node.inputs if p is not None]
    with torch.device("meta"):
        own: dict[str, Any] = opdef.build(dict(node.params), specs).state_dict()
    return (set(own) == set(state) and all(tuple(own[k].shape) == tuple(state[k].shape) for k in state)
            and fits_dtypes(state, own))


serialize.WEIGHTS_IO["encode"] = encode_weights
serialize.WEIGHTS_IO["load"] = load_weights
