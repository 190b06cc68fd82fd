"""One editor session: the versioned document, the message dispatcher, undo history and edit batching.

This is the widget's protocol logic without ipywidgets, so it is testable as a plain object: it takes
messages from the browser (`handle`) and hands messages for the browser to `send`. The rules
(docs/widget-protocol.md explains them with examples):

* Python is the authority. It holds `version`; every change that reaches the browser bumps it by one,
  as one ``update`` message carrying node-level changes from `base` to `version`.
* The browser sends edits as ``patch`` messages ``{id, base_version, ops}``. Edits made in Python since
  `base_version` are flushed first (they happened first); then the ops are applied to the current graph.
  That is the rebase: ops name nodes by id, ids renamed since `base_version` are re-pointed, and an op
  whose node is gone is rejected with a message while the rest still apply. The reply is the ``update``
  whose ``reply.id`` is the patch id. The browser re-applies its still-pending edits on top of every
  update it receives, so neither side's edit is lost.
* Python-side edits (`Graph.subscribe` events, edits inside blocks included) are batched: flushed at once
  when the last flush is older than `throttle_s`, otherwise by a trailing timer on the kernel's event loop
  (or at the next message).
* Each flushed change is one undo step (a browser patch, a batch of Python edits, a pass applied with
  `apply`); undo and redo restore whole graph states in place, so `widget.graph` stays the same object.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphbuilder.ir import collector, registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph
from graphbuilder.ir.journal import tick
from graphbuilder.ir.paths import join, resolve, split, walk
from graphbuilder.ir.snapshot import GraphSnapshot, restore, snapshot
from graphbuilder.passes.fixits import Fix, fixits, root_of
from graphbuilder.widget import requests
from graphbuilder.widget.actions import ActionFn
from graphbuilder.widget.document import (
    DocCache,
    FlopCache,
    apply_changes,
    diff,
    document,
)
from graphbuilder.widget.incremental import Tracker
from graphbuilder.widget.patches import _parent_of, apply_ops, fragment_of

Message = dict[str, Any]

PROBE_BUDGET_S = 0.25  # connection checks stop after this long; unchecked targets are allowed, then checked
ELK_WORKER = Path(__file__).parent / "static" / "elk-worker.js"  # elkjs's worker script, copied by the build


class History:
    """Linear undo history of graph states (`GraphSnapshot`s, which share unchanged nodes); `at` is the
    current state."""

    def __init__(self, state: GraphSnapshot, limit: int = 100) -> None:
        self._states = [state]
        self._at = 0
        self._limit = limit

    @property
    def current(self) -> GraphSnapshot:
        """The state the graph is in (as of the last step)."""
        return self._states[self._at]

    def push(self, state: GraphSnapshot) -> None:
        """Record a new current state, dropping the redo branch."""
        del self._states[self._at + 1:]
        self._states.append(state)
        if len(self._states) > self._limit:
            del self._states[0]
        self._at = len(self._states) - 1

    def replace(self, state: GraphSnapshot) -> None:
        """Change the current state without a new step (automatic layout positions)."""
        self._states[self._at] = state

    def undo(self) -> Graph | None:
        """A new graph in the previous state, or None at the start."""
        if self._at == 0:
            return None
        self._at -= 1
        return restore(self._states[self._at])

    def redo(self) -> Graph | None:
        """A new graph in the next state, or None at the end."""
        if self._at >= len(self._states) - 1:
            return None
        self._at += 1
        return restore(self._states[self._at])

    @property
    def can_undo(self) -> bool:
        """Whether `undo` has a state to go back to."""
        return self._at > 0

    @property
    def can_redo(self) -> bool:
        """Whether `redo` has a state to go forward to."""
        return self._at < len(self._states) - 1


class Session:
    """Sync state of one editor: see the module docstring for the rules."""

    def __init__(self, graph: Graph, send: Callable[[Message], None], *, throttle_s: float = 0.05,
                 history: int = 100) -> None:
        self.graph = graph
        self.version = 0
        self.throttle_s = throttle_s
        self.actions: dict[str, tuple[ActionFn, str]] = {}
        self._send = send
        self._flops = FlopCache()
        self._docs = DocCache()
        self._tracker = Tracker()
        with collector.paused():
            self._sent = document(graph, 0, self._flops, self._docs)
            self._tracker.reset(graph, self._sent["nodes"], tick())
            self._history = History(snapshot(graph), history)
        self._renames: list[tuple[int, str, str]] = []
        self._dirty = False
        self._applying = False
        self._last_flush = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._unsubscribe = graph.subscribe(self._on_event)

    # -- state --------------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The current document (pending Python edits flushed first)."""
        if self._dirty:
            self.flush()
        return self._sent

    def set_graph(self, graph: Graph) -> None:
        """Show another graph: the browser gets the diff, as one undoable step."""
        self._unsubscribe()
        self.graph = graph
        self._unsubscribe = graph.subscribe(self._on_event)
        self.flush()

    def close(self) -> None:
        """Stop listening to the graph."""
        self._unsubscribe()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- Python-side edits ----------------------------------------------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        if self._applying:
            return
        # An edit inside a block arrives as {"kind": "block", "node": b, "event": inner} (nested for blocks in
        # blocks): it changes the block's entry and its inner nodes, flushed like any edit. Renames are
        # recorded with their full ids so browser patches made before them are re-pointed.
        parent: str | None = None
        while event.get("kind") == "block" and isinstance(event.get("event"), dict):
            parent = join(parent, event["node"])
            event = event["event"]
        if event.get("kind") == "rename" and event.get("old"):
            self._renames.append((self.version + 1, join(parent, event["old"]), join(parent, event["node"])))
        self._dirty = True
        if time.monotonic() - self._last_flush >= self.throttle_s:
            self.flush()
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (plain Python): the next message or flush() sends the edits
        self._timer = loop.call_later(self.throttle_s, self._trailing)

    def _trailing(self) -> None:
        self._timer = None
        if self._dirty:
            self.flush()

    def flush(self, reply: dict[str, Any] | None = None, record: str = "push", full: bool = True
              ) -> list[dict[str, Any]]:
        """Send what changed since the last update as one ``update`` message; returns the changes.

        `record` says what undo history does: "push" (a new step), "replace" (amend the current state),
        or "none" (undo/redo moved through history already). ``full=False`` (after browser patches, whose
        edits all go through the IR) builds the changes from the IR's change journal (`widget.incremental`);
        ``full=True`` compares whole documents.
        """
        with collector.paused():
            return self._flush(reply, record, full)

    def _flush(self, reply: dict[str, Any] | None, record: str, full: bool) -> list[dict[str, Any]]:
        self._dirty = False
        self._last_flush = time.monotonic()
        # A browser patch's edits all went through the IR, whose journal names what changed; Python code may
        # have edited meta in place where no journal sees it, so after it (and when the journal cannot tell)
        # compare whole documents.
        changes = None if full else self._tracker.changes(self.graph, self._sent, self._flops, self._docs)
        if changes is None:
            new = document(self.graph, self.version, self._flops, self._docs, full)
            self._tracker.reset(self.graph, new["nodes"], tick())
            changes = diff(self._sent, new)
        base = self.version
        if changes:
            self.version += 1
            self._sent = apply_changes(self._sent, changes, self.version)
        if changes or reply is not None:
            message: Message = {"kind": "update", "base": base, "version": self.version, "changes": changes,
                                "can_undo": self._history.can_undo or (bool(changes) and record == "push"),
                                "can_redo": self._history.can_redo and not (changes and record == "push")}
            if reply is not None:
                message["reply"] = reply
            self._send(message)
        if changes and record in ("push", "replace"):
            # Browser patches replace the values they edit, so the snapshot can share unchanged nodes with the
            # last one; Python code may have changed nested meta values in place, so after it, share nothing.
            state = snapshot(self.graph, None if full else self._history.current)
            if record == "push":
                self._history.push(state)
            else:
                self._history.replace(state)
        return changes

    # -- messages from the browser -------------------------------------------------------------------------------
    def handle(self, message: Any) -> None:
        """The one dispatcher for browser messages: each is checked against its kind's schema
        (`requests.message`) before anything else, and answered exactly once; a malformed one gets an
        error in the reply form of its kind (an ``error`` message when the kind is unknown)."""
        with collector.paused():  # a full collection here would stall the reply (~200 ms with torch loaded)
            try:
                checked = requests.message(message)
            except requests.RequestError as e:
                self._refuse(requests.kind_of(message), requests.reply_id(message), str(e))
                return
            _HANDLERS[checked["kind"]](self, checked)

    def _refuse(self, kind: str | None, reply_to: Any, text: str) -> None:
        """The one reply to a malformed request, in the form its kind's answer takes."""
        if kind in ("patch", "undo", "redo", "action", "apply_fix"):
            self.flush(reply={"id": reply_to, "ok": False, "ids": {}, "created": [],
                              "errors": [{"index": -1, "op": None, "message": text, "nodes": []}]})
        elif kind in _FAILED_ANSWER:
            self._send({"kind": _FAILED_ANSWER[kind], "reply_to": reply_to, "ok": False, "message": text,
                        **({"targets": {}} if kind == "probe" else {}),
                        **({"root": None, "fixes": []} if kind == "fixits" else {})})
        else:  # unknown kinds, and sync (whose answer, a snapshot, has no failed form)
            self._send({"kind": "error", "reply_to": reply_to, "message": text})

    def _renamed_since(self, base: int) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for version, old, new in self._renames:
            if version > base:
                for k, v in list(mapping.items()):
                    if v == old:
                        mapping[k] = new
                mapping.setdefault(old, new)
        return mapping

    def _on_patch(self, message: Message) -> None:
        if self._dirty:
            self.flush()  # Python's edits came first; the browser learns of them before its reply
        base = self.version if message["base_version"] is None else message["base_version"]
        self._applying = True
        try:
            result = apply_ops(self.graph, message["ops"], self._renamed_since(base))
        finally:
            self._applying = False
        for old, new in result.renamed.items():
            self._renames.append((self.version + 1, old, new))
        reply = {"id": message["id"], "ok": not result.errors, **result.to_json()}
        self.flush(reply=reply, record="push" if message["record"] else "replace", full=False)

    def _on_history(self, message: Message) -> None:
        if self._dirty:
            self.flush()
        state = self._history.undo() if message["kind"] == "undo" else self._history.redo()
        if state is not None:
            self._applying = True
            try:
                self.graph.replace_contents(state)
            finally:
                self._applying = False
        self.flush(reply={"id": message.get("id"), "ok": state is not None, "errors": [], "ids": {},
                          "created": []}, record="none")

    def undo(self) -> bool:
        """Undo the last step (a browser edit, a batch of Python edits, an applied pass)."""
        step = self._history.can_undo
        self._on_history({"kind": "undo"})
        return step

    def redo(self) -> bool:
        """Redo the step undone last."""
        step = self._history.can_redo
        self._on_history({"kind": "redo"})
        return step

    def _on_sync(self, message: Message) -> None:
        self._send({"kind": "snapshot", "reply_to": message.get("id"), "document": self.snapshot(),
                    "can_undo": self._history.can_undo, "can_redo": self._history.can_redo})

    def _on_copy(self, message: Message) -> None:
        try:
            fragment = fragment_of(self.graph, message["nodes"])
            self._send({"kind": "copied", "reply_to": message.get("id"), "ok": True, "fragment": fragment})
        except GraphError as e:
            self._send({"kind": "copied", "reply_to": message.get("id"), "ok": False, "message": e.message})

    def _on_probe(self, message: Message) -> None:
        try:
            source, shown = message["source"], message.get("nodes")
            targets = self.probe(source[0], source[1], set(shown) if shown is not None else None)
            self._send({"kind": "probed", "reply_to": message.get("id"), "ok": True, "targets": targets})
        except GraphError as e:
            self._send({"kind": "probed", "reply_to": message.get("id"), "ok": False, "message": e.message,
                        "targets": {}})

    def probe(self, source_id: str, output: int = 0, nodes: set[str] | None = None) -> dict[str, dict[str, str]]:
        """Which input ports would refuse output `output` of `source_id`, and why: ``{id: {port: reason}}``.

        Cycles and shapes (each candidate op's inference run with the new input, no graph change) are checked
        for the ids in `nodes` when given (the browser sends the nodes on screen), shapes until
        `PROBE_BUDGET_S` runs out. Ports not listed are allowed.
        """
        self.graph.infer()
        source = resolve(self.graph, source_id)
        owner = source.graph
        parent = _parent_of(source_id)
        refused: dict[str, dict[str, str]] = {}
        behind = owner.ancestors(source) | {source}
        for node in behind:
            if nodes is not None and join(parent, node.name) not in nodes:
                continue  # the browser refuses cycles itself; this list only speeds its first frames
            ports = max(len(node._inputs), 1)
            reason = (f"connecting {source.name!r} into {node.name!r} would make a cycle: {node.name!r} already "
                      f"feeds {source.name!r}" if node is not source else "a node cannot read its own output")
            refused[join(parent, node.name)] = {str(i): reason for i in range(ports)}
        if source._error is not None or source._outputs is None or output >= len(source._outputs):
            return refused
        spec = source._outputs[output]
        deadline = time.monotonic() + PROBE_BUDGET_S
        cache: dict[tuple[Any, ...], str | None] = {}
        for node in owner.topological_order():
            if node in behind or node.op == BLOCK or time.monotonic() > deadline:
                continue
            if nodes is not None and join(parent, node.name) not in nodes:
                continue
            opdef = registry.get(node.op)
            if opdef.infer is None or opdef.variadic:
                continue
            for i in range(len(node._inputs)):
                specs = []
                for j, port in enumerate(node._inputs):
                    if j == i:
                        specs.append(spec)
                    elif port is None or port.node._error is not None or port.node._outputs is None:
                        specs = []
                        break
                    else:
                        specs.append(port.node._outputs[port.index])
                if not specs:
                    continue
                key = (node.op, repr(node._params), tuple(specs))
                if key not in cache:
                    try:
                        opdef.infer(opdef, dict(node._params), specs)
                        cache[key] = None
                    except GraphError as e:
                        cache[key] = f"{node.name!r} cannot take {spec}: {e.message}"
                if cache[key] is not None:
                    refused.setdefault(join(parent, node.name), {})[str(i)] = cache[key]
        return refused

    def _on_action(self, message: Message) -> None:
        name, selection = message["name"], message["selection"]
        if name not in self.actions:
            self.flush(reply={"id": message.get("id"), "ok": False, "ids": {}, "created": [], "errors": [
                {"index": -1, "message": f"unknown action {name!r}; actions are {sorted(self.actions)}",
                 "nodes": []}]})
            return
        fn = self.actions[name][0]
        try:
            created = self.apply(lambda g: fn(g, selection))
            reply = {"id": message.get("id"), "ok": True, "errors": [], "ids": {}, "created": created}
        except GraphError as e:
            reply = {"id": message.get("id"), "ok": False, "ids": {}, "created": [],
                     "errors": [{"index": -1, "message": e.message, "nodes": list(e.nodes)}]}
        self.flush(reply=reply)

    def apply(self, pass_fn: Callable[[Graph], Graph | None]) -> list[str]:
        """Run `pass_fn` on a copy of the graph and make its result the graph, as one undo step.

        Returns the ids of the nodes it inserted: new nodes tagged with ``meta["inserted_by"]``, or every
        new node when none is tagged. Raises `GraphError` (graph unchanged) if the pass raises one or does
        not return a `Graph`.
        """
        if self._dirty:
            self.flush()
        before = {node_id for node_id, _, _ in walk(self.graph)}
        work = self.graph.copy()
        out = pass_fn(work)
        result = work if out is None else out
        if not isinstance(result, Graph):
            raise GraphError(f"a pass must return a Graph (or None after editing its argument), got "
                             f"{type(result).__name__}")
        if result is self.graph:
            result = result.copy()
        self._applying = True
        try:
            self.graph.replace_contents(result)
        finally:
            self._applying = False
        # Walk blocks too: passes such as insert_glore put their nodes inside stage blocks.
        new = [(node_id, parent, n) for node_id, parent, n in walk(self.graph) if node_id not in before]
        fresh = {node_id for node_id, _, _ in new}
        tagged = [node_id for node_id, _, n in new if n.meta.get("inserted_by")]
        outermost = [node_id for node_id, parent, _ in new if parent not in fresh]
        self.flush()
        return tagged or outermost

    def _on_fixits(self, message: Message) -> None:
        """The root error behind node ``node`` and the fixes that make it fit (`passes.fixits`, tried on copies)."""
        reply: Message = {"kind": "fixits", "reply_to": message.get("id")}
        try:
            path = split(str(message.get("node") or ""))
            root = root_of(self.graph, path)
            fixes = fixits(self.graph, root) if root is not None else []
            reply.update(ok=True, root=None if root is None else _path_id(root), fixes=[f.to_json() for f in fixes])
        except GraphError as e:
            reply.update(ok=False, message=e.message, root=None, fixes=[])
        self._send(reply)

    def _on_apply_fix(self, message: Message) -> None:
        """Apply a fix from ``fixits`` as one undo step; the reply lists the nodes it inserted."""
        try:
            fix = Fix.from_json(message.get("fix"))

            def edit(graph: Graph) -> None:
                fix.apply(graph)

            created = self.apply(edit)
            reply = {"id": message.get("id"), "ok": True, "errors": [], "ids": {}, "created": created}
        except GraphError as e:
            reply = {"id": message.get("id"), "ok": False, "ids": {}, "created": [],
                     "errors": [{"index": -1, "message": e.message, "nodes": list(e.nodes)}]}
        self.flush(reply=reply)

    def _on_elk_source(self, message: Message) -> None:
        """Send elkjs's worker script (1.6 MB, kept out of the bundle so displays do not load it)."""
        reply: Message = {"kind": "elk_source", "reply_to": message.get("id")}
        if ELK_WORKER.is_file():
            reply.update(ok=True, source=ELK_WORKER.read_text(encoding="utf-8"))
        else:
            reply.update(ok=False, message=f"{ELK_WORKER} is missing: rebuild the widget (make setup); the editor "
                                           "uses its quick layout meanwhile")
        self._send(reply)

    def _on_export(self, message: Message) -> None:
        reply: Message = {"kind": "exported", "reply_to": message.get("id")}
        try:
            from graphbuilder import export  # built by the export work; optional until it lands
        except ImportError:
            export = None
        to_python = getattr(export, "to_python", None) if export is not None else None
        if to_python is None:
            reply.update(ok=False, message="Python export is not available in this GraphBuilder "
                                           "(graphbuilder.export.to_python is missing); update graphbuilder")
        else:
            try:
                out = to_python(self.graph)
                reply.update(ok=True, source=getattr(out, "source", out) if not isinstance(out, str) else out)
            except GraphError as e:
                reply.update(ok=False, message=e.message)
        self._send(reply)


# The answer kind of each request that has a failed form ({"ok": false, "message"}).
_FAILED_ANSWER = {"probe": "probed", "copy": "copied", "export_python": "exported", "elk_source": "elk_source",
                  "fixits": "fixits"}


def _path_id(path: tuple[str, ...]) -> str:
    """The document id of the node at `path` (block names, then its name)."""
    node_id: str | None = None
    for name in path:
        node_id = join(node_id, name)
    return node_id or ""


_HANDLERS: dict[str, Callable[[Session, Message], None]] = {
    "patch": Session._on_patch,
    "undo": Session._on_history,
    "redo": Session._on_history,
    "sync": Session._on_sync,
    "copy": Session._on_copy,
    "probe": Session._on_probe,
    "action": Session._on_action,
    "export_python": Session._on_export,
    "elk_source": Session._on_elk_source,
    "fixits": Session._on_fixits,
    "apply_fix": Session._on_apply_fix,
}
