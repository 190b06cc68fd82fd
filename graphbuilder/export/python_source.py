"""`to_python(graph)`: one standalone, readable PyTorch source file for a graph (imports only torch).

Boundary: code generation only; it reads the IR and op declarations, and shares only the naming rules
(`graphbuilder.compile.names`) with the compiler. The file defines one ``nn.Module`` class per distinct
block graph and one for the graph, with the layers named in ``__init__`` and the dataflow in ``forward``, as
a person writes it. Attribute names are the identifiers `gb.compile` gives (the same namespace, same order),
so ``Net().load_state_dict(gb.compile(graph).state_dict())`` works and reproduces the compiled outputs. No
layer, value or block class takes a name the file already defines (nn.Module's attributes, the inlined op
modules' names, imports, builtins, user classes).

Safety: node names never reach the code. Identifiers come from `graphbuilder.ir.naming`; constructor and
call arguments are written with `repr` only after checking they are plain literals (numbers, strings, bools,
None, tuples, lists); original labels appear only in comments, written with `ascii()` so a newline cannot
end the comment. Classes from ``graphbuilder/ops/modules/*.py`` are inlined from their source files, which by
rule import only torch, math and typing.

Constructor arguments are recorded by building each node's module once with its class ``__init__`` wrapped,
so the file calls exactly what the op's builder called (defaults omitted for readability).
"""

from __future__ import annotations

import ast
import inspect
import keyword
import math
import operator
import re
import sys
import textwrap
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from graphbuilder.compile.names import class_name_taken, module_namespace
from graphbuilder.ir import paths, registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node
from graphbuilder.ir.naming import unique
from graphbuilder.ir.ties import split_path

_MODULES_PACKAGE = "graphbuilder.ops.modules."


USER_OPS = ("import", "inline")


def to_python(graph: Graph, class_name: str = "Net", *, user_ops: str = "import") -> str:
    """Standalone PyTorch source defining `class_name` (an ``nn.Module``) that computes `graph`.

    The file imports only torch (plus math/typing where an inlined op module does). Ops from user code
    (``@gb.op`` classes) are written by `user_ops`: ``"import"`` (default) imports the class from its module,
    so the file needs that module but not GraphBuilder; ``"inline"`` copies the class's source (and its
    module's imports) into the file. Load trained weights with
    ``Net().load_state_dict(gb.compile(graph).state_dict())``. A graph whose module compiles in eval mode
    (``graph.meta["training"]`` False) gives a class that starts in eval mode too.

    Raises `GraphError` naming the node when the graph has an error or an op cannot be written as source.
    """
    errors = graph.infer()
    if errors:
        first = next(n for n in graph if n.name in errors)
        raise GraphError(f"cannot write Python source while node {first.name!r} has an error "
                         f"({len(errors)} node(s) in all): {errors[first.name].message}; fix it first "
                         "(print(graph) lists every error)", errors[first.name].nodes)
    graph.check()
    user_classes = _user_class_names(graph)
    if not isinstance(class_name, str) or class_name_taken(class_name) or class_name in user_classes:
        raise GraphError(f"class_name must be a Python identifier that is not a keyword, a builtin or a name the "
                         f"generated file defines or imports, got {class_name!r}; e.g. 'Net'")
    if user_ops not in USER_OPS:
        raise GraphError(f"user_ops must be one of {USER_OPS}, got {user_ops!r}")
    writer = _Writer(user_ops=user_ops, inlined_names=user_classes)  # known before any block class is named
    writer.used.add(class_name)
    writer.class_for(graph, class_name, path=[], eval_mode=graph.meta.get("training", True) is False)
    return writer.render(graph, class_name)


