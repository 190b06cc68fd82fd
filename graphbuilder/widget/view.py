"""The editor's first view of a graph: a layout direction and a canvas height chosen from the graph's shape.

A network is mostly a long chain of layers (depth) with a few parallel branches (breadth). Drawn left to
right, depth runs along the canvas's width; drawn top down, along its height. `first_view` lays the top
level out in layers the way the editor's layered layout does, measures the drawing both ways with the
editor's node sizes and spacings (extension/src/geometry.ts), and picks the direction whose drawing
fits a typical notebook canvas at the higher zoom; the height is what that drawing needs at the editor's
readable zoom, within `HEIGHT_RANGE`. So a ResNet (a 13-node chain of stages) opens top down in a tall
canvas, and a wide search-space graph opens left to right. A graph laid out before (positions in node meta,
from the editor or a saved file) keeps its direction.

Boundary: reads the IR's wiring only (no shapes, no inference).
"""

from __future__ import annotations

from graphbuilder.ir.graph import Graph

CANVAS_WIDTH = 960  # px: the canvas in a 1400 px JupyterLab window, between the palette and the inspector
HEIGHT_RANGE = (360, 760)  # px: the canvas height chosen, at least and at most
READABLE_ZOOM = 0.75  # the editor's default zoom floor: 13 px node names are ~10 px tall on screen
# The editor's node box and spacing (extension/src/geometry.ts: NODE_W, NODE_H, NODE_GAP, LAYER_GAP).
NODE_W, NODE_H, GAP_IN_LAYER = 184, 58, 28
GAP_BETWEEN_LAYERS = {"LR": 100, "TB": 56}
CHROME = 80  # px of the canvas that are not the drawing: margins around it


def layers(graph: Graph) -> list[int]:
    """Number of top-level nodes in each layer, by longest path from the inputs (the layered layout's layers)."""
    depth: dict[str, int] = {}
    for node in graph.topological_order():
        depth[node.name] = max((depth[p.node.name] + 1 for p in node.inputs if p is not None), default=0)
    counts = [0] * (max(depth.values(), default=-1) + 1)
    for d in depth.values():
        counts[d] += 1
    return counts


def laid_direction(graph: Graph) -> str | None:
    """The direction the top level is already laid out in (editor positions in node meta): "LR" when most
    wires run rightwards, "TB" when most run downwards, None without positions to tell."""
    votes = {"LR": 0, "TB": 0}
    for node in graph:
        here = node.meta.get("position")
        for port in node.inputs:
            there = port.node.meta.get("position") if port is not None else None
            if isinstance(here, dict) and isinstance(there, dict):
                dx, dy = here.get("x", 0) - there.get("x", 0), here.get("y", 0) - there.get("y", 0)
                if dx > abs(dy):
                    votes["LR"] += 1
                elif dy > abs(dx):
                    votes["TB"] += 1
    if votes["LR"] == votes["TB"]:
        return None
    return "LR" if votes["LR"] > votes["TB"] else "TB"


def first_view(graph: Graph) -> tuple[str, int]:
    """(direction, height): "LR" or "TB" and the canvas height in px for `graph`'s first view. A graph whose
    nodes are placed already keeps the direction they are laid out in (so the toolbar says what is drawn)."""
    per_layer = layers(graph) or [1]
    depth, breadth = len(per_layer), max(per_layer)
    along = {"LR": NODE_W + GAP_BETWEEN_LAYERS["LR"], "TB": NODE_H + GAP_BETWEEN_LAYERS["TB"]}
    across = {"LR": NODE_H + GAP_IN_LAYER, "TB": NODE_W + GAP_IN_LAYER}
    size = {"LR": (depth * along["LR"], breadth * across["LR"]), "TB": (breadth * across["TB"], depth * along["TB"])}
    tallest = HEIGHT_RANGE[1] - CHROME

    def fit(direction: str) -> float:
        w, h = size[direction]
        return min(CANVAS_WIDTH / w, tallest / h)

    direction = laid_direction(graph) or ("TB" if fit("TB") > fit("LR") else "LR")
    zoom = min(1.0, max(READABLE_ZOOM, fit(direction)))
    height = int(size[direction][1] * zoom + CHROME)
    return direction, max(HEIGHT_RANGE[0], min(HEIGHT_RANGE[1], height))
