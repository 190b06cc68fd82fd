"""Compile an IR graph into a `torch.fx.GraphModule`: plain torch, no GraphBuilder needed at run time.

Each IR node becomes one fx node whose name (and submodule attribute) is the node's sanitised identifier,
so `model.code` and torch's errors read like the graph in the editor. Blocks become submodules compiled
the same way. Trained weights in `graph.weights` are loaded into the built modules.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn

from graphbuilder.compile.names import module_namespace
from graphbuilder.compile.weights import fit_dtypes
from graphbuilder.ir import collector, registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node
from graphbuilder.ir.naming import Namespace
from graphbuilder.ir.ties import split_path

# A graph whose weights would not fit in memory is refused before anything is allocated.
MAX_PARAMS = 2**31


def compile(graph: Graph, *, class_name: str | None = None) -> fx.GraphModule:  # noqa: A001
    """Compile `graph` into a `torch.fx.GraphModule` (an ordinary `nn.Module`; CPU, `.to("cuda")`).

    The module's positional inputs are the graph's input nodes in creation order; it returns the single
    output tensor, or a tuple when the graph has several outputs. It is in training mode unless
    ``graph.meta["training"]`` is False (`gb.from_module` records the imported module's mode there, so a graph
    imported from a model in eval mode compiles to a model in eval mode). Raises `GraphError` if the graph
    is invalid.
    """
    with collector.paused():  # a module per node: keep full collections off the whole build
        return _compile(graph, class_name)


def _compile(graph: Graph, class_name: str | None) -> fx.GraphModule:
    graph.check()
    training = graph.meta.get("training", True)
    if not isinstance(training, bool):
        raise GraphError(f"graph {graph.name!r}: meta['training'] must be True or False (the mode of the compiled "
                         f"module), got {training!r}")
    total = sum(n.num_params for n in graph)
    if total > MAX_PARAMS:
        biggest = max(graph, key=lambda n: n.num_params)
        raise GraphError(f"graph {graph.name!r} would allocate {total:,} parameters (over {MAX_PARAMS:,}); the "
                         f"largest node is {biggest.name!r} with {biggest.num_params:,}: reduce its sizes",
                         [biggest.name])
    root = nn.Module()
    fx_graph = fx.Graph()
    names = module_namespace()  # no layer may take a name nn.Module or generated code already has
    values: dict[Node, list[fx.Node]] = {}
    submodules: dict[str, str] = {}  # node name -> attribute of its module (multi-output nodes included)
    for node in graph:
        ident = names.create(node.name)
        owner = graph.shared.get(node.name)
        if owner is not None:  # weight sharing: call the owner's submodule again
            values[node] = _emit(node, ident, root, fx_graph, values, names, module=submodules[owner])
            submodules[node.name] = submodules[owner]
            continue
        values[node] = _emit(node, ident, root, fx_graph, values, names)
        if ident in root._modules:
            submodules[node.name] = ident
    outs = [values[n][0] for n in graph.outputs]
    fx_graph.output(outs[0] if len(outs) == 1 else tuple(outs))
    module = fx.GraphModule(root, fx_graph, class_name=_class_name(class_name or graph.name))
    module.meta["graphbuilder_names"] = {n.name: values[n][0].name for n in graph if values[n]}
    module.meta["graphbuilder_modules"] = submodules
    for weight, owner in graph.tied.items():
        _tie(module, weight, owner)
    return module.train(training)


def _attribute(module: fx.GraphModule, path: str) -> tuple[nn.Module, str]:
    """The module holding the tensor at weight path `path` (see `graphbuilder.ir.ties`) and its attribute."""
    nodes, key = split_path(path)
    current: nn.Module = module
    for name in nodes:
        current = getattr(current, current.meta["graphbuilder_modules"][name])  # type: ignore[union-attr]
    prefix, _, leaf = key.rpartition(".")
    return (current.get_submodule(prefix) if prefix else current), leaf


def _tie(module: fx.GraphModule, weight: str, owner: str) -> None:
    """Make the tensor at `weight` the very tensor at `owner`: one `nn.Parameter` (or buffer), two names."""
    holder, name = _attribute(module, weight)
    source, source_name = _attribute(module, owner)
    table = "_parameters" if name in holder._parameters else "_buffers"
    tensor = getattr(source, table).get(source_name)
    if tensor is None:
        raise GraphError(f"tied weight {weight!r}: {owner!r} is not a {table[1:-1]} of its module")
    getattr(holder, table)[name] = tensor


def _emit(node: Node, ident: str, root: nn.Module, fx_graph: fx.Graph, values: dict[Node, list[fx.Node]],
          names: Namespace, module: str | None = None) -> list[fx.Node]:
    """Emit the fx node(s) for `node`; returns one fx value per output of the node. With `module` (the
    attribute of the node whose weights it shares) the node calls that submodule instead of building one."""
    args = [values[p.node][p.index] for p in node.inputs if p is not None]
    if node.op == "input":
        return [fx_graph.create_node("placeholder", ident, name=ident)]
    if node.op == "output":
        return args
    if node.op == BLOCK:
        assert node.block is not None
        if module is None:
            root.add_module(ident, compile(node.block))
        fx_node = fx_graph.create_node("call_module", module or ident, tuple(args), name=ident)
    else:
        opdef = registry.get(node.op)
        kwargs = opdef.kwargs(dict(node.params)) if opdef.kwargs else {}
        call_args: tuple[Any, ...] = (args,) if opdef.variadic else tuple(args)
        if opdef.args is not None:
            call_args += tuple(opdef.args(dict(node.params)))
        if opdef.build is not None:
            if module is None:
                root.add_module(ident, _build(opdef, node))
            fx_node = fx_graph.create_node("call_module", module or ident, call_args, kwargs, name=ident)
        else:
            fx_node = fx_graph.create_node("call_function", opdef.function, call_args, kwargs, name=ident)
    if not node.packed:
        return [fx_node]
    return [fx_graph.call_function(operator.getitem, (fx_node, i)) for i in range(node.num_outputs)]


def _build(opdef: Any, node: Node) -> nn.Module:
    specs = [p.spec for p in node.inputs if p is not None]
    try:
        module = opdef.build(dict(node.params), specs)
    except Exception as e:
        raise GraphError(f"node {node.name!r} ({node.op}): building the torch module failed: {e}",
                         [node.name]) from None
    _load_weights(module, node)
    return module


def _load_weights(module: nn.Module, node: Node) -> None:
    saved = node.graph.weights.get(node.name)
    if not saved:
        return
    own = module.state_dict()
    for key, tensor in saved.items():
        if key not in own or tuple(own[key].shape) != tuple(tensor.shape):
            raise GraphError(f"node {node.name!r}: saved weight {key!r} of shape {tuple(tensor.shape)} does not fit "
                             f"the module (expects {tuple(own[key].shape) if key in own else 'no such weight'}); "
                             "drop it with del graph.weights[name] to re-initialise", [node.name])
    with torch.no_grad():
        module.load_state_dict({**own, **fit_dtypes(node.name, saved, own)}, strict=True)


def _class_name(label: str) -> str:
    ident = Namespace().create(label)
    return "".join(part.capitalize() for part in ident.split("_")) or "Net"
