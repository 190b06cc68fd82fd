"""Import speed on real models: `gb.from_module` and `gb.compile` beside `torch.export` of the same model.

Per model (the zoo of tests/zoo_models.py: random-init `transformers` models from small configs, or `timm`
architectures in the zoo venv): the median wall time of importing, of compiling the imported graph, and of
`torch.export.export` on the original module in the same run (the baseline: the capture that the importer's
fallback itself uses), their ratios, and the graph's node counts (top level and all, blocks expanded).

    python benchmarks/bench_import.py transformers                 # default venv
    .venv-zoo/bin/python benchmarks/bench_import.py timm resnet18  # make zoo's venv
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import graphbuilder as gb  # noqa: E402
from graphbuilder.export.runtime import quiet  # noqa: E402


def _median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _count(graph: gb.Graph) -> int:
    return sum(1 + (_count(n.block) if n.block is not None else 0) for n in graph)


def _measure(case: Any, repeats: int) -> tuple[float, float, float, int, int]:
    model = case.make().eval()
    inputs, kwargs = case.inputs()
    t_import, graph = _median_time(lambda: gb.from_module(model, inputs, example_kwargs=kwargs), repeats)
    t_compile, _ = _median_time(lambda: gb.compile(graph), repeats)
    t_export, _ = _median_time(lambda: torch.export.export(model, inputs, kwargs=kwargs or None), repeats)
    return t_import, t_compile, t_export, len(graph), _count(graph)


def main() -> None:
    """Print one row per model: import, compile and torch.export seconds, ratios, node counts."""
    from zoo_models import timm_cases, transformers_cases

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("library", choices=("timm", "transformers"))
    parser.add_argument("names", nargs="*", help="only these models (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = timm_cases() if args.library == "timm" else transformers_cases()
    cases = [c for c in cases if not args.names or c.name in args.names]
    print(f"torch {torch.__version__}, {args.repeats} runs each, medians in seconds")
    print(f"{'model':<34} {'import':>7} {'compile':>8} {'export':>7} {'imp/exp':>8} {'comp/exp':>9} "
          f"{'top':>5} {'total':>6}")
    for case in tqdm(cases, desc="models", leave=False):
        try:
            with quiet():
                row = _measure(case, args.repeats)
        except Exception as e:  # a model that does not import is reported, not skipped
            print(f"{case.name:<34} failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
            continue
        t_import, t_compile, t_export, top, total = row
        print(f"{case.name:<34} {t_import:7.2f} {t_compile:8.2f} {t_export:7.2f} {t_import / t_export:8.2f} "
              f"{t_compile / t_export:9.2f} {top:5d} {total:6d}", flush=True)

if __name__ == "__main__":
    main()
