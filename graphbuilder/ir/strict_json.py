"""Strict JSON: what a graph file, a meta entry, a ``json`` parameter or an editor message may hold.

Python's `json` writes ``NaN``, ``Infinity`` and lone surrogates (``"\\ud800"``) and reads ``1e400`` as
infinity, so a file could save and then not load. Here the writer and the reader apply one rule:

* objects with string keys (integer keys are written as strings, as `json` does), lists (tuples are
  written as lists), strings, booleans, null;
* integers within int64 (`limits.MAX_INT`) and finite floats;
* strings that are Unicode text: no lone surrogates (they cannot be encoded as UTF-8);
* nesting at most `max_depth` containers.

Every value is walked with an explicit stack, never by recursion, so nesting costs no Python stack and a
hostile depth is a `GraphError` naming the JSON path (``nodes[2].meta.a.b``), not a `RecursionError`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.limits import MAX_DOCUMENT_DEPTH, MAX_INT, MAX_VALUE_DEPTH

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A path is built only when an error is reported: (parent, key) links, formatted by `path_of`.
_Where = tuple[Any, Any] | str


def join(path: str, key: Any) -> str:
    """The JSON path of `key` inside `path` (``nodes[3]``, ``meta.x``, ``meta["a b"]``)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    key = str(key)
    part = f".{key}" if _IDENT.match(key) else f"[{json.dumps(key)}]"
    return path + part if path and path != "$" else part.lstrip(".")


def path_of(where: _Where) -> str:
    """Format a lazily built path (see `_Where`); a very deep one shows its first and last steps."""
    keys = []
    while not isinstance(where, str):
        where, key = where
        keys.append(key)
    keys.reverse()
    if len(keys) > 40:
        keys = [*keys[:30], f"...{len(keys) - 35} more...", *keys[-5:]]
    path = where
    for key in keys:
        path = join(path, key)
    return path or "$"


def check_text(text: str, path: str, what: str = "string") -> str:
    """`text` if it is Unicode text (encodable as UTF-8), else `GraphError` at `path`."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise GraphError(f"{what} {text!r} holds a lone surrogate (U+{ord(text[e.start]):04X} at character "
                             f"{e.start}), which is not Unicode text; remove it", path=path) from None
    return text


def _scalar(value: Any, where: _Where) -> Any:
    """The JSON form of a scalar, or `GraphError`; None for containers."""
    kind = type(value)
    if kind is str:
        return check_text(value, path_of(where)) if not value.isascii() else value
    if value is None or kind is bool:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise GraphError(f"integer {value:.3e} is beyond 64 bits (|x| <= {MAX_INT}); JSON readers disagree on "
                             "such numbers", path=path_of(where))
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GraphError(f"{value} is not a JSON number (NaN, Infinity and literals beyond 1.8e308 such as 1e400 "
                             "are refused); use a finite number", path=path_of(where))
        return float(value)
    if isinstance(value, str):
        return check_text(str(value), path_of(where))
    raise GraphError(f"value {value!r} of type {type(value).__name__} cannot be saved as JSON; keep meta and params "
                     "to JSON types (dict, list, str, finite number, bool, None)", path=path_of(where))


def _key(key: Any, where: _Where) -> str:
    if type(key) is str:
        return key if key.isascii() else check_text(key, path_of(where), "key")
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise GraphError(f"key {key!r} ({type(key).__name__}) is not a string; JSON object keys are strings",
                     path=path_of(where))


def _plain(value: Any) -> bool:
    """Whether scalar `value` is already strict JSON as it is (the common case, checked inline)."""
    kind = type(value)
    return (value is None or kind is bool or (kind is str and value.isascii())
            or (kind is int and -MAX_INT <= value <= MAX_INT) or (kind is float and math.isfinite(value)))


def to_json(value: Any, path: str = "$", max_depth: int = MAX_VALUE_DEPTH) -> Any:
    """A JSON copy of `value` (tuples as lists, integer keys as strings) that obeys the module's rules, or
    `GraphError` at the path (under `path`) of the first thing that does not."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, _Where, int]] = [(value, root, 0, path, 0)]
    while stack:
        item, parent, slot, where, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth >= max_depth:
                raise GraphError(f"nests deeper than {max_depth} levels", path=path_of(where))
            is_dict = isinstance(item, dict)
            out: Any = {} if is_dict else [None] * len(item)
            parent[slot] = out
            later = []
            for k, v in (item.items() if is_dict else enumerate(item)):
                if is_dict:
                    k = k if type(k) is str and k.isascii() else _key(k, (where, k))
                if _plain(v):
                    out[k] = v
                elif type(v) is list and depth + 1 < max_depth and all(map(_plain, v)):
                    out[k] = list(v)  # a flat list (a pair, a shape): copied at once, not walked
                else:
                    if is_dict:
                        out[k] = None  # keep the key order
                    later.append((v, out, k, (where, k), depth + 1))
            stack.extend(reversed(later))  # report the first problem in document order
        else:
            parent[slot] = _scalar(item, where)
    return root[0]


