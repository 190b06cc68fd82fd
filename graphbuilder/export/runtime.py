"""Deployment exports of a graph: TorchScript, `torch.export` programs and ONNX files.

Boundary: each function compiles the graph with `gb.compile` (weights included), puts the module in eval
mode (deployment semantics: batch norm uses running stats, dropout is off) and hands it to torch's own
exporter. Failures become `GraphError`s naming the node(s) that block the format, found by exporting each
node on its own (`blockers`).

ONNX uses torch 2.13's default exporter (``torch.onnx.export(..., dynamo=True)``, built on torch.export and
onnxscript). The model is exported in memory, checked with `onnx.checker`, and only then written with an
atomic rename, so a failed export never leaves a file (or a half-written one) at `path`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import fx

from graphbuilder.compile import compile as gb_compile
from graphbuilder.ir import paths, registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node
from graphbuilder.ir.serialize import atomic_write
from graphbuilder.ops.declare import TORCH_DTYPES

FORMATS = ("python", "torchscript", "exported", "onnx")


def example_inputs(graph: Graph, batch: int | None = None, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs matching the graph's input nodes (optionally with another batch size)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for node in graph.inputs:
        shape = list(node.params["shape"])
        if batch is not None and shape:
            shape[0] = batch
        dtype = TORCH_DTYPES[node.params["dtype"]]
        if dtype.is_floating_point:
            out.append(torch.randn(shape, generator=gen).to(dtype))
        elif dtype == torch.bool:
            out.append(torch.randint(0, 2, shape, generator=gen).bool())
        else:  # ids, e.g. for embeddings: stay inside every embedding's vocabulary
            out.append(torch.randint(0, _max_id(graph), shape, generator=gen).to(dtype))
    return tuple(out)


def _max_id(graph: Graph) -> int:
    sizes = [n.params["num_embeddings"] for n in _all_nodes(graph) if n.op == "embedding"]
    return min(sizes) if sizes else 2


def _all_nodes(graph: Graph, prefix: str = "") -> Iterator[Node]:
    for node in graph:
        yield node
        if node.op == BLOCK and node.block is not None:
            yield from _all_nodes(node.block)


def _deployable(graph: Graph) -> fx.GraphModule:
    return gb_compile(graph).eval()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence exporters' progress prints, warnings and log lines (errors still raise)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(error: BaseException) -> str:
    """The error's first line without terminal colours; torch's exporters wrap the cause in a generic
    "Failed to ..." message, so the cause's first line follows it."""
    text = _ANSI.sub("", str(error)).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    if error.__cause__ is not None and error.__cause__ is not error:
        line = f"{line.split('. ')[0]}: {_first_line(error.__cause__)}"
    return line[:300]


def to_torchscript(graph: Graph) -> torch.jit.ScriptModule:
    """The graph as a TorchScript module (scripted; traced on example inputs where scripting fails)."""
    model = _deployable(graph)
    try:
        with quiet():
            return torch.jit.script(model)
    except Exception as scripting:
        try:
            with quiet(), torch.no_grad():
                return torch.jit.trace(model, example_inputs(graph), check_trace=False)
        except Exception as tracing:
            raise _blocked(graph, "torchscript", f"scripting failed ({_first_line(scripting)}) and tracing "
                                                 f"failed ({_first_line(tracing)})") from None


def _dynamic_shapes(graph: Graph) -> tuple[dict[int, Any], ...]:
    batch = torch.export.Dim("batch", min=1, max=2**20)
    return tuple({0: batch} if n.params["shape"] else {} for n in graph.inputs)


def _export_inputs(graph: Graph, dynamic_batch: bool) -> tuple[torch.Tensor, ...]:
    # torch.export specialises sizes 0 and 1; give it a batch of at least 2 when the batch is dynamic.
    batch = graph.inputs[0].params["shape"][0] if graph.inputs and graph.inputs[0].params["shape"] else None
    return example_inputs(graph, batch=max(2, batch) if dynamic_batch and batch is not None else None)


