"""The graph IR: a DAG of operator nodes that is a plain, editable Python object.

    >>> g = Graph("tiny")
    >>> x = g.input("x", shape=(8, 3, 32, 32))
    >>> h = g.add("conv2d", x, out_channels=16, kernel_size=3, padding=1)
    >>> y = g.output(g.add("relu", h))
    >>> print(g)                                      # doctest: +SKIP
    graph 'tiny'
      x       input   shape=(8, 3, 32, 32)                    -> (8, 3, 32, 32)
      conv2d  conv2d  x | out_channels=16 kernel_size=3 ...   -> (8, 16, 32, 32)
      ...

Fields of a `Node`:
    name    a label; any string. Unique in its graph. Code generators derive identifiers from it safely.
    op      a registry op name, or ``"block"`` for a nested `Graph` (then `node.block` is that graph).
    params  validated parameter values (a mapping; assigning validates and re-infers downstream).
    inputs  `Port`s (``node[i]`` is output i of node); ``None`` marks an input port not yet connected.
    meta    free JSON-like dict: editor position, notes, search annotations. Never read by compile.

Invariants, kept by the private `_set_input` that every rewiring goes through: the graph is acyclic,
`node.users` mirrors `inputs`, and inference results are current after `Graph.infer()`. Shapes are never
typed by users: they are inferred lazily and incrementally (only the nodes downstream of an edit, stopping
where outputs did not change).

Builders (`input`, `add`, `output`) raise `GraphError` at once and leave the graph unchanged. Edits
(`params[...] = v`, `replace_input`, `remove(..., disconnect=True)`) keep the graph editable: a node whose
shapes no longer fit records its `GraphError` in `node.error` (shown red in the editor) and `check()` or
`compile` raise it. Edits that would make a cycle always raise.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from graphbuilder.ir import naming, registry, ties
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.journal import Journal
from graphbuilder.ir.limits import MAX_BLOCK_DEPTH
from graphbuilder.ir.schema import DTYPES, TensorSpec
from graphbuilder.ir.strict_json import check_text

BLOCK = "block"
Listener = Callable[[dict[str, Any]], None]


class Port:
    """Output `index` of `node`; what edges carry. ``node[1]`` makes one; a bare node means ``node[0]``."""

    __slots__ = ("node", "index")

    def __init__(self, node: Node, index: int = 0) -> None:
        self.node = node
        self.index = index

    @property
    def spec(self) -> TensorSpec:
        """Inferred shape and dtype of this output (raises the node's `GraphError` if inference failed)."""
        outputs = self.node.outputs
        if self.index >= len(outputs):
            raise GraphError(
                f"node {self.node.name!r} has {len(outputs)} output(s); output {self.index} does not exist",
                [self.node.name],
            )
        return outputs[self.index]

    @property
    def shape(self) -> tuple[int, ...]:
        """Inferred shape of this output."""
        return self.spec.shape

    @property
    def dtype(self) -> str:
        """Inferred dtype name of this output (``"float32"``)."""
        return self.spec.dtype

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Port) and other.node is self.node and other.index == self.index

    def __hash__(self) -> int:
        return hash((id(self.node), self.index))

    def __repr__(self) -> str:
        return f"{self.node.name!r}[{self.index}]"


