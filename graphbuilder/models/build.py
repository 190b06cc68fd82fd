"""Shorthands for writing networks as IR graphs: conv + norm + activation, and blocks as nested graphs.

Boundary: public `Graph` API only (this package sits beside `passes`: it reads and writes IR graphs, never
the compiler). A network is a top graph whose stages and blocks are block nodes (nested `Graph`s), so the
editor shows them collapsed and a user expands and edits them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphbuilder.ir.graph import Graph, Port

Value = Any  # a Node or node[i]: an output port of a node


def conv_bn(g: Graph, x: Value, out_channels: int, kernel_size: Any, *, stride: Any = 1, padding: Any = None,
            groups: int = 1, act: str | None = "relu", name: str = "conv") -> Value:
    """conv2d (no bias) -> batch_norm2d -> optional activation; padding defaults to 'same' for odd kernels."""
    if padding is None:
        padding = tuple(k // 2 for k in kernel_size) if isinstance(kernel_size, tuple) else kernel_size // 2
    h = g.add("conv2d", x, name=name, out_channels=out_channels, kernel_size=kernel_size, stride=stride,
              padding=padding, groups=groups, bias=False)
    h = g.add("batch_norm2d", h, name=f"{name}_bn")
    return g.add(act, h, name=f"{name}_{act}") if act else h


def block(name: str, shapes: Sequence[tuple[int, ...]], body: Callable[[Graph, list[Value]], Sequence[Value]],
          input_names: Sequence[str] = ("x",)) -> Graph:
    """A block graph called `name` with inputs of `shapes`, its outputs whatever `body(g, inputs)` returns."""
    g = Graph(name)
    inputs = [g.input(n, shape=tuple(s)) for n, s in zip(input_names, shapes, strict=True)]
    g.output(*body(g, inputs))
    return g


def add_block(g: Graph, inner: Graph, *inputs: Value, name: str) -> list[Port]:
    """Add `inner` as a block node called `name`; return its output ports."""
    node = g.add(inner, *inputs, name=name)
    return [node[i] for i in range(node.num_outputs)]


def shape_of(value: Value) -> tuple[int, ...]:
    """The inferred shape of a node output."""
    return tuple(value.shape)