def check(value: Any, path: str = "$", max_depth: int = MAX_VALUE_DEPTH) -> None:
    """Raise `GraphError` at the first place where `value` (parsed JSON: dicts, lists, scalars) breaks the
    rules; no copy is made."""
    stack: list[tuple[Any, _Where, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth >= max_depth:
                raise GraphError(f"nests deeper than {max_depth} levels", path=path_of(where))
            later = []
            for k, v in (item.items() if kind is dict else enumerate(item)):
                if kind is dict and not (type(k) is str and k.isascii()):
                    _key(k, (where, k))
                if type(v) is list and depth + 1 < max_depth and all(map(_plain, v)):
                    continue  # a flat list (a pair, a shape): checked at once, not walked
                if type(v) is dict or type(v) is list:
                    later.append((v, (where, k), depth + 1))
                elif not _plain(v):
                    _scalar(v, (where, k))
            stack.extend(reversed(later))  # report the first problem in document order
        else:
            _scalar(item, where)


def displayable(value: Any, max_depth: int = MAX_VALUE_DEPTH) -> Any:
    """A JSON copy of `value` for display (the editor's meta view): what the rules refuse becomes text
    (objects as their repr, NaN as ``"nan"``, lone surrogates as U+FFFD, deeper levels as ``"…"``),
    numpy and torch scalars their number. Never raises."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)) and depth >= max_depth:
            parent[slot] = "…"
        elif isinstance(item, dict):
            out: dict[str, Any] = {}
            parent[slot] = out
            for k, v in item.items():
                key = _text(k if isinstance(k, str) else str(k))
                out[key] = None
                stack.append((v, out, key, depth + 1))
        elif isinstance(item, (list, tuple)):
            seq: list[Any] = [None] * len(item)
            parent[slot] = seq
            stack.extend((v, seq, i, depth + 1) for i, v in enumerate(item))
        else:
            parent[slot] = _display_scalar(item)
    return root[0]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(text: str) -> str:
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _display_scalar(item: Any) -> Any:
    if isinstance(item, str):
        return _text(str(item))
    if item is None or isinstance(item, bool):
        return item
    if isinstance(item, int):
        return int(item) if abs(item) <= MAX_INT else str(item)
    if isinstance(item, float):
        return float(item) if math.isfinite(item) else str(item)
    if hasattr(item, "item"):  # numpy / torch scalars
        try:
            number = item.item()
        except (ValueError, TypeError, RuntimeError):
            number = None
        if isinstance(number, (bool, int, float)):
            return _display_scalar(number)
    return _text(repr(item))


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` of a value that `to_json` made or `check` passed (never writes NaN or Infinity)."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, **kwargs)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise GraphError(f"key {key!r} appears twice in one object; JSON readers disagree on which one counts",
                         path="$")
    return out


def loads(text: str, max_depth: int = MAX_DOCUMENT_DEPTH) -> Any:
    """Parse JSON text by the module's rules; `GraphError` (with the JSON path where known) otherwise."""
    try:  # NaN, Infinity and 1e400 parse as floats, huge integers as ints: `check` refuses them, with a path
        data = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        raise GraphError(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", path="$") from None
    except ValueError as e:  # an integer literal of thousands of digits (Python's int conversion limit)
        raise GraphError(f"a number in the JSON is too long ({e}); integers must fit in 64 bits", path="$") from None
    except RecursionError:  # the C parser's own bound, hit long before a file could be this deep legitimately
        raise GraphError(f"JSON nests deeper than {max_depth} levels", path="$") from None
    check(data, "$", max_depth)
    return data
