"""The standard answer the prune/grow search is measured against: layered MLPs at every width, and fronts.

Boundary: trains each MLP as a layered `NeuronGraph` with the same executor, optimiser, data split and
activation as `prune_grow`, so the only difference is the architecture; compares complexity-error fronts.
"Connections" counts weights (not biases), as for neuron graphs; "neurons" counts hidden units. Reference:
arXiv:2108.02231 claims the grown networks beat layered ones.

- `mlp_sweep` trains one- and two-hidden-layer MLPs at every width 1..32 (and the linear model), each from
  several seeds (and with each of several activations), and keeps the best per shape by validation error
  (as a practitioner would).
- `front` / `connections_to_reach` / `front_gap` read a complexity-error front: the fewest connections that
  reach an error, and the area between two fronts (the mean log2 ratio of the connections each needs, over
  a range of errors).
- `mlp_targets` picks target errors along the MLP front; `comparison` puts search results beside the
  smallest MLP reaching each target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from graphbuilder.ops.neuron_graph import NeuronGraph
from graphbuilder.search import neuron_train
from graphbuilder.search.prune_grow import pareto

WIDTHS = tuple(range(1, 33))


def mlp_sweep(X: Any, y: Any, *, depths: Sequence[int] = (1, 2), widths: Sequence[int] = WIDTHS,
              seeds: Sequence[int] = (0, 1, 2), activations: Sequence[str] = ("tanh",), optimizer: str = "lm",
              steps: int = 200, lr: float = 0.02, max_seconds: float | None = None, clock: str = "wall",
              val_fraction: float = 0.25,
              split_seed: int = 0, validation: tuple[Any, Any] | None = None, test: tuple[Any, Any] | None = None,
              threads: int | None = 1, progress: bool = True) -> list[dict[str, Any]]:
    """Train an MLP for every (depth, width) (all hidden layers `width` wide; depth 0, the linear model, is
    always included) with each activation of `activations` from each seed, for at most `steps` optimiser
    steps and `max_seconds` each (on `clock`, a `neuron_train.CLOCKS` name); keep the (activation, seed) with
    the lowest validation error. Returns rows with depth, width, activation, connections, neurons,
    train_error, val_error (RMSE), seed, seeds (how many trainings were tried), seconds (total over them), and
    test_error on `test` (a held-out (X, y) that no choice sees), sorted by connections. The validation split
    matches `prune_grow` with the same `val_fraction` and `split_seed`."""
    Xt, yt = neuron_train.as_tensors(X, y)
    if validation is not None:
        Xtr, ytr = Xt, yt
        Xv, yv = neuron_train.as_tensors(*validation)
    else:
        Xtr, ytr, Xv, yv = neuron_train.split(Xt, yt, val_fraction, split_seed)
    Xte, yte = neuron_train.as_tensors(*test) if test is not None else (None, None)
    shapes = [(0, 0)] + [(d, w) for d in depths if d > 0 for w in widths]
    rows = []
    with neuron_train.torch_threads(threads):
        for depth, width in tqdm(shapes, disable=not progress, desc="MLP sweep"):
            best: dict[str, Any] | None = None
            spent = 0.0
            tries = [(a, s) for a in activations for s in seeds] if depth else [(activations[0], seeds[0])]
            for activation, seed in tries:
                ng = NeuronGraph.layered(Xt.shape[1], [width] * depth, yt.shape[1], activation=activation, seed=seed)
                t = neuron_train.CLOCKS[clock]()
                train_error = neuron_train.fit(ng, Xtr, ytr, steps, optimizer, lr=lr, max_seconds=max_seconds,
                                               clock=clock)
                spent += neuron_train.CLOCKS[clock]() - t
                row = {"depth": depth, "width": width, "activation": activation, "connections": ng.num_connections,
                       "neurons": ng.num_hidden, "train_error": train_error, "val_error": neuron_train.rmse(ng, Xv, yv),
                       "seed": seed}
                if Xte is not None:
                    row["test_error"] = neuron_train.rmse(ng, Xte, yte)
                if best is None or row["val_error"] < best["val_error"]:
                    best = row
            assert best is not None
            best["seeds"], best["seconds"] = len(tries), spent
            rows.append(best)
    return sorted(rows, key=lambda r: (r["connections"], r["depth"]))


def front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The complexity-error front of (connections, error) points (see `prune_grow.pareto`)."""
    return pareto(points)


def rows_front(rows: Sequence[dict[str, Any]], error: str = "val_error") -> list[tuple[float, float]]:
    """The front of `mlp_sweep` rows (connections, `error`)."""
    return front([(r["connections"], r[error]) for r in rows if r.get(error) is not None])


def connections_to_reach(points: Sequence[tuple[float, float]], error: float) -> float:
    """The fewest connections of a front point with error <= `error` (inf if none)."""
    return min((c for c, e in points if e <= error), default=math.inf)