@dataclass
class _Writer:
    classes: list[str] = field(default_factory=list)  # class sources, dependencies first
    by_body: dict[str, str] = field(default_factory=dict)  # class body -> class name (identical blocks share)
    inlined_names: set[str] = field(default_factory=set)  # top-level names of inlined code and user classes
    used: set[str] = field(default_factory=set)  # class names given out (the top class's included)
    inlined: dict[str, str] = field(default_factory=dict)  # module name -> source (imports hoisted)
    imports: set[str] = field(default_factory=set)
    uses_f: bool = False
    user_ops: str = "import"
    user_classes: dict[str, str] = field(default_factory=dict)  # user class name -> its source (inline)
    user_imports: bool = False  # the file imports user modules

    def class_for(self, graph: Graph, name: str | None, path: list[str], eval_mode: bool = False) -> str:
        body = self._body(graph, path, eval_mode)
        if name is None:
            if body in self.by_body:
                return self.by_body[body]
            name = unique(_camel(graph.name), lambda n: n in self.used or n in self.inlined_names
                          or class_name_taken(n), sep="")
        self.used.add(name)
        self.by_body[body] = name
        self.classes.append(f"class {name}(nn.Module):\n{body}")
        return name

    def _body(self, graph: Graph, path: list[str], eval_mode: bool = False) -> str:
        names = module_namespace()  # no value or layer may shadow nn.Module's attributes or the file's names
        idents: dict[Node, str] = {}
        init: list[str] = []
        forward: list[str] = []
        values: dict[Node, list[str]] = {}
        live = _live(graph)
        for node in graph:
            ident = names.create(node.name)
            idents[node] = ident
            where = paths.join_all([*path, node.name])
            label = f"  # {ascii(node.name)}" if ident != node.name else ""
            args = [values[p.node][p.index] for p in node.inputs if p is not None]
            if node.op == "input":
                values[node] = [ident]
                continue
            if node.op == "output":
                continue
            owner = graph.shared.get(node.name)
            module = idents[graph[owner]] if owner is not None else ident  # a shared node calls its owner's
            if node.op == BLOCK:
                assert node.block is not None
                cls = self.class_for(node.block, None, [*path, node.name])
                if owner is None:
                    init.append(f"self.{ident} = {cls}(){label}")
                call = f"self.{module}({', '.join(args)})"
            else:
                opdef = registry.get(node.op)
                kwargs = opdef.kwargs(dict(node.params)) if opdef.kwargs else {}
                call_args = [f"[{', '.join(args)}]"] if opdef.variadic else list(args)
                if opdef.args is not None:
                    call_args += [_literal(v, where, "argument") for v in opdef.args(dict(node.params))]
                call_args += [f"{k}={_literal(v, where, k)}" for k, v in kwargs.items()]
                if opdef.build is not None:
                    if owner is None:
                        init.append(f"self.{ident} = {self._constructor(opdef, node, where)}{label}")
                    call = f"self.{module}({', '.join(call_args)})"
                else:
                    call = f"{self._function(opdef.function, where)}({', '.join(call_args)})"
            n_out = len(node.outputs)
            values[node] = [f"{ident}[{i}]" for i in range(n_out)] if node.packed else [ident]
            if node in live:
                shapes = " | ".join(_shape(s.shape) for s in node.outputs)
                line = f"{ident} = {call}"
                forward.append(line if len(line) + len(shapes) + 4 > 116 else f"{line}  # {shapes}")
        outs = [values[p.node][p.index] for n in graph.outputs for p in n.inputs if p is not None]
        params = ", ".join(["self", *(values[n][0] for n in graph.inputs)])
        for weight, owner in graph.tied.items():  # one tensor under two names, as compiled
            init.append(f"{_attribute(graph, weight)} = {_attribute(graph, owner)}  # tied")
        lines = [f'    """{_docstring(graph)}"""', "", "    def __init__(self) -> None:", "        super().__init__()"]
        lines += [f"        {line}" for line in init]
        if eval_mode:
            lines.append("        self.eval()  # the graph was imported from a module in eval mode")
        lines += ["", f"    def forward({params}):"]
        lines += [f"        {line}" for line in forward]
        lines.append(f"        return {outs[0] if len(outs) == 1 else '(' + ', '.join(outs) + ')'}")
        return "\n".join(lines) + "\n"

    def _constructor(self, opdef: Any, node: Node, where: str) -> str:
        specs = [p.spec for p in node.inputs if p is not None]
        cls, args, kwargs = record_constructor(opdef, dict(node.params), specs, where)
        cls_expr = self._class_expr(cls, where)
        order, defaults = _init_signature(cls)
        shown = [_literal(a, where, "argument") for a in args]
        positional = len(args) == 0
        for k in sorted(kwargs, key=lambda k: order.index(k) if k in order else len(order)):
            v = kwargs[k]
            if k in defaults and _equal(defaults[k], v):
                positional = False
                continue
            if positional and k in order and k not in defaults:
                shown.append(_literal(v, where, k))
            else:
                positional = False
                shown.append(f"{k}={_literal(v, where, k)}")
        return f"{cls_expr}({', '.join(shown)})"

    def _class_expr(self, cls: type, where: str) -> str:
        if getattr(nn, cls.__name__, None) is cls:
            return f"nn.{cls.__name__}"
        self._inline(cls, where)
        return cls.__name__

    def _function(self, fn: Any, where: str) -> str:
        name = getattr(fn, "__name__", "")
        if fn is operator.getitem:
            self.imports.add("import operator")
            return "operator.getitem"
        if name and getattr(torch, name, None) is fn:
            return f"torch.{name}"
        if name and getattr(F, name, None) is fn:
            self.uses_f = True
            return f"F.{name}"
        self._inline(fn, where)
        return name

    def _inline(self, obj: Any, where: str) -> None:
        module_name = getattr(obj, "__module__", "") or ""
        if not module_name.startswith(_MODULES_PACKAGE):
            self._user_class(obj, where)
            return
        if module_name in self.inlined:
            return
        source = inspect.getsource(sys.modules[module_name])
        tree = ast.parse(source)
        keep: list[str] = []
        lines = source.splitlines()
        for stmt in tree.body:
            segment = "\n".join(lines[stmt.lineno - 1: stmt.end_lineno])
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
                    continue
                roots = {a.name.split(".")[0] for a in stmt.names} if isinstance(stmt, ast.Import) else {
                    (stmt.module or "").split(".")[0]}
                if not roots <= {"torch", "math", "typing", "collections", "operator"}:
                    raise GraphError(f"node {where!r}: {module_name} imports {sorted(roots)}; op modules may import "
                                     "only torch, math and typing", [where])
                self.imports.add(segment)
                continue
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str) and stmt is tree.body[0]):
                continue  # module docstring
            keep.append(segment)
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
                self.inlined_names.add(stmt.name)
        self.inlined[module_name] = "\n\n\n".join(keep)

    def _user_class(self, obj: Any, where: str) -> None:
        """A class from user code (``@gb.op``): import it from its module, or copy its source in."""
        module_name, qualname = getattr(obj, "__module__", "") or "", getattr(obj, "__qualname__", repr(obj))
        if not isinstance(obj, type) or "." in qualname:
            raise GraphError(f"node {where!r}: {module_name}.{qualname} is not a module-level class, so it cannot "
                             "be imported or copied into the file; define it at the top level of a module", [where])
        if self.user_ops == "import":
            if module_name == "__main__" or not module_name:
                raise GraphError(f"node {where!r}: class {qualname} is defined in __main__ (a notebook or "
                                 "script), which an exported file cannot import; move it into a module, or "
                                 "pass user_ops='inline' to copy its source into the file", [where])
            if not all(part.isidentifier() for part in module_name.split(".")):
                raise GraphError(f"node {where!r}: module name {module_name!r} cannot be imported", [where])
            self.imports.add(f"from {module_name} import {qualname}")
            self.user_imports = True
            self.inlined_names.add(qualname)
            return
        if qualname in self.user_classes:
            return
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            raise GraphError(f"node {where!r}: the source of {module_name}.{qualname} is not available to copy; "
                             "use user_ops='import' (the default) or define the class in a .py file", [where]) from None
        tree = ast.parse(textwrap.dedent(source))
        stmt = tree.body[0]
        lines = textwrap.dedent(source).splitlines()
        self.user_classes[qualname] = "\n".join(lines[stmt.lineno - 1:stmt.end_lineno])  # decorators dropped
        self.inlined_names.add(qualname)
        module = sys.modules.get(module_name)
        try:
            module_source = inspect.getsource(module) if module is not None else ""
        except (OSError, TypeError):
            module_source = ""
        for top in ast.parse(module_source).body if module_source else []:
            if isinstance(top, (ast.Import, ast.ImportFrom)):
                roots = ({a.name.split(".")[0] for a in top.names} if isinstance(top, ast.Import)
                         else {(top.module or "").split(".")[0]})
                if roots & {"graphbuilder", "__future__"}:
                    continue  # the file needs neither GraphBuilder nor a second __future__ line
                self.imports.add(ast.get_source_segment(module_source, top) or "")

    def render(self, graph: Graph, class_name: str) -> str:
        header = [f'"""{class_name}: the network {_doc_text(graph.name)}, written out by GraphBuilder.',
                  "",
                  ("Needs torch and the user modules imported below, not GraphBuilder." if self.user_imports else
                   "Standalone: needs only torch.") + " Load weights trained in GraphBuilder with",
                  f"    model = {class_name}(); model.load_state_dict(state_dict)",
                  '"""', "", "from __future__ import annotations", ""]
        imports = {"import torch", "from torch import nn"} | self.imports
        if self.uses_f:
            imports.add("import torch.nn.functional as F")
        header += sorted(i for i in imports if i.startswith("import ")) + sorted(
            i for i in imports if i.startswith("from "))
        parts = ["\n".join(header)]
        for module_name, source in self.inlined.items():
            parts.append(f"# -- inlined from {module_name} " + "-" * max(0, 80 - len(module_name)) + "\n\n" + source)
        for qualname, source in self.user_classes.items():
            parts.append(f"# -- copied from user code: {qualname} " + "-" * max(0, 70 - len(qualname)) + "\n\n"
                         + source)
        parts += self.classes
        return "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _user_class_names(graph: Graph) -> set[str]:
    """Class names of the user ops (``@gb.op``) in `graph`, blocks included: the file imports or copies them."""
    names: set[str] = set()
    stack = [graph]
    while stack:
        for node in stack.pop()._nodes.values():
            if node.block is not None:
                stack.append(node.block)
            elif registry.get(node.op).from_user_code:
                names.add(registry.get(node.op).source.rpartition(".")[2])
    return names


