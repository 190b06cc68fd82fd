"""What one undo step costs the editor on a 1,000-node graph: snapshots that share unchanged nodes
(`graphbuilder.ir.snapshot`, what the widget keeps) against a full `Graph.copy` per step (the baseline,
what it kept before 2026-11-23).

    .venv/bin/python benchmarks/bench_undo_history.py [--nodes 1000] [--steps 60]

Two kinds of edit on a conv/relu chain whose nodes all carry editor positions:
- "local": the last conv's kernel_size and padding change together, so its output shape stays the same
  and no other node re-infers;
- "head": the first conv's padding changes, so every node downstream re-infers.
For each kind and method it records `steps` states after as many edits (the history the widget keeps) and
prints the median time to record one state, the objects per state that the garbage collector must keep
tracking, and the memory per state (tracemalloc). It prints ratios to the baseline and never fails on time.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from bench_widget import chain

import graphbuilder as gb
from graphbuilder.ir.snapshot import snapshot


def positioned_chain(n: int) -> tuple[gb.Graph, int]:
    """`bench_widget.chain(n)` (the graph the widget benchmark edits), with an editor position on every node."""
    g, k = chain(n)
    for i, node in enumerate(g):
        node.meta["position"] = {"x": 0.0, "y": 80.0 * i}
    g.infer()
    return g, k


def record(method: str, kind: str, nodes: int, steps: int, trace: bool) -> tuple[list[float], float, float]:
    """Record `steps` states with `method` after `kind` edits: the per-state times, and the GC-tracked
    objects and bytes (when `trace`, which slows allocation, so times come from an untraced run) retained."""
    g, k = positioned_chain(nodes)
    last = g[f"conv{k - 1}"]
    edits: dict[str, Callable[[int], Any]] = {
        "local": lambda i: last.update(kernel_size=1 if i % 2 == 0 else 3, padding=0 if i % 2 == 0 else 1),
        "head": lambda i: g["conv0"].update(padding=i % 2),
    }
    history: list[Any] = [snapshot(g) if method == "snapshot" else g.copy()]
    times = []
    gc.collect()
    objects_before = len(gc.get_objects())
    if trace:
        tracemalloc.start()
    for i in range(steps):
        edits[kind](i)
        g.infer()
        t0 = time.perf_counter()
        history.append(snapshot(g, history[-1]) if method == "snapshot" else g.copy())
        times.append(time.perf_counter() - t0)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] if trace else 0.0
    tracemalloc.stop()
    return times, (len(gc.get_objects()) - objects_before) / steps, retained / steps


def run(method: str, kind: str, nodes: int, steps: int) -> dict[str, float]:
    """Median milliseconds, tracked objects and KiB retained per recorded state."""
    times, objects, _ = record(method, kind, nodes, steps, trace=False)
    _, _, size = record(method, kind, nodes, steps, trace=True)
    return {"ms": 1000 * statistics.median(times), "objects": objects, "kib": size / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    print(f"One undo step on a {args.nodes}-node chain (median time over {args.steps} steps; objects and memory"
          " retained per step). Baseline: Graph.copy per step.")
    for kind in ("local", "head"):
        base = run("copy", kind, args.nodes, args.steps)
        new = run("snapshot", kind, args.nodes, args.steps)
        print(f"\n{kind} edits")
        for label, r in (("Graph.copy (baseline)", base), ("shared snapshot", new)):
            print(f"  {label:>22}: {r['ms']:6.2f} ms (x{r['ms'] / base['ms']:4.2f})  "
                  f"{r['objects']:7.0f} tracked objects (x{r['objects'] / base['objects']:5.3f})  "
                  f"{r['kib']:7.1f} KiB (x{r['kib'] / base['kib']:5.3f})")


if __name__ == "__main__":
    main()
