"""Neuron-graph executor speed: forward + backward of a 1,000-neuron, 20,000-connection DAG at batch 4,096.

Boundary: measures and prints; asserts nothing. Each figure is printed beside the baselines measured in the
same run (medians over repeats, CUDA synchronised):
    (a) a per-neuron Python loop (stack a neuron's sources, one mat-vec, bias, activation; autograd backward);
    (b) a dense MLP 16-128-128-16 with the same number of weights (20,480), eager and, on CUDA, with the
        whole training step captured as a CUDA graph.
Two DAGs (16 inputs, 968 hidden, 16 outputs, tanh): "shallow" with 8 random hidden levels (9 levels with
the outputs), and "deep" in a random neuron order (76 levels). Executor variants:
    auto          `NeuronGraphModule`, dense or sparse per level by device (CPU: density; CUDA: dense)
    dense/sparse  every level dense / every level sparse
    blocks        `DenseLevels`: persistent dense per-level blocks with a fixed mask (nothing rebuilt per call)
    graphed       (CUDA) blocks with the whole step (forward, loss, backward) captured as one CUDA graph
    graphed-fb    (CUDA) `cuda_graphed`: forward and backward captured separately (make_graphed_callables)
Goals on a GPU: >= 100x the loop and <= 2x the MLP on the shallow DAG.

    .venv/bin/python benchmarks/bench_neuron_executor.py --threads 1     # CPU, one thread, CPU time
    .venv/bin/python benchmarks/bench_neuron_executor.py --device cuda   # on a GPU
    .venv/bin/python benchmarks/bench_neuron_executor.py --quick         # fewer repeats, batch 1,024
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from graphbuilder.ops.modules.neuron_graph import DenseLevels, activate, cuda_graphed
from graphbuilder.ops.neuron_graph import NeuronGraph

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
N_IN, N_HIDDEN, N_OUT, N_CONN = 16, 968, 16, 20_000


def median_time(fn: Callable[[], object], reps: int, device: str) -> float:
    """Median time of `fn` over `reps` runs after two warm-ups: wall time on CUDA (synchronised), this
    process's CPU time on CPU (on a busy machine wall time measures the neighbours; with one thread, CPU time
    is the work done)."""
    clock = time.perf_counter if device == "cuda" else time.process_time
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = clock()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(clock() - t)
    return statistics.median(times)


class PerNeuronLoop(nn.Module):
    """Baseline (a): one Python step per neuron, autograd for the backward."""

    def __init__(self, ng: NeuronGraph) -> None:
        super().__init__()
        self.ng = ng
        inputs = set(ng.inputs)
        self.order = [n for n in ng.topological_order() if n not in inputs]
        self.sources = {n: ng.sources(n) for n in self.order}
        self.weight = nn.ParameterDict({str(n): nn.Parameter(torch.tensor([ng.weight(s, n) for s in self.sources[n]]))
                                        for n in self.order})
        self.bias = nn.Parameter(torch.tensor([ng.bias(n) for n in self.order]))
        self.act = {n: ng.activation(n) for n in self.order}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = {i: x[:, k] for k, i in enumerate(self.ng.inputs)}
        for k, n in enumerate(self.order):
            srcs = self.sources[n]
            z = self.bias[k].expand(x.shape[0])
            if srcs:
                z = z + torch.stack([h[s] for s in srcs], 1) @ self.weight[str(n)]
            h[n] = activate(self.act[n], z)
        return torch.stack([h[o] for o in self.ng.outputs], 1)


def step_of(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One eager training step's work: forward, a scalar loss, backward."""
    def step() -> None:
        module.zero_grad(set_to_none=True)
        module(x).square().mean().backward()
    return step


