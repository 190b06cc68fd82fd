"""Editor actions every `GraphWidget` offers: passes run on the selection as one undoable step.

    from graphbuilder.widget import register_action
    register_action("Insert GloRe", insert_glore, doc="add a GloRe unit after the selected node")

An action is ``fn(graph, selection) -> Graph | None``: it gets a copy of the graph and the selected node
ids, and returns the new graph (or edits the copy and returns None). The widget applies the result with
`GraphWidget.apply`: one undo step, inserted nodes highlighted. Widgets created afterwards list it in
their toolbar; `GraphWidget.on_action` adds one to a single widget.
"""

from __future__ import annotations

from collections.abc import Callable

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph

ActionFn = Callable[[Graph, list[str]], Graph | None]
ACTIONS: dict[str, tuple[ActionFn, str]] = {}


def register_action(name: str, fn: ActionFn, doc: str = "") -> None:
    """Offer `fn` as editor action `name` in every GraphWidget created from now on."""
    if not isinstance(name, str) or not name:
        raise GraphError(f"an action needs a non-empty name, got {name!r}")
    if not callable(fn):
        raise GraphError(f"action {name!r}: fn must be callable as fn(graph, selection) -> Graph")
    ACTIONS[name] = (fn, doc)


def unregister_action(name: str) -> None:
    """Remove action `name` (no error if absent)."""
    ACTIONS.pop(name, None)


def _register_builtin_actions() -> None:
    # Passes that ship with GraphBuilder and make sense on a selection.
    from graphbuilder.passes.glore import glore_editor_action

    register_action("Insert GloRe", glore_editor_action,
                    doc="insert a GloRe global reasoning unit after each selected node (none selected: the "
                        "paper's res4x3 preset)")


_register_builtin_actions()