def _idents(graph: Graph) -> dict[str, str]:
    """Node name -> the attribute `_Writer._body` gives it (the same namespace calls, in the same order)."""
    names = module_namespace()
    return {node.name: names.create(node.name) for node in graph}


def _attribute(graph: Graph, path: str) -> str:
    """``self.a.b.weight`` for weight path `path` of `graph` (see `graphbuilder.ir.ties`): generated identifiers,
    then the state key's parts, each checked to be an identifier."""
    nodes, key = split_path(path)
    parts, current = ["self"], graph
    for name in nodes:
        parts.append(_idents(current)[current.shared.get(name, name)])
        block = current[name].block
        current = block if block is not None else current
    for part in key.split("."):
        if not part.isidentifier() or keyword.iskeyword(part):
            raise GraphError(f"tied weight {path!r}: {part!r} is not an attribute name", [nodes[-1]])
        parts.append(part)
    return ".".join(parts)


def _live(graph: Graph) -> set[Node]:
    live: set[Node] = set(graph.outputs)
    for output in graph.outputs:
        live |= graph.ancestors(output)
    return live


def _docstring(graph: Graph) -> str:
    ins = ", ".join(_shape(n.shape) for n in graph.inputs)
    outs = ", ".join(_shape(n.shape) for n in graph.outputs)
    return f"Graph {_doc_text(graph.name)}: {ins} -> {outs}."


