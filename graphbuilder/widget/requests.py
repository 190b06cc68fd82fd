"""The schema of every message the browser sends and of every patch op, checked before anything is done.

A message from the browser is untrusted JSON: any field may be missing, of another type, unhashable or
nested 900 deep. `message(raw)` checks one against its kind's schema and returns it with defaults filled
in, or raises `RequestError` (a `GraphError` with the JSON path of the bad field, e.g.
``ops[2].positions.conv``). `op(raw, index)` does the same for one patch op. So the handlers in
`session.py` and `patches.py` only ever see well-formed requests, and a malformed one gets one error reply
and changes nothing. docs/widget-protocol.md lists the fields.

Rules: known fields only (a misspelt field is an error, not ignored); ids are strings (Unicode text, as node
names are); ports are ``[id, index]``; numbers are finite; JSON values (params, meta, fragments) obey
`graphbuilder.ir.strict_json` with `limits.MAX_VALUE_DEPTH`; lists are at most `MAX_IDS` long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphbuilder.ir import strict_json
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.limits import MAX_DOCUMENT_DEPTH, MAX_INT, MAX_NODES, MAX_VALUE_DEPTH

MAX_IDS = MAX_NODES  # node ids in one request (a selection, a remove, a move)
MAX_OPS = 10_000  # ops in one patch

Check = Callable[[Any, str], Any]


class RequestError(GraphError):
    """A message or op that does not fit its schema; `.path` is the JSON path of the bad field."""


def _fail(message: str, path: str) -> RequestError:
    return RequestError(message, path=path)


# -- field checks: (value, path) -> the value (normalised) or RequestError --------------------------------------
def text(value: Any, path: str) -> str:
    """A string of Unicode text."""
    if not isinstance(value, str):
        raise _fail(f"must be a string, got {_kind(value)}", path)
    try:
        return strict_json.check_text(value, path)
    except GraphError as e:
        raise _fail(e.message, path) from None


def node_id(value: Any, path: str) -> str:
    """A node id: a non-empty string (``name`` or ``block/inner``)."""
    if not text(value, path):
        raise _fail("must be a node id, got an empty string", path)
    return value


def index(value: Any, path: str) -> int:
    """An integer >= 0 (a port or output index)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise _fail(f"must be an integer >= 0, got {_show(value)}", path)
    return value


def number(value: Any, path: str) -> float:
    """A finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(f"must be a number, got {_kind(value)}", path)
    try:
        return float(strict_json.to_json(value, path))
    except (GraphError, OverflowError):
        raise _fail(f"must be a finite number, got {_show(value)}", path) from None


def boolean(value: Any, path: str) -> bool:
    """True or false."""
    if not isinstance(value, bool):
        raise _fail(f"must be true or false, got {_show(value)}", path)
    return value


def request_id(value: Any, path: str) -> Any:
    """A request id the reply carries back: a string, an integer or null."""
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _fail(f"must be a string, got {_kind(value)}", path)


def pair(item: Check, what: str) -> Check:
    """A list of two values, each checked by `item`."""
    def check(value: Any, path: str) -> list[Any]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise _fail(f"must be {what}, got {_show(value)}", path)
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return check


def port(value: Any, path: str) -> list[Any]:
    """``[node_id, index]``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _fail(f"must be [node_id, index], got {_show(value)}", path)
    return [node_id(value[0], f"{path}[0]"), index(value[1], f"{path}[1]")]


def ids(value: Any, path: str) -> list[str]:
    """A list of node ids."""
    if not isinstance(value, (list, tuple)):
        raise _fail(f"must be a list of node ids, got {_kind(value)}", path)
    if len(value) > MAX_IDS:
        raise _fail(f"holds {len(value)} ids, more than {MAX_IDS}", path)
    return [node_id(v, f"{path}[{i}]") for i, v in enumerate(value)]


def json_object(max_depth: int = MAX_VALUE_DEPTH) -> Check:
    """A JSON object by the file rules (`strict_json`), nesting at most `max_depth` levels."""
    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _fail(f"must be an object, got {_kind(value)}", path)
        try:
            return strict_json.to_json(value, path, max_depth)
        except GraphError as e:
            raise _fail(e.message, e.path or path) from None
    return check


def positions(value: Any, path: str) -> dict[str, list[float]]:
    """``{node_id: [x, y]}``."""
    if not isinstance(value, dict):
        raise _fail(f"must map node ids to [x, y], got {_kind(value)}", path)
    if len(value) > MAX_IDS:
        raise _fail(f"holds {len(value)} ids, more than {MAX_IDS}", path)
    xy = pair(number, "[x, y]")
    return {node_id(k, path): xy(v, strict_json.join(path, k)) for k, v in value.items()}


