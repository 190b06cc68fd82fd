"""Neuron graphs: the `neuron_graph` op, its editable topology `NeuronGraph`, and the one-`neuron` op.

Paper: "Growing an architecture for a neural network", arXiv:2108.02231. A network
is any DAG of neurons: input neurons; hidden and output neurons, each with a bias and an activation from
`ACTIVATIONS`; weighted connections from earlier to later neurons. No layers are assumed.

Boundary. `NeuronGraph` is pure data plus weights (Python floats): the editing API the prune/grow search uses
(add/remove a connection, split a connection NEAT-style, add a cascade-style neuron, remove a neuron, count),
with acyclicity checked on every edit. Its JSON form (`to_json`) is the ``topology`` param of a
``neuron_graph`` node, so it lives in the graph file and is validated on load; the weights are the node's
entry in `graph.weights` (``weight`` (E,), ``bias`` (H+O,)). The torch executors are in
`graphbuilder/ops/modules/neuron_graph.py`. `NeuronGraph.expand` writes the same network as an ordinary graph
of ``neuron`` nodes (one node per neuron), which computes the same function and is what the widget shows.

    >>> ng = NeuronGraph(inputs=2, outputs=1)           # neurons 0, 1 (inputs) and 2 (output)
    >>> ng.add_connection(0, 2, 0.5); ng.add_connection(1, 2, -1.0)
    >>> h = ng.split(0, 2, activation="tanh")          # 0 -> h -> 2 replaces 0 -> 2
    >>> g = ng.to_graph("net")                         # input x (1, 2) -> neuron_graph -> output
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph, Node
from graphbuilder.ir.limits import MAX_CONNECTIONS, MAX_NEURONS
from graphbuilder.ir.schema import OpDef, Param
from graphbuilder.ops.declare import Specs, choice, declare, example, named
from graphbuilder.ops.modules.neuron_graph import ACTIVATIONS, Neuron, NeuronGraphModule, activate

__all__ = ["ACTIVATIONS", "NeuronGraph"]

Edge = tuple[int, int]


def label(neuron: int) -> str:
    """How neurons are named in messages and in expanded graphs: ``n7``."""
    return f"n{neuron}"


class NeuronGraph:
    """An editable DAG of neurons with weights. Neurons are non-negative ints, unique in the graph.

    Args:
        inputs: number of input neurons (ids 0..n-1) or their ids.
        outputs: number of output neurons (ids after the inputs) or their ids.
        output_activation: activation of the output neurons (one of `ACTIVATIONS`).

    Every edit keeps the graph acyclic (a connection that would close a cycle raises `GraphError` naming
    the neurons on it) and keeps the weights of everything it does not touch. New connections and neurons get
    ids and weights from their arguments only, so edits are deterministic.
    """

    def __init__(self, inputs: int | Sequence[int] = 1, outputs: int | Sequence[int] = 1, *,
                 output_activation: str = "identity") -> None:
        ins = list(range(inputs)) if isinstance(inputs, int) else [int(i) for i in inputs]
        outs = list(range(len(ins), len(ins) + outputs)) if isinstance(outputs, int) else [int(o) for o in outputs]
        if not ins or not outs:
            raise GraphError(f"a neuron graph needs at least one input and one output neuron, got {len(ins)} "
                             f"input(s) and {len(outs)} output(s)")
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._act: dict[int, str] = {}
        self._bias: dict[int, float] = {}
        self._w: dict[Edge, float] = {}
        self._succ: dict[int, dict[int, None]] = {}
        self._pred: dict[int, dict[int, None]] = {}
        for i in ins:
            self._new(i, None)
            self._inputs.append(i)
        for o in outs:
            self._new(o, output_activation)
            self._outputs.append(o)

    # -- internal ------------------------------------------------------------------------------------------
    def _new(self, neuron: int, act: str | None, bias: float = 0.0) -> None:
        if isinstance(neuron, bool) or not isinstance(neuron, int) or neuron < 0:
            raise GraphError(f"neuron ids must be non-negative integers, got {neuron!r}")
        if neuron in self._succ:
            raise GraphError(f"neuron {label(neuron)} already exists; neuron ids must be unique")
        if act is not None:
            _check_act(act, neuron)
            self._act[neuron] = act
            self._bias[neuron] = float(bias)
        self._succ[neuron] = {}
        self._pred[neuron] = {}

    def _need(self, neuron: int) -> None:
        if neuron not in self._succ:
            raise GraphError(f"neuron {label(neuron)} does not exist; the neurons are "
                             f"{', '.join(_names(sorted(self._succ)[:20]))}{' ...' if len(self._succ) > 20 else ''}")

    def _path(self, start: int, goal: int) -> list[int] | None:
        """A path start -> ... -> goal along connections (depth first), or None."""
        parent: dict[int, int] = {start: start}
        stack = [start]
        while stack:
            n = stack.pop()
            if n == goal:
                path = [n]
                while n != start:
                    n = parent[n]
                    path.append(n)
                return path[::-1]
            for s in self._succ[n]:
                if s not in parent:
                    parent[s] = n
                    stack.append(s)
        return None

    def _check_edge(self, src: int, dst: int) -> None:
        self._need(src)
        self._need(dst)
        if dst in self._inputs:
            raise GraphError(f"cannot connect into input neuron {label(dst)}: inputs take no connections; "
                             "connect into a hidden or output neuron")
        if src == dst:
            raise GraphError(f"connecting {label(src)} to itself would make a cycle; connect an earlier neuron")
        if dst in self._succ[src]:
            raise GraphError(f"connection {label(src)} -> {label(dst)} already exists; set its weight instead")
        back = self._path(dst, src)
        if back is not None:
            loop = " -> ".join(_names(back + [dst]))
            raise GraphError(f"connecting {label(src)} -> {label(dst)} would make a cycle {loop}; a neuron graph "
                             f"must stay acyclic: connect from a neuron that does not depend on {label(dst)}")

    # -- reading -------------------------------------------------------------------------------------------
    @property
    def inputs(self) -> list[int]:
        """Input neuron ids, in input-column order."""
        return list(self._inputs)

    @property
    def outputs(self) -> list[int]:
        """Output neuron ids, in output-column order."""
        return list(self._outputs)

    @property
    def hidden(self) -> list[int]:
        """Hidden neuron ids, sorted."""
        outs = set(self._outputs)
        return sorted(i for i in self._act if i not in outs)

    @property
    def neurons(self) -> list[int]:
        """Every neuron id, sorted."""
        return sorted(self._succ)

    @property
    def connections(self) -> list[Edge]:
        """Every connection (src, dst), sorted."""
        return sorted(self._w)

    @property
    def num_connections(self) -> int:
        """Number of weighted connections."""
        return len(self._w)

    @property
    def num_hidden(self) -> int:
        """Number of hidden neurons (the ones the search adds and removes)."""
        return len(self._act) - len(self._outputs)

    @property
    def num_neurons(self) -> int:
        """Number of neurons of every kind: inputs, hidden and outputs."""
        return len(self._succ)

    def activation(self, neuron: int) -> str:
        """Activation of a hidden or output neuron."""
        self._need(neuron)
        if neuron not in self._act:
            raise GraphError(f"{label(neuron)} is an input neuron; inputs have no activation")
        return self._act[neuron]

    def bias(self, neuron: int) -> float:
        """Bias of a hidden or output neuron."""
        self.activation(neuron)
        return self._bias[neuron]

    def set_bias(self, neuron: int, value: float) -> None:
        """Set the bias of a hidden or output neuron."""
        self.activation(neuron)
        self._bias[neuron] = float(value)

    def weight(self, src: int, dst: int) -> float:
        """Weight of connection src -> dst."""
        try:
            return self._w[(src, dst)]
        except KeyError:
            raise GraphError(f"there is no connection {label(src)} -> {label(dst)}") from None

    def set_weight(self, src: int, dst: int, value: float) -> None:
        """Set the weight of an existing connection."""
        self.weight(src, dst)
        self._w[(src, dst)] = float(value)

    def has_connection(self, src: int, dst: int) -> bool:
        """Whether connection src -> dst exists."""
        return (src, dst) in self._w

    def sources(self, neuron: int) -> list[int]:
        """Neurons connected into `neuron`, sorted."""
        self._need(neuron)
        return sorted(self._pred[neuron])

    def targets(self, neuron: int) -> list[int]:
        """Neurons `neuron` connects to, sorted."""
        self._need(neuron)
        return sorted(self._succ[neuron])

    def topological_order(self) -> list[int]:
        """Every neuron, each after its sources; ties broken by id (so the order is deterministic)."""
        pending = {n: len(p) for n, p in self._pred.items()}
        heap = [n for n, k in pending.items() if k == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            n = heapq.heappop(heap)
            order.append(n)
            for s in self._succ[n]:
                pending[s] -= 1
                if pending[s] == 0:
                    heapq.heappush(heap, s)
        return order

    def depth(self) -> int:
        """Number of topological levels above the inputs (a layered MLP with k hidden layers has k + 1)."""
        level: dict[int, int] = {}
        for n in self.topological_order():
            level[n] = 0 if n in self._inputs else 1 + max((level[p] for p in self._pred[n]), default=0)
        return max(level.values(), default=0)

    # -- editing -------------------------------------------------------------------------------------------
    def add_connection(self, src: int, dst: int, weight: float = 0.0) -> None:
        """Connect `src` -> `dst` with `weight`. Raises `GraphError` (naming the neurons) on a cycle, a
        duplicate, an unknown neuron or a connection into an input."""
        self._check_edge(src, dst)
        self._w[(src, dst)] = float(weight)
        self._succ[src][dst] = None
        self._pred[dst][src] = None

    def remove_connection(self, src: int, dst: int) -> float:
        """Remove connection src -> dst; returns its weight."""
        w = self.weight(src, dst)
        del self._w[(src, dst)]
        del self._succ[src][dst]
        del self._pred[dst][src]
        return w

    def next_id(self) -> int:
        """The id the next new neuron gets: one more than the largest id."""
        return max(self._succ) + 1

    def split(self, src: int, dst: int, activation: str = "identity", scale: float = 1.0) -> int:
        """NEAT add-node: replace src -> dst (weight w) by src -> new (weight `scale`) -> dst (weight w / scale),
        bias 0. With the identity activation the function is unchanged; with tanh and a small `scale`,
        tanh(scale * a) / scale is close to a, so the function barely moves. Returns the new neuron's id."""
        if scale == 0 or not math.isfinite(scale):
            raise GraphError(f"split scale must be a finite non-zero number, got {scale!r}")
        w = self.weight(src, dst)
        _check_act(activation, None)
        new = self.next_id()
        self.remove_connection(src, dst)
        self._new(new, activation)
        self.add_connection(src, new, scale)
        self.add_connection(new, dst, w / scale)
        return new

    def add_neuron(self, sources: Iterable[int], targets: Iterable[int] = (), activation: str = "tanh", *,
                   weights: Sequence[float] | None = None, out_weights: Sequence[float] | None = None,
                   bias: float = 0.0) -> int:
        """Cascade-style insertion: a new neuron fed by `sources` (in-weights `weights`, default 0) that
        feeds `targets` (out-weights `out_weights`, default 0, so the function is unchanged). Raises
        `GraphError` naming the neurons if some target is a source or an ancestor of one (a cycle).
        Returns the new neuron's id."""
        srcs, dsts = list(sources), list(targets)
        _check_act(activation, None)
        for s in srcs:
            self._need(s)
        for t in dsts:
            self._need(t)
            if t in self._inputs:
                raise GraphError(f"cannot connect into input neuron {label(t)}: inputs take no connections")
            for s in srcs:
                back = [t] if s == t else self._path(t, s)
                if back is not None:
                    loop = " -> ".join(["new", *_names(back), "new"])
                    raise GraphError(f"a new neuron fed by {label(s)} and feeding {label(t)} would close a cycle "
                                     f"{loop}; choose targets that do not feed any source")
        if len(set(srcs)) != len(srcs) or len(set(dsts)) != len(dsts):
            raise GraphError(f"sources {', '.join(_names(srcs))} and targets {', '.join(_names(dsts))} must not "
                             "repeat a neuron")
        w_in = [0.0] * len(srcs) if weights is None else [float(w) for w in weights]
        w_out = [0.0] * len(dsts) if out_weights is None else [float(w) for w in out_weights]
        if len(w_in) != len(srcs) or len(w_out) != len(dsts):
            raise GraphError(f"got {len(w_in)} weights for {len(srcs)} sources and {len(w_out)} out_weights for "
                             f"{len(dsts)} targets; give one per neuron")
        new = self.next_id()
        self._new(new, activation, bias)
        for s, w in zip(srcs, w_in, strict=True):
            self.add_connection(s, new, w)
        for t, w in zip(dsts, w_out, strict=True):
            self.add_connection(new, t, w)
        return new

    def remove_neuron(self, neuron: int) -> None:
        """Remove a hidden neuron and its connections (inputs and outputs cannot be removed)."""
        self._need(neuron)
        if neuron in self._inputs or neuron in self._outputs:
            kind = "input" if neuron in self._inputs else "output"
            raise GraphError(f"{label(neuron)} is an {kind} neuron; only hidden neurons can be removed")
        for s in list(self._pred[neuron]):
            self.remove_connection(s, neuron)
        for t in list(self._succ[neuron]):
            self.remove_connection(neuron, t)
        del self._succ[neuron], self._pred[neuron], self._act[neuron], self._bias[neuron]

    def simplify(self) -> list[int]:
        """Remove hidden neurons that cannot change the outputs, keeping the function: neurons with no path to
        an output are dropped, and neurons with no incoming connection (constants act(b)) are folded into
        their targets' biases. Returns the removed ids."""
        removed: list[int] = []
        useful: set[int] = set()
        stack = list(self._outputs)
        while stack:
            n = stack.pop()
            if n not in useful:
                useful.add(n)
                stack.extend(self._pred[n])
        for n in self.hidden:
            if n not in useful:
                self.remove_neuron(n)
                removed.append(n)
        changed = True
        while changed:
            changed = False
            for n in self.hidden:
                if not self._pred[n]:
                    value = _act_value(self._act[n], self._bias[n])
                    for t in self._succ[n]:
                        self._bias[t] += self._w[(n, t)] * value
                    self.remove_neuron(n)
                    removed.append(n)
                    changed = True
        return removed

    def copy(self) -> NeuronGraph:
        """An independent copy (topology and weights)."""
        new = NeuronGraph.__new__(NeuronGraph)
        new._inputs, new._outputs = list(self._inputs), list(self._outputs)
        new._act, new._bias, new._w = dict(self._act), dict(self._bias), dict(self._w)
        new._succ = {k: dict(v) for k, v in self._succ.items()}
        new._pred = {k: dict(v) for k, v in self._pred.items()}
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NeuronGraph):
            return NotImplemented
        return (self.to_json() == other.to_json() and self._w == other._w and self._bias == other._bias)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (f"NeuronGraph(inputs={len(self._inputs)}, hidden={self.num_hidden}, outputs={len(self._outputs)}, "
                f"connections={self.num_connections}, depth={self.depth()})")

    # -- JSON topology and weights -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The topology document (the ``topology`` param of a ``neuron_graph`` node); no weights."""
        return {
            "inputs": list(self._inputs),
            "hidden": [{"id": i, "act": self._act[i]} for i in self.hidden],
            "outputs": [{"id": o, "act": self._act[o]} for o in self._outputs],
            "connections": [[s, d] for s, d in self.connections],
        }

    @classmethod
    def from_json(cls, data: Any) -> NeuronGraph:
        """Validate a topology document and build the graph (weights 0). Raises `GraphError` saying what is
        wrong and where, naming the neurons on a cycle."""
        if not isinstance(data, Mapping):
            raise GraphError(f"a neuron graph topology must be an object with inputs, hidden, outputs and "
                             f"connections, got {type(data).__name__}")
        unknown = set(data) - {"inputs", "hidden", "outputs", "connections"}
        if unknown:
            raise GraphError(f"unknown topology field(s) {sorted(unknown)}; allowed: inputs, hidden, outputs, "
                             "connections")
        for key in ("inputs", "outputs", "connections"):
            if key not in data:
                raise GraphError(f"topology is missing {key!r}")
        inputs = _id_list(data["inputs"], "topology.inputs")
        hidden = _units(data.get("hidden", []), "topology.hidden")
        outputs = _units(data["outputs"], "topology.outputs")
        if len(inputs) + len(hidden) + len(outputs) > MAX_NEURONS:
            raise GraphError(f"topology has more than {MAX_NEURONS} neurons")
        conns = data["connections"]
        if not isinstance(conns, (list, tuple)):
            raise GraphError(f"topology.connections must be a list of [src, dst] pairs, got {type(conns).__name__}")
        if len(conns) > MAX_CONNECTIONS:  # checked before any neuron is made
            raise GraphError(f"topology.connections must hold at most {MAX_CONNECTIONS} connections, got "
                             f"{len(conns)}")
        ng = cls.__new__(cls)
        ng._inputs, ng._outputs, ng._act, ng._bias, ng._w, ng._succ, ng._pred = [], [], {}, {}, {}, {}, {}
        if not inputs or not outputs:
            raise GraphError("topology needs at least one input and one output neuron")
        for i in inputs:
            ng._new(i, None)
            ng._inputs.append(i)
        for i, act in hidden:
            ng._new(i, act)
        for o, act in outputs:
            ng._new(o, act)
            ng._outputs.append(o)
        input_set = set(inputs)
        for k, pair in enumerate(conns):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in pair)):
                raise GraphError(f"topology.connections[{k}] must be [src, dst] (two neuron ids), got {pair!r}")
            s, d = int(pair[0]), int(pair[1])
            for v in (s, d):
                if v not in ng._succ:
                    raise GraphError(f"topology.connections[{k}] refers to neuron {label(v)}, which is not "
                                     "declared in inputs, hidden or outputs")
            if d in input_set:
                raise GraphError(f"topology.connections[{k}]: {label(s)} -> {label(d)} goes into an input neuron; "
                                 "inputs take no connections")
            if s == d:
                raise GraphError(f"topology.connections[{k}]: {label(s)} -> {label(s)} is a cycle")
            if (s, d) in ng._w:
                raise GraphError(f"topology.connections[{k}]: {label(s)} -> {label(d)} is listed twice")
            ng._w[(s, d)] = 0.0
            ng._succ[s][d] = None
            ng._pred[d][s] = None
        if len(ng.topological_order()) != ng.num_neurons:
            cycle = ng._find_cycle()
            raise GraphError(f"topology has a cycle {' -> '.join(_names(cycle + cycle[:1]))}; remove one of "
                             "these connections (a neuron graph must be acyclic)")
        return ng

    def _find_cycle(self) -> list[int]:
        color: dict[int, int] = {}
        for root in self._succ:
            if root in color:
                continue
            stack: list[tuple[int, Any]] = [(root, iter(self._succ[root]))]
            path = [root]
            color[root] = 1
            while stack:
                n, it = stack[-1]
                step = next(it, None)
                if step is None:
                    color[n] = 2
                    stack.pop()
                    path.pop()
                elif color.get(step) == 1:
                    return path[path.index(step):]
                elif step not in color:
                    color[step] = 1
                    path.append(step)
                    stack.append((step, iter(self._succ[step])))
        return []

    def state_dict(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """The weights as the node's state dict: ``weight`` in `connections` order, ``bias`` hidden then outputs."""
        units = self.hidden + self._outputs
        return {"weight": torch.tensor([self._w[e] for e in self.connections], dtype=dtype),
                "bias": torch.tensor([self._bias[u] for u in units], dtype=dtype)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Set the weights from a state dict in the layout of `state_dict` (shapes checked)."""
        conns, units = self.connections, self.hidden + self._outputs
        weight, bias = state.get("weight"), state.get("bias")
        if weight is None or bias is None:
            raise GraphError(f"a neuron graph state dict needs 'weight' and 'bias', got {sorted(state)}")
        w = _values(weight)
        b = _values(bias)
        if len(w) != len(conns) or len(b) != len(units):
            raise GraphError(f"state dict has {len(w)} weights and {len(b)} biases but the topology has "
                             f"{len(conns)} connections and {len(units)} hidden+output neurons")
        self._w = {e: float(v) for e, v in zip(conns, w, strict=True)}
        for u, v in zip(units, b, strict=True):
            self._bias[u] = float(v)

    def to_module(self, mode: str = "auto", dtype: torch.dtype = torch.float32) -> NeuronGraphModule:
        """A `NeuronGraphModule` computing this network with these weights."""
        module = NeuronGraphModule.from_topology(self.to_json(), mode=mode).to(dtype)
        module.load_state_dict(self.state_dict(dtype))
        return module

    # -- graphs --------------------------------------------------------------------------------------------
    def to_graph(self, name: str = "neuron_net", *, batch: int = 1, node: str = "net", mode: str = "auto") -> Graph:
        """A `Graph` x (batch, inputs) -> neuron_graph -> output, with this network's weights: ready to
        compile, save or export."""
        g = Graph(name)
        x = g.input("x", shape=(batch, len(self._inputs)))
        net = g.add("neuron_graph", x, name=node, topology=self.to_json(), mode=mode)
        g.output(net, name="y")
        g.weights[net.name] = self.state_dict()
        return g

    @classmethod
    def from_graph(cls, graph: Graph, node: str | None = None) -> NeuronGraph:
        """The network of a ``neuron_graph`` node of `graph` (the only one, or the one called `node`),
        with its weights from `graph.weights` when present."""
        found: Node
        if node is not None:
            found = graph[node]
            if found.op != "neuron_graph":
                raise GraphError(f"node {node!r} is a {found.op}, not a neuron_graph", [node])
        else:
            hits = [n for n in graph if n.op == "neuron_graph"]
            if len(hits) != 1:
                raise GraphError(f"graph {graph.name!r} has {len(hits)} neuron_graph nodes; pass node= to pick one",
                                 [n.name for n in hits])
            found = hits[0]
        ng = cls.from_json(found.params["topology"])
        if found.name in graph.weights:
            ng.load_state_dict(graph.weights[found.name])
        return ng

    def expand(self, name: str = "neurons", *, batch: int = 1,
               ghost_connections: Iterable[Edge] = ()) -> Graph:
        """The same network as an ordinary graph with one node per neuron, called ``n<id>``: one graph input
        (batch, 1) per input neuron, a ``neuron`` node per hidden and output neuron, and outputs ``y`` (or
        ``y0``, ``y1``, ...). It computes the same function: call it with the columns of x.

        `ghost_connections` adds connections with weight 0 (the function is unchanged): the widget shows
        just-pruned connections this way before they disappear. A neuron with no sources reads the first
        input with weight 0, because a node needs an input."""
        g = Graph(name)
        nodes: dict[int, Node] = {}
        for i in self._inputs:
            nodes[i] = g.input(label(i), shape=(batch, 1))
        ghosts = {(int(s), int(d)) for s, d in ghost_connections if (s, d) not in self._w}
        extra: dict[int, list[int]] = {}
        for s, d in sorted(ghosts):
            if s in self._succ and d in self._act:
                extra.setdefault(d, []).append(s)
        order = self.topological_order()
        rank = {n: k for k, n in enumerate(order)}
        for n in order:
            if n in self._inputs:
                continue
            srcs = sorted(set(self._pred[n]) | {s for s in extra.get(n, []) if rank[s] < rank[n]})
            weights = [self._w.get((s, n), 0.0) for s in srcs]
            if not srcs:
                srcs, weights = [self._inputs[0]], [0.0]
            nodes[n] = g.add("neuron", *[nodes[s] for s in srcs], name=label(n), activation=self._act[n])
            g.weights[label(n)] = {"weight": torch.tensor(weights), "bias": torch.tensor([self._bias[n]])}
        for k, o in enumerate(self._outputs):
            g.output(nodes[o], name="y" if len(self._outputs) == 1 else f"y{k}")
        return g

    # -- constructors --------------------------------------------------------------------------------------
    @classmethod
    def direct(cls, n_inputs: int, n_outputs: int = 1, *, seed: int = 0,
               output_activation: str = "identity") -> NeuronGraph:
        """Every input wired straight to every output (a linear model), weights uniform +-1/sqrt(n_inputs)."""
        return cls.layered(n_inputs, (), n_outputs, seed=seed, output_activation=output_activation)

    @classmethod
    def layered(cls, n_inputs: int, widths: Sequence[int], n_outputs: int = 1, *, activation: str = "tanh",
                output_activation: str = "identity", seed: int = 0) -> NeuronGraph:
        """A layered MLP as a neuron graph: full connections between consecutive layers, weights and biases
        uniform +-1/sqrt(fan_in) (as `nn.Linear`), from `seed`."""
        rng = np.random.default_rng(seed)
        ng = cls(n_inputs, n_outputs, output_activation=output_activation)
        previous = ng.inputs
        for width in widths:
            layer = []
            for _ in range(width):
                bound = 1 / math.sqrt(len(previous))
                n = ng.add_neuron(previous, (), activation, weights=rng.uniform(-bound, bound, len(previous)),
                                  bias=float(rng.uniform(-bound, bound)))
                layer.append(n)
            previous = layer
        bound = 1 / math.sqrt(len(previous))
        for o in ng.outputs:
            for s in previous:
                ng.add_connection(s, o, float(rng.uniform(-bound, bound)))
            ng.set_bias(o, float(rng.uniform(-bound, bound)))
        return ng

    @classmethod
    def random(cls, n_inputs: int, n_hidden: int, n_outputs: int, n_connections: int, *, seed: int = 0,
               depth: int | None = None, activations: Sequence[str] = ACTIVATIONS) -> NeuronGraph:
        """A random DAG with exactly `n_connections` connections (for tests and benchmarks).

        Neurons are put in a random order (inputs first, outputs last); with `depth`, hidden neurons get a
        random level 1..depth and connections only go up levels, else any earlier neuron may feed any later
        one (a deep DAG). Activations are drawn from `activations`; weights uniform +-1/sqrt(fan_in)."""
        rng = np.random.default_rng(seed)
        ng = cls(n_inputs, n_outputs)
        for o in ng.outputs:
            ng._act[o] = str(rng.choice(list(activations)))
        hidden = [ng.next_id() + k for k in range(n_hidden)]
        for h in hidden:
            ng._new(h, str(rng.choice(list(activations))), float(rng.uniform(-0.5, 0.5)))
        if depth is None:
            position = {n: k for k, n in enumerate(ng.inputs + list(rng.permutation(hidden)) + ng.outputs)}
        else:
            position = {n: 0 for n in ng.inputs}
            position.update({int(h): int(rng.integers(1, depth + 1)) for h in hidden})
            position.update({o: depth + 1 for o in ng.outputs})
        order = sorted(ng._succ, key=lambda n: (position[n], n))
        rank = {n: k for k, n in enumerate(order)}
        legal = [(s, d) for d in order if d not in ng._inputs for s in order[:rank[d]] if position[s] < position[d]]
        if n_connections > len(legal):
            raise GraphError(f"asked for {n_connections} connections, but only {len(legal)} are possible here")
        for k in rng.choice(len(legal), size=n_connections, replace=False):
            s, d = legal[int(k)]
            ng._w[(s, d)] = 0.0
            ng._succ[s][d] = None
            ng._pred[d][s] = None
        for (s, d) in ng.connections:
            ng._w[(s, d)] = float(rng.uniform(-1, 1) / math.sqrt(len(ng._pred[d])))
        for o in ng.outputs:
            ng._bias[o] = float(rng.uniform(-0.5, 0.5))
        return ng


# -- validation helpers ----------------------------------------------------------------------------------------
def _values(v: Any) -> list[float]:
    """A tensor's or a list's numbers as Python floats (a list is read in float64, so nothing is rounded)."""
    t = v.detach() if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=torch.float64)
    return t.reshape(-1).tolist()


def _names(ids: Iterable[int]) -> list[str]:
    return [label(i) for i in ids]


def _check_act(act: Any, neuron: int | None) -> None:
    if act not in ACTIVATIONS:
        where = f" of {label(neuron)}" if neuron is not None else ""
        raise GraphError(f"activation{where} must be one of {list(ACTIVATIONS)}, got {act!r}")


def _act_value(act: str, z: float) -> float:
    """act(z) for one number (float64)."""
    return float(activate(act, torch.tensor([z], dtype=torch.float64))[0])


def _id_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, (list, tuple)):
        raise GraphError(f"{where} must be a list of neuron ids, got {type(value).__name__}")
    for k, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise GraphError(f"{where}[{k}] must be a non-negative integer id, got {v!r}")
    return [int(v) for v in value]


def _units(value: Any, where: str) -> list[tuple[int, str]]:
    if not isinstance(value, (list, tuple)):
        raise GraphError(f"{where} must be a list of {{'id': int, 'act': str}} objects, got {type(value).__name__}")
    out = []
    for k, u in enumerate(value):
        if not isinstance(u, Mapping) or set(u) - {"id", "act"} or "id" not in u:
            raise GraphError(f"{where}[{k}] must be {{'id': int, 'act': str}}, got {u!r}")
        i = u["id"]
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise GraphError(f"{where}[{k}].id must be a non-negative integer, got {i!r}")
        act = u.get("act", "identity")
        if act not in ACTIVATIONS:
            raise GraphError(f"{where}[{k}].act of {label(i)} must be one of {list(ACTIVATIONS)}, got {act!r}")
        out.append((int(i), str(act)))
    return out


# -- the ops ---------------------------------------------------------------------------------------------------
def _graph_check(p: dict[str, Any], specs: Specs) -> None:
    ng = NeuronGraph.from_json(p["topology"])
    shape = specs[0].shape
    if len(shape) != 2 or shape[1] != len(ng.inputs):
        raise GraphError(f"expects input of shape (N, {len(ng.inputs)}) (one column per input neuron), got "
                         f"{specs[0]}; flatten the input or change the topology's inputs")


def _graph_build(p: dict[str, Any], specs: Specs) -> NeuronGraphModule:
    return NeuronGraphModule(*NeuronGraphModule.arguments(p["topology"]), mode=p["mode"])


def _graph_flops(opdef: OpDef, p: dict[str, Any], specs: Specs) -> int:
    """2 per connection (multiply-add) plus 1 per bias, per sample; activations not counted."""
    topo = p["topology"]
    units = len(topo.get("hidden", [])) + len(topo["outputs"])
    return specs[0].shape[0] * (2 * len(topo["connections"]) + units)


_op = declare(
    "neuron_graph", "search",
    "Any DAG of neurons (inputs, hidden and output neurons with bias and activation, weighted connections "
    "between any earlier and later neuron): (N, inputs) -> (N, outputs). Build the topology with "
    "gb.search.NeuronGraph; gb.search.prune_grow searches it (arXiv:2108.02231).",
    params=named(topology=Param("json", doc="the neuron DAG: NeuronGraph(...).to_json()"),
                 mode=choice("evaluation per topological level: dense blocks, sparse gathers, or by density",
                             ("auto", "dense", "sparse"), "auto")),
    build=_graph_build, check=_graph_check, hint="(N, inputs): one column per input neuron",
    examples=[example((2, 8), topology=NeuronGraph.random(8, 5, 3, 30, seed=0).to_json())], advanced=True)
registry.register(dataclasses.replace(_op, flops=_graph_flops), replace=True)


def _neuron_check(p: dict[str, Any], specs: Specs) -> None:
    for k, s in enumerate(specs):
        if len(s.shape) != 2 or s.shape[0] != specs[0].shape[0]:
            raise GraphError(f"input {k} has shape {s}; every input of a neuron must be (N, k) with the same N "
                             f"as input 0 {specs[0]}")


declare("neuron", "search",
        "One neuron: act(sum of weight * input + bias) over its inputs concatenated along dim 1: "
        "(N, k_i)... -> (N, 1). An expanded neuron graph is made of these.",
        params=named(activation=choice("activation function", ACTIVATIONS, "identity")),
        inputs=("inputs",), variadic=True, check=_neuron_check,
        build=lambda p, specs: Neuron(sum(s.shape[1] for s in specs), p["activation"]),
        hint="one or more (N, k) tensors", examples=[example((4, 2), (4, 3), activation="tanh")], advanced=True)