def _doc_text(label: str) -> str:
    """A label for a docstring: `ascii()` (one line, escaped) with double quotes escaped, so no ``\"\"\"``."""
    return ascii(label).replace('"', '\\"')


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _camel(label: str) -> str:
    """A class name from a graph label, keeping its capitals (``BasicBlock``, ``my block`` -> ``MyBlock``)."""
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    name = "".join(w[:1].upper() + w[1:] for w in re.split(r"[^0-9a-zA-Z]+", ascii_label) if w)[:60] or "Block"
    return f"N{name}" if name[0].isdigit() else name


def _literal(value: Any, where: str, what: str) -> str:
    """`repr` of a plain literal; anything else raises (so nothing but data reaches the source)."""
    if isinstance(value, torch.Size):
        value = tuple(value)
    if value is Ellipsis:
        return "..."
    if isinstance(value, slice):
        return f"slice({', '.join(_literal(v, where, what) for v in (value.start, value.stop, value.step))})"
    if isinstance(value, torch.dtype):
        name = str(value).removeprefix("torch.")
        if getattr(torch, name, None) is not value:
            raise GraphError(f"node {where!r}: dtype {value} has no torch.<name> to write", [where])
        return f"torch.{name}"
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GraphError(f"node {where!r}: {what}={value} is not finite", [where])
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_literal(v, where, what) for v in value)
        if isinstance(value, tuple):
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        return f"[{inner}]"
    raise GraphError(f"node {where!r}: argument {what}={value!r} ({type(value).__name__}) cannot be written as "
                     "source; ops must be built from numbers, strings, bools, None and tuples", [where])


def _equal(a: Any, b: Any) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _init_signature(cls: type) -> tuple[list[str], dict[str, Any]]:
    """Constructor parameter names in order, and their defaults."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return [], {}
    names = [k for k in sig.parameters if k != "self"]
    return names, {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}


@contextmanager
def _recording(cls: type, calls: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> Iterator[None]:
    original = cls.__dict__.get("__init__")
    depth = [0]
    init = cls.__init__

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if depth[0] == 0 and type(self) is cls:
            calls.append((args, kwargs))
        depth[0] += 1
        try:
            init(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    cls.__init__ = wrapper  # type: ignore[misc]
    try:
        yield
    finally:
        if original is None:
            del cls.__init__  # type: ignore[misc]
        else:
            cls.__init__ = original  # type: ignore[misc]


def record_constructor(opdef: Any, params: dict[str, Any], specs: list[Any], where: str
                       ) -> tuple[type, tuple[Any, ...], dict[str, Any]]:
    """The class and the exact constructor arguments the op's builder uses for these params and inputs."""
    with torch.device("meta"):
        probe = opdef.build(params, specs)
    cls = type(probe)
    if isinstance(probe, torch.fx.GraphModule):
        raise GraphError(f"node {where!r}: op {opdef.name!r} builds a generated fx module, which has no class "
                         "source to write; declare it with a module class in graphbuilder/ops/modules/", [where])
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    with _recording(cls, calls), torch.device("meta"):
        opdef.build(params, specs)
    if len(calls) != 1:
        raise GraphError(f"node {where!r}: could not record how op {opdef.name!r} constructs {cls.__name__}", [where])
    args, kwargs = calls[0]
    return cls, args, kwargs
