"""The standard answer the prune/grow search is measured against: layered MLPs swept over depth and width.

Boundary: trains each MLP as a layered `NeuronGraph` with the same executor, optimiser, learning rate, data
split and activation as `prune_grow`, so the only difference is the architecture. "Connections" counts
weights (not biases), as for neuron graphs; "neurons" counts hidden units. Reference: arXiv:2108.02231 claims
the grown networks beat layered ones; `comparison` puts the two side by side for given target errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from graphbuilder.ops.neuron_graph import NeuronGraph
from graphbuilder.search import neuron_train


def mlp_sweep(X: Any, y: Any, *, depths: Sequence[int] = (1, 2, 3), widths: Sequence[int] = (2, 4, 8, 16, 32),
              activation: str = "tanh", optimizer: str = "adam", lr: float = 0.02, steps: int = 2000,
              val_fraction: float = 0.25, validation: tuple[Any, Any] | None = None,
              test: tuple[Any, Any] | None = None, seed: int = 0,
              threads: int | None = 1, progress: bool = True) -> list[dict[str, Any]]:
    """Train one MLP per (depth, width) (all hidden layers `width` wide; depth 0 is the linear model, always
    included) for `steps` full-batch steps; returns rows with depth, width, connections, neurons, train_error
    and val_error (RMSE) (and test_error on `test`, a held-out (X, y) never used for any decision), sorted
    by connections. The split matches `prune_grow` with the same seed."""
    Xt, yt = neuron_train.as_tensors(X, y)
    if validation is not None:
        Xtr, ytr = Xt, yt
        Xv, yv = neuron_train.as_tensors(*validation)
    else:
        Xtr, ytr, Xv, yv = neuron_train.split(Xt, yt, val_fraction, seed)
    Xte, yte = neuron_train.as_tensors(*test) if test is not None else (None, None)
    shapes = [(0, 0)] + [(d, w) for d in depths if d > 0 for w in widths]
    rows = []
    with neuron_train.torch_threads(threads):
        for depth, width in tqdm(shapes, disable=not progress, desc="MLP sweep"):
            ng = NeuronGraph.layered(Xt.shape[1], [width] * depth, yt.shape[1], activation=activation, seed=seed)
            train_error = neuron_train.fit(ng, Xtr, ytr, steps, optimizer, lr)
            rows.append({"depth": depth, "width": width, "connections": ng.num_connections,
                         "neurons": ng.num_hidden, "train_error": train_error,
                         "val_error": neuron_train.rmse(ng, Xv, yv)})
            if Xte is not None:
                rows[-1]["test_error"] = neuron_train.rmse(ng, Xte, yte)
    return sorted(rows, key=lambda r: (r["connections"], r["depth"]))


def smallest_reaching(rows: Sequence[dict[str, Any]], target: float) -> dict[str, Any] | None:
    """The row with the fewest connections whose validation error is <= `target` (None if none is)."""
    ok = [r for r in rows if r["val_error"] <= target]
    return min(ok, key=lambda r: (r["connections"], r["val_error"])) if ok else None


def mlp_targets(rows: Sequence[dict[str, Any]], bounds: Sequence[int] = (25, 80, 300)) -> list[float]:
    """Target errors spanning what the MLPs reach: for each bound, the lowest validation error of an MLP with
    at most that many connections (so the smallest MLP reaching it has at most `bound` connections); where
    the front is flat (repeated values), evenly spaced values between its ends instead. Rounded up to 4
    decimals (so the MLP that set a target still reaches it). Descending."""
    front = [min((r["val_error"] for r in rows if r["connections"] <= b), default=None) for b in bounds]
    targets = sorted({math.ceil(e * 1e4) / 1e4 for e in front if e is not None}, reverse=True)  # round up
    if len(targets) < len(bounds) and targets:
        cap = max(bounds[0], min(x["connections"] for x in rows))
        hi = min(r["val_error"] for r in rows if r["connections"] <= cap)
        lo = min(r["val_error"] for r in rows)
        if hi > lo:
            targets = [math.ceil((hi - (hi - lo) * k / (len(bounds) - 1)) * 1e4) / 1e4 for k in range(len(bounds))]
    return targets


def comparison(results: Sequence[Any], mlp_rows: Sequence[dict[str, Any]], test: tuple[Any, Any] | None = None
               ) -> list[dict[str, Any]]:
    """One row per prune/grow `SearchResult`: its target, connections, neurons, error, and the smallest MLP
    reaching the same target (connections, shape, error) with the ratio MLP / prune-grow connections. With
    `test` (held-out X, y), the prune/grow network's test RMSE too (`mlp_sweep(test=...)` gives the MLPs')."""
    out = []
    Xte, yte = neuron_train.as_tensors(*test) if test is not None else (None, None)
    for r in results:
        row: dict[str, Any] = {"target": r.target_error, "pg_connections": r.network.num_connections,
                               "pg_neurons": r.network.num_hidden, "pg_error": r.best.get("val_error"),
                               "pg_reached": r.reached,
                               "pg_test": None if Xte is None else neuron_train.rmse(r.network, Xte, yte),
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

    test = any(r.get("pg_test") is not None for r in rows)
    tcol = f" {'test':>7}" if test else ""
    lines = [f"{'target':>7} | {'PG conns':>8} {'neurons':>7} {'val':>7}{tcol} {'s':>5} | {'MLP':>6} {'conns':>6} "
             f"{'neurons':>7} {'val':>7}{tcol} | {'MLP/PG':>6}"]
    for r in rows:
        pg_conns = str(r["pg_connections"]) + ("" if r["pg_reached"] else "*")
        pg_t = f" {f(r.get('pg_test'), '.4f'):>7}" if test else ""
        mlp_t = f" {f(r.get('mlp_test'), '.4f'):>7}" if test else ""
        lines.append(f"{r['target']:>7.4f} | {pg_conns:>8} {r['pg_neurons']:>7} {f(r['pg_error'], '.4f'):>7}{pg_t} "
                     f"{f(r.get('seconds'), '.0f'):>5} | "
                     f"{f(r['mlp'], ''):>6} {f(r['mlp_connections'], 'd'):>6} {f(r['mlp_neurons'], 'd'):>7} "
                     f"{f(r['mlp_error'], '.4f'):>7}{mlp_t} | {f(r['ratio'], '.2f'):>6}")
    if any(not r["pg_reached"] for r in rows):
        lines.append("* prune/grow did not reach this target; its lowest-error network is shown")
    return "\n".join(lines)
