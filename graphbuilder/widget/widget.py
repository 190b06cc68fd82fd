"""`GraphWidget`: the JupyterLab editor for a `Graph`, an anywidget with a few synced traits.

    import graphbuilder as gb
    w = gb.GraphWidget(g)        # shows the editor; edits in it are edits of g
    w.graph.add("relu", ...)     # appears in the editor
    w.highlight(["conv"], style="added")
    w.save("net.graph.json")

The class is thin on purpose: traits and the public methods. The document and its diffs live in
`document.py`, browser edits in `patches.py`, versions, batching, undo and the message dispatcher in
`session.py`, key conversion in `wire.py`. The front end is `extension/` (TypeScript, React Flow, elkjs),
bundled into ``static/widget.js``. docs/widget-protocol.md describes the messages.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from graphbuilder.ir import paths
from graphbuilder.ir.diff import GraphDiff, NodePath, diff
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph, Node
from graphbuilder.widget import actions as _actions
from graphbuilder.widget.session import ActionFn, Session
from graphbuilder.widget.view import first_view
from graphbuilder.widget.wire import from_wire, to_wire

_STATIC = Path(__file__).parent / "static" / "widget.js"
NAMED_STYLES = ("highlight", "added", "changed", "removed", "faded")
ADDED_EDGE = {"width": 3, "color": "#43a047", "opacity": 1.0}
_STYLE_KEYS = {"color", "background", "border", "border_color", "border_width", "opacity", "width", "label",
               "outline", "box_shadow"}
HIGHLIGHT_INTERVAL_S = 0.05


def _esm() -> str:
    if not _STATIC.is_file():
        raise GraphError(f"the editor's JavaScript bundle {_STATIC} is missing: run `make setup` (or "
                         "`python build_frontend.py`) in the GraphBuilder checkout; it needs Node 20 and npm")
    return _STATIC.read_text(encoding="utf-8")


def _ops_schema() -> list[dict[str, Any]]:
    from graphbuilder.models import palette
    from graphbuilder.ops import schema_json

    return schema_json() + palette()  # ops, then the networks (dropped as blocks, see patches._op_add)


def _document_to_json(value: Any, widget: GraphWidget) -> Any:
    return widget._wire_document()


def _ignore_from_json(value: Any, widget: GraphWidget) -> Any:
    return {}


class GraphWidget(anywidget.AnyWidget):
    """An editor for `graph` in a notebook cell: palette, canvas, parameter forms, live shapes and errors.

    Args:
        graph: the graph to edit. `widget.graph` is this very object; edits in the browser change it.
        height: canvas height in pixels (default: chosen from the graph's shape, see `view.first_view`).
        direction: auto-layout direction, "LR" (left to right) or "TB" (top down) (default: chosen from the
            graph's shape).
    """

    _esm = traitlets.Unicode("").tag(sync=True)
    document = traitlets.Dict().tag(sync=True, to_json=_document_to_json, from_json=_ignore_from_json)
    """The graph document (nodes, shapes, errors, totals, version) as of when the widget state is read:
    on display, on page reload and when the notebook is saved. Live changes travel as patch messages."""
    ops = traitlets.List().tag(sync=True, to_json=lambda value, widget: to_wire(value))
    """Op schemas from the registry (`gb.ops.schema_json()`): the palette and the parameter forms; then the
    ready-made networks (`gb.models.palette()`, entries with ``template: true``), which drop in as blocks."""
    highlights = traitlets.Dict().tag(sync=True)
    """Node id -> style: a name in ("highlight", "added", "changed", "removed", "faded") or CSS-like properties."""
    edge_styles = traitlets.List().tag(sync=True)
    """Edge styles: ``[{"source", "target", "width", "color", "opacity", "label"}]`` (node ids)."""
    actions = traitlets.List().tag(sync=True)
    """Editor actions (``[{"name", "doc"}]``), run on the selection as one undoable step."""
    checkpoints = traitlets.Dict().tag(sync=True)
    """Named checkpoints (`checkpoint`): name -> ``{"time", "nodes", "graph"}`` with the graph file document
    (without weights). Saved with the notebook's widget state, so the record travels with the notebook."""
    direction = traitlets.Unicode("LR").tag(sync=True)
    """Auto-layout direction: "LR" or "TB". Picking another in the editor sets it (so a reload keeps it)."""
    height = traitlets.Int(520).tag(sync=True)
    """Canvas height in pixels."""
    view = traitlets.Dict().tag(sync=True)
    """What the editor shows, set by the browser so page reloads and other tabs keep it: ``x``, ``y``, ``zoom``
    (the viewport), ``root`` (the block opened as its own view, or None), ``panels`` (which of palette,
    inspector and minimap are open) and ``advanced`` (advanced ops listed in the palette)."""

    def __init__(self, graph: Graph, *, height: int | None = None, direction: str | None = None) -> None:
        if not isinstance(graph, Graph):
            raise GraphError(f"GraphWidget needs a gb.Graph, got {type(graph).__name__}; build one with "
                             "gb.Graph('name') or gb.Graph.load(path)")
        self._session = Session(graph, self._post)
        for name, (fn, doc) in _actions.ACTIONS.items():
            self._session.actions[name] = (fn, doc)
        self._checkpoints: dict[str, Graph] = {}
        self._highlight_sent = 0.0
        self._pending_visual: dict[str, Any] = {}
        self._visual_timer: asyncio.TimerHandle | None = None
        shaped_direction, shaped_height = first_view(graph)
        super().__init__(_esm=_esm(), ops=_ops_schema(), height=shaped_height if height is None else height,
                         direction=direction or shaped_direction, actions=self._action_list())
        self.on_msg(self._on_message)

    # -- validation --------------------------------------------------------------------------------------------
    @traitlets.validate("direction")
    def _check_direction(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in ("LR", "TB"):
            raise traitlets.TraitError(f"direction must be 'LR' (left to right) or 'TB' (top down), got {value!r}")
        return value

    @traitlets.validate("height")
    def _check_height(self, proposal: dict[str, Any]) -> int:
        value = proposal["value"]
        if not 150 <= value <= 4000:
            raise traitlets.TraitError(f"height must be between 150 and 4000 pixels, got {value}")
        return value

    # -- graph ---------------------------------------------------------------------------------------------------
    @property
    def graph(self) -> Graph:
        """The live graph. Assigning another graph shows it (the browser gets a diff, one undo step)."""
        return self._session.graph

    @graph.setter
    def graph(self, graph: Graph) -> None:
        if not isinstance(graph, Graph):
            raise GraphError(f"widget.graph must be a gb.Graph, got {type(graph).__name__}")
        self._session.set_graph(graph)

    @property
    def version(self) -> int:
        """Version of the document the browser has been sent."""
        return self._session.version

    def flush(self) -> None:
        """Send Python-side edits now (they are otherwise batched for a few milliseconds)."""
        self._session.flush()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the graph file (``.graph.json``, weights beside it), positions and all."""
        self._session.snapshot()
        self.graph.save(os.fspath(path))

    def undo(self) -> bool:
        """Undo the last step (browser edit, batch of Python edits, or applied pass). False if none."""
        return self._session.undo()

    def redo(self) -> bool:
        """Redo the last undone step. False if none."""
        return self._session.redo()

    def apply(self, pass_fn: Callable[[Graph], Graph | None], *, highlight: bool = True) -> list[str]:
        """Run a graph -> graph pass as one undoable editor step and show what it changed.

        `pass_fn` gets a copy of the graph and returns the new graph (or edits the copy and returns None).
        With `highlight`, the editor colours the diff (`gb.diff`) of the graph before and after: added nodes
        green, changed or rewired nodes blue, new edges green. `widget.graph` stays the same object.
        Returns the inserted node names: the new ones tagged ``meta["inserted_by"]``, or all new ones if
        none is tagged.
        """
        before = self.graph.copy() if highlight else None
        inserted = self._session.apply(pass_fn)
        if before is not None:
            self._show_diff(diff(before, self.graph))
        return inserted

    # -- checkpoints and comparison ------------------------------------------------------------------------------
    def checkpoint(self, name: str) -> None:
        """Remember the graph as it is now under `name` (weights included), to `compare` with or `restore`
        later. Re-using a name replaces that checkpoint."""
        if not isinstance(name, str) or not name.strip():
            raise GraphError(f"a checkpoint needs a non-empty name, got {name!r}")
        self._session.snapshot()
        self._checkpoints[name] = self.graph.copy()
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "nodes": len(self.graph), "graph": self.graph.to_dict()}
        self.checkpoints = {**self.checkpoints, name: entry}

    def compare(self, against: str | Graph | None) -> GraphDiff | None:
        """Show the graph against a checkpoint name or another graph: nodes added since are green, nodes
        changed (op, params, inputs or weights) or renamed are blue, new edges green. Nodes that are only
        downstream of a change (their shapes changed, nothing else) are not coloured. Returns the
        `GraphDiff` (print it for the list, removed nodes included); ``compare(None)`` clears the colours."""
        if against is None:
            self._visual(highlights={}, edge_styles=[])
            return None
        if isinstance(against, str):
            if against not in self._checkpoints:
                known = ", ".join(map(repr, self._checkpoints)) or "none yet"
                raise GraphError(f"no checkpoint {against!r}; checkpoints: {known} (make one with "
                                 "editor.checkpoint(name))")
            base = self._checkpoints[against]
        elif isinstance(against, Graph):
            base = against
        else:
            raise GraphError(f"compare() takes a checkpoint name or a gb.Graph, got {type(against).__name__}")
        result = diff(base, self.graph)
        self._show_diff(result)
        return result

    def restore(self, name: str) -> None:
        """Make the graph what it was at checkpoint `name` (one undo step; weights included)."""
        if name not in self._checkpoints:
            raise GraphError(f"no checkpoint {name!r}; checkpoints: {', '.join(map(repr, self._checkpoints))}")
        saved = self._checkpoints[name]
        self._session.apply(lambda _: saved.copy())
        self._visual(highlights={}, edge_styles=[])

    def _show_diff(self, result: GraphDiff) -> None:
        changed = [c.path for c in result.changed if c.op or c.params or c.inputs or c.weights]
        changed += [new for _, new in result.renamed]
        styles: dict[str, Any] = {_node_id(p): "added" for p in result.added}
        styles.update({_node_id(p): "changed" for p in changed})
        edges = [{"source": _node_id(s), "target": _node_id(t), **ADDED_EDGE} for s, t in result.edges_added]
        self._visual(highlights=styles, edge_styles=edges)

    def on_action(self, name: str, fn: ActionFn, doc: str = "") -> None:
        """Add an editor action: a toolbar entry that runs ``fn(graph, selected_ids)`` via `apply`."""
        if not isinstance(name, str) or not name:
            raise GraphError(f"an action needs a non-empty name, got {name!r}")
        if not callable(fn):
            raise GraphError(f"action {name!r}: fn must be callable as fn(graph, selection) -> Graph")
        self._session.actions[name] = (fn, doc)
        self.actions = self._action_list()

    # -- search visualisation ------------------------------------------------------------------------------------
    def highlight(self, nodes: Iterable[str | Node], style: str | Mapping[str, Any] = "highlight") -> None:
        """Mark `nodes` in `style`, replacing earlier highlights of the same style; ``highlight([])`` clears all.

        `style` is "highlight", "added", "removed", "faded", or CSS-like properties such as
        ``{"color": "#e91e63", "border_width": 3}``. Called often (a search loop), updates are throttled.
        """
        ids = [paths.join(None, n.name) if isinstance(n, Node) else str(n) for n in nodes]
        value = _check_style(style)
        if not ids:
            new: dict[str, Any] = {}
        else:
            new = {k: v for k, v in self.highlights.items() if v != value}
            new.update({i: value for i in ids})
        self._visual(highlights=new)

    def style_edges(self, styles: Mapping[tuple[str | Node, str | Node], Mapping[str, Any]]) -> None:
        """Style edges, e.g. ``{("conv", "relu"): {"width": 4, "color": "#f00", "opacity": 0.8, "label": "0.93"}}``.

        Keys are (source node, target node); an empty mapping clears all edge styles.
        """
        out = []
        for key, props in styles.items():
            if not isinstance(key, tuple) or len(key) != 2:
                raise GraphError(f"style_edges keys are (source, target) node pairs, got {key!r}")
            src, dst = (paths.join(None, k.name) if isinstance(k, Node) else str(k) for k in key)
            entry: dict[str, Any] = {"source": src, "target": dst}
            for prop, value in props.items():
                if prop not in ("width", "color", "opacity", "label"):
                    raise GraphError(f"edge style {prop!r} is not one of width, color, opacity, label")
                entry[prop] = value
            out.append(entry)
        self._visual(edge_styles=out)

    def _visual(self, **traits: Any) -> None:
        """Set highlight traits now, or (if some were sent under `HIGHLIGHT_INTERVAL_S` ago) keep only the
        latest values and send them from the event loop, so a search loop is never slowed down."""
        self._pending_visual.update(traits)
        if time.monotonic() - self._highlight_sent >= HIGHLIGHT_INTERVAL_S:
            self._send_visual()
            return
        if self._visual_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._send_visual()  # no event loop to defer to: send now
                return
            self._visual_timer = loop.call_later(HIGHLIGHT_INTERVAL_S, self._send_visual)

    def _send_visual(self) -> None:
        self._visual_timer = None
        self._session.snapshot()  # the browser must know the nodes first
        with self.hold_sync():
            for trait, value in self._pending_visual.items():
                setattr(self, trait, value)
        self._pending_visual = {}
        self._highlight_sent = time.monotonic()

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _action_list(self) -> list[dict[str, str]]:
        return [{"name": k, "doc": doc} for k, (_, doc) in self._session.actions.items()]

    def _wire_document(self) -> dict[str, Any]:
        doc = self._session.snapshot()
        return to_wire({**doc, "nodes": list(doc["nodes"].values()), "can_undo": self._session._history.can_undo,
                        "can_redo": self._session._history.can_redo})

    def _post(self, message: dict[str, Any]) -> None:
        if message.get("kind") == "snapshot":
            doc = message["document"]
            message = {**message, "document": {**doc, "nodes": list(doc["nodes"].values())}}
        self.send(to_wire(message))

    def _on_message(self, widget: Any, content: Any, buffers: list[Any]) -> None:
        self._session.handle(from_wire(content))  # anything: the session answers malformed messages too

    def close(self) -> None:
        """Close the widget and stop following the graph."""
        session = getattr(self, "_session", None)  # absent if __init__ raised
        if session is not None:
            session.close()
        super().close()


def _node_id(path: NodePath) -> str:
    """The editor's id of the node at `path` (names through blocks)."""
    assert path
    return paths.join_all(path)


def _check_style(style: str | Mapping[str, Any]) -> str | dict[str, Any]:
    if isinstance(style, str):
        if style not in NAMED_STYLES:
            raise GraphError(f"highlight style {style!r} is not one of {NAMED_STYLES} (or a dict of CSS-like "
                             "properties)")
        return style
    if isinstance(style, Mapping):
        unknown = sorted(set(style) - _STYLE_KEYS)
        if unknown:
            raise GraphError(f"highlight style keys {unknown} are not supported; use {sorted(_STYLE_KEYS)}")
        return dict(style)
    raise GraphError(f"highlight style must be a name or a dict, got {type(style).__name__}")