class Params(MutableMapping[str, Any]):
    """A node's parameters. Setting a value validates it and re-infers shapes downstream."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def __getitem__(self, key: str) -> Any:
        return self._node._params[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._node.update(**{key: value})

    def __delitem__(self, key: str) -> None:
        raise GraphError(f"parameters cannot be deleted; set {key!r} to its default instead", [self._node.name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._node._params)

    def __len__(self) -> int:
        return len(self._node._params)

    def __repr__(self) -> str:
        return repr(self._node._params)


class Node:
    """One operator application in a `Graph`. Create nodes with `Graph.add`, `Graph.input`, `Graph.output`."""

    def __init__(self, graph: Graph, name: str, op: str, params: dict[str, Any], block: Graph | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        self.graph = graph
        self._name = name
        self.op = op
        self._params = params
        self.block = block
        self.meta: dict[str, Any] = meta if meta is not None else {}
        self._inputs: list[Port | None] = []
        self._users: dict[Node, None] = {}
        self._outputs: tuple[TensorSpec, ...] | None = None
        self._error: GraphError | None = None
        self._num_params = 0
        self._packed = False
        self._rank = 0  # position in the graph's cached topological order (valid while that order is cached)
        self._stamp = 0  # the tick of its last change (`ir.journal`)
        if block is not None:  # edits inside the block re-infer this node and reach the outer graph's listeners
            block.subscribe(lambda event: self.graph._on_block_edit(self, event))
            block._block_node = self

    # -- identity ------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The node's label (any string, unique in its graph). Assigning renames the node."""
        return self._name

    @name.setter
    def name(self, new: str) -> None:
        self.rename(new)

    def rename(self, new: str) -> Node:
        """Rename this node; raises `GraphError` if `new` is taken."""
        self.graph._rename(self, new)
        return self

    # -- structure -----------------------------------------------------------------------------------------
    @property
    def params(self) -> Params:
        """Validated parameters (a live mapping: assigning validates and re-infers)."""
        return Params(self)

    @property
    def inputs(self) -> tuple[Port | None, ...]:
        """Input ports in call order; `None` where a port is not connected yet."""
        return tuple(self._inputs)

    @property
    def users(self) -> list[Node]:
        """Nodes that read any output of this node."""
        return list(self._users)

    def __getitem__(self, index: int) -> Port:
        if not isinstance(index, int) or index < 0:
            raise GraphError(f"output index of node {self._name!r} must be an int >= 0, got {index!r}",
                             [self._name])
        if self._outputs is not None and self._error is None and index >= len(self._outputs):
            raise GraphError(f"node {self._name!r} has {len(self._outputs)} output(s); there is no output "
                             f"{index}", [self._name])
        return Port(self, index)

    def update(self, **params: Any) -> Node:
        """Change parameters: validated now (bad values raise and change nothing), shapes re-inferred."""
        self.graph._set_params(self, params)
        return self

    def replace_input(self, old: Node | Port, new: Node | Port) -> Node:
        """Make every input of this node that reads `old` read `new` instead. Raises on a cycle."""
        old_port, new_port = _as_port(old), _as_port(new)
        hits = [i for i, p in enumerate(self._inputs) if p == old_port]
        if not hits:
            raise GraphError(f"node {self._name!r} does not read {old_port!r}; its inputs are "
                             f"{list(self._inputs)}", [self._name, old_port.node.name])
        for i in hits:
            self.graph._set_input(self, i, new_port)
        return self

    def set_input(self, index: int, value: Node | Port | None) -> Node:
        """Connect input port `index` to `value`, or disconnect it with `None`. Raises on a cycle."""
        if not 0 <= index < len(self._inputs):
            raise GraphError(f"node {self._name!r} has {len(self._inputs)} input port(s); no port {index}",
                             [self._name])
        self.graph._set_input(self, index, None if value is None else _as_port(value))
        return self

    def add_input_port(self, value: Node | Port | None = None) -> int:
        """Append an input port to a variadic op (``cat``, ``add``...), connected to `value` or unconnected;
        returns its index. Raises `GraphError` for an op with a fixed number of inputs, or on a cycle."""
        self.graph._own(self)
        opdef = None if self.op == BLOCK else registry.get(self.op)
        if opdef is None or not opdef.variadic:
            raise GraphError(f"node {self._name!r} ({self.op}) has a fixed number of inputs; only variadic ops "
                             "take more", [self._name])
        self._inputs.append(None)
        index = len(self._inputs) - 1
        try:
            self.graph._set_input(self, index, None if value is None else _as_port(value))
        except GraphError:
            self._inputs.pop()
            raise
        return index

    def remove_input_port(self, index: int) -> Node:
        """Disconnect and drop input port `index` of a variadic op; ports after it move down by one.
        Raises `GraphError` if the op would keep fewer ports than it needs."""
        self.graph._own(self)
        opdef = None if self.op == BLOCK else registry.get(self.op)
        if opdef is None or not opdef.variadic:
            raise GraphError(f"node {self._name!r} ({self.op}) has a fixed number of inputs", [self._name])
        if not len(opdef.inputs) <= index < len(self._inputs):
            raise GraphError(f"node {self._name!r}: port {index} cannot be removed; {self.op} keeps its first "
                             f"{len(opdef.inputs)} port(s) and has {len(self._inputs)}", [self._name])
        self.graph._set_input(self, index, None)
        del self._inputs[index]
        self.graph._dirty.add(self)
        self.graph._touch(self)
        self.graph._emit({"kind": "inputs", "node": self._name})
        return self

    def touch(self) -> Node:
        """Record a change the IR cannot see (this node's `meta` edited in place), so observers of
        `Graph.changed_since` show it."""
        self.graph._touch(self)
        return self

    def replace_all_uses_with(self, other: Node | Port) -> list[Node]:
        """Rewire every user of this node's output 0 to `other`; returns the rewired users."""
        return self.graph._replace_all_uses(Port(self, 0), _as_port(other))

    def remove(self, *, disconnect: bool = False) -> None:
        """Remove this node from its graph (see `Graph.remove`)."""
        self.graph.remove(self, disconnect=disconnect)

    # -- inference results ---------------------------------------------------------------------------------
    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Inferred output specs. Raises this node's `GraphError` when its inference failed."""
        self.graph._refresh()
        if self._error is not None:
            raise self._error
        assert self._outputs is not None
        return self._outputs

    @property
    def error(self) -> GraphError | None:
        """The `GraphError` from this node's inference, or None when it is fine."""
        self.graph._refresh()
        return self._error

    @property
    def shape(self) -> tuple[int, ...]:
        """Inferred shape of output 0 (e.g. ``(8, 10)``)."""
        return self[0].shape

    @property
    def dtype(self) -> str:
        """Inferred dtype name of output 0."""
        return self[0].dtype

    @property
    def num_params(self) -> int:
        """Number of trainable parameter elements this node will hold once compiled."""
        self.graph._refresh()
        return self._num_params

    @property
    def packed(self) -> bool:
        """True when the op's torch call returns a tuple (compiled code then indexes it)."""
        self.graph._refresh()
        return self._packed

    @property
    def num_outputs(self) -> int:
        """How many outputs this node has (1 for most ops; ``split`` and attention have more)."""
        return len(self.outputs)

    def __repr__(self) -> str:
        return f"Node({self._name!r}, op={self.op!r})"


_ATOMS = (str, int, float, bool, type(None))


def _copy_meta(value: Any) -> Any:
    """A deep copy of meta: dicts and lists rebuilt, JSON scalars shared, anything else `copy.deepcopy`'d.
    Meta is JSON-like, and the editor's undo history copies it for every node on every edit: this is ~3x
    faster than `copy.deepcopy` there. Iterative, so any nesting depth copies (no `RecursionError`); a
    value that contains itself raises `GraphError`."""
    if type(value) in _ATOMS:
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 0)]
    while stack:
        item, parent, slot, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list:
            if depth > _MAX_COPY_DEPTH:
                raise GraphError(f"meta value nests deeper than {_MAX_COPY_DEPTH} levels or contains itself; "
                                 "meta must be a tree of JSON-like values")
            out: Any = dict(item) if kind is dict else list(item)
            parent[slot] = out
            for key, sub in (item.items() if kind is dict else enumerate(item)):
                if type(sub) not in _ATOMS:
                    stack.append((sub, out, key, depth + 1))
        else:
            parent[slot] = copy.deepcopy(item)
    return root[0]


