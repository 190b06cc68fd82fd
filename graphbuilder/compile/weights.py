"""Moving trained weights between compiled modules and `graph.weights` (keyed by node name), and the rule
for their dtypes.

Dtype rule (docs/format.md): a weight takes the dtype of the module state it fills. A floating-point tensor
for floating-point state of another precision (float64 weights for a float32 layer) is converted, with a
warning naming the node; any other mismatch (integer, bool or complex values for a float layer, floats for
an integer buffer) is refused with `GraphError`. A weights file holds only the dtypes modules have
(`FILE_DTYPES`) and the dtype a node declares for the tensor it holds (a bool `constant` mask): a file with
int32, bool or complex tensors for a layer, or float bytes relabelled as integers, is refused when loaded, and
such weights are refused when saved.
"""

from __future__ import annotations

import warnings

import torch
from torch import fx

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node

FILE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64)
"""Dtypes a weights file may hold: every floating precision, and int64 (counters such as BatchNorm's
``num_batches_tracked``)."""


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def declared_dtype(node: Node | None) -> torch.dtype | None:
    """The dtype a node declares for the tensor it holds (a `constant` mask is bool, a `parameter` may be
    int64), or None for a layer, whose weights follow `FILE_DTYPES`."""
    from graphbuilder.ops.declare import TORCH_DTYPES

    if node is None or node.op == BLOCK:
        return None
    name = node.params.get("dtype") if "dtype" in node.params else None
    return TORCH_DTYPES.get(name) if isinstance(name, str) and registry.get(node.op).build is not None else None


def check_file_dtype(node: str, key: str, tensor: torch.Tensor, where: str, declared: torch.dtype | None = None
                     ) -> None:
    """Raise `GraphError` unless `tensor`'s dtype may be in a weights file: one of `FILE_DTYPES`, or the dtype
    its node declares (`declared_dtype`)."""
    if tensor.dtype not in FILE_DTYPES and tensor.dtype != declared:
        names = ", ".join(_name(d) for d in FILE_DTYPES)
        raise GraphError(f"{where}: weight {key!r} of node {node!r} has dtype {_name(tensor.dtype)}, "
                         f"which no layer holds (weights are {names}); convert it (tensor.float()) or drop it",
                         [node])


def fit_dtypes(node: str, state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` in the dtypes of the module state `own` it fills, by the module's dtype rule (converting other
    float precisions with one warning, refusing anything else)."""
    out, converted = {}, []
    for key, tensor in state.items():
        want = own[key].dtype if key in own else tensor.dtype
        if tensor.dtype != want:
            if not (tensor.dtype.is_floating_point and want.is_floating_point):
                raise GraphError(f"node {node!r}: saved weight {key!r} has dtype "
                                 f"{_name(tensor.dtype)} but the layer holds "
                                 f"{_name(want)}; convert it or drop it with "
                                 "del graph.weights[name] to re-initialise", [node])
            converted.append(f"{key} {_name(tensor.dtype)} -> {_name(want)}")
            tensor = tensor.to(want)
        out[key] = tensor
    if converted:
        warnings.warn(f"node {node!r}: saved weights converted to the layer's dtype: {', '.join(converted)}",
                      stacklevel=4)
    return out


def fits_dtypes(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> bool:
    """Whether every tensor of `state` follows the dtype rule for the module state `own`."""
    return all(key in own and (t.dtype == own[key].dtype or (t.dtype.is_floating_point and
                                                           own[key].dtype.is_floating_point))
               for key, t in state.items())


def store_weights(graph: Graph, module: fx.GraphModule) -> Graph:
    """Copy `module`'s trained tensors into `graph.weights` (blocks into their own graphs); returns `graph`.

    `module` must come from ``gb.compile(graph)``. The next compile then starts from these weights, and
    `graph.save` writes them beside the graph file.
    """
    names = module.meta.get("graphbuilder_names")
    if names is None:
        raise GraphError("this module was not made by gb.compile; store_weights needs the module compiled from "
                         f"graph {graph.name!r}")
    for node in graph:
        if node.op in ("input", "output") or node.name in graph.shared:  # a shared node's weights are its owner's
            continue
        # the module attribute (a multi-output node's fx value is a getitem, not the module call)
        ident = module.meta.get("graphbuilder_modules", {}).get(node.name) or names.get(node.name)
        sub = getattr(module, ident, None) if ident else None
        if sub is None:
            continue
        if node.op == BLOCK:
            assert node.block is not None
            store_weights(node.block, sub)
            continue
        state = {k: v.detach().clone() for k, v in sub.state_dict().items()}
        if state:
            graph.weights[node.name] = state
    return graph
