"""Running an op's declared examples: their input tensors, a one-node graph, and the reference result.

Every op test (compiled against the reference, export parity, the random DAGs of the property tests) is
driven from `OpDef.examples`, so an op is tested by declaring it, and an op without examples fails a test.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from graphbuilder.ir.graph import Graph, Node
from graphbuilder.ir.schema import Example, OpDef
from graphbuilder.ops.declare import TORCH_DTYPES, call


def example_tensors(ex: Example, seed: int = 0) -> list[torch.Tensor]:
    """Input tensors for example `ex`, reproducible from `seed` (value ranges: `Example.low`/`high`)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in ex.inputs:
        dtype = TORCH_DTYPES[spec.dtype]
        if dtype.is_floating_point:
            if ex.low is None or ex.high is None:
                value = torch.randn(spec.shape, generator=gen)
            else:
                value = torch.rand(spec.shape, generator=gen) * (ex.high - ex.low) + ex.low
            out.append(value.to(dtype))
        elif dtype == torch.bool:
            out.append(torch.randint(0, 2, spec.shape, generator=gen).bool())
        else:
            lo, hi = int(ex.low or 0), int(2 if ex.high is None else ex.high)
            out.append(torch.randint(lo, hi, spec.shape, generator=gen, dtype=dtype))
    return out


def example_graph(opdef: OpDef, ex: Example) -> tuple[Graph, Node]:
    """A graph applying `opdef` once, as example `ex` says: one input per example input, one output per op
    output. An op without inputs (a learnable tensor, a constant) gets an extra input ``x`` passed through as
    the last output, since a compiled graph takes at least one input. Returns the graph and the op's node."""
    g = Graph(f"example_{opdef.name}")
    ins = [g.input(f"x{i}", shape=s.shape, dtype=s.dtype) for i, s in enumerate(ex.inputs)]
    if opdef.name == "input":
        node = g.input(opdef.name, **ex.params)
        g.output(node)
        return g, node
    if opdef.name == "output":
        node = g.output(*ins)
        assert isinstance(node, Node)
        return g, node
    node = g.add(opdef.name, *ins, name=opdef.name, **ex.params)
    for i in range(node.num_outputs):
        g.output(node[i], name=f"out{i}")
    if not ins:
        g.output(g.input("x", shape=(1,)), name="passed")
    return g, node


def expected_outputs(opdef: OpDef, ex: Example, node: Node, module: nn.Module | None,
                     tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """What the op must compute on `tensors`: `ex.ref` with the node's weights (taken from `module`, the
    compiled node), or, for an op without a reference, its own torch side called in eager mode."""
    weights = module.state_dict() if module is not None else {}
    if ex.ref is not None:
        out: Any = ex.ref(*tensors, **{k.replace(".", "_"): v for k, v in weights.items()})
    elif opdef.name in ("input", "output"):
        out = tensors
    else:
        eager = None
        if opdef.build is not None:
            eager = opdef.build(dict(node.params), [p.spec for p in node.inputs if p is not None])
            eager.load_state_dict(weights)
            eager.eval()
        out = call(opdef, eager, tensors, dict(node.params))
    return list(out) if isinstance(out, (tuple, list)) else [out]