def optional(check: Check) -> Check:
    """`check`, or null."""
    return lambda value, path: None if value is None else check(value, path)


# -- schemas: field -> (check, required, default) -----------------------------------------------------------------
Field = tuple[Check, bool, Any]
Schema = dict[str, Field]


def need(check: Check) -> Field:
    """A required field."""
    return (check, True, None)


def may(check: Check, default: Any = None) -> Field:
    """An optional field (null means absent)."""
    return (optional(check), False, default)


def _ops_list(value: Any, path: str) -> list[Any]:
    # Each op is checked by `op` as it is applied, so one malformed op is reported and the others still apply.
    if not isinstance(value, list):
        raise _fail(f"must be a list of patch ops, got {_kind(value)}", path)
    if len(value) > MAX_OPS:
        raise _fail(f"holds {len(value)} ops, more than {MAX_OPS}", path)
    return value


MESSAGES: dict[str, Schema] = {
    "patch": {"ops": need(_ops_list), "base_version": may(index), "record": may(boolean, True)},
    "undo": {},
    "redo": {},
    "sync": {},
    "copy": {"nodes": need(ids)},
    "probe": {"source": need(port), "nodes": may(ids)},
    "action": {"name": need(text), "selection": may(ids, [])},
    "export_python": {},
    "elk_source": {},
    "fixits": {"node": need(node_id)},
    "apply_fix": {"fix": need(json_object())},
}

_FRAGMENT = json_object(MAX_DOCUMENT_DEPTH)  # file-format node entries (blocks nest); paste validates them

OPS: dict[str, Schema] = {
    "add": {"op_name": need(text), "name": may(text), "params": may(json_object(), {}),
            "position": may(pair(number, "[x, y]")), "parent": may(node_id)},
    "remove": {"nodes": need(ids)},
    "connect": {"source": need(port), "target": need(port)},
    "disconnect": {"target": need(port)},
    "params": {"node": need(node_id), "params": need(json_object())},
    "rename": {"node": need(node_id), "name": need(text)},
    "move": {"positions": need(positions)},
    "meta": {"node": need(node_id), "meta": need(json_object())},
    "group": {"nodes": need(ids), "name": may(text)},
    "ungroup": {"node": need(node_id)},
    "paste": {"fragment": need(_FRAGMENT), "offset": may(pair(number, "[dx, dy]")), "parent": may(node_id)},
}


def _fields(raw: dict[Any, Any], schema: Schema, path: str, skip: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in raw:
        if key not in schema and key not in skip:
            allowed = ", ".join(sorted([*schema, *skip]))
            raise _fail(f"unknown field {_show(key)}; the fields are {allowed}", strict_json.join(path, str(key)))
    for key, (check, required, default) in schema.items():
        if key not in raw or raw[key] is None:
            if required:
                raise _fail(f"missing field {key!r}", strict_json.join(path, key))
            out[key] = default
        else:
            out[key] = check(raw[key], strict_json.join(path, key))
    return out


def message(raw: Any) -> dict[str, Any]:
    """`raw` checked against its kind's schema, with defaults filled in (``kind`` and ``id`` kept)."""
    if not isinstance(raw, dict):
        raise _fail(f"a message must be an object, got {_kind(raw)}", "$")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in MESSAGES:
        raise _fail(f"unknown message kind {_show(kind)}; kinds are {sorted(MESSAGES)}", "kind")
    rid = request_id(raw.get("id"), "id")
    return {"kind": kind, "id": rid, **_fields(raw, MESSAGES[kind], "", ("kind", "id"))}


def op(raw: Any, position: int) -> dict[str, Any]:
    """Patch op number `position` checked against its schema (``op`` kept, defaults filled in)."""
    path = f"ops[{position}]"
    if not isinstance(raw, dict):
        raise _fail(f"a patch op must be an object, got {_kind(raw)}", path)
    name = raw.get("op")
    if not isinstance(name, str) or name not in OPS:
        raise _fail(f"unknown patch op {_show(name)}; ops are: {', '.join(sorted(OPS))}", f"{path}.op")
    return {"op": name, **_fields(raw, OPS[name], path, ("op",))}


def reply_id(raw: Any) -> Any:
    """The id to answer a message with, even a malformed one (None when it has no usable id)."""
    rid = raw.get("id") if isinstance(raw, dict) else None
    try:
        return request_id(rid, "id")
    except RequestError:
        return None


def kind_of(raw: Any) -> str | None:
    """The message's kind if it is a known one (to pick the reply's form), else None."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) and kind in MESSAGES else None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: Any) -> str:
    """A short description of a value from the browser (never `repr` of a container: it may nest 900 deep)."""
    if isinstance(value, (dict, list, tuple)):
        return f"{'an object' if isinstance(value, dict) else 'a list'} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
