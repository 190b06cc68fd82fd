"""Sweep executors: the same equal trials of a small prune/grow search (arXiv:2108.02231) on `local`,
`processes` and `ray`, each timed in this run; prints every figure beside the `local` baseline.

    wall            seconds for the whole sweep (processes: pool start-up included; ray: Ray's start-up is
                    printed on its own line, paid once per session, and not included)
    speed-up        local wall / this wall (goal on 2 cores: >= 1.8x for both parallel executors; 16 cores: >= 12x)
    overhead/trial  (wall x workers - sum of the trials' own seconds) / trials: what running a trial there costs
                    beyond the search itself (start-up, transport, scheduling, idle cores at the end)
    same graphs     whether every trial's graph and weights equal the local run's (determinism across executors)

`ray` runs the trials under Ray Tune (what `sweep` uses); `ray-tasks` runs the same units as plain Ray tasks
(`RayExecutor.map`), to show what Tune's trial management costs on top. The machine's load average is printed
before and after each executor, since other work on a shared machine takes cores from the parallel runs.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_sweep.py               # 8 trials, ~2 min
    .venv/bin/python benchmarks/bench_sweep.py --quick                                     # 4 tiny trials
    .venv/bin/python benchmarks/bench_sweep.py --trials 32 --workers 16                    # a 16-core machine

Never asserts on time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import graphbuilder as gb
from graphbuilder.datasets import image_function, sample_image
from graphbuilder.ir import serialize
from graphbuilder.search.executors import Work

EXECUTORS = ("local", "processes", "ray", "ray-tasks")


def problem(quick: bool) -> dict:
    """One prune/grow config: an image function, a step budget (never wall time, so every executor runs the
    same steps), ~3 s per trial on an idle core."""
    side, steps = (6, 8) if quick else (8, 24)
    X, y = image_function(sample_image("china.jpg", side))
    return dict(X=X, y=y, target_error=0.12, train_steps=150, retrain_steps=40, max_steps=steps,
                max_seconds=1e9, progress=False)


def load() -> str:
    """The 1-minute load average and the core count."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def same(a: gb.Graph, b: gb.Graph) -> bool:
    return serialize.dumps(a) == serialize.dumps(b) and all(
        torch.equal(a.weights[n][k], b.weights[n][k]) for n in a.weights for k in a.weights[n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8, help="equal trials (seeds 0..n-1) per executor")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="processes / Ray CPUs (default: this process's cores)")
    parser.add_argument("--executors", nargs="+", default=list(EXECUTORS), choices=EXECUTORS)
    parser.add_argument("--address", default=None, help="a running Ray cluster instead of a local instance")
    parser.add_argument("--quick", action="store_true", help="4 tiny trials")
    args = parser.parse_args()
    trials = 4 if args.quick else args.trials
    config, seeds = problem(args.quick), list(range(trials))
    print(f"{trials} equal prune/grow trials, {args.workers} workers; {load()}")
    gb.search.prune_grow(seed=0, **{**config, "max_steps": 2})  # warm this process (imports, caches)

    rows: dict[str, tuple[float, float, list]] = {}
    for name in args.executors:
        before = load()
        if name.startswith("ray"):
            import ray

            if not ray.is_initialized():
                t = time.perf_counter()
                if args.address:
                    ray.init(address=args.address)
                else:
                    ray.init(address="local", num_cpus=args.workers, include_dashboard=False)
                print(f"Ray start-up: {time.perf_counter() - t:.1f} s (once per session, not in the walls below)")
        t = time.perf_counter()
        if name == "ray-tasks":
            with gb.search.RayExecutor(args.address) as ex:
                outcomes = ex.map([Work(f"s{s}", gb.search.prune_grow, config, s) for s in seeds])
            graphs, seconds = [o.graph for o in outcomes], sum(o.seconds for o in outcomes)
        else:
            result = gb.search.sweep(gb.search.prune_grow, config, seeds=seeds, executor=name,
                                     address=args.address, workers=args.workers, progress=False)
            graphs, seconds = result.graphs, sum(t.seconds for t in result.trials)
        wall = time.perf_counter() - t
        rows[name] = (wall, seconds, graphs)
        print(f"  {name:<10} {wall:7.1f} s   ({before} -> {load()})", flush=True)

    base = rows.get("local")
    print(f"\n{'executor':<10} {'wall s':>8} {'speed-up':>9} {'overhead/trial s':>17} {'trial s (mean)':>15} "
          f"{'same graphs':>12}")
    for name, (wall, seconds, graphs) in rows.items():
        workers = 1 if name == "local" else args.workers
        overhead = (wall * min(workers, trials) - seconds) / trials
        speedup = f"{base[0] / wall:8.2f}x" if base else "-"
        equal = "yes" if base and all(same(g, b) for g, b in zip(graphs, base[2], strict=True)) else "-"
        print(f"{name:<10} {wall:8.1f} {speedup:>9} {overhead:17.2f} {seconds / trials:15.2f} {equal:>12}")


if __name__ == "__main__":
    main()
