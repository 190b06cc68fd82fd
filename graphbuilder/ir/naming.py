"""Turning free-form node labels into safe, unique Python identifiers, in one place.

Node names are labels: any string is accepted (quotes, newlines, unicode, ``__import__('os')``). Code
generators (the fx compiler and the Python exporter) never put a label into source; they use the
identifier made here, which matches ``[A-Za-z_][A-Za-z0-9_]*``, is not a keyword, a builtin or a name the
generated code needs, and is unique in its namespace.
"""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

# Names generated code relies on; a node must never shadow them.
_RESERVED = frozenset(
    set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins))
    | {"self", "torch", "nn", "F", "operator", "math", "inf", "nan", "forward", "super", "Tensor"}
)
_NOT_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


def identifier(label: str) -> str:
    """A safe Python identifier derived from `label` (not yet unique). Never empty, never reserved."""
    ascii_label = unicodedata.normalize("NFKD", str(label)).encode("ascii", "ignore").decode()
    name = _NOT_IDENT.sub("_", ascii_label).strip("_").lower() or "node"
    if name[0].isdigit():
        name = f"n{name}"
    if name.startswith("__"):
        name = name.lstrip("_") or "node"
    if name in _RESERVED:
        name = f"{name}_"
    return name[:60]


class Namespace:
    """Hands out unique identifiers: `identifier(label)`, then ``_1``, ``_2``... on collisions."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self._taken: set[str] = set(taken or ())

    def create(self, label: str) -> str:
        """Return a new unique identifier for `label` and mark it taken."""
        base = identifier(label)
        name, i = base, 1
        while name in self._taken:
            name = f"{base}_{i}"
            i += 1
        self._taken.add(name)
        return name
