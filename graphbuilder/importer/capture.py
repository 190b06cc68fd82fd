"""Capturing a module's computation as a list of IR calls (`Emit`s): torch.fx first, torch.export as fallback.

Boundary: tracing and translating calls (through the tables in `mapping.py`); grouping into nested blocks is
`assemble.py`'s job. Both paths run the traced program once on the example inputs (an fx `Interpreter`)
so every value has a concrete example: sizes read with ``x.size(0)`` become constants, views know their
output shapes, and every IR node's inferred shape can be checked against what torch computed.

- fx path: a `torch.fx.Tracer` whose `is_leaf_module` keeps mapped torch.nn layers and ``@gb.op`` classes as
  single calls, and traces through everything else; each node's ``nn_module_stack`` gives its module path.
- export path (when symbolic tracing fails, e.g. on control flow that depends on shapes): `torch.export`
  specialises on the example shapes; the aten calls made inside one leaf module are collapsed back into one
  call of that module, and the rest are translated through the same function table.
If neither can capture the module, the `GraphError` names the module path and type and how to register it.

The module's buffers (batch-norm running stats) are restored after the example run, so importing never
changes the user's module, and the weights stored are the ones it had before.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from graphbuilder.importer import mapping
from graphbuilder.importer.mapping import Args, Emit, Ref, Unsupported
from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.declare import DTYPE_NAMES

Scope = tuple[tuple[str, str, str], ...]  # (module key, qualified path, class name), outermost first

REGISTER_HINT = ("register it as an op: decorate the module class with @gb.op(\"name\") (its module then "
                 "imports as one node and compiles with its own forward), or rewrite it with supported torch calls")


@dataclass
class Capture:
    """What tracing found: the calls in execution order (inputs first, outputs last) and how it was traced."""

    calls: list[Emit]
    method: str  # "fx" or "export"


class _Tracer(fx.Tracer):
    """Keeps mapped layers and @gb.op classes as leaves; traces through every other module."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return mapping.is_leaf(m)


class _Recorder(fx.Interpreter):
    """Runs a traced program and keeps every node's concrete value."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        self.values[n] = value
        return value


@contextmanager
def _buffers_kept(module: nn.Module) -> Iterator[None]:
    saved = [(b, b.detach().clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


def capture(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> Capture:
    """Trace `module` on `example_inputs` into IR calls (see the module docstring)."""
    tracer = _Tracer()
    try:
        fx_graph = tracer.trace(module)
    except GraphError:
        raise
    except Exception as e:  # symbolic tracing cannot follow this module: fall back to torch.export
        where = _innermost(tracer.module_stack, module)
        return _capture_export(module, example_inputs, fx_failure=(where, e))
    gm = fx.GraphModule(tracer.root, fx_graph)
    values = _run(gm, module, example_inputs)
    return Capture(_translate(gm, module, values, leaf_calls=None), "fx")


def _innermost(stack: OrderedDict[str, tuple[str, Any]], root: nn.Module) -> tuple[str, str]:
    if not stack:
        return "", type(root).__name__
    path, kind = next(reversed(stack.values()))
    return path, getattr(kind, "__name__", str(kind))


def _run(gm: fx.GraphModule, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[fx.Node, Any]:
    """Every node's example value. Shapes are all that is needed, so the program runs on fake tensors (no
    compute); if an op has no fake implementation it runs for real."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    recorder = _Recorder(gm)
    try:
        with _buffers_kept(module), torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True) as mode:
            recorder.run(*(mode.from_tensor(x) for x in inputs))
        return recorder.values
    except Exception:
        recorder = _Recorder(gm)
    with _buffers_kept(module), torch.no_grad():
        recorder.run(*inputs)
    return recorder.values


def _scope_of(node: fx.Node, drop_last: bool) -> Scope:
    stack = node.meta.get("nn_module_stack") or {}
    entries = []
    for key, (path, kind) in stack.items():
        if not path:
            continue
        name = kind.__name__ if isinstance(kind, type) else str(kind).rsplit(".", 1)[-1]
        entries.append((str(key), str(path), name))
    if drop_last and entries:
        entries.pop()
    return tuple(entries)


def _where(scope: Scope, root: nn.Module) -> str:
    if scope:
        return f"module path {scope[-1][1]!r} ({scope[-1][2]})"
    return f"the top-level module ({type(root).__name__})"


def _fail(message: str, scope: Scope, root: nn.Module, node_name: str) -> GraphError:
    return GraphError(f"cannot import {message} at {_where(scope, root)}: {REGISTER_HINT}",
                      [scope[-1][1] if scope else node_name])


def _label(node: fx.Node) -> str:
    name = node.name
    base = name.rstrip("0123456789")
    return base[:-1] if base.endswith("_") and base != name else name


