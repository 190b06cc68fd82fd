"""Import existing PyTorch modules into GraphBuilder graphs: `gb.from_module(module, example_inputs)`.

Layer: uses ir + ops (and torch); nothing in ir/ops/compile imports it. See docs/interop.md.

    capture.py   trace (torch.fx, torch.export fallback) and translate calls
    mapping.py   the tables: nn.Module classes, functions and tensor methods -> registered ops
    tensor_calls.py  indexing, math, reductions, functional layers on a module's own tensors, the ATen allow-list
    assemble.py  group calls by module path into nested blocks; build the Graph and its weights
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from graphbuilder.importer import tensor_calls  # noqa: F401  (registers the tensor-level call mappings)
from graphbuilder.importer.assemble import assemble
from graphbuilder.importer.capture import capture
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph

__all__ = ["from_module"]


def from_module(module: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor] = (), *,
                name: str | None = None, example_kwargs: dict[str, Any] | None = None) -> Graph:
    """Import `module` as a `Graph` with its weights, keeping its module hierarchy as nested blocks.

    `example_inputs` (a tensor or a tuple of tensors) fixes the input shapes; the module is run once on them
    (its buffers are restored afterwards). ``gb.compile(gb.from_module(m, (x,)))(x)`` equals ``m(x)``.
    Anything without an op raises `GraphError` naming the module path and type and how to register it
    with ``@gb.op``. The graph's ``meta["import"]`` records how it was captured (``"fx"`` or ``"export"``),
    and ``meta["training"]`` the module's mode, which `gb.compile` then gives the compiled module.

        >>> g = gb.from_module(resnet, (torch.randn(1, 3, 32, 32),))     # doctest: +SKIP
        >>> g["layer1"].block["0"].block          # a bottleneck block    # doctest: +SKIP
    """
    if not isinstance(module, nn.Module):
        raise GraphError(f"from_module needs a torch.nn.Module, got {type(module).__name__}")
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(example_inputs)
    kwargs = dict(example_kwargs or {})
    if not (inputs or kwargs) or not all(isinstance(x, torch.Tensor) for x in (*inputs, *kwargs.values())
                                         if x is not None):
        raise GraphError("example_inputs must be a tensor or a non-empty tuple of tensors, e.g. "
                         "(torch.randn(1, 3, 32, 32),), and example_kwargs a dict of tensors (or None)")
    captured = capture(module, inputs, kwargs)
    graph = assemble(captured.calls, name or type(module).__name__)
    graph.meta["import"] = {"method": captured.method, "module": f"{type(module).__module__}."
                            f"{type(module).__qualname__}"}
    graph.meta["training"] = module.training
    return graph
