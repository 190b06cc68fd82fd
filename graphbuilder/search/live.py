"""A throttled live view of a `NeuronGraph` in a `GraphWidget`, for searches that edit the network in a loop.

Boundary: display only. It never changes the network. Each update expands the network into an ordinary
graph with one ``neuron`` node per neuron (`NeuronGraph.expand`), assigns it to ``widget.graph`` (the widget
sends the browser a diff), highlights the neurons added since the last update ("added"), and styles edges by
weight: width ~ |w|, blue for positive, red for negative. Connections pruned since the last update stay one
more update as faded zero-weight edges, then disappear.

Throttling: an update runs only when `min_interval` seconds have passed since the last one and the time spent
updating so far is at most `max_fraction` of the time since the view started, so a search is slowed by at
most about `max_fraction` (5%) however fast its steps are. Skipped updates are merged into the next one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from graphbuilder.ops.neuron_graph import NeuronGraph, label

POSITIVE, NEGATIVE, FADED = "#1f77b4", "#d62728", "#9e9e9e"


class LiveView:
    """Show a changing `NeuronGraph` in `widget` (a `GraphWidget`), at most `max_fraction` of the time.

    Args:
        widget: the widget (anything with ``graph``, ``highlight`` and ``style_edges`` as `GraphWidget`).
        min_interval: seconds between updates, at least.
        max_fraction: cap on (time spent updating) / (time since the view started).
        clock: time source in seconds (monotonic).

    Attributes `updates`, `skipped` and `spent` (seconds) say what the throttle did.
    """

    def __init__(self, widget: Any, min_interval: float = 0.5, max_fraction: float = 0.05,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.widget = widget
        self.min_interval = float(min_interval)
        self.max_fraction = float(max_fraction)
        self.clock = clock
        self.started = clock()
        self.last = -math.inf
        self.spent = 0.0
        self.updates = 0
        self.skipped = 0
        self._pruned: set[tuple[int, int]] = set()
        self._added: set[int] = set()

    def due(self) -> bool:
        """Whether an update may run now (interval passed and within the time share)."""
        now = self.clock()
        return (now - self.last >= self.min_interval
                and self.spent <= self.max_fraction * max(now - self.started, 0.0))

    def update(self, ng: NeuronGraph, *, pruned: Iterable[tuple[int, int]] = (), added: Iterable[int] = (),
               force: bool = False) -> bool:
        """Note the connections `pruned` and neurons `added` by the last step, and show `ng` if due (or
        `force`). Returns whether the widget was updated."""
        self._pruned.update((int(s), int(d)) for s, d in pruned)
        self._added.update(int(n) for n in added)
        if not force and not self.due():
            self.skipped += 1
            return False
        t = self.clock()
        self.show(ng)
        self.last = self.clock()
        self.spent += self.last - t
        self.updates += 1
        return True

    def show(self, ng: NeuronGraph) -> None:
        """Push `ng` to the widget now, with the pending pruned/added marks, and clear them."""
        neurons = set(ng.neurons)
        ghosts = sorted(e for e in self._pruned if e[0] in neurons and e[1] in neurons)
        graph = ng.expand(getattr(self.widget.graph, "name", "neurons"), ghost_connections=ghosts)
        self.widget.graph = graph
        self.widget.highlight([label(n) for n in sorted(self._added) if n in neurons], "added")
        self.widget.style_edges(edge_styles(ng, ghosts))
        # GraphWidget defers a second highlight/style call within 50 ms to the event loop, which a search loop
        # blocks until it ends; send the pending styles now (the view is already throttled).
        if getattr(self.widget, "_pending_visual", None):
            self.widget._send_visual()
        self._pruned.clear()
        self._added.clear()


def edge_styles(ng: NeuronGraph, ghosts: Iterable[tuple[int, int]] = ()) -> dict[tuple[str, str], dict[str, Any]]:
    """Edge styles for the expanded graph of `ng`: width 1..4 by |w| (relative to the largest), colour by
    sign, and `ghosts` (just pruned) faded."""
    conns = ng.connections
    top = max((abs(ng.weight(*e)) for e in conns), default=1.0) or 1.0
    styles: dict[tuple[str, str], dict[str, Any]] = {}
    for s, d in conns:
        w = ng.weight(s, d)
        styles[(label(s), label(d))] = {"width": round(1 + 3 * abs(w) / top, 2),
                                        "color": POSITIVE if w >= 0 else NEGATIVE, "opacity": 0.9}
    for s, d in ghosts:
        styles[(label(s), label(d))] = {"width": 1, "color": FADED, "opacity": 0.25}
    return styles
