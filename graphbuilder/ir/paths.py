"""Node paths: one string naming a node through nested blocks, the one encoding the package uses.

A path is the node names from a graph down through blocks, joined with ``/``. Inside a name, ``\\`` is
written ``\\\\`` and ``/`` is written ``\\/``, so any name round-trips and a ``/`` that is not escaped
always separates two names. Node ``conv/1`` inside block ``stage\\2`` of block ``net`` is::

    net/stage\\\\2/conv\\/1        (as Python source: "net/stage\\\\\\\\2/conv\\\\/1")

The editor's node ids (the TypeScript front end parses the same form), error messages and labels, tied weight
paths (``graph.tied``: node names, then the state key as the last part) and weights file keys all use it,
so a path printed anywhere can be pasted into `resolve` (or `Graph.tie_weights`).

Pure Python; reads the IR only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from graphbuilder.ir.errors import GraphError

if TYPE_CHECKING:
    from graphbuilder.ir.graph import Graph, Node


def escape(name: str) -> str:
    """One path part for node `name` (``\\`` and ``/`` escaped)."""
    return name.replace("\\", "\\\\").replace("/", "\\/")


def split(path: str) -> list[str]:
    """The names along `path`, unescaped (the inverse of `join_all`; ``""`` is ``[""]``)."""
    parts: list[str] = []
    cur: list[str] = []
    i, n = 0, len(path)
    while i < n:
        ch = path[i]
        if ch == "\\" and i + 1 < n:  # an escaped character; a trailing lone backslash stays literal
            cur.append(path[i + 1])
            i += 2
            continue
        if ch == "/":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def split_legacy(path: str) -> list[str]:
    """The names along a path written by version-1 files (read, never written): parts joined by ``/``, with
    ``%2F`` and ``%25`` for ``/`` and ``%`` inside a part."""
    return [part.replace("%2F", "/").replace("%25", "%") for part in path.split("/")]


def join(parent: str | None, name: str) -> str:
    """The path of node `name` inside the block whose path is `parent` (None: the top level)."""
    return escape(name) if parent is None else f"{parent}/{escape(name)}"


def join_all(names: Iterable[str]) -> str:
    """The path of the names `names`, outermost first (``["a/b", "c"]`` -> ``a\\/b/c``)."""
    return "/".join(escape(name) for name in names)


def resolve(graph: Graph, path: str) -> Node:
    """The node at `path` in `graph` (descending into blocks); `GraphError` naming the path and what is missing."""
    names = split(path)
    current = graph
    node: Node | None = None
    for k, name in enumerate(names):
        if name not in current:
            raise GraphError(f"no node {path!r} in graph {graph.name!r} (it was removed or renamed)", [path])
        node = current[name]
        if k < len(names) - 1:
            if node.block is None:
                raise GraphError(f"node {name!r} in {path!r} is not a block", [path])
            current = node.block
    assert node is not None
    return node


def resolve_graph(graph: Graph, parent: str | None) -> Graph:
    """The graph that holds the nodes of block `parent` (`graph` itself for None)."""
    if parent is None:
        return graph
    node = resolve(graph, parent)
    if node.block is None:
        raise GraphError(f"node {parent!r} is not a block", [parent])
    return node.block


def walk(graph: Graph, parent: str | None = None) -> Iterator[tuple[str, str | None, Node]]:
    """(path, parent path, node) for every node, blocks' insides included: each node, then its block's insides,
    each graph in insertion order. `parent` is the path of the block holding `graph` (None: the top level)."""
    # An explicit stack of iterators: blocks nest at most `limits.MAX_BLOCK_DEPTH`, but no recursion is needed
    stack: list[tuple[str | None, Iterator[Node]]] = [(parent, iter(list(graph._nodes.values())))]
    while stack:
        where, nodes = stack[-1]
        node = next(nodes, None)
        if node is None:
            stack.pop()
            continue
        path = join(where, node.name)
        yield path, where, node
        if node.block is not None:
            stack.append((path, iter(list(node.block._nodes.values()))))
