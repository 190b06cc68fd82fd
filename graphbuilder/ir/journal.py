"""Which nodes changed since a moment: the change journal each `Graph` keeps for its observers.

An observer that mirrors a graph (the editor's document, the undo history) needs what an edit changed: the
nodes edited, and the nodes re-inference gave new shapes or errors, which no event names. Each such change
stamps the node with the next tick of one process-wide clock and moves it to the end of its graph's journal,
so `Journal.since(tick)` walks back from the end over exactly the nodes changed after `tick`: the work is
proportional to the edit, not to the graph.

Removed nodes stay in the journal (an observer must delete them too) until it holds more than twice the
graph's live nodes; then it forgets them and moves its horizon, and `since` of an older tick answers None:
the observer rebuilds from the graph, as it does after `Graph.replace_contents`.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from graphbuilder.ir.graph import Graph, Node

_CLOCK = itertools.count(1)


def tick() -> int:
    """A new moment: every change stamped after this call has a larger tick."""
    return next(_CLOCK)


class Journal:
    """Nodes of one graph in the order they last changed (see the module docstring)."""

    def __init__(self) -> None:
        self._nodes: dict[Node, None] = {}  # oldest change first
        self.horizon = tick()  # changes before this tick are forgotten

    def touch(self, node: Node) -> None:
        """Record that `node` changed now."""
        node._stamp = tick()
        self._nodes.pop(node, None)
        self._nodes[node] = None

    def since(self, moment: int) -> list[Node] | None:
        """Nodes changed after tick `moment`, newest first (removed ones included), or None when the journal
        no longer reaches back that far."""
        if moment < self.horizon:
            return None
        out = []
        for node in reversed(self._nodes):
            if node._stamp <= moment:
                break
            out.append(node)
        return out

    def forget(self) -> None:
        """Drop everything: observers rebuild (after the graph's contents were replaced wholesale)."""
        self._nodes = {}
        self.horizon = tick()

    def compact(self, graph: Graph) -> None:
        """Forget removed nodes once they outnumber the live ones (bounded memory for long sessions)."""
        if len(self._nodes) > 2 * len(graph._nodes) + 256:
            self._nodes = {n: None for n in self._nodes if graph._nodes.get(n.name) is n}
            self.horizon = tick()
