"""How GraphBuilder's IR scales with graph size, beside torch.fx on the same network, in one process.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 1000 5000 10000 50000] [--repeats 3] [--editor]

The network is a chain ``x -> (conv2d 4->4 3x3 pad 1, relu) * k -> output`` of n nodes, input (1, 4, 8, 8).
Per size it times, median of `--repeats` fresh runs:

* build: the n ``g.add`` calls through the public API (each one infers its node, as in a notebook);
* infer: re-inference of every node after the input's shape changes;
* compile: ``gb.compile`` (an ``fx.GraphModule``; most of it is constructing the n/2 ``nn.Conv2d``);
* save, load: the graph file with its safetensors weights;
* head edit: ``conv0.update(kernel_size=1, padding=0)`` then ``infer()``: shapes do not change, so only that
  node is re-inferred;
* baseline: ``torch.fx.symbolic_trace`` + ``recompile`` of the equivalent ``nn.Sequential`` (built beforehand,
  not timed), the closest thing torch has to building a graph IR of the network.

Then the growth exponent of each stage (least-squares slope of log time on log n), and at 10,000 nodes
(or the largest size below it) the peak memory per node of building the graph, beside constructing the
equivalent ``nn.Sequential`` (tracemalloc). With ``--editor``, the editor's Python side too
(`bench_scale_editor.editor_rows`): the first document, a head edit's reply and an empty patch's reply.

One thread (``torch.set_num_threads(1)``). Goals (printed, never asserted): every exponent at most 1.1; at
10,000 nodes build + infer + compile within 2x of the baseline. Meta-kernel warm-up (the first inference of
each op compiles torch's shape functions, ~1 s) happens before anything is timed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import torch
from torch import fx, nn

import graphbuilder as gb

INPUT = (1, 4, 8, 8)


def build_chain(n: int) -> gb.Graph:
    """The n-node conv2d/relu chain, built node by node through the public API."""
    g = gb.Graph(f"chain{n}")
    h = g.input("x", shape=INPUT)
    k = 0
    while len(g) < n - 1:
        h = g.add("conv2d", h, out_channels=4, kernel_size=3, padding=1, name=f"conv{k}")
        if len(g) < n - 1:
            h = g.add("relu", h, name=f"relu{k}")
        k += 1
    g.output(h, name="out")
    return g


def sequential(n: int) -> nn.Sequential:
    """The `nn.Sequential` that `build_chain(n)` compiles to (same layers, in the same order)."""
    layers: list[nn.Module] = []
    while len(layers) < n - 2:
        layers.append(nn.Conv2d(4, 4, 3, padding=1))
        if len(layers) < n - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Seconds `fn` took, and what it returned."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fx_baseline(module: nn.Module) -> float:
    """Seconds for `torch.fx.symbolic_trace` + `recompile` of `module`."""
    t0 = time.perf_counter()
    traced = fx.symbolic_trace(module)
    traced.recompile()
    return time.perf_counter() - t0


def one_run(n: int, folder: Path) -> dict[str, float]:
    """Every stage once on a fresh n-node graph: seconds by stage name."""
    out: dict[str, float] = {}
    out["build"], g = timed(lambda: build_chain(n))
    assert isinstance(g, gb.Graph) and len(g) == n
    out["infer"], errors = timed(lambda: (g["x"].update(shape=(1, 4, 9, 9)), g.infer())[1])
    assert not errors and g["out"].shape == (1, 4, 9, 9)
    out["compile"], module = timed(lambda: gb.compile(g))
    g.weights = {}  # the compiled module's weights into the graph, so save and load carry a weights file
    for node in g:
        if node.op == "conv2d":
            sub = module.get_submodule(module.meta["graphbuilder_modules"][node.name])
            g.weights[node.name] = {k: v.detach() for k, v in sub.state_dict().items()}
    path = folder / f"chain{n}.graph.json"
    out["save"], _ = timed(lambda: g.save(str(path)))
    out["load"], loaded = timed(lambda: gb.Graph.load(str(path)))
    assert isinstance(loaded, gb.Graph) and len(loaded) == n
    out["head edit"], _ = timed(lambda: (g["conv0"].update(kernel_size=1, padding=0), g.infer()))
    reference = sequential(n)
    out["fx baseline"] = fx_baseline(reference)
    return out


def exponent(sizes: list[int], times: list[float]) -> float:
    """Least-squares slope of log(time) on log(size): 1 is linear, 2 quadratic."""
    xs, ys = [math.log(s) for s in sizes], [math.log(max(t, 1e-9)) for t in times]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak traced allocation while `fn` runs (what it returns is kept alive until the peak is read)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    kept = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return peak


def warm_up() -> None:
    """Compile torch's shape functions and fx's code paths once, outside every timing."""
    g = build_chain(20)
    gb.compile(g)
    fx_baseline(sequential(20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000, 50000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--editor", action="store_true", help="also time the editor's Python side")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warm_up()
    stages = ["build", "infer", "compile", "save", "load", "head edit", "fx baseline"]
    medians: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            runs = [one_run(n, Path(folder)) for _ in range(args.repeats)]
            medians[n] = {s: statistics.median(r[s] for r in runs) for s in stages}
            print(f"  {n} nodes done", file=sys.stderr, flush=True)

    print(f"Chain of conv2d/relu, seconds (median of {args.repeats}; one thread; baseline: torch.fx symbolic_trace +"
          " recompile of the same nn.Sequential)")
    print(f"{'nodes':>8} " + " ".join(f"{s:>11}" for s in stages) + f" {'b+i+c':>9} {'ratio':>7}")
    for n in args.sizes:
        m = medians[n]
        ours = m["build"] + m["infer"] + m["compile"]
        print(f"{n:>8} " + " ".join(f"{m[s]:11.4f}" for s in stages)
              + f" {ours:9.3f} {ours / m['fx baseline']:6.2f}x")
    if len(args.sizes) > 1:
        print("growth exponent (goal <= 1.1; the baseline's for comparison)")
        for s in [*stages, "b+i+c"]:
            ts = [medians[n]["build"] + medians[n]["infer"] + medians[n]["compile"] if s == "b+i+c"
                  else medians[n][s] for n in args.sizes]
            print(f"  {s:>12}: {exponent(args.sizes, ts):5.2f}")
    n_mem = max([n for n in args.sizes if n <= 10_000] or [min(args.sizes)])
    ours_b = peak_bytes(lambda: build_chain(n_mem))
    module_b = peak_bytes(lambda: sequential(n_mem))
    print(f"\nPeak memory building {n_mem} nodes (tracemalloc): graph {ours_b / n_mem / 1024:.2f} KiB/node, "
          f"nn.Sequential of the same layers {module_b / n_mem / 1024:.2f} KiB/node "
          f"(x{ours_b / module_b:.2f})")
    if args.editor:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_scale_editor import editor_rows

        editor_rows([n for n in args.sizes if n <= 10_000], args.repeats)


if __name__ == "__main__":
    main()
