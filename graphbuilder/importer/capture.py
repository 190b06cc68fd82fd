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

import inspect
import operator
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from graphbuilder.importer import mapping, tensor_calls
from graphbuilder.importer.mapping import Args, Attr, Emit, Ref, Unsupported
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


def capture(module: nn.Module, example_inputs: tuple[torch.Tensor, ...],
            example_kwargs: dict[str, Any] | None = None) -> Capture:
    """Trace `module` on `example_inputs` (and keyword inputs) into IR calls (see the module docstring).

    Every failure is a `GraphError`: an unforeseen exception from torch or the model is reported with the
    module's class and what to do, never raised as it is."""
    try:
        return _capture(module, example_inputs, example_kwargs)
    except GraphError:
        raise
    except Exception as e:
        text = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise GraphError(f"cannot import {type(module).__name__}: {type(e).__name__}: {text}; {REGISTER_HINT}",
                         [type(module).__name__]) from None


def _capture(module: nn.Module, example_inputs: tuple[torch.Tensor, ...],
             example_kwargs: dict[str, Any] | None) -> Capture:
    kwargs = {k: v for k, v in (example_kwargs or {}).items() if v is not None}
    tracer = _Tracer()
    try:
        concrete = _concrete_args(module, len(example_inputs), kwargs)
        fx_graph = tracer.trace(module, concrete_args=concrete or None)
    except GraphError:
        raise
    except Exception as e:  # symbolic tracing cannot follow this module: fall back to torch.export
        where = _innermost(tracer.module_stack, module)
        return _capture_export(module, example_inputs, kwargs, fx_failure=(where, e))
    gm = fx.GraphModule(tracer.root, fx_graph)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    feed = _feed(module, example_inputs, kwargs | concrete, len(placeholders))
    values = _run(gm, module, feed)
    return Capture(_translate(gm, module, values, leaf_calls=None), "fx")