def _translate(gm: fx.GraphModule, root: nn.Module, values: dict[fx.Node, Any],
               leaf_calls: dict[fx.Node, tuple[nn.Module, str, Scope]] | None) -> list[Emit]:
    """Turn a traced program into `Emit`s. `leaf_calls` (export path) marks collapsed leaf-module calls."""
    env: dict[fx.Node, Any] = {}
    calls: list[Emit] = []

    def emit(e: Emit, node: fx.Node, scope: Scope, source: str) -> None:
        e.scope, e.source = scope, source
        e.label = e.label or _label(node)
        calls.append(e)
        value = values[node]
        outs = value if isinstance(value, (tuple, list)) else [value]
        e.expected = [(tuple(v.shape), DTYPE_NAMES.get(v.dtype, str(v.dtype))) for v in outs
                      if isinstance(v, torch.Tensor)]
        if isinstance(value, torch.Tensor):
            env[node] = Ref(e, 0, value)
        elif isinstance(value, (tuple, list)):
            env[node] = tuple(Ref(e, i, v) if isinstance(v, torch.Tensor) else v for i, v in enumerate(value))
        else:
            raise _fail(f"{source}, which returned {type(value).__name__}", scope, root, node.name)

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            value = values[node]
            if not isinstance(value, torch.Tensor):
                raise GraphError(f"input {node.name!r} is {type(value).__name__}; from_module takes tensor inputs "
                                 "only (pass constants as module attributes)", [node.name])
            e = Emit("input", {"shape": tuple(value.shape), "dtype": DTYPE_NAMES[value.dtype]}, [], label=node.name)
            emit(e, node, (), node.name)
        elif node.op == "get_attr":
            env[node] = values.get(node, getattr(gm, str(node.target), None))
        elif node.op == "output":
            result = fx.node.map_arg(node.args[0], lambda a: env[a])
            outs = list(result) if isinstance(result, (tuple, list)) else [result]
            for i, ref in enumerate(outs):
                if not isinstance(ref, Ref):
                    raise GraphError(f"the module returns {type(ref).__name__} at output {i}; from_module needs it "
                                     "to return a tensor or a tuple of tensors")
                calls.append(Emit("output", {}, [ref], label="output" if len(outs) == 1 else f"output_{i}"))
        elif leaf_calls is not None and node in leaf_calls:
            module, path, scope = leaf_calls[node]
            args = fx.node.map_arg(node.args, lambda a: env[a])
            try:
                e = mapping.module_emit(module, Args(args, dict(node.target.kwargs), values[node]))
            except Unsupported as err:
                raise _fail(f"{type(module).__name__} at {path!r} ({err})", (*scope, ("", path, type(module).__name__)),
                            root, node.name) from None
            e.label = path.rsplit(".", 1)[-1]
            emit(e, node, scope, path)
        elif node.op == "call_module" and leaf_calls is not None:
            continue  # torch.export's guard function
        elif node.op == "call_module":
            module = gm.get_submodule(str(node.target))
            scope = _scope_of(node, drop_last=True)
            args = fx.node.map_arg(node.args, lambda a: env[a])
            kwargs = fx.node.map_arg(node.kwargs, lambda a: env[a])
            try:
                e = mapping.module_emit(module, Args(args, kwargs, values[node]))
            except Unsupported as err:
                full = (*scope, ("", str(node.target), type(module).__name__))
                raise _fail(f"this call of {type(module).__name__} ({err})", full, root, node.name) from None
            e.label = str(node.target).rsplit(".", 1)[-1]
            emit(e, node, scope, str(node.target))
        else:  # call_function, call_method
            value = values[node]
            args = fx.node.map_arg(node.args, lambda a: env[a])
            kwargs = fx.node.map_arg(node.kwargs, lambda a: env[a])
            if not _holds_tensor(value):
                env[node] = value  # sizes, dims and arithmetic on them: constants for these example shapes
                continue
            scope = _scope_of(node, drop_last=False)
            if node.target is operator.getitem and isinstance(args[0], (tuple, list)):
                env[node] = args[0][args[1]]
                continue
            target = mapping.aten_target(node.target) if leaf_calls is not None else node.target
            handler = mapping.function_handler(node.op, target)
            name = mapping.function_name(node.target)
            if handler is None:
                if target in mapping.FUNCTIONAL_WITH_WEIGHTS:
                    raise _fail(f"{name} reading a parameter tensor directly (use the layer "
                                f"{mapping.FUNCTIONAL_WITH_WEIGHTS[target]} for it)", scope, root, node.name)
                raise _fail(f"the call {name}: GraphBuilder has no op for it", scope, root, node.name)
            try:
                result = handler(Args(args, kwargs, value))
            except Unsupported as err:
                raise _fail(f"the call {name} ({err})", scope, root, node.name) from None
            if isinstance(result, Ref):
                env[node] = result
            else:
                emit(result, node, scope, f"{scope[-1][1] + '/' if scope else ''}{name}")
    return calls


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    return False


