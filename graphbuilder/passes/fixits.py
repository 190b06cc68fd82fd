"""Fix-its: edits that make a failing node fit, found by trying candidate edits on meta tensors.

    >>> errors = root_errors(g)                      # doctest: +SKIP
    [('res', 'sum')]                                 # 'sum' in block 'res': 14 vs 16 at dim 2
    >>> fixes = fixits(g, ("res", "sum"))            # doctest: +SKIP
    >>> [f.title for f in fixes]                     # doctest: +SKIP
    ["set padding=1 on 'c1'", "set kernel_size=1 on 'c1'", "insert upsample(size=(16, 16)) between 'r1' and 'sum'"]
    >>> fixes[0].apply(g)                            # doctest: +SKIP

One mistake makes many nodes fail: a node whose inputs are invalid fails too, and so does a block holding a
failing node. The *root* error is the failing node whose inputs are all fine (`root_of`, `root_errors`); the
others wait on it and need no fix of their own.

For a root, `fixits` tries these edits, cheapest first:

* params of the node itself and of the nodes that produce its inputs (walking up single-input chains):
  ``padding``, ``stride``, ``kernel_size``, ``output_padding``, ``dilation``, output sizes (``out_channels``,
  ``out_features``, ...) and ``output_size`` set to the sizes the node's inputs have, ``num_heads`` set to
  divisors of them;
* one op inserted on an input wire, sized to another input of the node: a 1x1 ``conv2d`` when channels
  differ, an ``upsample`` (interpolation) when the spatial size differs, a ``linear`` when the last dim
  differs.

Each candidate is applied to a copy of the graph and shapes are re-inferred (on meta tensors, memoised by
the ops): a candidate is offered only if the root and every node waiting on it then fit and no other node
starts failing. So a spatial mismatch gets padding, not out_channels, and a `flatten` is never asked for
channels it does not have.

Boundary: IR and the op registry only (inference runs the ops' meta kernels); the editor calls it through
its session (``fixits`` / ``apply_fix`` requests) and shows the fixes as buttons.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphbuilder.ir import paths, registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import BLOCK, Graph, Node
from graphbuilder.ir.schema import Param, TensorSpec

__all__ = ["Fix", "fixits", "root_errors", "root_of"]

Path = tuple[str, ...]  # block names, then the node's name: ("layer1", "0", "add")

FIXIT_BUDGET_S = 0.5  # the search stops trying candidates after this long (a click in the editor waits on it)
PRODUCER_DEPTH = 6  # how far up a single-input chain the search looks for params to change

# Candidate values per param name, in the order they are tried (the current value is skipped).
_FIXED_VALUES: dict[str, tuple[Any, ...]] = {
    "padding": (1, 0, 2, 3),
    "stride": (1, 2),
    "kernel_size": (1, 3, 5),
    "output_padding": (0, 1),
    "dilation": (1,),
}
_PARAM_ORDER = ("padding", "stride", "kernel_size", "output_padding", "size", "output_size", "heads", "dilation")
_SIZE_NAME = re.compile(r"^(out_channels|out_features|num_channels|embedding_dim|hidden_size|out_dim|channels)$")


@dataclass(frozen=True)
class Fix:
    """One edit that makes a failing node fit: set `params` on node `path`, or, when `insert` names an op,
    insert that op (with `params`) on the wire into input `port` of node `path`.

    `title` says what it does (``"set padding=1 on 'c1'"``); `to_json` / `from_json` carry it to the editor
    and back.
    """

    title: str
    path: Path
    params: dict[str, Any] = field(default_factory=dict)
    insert: str | None = None
    port: int = 0

    def apply(self, graph: Graph) -> list[str]:
        """Make the edit on `graph` (in place); returns the node paths (``"a/b"``) of inserted nodes.

        Raises `GraphError` (the graph unchanged) if the node is gone or the values are refused.
        """
        level = _level(graph, self.path[:-1])
        node = _node(level, self.path[-1], self.path)
        if self.insert is None:
            node.update(**self.params)
            return []
        source = node.inputs[self.port] if self.port < len(node.inputs) else None
        if source is None:
            raise GraphError(f"input {self.port} of {node.name!r} is not connected: nothing to insert on",
                             [node.name])
        new = level.add(self.insert, source, name=level.unique_name(self.insert), **self.params)
        new.meta["inserted_by"] = "fixit"
        node.set_input(self.port, new)
        return [paths.join_all((*self.path[:-1], new.name))]

    def to_json(self) -> dict[str, Any]:
        """JSON for the editor (tuples become lists)."""
        return {"title": self.title, "path": list(self.path), "params": _jsonable(self.params),
                "insert": self.insert, "port": self.port}

    @classmethod
    def from_json(cls, data: Any) -> Fix:
        """A fix from `to_json`'s form; `GraphError` saying what is wrong for anything else."""
        if not isinstance(data, dict):
            raise GraphError(f"a fix must be an object with title, path, params, insert, port; got {data!r}")
        path, params, insert, port = data.get("path"), data.get("params", {}), data.get("insert"), data.get("port", 0)
        if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
            raise GraphError(f"a fix's path must be a non-empty list of node names, got {path!r}")
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise GraphError(f"a fix's params must be an object, got {params!r}")
        if insert is not None and not isinstance(insert, str):
            raise GraphError(f"a fix's insert must be an op name or null, got {insert!r}")
        if not isinstance(port, int) or isinstance(port, bool) or port < 0:
            raise GraphError(f"a fix's port must be an input index >= 0, got {port!r}")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        return cls(str(data.get("title", "")), tuple(path), params, insert, port)


