"""The identifiers a compiled or exported module cannot give to a node: what nn.Module and generated code define.

Node names are labels; `graphbuilder.ir.naming` makes them identifiers. Two kinds of identifiers are taken
on top of Python's keywords and builtins, and neither is known to the IR, which never imports torch:

* every attribute of a compiled module: `nn.Module`'s methods and fields (``train``, ``training``,
  ``state_dict``, ``parameters``, ``half``, ``cuda``, ``zero_grad``, ``register_buffer``...) and
  `fx.GraphModule`'s (``graph``, ``code``, ``meta``...). A layer named ``train`` would otherwise replace
  the method (`add_module` refuses it; a written ``self.train = ...`` breaks ``model.train()``);
* every top-level name of the op modules `export.to_python` inlines (``Neuron``, ``ACTIVATIONS``,
  ``GloReUnit``, ``MBConv``, ``MixedOp``, ``activate``, ``Any``...), and the names the file imports.

Both lists are read from the code itself (`dir` of a module, the modules' syntax trees), so they follow
torch and the op modules. The compiler and the exporter use one `module_namespace`, so their attribute
names, and with them state_dict keys, agree.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import keyword
import pkgutil
from functools import lru_cache

from torch import fx, nn

from graphbuilder.ir.naming import Namespace
from graphbuilder.ops import modules as op_modules

IMPORTED = frozenset({"torch", "nn", "F", "math", "typing", "operator", "annotations"})
"""Names every generated file binds at top level (its imports)."""


@lru_cache(maxsize=1)
def module_attributes() -> frozenset[str]:
    """Every attribute of a compiled module (nn.Module's and fx.GraphModule's, methods and instance fields)."""
    return frozenset(dir(fx.GraphModule(nn.Module(), fx.Graph())))


@lru_cache(maxsize=1)
def inlined_names() -> frozenset[str]:
    """Every name bound at top level by a module of `graphbuilder.ops.modules` (what `to_python` may inline)."""
    names: set[str] = set()
    for info in pkgutil.iter_modules(op_modules.__path__):
        tree = ast.parse(inspect.getsource(importlib.import_module(f"{op_modules.__name__}.{info.name}")))
        for stmt in tree.body:
            if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in stmt.names}
    return frozenset(names)


@lru_cache(maxsize=1)
def reserved() -> frozenset[str]:
    """Identifiers no node may get in compiled or exported code."""
    return module_attributes() | inlined_names() | IMPORTED


def module_namespace() -> Namespace:
    """A fresh namespace for the layers and values of one module (the same in `compile` and `to_python`)."""
    return Namespace(set(reserved()))


def class_name_taken(name: str) -> bool:
    """Whether a generated file cannot define a class called `name` (a keyword, a builtin, an import, or a
    name an inlined op module defines)."""
    return (not name.isidentifier() or keyword.iskeyword(name) or keyword.issoftkeyword(name)
            or hasattr(builtins, name) or name in inlined_names() or name in IMPORTED)
