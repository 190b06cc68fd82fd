"""The neuron_graph op, its executor and the NeuronGraph editing API (arXiv:2108.02231).

The executor is checked against a slow pure-Python evaluator written here (one neuron at a time, math
functions on floats) on 100 random DAGs in float64, and its custom backward against autograd through a
per-neuron torch evaluation. Edits are checked for acyclicity with networkx (independent of NeuronGraph).
"""

from __future__ import annotations

import math
import random

import networkx as nx
import pytest
import torch
from neuron_reference import reference_forward

import graphbuilder as gb
from graphbuilder.ops.modules.neuron_graph import ACTIVATIONS, DenseLevels, NeuronGraphModule, cuda_graphed
from graphbuilder.search import NeuronGraph

PY_ACT = {"identity": lambda z: z, "relu": lambda z: max(z, 0.0), "tanh": math.tanh,
          "sigmoid": lambda z: 1 / (1 + math.exp(-z)), "softplus": lambda z: math.log1p(math.exp(z)),
          "sin": math.sin}

def reference(ng: NeuronGraph, x: list[list[float]]) -> list[list[float]]:
    """Slow reference: every sample, every neuron in a topological order found here by repeated scanning."""
    out = []
    for row in x:
        value = {i: row[k] for k, i in enumerate(ng.inputs)}
        pending = [n for n in ng.neurons if n not in value]
        while pending:
            for n in list(pending):
                srcs = ng.sources(n)
                if all(s in value for s in srcs):
                    z = ng.bias(n) + sum(ng.weight(s, n) * value[s] for s in srcs)
                    value[n] = PY_ACT[ng.activation(n)](z)
                    pending.remove(n)
        out.append([value[o] for o in ng.outputs])
    return out