# -- where the error is --------------------------------------------------------------------------------------
def _level(graph: Graph, blocks: Sequence[str]) -> Graph:
    current = graph
    for k, name in enumerate(blocks):
        node = _node(current, name, tuple(blocks[:k + 1]))
        if node.block is None:
            raise GraphError(f"node {paths.join_all(blocks[:k + 1])!r} is not a block", [name])
        current = node.block
    return current


def _node(level: Graph, name: str, path: Path) -> Node:
    if name not in level:
        raise GraphError(f"no node {paths.join_all(path)!r} in graph (it was removed or renamed)", [name])
    return level[name]


def _as_path(node: str | Sequence[str]) -> Path:
    return (node,) if isinstance(node, str) else tuple(node)


def _walk(graph: Graph, prefix: Path = ()) -> Iterator[tuple[Path, Node]]:
    for node in graph:
        path = (*prefix, node.name)
        yield path, node
        if node.block is not None:
            yield from _walk(node.block, path)


def _failing(graph: Graph) -> set[Path]:
    graph.infer()
    return {path for path, node in _walk(graph) if node._error is not None}


def root_of(graph: Graph, node: str | Sequence[str]) -> Path | None:
    """The root error that node `node` (a name, or a path into blocks) waits on: itself when its inputs are
    fine, the root of a failing input otherwise, the failing node inside when it is a block. None if it fits."""
    path = _as_path(node)
    graph.infer()
    current = _node(_level(graph, path[:-1]), path[-1], path)
    while True:
        if current._error is None:
            return None
        failing = [p.node for p in current._inputs if p is not None and p.node._error is not None]
        if failing:
            path, current = (*path[:-1], failing[0].name), failing[0]
            continue
        if current.block is not None:
            inner = next((n for n in current.block.topological_order() if n._error is not None), None)
            if inner is not None:
                path, current = (*path, inner.name), inner
                continue
        return path


def root_errors(graph: Graph) -> list[Path]:
    """Paths of the root errors, in graph order: failing nodes whose inputs fit (blocks failing because of a
    node inside are not roots; that node is)."""
    failing = _failing(graph)
    return [path for path in sorted(failing, key=_order(graph)) if root_of(graph, path) == path]


def _order(graph: Graph) -> Any:
    rank = {path: i for i, (path, _) in enumerate(_walk(graph))}
    return lambda path: rank.get(path, len(rank))


