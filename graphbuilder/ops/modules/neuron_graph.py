"""Torch executors for arbitrary DAGs of neurons (`NeuronGraphModule`, `DenseLevels`) and for one neuron (`Neuron`).

Paper: "Growing an architecture for a neural network", arXiv:2108.02231 (the network is any DAG of neurons,
each with a bias and an activation, each connection with a weight; no layers).

Boundary: plain torch only (imports torch, math, typing), so the standalone exporter can inline this file
and compiled models need no GraphBuilder. The topology arrives as the JSON document of a `neuron_graph`
node (validated by `graphbuilder/ops/neuron_graph.py`, which also declares the ops wrapping these classes):

    {"inputs": [0, 1], "hidden": [{"id": 3, "act": "tanh"}], "outputs": [{"id": 2, "act": "identity"}],
     "connections": [[0, 3], [1, 3], [3, 2], [0, 2]]}

Parameters: ``weight`` (E,) in the order of ``connections``, ``bias`` (H + O,) in the order hidden then
outputs. That state dict is what `graph.weights` holds for the node.

How it runs fast (no Python loop over neurons). Neurons are grouped into topological levels (level of a
neuron = 1 + the highest level of its sources; inputs are level 0) and stored as rows of one activation
buffer A (neurons, batch) in level order, so a level is a contiguous block of rows and every source of a
level lies in the rows above it. Each level is evaluated at once, dense or sparse:

    dense   z = Wc @ A[U] + b           U = the level's distinct source rows, Wc (m, |U|) the masked block
    sparse  z = S @ A[:start] + b       S (m, start) the level's weights as a sparse CSR matrix (CPU), or
                                        row gathers and `index_add_` (CUDA)

The choice depends on the device ("auto"). On CPU a level is dense when connections / (m |U|) is at least
`dense_threshold` (0.25): below that a sparse product does less work. On CUDA a level is dense unless its
block exceeds `cuda_block_limit` elements: at these sizes a GPU matmul costs about a kernel launch whatever
its density, while each cuSPARSE call spends ~0.1 ms setting up. The bias is added inside the matmul
(`addmm`) and each run of same-activation rows is activated in place, so a level is one or two kernels; the
backward uses torch's fused activation-derivative kernels (`tanh_backward`, `sigmoid_backward`,
`threshold_backward`). Dense blocks are built for all dense levels of a call with one scatter into one flat
buffer; `DenseLevels` instead keeps that buffer as the trained parameter, with a fixed connection mask applied
to its gradient, so nothing is rebuilt per call while training, and `cuda_graphed` captures forward and
backward as CUDA graphs for a fixed batch shape.

Writing level after level into one buffer is an in-place update autograd cannot differentiate, so forward and
backward are one `torch.autograd.Function` whose backward walks the levels in reverse (first derivatives).
The same reverse walk gives the per-sample Jacobian that Levenberg-Marquardt and Optimal Brain Surgeon use
(`NeuronGraphModule.jacobian`) and the Gauss-Newton diagonal of Optimal Brain Damage
(`NeuronGraphModule.gauss_newton_diagonal`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

# The activations a neuron may have; derivatives below are written from the output y and pre-activation z.
ACTIVATIONS = ("identity", "relu", "tanh", "sigmoid", "softplus", "sin")


def activate(name: str, z: torch.Tensor) -> torch.Tensor:
    """Apply activation `name` (one of `ACTIVATIONS`) to pre-activations `z`."""
    if name == "identity":
        return z
    if name == "relu":
        return torch.relu(z)
    if name == "tanh":
        return torch.tanh(z)
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "softplus":
        return torch.nn.functional.softplus(z)
    if name == "sin":
        return torch.sin(z)
    raise ValueError(f"unknown activation {name!r}; use one of {ACTIVATIONS}")


def activate_into(name: str, z: torch.Tensor, out: torch.Tensor) -> None:
    """Write act(z) into `out` (which may be `z` itself) without a temporary where torch allows it."""
    if name == "identity":
        if out.data_ptr() != z.data_ptr():
            out.copy_(z)
    elif name == "relu":
        torch.clamp_min(z, 0, out=out)
    elif name == "tanh":
        torch.tanh(z, out=out)
    elif name == "sigmoid":
        torch.sigmoid(z, out=out)
    elif name == "sin":
        torch.sin(z, out=out)
    else:
        out.copy_(activate(name, z))


def activate_grad(name: str, y: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
    """d act(z) / dz, from the output `y` = act(z) where that suffices; `z` is needed for sin only."""
    if name == "identity":
        return torch.ones_like(y)
    if name == "relu":
        return (y > 0).to(y.dtype)
    if name == "tanh":
        return 1 - y * y
    if name == "sigmoid":
        return y * (1 - y)
    if name == "softplus":
        return -torch.expm1(-y)  # sigmoid(z) = 1 - exp(-softplus(z))
    if name == "sin":
        assert z is not None
        return torch.cos(z)
    raise ValueError(f"unknown activation {name!r}; use one of {ACTIVATIONS}")


def activation_backward(name: str, grad: torch.Tensor, y: torch.Tensor, z: torch.Tensor | None,
                        out: torch.Tensor) -> None:
    """out = grad * act'(z), in one fused kernel where torch has one (tanh, sigmoid, relu)."""
    if name == "identity":
        out.copy_(grad)
    elif name == "tanh":
        out.copy_(torch.ops.aten.tanh_backward(grad, y))
    elif name == "sigmoid":
        out.copy_(torch.ops.aten.sigmoid_backward(grad, y))
    elif name == "relu":
        out.copy_(torch.ops.aten.threshold_backward(grad, y, 0))
    else:
        torch.mul(grad, activate_grad(name, y, z), out=out)