# -- torch.export fallback -------------------------------------------------------------------------------------
def _capture_export(module: nn.Module, inputs: tuple[torch.Tensor, ...],
                    fx_failure: tuple[tuple[str, str], Exception]) -> Capture:
    (path, kind), error = fx_failure
    where = f"module path {path!r} ({kind})" if path else f"the top-level module ({kind})"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    try:
        with _buffers_kept(module):
            program = torch.export.export(module, inputs, strict=False)
    except Exception as e:
        second = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GraphError(
            f"cannot import {where}: symbolic tracing failed ({reason[:300]}) and torch.export failed too "
            f"({second[:300]}). This is usually control flow that depends on tensor values; {REGISTER_HINT}",
            [path or type(module).__name__]) from None
    gm = program.module()
    gm.graph.eliminate_dead_code()
    leaf_calls = _collapse_leaves(gm, module)
    values = _run(gm, module, inputs)
    try:
        calls = _translate(gm, module, values, leaf_calls)
    except GraphError as e:
        raise GraphError(f"{e.message} (symbolic tracing had failed at {where}: {reason[:200]}; "
                         "this came from the torch.export fallback)", e.nodes) from None
    return Capture(calls, "export")


def _collapse_leaves(gm: fx.GraphModule, root: nn.Module) -> dict[fx.Node, tuple[nn.Module, str, Scope]]:
    """Replace each run of aten nodes made inside one leaf module by one node standing for its call.

    The new node takes the run's tensor inputs from outside (parameters excluded) in first-use order, and
    its value is the run's one result used outside. Its example value is recomputed by calling the module.
    """
    leaf_calls: dict[fx.Node, tuple[nn.Module, str, Scope]] = {}
    nodes = [n for n in gm.graph.nodes if n.op == "call_function"]
    runs: list[tuple[str, nn.Module, Scope, list[fx.Node]]] = []
    for node in nodes:
        scope = _scope_of(node, drop_last=False)
        leaf = None
        for depth, (_, path, _) in enumerate(scope):
            try:
                sub = root.get_submodule(path)
            except AttributeError:
                continue
            if mapping.is_leaf(sub):
                leaf = (path, sub, scope[:depth], scope[depth][0])
                break
        if leaf is None:
            continue
        path, sub, outer, key = leaf
        if runs and runs[-1][0] == key and runs[-1][3][-1] is _previous_call(node):
            runs[-1][3].append(node)
        else:
            runs.append((key, sub, outer, [node]))
    for key, sub, outer, members in runs:
        inside = set(members)
        external: list[fx.Node] = []
        for n in members:
            for a in n.all_input_nodes:
                if a not in inside and a.op != "get_attr" and a not in external:
                    external.append(a)
        used_outside = [n for n in members if any(u not in inside for u in n.users)]
        path = next(p for k, p, _ in _scope_of(members[0], False) if k == key)
        if len(used_outside) != 1:
            raise GraphError(f"cannot import module path {path!r} ({type(sub).__name__}) from torch.export: "
                             f"{len(used_outside)} of its results are used outside it; {REGISTER_HINT}", [path])
        nargs = _positional_tensor_count(sub)
        args = tuple(external) if len(external) == nargs else tuple(external[:1]) * nargs
        if len(external) > 1 and len(external) != nargs:
            raise GraphError(f"cannot import module path {path!r} ({type(sub).__name__}) from torch.export: "
                             f"it reads {len(external)} tensors but takes {nargs}; {REGISTER_HINT}", [path])
        result = used_outside[0]
        kwargs = {"need_weights": False} if isinstance(sub, nn.MultiheadAttention) else {}
        with gm.graph.inserting_before(members[0]):
            call = gm.graph.call_function(_LeafCall(sub, kwargs), args)
        result.replace_all_uses_with(call)
        for n in reversed(members):
            if not n.users:
                gm.graph.erase_node(n)
        leaf_calls[call] = (sub, path, outer)
    gm.graph.lint()
    gm.recompile()
    return leaf_calls


def _previous_call(node: fx.Node) -> fx.Node | None:
    prev = node.prev
    while prev.op != "root" and prev.op != "call_function":
        prev = prev.prev
    return prev if prev.op == "call_function" else None


def _positional_tensor_count(module: nn.Module) -> int:
    return 3 if isinstance(module, nn.MultiheadAttention) else 1


class _LeafCall:
    """The target of a collapsed leaf call: calls the module; a tuple result gives its first element (the
    one output used outside, e.g. attention's output without its weights)."""

    def __init__(self, module: nn.Module, kwargs: dict[str, Any]) -> None:
        self.module = module
        self.kwargs = kwargs
        self.__name__ = type(module).__name__

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        out = self.module(*args, **self.kwargs)
        return out[0] if isinstance(out, tuple) else out
