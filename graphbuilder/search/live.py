"""What a running search shows: a throttled live view in a widget, and a progress bar that ends honestly.

Boundary: display only; nothing here changes what a search does.

- `LiveView(show)` calls `show(state)` for a search's latest state, throttled: an update runs only when
  `min_interval` seconds have passed since the last one and the time spent showing so far is at most
  `max_fraction` of the time since the view started, so a search is slowed by at most about `max_fraction`
  (5%) however fast its steps are. Skipped states are dropped (the next update shows the latest). Any search
  can use it with its own `show`; `NeuronGraphDisplay` is the one for neuron graphs.
- `NeuronGraphDisplay(widget)` expands a `NeuronGraph` into one ``neuron`` node per neuron
  (`NeuronGraph.expand`), assigns it to ``widget.graph`` (the widget sends the browser a diff), colours what
  `gb.diff` finds changed since the last display (new neurons "added", rewired ones "changed") and styles
  edges by weight: width ~ |w|, blue for positive, red for negative. Connections pruned since the last display
  stay one more display as faded zero-weight edges, then disappear.
- `SearchProgress` is a tqdm bar over a search's time budget. When the search stops early the bar is
  completed at its real end (so a notebook shows it finished, not failed at 5%) and its description says
  why it stopped; only an interrupted search leaves it unfinished.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from graphbuilder.ir.diff import diff
from graphbuilder.ir.graph import Graph
from graphbuilder.ops.neuron_graph import NeuronGraph, label

POSITIVE, NEGATIVE, FADED = "#1f77b4", "#d62728", "#9e9e9e"


class LiveView:
    """Throttled calls of `show(state)`: at most `max_fraction` of the time, at least `min_interval` apart.

    Args:
        show: displays one state (e.g. a `NeuronGraphDisplay`, or a search's own widget update).
        min_interval: seconds between updates, at least.
        max_fraction: cap on (time spent showing) / (time since the view started).
        clock: time source in seconds (monotonic).

    Attributes `updates`, `skipped` and `spent` (seconds) say what the throttle did.
    """

    def __init__(self, show: Callable[[Any], None], min_interval: float = 0.5, max_fraction: float = 0.05,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.show = show
        self.min_interval = float(min_interval)
        self.max_fraction = float(max_fraction)
        self.clock = clock
        self.started = clock()
        self.last = -math.inf
        self.spent = 0.0
        self.updates = 0
        self.skipped = 0

    def due(self) -> bool:
        """Whether an update may run now (interval passed and within the time share)."""
        now = self.clock()
        return (now - self.last >= self.min_interval
                and self.spent <= self.max_fraction * max(now - self.started, 0.0))

    def update(self, state: Any, *, force: bool = False) -> bool:
        """Show `state` if due (or `force`); returns whether it was shown."""
        if not force and not self.due():
            self.skipped += 1
            return False
        t = self.clock()
        self.show(state)
        self.last = self.clock()
        self.spent += self.last - t
        self.updates += 1
        return True

    def stats(self) -> dict[str, Any]:
        """updates, skipped, seconds spent showing, and seconds since the view started."""
        return {"updates": self.updates, "skipped": self.skipped, "seconds": self.spent,
                "search_seconds": self.clock() - self.started}


class NeuronGraphDisplay:
    """Shows a `NeuronGraph` in `widget` (anything with ``graph``, ``highlight`` and ``style_edges`` as
    `GraphWidget`), colouring what changed since the last display by `gb.diff` of the two expanded graphs:
    new neurons "added", neurons whose inputs changed (rewired by pruning or growth) "changed". Call `mark`
    after each edit with the pruned connections (shown faded once), and the display (or a `LiveView` around
    it) with the network."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self._pruned: set[tuple[int, int]] = set()

    def mark(self, *, pruned: Iterable[tuple[int, int]] = ()) -> None:
        """Note connections pruned by the last edit (shown faded at the next display)."""
        self._pruned.update((int(s), int(d)) for s, d in pruned)

    def __call__(self, ng: NeuronGraph) -> None:
        """Push `ng` to the widget now, coloured by its diff against the graph shown before."""
        neurons = set(ng.neurons)
        ghosts = sorted(e for e in self._pruned if e[0] in neurons and e[1] in neurons)
        before = getattr(self.widget, "graph", None)
        graph = ng.expand(getattr(before, "name", "neurons"), ghost_connections=ghosts)
        self.widget.graph = graph
        added, rewired = changed_nodes(before, graph) if isinstance(before, Graph) else ([], [])
        self.widget.highlight([])
        self.widget.highlight(added, "added")
        self.widget.highlight(rewired, "changed")
        self.widget.style_edges(edge_styles(ng, ghosts))
        # GraphWidget defers a second highlight/style call within 50 ms to the event loop, which a search loop
        # blocks until it ends; send the pending styles now (the view is already throttled).
        if getattr(self.widget, "_pending_visual", None):
            self.widget._send_visual()
        self._pruned.clear()


def changed_nodes(before: Graph, after: Graph) -> tuple[list[str], list[str]]:
    """Top-level node names added in `after`, and those present in both whose op, params or inputs differ
    (`gb.diff`; shapes alone do not count)."""
    changes = diff(before, after)
    added = [path[-1] for path in changes.added if len(path) == 1]
    rewired = [c.path[-1] for c in changes.changed if len(c.path) == 1 and (c.op or c.params or c.inputs)]
    return added, rewired


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


class SearchProgress:
    """A tqdm bar over a search's budget (`total` units, e.g. seconds or steps) that ends at the real end.

    `advance_to(done, **postfix)` moves the bar to `done` units; `finish(reason)` completes the bar where the
    search really stopped and puts `reason` in its description; `finish(reason, failed=True)` (Ctrl-C) leaves
    it unfinished."""

    def __init__(self, total: float, desc: str, *, unit: str = "s", enabled: bool = True) -> None:
        from tqdm.auto import tqdm

        self.desc = desc
        self.bar = tqdm(total=round(float(total), 1), desc=desc, unit=unit, disable=not enabled,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} {unit} {postfix}")

    def advance_to(self, done: float, **postfix: Any) -> None:
        """Move the bar to `done` units (never past its total) and show `postfix`."""
        done = min(round(float(done), 1), self.bar.total)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)
        if postfix:
            self.bar.set_postfix(refresh=False, **postfix)

    def finish(self, reason: str, *, failed: bool = False) -> None:
        """Close the bar: completed at its current position unless `failed`, its description saying why."""
        if not failed:
            self.bar.total = max(self.bar.n, 1e-9)
        self.bar.set_description(f"{self.desc}: {reason}", refresh=False)
        self.bar.refresh()
        self.bar.close()