class _Level:
    """One topological level: rows [start, stop) of the buffer; its connections [e0, e1) in level order
    (sorted by target, then source row); its distinct source rows U[u0:u1]; its CSR row pointers
    crow[c0:c0 + m + 1] and those of its transpose on U crow_t[t0:t0 + |U| + 1]; runs of rows sharing an
    activation; whether it runs dense on CPU and on CUDA."""

    __slots__ = ("start", "stop", "e0", "e1", "u0", "u1", "c0", "t0", "dense_cpu", "dense_cuda", "acts", "linear")

    def __init__(self, start: int, stop: int, e0: int, e1: int, u0: int, u1: int, c0: int, t0: int,
                 dense_cpu: bool, dense_cuda: bool, acts: list[tuple[str, int, int]]) -> None:
        self.start, self.stop, self.e0, self.e1, self.u0, self.u1 = start, stop, e0, e1, u0, u1
        self.c0, self.t0 = c0, t0
        self.dense_cpu, self.dense_cuda = dense_cpu, dense_cuda
        self.acts = acts
        self.linear = all(name == "identity" for name, _, _ in acts)

    @property
    def block(self) -> tuple[int, int]:
        """Shape of the dense block: (neurons of the level, distinct source rows)."""
        return self.stop - self.start, self.u1 - self.u0


class _Layout:
    """Which levels run dense on one device and where their blocks sit in one flat buffer: `dense[k]`,
    `offset[k]` (start of level k's block; dense levels only), `size` (the buffer's length), and the scatter
    that fills it from level-ordered weights: `edges` (level-order positions of the dense levels'
    connections) and `slots` (their positions in the buffer)."""

    def __init__(self, module: NeuronGraphModule, dense: list[bool], device: torch.device) -> None:
        self.dense = dense
        self.offset: list[int] = []
        edges, slots, size = [], [], 0
        dst = module.dst_local.tolist()
        src = module.u_local.tolist()
        for lv, d in zip(module.levels, dense, strict=True):
            self.offset.append(size)
            if not d:
                continue
            m, u = lv.block
            for e in range(lv.e0, lv.e1):
                edges.append(e)
                slots.append(size + dst[e] * u + src[e])
            size += m * u
        self.size = size
        self.all_dense = all(dense)
        self.edges = torch.tensor(edges, dtype=torch.long, device=device)
        self.slots = torch.tensor(slots, dtype=torch.long, device=device)

    def blocks(self, ws: torch.Tensor) -> torch.Tensor:
        """The flat buffer of dense blocks for level-ordered weights `ws`: zeros except at connections."""
        flat = ws.new_zeros((self.size,))
        if self.size:
            flat[self.slots] = ws if self.all_dense else ws.index_select(0, self.edges)
        return flat