def to_exported(graph: Graph, dynamic_batch: bool = True) -> torch.export.ExportedProgram:
    """The graph as a `torch.export.ExportedProgram` (eval mode); with `dynamic_batch`, dim 0 of every input
    is a shared symbolic ``batch`` dimension."""
    model = _deployable(graph)
    inputs = _export_inputs(graph, dynamic_batch)
    try:
        with quiet():
            return torch.export.export(model, inputs, dynamic_shapes=_dynamic_shapes(graph) if dynamic_batch else None)
    except Exception as e:
        raise _blocked(graph, "exported", _first_line(e), dynamic_batch=dynamic_batch) from None


def onnx_bytes(graph: Graph, dynamic_batch: bool = True) -> bytes:
    """The graph as a checked ONNX model in memory (see `to_onnx`)."""
    import onnx

    model = _deployable(graph)
    inputs = _export_inputs(graph, dynamic_batch)
    names = [f"input_{i}" for i in range(len(graph.inputs))]
    try:
        with quiet():
            program = torch.onnx.export(model, inputs, dynamo=True, input_names=names,
                                        output_names=[f"output_{i}" for i in range(len(graph.outputs))],
                                        dynamic_shapes=_dynamic_shapes(graph) if dynamic_batch else None,
                                        optimize=True, verify=False)
            proto = program.model_proto
            onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise _blocked(graph, "onnx", _first_line(e), dynamic_batch=dynamic_batch) from None
    if dynamic_batch and not _batch_is_symbolic(proto):
        # the exporter specialised the batch size instead of failing: a node fixes it
        raise _blocked(graph, "onnx", "the batch dimension could not stay dynamic", dynamic_batch=True)
    return proto.SerializeToString()


def _batch_is_symbolic(proto: Any) -> bool:
    for value in proto.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_param:
            return False
    return True


def to_onnx(graph: Graph, path: str | os.PathLike[str], dynamic_batch: bool = True) -> str:
    """Write the graph as an ONNX file at `path` (atomically) and return the path.

    Inputs are named ``input_0``... and outputs ``output_0``...; with `dynamic_batch` their dim 0 is the
    symbolic ``batch``. The model is checked with `onnx.checker` before anything is written. A graph holding
    an op ONNX cannot express raises `GraphError` naming the node and the reason; `path` is left untouched.
    """
    data = onnx_bytes(graph, dynamic_batch)
    path = os.fspath(path)
    atomic_write(path, data)
    return path


# -- finding the nodes that block a format --------------------------------------------------------------------
def _single(node: Node) -> Graph:
    """A graph holding only `node` (with its weights), fed by inputs of its input shapes."""
    g = Graph(f"probe_{node.op}")
    ports = [p for p in node.inputs if p is not None]
    ins = [g.input(f"in{i}", shape=p.shape, dtype=p.dtype) for i, p in enumerate(ports)]
    if node.op == BLOCK:
        assert node.block is not None
        made = g.add(node.block, *ins, name="node")
    else:
        made = g.add(node.op, *ins, name="node", **dict(node.params))
        if node.name in node.graph.weights:
            g.weights["node"] = node.graph.weights[node.name]
    for i in range(len(made.outputs)):
        g.output(made[i], name=f"out{i}")
    if not ins:  # a node without inputs (a constant, a parameter): exported graphs need one input
        g.output(g.input("in0", shape=(1,)), name="passed")
    return g


