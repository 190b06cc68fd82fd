"""The edge between Python and the browser: snake_case keys here, camelCase keys on the wire.

Conversion happens once, in `to_wire` (outgoing) and `from_wire` (incoming). User data is never renamed:
values under the keys in `OPAQUE` (op parameters, node meta, styles, pasted fragments, schemas' param
names) pass through unchanged, so a parameter called ``out_channels`` stays ``out_channels``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Keys whose values are user data, copied as they are (in either naming).
OPAQUE = frozenset({"params", "meta", "style", "styles", "fragment", "positions", "default", "choices", "value",
                    "highlights", "ids", "targets", "nodes_by_id"})
_OPAQUE_WIRE = frozenset({"params", "meta", "style", "styles", "fragment", "positions", "default", "choices",
                          "value", "highlights", "ids", "targets", "nodesById"})
_UPPER = re.compile(r"_([a-z0-9])")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


@lru_cache(maxsize=4096)  # protocol keys are few; a 1,000-node document converts ~17,000 of them
def camel(key: str) -> str:
    """``input_names`` -> ``inputNames``."""
    return _UPPER.sub(lambda m: m.group(1).upper(), key)


@lru_cache(maxsize=4096)
def snake(key: str) -> str:
    """``inputNames`` -> ``input_names``."""
    return _CAMEL.sub(lambda m: "_" + m.group(1).lower(), key)


# Node entries (`graphbuilder.widget.document.node_doc`) are most of every document and update: they are
# converted by their fixed key list, not walked. None of their values needs converting: params and meta are
# user data, inputs are [id, port] lists, outputs are {"shape", "dtype"} dicts (the same in both namings).
NODE_KEYS = ("id", "name", "op", "parent", "params", "inputs", "input_names", "variadic", "outputs", "error",
             "error_nodes", "num_params", "flops", "meta", "is_block")
_NODE_KEY_SET = frozenset(NODE_KEYS)
_NODE_PAIRS = tuple((k, camel(k)) for k in NODE_KEYS)
_NODE_WIRE = dict(_NODE_PAIRS)


def node_to_wire(entry: Any) -> Any:
    """One node entry in camelCase; anything else as `to_wire` converts it."""
    if isinstance(entry, dict) and entry.keys() == _NODE_KEY_SET:
        return {w: entry[k] for k, w in _NODE_PAIRS}
    return to_wire(entry)


def fields_to_wire(fields: Any) -> Any:
    """Some of a node entry's fields (a "fields" change), in camelCase, values untouched like whole entries."""
    if isinstance(fields, dict) and fields.keys() <= _NODE_KEY_SET:
        return {_NODE_WIRE[k]: v for k, v in fields.items()}
    return to_wire(fields)


def to_wire(value: Any) -> Any:
    """A message or document with protocol keys in camelCase (user data untouched)."""
    if isinstance(value, dict):
        return {camel(k): (v if k in OPAQUE else node_to_wire(v) if k == "node"
                           else fields_to_wire(v) if k == "fields"
                           else [node_to_wire(n) for n in v] if k == "nodes" and isinstance(v, list)
                           else to_wire(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


# Protocol keys sit at most a few levels down (message.ops[i].source); deeper values are passed on as they are,
# for the request schema to refuse, so a message nested 900 deep costs no Python stack here.
_PROTOCOL_DEPTH = 8


def from_wire(value: Any, depth: int = 0) -> Any:
    """A message from the browser with protocol keys in snake_case (user data untouched)."""
    if depth >= _PROTOCOL_DEPTH:
        return value
    if isinstance(value, dict):
        return {snake(k) if isinstance(k, str) else k: (v if k in _OPAQUE_WIRE else from_wire(v, depth + 1))
                for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v, depth + 1) for v in value]
    return value
