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

Weight sharing follows the tensors: each module tensor is copied once, and a node reading a tensor an earlier
node read is tied to it. The same module called twice in one graph becomes two nodes tied by
`Graph.share_weights` (one submodule, called twice); any other reuse (a module called from two blocks, an
output projection that is the input embedding) becomes a tie per tensor in the innermost graph holding both
nodes (`Graph.tie_weights`).
"""

from __future__ import annotations

from typing import Any

import torch

from graphbuilder.importer.mapping import Emit, Ref
from graphbuilder.ir import paths, registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph, Node, Port
from graphbuilder.ops.declare import DTYPE_NAMES

Key = tuple[int, int]  # (id of the Emit, output index)
Identity = tuple[int, int, tuple[int, ...], tuple[int, ...], torch.dtype]  # where a tensor's values live


def assemble(calls: list[Emit], name: str) -> Graph:
    """The IR graph for `calls` (inputs and outputs included), with nested blocks, weights and ties."""
    return _Assembler(calls).run(name)


def _identity(tensor: torch.Tensor) -> Identity | None:
    """Two tensors with one identity are one tensor (views of the same storage with the same layout). Every
    tensor read is alive until the assembly ends (the `Emit`s hold them), so no address is reused meanwhile.
    An empty tensor has none: empty storages may all sit at one address."""
    if tensor.numel() == 0:
        return None
    return (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()),
            tensor.dtype)


class _Assembler:
    """One assembly: the graph being built, and which node first read each module tensor."""

    def __init__(self, calls: list[Emit]) -> None:
        self.calls = calls
        self.users: dict[Key, list[Emit]] = {}
        for call in calls:
            for ref in call.inputs:
                self.users.setdefault((id(ref.call), ref.index), []).append(call)
        # first reader of each tensor: its node, the node's path (names from the top graph down), key, the copy
        self.owners: dict[Identity, tuple[Node, tuple[str, ...], str, torch.Tensor]] = {}
        # (path, key) reads the tensor of (owner path, key). Paths, not nodes: adding a block copies its graph.
        self.ties: list[tuple[tuple[str, ...], str, tuple[str, ...], str]] = []

    def run(self, name: str) -> Graph:
        graph = Graph(name)
        self.fill(graph, self.calls, 0, {}, ())
        graph.infer()
        self.tie(graph)
        return graph

    def fill(self, graph: Graph, calls: list[Emit], depth: int, env: dict[Key, Port], prefix: tuple[str, ...]
             ) -> None:
        """Add `calls` to `graph`, the graph reached from the top one through the block nodes named `prefix`."""
        i = 0
        while i < len(calls):
            call = calls[i]
            if len(call.scope) <= depth:
                self.add(graph, call, env, prefix)
                i += 1
                continue
            key = call.scope[depth][0]
            j = i
            while j < len(calls) and len(calls[j].scope) > depth and calls[j].scope[depth][0] == key:
                j += 1
            self.add_block(graph, calls[i:j], depth, env, prefix)
            i = j

    def add(self, graph: Graph, call: Emit, env: dict[Key, Port], prefix: tuple[str, ...]) -> None:
        where = call.source or call.label
        if call.op == "input":
            node = graph.input(graph.unique_name(call.label), **call.params)
        elif call.op == "output":
            node = graph.output(env[(id(call.inputs[0].call), call.inputs[0].index)],
                                name=graph.unique_name(call.label))
            assert not isinstance(node, tuple)
        else:
            ports = [env[(id(r.call), r.index)] for r in call.inputs]
            try:
                node = graph.add(call.op, *ports, name=graph.unique_name(call.label), **call.params)
            except GraphError as e:
                raise GraphError(f"importing {where}: {e.message}", e.nodes) from None
            if call.weights:
                self.weights(graph, node, (*prefix, node.name), _fitted_weights(call, node, where))
        node.meta["source"] = where
        for index in range(len(node.outputs)):
            env[(id(call), index)] = Port(node, index)
        _check_shapes(call, node.outputs, where)

    def weights(self, graph: Graph, node: Node, path: tuple[str, ...], tensors: dict[str, torch.Tensor]) -> None:
        """Store a copy of each tensor the first time it is read; tie later readers to the first."""
        stored: dict[str, torch.Tensor] = {}
        tied: list[tuple[str, Node, tuple[str, ...], str]] = []
        for key, tensor in tensors.items():
            identity = _identity(tensor)
            found = self.owners.get(identity) if identity is not None else None
            if found is None:
                stored[key] = tensor.detach().clone()
                if identity is not None:
                    self.owners[identity] = (node, path, key, stored[key])
            else:
                stored[key] = found[3]
                tied.append((key, found[0], found[1], found[2]))
        graph.weights[node.name] = stored
        owners = {owner for _, owner, _, _ in tied}
        if len(tied) == len(tensors) and len(owners) == 1 and all(k == ok for k, _, _, ok in tied):
            owner = owners.pop()
            if owner.graph is graph and owner.op == node.op and owner.params == node.params:
                graph.share_weights(node, owner)  # the same module called again: one submodule, called twice
                return
        self.ties += [(path, key, owner_path, owner_key) for key, _, owner_path, owner_key in tied]

    def tie(self, root: Graph) -> None:
        """Record each tie in the innermost graph that holds both nodes, as paths from that graph."""
        for a, key, b, owner_key in self.ties:
            common = 0
            while common < min(len(a), len(b)) - 1 and a[common] == b[common]:
                common += 1
            holder = root
            for name in a[:common]:
                block = holder[name].block
                assert block is not None
                holder = block
            holder.tie_weights(paths.join_all([*a[common:], key]), paths.join_all([*b[common:], owner_key]))

    def add_block(self, graph: Graph, members: list[Emit], depth: int, env: dict[Key, Port], prefix: tuple[str, ...]
                  ) -> None:
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
                if any(id(u) not in inside for u in self.users.get(k, [])):
                    produced.append(Ref(call, index, None))  # type: ignore[arg-type]
        if not external:  # computes from its own tensors only (a bias table from a parameter): inlined
            self.fill(graph, members, depth + 1, env, prefix)
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
        parent_path = members[0].scope[depth - 1][1] if depth else ""
        label = path[len(parent_path) + 1:] if parent_path and path.startswith(parent_path + ".") else path
        name = graph.unique_name(label)  # nothing else is added to `graph` before the block node
        self.fill(block, members, depth + 1, inner_env, (*prefix, name))
        for n, ref in enumerate(produced):
            block.output(inner_env[(id(ref.call), ref.index)], name="out" if len(produced) == 1 else f"out{n}")
        ports = [env[(id(r.call), r.index)] for r in external]
        try:
            node = graph.add(block, *ports, name=name)
        except GraphError as e:
            raise GraphError(f"importing module path {path!r} ({class_name}): {e.message}", e.nodes) from None
        node.meta["source"] = path
        for n, ref in enumerate(produced):
            env[(id(ref.call), ref.index)] = Port(node, n)


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


def _num_outputs(call: Emit) -> int:
    return max(1, len(call.expected))
