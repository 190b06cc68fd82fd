"""Benchmark: importing and compiling the ResNet-50-style model, against torch.fx.symbolic_trace.

Prints the median wall time of `gb.from_module` (trace + map + nested blocks + shape checks) and of
`gb.compile` on the imported graph, each beside `torch.fx.symbolic_trace` of the same module (the baseline
measured in the same run) as a ratio. Never asserts on time.

    .venv/bin/python benchmarks/bench_roundtrip.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from models import MODELS  # noqa: E402

import graphbuilder as gb  # noqa: E402


def median_seconds(fn: Callable[[], object], repeats: int, label: str) -> float:
    """Median wall time of `fn` over `repeats` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in tqdm(range(repeats), desc=label, leave=False):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    module, x = MODELS["resnet50"]()
    graph = gb.from_module(module, (x,))
    baseline = median_seconds(lambda: torch.fx.symbolic_trace(module), args.repeats, "fx.symbolic_trace")
    imported = median_seconds(lambda: gb.from_module(module, (x,)), args.repeats, "gb.from_module")
    compiled = median_seconds(lambda: gb.compile(graph), args.repeats, "gb.compile")
    with torch.no_grad():
        same = torch.equal(gb.compile(graph).eval()(x), module(x))
    total = sum(1 for _ in gb.to_networkx(graph, expand_blocks=True))
    print(f"ResNet-50-style model, input {tuple(x.shape)}, {total} nodes in nested blocks, outputs equal: {same}")
    print(f"torch.fx.symbolic_trace (baseline) {baseline * 1e3:8.1f} ms   1.00x")
    print(f"gb.from_module                     {imported * 1e3:8.1f} ms   {imported / baseline:5.2f}x")
    print(f"gb.compile (imported graph)        {compiled * 1e3:8.1f} ms   {compiled / baseline:5.2f}x")


if __name__ == "__main__":
    main()