class NeuronGraphModule(nn.Module):
    """Evaluate a DAG of neurons on a batch: (N, n_inputs) -> (N, n_outputs), level by level.

    Args:
        inputs: input neuron ids, in column order.
        hidden: (id, activation) of each hidden neuron.
        outputs: (id, activation) of each output neuron, in column order.
        connections: (source id, target id) pairs; the topology must be acyclic (assumed validated).
        mode: "auto" (dense or sparse per level by device and density), "dense" or "sparse" (every level).
        dense_threshold: in "auto" on CPU, a level runs dense when its connection density is at least this.
        cuda_block_limit: in "auto" on CUDA, a level runs dense unless its block has more elements than this.

    `from_topology` builds one from the JSON document of the module docstring. The arguments are plain lists
    and tuples so an exporter can write the constructor call as source.
    """

    @classmethod
    def from_topology(cls, topology: dict[str, Any], mode: str = "auto", dense_threshold: float = 0.25,
                      cuda_block_limit: int = 1 << 24) -> NeuronGraphModule:
        """Build from a topology document ``{"inputs", "hidden", "outputs", "connections"}``."""
        return cls(*cls.arguments(topology), mode=mode, dense_threshold=dense_threshold,
                   cuda_block_limit=cuda_block_limit)

    @staticmethod
    def arguments(topology: dict[str, Any]) -> tuple[list[int], list[tuple[int, str]], list[tuple[int, str]],
                                                     list[tuple[int, int]]]:
        """(inputs, hidden, outputs, connections) constructor arguments from a topology document."""
        return ([int(i) for i in topology["inputs"]],
                [(int(u["id"]), str(u["act"])) for u in topology.get("hidden", [])],
                [(int(u["id"]), str(u["act"])) for u in topology["outputs"]],
                [(int(s), int(d)) for s, d in topology["connections"]])

    def __init__(self, inputs: list[int], hidden: list[tuple[int, str]], outputs: list[tuple[int, str]],
                 connections: list[tuple[int, int]], mode: str = "auto", dense_threshold: float = 0.25,
                 cuda_block_limit: int = 1 << 24) -> None:
        super().__init__()
        if mode not in ("auto", "dense", "sparse"):
            raise ValueError(f"mode must be 'auto', 'dense' or 'sparse', got {mode!r}")
        inputs = [int(i) for i in inputs]
        units = [(int(i), str(a)) for i, a in list(hidden) + list(outputs)]
        connections = [(int(s), int(d)) for s, d in connections]
        self.n_inputs, self.n_outputs = len(inputs), len(outputs)
        self.mode, self.dense_threshold, self.cuda_block_limit = mode, float(dense_threshold), int(cuda_block_limit)
        self.weight = nn.Parameter(torch.empty(len(connections)))
        self.bias = nn.Parameter(torch.empty(len(units)))

        act = dict(units)
        bias_pos = {i: k for k, (i, _) in enumerate(units)}
        incoming: dict[int, list[int]] = {i: [] for i in act}
        for e, (_, d) in enumerate(connections):
            incoming[d].append(e)
        # Levels by Kahn's algorithm (the topology is acyclic; a cycle would leave neurons unplaced).
        level = {i: 0 for i in inputs}
        pending = {i: len(incoming[i]) for i in act}
        users: dict[int, list[int]] = {}
        for s, d in connections:
            users.setdefault(s, []).append(d)
        frontier = list(inputs) + [i for i in act if pending[i] == 0]
        for i in act:
            if pending[i] == 0:
                level[i] = 1
        placed = 0
        while frontier:
            nxt = []
            for s in frontier:
                placed += 1
                for d in users.get(s, ()):
                    level[d] = max(level.get(d, 1), level[s] + 1)
                    pending[d] -= 1
                    if pending[d] == 0:
                        nxt.append(d)
            frontier = nxt
        if placed != len(inputs) + len(act):
            raise ValueError("the neuron topology has a cycle; validate it with graphbuilder's NeuronGraph")
        depth = max((level[i] for i in act), default=0)
        by_level: list[list[int]] = [[] for _ in range(depth + 1)]
        for i in act:
            by_level[level[i]].append(i)
        # Rows: inputs first, then each level with its neurons grouped by activation (contiguous runs).
        row = {i: r for r, i in enumerate(inputs)}
        order: list[int] = []
        for members in by_level[1:]:
            members.sort(key=lambda i: (act[i], bias_pos[i]))
            for i in members:
                row[i] = len(inputs) + len(order)
                order.append(i)
        self.levels: list[_Level] = []
        w_perm: list[int] = []  # level-ordered edge -> position in `weight`
        src_rows: list[int] = []
        dst_local: list[int] = []
        u_local: list[int] = []
        u_rows: list[int] = []
        crow: list[int] = []
        crow_t: list[int] = []
        col_t: list[int] = []  # transpose (source-major) order: target row of each edge ...
        perm_t: list[int] = []  # ... and its index in level order
        start = len(inputs)
        for members in by_level[1:]:
            if not members:
                continue
            stop = start + len(members)
            edges = sorted((row[d] - start, row[s], e) for i in members for e in incoming[i]
                           for s, d in [connections[e]])
            e0, u0, c0, t0 = len(w_perm), len(u_rows), len(crow), len(crow_t)
            distinct = sorted({r for _, r, _ in edges})
            where = {r: k for k, r in enumerate(distinct)}
            counts = [0] * (len(members) + 1)
            for d_loc, s_row, e in edges:
                w_perm.append(e)
                src_rows.append(s_row)
                dst_local.append(d_loc)
                u_local.append(where[s_row])
                counts[d_loc + 1] += 1
            u_rows.extend(distinct)
            crow.extend(_cumsum(counts))
            by_source = sorted(range(len(edges)), key=lambda k: (edges[k][1], edges[k][0]))
            counts_t = [0] * (len(distinct) + 1)
            for k in by_source:
                counts_t[where[edges[k][1]] + 1] += 1
                col_t.append(edges[k][0])
                perm_t.append(k)
            crow_t.extend(_cumsum(counts_t))
            cells = len(members) * len(distinct)
            density = len(edges) / max(1, cells)
            forced = {"dense": True, "sparse": False}.get(mode)
            dense_cpu = forced if forced is not None else density >= self.dense_threshold
            dense_cuda = forced if forced is not None else cells <= self.cuda_block_limit
            runs: list[tuple[str, int, int]] = []
            for k, i in enumerate(members):
                if runs and runs[-1][0] == act[i]:
                    runs[-1] = (act[i], runs[-1][1], k + 1)
                else:
                    runs.append((act[i], k, k + 1))
            self.levels.append(_Level(start, stop, e0, len(w_perm), u0, len(u_rows), c0, t0, dense_cpu, dense_cuda,
                                      runs))
            start = stop
        self.n_rows = start
        self.keep_z = any(name == "sin" for lv in self.levels for name, _, _ in lv.acts)
        long = torch.long
        for name, values in (("w_perm", w_perm), ("src_rows", src_rows), ("dst_local", dst_local),
                             ("u_local", u_local), ("u_rows", u_rows), ("crow", crow), ("crow_t", crow_t),
                             ("col_t", col_t), ("perm_t", perm_t),
                             ("bias_perm", [bias_pos[i] for i in order]),
                             ("out_rows", [row[int(i)] for i, _ in outputs])):
            self.register_buffer(name, torch.tensor(values, dtype=long), persistent=False)
        fan_in = [0] * len(units)
        for _, d in connections:
            fan_in[bias_pos[d]] += 1
        self._edge_fan_in = [fan_in[bias_pos[d]] for _, d in connections]
        self._layouts: dict[tuple[torch.device, bool], _Layout] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) per connection (fan-in of its target), as nn.Linear."""
        if self.weight.is_meta:
            return
        with torch.no_grad():
            if self.weight.numel():
                bound = torch.tensor([1.0 / math.sqrt(f) for f in self._edge_fan_in], dtype=self.weight.dtype)
                self.weight.copy_((torch.rand_like(self.weight) * 2 - 1) * bound.to(self.weight.device))
            self.bias.uniform_(-0.1, 0.1)

    def extra_repr(self) -> str:
        dense = sum(lv.dense_cpu for lv in self.levels)
        dense_cuda = sum(lv.dense_cuda for lv in self.levels)
        return (f"inputs={self.n_inputs}, outputs={self.n_outputs}, neurons={self.bias.numel()}, "
                f"connections={self.weight.numel()}, levels={len(self.levels)} ({dense} dense on CPU, "
                f"{dense_cuda} on CUDA)")

    def dense_levels(self, device: torch.device | str) -> list[bool]:
        """Which levels run dense on `device` (the "auto" choice, or every/no level in "dense"/"sparse")."""
        cuda = torch.device(device).type == "cuda"
        return [lv.dense_cuda if cuda else lv.dense_cpu for lv in self.levels]

    def _layout(self, device: torch.device, all_dense: bool = False) -> _Layout:
        key = (device, all_dense)
        if key not in self._layouts:
            flags = [True] * len(self.levels) if all_dense else self.dense_levels(device)
            self._layouts[key] = _Layout(self, flags, device)
        return self._layouts[key]

    def _apply(self, fn: Any, recurse: bool = True) -> NeuronGraphModule:
        self._layouts = {}  # index tensors live on the old device
        return super()._apply(fn, recurse)

    # -- forward -------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_inputs) -> (N, n_outputs)."""
        if x.dim() != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"expected input of shape (N, {self.n_inputs}), got {tuple(x.shape)}")
        if x.is_meta or self.weight.is_meta:
            return x.new_empty((x.shape[0], self.n_outputs), dtype=self.weight.dtype)
        x = x.to(self.weight.dtype)
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad
                                                  or self.bias.requires_grad)
        if not needs_grad:
            a, _ = self._propagate(x, self.weight, self.bias)
            return a.index_select(0, self.out_rows).t()
        return _NeuronGraphFunction.apply(x, self.weight, self.bias, self)

    def neuron_values(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of every neuron without gradients, (N, neurons) in topology order: inputs, then
        hidden, then outputs (for inspection, tests and fitting new neurons to a residual)."""
        with torch.no_grad():
            a, _ = self._propagate(x.to(self.weight.dtype), self.weight, self.bias)
        return a.index_select(0, self._topology_rows(a.device)).t()

    def _topology_rows(self, device: torch.device) -> torch.Tensor:
        """Buffer row of each neuron in topology order (inputs, hidden, outputs)."""
        rows = list(range(self.n_inputs)) + [0] * self.bias.numel()
        for k, p in enumerate(self.bias_perm.tolist()):
            rows[self.n_inputs + p] = self.n_inputs + k
        return torch.tensor(rows, dtype=torch.long, device=device)

    def _propagate(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A (rows, N) post-activations and Z (rows - inputs, N) pre-activations or None (see `_forward_walk`)."""
        layout = self._layout(x.device)
        ws = weight.index_select(0, self.w_perm)  # (E,) level-sorted
        return _forward_walk(self, x, ws, bias.index_select(0, self.bias_perm), layout.blocks(ws), layout)

    # -- derivatives -----------------------------------------------------------------------------------------
    def _backprop(self, a: torch.Tensor, z_all: torch.Tensor | None, weight: torch.Tensor,
                  grad_out: torch.Tensor, squared: bool = False, keep_dz: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Grads of x (N, n_in), weight (E,) and bias (H+O,) for `grad_out` (N, O) (see `_backward_walk`)."""
        layout = self._layout(a.device)
        ws = weight.index_select(0, self.w_perm)
        gx, gws, gb = _backward_walk(self, a, z_all, ws, layout.blocks(ws), layout, grad_out, squared=squared,
                                     keep_dz=keep_dz)
        gw = torch.zeros_like(gws).index_copy_(0, self.w_perm, gws)
        gbias = torch.zeros_like(gb).index_copy_(0, self.bias_perm, gb)
        return gx, gw, gbias

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample derivatives of every output by every parameter: (N, O, E + H + O), columns in the state
        dict order (``weight`` then ``bias``). One reverse walk per output: with dz the derivative of output o
        by each neuron's pre-activation, d y_no / d w_(s->d) = dz_dn * a_sn and d y_no / d b_d = dz_dn."""
        with torch.no_grad():
            x = x.to(self.weight.dtype)
            a, z_all = self._propagate(x, self.weight, self.bias)
            n, batch = self.n_inputs, x.shape[0]
            src = self.src_rows
            dst = self.dst_local + torch.repeat_interleave(
                torch.tensor([lv.start - n for lv in self.levels], dtype=torch.long, device=a.device),
                torch.tensor([lv.e1 - lv.e0 for lv in self.levels], dtype=torch.long, device=a.device))
            out = a.new_empty((batch, self.n_outputs, self.weight.numel() + self.bias.numel()))
            dz = a.new_empty((self.n_rows - n, batch))
            for o in range(self.n_outputs):
                onehot = a.new_zeros((batch, self.n_outputs))
                onehot[:, o] = 1
                self._backprop(a, z_all, self.weight, onehot, keep_dz=dz)
                jw = dz.index_select(0, dst) * a.index_select(0, src)  # (E, N) level order
                out[:, o, :self.weight.numel()].index_copy_(1, self.w_perm, jw.t())
                out[:, o, self.weight.numel():].index_copy_(1, self.bias_perm, dz.t())
        return out

    def gauss_newton_diagonal(self, x: torch.Tensor) -> torch.Tensor:
        """sum_n sum_o (d y_no / d w_k)^2 for every connection k, shape (E,).

        For the loss mean_n sum_o (y_no - t_no)^2 the Gauss-Newton (Levenberg-Marquardt) approximation of the
        Hessian diagonal is 2/N times this: the approximation Optimal Brain Damage uses (LeCun et al. 1990).
        """
        with torch.no_grad():
            x = x.to(self.weight.dtype)
            a, z_all = self._propagate(x, self.weight, self.bias)
            total = torch.zeros_like(self.weight)
            for o in range(self.n_outputs):
                onehot = x.new_zeros((x.shape[0], self.n_outputs))
                onehot[:, o] = 1
                total += self._backprop(a, z_all, self.weight, onehot, squared=True)[1]
        return total


def _cumsum(counts: list[int]) -> list[int]:
    total, out = 0, []
    for c in counts:
        total += c
        out.append(total)
    return out


def _csr(plan: NeuronGraphModule, lv: _Level, ws: torch.Tensor) -> torch.Tensor:
    """A level's weights as a sparse CSR matrix (m, start): rows are its neurons, columns earlier rows."""
    m = lv.stop - lv.start
    return torch.sparse_csr_tensor(plan.crow[lv.c0:lv.c0 + m + 1], plan.src_rows[lv.e0:lv.e1], ws[lv.e0:lv.e1],
                                   (m, lv.start), check_invariants=False)


def _csr_t(plan: NeuronGraphModule, lv: _Level, ws: torch.Tensor) -> torch.Tensor:
    """The transpose of `_csr` restricted to the level's source rows U: (|U|, m) in CSR layout."""
    m, u = lv.block
    values = ws[lv.e0:lv.e1].index_select(0, plan.perm_t[lv.e0:lv.e1])
    return torch.sparse_csr_tensor(plan.crow_t[lv.t0:lv.t0 + u + 1], plan.col_t[lv.e0:lv.e1], values, (u, m),
                                   check_invariants=False)


def _forward_walk(plan: NeuronGraphModule, x: torch.Tensor, ws: torch.Tensor | None, b: torch.Tensor,
                  blocks: torch.Tensor, layout: _Layout) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A (rows, N) post-activations, level by level, and the pre-activations Z (rows - inputs, N) when some
    neuron needs them for its derivative (sin), else None. `ws` level-ordered weights (used by sparse levels),
    `b` (rows - inputs,) biases in row order, `blocks` the flat dense blocks of `layout`."""
    n, batch = plan.n_inputs, x.shape[0]
    a = x.new_empty((plan.n_rows, batch))
    z_all = x.new_empty((plan.n_rows - n, batch)) if plan.keep_z else None
    a[:n] = x.t()
    for lv, dense, off in zip(plan.levels, layout.dense, layout.offset, strict=True):
        m, u = lv.block
        b_l = b[lv.start - n:lv.stop - n, None]  # (m, 1)
        out = a[lv.start:lv.stop]  # (m, N): pre-activations are written here, then activated in place
        if lv.e1 == lv.e0:
            out.copy_(b_l.expand(m, batch))
        elif dense:
            au = a.index_select(0, plan.u_rows[lv.u0:lv.u1])  # (|U|, N)
            torch.addmm(b_l, blocks[off:off + m * u].view(m, u), au, out=out)  # bias fused into the matmul
        elif a.is_cuda:  # gathers: cheaper to launch than a cuSPARSE call
            assert ws is not None
            src, dst = plan.src_rows[lv.e0:lv.e1], plan.dst_local[lv.e0:lv.e1]
            out.copy_(b_l.expand(m, batch))
            out.index_add_(0, dst, a.index_select(0, src) * ws[lv.e0:lv.e1, None])
        else:
            assert ws is not None
            torch.addmm(b_l, _csr(plan, lv, ws), a[:lv.start], out=out)  # (m, start) sparse @ (start, N)
        if z_all is not None:
            z_all[lv.start - n:lv.stop - n] = out
        if not lv.linear:
            for name, k0, k1 in lv.acts:
                activate_into(name, out[k0:k1], out[k0:k1])
    return a, z_all


def _backward_walk(plan: NeuronGraphModule, a: torch.Tensor, z_all: torch.Tensor | None, ws: torch.Tensor | None,
                   blocks: torch.Tensor, layout: _Layout, grad_out: torch.Tensor, *, squared: bool = False,
                   keep_dz: torch.Tensor | None = None, block_grads: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reverse walk over the levels: grads of x (N, n_in), of the level-ordered weights (E,) and of the
    row-ordered biases (rows - inputs,).

    With `squared`, weight and bias entries sum the squares of the per-sample terms instead (sum_n
    (dy_n/dw)^2: the Gauss-Newton diagonal when `grad_out` selects one output). `keep_dz` (rows - inputs, N)
    receives every level's pre-activation gradient. With `block_grads` (the flat buffer's shape), dense
    levels write their whole (m, |U|) weight gradient there instead of gathering it at the connections."""
    n, batch = plan.n_inputs, a.shape[1]
    g = a.new_zeros((plan.n_rows, batch))  # dLoss/dA, rows filled in as later levels are done
    g.index_copy_(0, plan.out_rows, grad_out.t())  # output rows are distinct neurons
    gws = a.new_zeros((plan.w_perm.numel(),))
    gb = a.new_zeros((plan.n_rows - n,))
    for lv, dense, off in zip(reversed(plan.levels), reversed(layout.dense), reversed(layout.offset), strict=True):
        m, u_size = lv.block
        if lv.linear:
            dz = g[lv.start:lv.stop]  # (m, N): identity activations pass the gradient through
        else:
            dz = torch.empty_like(g[lv.start:lv.stop])
            for name, k0, k1 in lv.acts:
                r0, r1 = lv.start + k0, lv.start + k1
                zl = None if z_all is None else z_all[r0 - n:r1 - n]
                activation_backward(name, g[r0:r1], a[r0:r1], zl, dz[k0:k1])
        if keep_dz is not None:
            keep_dz[lv.start - n:lv.stop - n] = dz
        gb[lv.start - n:lv.stop - n] = (dz * dz).sum(1) if squared else dz.sum(1)
        if lv.e1 == lv.e0:
            continue
        u = plan.u_rows[lv.u0:lv.u1]
        if dense:
            au = a.index_select(0, u)  # (|U|, N)
            gwc = (dz * dz) @ (au * au).t() if squared else dz @ au.t()  # (m, |U|)
            if block_grads is not None:
                block_grads[off:off + m * u_size] = gwc.reshape(-1)
            else:
                gws[lv.e0:lv.e1] = gwc[plan.dst_local[lv.e0:lv.e1], plan.u_local[lv.e0:lv.e1]]
            g.index_add_(0, u, blocks[off:off + m * u_size].view(m, u_size).t() @ dz)  # back to the source rows
        elif a.is_cuda:  # gathers: a few cheap kernels (cuSPARSE calls cost ~0.1 ms each to set up)
            assert ws is not None
            src, dst = plan.src_rows[lv.e0:lv.e1], plan.dst_local[lv.e0:lv.e1]
            dzd = dz.index_select(0, dst)  # (E_l, N)
            term = a.index_select(0, src) * dzd
            gws[lv.e0:lv.e1] = (term * term).sum(1) if squared else term.sum(1)
            g.index_add_(0, src, dzd * ws[lv.e0:lv.e1, None])
        else:  # CPU: sparse kernels, no (E_l, N) temporaries
            assert ws is not None
            prefix = a[:lv.start]  # (start, N)
            left, right = (dz * dz, (prefix * prefix).t()) if squared else (dz, prefix.t())
            # sampled dense-dense product: (dz @ prefix^T) only at the level's connections, in CSR order
            gws[lv.e0:lv.e1] = torch.sparse.sampled_addmm(_csr(plan, lv, ws), left, right, beta=0.0).values()
            back = (_csr_t(plan, lv, ws) @ dz).contiguous()  # (|U|, m) sparse @ (m, N)
            g.index_add_(0, u, back)  # index_add_ is fast only with a contiguous source
    return g[:n].t(), gws, gb


class _NeuronGraphFunction(torch.autograd.Function):
    """Forward and backward of `NeuronGraphModule` as one autograd node (first derivatives)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                module: NeuronGraphModule) -> torch.Tensor:
        a, z_all = module._propagate(x, weight, bias)
        ctx.save_for_backward(a, z_all, weight)
        ctx.module = module
        return a.index_select(0, module.out_rows).t().contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, z_all, weight = ctx.saved_tensors
        gx, gw, gb = ctx.module._backprop(a, z_all, weight, grad_out)
        return (gx if ctx.needs_input_grad[0] else None, gw if ctx.needs_input_grad[1] else None,
                gb if ctx.needs_input_grad[2] else None, None)


class DenseLevels(nn.Module):
    """A `NeuronGraphModule` in its training layout: every level's weights kept as a persistent dense block,
    all blocks in one flat parameter ``blocks``, with a fixed 0/1 ``mask`` of the connections; biases in row
    order. Nothing is rebuilt per call, so forward and backward are a fixed sequence of kernels (what
    `cuda_graphed` captures).

    The gradient of ``blocks`` is masked, so entries off the connections get zero gradient and, starting at
    zero, stay zero under SGD, Adam (zero moments give a zero step) or L-BFGS (its directions are combinations
    of gradients); weight decay would move them, so do not use it. `write_back` copies the trained weights into
    the module's ``weight`` and ``bias``. Computes the same function as the module: (N, n_inputs) -> (N, O).
    """

    def __init__(self, module: NeuronGraphModule) -> None:
        super().__init__()
        object.__setattr__(self, "plan", module)  # not a submodule: its own weight and bias are not trained here
        layout = module._layout(module.weight.device, all_dense=True)
        with torch.no_grad():
            ws = module.weight.detach().index_select(0, module.w_perm)
            self.blocks = nn.Parameter(layout.blocks(ws))
            self.bias = nn.Parameter(module.bias.detach().index_select(0, module.bias_perm).clone())
            self.register_buffer("mask", layout.blocks(torch.ones_like(ws)), persistent=False)

    def _apply(self, fn: Any, recurse: bool = True) -> DenseLevels:
        self.plan._apply(fn, recurse)  # the index buffers follow the blocks to their device
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_inputs) -> (N, n_outputs)."""
        return _DenseLevelsFunction.apply(x.to(self.blocks.dtype), self.blocks, self.bias, self)

    def write_back(self) -> None:
        """Copy the trained blocks and biases into the module's ``weight`` and ``bias`` (state dict order)."""
        plan = self.plan
        layout = plan._layout(self.blocks.device, all_dense=True)
        with torch.no_grad():
            plan.weight.index_copy_(0, plan.w_perm, self.blocks[layout.slots].to(plan.weight))
            plan.bias.index_copy_(0, plan.bias_perm, self.bias.to(plan.bias))


class _DenseLevelsFunction(torch.autograd.Function):
    """Forward and backward of `DenseLevels` as one autograd node (first derivatives, masked block grads)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, blocks: torch.Tensor, bias: torch.Tensor, owner: DenseLevels
                ) -> torch.Tensor:
        plan = owner.plan
        layout = plan._layout(blocks.device, all_dense=True)
        a, z_all = _forward_walk(plan, x, None, bias, blocks, layout)
        ctx.save_for_backward(a, z_all, blocks)
        ctx.owner = owner
        return a.index_select(0, plan.out_rows).t().contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        a, z_all, blocks = ctx.saved_tensors
        owner = ctx.owner
        layout = owner.plan._layout(blocks.device, all_dense=True)
        gblocks = torch.zeros_like(blocks)
        gx, _, gb = _backward_walk(owner.plan, a, z_all, None, blocks, layout, grad_out, block_grads=gblocks)
        return (gx if ctx.needs_input_grad[0] else None, gblocks.mul_(owner.mask) if ctx.needs_input_grad[1]
                else None, gb if ctx.needs_input_grad[2] else None, None)


def cuda_graphed(module: nn.Module, example: torch.Tensor) -> nn.Module:
    """`module` (a `NeuronGraphModule` or `DenseLevels` on CUDA) with forward and backward captured as CUDA
    graphs for inputs shaped like `example` (torch.cuda.make_graphed_callables): each call replays the
    captured kernels instead of launching them one by one from Python. Only for a fixed batch shape, and only
    while the topology (and so the kernel sequence) stays fixed."""
    if not example.is_cuda:
        raise ValueError("CUDA graphs need a CUDA module and a CUDA example input")
    return torch.cuda.make_graphed_callables(module, (example,))


class Neuron(nn.Module):
    """One neuron: act(sum_k w_k x_k + b) over its inputs concatenated along dim 1: [(N, k_i)...] -> (N, 1).

    The `neuron` op builds it; a neuron graph expanded to one node per neuron is made of these.
    """

    def __init__(self, in_features: int, activation: str = "identity") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {ACTIVATIONS}")
        self.in_features, self.activation = in_features, activation
        self.weight = nn.Parameter(torch.empty(in_features))
        self.bias = nn.Parameter(torch.empty(1))
        if not self.weight.is_meta:
            bound = 1.0 / math.sqrt(max(1, in_features))
            with torch.no_grad():
                self.weight.uniform_(-bound, bound)
                self.bias.uniform_(-bound, bound)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(inputs, dim=1) if len(inputs) > 1 else inputs[0]  # (N, in_features)
        return activate(self.activation, x @ self.weight[:, None] + self.bias)  # (N, 1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, activation={self.activation!r}"