def probe(node: Node, fmt: str, dynamic_batch: bool = True) -> str | None:
    """Why `node` alone cannot be exported to `fmt`, or None when it can."""
    g = _single(node)
    try:
        if fmt == "torchscript":
            to_torchscript_raw(g)
        elif fmt == "exported":
            model = _deployable(g)
            with quiet():
                torch.export.export(model, _export_inputs(g, dynamic_batch),
                                    dynamic_shapes=_dynamic_shapes(g) if dynamic_batch else None)
        elif fmt == "onnx":
            onnx_bytes_raw(g, dynamic_batch)
        elif fmt == "python":
            from graphbuilder.export.python_source import to_python

            to_python(g)
    except GraphError as e:
        return e.message
    except Exception as e:
        return _first_line(e)
    return None


def to_torchscript_raw(graph: Graph) -> None:
    """Script (or trace) without locating blockers; raises torch's error."""
    model = _deployable(graph)
    with quiet():
        try:
            torch.jit.script(model)
        except Exception:
            with torch.no_grad():
                torch.jit.trace(model, example_inputs(graph), check_trace=False)


def onnx_bytes_raw(graph: Graph, dynamic_batch: bool) -> None:
    """Export to ONNX in memory without locating blockers; raises torch's error."""
    import onnx

    model = _deployable(graph)
    with quiet():
        program = torch.onnx.export(model, _export_inputs(graph, dynamic_batch), dynamo=True,
                                    dynamic_shapes=_dynamic_shapes(graph) if dynamic_batch else None,
                                    optimize=True, verify=False)
        onnx.checker.check_model(program.model_proto, full_check=True)
    if dynamic_batch and not _batch_is_symbolic(program.model_proto):
        raise RuntimeError("the batch dimension could not stay dynamic")


def blockers(graph: Graph, fmt: str, dynamic_batch: bool = True, path: tuple[str, ...] = ()
             ) -> list[tuple[str, str, str]]:
    """``(node path, op, reason)`` for every node that cannot be exported to `fmt` on its own. Blocks are
    searched inside, so the innermost failing node is named. Nodes with the same op, params and input
    shapes are probed once."""
    found: list[tuple[str, str, str]] = []
    cache: dict[Any, str | None] = {}
    for node in graph:
        if node.op in ("input", "output"):
            continue
        where = paths.join_all([*path, node.name])
        if node.op == BLOCK:
            assert node.block is not None
            found += blockers(node.block, fmt, dynamic_batch, (*path, node.name))
            continue
        key = (node.op, repr(sorted(node.params.items())), tuple(p.spec for p in node.inputs if p is not None))
        if key not in cache:
            cache[key] = probe(node, fmt, dynamic_batch)
        if cache[key] is not None:
            found.append((where, node.op, cache[key]))
    return found


def _blocked(graph: Graph, fmt: str, reason: str, dynamic_batch: bool = True) -> GraphError:
    found = blockers(graph, fmt, dynamic_batch)
    if dynamic_batch and fmt in ("exported", "onnx"):
        found += [(w, "reshape", "its shape fixes the batch size; write -1 for dim 0 or export with "
                   "dynamic_batch=False") for w, n in _fixed_batch_reshapes(graph) if all(w != f[0] for f in found)]
    if not found:
        return GraphError(f"{fmt} export of graph {graph.name!r} failed: {reason}")
    listed = "; ".join(f"node {w!r} ({op}): {why}" for w, op, why in found)
    return GraphError(f"{fmt} export of graph {graph.name!r} is blocked by {listed}. Replace these nodes with "
                      f"ops that {fmt} supports", [w for w, _, _ in found])


def _fixed_batch_reshapes(graph: Graph, path: tuple[str, ...] = ()) -> list[tuple[str, Node]]:
    out = []
    for node in graph:
        where = paths.join_all([*path, node.name])
        if node.op == "reshape" and node.params["shape"] and node.params["shape"][0] != -1:
            out.append((where, node))
        elif node.op == BLOCK and node.block is not None:
            out += _fixed_batch_reshapes(node.block, (*path, node.name))
    return out


def known_ops() -> list[str]:
    """Every registered op except the structural ones (what the per-op export tests cover)."""
    return [name for name in registry.names() if name not in ("input", "output")]