def _waiting_on(graph: Graph, root: Path) -> set[Path]:
    """The root and every failing node that fails because of it: users downstream, enclosing blocks and
    their users."""
    out = {root}
    path = root
    while path:
        level = _level(graph, path[:-1])
        node = level[path[-1]]
        out.update((*path[:-1], d.name) for d in level.descendants(node) if d._error is not None)
        path = path[:-1]
        if path:
            out.add(path)
    return out


# -- candidates ------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    return repr(tuple(value)) if isinstance(value, (list, tuple)) else repr(value)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _kind(name: str) -> str | None:
    if name in _FIXED_VALUES:
        return name
    if _SIZE_NAME.match(name):
        return "size"
    if name == "output_size":
        return "output_size"
    if "heads" in name:
        return "heads"
    return None


def _values(param: Param, kind: str, current: Any, specs: Sequence[TensorSpec]) -> list[Any]:
    """Values worth trying for `param`, given the root's input `specs` (the sizes things must agree with)."""
    dims = sorted({d for s in specs for d in s.shape[1:]}, reverse=True)
    if kind in _FIXED_VALUES:
        values: list[Any] = list(_FIXED_VALUES[kind])
    elif kind == "size":
        values = dims
    elif kind == "output_size":
        values = [tuple(s.shape[2:]) for s in specs if len(s.shape) > 2]
    else:  # heads: divisors of the feature sizes
        values = sorted({h for d in dims for h in range(1, min(d, 32) + 1) if d % h == 0}, reverse=True)[:8]
    out = []
    for v in values:
        if v == current or (isinstance(current, tuple) and len(set(current)) == 1 and current[0] == v):
            continue
        try:
            param.validate(v, "")
        except GraphError:
            continue
        if v not in out:
            out.append(v)
    return out


def _producers(node: Node) -> list[Node]:
    """The nodes whose params shape `node`'s inputs: up each input's single-input chain, nearest first."""
    seen: list[Node] = []
    for port in node._inputs:
        current = port.node if port is not None else None
        for _ in range(PRODUCER_DEPTH):
            if current is None or current.op == BLOCK or current in seen:
                break
            seen.append(current)
            connected = [p for p in current._inputs if p is not None]
            current = connected[0].node if len(connected) == 1 else None
    return seen


def _param_fixes(path: Path, nodes: Sequence[Node], specs: Sequence[TensorSpec]) -> list[Fix]:
    fixes: list[tuple[int, int, Fix]] = []
    for distance, node in enumerate(nodes):
        if node.op == BLOCK:
            continue
        pointwise = node._params.get("kernel_size") in (1, (1,), (1, 1), (1, 1, 1))
        for param in registry.get(node.op).params:
            kind = _kind(param.name)
            if kind is None or (kind == "padding" and pointwise):  # padding a 1x1 conv only adds a bias border
                continue
            for value in _values(param, kind, node._params.get(param.name), specs):
                fix = Fix(f"set {param.name}={_fmt(value)} on {node.name!r}", (*path[:-1], node.name),
                          {param.name: value})
                fixes.append((_PARAM_ORDER.index(kind), distance, fix))
    # Cheap, local edits first: padding before sizes, the nearest node first.
    return [fix for _, _, fix in sorted(fixes, key=lambda t: (t[0], t[1]))]


def _insert_fixes(path: Path, node: Node, specs: Sequence[TensorSpec]) -> list[Fix]:
    """An adapter on input wire i sized to another input j: 1x1 conv (channels), upsample (spatial), linear."""
    fixes = []
    for i, (port, have) in enumerate(zip(node._inputs, specs, strict=False)):
        for j, want in enumerate(specs):
            if j == i or have.shape == want.shape or len(have.shape) != len(want.shape) or port is None:
                continue
            a, b = have.shape, want.shape
            between = f"between {port.node.name!r} and {node.name!r}"
            if len(a) == 4 and a[1] != b[1] and a[2:] == b[2:]:
                fixes.append(Fix(f"insert a 1x1 conv2d(out_channels={b[1]}) {between}", path,
                                 {"out_channels": b[1], "kernel_size": 1}, "conv2d", i))
            elif len(a) in (3, 4, 5) and a[:2] == b[:2] and a[2:] != b[2:]:
                fixes.append(Fix(f"insert upsample(size={_fmt(b[2:])}) {between}", path,
                                 {"size": tuple(b[2:])}, "upsample", i))
            elif a[:-1] == b[:-1] and a[-1] != b[-1]:
                fixes.append(Fix(f"insert linear(out_features={b[-1]}) {between}", path,
                                 {"out_features": b[-1]}, "linear", i))
    return fixes