def autograd_reference(ng: NeuronGraph, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Per-neuron torch evaluation (autograd does the backward), parameters in the state-dict layout."""
    return reference_forward(ng, x, torch.cat([weight, bias]))


def random_dag(seed: int) -> NeuronGraph:
    """A random DAG of 1-5 inputs, 0-25 hidden, 1-4 outputs, deep (random order) or 1-4 random levels."""
    rnd = random.Random(seed)
    n_in, n_hidden, n_out = rnd.randint(1, 5), rnd.randint(0, 25), rnd.randint(1, 4)
    depth = None if seed % 3 else rnd.randint(1, 4)
    k = rnd.randint(0, 90)
    while True:
        try:
            return NeuronGraph.random(n_in, n_hidden, n_out, k, seed=seed, depth=depth)
        except gb.GraphError:  # fewer connections possible than asked
            k //= 2


def is_acyclic(ng: NeuronGraph) -> bool:
    g = nx.DiGraph()
    g.add_nodes_from(ng.neurons)
    g.add_edges_from(ng.connections)
    return nx.is_directed_acyclic_graph(g) and not any(d in ng.inputs for _, d in ng.connections)


@pytest.mark.parametrize("mode", ["auto", "dense", "sparse"])
def test_executor_matches_python_reference_on_100_dags(mode: str) -> None:
    worst = 0.0
    for seed in range(100):
        ng = random_dag(seed)
        x = torch.randn(5, len(ng.inputs), dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        got = ng.to_module(mode=mode, dtype=torch.float64)(x)
        want = torch.tensor(reference(ng, x.tolist()), dtype=torch.float64)
        assert got.shape == want.shape
        worst = max(worst, float((got.detach() - want).abs().max()))
    assert worst < 1e-6, worst


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_backward_matches_autograd_reference(mode: str) -> None:
    for seed in range(25):
        ng = random_dag(seed + 1000)
        module = ng.to_module(mode=mode, dtype=torch.float64)
        x = torch.randn(6, len(ng.inputs), dtype=torch.float64, requires_grad=True)
        y = module(x)
        g = torch.randn_like(y)
        got = torch.autograd.grad(y, (x, module.weight, module.bias), g, allow_unused=True)
        w = module.weight.detach().clone().requires_grad_()
        b = module.bias.detach().clone().requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        want = torch.autograd.grad(autograd_reference(ng, x2, w, b), (x2, w, b), g, allow_unused=True)
        for a, r in zip(got, want, strict=True):
            a = torch.zeros(0) if a is None else a
            r = torch.zeros_like(a) if r is None else r
            assert torch.allclose(a, r, atol=1e-10), (seed, a, r)


def test_gauss_newton_diagonal_is_sum_of_squared_per_sample_gradients() -> None:
    ng = NeuronGraph.random(3, 6, 2, 20, seed=3, activations=("tanh", "sin", "softplus", "identity"))
    module = ng.to_module(dtype=torch.float64)
    x = torch.randn(7, 3, dtype=torch.float64)
    want = torch.zeros_like(module.weight)
    for n in range(7):
        for o in range(2):
            (grad,) = torch.autograd.grad(module(x[n:n + 1])[0, o], module.weight)
            want += grad ** 2
    assert torch.allclose(module.gauss_newton_diagonal(x), want, atol=1e-12)


def test_dense_levels_keep_persistent_masked_blocks() -> None:
    """The training layout computes the same function and gradients as the module, its off-connection block
    entries get zero gradient (so they stay zero under Adam), and write_back restores the state dict layout."""
    for seed in range(6):
        ng = random_dag(seed + 200)
        module = ng.to_module(dtype=torch.float64)
        blocks = DenseLevels(module)
        assert [name for name, _ in blocks.named_parameters()] == ["blocks", "bias"]
        x = torch.randn(7, len(ng.inputs), dtype=torch.float64)
        assert torch.allclose(blocks(x), module(x), atol=1e-12)
        g = torch.randn(7, len(ng.outputs), dtype=torch.float64)
        grads = torch.autograd.grad(blocks(x), (blocks.blocks, blocks.bias), g, allow_unused=True)
        want = torch.autograd.grad(module(x), (module.weight, module.bias), g, allow_unused=True)
        if grads[0] is not None and want[0] is not None:
            assert float(grads[0][blocks.mask == 0].abs().sum()) == 0.0
            slots = module._layout(x.device, all_dense=True).slots
            assert torch.allclose(grads[0][slots], want[0][module.w_perm], atol=1e-12)
        opt = torch.optim.Adam(blocks.parameters(), lr=0.05)
        for _ in range(5):
            opt.zero_grad()
            blocks(x).square().mean().backward()
            opt.step()
        assert float(blocks.blocks.detach()[blocks.mask == 0].abs().sum()) == 0.0  # still only the connections
        blocks.write_back()
        assert torch.allclose(module(x), blocks(x), atol=1e-12)
        assert module.state_dict()["weight"].shape == (ng.num_connections,)


def test_device_aware_level_choice() -> None:
    """On CPU a sparse level runs sparse; on CUDA every level within the block limit runs dense."""
    ng = NeuronGraph.random(16, 300, 4, 1500, seed=0, depth=4, activations=("tanh",))
    module = ng.to_module()
    cpu, cuda = module.dense_levels("cpu"), module.dense_levels("cuda")
    assert not all(cpu) and all(cuda)  # density ~0.1 < 0.25 on CPU; blocks of ~75 x 300 on CUDA
    small = NeuronGraphModule.from_topology(ng.to_json(), cuda_block_limit=100)
    assert not any(small.dense_levels("cuda")[:-1])
    assert ng.to_module(mode="sparse").dense_levels("cuda") == [False] * len(module.levels)


def test_levels_are_batched_not_per_neuron() -> None:
    ng = NeuronGraph.layered(4, (30, 30), 2)
    module = ng.to_module()
    assert len(module.levels) == 3  # one evaluation per layer, not one per neuron (62 neurons)


def test_edits_keep_acyclicity_and_untouched_weights() -> None:
    rnd = random.Random(0)
    ng = NeuronGraph.random(3, 8, 2, 25, seed=0)
    for step in range(300):
        before = {e: ng.weight(*e) for e in ng.connections}
        biases = {n: ng.bias(n) for n in ng.hidden + ng.outputs}
        kind = rnd.choice(["add", "remove", "split", "cascade", "remove_neuron"])
        touched: set[tuple[int, int]] = set()
        try:
            if kind == "add":
                s, d = rnd.choice(ng.neurons), rnd.choice(ng.hidden + ng.outputs)
                ng.add_connection(s, d, rnd.uniform(-1, 1))
            elif kind == "remove" and ng.connections:
                e = rnd.choice(ng.connections)
                ng.remove_connection(*e)
                touched.add(e)
            elif kind == "split" and ng.connections:
                e = rnd.choice(ng.connections)
                ng.split(*e, activation="tanh", scale=0.5)
                touched.add(e)
            elif kind == "cascade":
                srcs = rnd.sample(ng.inputs + ng.hidden, k=min(3, len(ng.inputs + ng.hidden)))
                ng.add_neuron(srcs, [rnd.choice(ng.outputs)], "relu", weights=[0.1] * len(srcs))
            elif kind == "remove_neuron" and ng.hidden:
                n = rnd.choice(ng.hidden)
                touched |= {e for e in ng.connections if n in e}
                ng.remove_neuron(n)
        except gb.GraphError as e:
            assert "cycle" in str(e) or "already exists" in str(e) or "input" in str(e), e
        assert is_acyclic(ng), (step, kind)
        for e, w in before.items():
            if e not in touched:
                assert ng.weight(*e) == w, (step, kind, e)
        for n, b in biases.items():
            if n in ng.neurons:
                assert ng.bias(n) == b
        assert ng.num_connections == len(ng.connections)


def test_cycle_error_names_the_neurons() -> None:
    ng = NeuronGraph(1, 1)
    a = ng.add_neuron([0], [1], "tanh")
    b = ng.add_neuron([a], [1], "tanh")
    with pytest.raises(gb.GraphError, match=rf"n{b} -> n{a}.*cycle n{a} -> n{b} -> n{a}"):
        ng.add_connection(b, a)
    with pytest.raises(gb.GraphError, match="cycle"):
        ng.add_neuron([b], [a])
    with pytest.raises(gb.GraphError, match="input neuron n0"):
        ng.add_connection(a, 0)
    topo = ng.to_json()
    topo["connections"].append([b, a])
    with pytest.raises(gb.GraphError, match=rf"cycle n{a} -> n{b} -> n{a}|cycle n{b} -> n{a} -> n{b}"):
        NeuronGraph.from_json(topo)


def test_split_keeps_the_function_with_identity_activation() -> None:
    ng = NeuronGraph.random(3, 10, 2, 30, seed=5, activations=("tanh", "sigmoid"))
    x = torch.randn(50, 3, dtype=torch.float64)
    before = ng.to_module(dtype=torch.float64)(x)
    for e in ng.connections[::3]:
        ng.split(*e, activation="identity")
    assert torch.allclose(ng.to_module(dtype=torch.float64)(x), before, atol=1e-6)
    ng.split(*ng.connections[0], activation="tanh", scale=0.01)  # near identity for tanh
    assert torch.allclose(ng.to_module(dtype=torch.float64)(x), before, atol=1e-3)


def test_simplify_keeps_the_function() -> None:
    ng = NeuronGraph.random(3, 12, 1, 30, seed=8)
    x = torch.randn(20, 3, dtype=torch.float64)
    before = ng.to_module(dtype=torch.float64)(x)
    removed = ng.simplify()
    assert removed  # this DAG has dead or constant neurons
    assert torch.allclose(ng.to_module(dtype=torch.float64)(x), before, atol=1e-12)
    assert all(ng.sources(n) and ng.targets(n) for n in ng.hidden)


def test_counts_and_json_round_trip() -> None:
    ng = NeuronGraph.layered(2, (3, 4), 1)
    assert (ng.num_connections, ng.num_hidden, ng.num_neurons) == (2 * 3 + 3 * 4 + 4, 7, 10)
    twin = NeuronGraph.from_json(ng.to_json())
    twin.load_state_dict(ng.state_dict(torch.float64))
    assert twin == ng
    with pytest.raises(gb.GraphError, match="act of n3 must be one of .*got 'swish'"):
        NeuronGraph.from_json({**ng.to_json(), "hidden": [{"id": 3, "act": "swish"}]})


def test_op_in_a_larger_graph_compiles_saves_and_loads(tmp_path) -> None:
    ng = NeuronGraph.random(8, 12, 3, 40, seed=2)
    g = gb.Graph("cnn_with_neuron_head")
    x = g.input("image", shape=(4, 1, 8, 8))
    h = g.add("flatten", g.add("adaptive_avg_pool2d", g.add("conv2d", x, out_channels=8, kernel_size=3),
                               output_size=1))
    head = g.add("neuron_graph", h, name="head", topology=ng.to_json())
    g.output(head)
    assert head.shape == (4, 3) and head.num_params == 40 + 15
    g.weights["head"] = ng.state_dict()
    model = gb.compile(g)
    image = torch.randn(4, 1, 8, 8)
    y = model(image)
    g.save(tmp_path / "net.graph.json")
    loaded = gb.Graph.load(tmp_path / "net.graph.json")
    assert loaded["head"].params["topology"] == ng.to_json()
    reloaded = gb.compile(loaded)
    reloaded.load_state_dict(model.state_dict())  # conv weights were random; head weights came from the file
    assert torch.equal(reloaded(image), y)
    assert torch.equal(NeuronGraph.from_graph(loaded, "head").state_dict()["weight"], ng.state_dict()["weight"])
    with pytest.raises(gb.GraphError, match=r"\(N, 8\)"):
        g2 = gb.Graph("bad")
        g2.add("neuron_graph", g2.input("x", shape=(4, 5)), topology=ng.to_json())


def test_expanded_graph_computes_the_same_function() -> None:
    ng = NeuronGraph.random(3, 9, 2, 28, seed=11)
    ng.add_neuron([], [ng.outputs[0]], "sigmoid", out_weights=[0.7], bias=0.3)  # a sourceless neuron
    expanded = ng.expand(ghost_connections=[(0, ng.outputs[1])] if not ng.has_connection(0, ng.outputs[1]) else [])
    assert {n.op for n in expanded} == {"input", "neuron", "output"}
    assert len([n for n in expanded if n.op == "neuron"]) == ng.num_hidden + len(ng.outputs)
    x = torch.randn(16, 3)
    want = gb.compile(ng.to_graph())(x)
    got = gb.compile(expanded)(*x.split(1, dim=1))
    assert torch.allclose(torch.cat(got, 1), want, atol=1e-5)


def test_module_needs_only_torch() -> None:
    import inspect

    from graphbuilder.ops.modules import neuron_graph as mod

    source = inspect.getsource(mod)
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert all(line.split()[1].split(".")[0] in ("__future__", "math", "typing", "torch") for line in imports)
    assert isinstance(ACTIVATIONS, tuple) and NeuronGraphModule.__module__ == mod.__name__


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_paths_match_cpu() -> None:
    """On CUDA: auto (dense), forced sparse (gathers), DenseLevels and both CUDA-graph captures against CPU."""
    ng = NeuronGraph.random(8, 120, 4, 900, seed=1, depth=6, activations=("tanh", "sin", "relu"))
    x = torch.randn(64, 8, dtype=torch.float64)
    ref = ng.to_module(dtype=torch.float64)
    xc = x.clone().requires_grad_()
    want = torch.autograd.grad(ref(xc).square().sum(), (xc, ref.weight, ref.bias))
    for mode in ("auto", "sparse"):
        gpu = ng.to_module(mode=mode, dtype=torch.float64).cuda()
        xg = x.cuda().requires_grad_()
        got = torch.autograd.grad(gpu(xg).square().sum(), (xg, gpu.weight, gpu.bias))
        for a, b in zip(want, got, strict=True):
            assert torch.allclose(a, b.cpu(), atol=1e-9), mode
    blocks = DenseLevels(ng.to_module(dtype=torch.float64).cuda())
    graphed = cuda_graphed(blocks, x.cuda())
    for _ in range(2):  # replays
        blocks.zero_grad(set_to_none=True)
        graphed(x.cuda()).square().sum().backward()
    blocks.write_back()
    module = blocks.plan
    assert torch.allclose(module(x.cuda()).cpu(), ref(x), atol=1e-9)
    eager = DenseLevels(ng.to_module(dtype=torch.float64).cuda())
    eager(x.cuda()).square().sum().backward()
    assert torch.allclose(blocks.blocks.grad, eager.blocks.grad, atol=1e-9)
    plain = ng.to_module(dtype=torch.float64).cuda()
    g2 = cuda_graphed(plain, x.cuda())
    g2(x.cuda()).square().sum().backward()
    assert torch.allclose(plain.weight.grad.cpu(), want[1], atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    for seed in range(10):
        ng = random_dag(seed)
        x = torch.randn(9, len(ng.inputs), dtype=torch.float64)
        for mode in ("dense", "sparse"):
            cpu = ng.to_module(mode=mode, dtype=torch.float64)
            gpu = ng.to_module(mode=mode, dtype=torch.float64).cuda()
            xc, xg = x.clone().requires_grad_(), x.cuda().requires_grad_()
            gc = torch.autograd.grad(cpu(xc).sum(), (xc, cpu.weight))
            gg = torch.autograd.grad(gpu(xg).sum(), (xg, gpu.weight))
            for a, b in zip(gc, gg, strict=True):
                assert torch.allclose(a, b.cpu(), atol=1e-10)