def _concrete_args(module: nn.Module, n_positional: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The forward arguments not given: fixed to their defaults (None masks and flags), so tracing specialises."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return {}
    out = {}
    for i, p in enumerate(params):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or i < n_positional or p.name in kwargs:
            continue
        if p.default is inspect.Parameter.empty:
            raise GraphError(f"{type(module).__name__}.forward needs argument {p.name!r}: pass it in example_inputs "
                             "or example_kwargs")
        out[p.name] = p.default
    return out


def _feed(module: nn.Module, args: tuple[torch.Tensor, ...], kwargs: dict[str, Any], count: int) -> tuple:
    """Example values for the traced program's `count` placeholders: one per forward argument, in signature
    order (fx renames the fixed ones), positional inputs first, the rest by name."""
    try:
        order = [p.name for p in inspect.signature(module.forward).parameters.values()
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    except (TypeError, ValueError):
        order = []
    values = list(args) + [kwargs.get(name) for name in order[len(args):]]
    return tuple(values[:count])


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
               leaf_calls: dict[fx.Node, tuple[nn.Module, str, Scope]] | None,
               output_names: list[str] | None = None) -> list[Emit]:
    """Turn a traced program into `Emit`s. `leaf_calls` (export path) marks collapsed leaf-module calls."""
    return _Translator(gm, root, values, leaf_calls).run(output_names)


class _Translator:
    """One pass over a traced program: every value becomes a `Ref` (computed from the inputs), an `Attr` (a
    module's tensor, or a value folded from those), or a plain Python value (sizes, dims, flags)."""

    def __init__(self, gm: fx.GraphModule, root: nn.Module, values: dict[fx.Node, Any],
                 leaf_calls: dict[fx.Node, tuple[nn.Module, str, Scope]] | None) -> None:
        self.gm, self.root, self.values, self.leaf_calls = gm, root, values, leaf_calls
        self.env: dict[fx.Node, Any] = {}
        self.calls: list[Emit] = []
        self.tensor_nodes: dict[int, Ref] = {}  # id of an Attr's tensor -> its parameter/constant node
        self.module_calls: dict[int, Emit] = {}  # id of a module -> its first call (later calls share weights)

    def run(self, output_names: list[str] | None) -> list[Emit]:
        for node in self.gm.graph.nodes:
            try:
                self._node(node, output_names)
            except (GraphError, Unsupported):
                raise
            except Exception as e:  # a bug or an unforeseen call: still a GraphError that says where
                scope = _scope_of(node, drop_last=False)
                raise _fail(f"the call {mapping.function_name(node.target)} ({type(e).__name__}: "
                            f"{str(e).strip()[:200]})", scope, self.root, node.name) from None
        return self.calls

    # -- values ------------------------------------------------------------------------------------------------
    def emit(self, e: Emit, node: fx.Node, scope: Scope, source: str, value: Any = None) -> None:
        e.scope, e.source = scope, source
        e.label = e.label or _label(node)
        self.calls.append(e)
        value = self.values[node] if value is None else value
        flat = _flatten(value)
        e.expected = [(tuple(v.shape), DTYPE_NAMES.get(v.dtype, str(v.dtype))) for v in flat]
        refs = iter(Ref(e, i, v) for i, v in enumerate(flat))
        if isinstance(value, torch.Tensor):
            self.env[node] = next(refs)
        elif isinstance(value, (tuple, list)):
            self.env[node] = _rebuild(value, refs)
        else:
            raise _fail(f"{source}, which returned {type(value).__name__}", scope, self.root, node.name)

    def tensor_ref(self, attr: Attr, scope: Scope) -> Ref:
        """The node for a module tensor or folded value: one per tensor, so every use shares it."""
        key = id(attr.value)
        if key not in self.tensor_nodes:
            value = attr.value.detach()
            if value.dtype not in DTYPE_NAMES:
                raise _fail(f"the tensor {attr.name} of dtype {value.dtype}", scope, self.root, attr.name)
            if attr.trainable:
                e = Emit("parameter", {"shape": tuple(value.shape), "init": "zeros"}, [])
            else:
                e = Emit("constant", {"shape": tuple(value.shape), "dtype": DTYPE_NAMES[value.dtype]}, [])
            e.weights = {"value": value.clone()}
            e.label = attr.name.rsplit(".", 1)[-1]
            e.scope, e.source = scope, attr.name
            e.expected = [(tuple(value.shape), DTYPE_NAMES[value.dtype])]
            self.calls.append(e)
            self.tensor_nodes[key] = Ref(e, 0, value)
        return self.tensor_nodes[key]

    def resolve(self, args: Any, scope: Scope, keep_attrs: bool = False) -> Any:
        """Arguments with fx nodes replaced by their values; module tensors become nodes unless `keep_attrs`."""
        def one(a: fx.Node) -> Any:
            value = self.env[a]
            if isinstance(value, Attr) and not keep_attrs:
                return self.tensor_ref(value, scope)
            return value
        return fx.node.map_arg(args, one)

    # -- nodes -------------------------------------------------------------------------------------------------
    def _node(self, node: fx.Node, output_names: list[str] | None) -> None:
        if node.op == "placeholder":
            value = self.values[node]
            if not isinstance(value, torch.Tensor):  # a forward argument fixed to its default (None, a flag)
                self.env[node] = value
                return
            e = Emit("input", {"shape": tuple(value.shape), "dtype": DTYPE_NAMES[value.dtype]}, [],
                     label=str(node.target))
            self.emit(e, node, (), str(node.target))
        elif node.op == "get_attr":
            value = _attribute(self.gm, str(node.target))
            if isinstance(value, torch.Tensor):
                value = Attr(value, str(node.target), isinstance(value, nn.Parameter))
            self.env[node] = value
        elif node.op == "output":
            self._outputs(node, output_names)
        elif self.leaf_calls is not None and node in self.leaf_calls:
            module, path, scope = self.leaf_calls[node]
            args = self.resolve(node.args, scope)
            self._module_call(module, path, scope, Args(args, dict(node.target.kwargs), self.values[node]), node)
        elif node.op == "call_module" and self.leaf_calls is not None:
            return  # torch.export's guard function
        elif node.op == "call_module":
            module = self.gm.get_submodule(str(node.target))
            scope = _scope_of(node, drop_last=True)
            args, kwargs = self.resolve(node.args, scope), self.resolve(node.kwargs, scope)
            self._module_call(module, str(node.target), scope, Args(args, kwargs, self.values[node]), node)
        else:
            self._function(node)

    def _module_call(self, module: nn.Module, path: str, scope: Scope, a: Args, node: fx.Node) -> None:
        try:
            e = mapping.module_emit(module, a)
        except Unsupported as err:
            full = (*scope, ("", path, type(module).__name__))
            raise _fail(f"this call of {type(module).__name__} ({err})", full, self.root, node.name) from None
        first = self.module_calls.setdefault(id(module), e)
        if first is not e and e.weights:
            e.shares = first
        e.label = path.rsplit(".", 1)[-1]
        self.emit(e, node, scope, path)

    def _function(self, node: fx.Node) -> None:
        scope = _scope_of(node, drop_last=False)
        if not _holds_tensor(self.values[node]):
            self.env[node] = self.values[node]  # sizes, dims and arithmetic on them: constants for these shapes
            return
        raw_args = self.resolve(node.args, scope, keep_attrs=True)
        raw_kwargs = self.resolve(node.kwargs, scope, keep_attrs=True)
        leaves = _flatten((raw_args, raw_kwargs), kinds=(Ref, Attr))
        shape_only = _call_name(node) in tensor_calls.SHAPE_ONLY
        if shape_only or (not any(isinstance(v, Ref) for v in leaves)
                          and not any(v.trainable for v in leaves if isinstance(v, Attr))):
            self.env[node] = self._fold(node, raw_args, raw_kwargs, scope)
            return
        value = self.values[node]
        name = mapping.function_name(node.target)
        weighted = tensor_calls.weighted_handler(node.target) if node.op == "call_function" else None
        if weighted is not None:
            args, kwargs = self.resolve(node.args, scope, keep_attrs=True), self.resolve(node.kwargs, scope,
                                                                                        keep_attrs=True)
            handler: Any = weighted
        else:
            args, kwargs = self.resolve(node.args, scope), self.resolve(node.kwargs, scope)
            if node.target is operator.getitem and isinstance(args[0], (tuple, list)):
                self.env[node] = args[0][args[1]]
                return
            target = mapping.aten_target(node.target) if self.leaf_calls is not None else node.target
            handler = mapping.function_handler(node.op, target) or tensor_calls.generic_for(node.op, node.target)
        if handler is None:
            if node.target in mapping.FUNCTIONAL_WITH_WEIGHTS:
                raise _fail(f"{name} reading a parameter tensor directly (use the layer "
                            f"{mapping.FUNCTIONAL_WITH_WEIGHTS[node.target]} for it)", scope, self.root, node.name)
            raise _fail(f"the call {name}: GraphBuilder has no op for it", scope, self.root, node.name)
        call = Args(args, kwargs, value)
        call.to_ref = lambda attr: self.tensor_ref(attr, scope)
        try:
            result = handler(call)
        except Unsupported as err:
            raise _fail(f"the call {name} ({err})", scope, self.root, node.name) from None
        if isinstance(result, Ref):
            self.env[node] = result
        else:
            self.emit(result, node, scope, f"{scope[-1][1] + '/' if scope else ''}{name}")

    def _fold(self, node: fx.Node, args: Any, kwargs: Any, scope: Scope) -> Any:
        """Compute a call on constants for real (fake tensors ran the trace): sizes, aranges, masks, tables."""
        def unwrap(v: Any) -> Any:
            if isinstance(v, Ref):  # only its shape and dtype matter (SHAPE_ONLY calls)
                return torch.zeros(v.value.shape, dtype=v.value.dtype)
            return v.value if isinstance(v, Attr) else v

        args = torch.utils._pytree.tree_map(unwrap, args)
        kwargs = torch.utils._pytree.tree_map(unwrap, kwargs)
        try:
            with torch.no_grad():
                if node.op == "call_method":
                    result = getattr(args[0], str(node.target))(*args[1:], **kwargs)
                elif node.op == "call_module":
                    result = self.gm.get_submodule(str(node.target))(*args, **kwargs)
                else:
                    result = node.target(*args, **kwargs)
        except Exception as e:
            raise _fail(f"the call {mapping.function_name(node.target)} on constants ({type(e).__name__}: "
                        f"{str(e).strip()[:200]})", scope, self.root, node.name) from None
        wrap = lambda v: Attr(v, node.name, False) if isinstance(v, torch.Tensor) else v  # noqa: E731
        return torch.utils._pytree.tree_map(wrap, result)

    def _outputs(self, node: fx.Node, output_names: list[str] | None) -> None:
        result = self.resolve(node.args[0], ())
        leaves, _ = torch.utils._pytree.tree_flatten_with_path(result)
        kept = [(path, v) for path, v in leaves if v is not None]
        names = output_names if output_names is not None else [_path_name(p) for p, _ in kept]
        if output_names is not None:
            kept = [(p, v) for (p, v) in leaves]
        for i, ((_, ref), label) in enumerate(zip(kept, names, strict=True)):
            if ref is None:
                continue
            if not isinstance(ref, Ref):
                raise GraphError(f"the module returns {type(ref).__name__} at output {label!r}; from_module needs "
                                 "tensors (or tuples, dicts and dataclasses of them)")
            label = label or ("output" if len(kept) == 1 else f"output_{i}")
            self.calls.append(Emit("output", {}, [ref], label=label))


def _call_name(node: fx.Node) -> str:
    packet = getattr(node.target, "overloadpacket", None)
    return str(node.target) if node.op == "call_method" else getattr(packet or node.target, "__name__", "")


def _attribute(gm: fx.GraphModule, target: str) -> Any:
    value: Any = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _path_name(path: tuple[Any, ...]) -> str:
    """An output's name from its place in the returned structure (``last_hidden_state``, ``0``, ``logits``)."""
    parts = []
    for key in path:
        for field_name in ("key", "name", "idx"):
            if hasattr(key, field_name):
                parts.append(str(getattr(key, field_name)))
                break
    return "_".join(parts)


def _flatten(value: Any, kinds: tuple[type, ...] = (torch.Tensor,)) -> list[Any]:
    """The leaves of nested tuples, lists and dicts that are of `kinds`, in order."""
    if isinstance(value, kinds):
        return [value]
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flatten(v, kinds)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _flatten(v, kinds)]
    return []


