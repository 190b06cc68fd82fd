"""Prune/grow neuron-graph search benchmarks (issue 6, arXiv:2108.02231). Prints each figure beside a baseline
measured in the same run (medians); never fails on time.

1. Search vs layered MLPs. For each problem (next_pixel and image_function on a downscaled grayscale sample
   image from scikit-learn) and >= 3 target errors: connections, neurons and validation error of the
   prune/grow network against the smallest MLP (by connections) from a depth x width sweep that reaches the
   same target, trained with the same optimiser and step budget. Goal: 3x or more fewer connections.
2. Executor speed: forward + backward on a 1,000-neuron, 20,000-connection DAG at batch 4,096, against
   (a) a per-neuron Python loop (goal >= 100x faster) and (b) a dense MLP with the same number of weights
   (goal: within 2x of its time). Two DAGs: 8 random levels with skips, and a fully random order (deep).

Run: .venv/bin/python benchmarks/bench_prune_grow.py [--quick] [--part search|executor|all]
                                                       [--device cpu|cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from graphbuilder.datasets import image_function, next_pixel, sample_image
from graphbuilder.ops.modules.neuron_graph import activate
from graphbuilder.ops.neuron_graph import NeuronGraph
from graphbuilder.search import mlp_sweep, prune_grow
from graphbuilder.search.baseline import comparison, format_comparison, mlp_targets

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


# -- timing ------------------------------------------------------------------------------------------------------
def median_time(fn: Callable[[], None], reps: int, device: str) -> float:
    """Median wall time of `fn` over `reps` runs after one warm-up (CUDA synchronised)."""
    fn()
    times = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- executor ----------------------------------------------------------------------------------------------------
class PerNeuronLoop(nn.Module):
    """The baseline the executor must beat by 100x: one Python step per neuron (stack its sources' values,
    one mat-vec, bias, activation), autograd for the backward."""

    def __init__(self, ng: NeuronGraph) -> None:
        super().__init__()
        self.ng = ng
        self.order = [n for n in ng.topological_order() if n not in set(ng.inputs)]
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


def bench_executor(device: str, quick: bool) -> None:
    batch, n_in, n_hidden, n_out, n_conn = 4096, 16, 968, 16, 20_000
    reps = 3 if quick else 7
    print(f"\n== Executor: forward + backward, {n_in + n_hidden + n_out} neurons, {n_conn:,} connections, "
          f"batch {batch}, {device}, {torch.get_num_threads()} CPU threads ==")
    torch.manual_seed(0)
    x = torch.randn(batch, n_in, device=device)
    mlp = nn.Sequential(nn.Linear(n_in, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(),
                        nn.Linear(128, n_out)).to(device)
    mlp_weights = sum(m.weight.numel() for m in mlp if isinstance(m, nn.Linear))

    def fb(module: nn.Module) -> Callable[[], None]:
        def step() -> None:
            module.zero_grad(set_to_none=True)
            module(x).square().mean().backward()
        return step

    t_mlp = median_time(fb(mlp), reps * 3, device)
    print(f"dense MLP 16-128-128-16 ({mlp_weights:,} weights, tanh): {t_mlp * 1e3:8.2f} ms   (baseline b)")
    print(f"{'DAG':<22} {'levels':>6} {'dense lv':>8} {'mode':>7} {'time ms':>9} {'vs loop':>9} {'vs MLP':>8}")
    for name, depth in (("8 levels + skips", 8), ("random order (deep)", None)):
        ng = NeuronGraph.random(n_in, n_hidden, n_out, n_conn, seed=0, depth=depth, activations=("tanh",))
        loop = PerNeuronLoop(ng).to(device)
        t_loop = median_time(fb(loop), 1 if quick else 3, device)
        print(f"{name:<22} {'':>6} {'':>8} {'loop':>7} {t_loop * 1e3:9.1f} {'1.0x':>9} {t_loop / t_mlp:7.1f}x"
              "   (baseline a: per-neuron Python loop)")
        for mode in ("auto", "sparse", "dense"):
            module = ng.to_module(mode=mode).to(device)
            t = median_time(fb(module), reps, device)
            dense = sum(lv.dense for lv in module.levels)
            print(f"{name:<22} {len(module.levels):>6} {dense:>8} {mode:>7} {t * 1e3:9.2f} {t_loop / t:8.1f}x "
                  f"{t / t_mlp:7.2f}x")
    print("goals: >= 100x faster than the loop; <= 2x the MLP's time")


# -- search vs MLPs -------------------------------------------------------------------------------------------------
def problems(quick: bool) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, X, y) for the paper's two problems on scikit-learn's china.jpg, grayscale, downscaled."""
    size = 16 if quick else 32
    img = sample_image("china.jpg", size)
    out = [(f"image_function {size}x{size}", *image_function(img))]
    context = 1 if quick else 2
    out.append((f"next_pixel {size}x{size} context={context}", *next_pixel(img, context=context)))
    return out


