"""The editor's document brought up to date from the graph's change journal: work proportional to the edit.

Rebuilding the document after a browser patch (`document.build_nodes` + `document.diff`) visits every node to
find the few whose entries changed. `Tracker.changes` asks the IR instead (`Graph.changed_since`, descending
into the blocks whose inside changed), rebuilds only those entries and updates the header totals by their
difference, so a local edit on a 10,000-node graph costs what it costs on a 10-node one, and an edit that
re-infers k nodes costs O(k). It answers None when the journal cannot say (a graph's contents were replaced:
group, ungroup, a pass, undo); the session then compares whole documents and calls `Tracker.reset`.

Boundary: reads the IR and `widget.document`'s entry builder; the session owns the sent document.
"""

from __future__ import annotations

from typing import Any

from graphbuilder.ir.graph import Graph, Node
from graphbuilder.ir.journal import tick
from graphbuilder.ir.paths import join, walk
from graphbuilder.widget.document import Change, DocCache, FlopCache, NodeDoc, graph_header, rebuilt_entry


class Tracker:
    """What the sent document was built from: each node's id, the tick it was current at, and its totals."""

    def __init__(self) -> None:
        self.ids: dict[Node, str] = {}
        self.moment = 0
        self._params = self._flops = self._unknown_flops = self._errors = self._nodes = 0

    def reset(self, graph: Graph, nodes: dict[str, NodeDoc], moment: int) -> None:
        """Start over from a whole document `nodes` of `graph`, current at tick `moment`."""
        self.ids = {node: node_id for node_id, _, node in walk(graph)}
        self.moment = moment
        self._params = self._flops = self._unknown_flops = self._errors = self._nodes = 0
        for entry in nodes.values():
            self._count(entry, 1)

    def _count(self, entry: NodeDoc, sign: int) -> None:
        """Add (`sign` 1) or take away (-1) one entry's share of the totals (`document.totals`' rules)."""
        self._errors += sign * (entry["error"] is not None)
        if entry["parent"] is None:
            self._nodes += sign
            self._params += sign * entry["num_params"]
            if entry["flops"] is None:
                self._unknown_flops += sign
            else:
                self._flops += sign * entry["flops"]

    def totals(self) -> dict[str, Any]:
        """The header figures, as `document.totals` computes them from a whole document."""
        return {"params": self._params, "flops": None if self._unknown_flops else self._flops,
                "errors": self._errors, "nodes": self._nodes}

    def changes(self, graph: Graph, sent: dict[str, Any], flops: FlopCache, cache: DocCache) -> list[Change] | None:
        """The changes that bring document `sent` (built as this tracker recorded) up to date with `graph`, or
        None when the journal cannot tell (then rebuild and `reset`). Updates the tracker as it goes; rebuilt
        entries share the JSON of unchanged params and meta through `cache`, and replace their cache entries."""
        graph.infer()
        moment = tick()  # anything changed after this is seen next time
        changed = self._changed_nodes(graph)
        if changed is None:
            return None
        ids, entries = self.ids, sent["nodes"]
        deleted: dict[str, None] = {}
        rebuild: dict[str, tuple[Node, str | None]] = {}
        for node, level, parent in changed:
            alive = level._nodes.get(node.name) is node
            old_id, new_id = ids.get(node), join(parent, node.name) if alive else None
            if old_id is not None and old_id != new_id:  # removed, or renamed: its old entry goes
                deleted[old_id] = None
                del ids[node]
                if node.block is not None:  # and the entries inside it (they move with a new name)
                    prefix = old_id + "/"
                    deleted.update((key, None) for key in entries if key.startswith(prefix))
                    for _, _, inner in walk(node.block):
                        ids.pop(inner, None)
            if alive:
                assert new_id is not None
                ids[node] = new_id
                rebuild[new_id] = (node, parent)
                if node.block is not None and old_id != new_id:  # a new or renamed block: everything inside
                    for inner_id, inner_parent, inner in walk(node.block, new_id):
                        ids[inner] = inner_id
                        rebuild[inner_id] = (inner, inner_parent)
        for node, _ in rebuild.values():  # parents before their insides, as `walk` lists them
            if node.block is not None:
                node.block.infer()  # a pasted block's inside, or one behind an invalid input, is not yet inferred
        out: list[Change] = []
        for node_id in deleted:
            self._count(entries[node_id], -1)
            out.append({"op": "delete", "id": node_id})
        for node_id, (node, parent) in rebuild.items():
            entry = rebuilt_entry(node, node_id, parent, flops, ids, cache)
            before = None if node_id in deleted else entries.get(node_id)
            if before is not None:
                self._count(before, -1)
            self._count(entry, 1)
            if before is None:
                out.append({"op": "upsert", "node": entry})
            else:
                fields = {k: v for k, v in entry.items() if before[k] != v}
                if fields:
                    out.append({"op": "fields", "id": node_id, "fields": fields})
        header = graph_header(graph)
        if header != sent.get("graph"):
            out.append({"op": "graph", "graph": header})
        totals = self.totals()
        if totals != sent.get("totals"):
            out.append({"op": "totals", "totals": totals})
        self.moment = moment
        return out

    def _changed_nodes(self, graph: Graph) -> list[tuple[Node, Graph, str | None]] | None:
        """(node, its graph, parent id) for every node the journals list since `moment`, blocks included."""
        found: list[tuple[Node, Graph, str | None]] = []
        levels: list[tuple[Graph, str | None]] = [(graph, None)]
        while levels:
            level, parent = levels.pop()
            changed = level.changed_since(self.moment)
            if changed is None:
                return None
            for node in reversed(changed):  # oldest first: a name freed and taken again ends with its new holder
                found.append((node, level, parent))
                node_id = join(parent, node.name)
                if node.block is not None and level._nodes.get(node.name) is node and self.ids.get(node) == node_id:
                    node.block.infer()  # a block whose input is invalid was not re-inferred inside: do it now
                    levels.append((node.block, node_id))
        return found
