"""Live view of a trinity search in the editor: the supernet drawn with every candidate, edges styled by weight.

Boundary: display only (graphs and widget calls); it never changes the search. `display_graph` expands each
``mixed_op`` of a detector supernet into its candidate nodes (``position.candidate``) feeding a
``weighted_sum`` named after the position; `WidgetView` styles those candidate edges by architecture weight.
"""

from __future__ import annotations

from typing import Any

import torch

from graphbuilder.ir.graph import Graph
from graphbuilder.ops.search_space import candidate_label, candidate_list
from graphbuilder.search.detector_space import DetectorSpace, Position, build_detector, find_position, node_choice


def display_graph(graph: Graph, space: DetectorSpace, alphas: dict[str, list[float]] | None = None) -> Graph:
    """A flat graph for the editor: each mixed_op position drawn as its candidate nodes (``pos.op``) feeding
    a ``weighted_sum`` named ``pos``, weighted by softmax(alpha) (or the given weights)."""
    def choose(pos: Position) -> tuple[str, dict[str, Any]]:
        node = find_position(graph, pos.name)
        if node.op != "mixed_op":
            return node_choice(node)
        cands = node.params["candidates"]
        w = alphas.get(pos.name) if alphas else None
        if w is None:
            w = mixing_weights(node.params)
        return "mixed_op", {"candidates": cands, "display_weights": list(w)}

    return build_detector(space, choose, f"{graph.name}_display", blocks=False, expand=True)


def mixing_weights(params: Any) -> list[float]:
    """The weights a mixed_op node's params give its candidates: softmax(alpha), or |alpha| normalised for
    linear mixing (uniform when alpha is unset)."""
    alpha = params["alpha"]
    n = len(params["candidates"])
    if alpha is None:
        return [1.0 / n] * n
    a = torch.tensor(alpha)
    return (torch.softmax(a, 0) if params["weighting"] == "softmax" else a.abs() / a.abs().sum().clamp(min=1e-12)
            ).tolist()


class WidgetView:
    """Shows architecture weights live in a `GraphWidget`: candidate -> position edges get width, colour,
    opacity and a label from each candidate's weight; the current argmax candidates are highlighted.

    Uses the widget's ``graph`` attribute, ``style_edges({(src, dst): style})`` and ``highlight(nodes, style)``.
    """

    def __init__(self, widget: Any, graph: Graph, space: DetectorSpace) -> None:
        self.widget = widget
        self.graph = graph
        self.space = space
        self.display = display_graph(graph, space)
        if hasattr(widget, "graph"):
            widget.graph = self.display

    @staticmethod
    def colour(w: float) -> str:
        """Light grey (weight 0) to red (weight 1)."""
        w = min(max(w, 0.0), 1.0)
        r, g, b = int(200 + 14 * w), int(200 - 161 * w), int(200 - 160 * w)
        return f"#{r:02x}{g:02x}{b:02x}"

    def styles(self, weights: dict[str, list[float]]) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
        """Edge styles per (candidate node, position node) and the names of the argmax candidate nodes."""
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        best = []
        for pos, w in weights.items():
            node = find_position(self.graph, pos)
            labels = [candidate_label(c) for c in candidate_list(node.params["candidates"])]
            top = max(w)
            for label, v in zip(labels, w, strict=True):
                rel = v / top if top > 0 else 0.0
                edges[(f"{pos}.{label}", pos)] = {"width": round(1 + 7 * rel, 2), "color": self.colour(rel),
                                                  "opacity": round(0.25 + 0.75 * rel, 3), "label": f"{v:.2f}"}
            best.append(f"{pos}.{labels[int(torch.tensor(w).argmax())]}")
        return edges, best

    def update(self, weights: dict[str, list[float]]) -> None:
        """Push new weights to the widget."""
        edges, best = self.styles(weights)
        self.widget.style_edges(edges)
        self.widget.highlight(best, {"border_color": "#d62728", "border_width": 3})
