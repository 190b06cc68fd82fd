"""Grouping captured calls by module path into nested blocks, and building the IR `Graph` with its weights.

Boundary: gets the `Emit`s from `capture.py` in execution order; creates nodes only through the public
builders (`Graph.input/add/output`), so every node is validated and shape-inferred like a hand-built one.
Each inferred output shape is compared with the shape torch computed on the example inputs; a mismatch is a
`GraphError` naming the module path (an import is never silently wrong).

A module call that is not a leaf (a torch.nn container or a user module) becomes a block node: the calls
made inside it, in order, form the block's graph. Its inputs are the values it reads from outside (first
use order), its outputs the values used after it. The block's graph is named after the module class
(``Bottleneck``) and its node after the attribute (``layer1`` then ``0``), so a ResNet imports as stages of
bottleneck blocks. Weights go into the graph that holds the node (``block.weights[node_name]``).
"""

from __future__ import annotations

from typing import Any

from graphbuilder.importer.mapping import Emit, Ref
from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph, Node, Port
from graphbuilder.ops.declare import DTYPE_NAMES

Key = tuple[int, int]  # (id of the Emit, output index)


def assemble(calls: list[Emit], name: str) -> Graph:
    """The IR graph for `calls` (inputs and outputs included), with nested blocks and weights."""
    users: dict[Key, list[Emit]] = {}
    for call in calls:
        for ref in call.inputs:
            users.setdefault((id(ref.call), ref.index), []).append(call)
    graph = Graph(name)
    env: dict[Key, Port] = {}
    _NODES.clear()
    _fill(graph, calls, 0, env, users)
    graph.infer()
    return graph


def _fill(graph: Graph, calls: list[Emit], depth: int, env: dict[Key, Port], users: dict[Key, list[Emit]]) -> None:
    i = 0
    while i < len(calls):
        call = calls[i]
        if len(call.scope) <= depth:
            _add(graph, call, env)
            i += 1
            continue
        key = call.scope[depth][0]
        j = i
        while j < len(calls) and len(calls[j].scope) > depth and calls[j].scope[depth][0] == key:
            j += 1
        _add_block(graph, calls[i:j], depth, env, users)
        i = j


_NODES: dict[int, Node] = {}  # id of an Emit -> the node made for it (within one assemble call)


def _add(graph: Graph, call: Emit, env: dict[Key, Port]) -> None:
    where = call.source or call.label
    if call.op == "input":
        node = graph.input(graph.unique_name(call.label), **call.params)
    elif call.op == "output":
        node = graph.output(env[(id(call.inputs[0].call), call.inputs[0].index)], name=graph.unique_name(call.label))
        assert not isinstance(node, tuple)
    else:
        ports = [env[(id(r.call), r.index)] for r in call.inputs]
        try:
            node = graph.add(call.op, *ports, name=graph.unique_name(call.label), **call.params)
        except GraphError as e:
            raise GraphError(f"importing {where}: {e.message}", e.nodes) from None
        if call.weights:
            graph.weights[node.name] = _fitted_weights(call, node, where)
        owner = _NODES.get(id(call.shares)) if call.shares is not None else None
        if owner is not None and owner.graph is graph:  # a module called again: one set of weights
            graph.share_weights(node, owner)
        elif owner is not None:  # called from another block: the IR ties nodes within one graph only
            node.meta["copy_of"] = call.shares.source
        _NODES[id(call)] = node
    node.meta["source"] = where
    for index in range(len(node.outputs)):
        env[(id(call), index)] = Port(node, index)
    _check_shapes(call, node.outputs, where)


def _fitted_weights(call: Emit, node: Node, where: str) -> dict[str, Any]:
    """The call's weights under the keys of the op's module (a wrapper's ``lstm.weight_ih_l0`` for torch's
    ``weight_ih_l0``), checked against the shapes the op's module has."""
    opdef = registry.get(call.op)
    inferred = opdef.infer(opdef, dict(node.params), [p.spec for p in node.inputs if p is not None])
    shapes = dict(inferred.weight_shapes)
    if not shapes:
        return call.weights
    out = {}
    for key, tensor in call.weights.items():
        if key not in shapes:
            matches = [k for k in shapes if k.endswith("." + key)]
            key = matches[0] if len(matches) == 1 else key
        if shapes.get(key) != tuple(tensor.shape):
            raise GraphError(f"importing {where}: weight {key!r} of shape {tuple(tensor.shape)} does not fit the "
                             f"{call.op} node (expects {shapes.get(key, 'no such weight')}); the mapping of this "
                             "call is wrong, please report it", [call.label])
        out[key] = tensor
    return out


def _check_shapes(call: Emit, specs: Any, where: str) -> None:
    if call.op in ("input", "output"):
        return
    expected = list(call.expected)
    got = [(tuple(s.shape), s.dtype) for s in specs]
    while len(expected) > len(got) and expected[-1][0] == (0,):  # fake tensors stand in for a None output
        expected.pop()
    if got[:len(expected)] != expected:
        raise GraphError(f"importing {where}: the {call.op} node infers {got} but torch computed {expected}; the "
                         "mapping of this call is wrong, please report it", [call.label])


def _add_block(graph: Graph, members: list[Emit], depth: int, env: dict[Key, Port],
               users: dict[Key, list[Emit]]) -> None:
    key, path, class_name = members[0].scope[depth]
    inside = {id(c) for c in members}
    external: list[Ref] = []
    seen: set[Key] = set()
    for call in members:
        for ref in call.inputs:
            k = (id(ref.call), ref.index)
            if id(ref.call) not in inside and k not in seen:
                seen.add(k)
                external.append(ref)
    produced: list[Ref] = []
    for call in members:
        for index in range(_num_outputs(call)):
            k = (id(call), index)
            if any(id(u) not in inside for u in users.get(k, [])):
                produced.append(Ref(call, index, None))  # type: ignore[arg-type]
    if not external:  # computes from its own tensors only (a bias table from a parameter): inlined
        _fill(graph, members, depth + 1, env, users)
        return
    if not produced:
        raise GraphError(f"module path {path!r} ({class_name}) produces nothing used later", [path])
    block = Graph(class_name)
    inner_env: dict[Key, Port] = {}
    for n, ref in enumerate(external):
        spec = ref.value
        label = "x" if len(external) == 1 else f"x{n}"
        node = block.input(label, shape=tuple(spec.shape), dtype=DTYPE_NAMES[spec.dtype])
        inner_env[(id(ref.call), ref.index)] = Port(node, 0)
    _fill(block, members, depth + 1, inner_env, users)
    for n, ref in enumerate(produced):
        block.output(inner_env[(id(ref.call), ref.index)], name="out" if len(produced) == 1 else f"out{n}")
    parent_path = members[0].scope[depth - 1][1] if depth else ""
    label = path[len(parent_path) + 1:] if parent_path and path.startswith(parent_path + ".") else path
    ports = [env[(id(r.call), r.index)] for r in external]
    try:
        node = graph.add(block, *ports, name=graph.unique_name(label))
    except GraphError as e:
        raise GraphError(f"importing module path {path!r} ({class_name}): {e.message}", e.nodes) from None
    node.meta["source"] = path
    for n, ref in enumerate(produced):
        env[(id(ref.call), ref.index)] = Port(node, n)


def _num_outputs(call: Emit) -> int:
    return max(1, len(call.expected))