def _rebuild(value: Any, refs: Any) -> Any:
    """`value`'s nesting with each tensor replaced by the next `Ref` (``(out, (h, c))`` of an LSTM)."""
    if isinstance(value, torch.Tensor):
        return next(refs)
    if isinstance(value, (tuple, list)):
        return type(value)(_rebuild(v, refs) for v in value) if isinstance(value, tuple) else [
            _rebuild(v, refs) for v in value]
    return value


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    return False


# -- torch.export fallback -------------------------------------------------------------------------------------
def _capture_export(module: nn.Module, inputs: tuple[torch.Tensor, ...], kwargs: dict[str, Any],
                    fx_failure: tuple[tuple[str, str], Exception]) -> Capture:
    (path, kind), error = fx_failure
    where = f"module path {path!r} ({kind})" if path else f"the top-level module ({kind})"
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    try:
        with _buffers_kept(module):
            program = torch.export.export(module, inputs, kwargs=kwargs or None, strict=False)
    except Exception as e:
        second = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GraphError(
            f"cannot import {where}: symbolic tracing failed ({reason[:300]}) and torch.export failed too "
            f"({second[:300]}). This is usually control flow that depends on tensor values; {REGISTER_HINT}",
            [path or type(module).__name__]) from None
    gm = program.module()
    gm.graph.eliminate_dead_code()
    leaf_calls = _collapse_leaves(gm, module)
    flat = tuple(torch.utils._pytree.tree_flatten((inputs, kwargs))[0])
    values = _run(gm, module, flat)
    spec = program.call_spec.out_spec
    structure = torch.utils._pytree.tree_unflatten(list(range(spec.num_leaves)), spec) if spec is not None else None
    names = [_path_name(p) for p, _ in torch.utils._pytree.tree_flatten_with_path(structure)[0]] if spec else None
    try:
        calls = _translate(gm, module, values, leaf_calls, output_names=names)
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
        if not external:  # reads only its own tensors (an embedding of a position buffer): left as aten calls
            continue
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
