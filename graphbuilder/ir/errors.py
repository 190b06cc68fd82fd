"""The one error type users see: `GraphError`, raised for every kind of bad graph input.

It is a `ValueError` so generic code that guards against bad values catches it. It carries the names of the
nodes involved (`.nodes`) and, for errors found while loading a file, the JSON path (`.path`), so editors can
point at the problem and humans can read the fix in the message.
"""

from __future__ import annotations

from collections.abc import Iterable


class GraphError(ValueError):
    """A malformed graph, unknown op, bad parameter, shape mismatch, cycle or unreadable file.

    Attributes:
        nodes: names of the nodes involved, in the order they matter (may be empty).
        path: JSON path into a graph file (``"nodes[3].params.kernel_size"``) when the error came from loading.
    """

    def __init__(self, message: str, nodes: Iterable[str] = (), path: str | None = None) -> None:
        self.nodes: tuple[str, ...] = tuple(nodes)
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)

    def at(self, path: str) -> GraphError:
        """Return a copy of this error located at JSON `path` (prefixing any existing path)."""
        joined = f"{path}.{self.path}" if self.path else path
        return GraphError(self.message, self.nodes, joined)


class GraphWarning(UserWarning):
    """Something about a graph the user should know that does not stop the operation (saving a graph that
    still has errors, loading weights that no longer fit)."""
