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
from collections.abc import Callable, Container

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


def unique(base: str, taken: Container[str] | Callable[[str], bool], *, start: int = 1, sep: str = "_") -> str:
    """`base` when it is not taken, else the first free ``base{sep}{i}`` with ``i >= start``.

    The one unique-name rule of the package (node labels, block inner names, identifiers, class names).
    `taken` is a container of names or a predicate saying whether a name is taken. A caller that hands out
    many names from one base passes as `start` the first suffix not known to be taken, so naming n nodes
    ``conv2d``, ``conv2d_1``, ... stays linear instead of quadratic.
    """
    is_taken = taken if callable(taken) else taken.__contains__
    if not is_taken(base):
        return base
    i = max(start, 1)
    while is_taken(f"{base}{sep}{i}"):
        i += 1
    return f"{base}{sep}{i}"


def suffix(name: str, base: str, sep: str = "_") -> int:
    """The number `unique` appended to `base` to make `name` (0 when `name` is `base`)."""
    return 0 if name == base else int(name[len(base) + len(sep):])


class Namespace:
    """Hands out unique identifiers: `identifier(label)`, then ``_1``, ``_2``... on collisions."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self._taken: set[str] = set(taken or ())

    def create(self, label: str) -> str:
        """Return a new unique identifier for `label` and mark it taken."""
        name = unique(identifier(label), self._taken)
        self._taken.add(name)
        return name
