"""The op registry: name -> `OpDef`. Ops resolve only through here, never through imports named in files.

`graphbuilder.ops` fills it with the built-in library at import time; users add ops with `@gb.op`.
"""

from __future__ import annotations

import difflib

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import OpDef

_REGISTRY: dict[str, OpDef] = {}

# Names the IR itself gives meaning to; they cannot be taken by user ops.
RESERVED = frozenset({"block"})


def register(opdef: OpDef, *, replace: bool = False) -> OpDef:
    """Add `opdef` to the registry. Re-registering a name needs ``replace=True``."""
    if opdef.name in RESERVED:
        raise GraphError(f"op name {opdef.name!r} is reserved by GraphBuilder; choose another name")
    if not opdef.name.isidentifier():
        raise GraphError(f"op name {opdef.name!r} must be a Python identifier such as 'my_block'")
    if opdef.name in _REGISTRY and not replace:
        raise GraphError(
            f"op {opdef.name!r} is already registered (by {_REGISTRY[opdef.name].source}); "
            "pick another name or pass replace=True"
        )
    _REGISTRY[opdef.name] = opdef
    return opdef


def unregister(name: str) -> None:
    """Remove a user op (mainly for tests and notebooks that redefine ops)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> OpDef:
    """Look up an op by name; unknown names raise `GraphError` with the closest registered names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "see gb.ops.names()"
        raise GraphError(f"unknown op {name!r}: {hint}") from None


def names() -> list[str]:
    """Every registered op name, sorted."""
    return sorted(_REGISTRY)


def all_ops() -> list[OpDef]:
    """Every registered `OpDef`, sorted by category then name."""
    return sorted(_REGISTRY.values(), key=lambda d: (d.category, d.name))
