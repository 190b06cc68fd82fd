"""Human views of a graph: the text listing (`print(g)`), the summary table, and the graphviz picture.

The picture works in any notebook viewer (GitHub, nbviewer) because it is plain SVG from graphviz, with
blocks drawn collapsed as one box unless asked to expand.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from graphbuilder.ir import registry
from graphbuilder.ir.graph import BLOCK, Graph, Node


def _inputs_text(node: Node) -> str:
    parts = []
    for port in node.inputs:
        if port is None:
            parts.append("?")
        else:
            parts.append(port.node.name if port.index == 0 else f"{port.node.name}[{port.index}]")
    return ", ".join(parts)


def _params_text(node: Node) -> str:
    if node.op == BLOCK:
        assert node.block is not None
        return f"<{len(node.block)} nodes>"
    opdef = registry.get(node.op)
    shown = []
    for p in opdef.params:
        value = node._params.get(p.name)
        if value != p.default or p.required:
            shown.append(f"{p.name}={_short(value)}")
    return " ".join(shown)


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, tuple):
        text = "(" + ", ".join(map(str, value)) + ("," if len(value) == 1 else "") + ")"
    else:
        text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."  # e.g. a neuron_graph's JSON topology


def _outputs_text(node: Node) -> str:
    if node._error is not None:
        return "ERROR: " + node._error.message
    if not node._outputs:
        return "?"
    return " | ".join(str(s) for s in node._outputs)


def format_listing(graph: Graph) -> str:
    """The readable `print(g)` listing: one line per node with op, inputs, changed params and shapes."""
    graph.infer()
    rows = [(repr(n.name), n.op, _inputs_text(n), _params_text(n), _outputs_text(n)) for n in graph]
    header = ("node", "op", "inputs", "params", "output")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = [f"graph {graph.name!r} ({len(graph)} nodes)"]
    for row in [header, *rows]:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())
    return "\n".join(lines)


@dataclass
class SummaryRow:
    """One row of `Graph.summary()`."""

    name: str
    op: str
    output: str
    params: int
    flops: int


@dataclass
class Summary:
    """Per-node parameter counts and FLOPs (torch's flop counter on meta tensors), with totals."""

    graph_name: str
    rows: list[SummaryRow]
    errors: int = 0

    @property
    def total_params(self) -> int:
        """Sum of all nodes' parameter counts."""
        return sum(r.params for r in self.rows)

    @property
    def total_flops(self) -> int:
        """Sum of all nodes' FLOPs for one forward pass at the input shapes (a multiply-add counts 2)."""
        return sum(r.flops for r in self.rows)

    @classmethod
    def of(cls, graph: Graph) -> Summary:
        """Compute the summary. A node with an error gets a row with ``ERROR: ...`` as its output and no
        params or FLOPs, so a broken graph still shows its table (totals then cover the valid nodes)."""
        errors = graph.infer()
        rows = [SummaryRow(n.name, n.op, _outputs_text(n), 0 if n._error else n.num_params,
                           0 if n._error else node_flops(n)) for n in graph]
        return cls(graph.name, rows, len(errors))

    def __str__(self) -> str:
        header = ("node", "op", "output", "params", "FLOPs")
        rows = [(r.name, r.op, r.output, f"{r.params:,}", f"{r.flops:,}") for r in self.rows]
        rows.append(("total", "", "", f"{self.total_params:,}", f"{self.total_flops:,}"))
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
        lines = [f"{self.errors} node(s) have errors; totals count the valid nodes only"] if self.errors else []
        for k, row in enumerate([header, *rows]):
            cells = [c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))]
            lines.append("  ".join(cells).rstrip())
            if k == 0 or k == len(rows) - 1:
                lines.append("-" * len(lines[-1]))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{html.escape(r.name)}</td><td>{r.op}</td><td>{html.escape(r.output)}</td>"
            f"<td style='text-align:right'>{r.params:,}</td><td style='text-align:right'>{r.flops:,}</td></tr>"
            for r in self.rows)
        caption = html.escape(self.graph_name) + (f" ({self.errors} node(s) with errors)" if self.errors else "")
        return (f"<table><caption>{caption}</caption><tr><th>node</th><th>op</th>"
                f"<th>output</th><th>params</th><th>FLOPs</th></tr>{cells}<tr><th>total</th><th></th><th></th>"
                f"<th style='text-align:right'>{self.total_params:,}</th>"
                f"<th style='text-align:right'>{self.total_flops:,}</th></tr></table>")


def node_flops(node: Node) -> int:
    """FLOPs of one node at its inferred input shapes (blocks: the sum of their nodes)."""
    if node.op == BLOCK:
        assert node.block is not None
        return sum(node_flops(n) for n in node.block)
    opdef = registry.get(node.op)
    if opdef.flops is None:
        return 0
    specs = [p.spec for p in node.inputs if p is not None]
    return opdef.flops(opdef, dict(node._params), specs)


_CATEGORY_COLOURS = {
    "structure": "#e0e0e0", "convolution": "#bbdefb", "normalization": "#c8e6c9", "activation": "#fff9c4",
    "pooling": "#d1c4e9", "resize": "#ffe0b2", "tensor": "#f5f5f5", "attention": "#f8bbd0",
}


def to_graphviz(graph: Graph, expand_blocks: bool = False) -> Any:
    """A `graphviz.Digraph` of `graph`; ids are generated, labels escaped (any node name is safe)."""
    import graphviz

    graph.infer()
    dot = graphviz.Digraph(graph.name, graph_attr={"rankdir": "TB", "fontsize": "10"},
                           node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                                      "fontsize": "10"}, edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    _draw(dot, graph, "n", expand_blocks)
    return dot


def _draw(dot: Any, graph: Graph, prefix: str, expand: bool) -> dict[Node, str]:
    import graphviz

    ids: dict[Node, str] = {}
    for i, node in enumerate(graph):
        ids[node] = f"{prefix}{i}"
    for node in graph:
        name = graphviz.escape(node.name)
        label = f"{name}\n{node.op}" if node.name != node.op else name
        if node.op == BLOCK and expand and node.block is not None:
            with dot.subgraph(name=f"cluster_{ids[node]}") as sub:
                sub.attr(label=node.name, style="rounded,dashed")
                _draw(sub, node.block, ids[node] + "_", expand)
            dot.node(ids[node], label=f"{node.name} outputs", shape="point")
        else:
            fill = "#ef9a9a" if node._error is not None else _fill(node)
            shape = "box3d" if node.op == BLOCK else "box"
            dot.node(ids[node], label=label, fillcolor=fill, shape=shape,
                     tooltip=graphviz.escape(node._error.message) if node._error else node.op)
        for port in node.inputs:
            if port is None:
                continue
            source = port.node
            spec = source._outputs[port.index] if source._outputs and port.index < len(source._outputs) else None
            dot.edge(ids[source], ids[node], label=str(spec) if spec else "")
    return ids


def _fill(node: Node) -> str:
    if node.op == BLOCK:
        return "#b2dfdb"
    try:
        category = registry.get(node.op).category
    except Exception:
        return "#ffffff"
    return _CATEGORY_COLOURS.get(category, "#ffffff")