def _candidates(graph: Graph, root: Path) -> list[Fix]:
    node = _level(graph, root[:-1])[root[-1]]
    if node.op == BLOCK or any(p is None for p in node._inputs):
        return []  # an unconnected input: the fix is a wire, which the user draws
    specs = [p.node._outputs[p.index] for p in node._inputs if p is not None and p.node._outputs is not None]
    if len(specs) != len(node._inputs):
        return []
    return _param_fixes(root, [node, *_producers(node)], specs) + _insert_fixes(root, node, specs)


def _input_specs(graph: Graph, path: Path) -> list[TensorSpec] | None:
    node = _level(graph, path[:-1])[path[-1]]
    specs = [p.node._outputs[p.index] for p in node._inputs
             if p is not None and p.node._outputs is not None and p.node._error is None]
    return specs if len(specs) == len(node._inputs) else None


def _broadcasts(specs: Sequence[TensorSpec]) -> set[tuple[int, tuple[int, ...]]]:
    """(dim from the end, sizes) wherever inputs of equal rank differ: the dims broadcasting stretches."""
    out = set()
    ranks = {len(s.shape) for s in specs}
    if len(specs) > 1 and len(ranks) == 1:
        for k in range(1, ranks.pop() + 1):
            sizes = tuple(s.shape[-k] for s in specs)
            if len(set(sizes)) > 1:
                out.add((k, sizes))
    return out


def _fits_inside(graph: Graph, fix: Fix, root: Path, allowed: set[Path]) -> bool:
    """The cheap first check for a root inside a block: the fix on a copy of that block's graph alone (a
    dozen nodes, not the whole network); most candidates already fail here."""
    where = root[:-1]
    work = _level(graph, where).copy()
    try:
        Fix(fix.title, fix.path[len(where):], fix.params, fix.insert, fix.port).apply(work)
    except GraphError:
        return False
    return {(*where, name) for name in work.infer()} <= allowed


def _fits(graph: Graph, fix: Fix, root: Path, before: Sequence[TensorSpec], allowed: set[Path]) -> bool:
    """Whether `fix` makes the root and its waiting nodes fit, breaks nothing else, and does not get there by
    broadcasting a size that was not broadcast before (a residual add of a 1x1 map onto a 4x4 one fits the
    shapes, not the intent)."""
    if len(root) > 1 and not _fits_inside(graph, fix, root, allowed):
        return False
    work = graph.copy()
    try:
        fix.apply(work)
    except GraphError:
        return False
    if not _failing(work) <= allowed:
        return False
    after = _input_specs(work, root)
    return after is None or _broadcasts(after) <= _broadcasts(before)


def fixits(graph: Graph, node: str | Sequence[str], *, limit: int = 4, budget_s: float = FIXIT_BUDGET_S
           ) -> list[Fix]:
    """Edits that make the root error behind `node` fit, cheapest first (at most `limit`).

    `node` is a name or a path into blocks (``("layer1", "0", "add")``); a node that waits on another gets
    the fixes of its root. Each returned fix was tried on a copy of `graph`: after it, the root and everything
    waiting on it fit and nothing else fails. Stops trying after `budget_s` seconds. `graph` is unchanged.
    """
    root = root_of(graph, node)
    if root is None:
        return []
    allowed = _failing(graph) - _waiting_on(graph, root)
    before = _input_specs(graph, root) or []
    deadline = time.monotonic() + budget_s
    found: list[Fix] = []
    for fix in _candidates(graph, root):
        if len(found) >= limit or time.monotonic() > deadline:
            break
        if fix.title not in {f.title for f in found} and _fits(graph, fix, root, before, allowed):
            found.append(fix)
    return found