def bench_search(quick: bool, search: dict[str, object]) -> None:
    """Per problem: split off a 20% test set (never used for decisions); sweep MLPs on the rest (the same
    train/validation split as the search); targets = the MLP front's validation error at <= 25, 80 and 300
    connections (`mlp_targets`); one search per target. Table: validation and test RMSE of both."""
    mlp_steps = 1000 if quick else 3000
    opt = dict(optimizer=search.get("optimizer", "adam"), lr=search.get("lr", 0.02))
    budget = dict(train_steps=400 if quick else 600, retrain_steps=60 if quick else 100,
                  max_seconds=40.0 if quick else 150.0)
    budget.update(search)
    print(f"\n== Prune/grow vs layered MLPs ({opt}, tanh, full batch; MLPs {mlp_steps} steps each, "
          f"search {budget}) ==")
    for name, X, y in problems(quick):
        perm = np.random.default_rng(123).permutation(len(X))
        n_test = len(X) // 5
        test, dev = perm[:n_test], perm[n_test:]
        Xd, yd, Xte, yte = X[dev], y[dev], X[test], y[test]
        t = time.perf_counter()
        rows = mlp_sweep(Xd, yd, depths=(1, 2, 3), widths=(2, 4, 8, 16) if quick else (2, 4, 8, 16, 32),
                         steps=mlp_steps, test=(Xte, yte), progress=False, **opt)
        t_mlp = time.perf_counter() - t
        targets = mlp_targets(rows)
        print(f"\n{name}: {len(X)} samples ({len(dev)} train+validation, {n_test} test), {X.shape[1]} inputs; "
              f"MLP sweep of {len(rows)} nets in {t_mlp:.0f} s; linear val RMSE {rows[0]['val_error']:.4f}, best "
              f"MLP {min(r['val_error'] for r in rows):.4f}; targets: MLP front at <= 25, 80, 300 connections")
        results = []
        for target in targets:
            t = time.perf_counter()
            r = prune_grow(Xd, yd, target, seed=0, progress=False, **budget)
            results.append(r)
            print(f"  target {target:.4f}: {len(r.history)} steps in {time.perf_counter() - t:.0f} s "
                  f"({r.stop_reason})")
        table = comparison(results, rows, test=(Xte, yte))
        print(format_comparison(table))
        ratios = [row["ratio"] for row in table if row["ratio"] is not None]
        if ratios:
            print(f"median MLP/PG connection ratio {statistics.median(ratios):.2f} over {len(ratios)} targets")
    print("goal: MLP/PG connection ratio >= 3 at equal (validation) error; test RMSE shows it generalises")


def bench_widget(quick: bool) -> None:
    try:
        from graphbuilder.widget import GraphWidget
    except ImportError as e:  # the widget needs anywidget
        print(f"\n== Widget overhead: skipped ({e}) ==")
        return
    size = 16 if quick else 24
    X, y = image_function(sample_image("china.jpg", size))
    kw = dict(seed=0, progress=False, train_steps=400, retrain_steps=60, max_seconds=120.0)
    target, reps = 0.1, 1 if quick else 3
    times: dict[str, list[float]] = {"none": [], "widget": []}
    stats: dict[str, float] = {}
    for _ in range(reps):  # interleaved, medians
        for label in ("none", "widget"):
            widget = GraphWidget(NeuronGraph.direct(2).expand()) if label == "widget" else None
            t = time.perf_counter()
            r = prune_grow(X, y, target, widget=widget, **kw)
            times[label].append(time.perf_counter() - t)
            stats = r.widget_stats or stats
    base, live = statistics.median(times["none"]), statistics.median(times["widget"])
    print(f"\n== Widget overhead: image_function {size}x{size}, target {target}, {len(r.history)} steps ==")
    print(f"search without widget {base:.2f} s, with live GraphWidget {live:.2f} s: wall-clock slowdown "
          f"{(live / base - 1) * 100:+.1f}% (goal < 10%; noisy on a shared machine)")
    print(f"live view's own accounting: {stats['updates']} updates ({stats['skipped']} skipped by the throttle), "
          f"{stats['seconds']:.3f} s of {stats['search_seconds']:.2f} s = "
          f"{100 * stats['seconds'] / stats['search_seconds']:.1f}% of the search")


# -- main ----------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small settings (CI smoke run)")
    parser.add_argument("--part", choices=("search", "widget", "executor", "all"), default="all")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--search", default="{}", help='extra prune_grow keywords as JSON, e.g. '
                        '\'{"saliency": "trial", "optimizer": "lbfgs", "lr": 1}\' (the MLPs use the same optimizer)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick or os.environ.get("GB_FAST") == "1"
    if args.part in ("search", "all"):
        bench_search(quick, json.loads(args.search))
    if args.part in ("widget", "all"):
        bench_widget(quick)
    if args.part in ("executor", "all"):
        bench_executor(args.device, quick)


if __name__ == "__main__":
    main()