def graphed_step(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """The same step captured whole as one CUDA graph (static input; gradients written in the graph's pool)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm up (also builds the executor's cached layouts) outside the capture
            step_of(module, x)()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    module.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        module(x).square().mean().backward()
    return graph.replay


def graphed_fb(module: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """`cuda_graphed`: forward and backward replayed as two captured graphs, the loss eager."""
    graphed = cuda_graphed(module, x)
    return step_of(graphed, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="batch 1,024 and fewer repeats")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    batch = 1024 if args.quick else 4096
    reps = 3 if args.quick else 9
    torch.manual_seed(0)
    x = torch.randn(batch, N_IN, device=device)
    where = (torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads")
    print(f"== forward + backward, {N_IN + N_HIDDEN + N_OUT} neurons, {N_CONN:,} connections, batch {batch}, "
          f"{where}, torch {torch.__version__} ==")
    mlp = nn.Sequential(nn.Linear(N_IN, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(), nn.Linear(128, N_OUT))
    mlp = mlp.to(device)
    weights = sum(m.weight.numel() for m in mlp if isinstance(m, nn.Linear))
    t_mlp = median_time(step_of(mlp, x), reps * 3, device)
    print(f"(b) dense MLP 16-128-128-16 ({weights:,} weights, tanh), eager: {t_mlp * 1e3:9.3f} ms")
    t_mlp_g = None
    if device == "cuda":
        t_mlp_g = median_time(graphed_step(mlp, x), reps * 3, device)
        print(f"(b) dense MLP, whole step as a CUDA graph:           {t_mlp_g * 1e3:9.3f} ms")
    print(f"\n{'DAG':<8} {'levels':>6} {'dense':>6} {'variant':<11} {'ms':>10} {'vs loop':>9} {'vs MLP':>8} "
          f"{'vs MLP graphed':>14} {'max |diff|':>11}")
    for name, depth in (("shallow", 8), ("deep", None)):
        ng = NeuronGraph.random(N_IN, N_HIDDEN, N_OUT, N_CONN, seed=0, depth=depth, activations=("tanh",))
        loop = PerNeuronLoop(ng).to(device)
        with torch.no_grad():
            want = loop(x)
        t_loop = median_time(step_of(loop, x), 1 if args.quick else 3, device)
        levels = len(ng.to_module().levels)
        print(f"{name:<8} {levels:>6} {'':>6} {'loop (a)':<11} {t_loop * 1e3:10.2f} {'1.0x':>9} "
              f"{t_loop / t_mlp:7.1f}x")
        variants: list[tuple[str, Callable[[], nn.Module], Callable[[nn.Module, torch.Tensor], Callable[[], None]]]] = [
            ("auto", lambda ng=ng: ng.to_module("auto").to(device), step_of),
            ("dense", lambda ng=ng: ng.to_module("dense").to(device), step_of),
            ("sparse", lambda ng=ng: ng.to_module("sparse").to(device), step_of),
            ("blocks", lambda ng=ng: DenseLevels(ng.to_module().to(device)), step_of),
        ]
        if device == "cuda":
            variants += [("graphed", lambda ng=ng: DenseLevels(ng.to_module().to(device)), graphed_step),
                         ("graphed-fb", lambda ng=ng: DenseLevels(ng.to_module().to(device)), graphed_fb)]
        for variant, make, stepper in variants:
            module = make()
            with torch.no_grad():
                diff = float((module(x) - want).abs().max())
            dense = sum(module.dense_levels(device)) if hasattr(module, "dense_levels") else levels
            t = median_time(stepper(module, x), reps, device)
            vs_g = f"{t / t_mlp_g:13.2f}x" if t_mlp_g else f"{'-':>14}"
            print(f"{name:<8} {levels:>6} {dense:>6} {variant:<11} {t * 1e3:10.3f} {t_loop / t:8.1f}x "
                  f"{t / t_mlp:7.2f}x {vs_g} {diff:11.2e}")
    print("\ngoals (GPU): >= 100x the loop and <= 2x the MLP on the shallow DAG; CPU figures are for reference")


if __name__ == "__main__":
    main()