def front_gap(ours: Sequence[tuple[float, float]], theirs: Sequence[tuple[float, float]], lo: float, hi: float,
              levels: int = 64) -> dict[str, float]:
    """The area between two complexity-error fronts over errors in [lo, hi] (log-spaced `levels`): the mean
    of log2(connections `theirs` needs / connections `ours` needs) over the levels both reach ("log2_ratio":
    1.0 means `ours` needs half the connections on average; log2(3) = 1.58 is 3x fewer), its geometric
    "ratio", the worst level's ratio, and the share of levels only `ours` / only `theirs` reaches."""
    grid = np.exp(np.linspace(math.log(hi), math.log(lo), levels))
    grid[0], grid[-1] = hi, lo  # exactly, so a front point at an end counts
    logs, only_ours, only_theirs = [], 0, 0
    for e in grid:
        a, b = connections_to_reach(ours, e), connections_to_reach(theirs, e)
        if math.isinf(a) and math.isinf(b):
            continue
        if math.isinf(b):
            only_ours += 1
        elif math.isinf(a):
            only_theirs += 1
        else:
            logs.append(math.log2(b / max(a, 1)))
    mean = float(np.mean(logs)) if logs else math.nan
    return {"log2_ratio": mean, "ratio": 2 ** mean if logs else math.nan,
            "worst_ratio": 2 ** min(logs) if logs else math.nan, "levels": len(logs),
            "only_ours": only_ours / levels, "only_theirs": only_theirs / levels}


def mlp_targets(rows: Sequence[dict[str, Any]], fractions: Sequence[float] = (0.6, 0.45, 0.3, 0.2, 0.12, 0.06)
                ) -> list[float]:
    """Target errors along the MLP front: for each fraction f, the error f of the way from the best MLP's
    validation error to the linear model's (f near 1: easy; near 0: as hard as the best MLP), rounded up to
    4 decimals. Descending. Every target is reached by some MLP of the sweep."""
    linear = next((r["val_error"] for r in rows if r["depth"] == 0), max(r["val_error"] for r in rows))
    best = min(r["val_error"] for r in rows)
    return sorted({math.ceil((best + f * (linear - best)) * 1e4 - 1e-6) / 1e4 for f in fractions}, reverse=True)


def smallest_reaching(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The row with the fewest connections whose validation error is <= `target` (None if none is)."""
    ok = [r for r in rows if r["val_error"] <= target]
    return min(ok, key=lambda r: (r["connections"], r["val_error"])) if ok else None


def comparison(results: Sequence[Any], mlp_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per prune/grow `SearchResult`: its target, connections, neurons, validation and test error
    (test where the search had `test=`), restarts and seconds, beside the smallest MLP reaching the same
    target (shape, connections, errors), with the ratio MLP / prune-grow connections (None where the search
    did not reach the target or no MLP did)."""
    out = []
    for r in results:
        row: dict[str, Any] = {"target": r.target_error, "pg_connections": r.network.num_connections,
                               "pg_neurons": r.network.num_hidden, "pg_error": r.val_error, "pg_reached": r.reached,
                               "pg_test": r.test_error, "restarts": len(r.restarts),
                               "seconds": r.history[-1]["seconds"] if r.history else None}
        mlp = smallest_reaching(mlp_rows, r.target_error)
        row["mlp"] = None if mlp is None else f"{mlp['depth']}x{mlp['width']}"
        row["mlp_connections"] = None if mlp is None else mlp["connections"]
        row["mlp_neurons"] = None if mlp is None else mlp["neurons"]
        row["mlp_error"] = None if mlp is None else mlp["val_error"]
        row["mlp_test"] = None if mlp is None else mlp.get("test_error")
        row["ratio"] = (mlp["connections"] / max(1, r.network.num_connections)
                        if mlp is not None and r.reached else None)
        out.append(row)
    return out


def format_comparison(rows: Sequence[dict[str, Any]]) -> str:
    """`comparison` rows as a text table ('-' where no MLP of the sweep reaches the target)."""
    def f(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    lines = [f"{'target':>7} | {'PG conns':>8} {'neurons':>7} {'val':>7} {'test':>7} {'k':>2} {'s':>5} | "
             f"{'MLP':>5} {'conns':>6} {'neurons':>7} {'val':>7} {'test':>7} | {'MLP/PG':>6}"]
    for r in rows:
        pg_conns = str(r["pg_connections"]) + ("" if r["pg_reached"] else "*")
        lines.append(f"{r['target']:>7.4f} | {pg_conns:>8} {r['pg_neurons']:>7} {f(r['pg_error'], '.4f'):>7} "
                     f"{f(r.get('pg_test'), '.4f'):>7} {r.get('restarts', 1):>2} {f(r.get('seconds'), '.0f'):>5} | "
                     f"{f(r['mlp'], ''):>5} {f(r['mlp_connections'], 'd'):>6} {f(r['mlp_neurons'], 'd'):>7} "
                     f"{f(r['mlp_error'], '.4f'):>7} {f(r.get('mlp_test'), '.4f'):>7} | {f(r['ratio'], '.2f'):>6}")
    if any(not r["pg_reached"] for r in rows):
        lines.append("* prune/grow did not reach this target; its lowest-error network is shown")
    return "\n".join(lines)