_MAX_COPY_DEPTH = 100_000


def _as_port(value: Any) -> Port:
    if isinstance(value, Port):
        return value
    if isinstance(value, Node):
        return Port(value, 0)
    raise GraphError(f"expected a node or node[i] as input, got {type(value).__name__} {value!r}")


class Graph:
    """A neural network as a DAG of operator nodes. See the module docstring for the node fields.

    Attributes:
        name: the graph's label (also the class name when compiled or exported).
        weights: trained tensors per node name (``{"conv": {"weight": tensor, ...}}``); compile loads them.
            Editing a node's params drops its entry; a node whose weights no longer fit after an upstream
            edit (their shapes change) drops its entry too. A new batch size keeps every weight.
        meta: free JSON-like dict for the graph (editor view state, provenance).
        shared: node name -> the earlier node whose weights it uses (`share_weights`: one module called twice).
        tied: weight path -> the weight path it is (`tie_weights`: one tensor read by two layers, possibly in
            different blocks; paths are relative to this graph, see `graphbuilder.ir.ties`).
    """

    def __init__(self, name: str = "graph") -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"graph name must be a non-empty string, got {name!r}")
        self.name = check_text(name, "name", "graph name")
        self.weights: dict[str, dict[str, Any]] = {}
        self.shared: dict[str, str] = {}  # node name -> the earlier node whose weights it uses (share_weights)
        self.tied: dict[str, str] = {}  # weight path -> the weight path it is (tie_weights)
        self.meta: dict[str, Any] = {}
        self._nodes: dict[str, Node] = {}
        self._dirty: set[Node] = set()
        self._order: list[Node] | None = None  # cached topological order; None after a rewire that broke it
        self._next_rank = 0  # rank of the next node appended to the cached order
        self._free_suffix: dict[str, int] = {}  # base -> first `base_i` not known taken (cleared on remove/rename)
        self._listeners: list[Listener] = []
        self._journal = Journal()  # nodes in the order they last changed, for observers (`changed_since`)
        self._block_node: Node | None = None  # the block node whose inside this graph is, if any

    # -- lookup --------------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise GraphError(f"graph {self.name!r} has no node {name!r}", [str(name)]) from None

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.topological_order())

    @property
    def nodes(self) -> list[Node]:
        """All nodes in a topological order (stable: ties keep insertion order)."""
        return list(self.topological_order())

    @property
    def inputs(self) -> list[Node]:
        """Input nodes, in creation order (the compiled module's positional arguments)."""
        return [n for n in self._nodes.values() if n.op == "input"]

    @property
    def outputs(self) -> list[Node]:
        """Output nodes, in creation order (the compiled module's return values)."""
        return [n for n in self._nodes.values() if n.op == "output"]

    # -- builders ------------------------------------------------------------------------------------------
    def input(self, name: str, shape: tuple[int, ...] | list[int], dtype: str = "float32") -> Node:
        """Add a graph input with a fixed example `shape` (the batch size included) and `dtype`."""
        return self.add("input", name=name, shape=tuple(shape), dtype=dtype)

    def parameter(self, name: str, shape: tuple[int, ...] | list[int], init: str = "trunc_normal", std: float = 0.02,
                  value: Any = None) -> Node:
        """Add a learnable tensor (``parameter`` op: a class token, a position embedding, a layer scale).

        Its value is the node's weight (``graph.weights[name]["value"]``, saved in the safetensors file); a
        new one starts from `init`, or from `value` (a tensor of this shape) when given.

            cls_token = g.parameter("cls_token", shape=(1, 1, 192))
        """
        node = self.add("parameter", name=name, shape=tuple(shape), init=init, std=std)
        if value is not None:
            self._set_value(node, value)
        return node

    def constant(self, name: str, value: Any = None, *, shape: tuple[int, ...] | list[int] | None = None,
                 dtype: str = "float32", fill: str = "zeros", fill_value: float = 0.0) -> Node:
        """Add a non-trainable tensor (``constant`` op: a mask, an index table, a buffer).

        Give `value` (a tensor: its shape and dtype are read from it and it becomes the node's weight), or a
        `shape` with a `fill` (zeros, ones, full with `fill_value`, arange).
        """
        if value is not None:
            shape, dtype = tuple(value.shape), str(value.dtype).removeprefix("torch.")
        if shape is None:
            raise GraphError(f"constant {name!r}: give a value tensor or a shape")
        node = self.add("constant", name=name, shape=tuple(shape), dtype=dtype, fill=fill, value=fill_value)
        if value is not None:
            self._set_value(node, value)
        return node

    def _set_value(self, node: Node, value: Any) -> None:
        if tuple(getattr(value, "shape", ())) != node.shape:
            self.remove(node)
            raise GraphError(f"node {node.name!r}: value of shape {tuple(getattr(value, 'shape', ()))} does not match "
                             f"its shape {node.shape}", [node.name])
        self.weights[node.name] = {"value": value}

    def output(self, *values: Node | Port, name: str | None = None) -> Node | tuple[Node, ...]:
        """Mark `values` as graph outputs (one ``output`` node each); returns the output node(s)."""
        if not values:
            raise GraphError(f"graph {self.name!r}: output() needs at least one node")
        made = tuple(self.add("output", value, name=name if len(values) == 1 else None) for value in values)
        return made[0] if len(made) == 1 else made

    def add(self, op: str | Graph, *inputs: Node | Port | None, name: str | None = None,
            allow_unconnected: bool = False, **params: Any) -> Node:
        """Add a node applying `op` (a registry name or a `Graph` used as a block) to `inputs`.

        Returns the new `Node`. Raises `GraphError`, leaving the graph unchanged, for an unknown op, bad
        params, wrong arity, or inputs whose shapes the op cannot take.

        With ``allow_unconnected=True`` (how an editor draws a node before wiring it) an input may be `None`,
        missing trailing inputs are added as unconnected ports, and a node whose inference fails is kept
        with its error in `node.error` (like an edit) instead of raising. Bad params and too many inputs
        still raise.
        """
        if not allow_unconnected and any(v is None for v in inputs):
            raise GraphError(f"graph {self.name!r}: an input of the new node is None; connect a node, or pass "
                             "allow_unconnected=True to leave the port unconnected")
        if op == "input" and self._block_node is not None:
            self._refuse_port_change(f"block {{block}} takes its inputs through its {len(self.inputs)} port(s): an "
                                     "input node cannot be added inside it")
        ports: list[Port | None] = [None if v is None else _as_port(v) for v in inputs]
        for port in ports:
            if port is not None and port.node.graph is not self:
                raise GraphError(f"input {port!r} belongs to graph {port.node.graph.name!r}, not {self.name!r}",
                                 [port.node.name])
        if allow_unconnected:
            need = len(op.inputs) if isinstance(op, Graph) else len(registry.get(op).inputs)
            ports += [None] * max(0, need - len(ports))
        if isinstance(op, Graph):
            if params:
                raise GraphError(f"a block takes no params, got {sorted(params)}; edit the block graph instead")
            node = self._make_block(op, name, len(ports))
        else:
            node = self._make_node(op, name, params, len(ports))
        self._insert(node, ports)
        self._refresh()
        if node._error is not None and not allow_unconnected:
            error = node._error
            self._detach(node)
            raise error
        self._emit({"kind": "add", "node": node.name})  # only once it is kept: listeners never see a refused node
        return node

    def _make_node(self, op: str, name: str | None, params: dict[str, Any], arity: int) -> Node:
        opdef = registry.get(op)
        label = self._new_name(name, op)
        try:
            checked = opdef.validate_params(params, where=f"node {label!r}: ")
        except GraphError as e:
            raise GraphError(e.message, [label]) from None
        _check_arity(opdef.name, opdef.inputs, opdef.variadic, arity, label)
        return Node(self, label, op, checked)

    def _make_block(self, block: Graph, name: str | None, arity: int) -> Node:
        depth = self.block_depth() + 1 + _nesting(block)
        if depth > MAX_BLOCK_DEPTH:  # before the copy: each level is a nested copy, module and file level
            raise GraphError(f"adding block {block.name!r} to graph {self.name!r} would nest blocks {depth} deep, "
                             f"deeper than {MAX_BLOCK_DEPTH} (the limit for graph files)")
        inner = block.copy()
        label = self._new_name(name, block.name)
        ports = tuple(n.name for n in inner.inputs)
        if not inner.outputs:
            raise GraphError(f"block {block.name!r} has no outputs: call .output(...) on it first", [label])
        _check_arity(f"block {block.name!r}", ports, False, arity, label)
        return Node(self, label, BLOCK, {}, block=inner)

    def block_depth(self) -> int:
        """How many blocks this graph is inside (0 for a top-level graph)."""
        depth, owner = 0, self._block_node
        while owner is not None:
            depth, owner = depth + 1, owner.graph._block_node
        return depth

    def unique_name(self, base: str) -> str:
        """`base` if no node has that name, else `base_1`, `base_2`, ... (the first free one)."""
        label = naming.unique(base, self._nodes, start=self._free_suffix.get(base, 1))
        if label != base:  # suffixes below this one are taken until a node is removed or renamed
            self._free_suffix[base] = naming.suffix(label, base)
        return label

    def _new_name(self, name: str | None, base: str) -> str:
        if name is None:
            return self.unique_name(base)
        if not isinstance(name, str) or not name:
            raise GraphError(f"node name must be a non-empty string, got {name!r}")
        check_text(name, "name", "node name")
        if name in self._nodes:
            raise GraphError(f"duplicate node name {name!r} in graph {self.name!r}: pick another name, or "
                             "omit name= to get a unique one", [name])
        return name

    def _insert(self, node: Node, ports: list[Port | None]) -> None:
        self._nodes[node.name] = node
        node._inputs = [None] * len(ports)
        for i, port in enumerate(ports):
            self._wire(node, i, port)
        if self._order is not None:  # its inputs are already in the order and nothing reads it: append
            node._rank = self._next_rank
            self._next_rank += 1
            self._order.append(node)
        self._dirty.add(node)
        self._touch(node)

    # -- edits ---------------------------------------------------------------------------------------------
    def remove(self, node: Node | str, *, disconnect: bool = False) -> None:
        """Remove `node`. If other nodes read it, raise unless ``disconnect=True`` (their ports become
        unconnected and they report an error until rewired)."""
        node = self.check_remove(node)
        users = node.users
        if users and not disconnect:
            names = ", ".join(repr(u.name) for u in users)
            raise GraphError(f"node {node.name!r} is read by {names}: rewire them first "
                             "(node.replace_all_uses_with(other)) or pass disconnect=True",
                             [node.name, *(u.name for u in users)])
        for user in users:
            for i, port in enumerate(user._inputs):
                if port is not None and port.node is node:
                    self._set_input(user, i, None)
        self._detach(node)
        self.weights.pop(node.name, None)
        self.shared = {k: v for k, v in self.shared.items() if node.name not in (k, v)}
        self.tied = ties.without(self.tied, node.name)
        self._emit({"kind": "remove", "node": node.name})

    def check_remove(self, node: Node | str) -> Node:
        """Raise the `GraphError` that ``remove(node, disconnect=True)`` would raise, changing nothing (so an
        editor can check a multi-node delete before doing any of it); returns the node."""
        node = self._own(node)
        if node.op == "input" and self._block_node is not None:
            self._refuse_port_change(f"node {node.name!r} is a port of block {{block}} (a block's input nodes are "
                                     "its ports) and cannot be removed", [node.name])
        return node

    def _refuse_port_change(self, what: str, nodes: list[str] | None = None) -> None:
        """Raise: the input nodes inside a block are its ports, as many as the block node has inputs, so the
        graph file, compile and ungroup agree on them. `what` says what was refused (``{block}`` is its name)."""
        owner = self._block_node
        assert owner is not None
        raise GraphError(what.format(block=repr(owner.name)) + "; to change a block's ports, edit a copy of its graph "
                         "(node.block.copy()) and add that as a new block", [*(nodes or []), owner.name])

    def _detach(self, node: Node) -> None:
        for i in range(len(node._inputs)):
            self._wire(node, i, None)
        del self._nodes[node.name]
        self._dirty.discard(node)
        self._free_suffix.clear()
        if self._order is not None:  # what is left stays in a valid order
            self._order.remove(node)
        self._touch(node)  # observers delete it
        self._journal.compact(self)

    def _touch(self, node: Node) -> None:
        """Journal a change of `node`, and of the block nodes around this graph (their insides changed)."""
        graph: Graph | None = self
        while graph is not None:
            graph._journal.touch(node)
            node = graph._block_node  # type: ignore[assignment]
            graph = None if node is None else node.graph

    def _own(self, node: Node | str) -> Node:
        found = self[node] if isinstance(node, str) else node
        if found.graph is not self or self._nodes.get(found.name) is not found:
            raise GraphError(f"node {found.name!r} is not in graph {self.name!r}", [found.name])
        return found

    def _rename(self, node: Node, new: str) -> None:
        if new == node.name:
            return
        if not isinstance(new, str) or not new:
            raise GraphError(f"node name must be a non-empty string, got {new!r}", [node.name])
        try:
            check_text(new, "name", "node name")
        except GraphError as e:
            raise GraphError(e.message, [node.name]) from None
        if new in self._nodes:
            raise GraphError(f"cannot rename {node.name!r} to {new!r}: that name is taken", [node.name, new])
        old = node.name
        self._free_suffix.clear()
        self._nodes = {(new if k == old else k): v for k, v in self._nodes.items()}
        node._name = new
        for changed in (node, *node._users):  # users show their inputs by name
            self._touch(changed)
        if old in self.weights:
            self.weights[new] = self.weights.pop(old)
        self.shared = {(new if k == old else k): (new if v == old else v) for k, v in self.shared.items()}
        self.tied = ties.renamed(self.tied, old, new)
        self._emit({"kind": "rename", "node": new, "old": old})

    def _set_params(self, node: Node, params: dict[str, Any]) -> None:
        node = self._own(node)
        if node.op == BLOCK:
            raise GraphError(f"node {node.name!r} is a block: edit the nodes of node.block instead", [node.name])
        opdef = registry.get(node.op)
        merged = {**node._params, **params}
        try:
            node._params = opdef.validate_params(merged, where=f"node {node.name!r}: ")
        except GraphError as e:
            raise GraphError(e.message, [node.name]) from None
        self.weights.pop(node.name, None)
        self._dirty.add(node)
        self._touch(node)
        self._emit({"kind": "params", "node": node.name, "params": sorted(params)})

    def _on_block_edit(self, node: Node, event: dict[str, Any]) -> None:
        if self._nodes.get(node.name) is node:
            self._dirty.add(node)
            self._touch(node)
            self._emit({"kind": "block", "node": node.name, "event": event})

    def _set_input(self, node: Node, index: int, port: Port | None) -> None:
        """The one funnel for rewiring: checks ownership and cycles, keeps users in sync."""
        node = self._own(node)
        keeps_order = True
        if port is not None:
            self._own(port.node)
            # A source earlier in the cached order cannot depend on `node`: no cycle, and the order stays valid.
            keeps_order = self._order is not None and port.node._rank < node._rank
            if not keeps_order and (port.node is node or node in self.ancestors(port.node)):
                raise GraphError(self._cycle_message(node, port.node), self._cycle_nodes(node, port.node))
        self._wire(node, index, port)
        if not keeps_order:
            self._order = None
        self._dirty.add(node)
        self._touch(node)
        self._emit({"kind": "inputs", "node": node.name})

    def _wire(self, node: Node, index: int, port: Port | None) -> None:
        old = node._inputs[index]
        node._inputs[index] = port
        if old is not None and all(p is None or p.node is not old.node for p in node._inputs):
            old.node._users.pop(node, None)
        if port is not None:
            port.node._users[node] = None

    def _replace_all_uses(self, old: Port, new: Port) -> list[Node]:
        users = [u for u in old.node.users if u is not new.node]
        for user in users:
            for i, port in enumerate(user._inputs):
                if port == old:
                    self._set_input(user, i, new)
        return users

    # -- graph algorithms ----------------------------------------------------------------------------------
    def ancestors(self, node: Node) -> set[Node]:
        """Every node `node` depends on (transitively)."""
        seen: set[Node] = set()
        stack = [node]
        while stack:
            for port in stack.pop()._inputs:
                if port is not None and port.node not in seen:
                    seen.add(port.node)
                    stack.append(port.node)
        return seen

    def descendants(self, node: Node) -> set[Node]:
        """Every node that depends on `node` (transitively)."""
        seen: set[Node] = set()
        stack = [node]
        while stack:
            for user in stack.pop()._users:
                if user not in seen:
                    seen.add(user)
                    stack.append(user)
        return seen

    def topological_order(self) -> list[Node]:
        """Nodes so that every node comes after its inputs; cached until the structure changes."""
        if self._order is None:
            # One count per distinct source node, matching how `_users` records edges.
            indegree = {n: len({id(p.node) for p in n._inputs if p is not None}) for n in self._nodes.values()}
            ready = [n for n in self._nodes.values() if indegree[n] == 0]
            order: list[Node] = []
            position = {n: i for i, n in enumerate(self._nodes.values())}
            heap = [(position[n], id(n), n) for n in ready]
            heapq.heapify(heap)
            while heap:
                _, _, n = heapq.heappop(heap)
                order.append(n)
                for user in n._users:
                    indegree[user] -= 1
                    if indegree[user] == 0:
                        heapq.heappush(heap, (position[user], id(user), user))
            if len(order) != len(self._nodes):
                cycle = find_cycle(self)
                raise GraphError(f"graph {self.name!r} has a cycle: {' -> '.join(cycle)}; remove one of these "
                                 "edges", cycle)
            for rank, node in enumerate(order):
                node._rank = rank
            self._order, self._next_rank = order, len(order)
        return self._order

    def _cycle_nodes(self, node: Node, source: Node) -> list[str]:
        # Adding source -> node closes the path node -> ... -> source.
        path = _path(node, source)
        return [n.name for n in path]

    def _cycle_message(self, node: Node, source: Node) -> str:
        names = self._cycle_nodes(node, source)
        loop = " -> ".join(repr(n) for n in [*names, names[0]])
        return (f"connecting {source.name!r} into {node.name!r} would make a cycle {loop}; "
                "a network must be a DAG: connect an earlier node instead")

    # -- inference -----------------------------------------------------------------------------------------
    def infer(self) -> dict[str, GraphError]:
        """Bring shapes up to date, re-inferring only nodes downstream of edits. Returns errors by node."""
        self._refresh()
        return {n.name: n._error for n in self._nodes.values() if n._error is not None}

    def _refresh(self) -> None:
        """Re-infer the dirty nodes in the cached topological order, and their users only where a node's
        outputs changed: the work is proportional to what the edit touched, never a whole-graph pass."""
        if not self._dirty:
            return
        self.topological_order()  # ranks are valid from here on
        heap = [(n._rank, n) for n in self._dirty]
        heapq.heapify(heap)
        queued = set(self._dirty)
        self._dirty = set()
        while heap:
            _, node = heapq.heappop(heap)
            before = (node._outputs, None if node._error is None else str(node._error))
            shown = (node._num_params, node._packed, None if node._error is None else node._error.nodes)
            self._infer_node(node)
            after = (node._outputs, None if node._error is None else str(node._error))
            if after != before or node.op == BLOCK or shown != (node._num_params, node._packed,
                                                                 None if node._error is None else node._error.nodes):
                self._touch(node)  # a block's inside may change under the same outputs
            if after != before:
                for user in node._users:
                    if user not in queued:
                        queued.add(user)
                        heapq.heappush(heap, (user._rank, user))

    def _infer_node(self, node: Node) -> None:
        node._outputs, node._error, node._num_params = None, None, 0
        specs: list[TensorSpec] = []
        for i, port in enumerate(node._inputs):
            if port is None:
                port_name = self._port_name(node, i)
                node._error = GraphError(f"node {node.name!r}: input {port_name!r} is not connected; connect a "
                                         "node's output to it", [node.name])
                return
            source = port.node
            if source._error is not None:
                node._error = GraphError(f"node {node.name!r}: its input {source.name!r} is invalid; fix "
                                         f"{source.name!r} first", [node.name, source.name])
                return
            assert source._outputs is not None
            if port.index >= len(source._outputs):
                node._error = GraphError(
                    f"node {node.name!r} reads output {port.index} of {source.name!r}, which has "
                    f"{len(source._outputs)} output(s): connect output 0..{len(source._outputs) - 1}",
                    [node.name, source.name])
                return
            specs.append(source._outputs[port.index])
        try:
            if node.op == BLOCK:
                node._outputs, node._num_params = _infer_block(node, specs)
                node._packed = len(node._outputs) > 1
            else:
                opdef = registry.get(node.op)
                if opdef.infer is None:
                    raise GraphError(f"op {node.op!r} has no shape inference; import graphbuilder.ops")
                result = opdef.infer(opdef, node._params, specs)
                node._outputs, node._num_params, node._packed = result.outputs, result.num_params, result.packed
                self._drop_unfitting_weights(node, result.weight_shapes)
        except GraphError as e:
            connected = [p for p in node._inputs if p is not None]
            inputs = ", ".join(f"{p.node.name!r}: {s}" for p, s in zip(connected, specs, strict=False))
            got = f" with inputs {inputs}" if inputs else ""
            node._error = GraphError(f"node {node.name!r} ({node.op}){got}: {e.message}",
                                     [node.name, *e.nodes, *(p.node.name for p in node._inputs if p)])

    def _drop_unfitting_weights(self, node: Node, shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> None:
        """Keep a node's trained weights while they still fit its module (a new batch size keeps them);
        drop them when an upstream edit changed the shapes they must have (e.g. a linear's in_features).
        An op whose inference does not report state shapes keeps its weights; compile checks them."""
        saved = self.weights.get(node.name)
        if saved and shapes and {k: tuple(getattr(v, "shape", ())) for k, v in saved.items()} != dict(shapes):
            del self.weights[node.name]

    def _port_name(self, node: Node, index: int) -> str:
        if node.op == BLOCK:
            assert node.block is not None
            names = [n.name for n in node.block.inputs]
        else:
            opdef = registry.get(node.op)
            names = list(opdef.inputs)
        return names[min(index, len(names) - 1)] if names else str(index)

    def share_weights(self, node: Node | str, owner: Node | str) -> Node:
        """Make `node` use `owner`'s weights: one module called twice, as in the original model. Both must have
        the same op and params (or equal block graphs) and `owner` must come first; the tie holds in the
        file, in the compiled module (one submodule, called twice) and in every export. Returns `node`."""
        node, owner = self._own(node), self._own(owner)
        if node is owner or owner.name in self.shared:
            raise GraphError(f"node {node.name!r} cannot share the weights of {owner.name!r}: share with the node "
                             "that owns them", [node.name, owner.name])
        self.shared[node.name] = owner.name
        self.weights.pop(node.name, None)
        return node

    def tie_weights(self, weight: str, owner: str) -> None:
        """Make weight path `weight` be the tensor at `owner` (tied input and output embeddings, a module called
        from two blocks). Paths are node paths (`graphbuilder.ir.paths`: a ``/`` in a name is written ``\\/``) of
        the node names from this graph down through blocks, then the state key:
        ``g.tie_weights("lm_head/weight", "transformer/wte/weight")``. Both must exist with one shape; the tie
        holds in the file, in the compiled module (one `nn.Parameter` under both names) and in every export."""
        owner = self.tied.get(owner, owner)  # tie to the tensor's owner, never to another tie
        ties.check(self, weight, owner)
        self.tied[weight] = owner

    def _check_shared(self) -> None:
        order = {n: i for i, n in enumerate(self.topological_order())}
        for name, owner_name in self.shared.items():
            node, owner = self._nodes[name], self._nodes[owner_name]
            same = node.op == owner.op and node._params == owner._params and (
                node.block is None or (owner.block is not None and node.block.to_dict() == owner.block.to_dict()))
            if not same or order[owner] > order[node]:
                raise GraphError(f"node {name!r} shares the weights of {owner_name!r} but "
                                 f"{'comes first' if same else 'differs in op, params or block'}; make them equal, "
                                 f"or untie with del graph.shared[{name!r}]", [name, owner_name])

    def errors(self) -> dict[str, GraphError]:
        """Current inference errors by node name (empty when the graph is valid)."""
        return self.infer()

    def check(self) -> Graph:
        """Raise the first `GraphError` (in topological order) if the graph is not ready to compile."""
        errors = self.infer()
        for node in self.topological_order():
            if node.name in errors:
                raise errors[node.name]
        self._check_shared()
        for weight, owner in self.tied.items():
            ties.check(self, weight, owner)
        if not self.outputs:
            raise GraphError(f"graph {self.name!r} has no outputs: call g.output(node) on the result node")
        if not self.inputs:
            raise GraphError(f"graph {self.name!r} has no inputs: add one with g.input(name, shape=...)")
        return self

    def lint(self) -> Graph:
        """Check the invariants the IR keeps by construction (def-use links, acyclicity, names, block ports,
        inference up to date) in O(nodes + edges); raise `GraphError` saying what is broken. Returns self."""
        from graphbuilder.ir.lint import lint

        lint(self)
        return self

    # -- copies, files, listeners --------------------------------------------------------------------------
    def copy(self, name: str | None = None) -> Graph:
        """A deep structural copy (meta deep-copied, weight tensors shared until replaced)."""
        new = Graph(name or self.name)
        new.meta = _copy_meta(self.meta)
        new.weights = {k: dict(v) for k, v in self.weights.items()}
        new.shared = dict(self.shared)
        new.tied = dict(self.tied)
        mapping: dict[Node, Node] = {}
        for node in self.topological_order():
            twin = Node(new, node.name, node.op, dict(node._params),
                        block=node.block.copy() if node.block is not None else None, meta=_copy_meta(node.meta))
            twin._outputs, twin._error, twin._num_params = node._outputs, node._error, node._num_params
            twin._packed = node._packed
            mapping[node] = twin
        for node in self._nodes.values():  # keep insertion order for stable names and file order
            twin = mapping[node]
            new._nodes[twin.name] = twin
            twin._inputs = [None] * len(node._inputs)
            for i, port in enumerate(node._inputs):
                if port is not None:
                    new._wire(twin, i, Port(mapping[port.node], port.index))
        new._dirty = {mapping[n] for n in self._dirty}
        return new

    def replace_contents(self, other: Graph) -> Graph:
        """Make this graph hold `other`'s name, nodes, meta and weights, in place; returns self.

        For applying a pass's result (or an undo state) without changing the `Graph` object that users and
        listeners hold: listeners stay subscribed and get one ``{"kind": "replace", "node": None}`` event.
        `other` is left empty. Raises `GraphError` if `other` is this graph.
        """
        if other is self:
            raise GraphError(f"graph {self.name!r} cannot replace its contents with itself")
        if self._block_node is not None and len(other.inputs) != len(self.inputs):
            self._refuse_port_change(f"block {{block}} has {len(self.inputs)} input(s), its ports: its inside cannot "
                                     f"be replaced by graph {other.name!r} with {len(other.inputs)} input(s)")
        self.name, self.meta, self.weights, self.shared = other.name, other.meta, other.weights, other.shared
        self.tied = other.tied
        for node in other._nodes.values():
            node.graph = self
        self._nodes, self._dirty, self._order = other._nodes, other._dirty, None
        self._free_suffix.clear()
        self._journal.forget()
        other._nodes, other._dirty, other._order, other.weights, other.meta = {}, set(), None, {}, {}
        other._journal.forget()
        other.shared, other.tied = {}, {}
        self._emit({"kind": "replace", "node": None})
        return self

    def changed_since(self, moment: int) -> list[Node] | None:
        """Nodes of this graph (not inside its blocks) added, edited, renamed, rewired, re-inferred to new results
        or removed after tick `moment` (`graphbuilder.ir.journal.tick`), newest first; a block node is listed
        when its inside changed. None when that is no longer known (the contents were replaced, or the journal
        forgot old removals): then compare the whole graph. In-place `meta` edits are listed only after
        `Node.touch`."""
        return self._journal.since(moment)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` after every edit; returns a function that unsubscribes.

        Events are dicts with ``kind`` in {"add", "remove", "rename", "params", "inputs", "block", "replace"}
        and ``node`` (None for "replace", see `replace_contents`); a "block" event carries the inner graph's
        event under ``event``. The widget uses this to send edits
        made in Python to the browser.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            listener(event)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of this graph (see docs/format.md)."""
        from graphbuilder.ir.serialize import graph_to_dict

        return graph_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        """Build a graph from a JSON document, validating everything (raises `GraphError` with a JSON path)."""
        from graphbuilder.ir.serialize import graph_from_dict

        return graph_from_dict(data)

    def save(self, path: str) -> None:
        """Write the graph file atomically (``name.graph.json``; weights go beside it as safetensors)."""
        from graphbuilder.ir.serialize import save

        save(self, path)

    @classmethod
    def load(cls, path: str, strict: bool = True) -> Graph:
        """Read a graph file written by `save`. Never executes anything from the file.

        With ``strict=False`` a graph whose shapes do not fit still loads, with errors on its nodes.
        """
        from graphbuilder.ir.serialize import load

        return load(path, strict=strict)

    # -- display -------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        from graphbuilder.ir.render import format_listing

        return format_listing(self)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self._nodes)} nodes)"

    def summary(self) -> Any:
        """A per-node table of output shape, parameter count and FLOPs, with totals (prints as text,
        shows as HTML in notebooks)."""
        from graphbuilder.ir.render import Summary

        return Summary.of(self)

    def to_graphviz(self, expand_blocks: bool = False) -> Any:
        """A `graphviz.Digraph` picture of the graph: nodes with ops, edges with shapes, blocks collapsed."""
        from graphbuilder.ir.render import to_graphviz

        return to_graphviz(self, expand_blocks=expand_blocks)

    def _repr_svg_(self) -> str:
        return self.to_graphviz()._repr_image_svg_xml()


def _check_arity(op: str, ports: tuple[str, ...], variadic: bool, got: int, label: str) -> None:
    need = len(ports)
    ok = got >= need if variadic else got == need
    if not ok:
        expected = f"at least {need}" if variadic else str(need)
        names = ", ".join(ports) or "none"
        raise GraphError(f"node {label!r}: op {op} takes {expected} input(s) ({names}), got {got}", [label])


def _infer_block(node: Node, specs: list[TensorSpec]) -> tuple[tuple[TensorSpec, ...], int]:
    inner = node.block
    assert inner is not None
    for port_node, spec in zip(inner.inputs, specs, strict=False):
        if port_node._params.get("shape") != spec.shape or port_node._params.get("dtype") != spec.dtype:
            if spec.dtype not in DTYPES:
                raise GraphError(f"block input {port_node.name!r} cannot take dtype {spec.dtype}")
            # Adapting the block's example shapes to its context is not a user edit: no event.
            port_node._params = {**port_node._params, "shape": spec.shape, "dtype": spec.dtype}
            inner._dirty.add(port_node)
    errors = inner.infer()
    for n in inner.topological_order():
        if n.name in errors:
            e = errors[n.name]
            raise GraphError(f"inside block: {e.message}", [f"{node.name}/{name}" for name in e.nodes])
    outputs = tuple(out._outputs[0] for out in inner.outputs if out._outputs)
    return outputs, sum(n._num_params for n in inner._nodes.values())


def _nesting(graph: Graph) -> int:
    """How deep blocks nest inside `graph` (0 when it holds none); iterative."""
    deepest, stack = 0, [(graph, 0)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((n.block, depth + 1) for n in current._nodes.values() if n.block is not None)
    return deepest


def _path(start: Node, goal: Node) -> list[Node]:
    """A path start -> ... -> goal following users (breadth first)."""
    parents: dict[Node, Node | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for n in frontier:
            if n is goal:
                out = []
                cur: Node | None = n
                while cur is not None:
                    out.append(cur)
                    cur = parents[cur]
                return out[::-1]
            for u in n._users:
                if u not in parents:
                    parents[u] = n
                    nxt.append(u)
        frontier = nxt
    return [start, goal]


def find_cycle(graph: Graph) -> list[str]:
    """Names of the nodes on one cycle of `graph` (empty if acyclic), found with networkx."""
    import networkx as nx

    dag = nx.DiGraph()
    for node in graph._nodes.values():
        for port in node._inputs:
            if port is not None:
                dag.add_edge(port.node.name, node.name)
    try:
        edges = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return []
    return [u for u, _ in edges]
