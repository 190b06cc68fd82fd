"""Dependencies between subpackages point one way (see ARCHITECTURE.md).

    ir  <-  ops  <-  compile          search, passes, export build on these
    widget uses ir and op schemas, never compile internals

The check parses every graphbuilder/**/*.py with `ast` (nothing is imported, so it runs without torch)
and resolves relative imports, so `from ..compile import x` inside graphbuilder/ir is caught too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "graphbuilder"

_LATER = ["export", "search", "passes", "widget"]

# subpackage -> module prefixes that no file under it may import.
FORBIDDEN: dict[str, list[str]] = {
    "graphbuilder.ir": ["torch", *(f"graphbuilder.{p}" for p in ["ops", "compile", *_LATER])],
    "graphbuilder.ops": [f"graphbuilder.{p}" for p in ["compile", *_LATER]],
    "graphbuilder.compile": [f"graphbuilder.{p}" for p in _LATER],
    "graphbuilder.widget": ["graphbuilder.compile"],
    "graphbuilder.models": [f"graphbuilder.{p}" for p in ["compile", "export", "search", "widget"]],
}


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of `path`, e.g. graphbuilder/ir/graph.py -> graphbuilder.ir.graph."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in `source`, including ones inside functions.

    `from a import b` yields both `a` and `a.b` (b may be a submodule). Relative imports are resolved
    against `module`; `is_package` says whether `module` is a package's __init__.
    """
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """Every forbidden import under the package directory `root`, as 'file:line: module imports x'."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        rules = [bad for owner, bads in FORBIDDEN.items() if _matches(module, owner) for bad in bads]
        if not rules:
            continue
        source = path.read_text(encoding="utf-8")
        seen: set[tuple[int, str]] = set()  # one report per line and rule
        for line, name in imported_modules(source, module, path.name == "__init__.py"):
            for bad in rules:
                if _matches(name, bad) and (line, bad) not in seen:
                    seen.add((line, bad))
                    problems.append(f"{path}:{line}: {module} imports {name} (rule: no {bad} here)")
    return problems


def test_package_respects_layers():
    problems = violations(PACKAGE_DIR) if PACKAGE_DIR.is_dir() else []
    assert not problems, "dependency direction broken (see tests/test_layers.py):\n" + "\n".join(problems)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("rel", "text", "bad"),
    [
        ("ir/graph.py", "import torch\n", "torch"),
        ("ir/graph.py", "def f():\n    import torch.nn as nn\n", "torch.nn"),
        ("ir/graph.py", "from torch import fx\n", "torch"),
        ("ir/graph.py", "from ..ops import registry\n", "graphbuilder.ops"),
        ("ir/__init__.py", "from ..compile import build\n", "graphbuilder.compile"),
        ("ir/graph.py", "from graphbuilder import widget\n", "graphbuilder.widget"),
        ("ops/conv.py", "from graphbuilder.compile.fx import lower\n", "graphbuilder.compile"),
        ("ops/conv.py", "from .. import search\n", "graphbuilder.search"),
        ("compile/fx.py", "import graphbuilder.export.onnx\n", "graphbuilder.export"),
        ("compile/fx.py", "from ..passes import fuse\n", "graphbuilder.passes"),
        ("widget/w.py", "from ..compile import _internal\n", "graphbuilder.compile"),
    ],
)
def test_checker_catches(tmp_path, rel, text, bad):
    root = tmp_path / "graphbuilder"
    _write(root, rel, text)
    problems = violations(root)
    assert len(problems) == 1 and f"imports {bad}" in problems[0], problems


def test_checker_allows_the_right_direction(tmp_path):
    root = tmp_path / "graphbuilder"
    _write(root, "ir/graph.py", "import networkx\nfrom . import node\nfrom .node import Node\n")
    _write(
        root, "ops/conv.py", "import torch\nfrom ..ir import Graph\nfrom graphbuilder.ir.node import Node\n"
    )
    _write(root, "compile/fx.py", "import torch.fx\nfrom ..ops import registry\nfrom ..ir import Graph\n")
    _write(root, "widget/w.py", "from ..ir import Graph\nfrom ..ops import schemas\n")
    _write(root, "search/evo.py", "from ..compile import build\nimport torch\n")
    _write(root, "irregular.py", "import torch\n")  # graphbuilder.irregular is not graphbuilder.ir
    assert violations(root) == []
