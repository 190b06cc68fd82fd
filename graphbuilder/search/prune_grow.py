"""Prune/grow architecture search over arbitrary neuron DAGs: `prune_grow(X, y, target_error) -> SearchResult`.

Paper: "Growing an architecture for a neural network", arXiv:2108.02231 (ALGORITHMS.md section 1). The
network is any DAG of neurons (`NeuronGraph`); the search alternates two moves, pruning connections and adding
neurons, to minimise complexity while the validation error stays within `target_error`:

    train the start network (inputs wired straight to the outputs, or a given network)
    repeat:
        while validation error > target: add neuron(s), retrain                       ("grow")
        prune: score connections by saliency, remove the lowest few, retrain briefly;
               keep the result only if validation error <= target, else undo and try  ("prune")
               the next candidates; stop when `prune_tries` tries in a row fail
        stop if this add-then-prune cycle did not lower the best complexity (`patience` cycles)
        add neuron(s), retrain                                                         ("grow")
    until the budget (steps or seconds) runs out; return the lowest-complexity network within target.

The paper's unverifiable choices are parameters (defaults in brackets): complexity measure [connections],
saliency [trial | magnitude | obd], insertion [cascade | split], optimiser [adam | lbfgs]. Invariants kept:
the graph stays acyclic (NeuronGraph checks every edit); no accepted prune leaves the validation error above
target; connections never increase inside a prune phase; insertions start from the same function (cascade:
out-weights 0, exact; split: NEAT in-weight `split_scale`, out-weight w / split_scale, exact for identity
and near for tanh); a fixed seed gives the same result.

Boundary: search logic and its result only. Training and saliency are in `neuron_train.py`, the live widget
view in `live.py`, the layered-MLP baseline in `baseline.py`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.ops.neuron_graph import ACTIVATIONS, NeuronGraph
from graphbuilder.search import neuron_train
from graphbuilder.search.live import LiveView
from graphbuilder.search.result import BaseResult

COMPLEXITIES = ("connections", "neurons", "both")
INSERTIONS = ("cascade", "split")
CASCADE_INITS = ("fit", "zero")
RESULT_FORMAT = "graphbuilder.prune_grow_result"
HISTORY_COLUMNS = ("step", "cycle", "move", "accepted", "neurons", "connections", "complexity", "train_error",
                   "val_error", "seconds")


def complexity_of(ng: NeuronGraph, measure: str) -> int:
    """connections: connection count; neurons: hidden neuron count; both: their sum (weights + hidden biases)."""
    if measure == "connections":
        return ng.num_connections
    if measure == "neurons":
        return ng.num_hidden
    if measure == "both":
        return ng.num_connections + ng.num_hidden
    raise GraphError(f"complexity must be one of {COMPLEXITIES}, got {measure!r}")


@dataclass
class SearchResult(BaseResult):
    """What `prune_grow` found.

    Attributes:
        network: the best network (lowest complexity with validation error <= target; if none reached the
            target, the lowest validation error seen), with trained weights.
        history: one dict per step with `HISTORY_COLUMNS`: move ("init", "grow", "prune"), whether it was
            accepted (rejected prunes are undone), hidden neurons, connections, complexity, train and
            validation RMSE, seconds since the start.
        target_error: the validation RMSE the search had to stay within.
        config: every parameter the search ran with (JSON).
        reached: whether some network met the target.
        interrupted: whether the search was stopped with Ctrl-C (the best network so far is kept).
        stop_reason: why the search ended.
        widget_stats: with `widget=`, the live view's updates, skipped updates and seconds spent on them.
    """

    network: NeuronGraph
    history: list[dict[str, Any]]
    target_error: float
    config: dict[str, Any] = field(default_factory=dict)
    reached: bool = False
    interrupted: bool = False
    stop_reason: str = ""
    widget_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> Graph:
        """A `gb.Graph` x (1, inputs) -> neuron_graph -> y holding the best network and its weights: ready to
        compile, save, export or open in the widget."""
        return self.network.to_graph(self.config.get("name", "prune_grow"))

    @property
    def best(self) -> dict[str, Any]:
        """The history row of the returned network."""
        want = (self.network.num_connections, self.network.num_hidden)
        rows = [r for r in self.history if r["accepted"] and (r["connections"], r["neurons"]) == want]
        ok = [r for r in rows if r["val_error"] <= self.target_error]
        return min(ok or rows, key=lambda r: r["val_error"]) if (ok or rows) else {}

    def front(self) -> list[tuple[int, float]]:
        """The complexity-error Pareto front of the accepted steps: (complexity, val_error), complexity rising."""
        points = sorted({(r["complexity"], r["val_error"]) for r in self.history if r["accepted"]})
        out: list[tuple[int, float]] = []
        for c, e in points:
            if not out or e < out[-1][1]:
                if out and out[-1][0] == c:
                    continue
                out.append((c, e))
        return out

    def table(self, last: int | None = None) -> str:
        """The history as a text table (the last `last` rows)."""
        rows = self.history if last is None else self.history[-last:]
        head = (f"{'step':>5} {'cycle':>5} {'move':<6} {'ok':<3} {'neurons':>7} {'conns':>6} {'train':>8} "
                f"{'val':>8} {'s':>7}")
        lines = [head]
        for r in rows:
            lines.append(f"{r['step']:>5} {r['cycle']:>5} {r['move']:<6} {'y' if r['accepted'] else 'n':<3} "
                         f"{r['neurons']:>7} {r['connections']:>6} {r['train_error']:8.4f} {r['val_error']:8.4f} "
                         f"{r['seconds']:7.2f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        b = self.best
        return (f"SearchResult(target_error={self.target_error}, reached={self.reached}, "
                f"connections={self.network.num_connections}, neurons={self.network.num_hidden}, "
                f"val_error={b.get('val_error', float('nan')):.4g}, steps={len(self.history)}, "
                f"stop={self.stop_reason!r})")

    def plot(self, fig: Any = None) -> Any:
        """Matplotlib figure: complexity and error over steps (rejected prunes as crosses), and the
        complexity-error front of accepted steps with the target line. Returns the figure."""
        import matplotlib.pyplot as plt

        fig = fig or plt.figure(figsize=(11, 3.6))
        ax1, ax2, ax3 = fig.subplots(1, 3)
        steps = [r["step"] for r in self.history]
        ok = [r for r in self.history if r["accepted"]]
        bad = [r for r in self.history if not r["accepted"]]
        ax1.plot([r["step"] for r in ok], [r["connections"] for r in ok], "-", label="connections")
        ax1.plot([r["step"] for r in ok], [r["neurons"] for r in ok], "-", label="hidden neurons")
        ax1.set(xlabel="step", ylabel="count", title="complexity")
        ax1.legend(fontsize=8)
        ax2.plot([r["step"] for r in ok], [r["val_error"] for r in ok], "-", label="validation")
        ax2.plot([r["step"] for r in ok], [r["train_error"] for r in ok], "-", alpha=0.6, label="train")
        if bad:
            ax2.plot([r["step"] for r in bad], [r["val_error"] for r in bad], "x", color="C3", ms=4,
                     label="rejected prune")
        ax2.axhline(self.target_error, color="k", ls="--", lw=1, label="target")
        ax2.set(xlabel="step", ylabel="RMSE", title="error", xlim=(min(steps, default=0), max(steps, default=1)))
        ax2.legend(fontsize=8)
        ax3.scatter([r["complexity"] for r in ok], [r["val_error"] for r in ok], s=8, alpha=0.4, label="accepted")
        front = self.front()
        ax3.step([c for c, _ in front], [e for _, e in front], where="post", color="C1", label="front")
        ax3.axhline(self.target_error, color="k", ls="--", lw=1)
        ax3.set(xlabel=f"complexity ({self.config.get('complexity', 'connections')})", ylabel="validation RMSE",
                title="complexity-error front")
        ax3.legend(fontsize=8)
        fig.tight_layout()
        return fig

    # -- files -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON document: format tag, target, config, flags, history, and the network (topology + weights)."""
        state = self.network.state_dict()
        return {"format": RESULT_FORMAT, "version": 1, "target_error": self.target_error, "config": self.config,
                "reached": self.reached, "interrupted": self.interrupted, "stop_reason": self.stop_reason,
                "widget_stats": self.widget_stats, "history": self.history,
                "network": {"topology": self.network.to_json(), "weight": state["weight"].tolist(),
                            "bias": state["bias"].tolist()}}

    @classmethod
    def from_dict(cls, data: Any) -> SearchResult:
        """Rebuild a result from `to_dict` output, validating the network (raises `GraphError`)."""
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            raise GraphError(f"not a prune/grow result: 'format' must be {RESULT_FORMAT!r}")
        net = data.get("network")
        if not isinstance(net, dict):
            raise GraphError("a prune/grow result needs a 'network' object")
        ng = NeuronGraph.from_json(net.get("topology"))
        ng.load_state_dict({"weight": _floats(net.get("weight"), "network.weight"),
                            "bias": _floats(net.get("bias"), "network.bias")})
        history = data.get("history", [])
        if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
            raise GraphError("'history' must be a list of objects")
        return cls(ng, history, float(data["target_error"]), dict(data.get("config", {})),
                   bool(data.get("reached")), bool(data.get("interrupted")), str(data.get("stop_reason", "")),
                   dict(data.get("widget_stats", {})))


def _floats(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise GraphError(f"{where} must be a list of numbers")
    return [float(v) for v in value]


class _Budget(Exception):
    """Raised inside the search when steps or seconds run out."""


def prune_grow(X: Any, y: Any, target_error: float, *, start: NeuronGraph | Graph | None = None,
               complexity: str = "connections", saliency: str = "trial", insertion: str = "cascade",
               optimizer: str = "adam", activation: str = "tanh", lr: float = 0.02,
               train_steps: int = 600, retrain_steps: int = 100, grow_neurons: int = 1,
               prune_batch: int = 1, max_prune_batch: int = 8, prune_tries: int = 3, patience: int = 2,
               grow_patience: int = 6,
               cascade_init: str = "zero", candidates: int = 4, candidate_steps: int = 60,
               split_scale: float = 0.1, max_hidden: int = 64, max_steps: int = 1000,
               max_seconds: float = 240.0, val_fraction: float = 0.25, validation: tuple[Any, Any] | None = None,
               seed: int = 0, progress: bool = True, widget: Any = None, widget_interval: float = 0.5,
               threads: int | None = 1, name: str = "prune_grow") -> SearchResult:
    """Search a neuron DAG that fits (X, y) within `target_error` (validation RMSE) with few connections.

    Args:
        X, y: data, (N, inputs) and (N,) or (N, outputs); arrays or tensors (used as float32, unscaled).
        target_error: the validation RMSE every accepted prune must stay within.
        start: the start network (a `NeuronGraph`, or a `gb.Graph` holding one `neuron_graph` node); default:
            every input wired straight to every output (a linear model).
        complexity: what to minimise: "connections" (default), "neurons" (hidden) or "both" (their sum).
        saliency: connection score for pruning: "trial" (default; exact training-loss increase when the
            connection is removed: one forward pass per connection, cheap for small networks, and on
            image_function 32x32 it pruned to 13 / 36 connections where magnitude stopped at 19 / 41),
            "magnitude" ``|w|`` or "obd" (Optimal Brain Damage, 1/2 h_kk w_k^2 with the Gauss-Newton diagonal).
        insertion: how neurons are added: "cascade" (default; cascade-correlation style: fed by every input
            and hidden neuron with small random weights, feeding every output with weight 0) or "split"
            (NEAT: a connection chosen with probability ~ ``|w|`` is split, plus zero-weight connections from
            every input so the new unit can learn more than a 1-D function).
        optimizer: "adam" (default; `lr`) or "lbfgs" (strong-Wolfe line search), full batch.
        activation: activation of added neurons (one of `ACTIVATIONS`; outputs stay linear).
        lr: Adam learning rate.
        train_steps: optimiser steps after the start and after each growth.
        retrain_steps: optimiser steps after each prune.
        grow_neurons: neurons added per growth move.
        prune_batch, max_prune_batch: connections removed per prune move; the batch doubles after each
            accepted prune (up to `max_prune_batch`) and drops back to `prune_batch` after a rejection.
        prune_tries: rejected prunes in a row (each trying the next candidates) before pruning stalls.
        patience: add-then-prune cycles in a row that may fail to lower the best complexity before stopping.
        grow_patience: while above target, growth moves in a row that may fail to lower the validation error
            (by 0.5%) before the search gives up on the target (it then returns the lowest error seen).
        cascade_init: how a cascade neuron starts: "zero" (default; random in-weights, out-weights 0: exactly
            the same function; Adam's noise moves it off, but it is a stationary point for L-BFGS) or "fit"
            (cascade-correlation: `candidates` random units, each fitted for `candidate_steps` L-BFGS
            iterations to the current training residual, the best inserted with its least-squares out-weights,
            so the training error can only fall; use it with optimizer="lbfgs"). On image_function 32x32
            with Adam, "fit" grew sharper units that generalised worse (see benchmarks/bench_prune_grow.py).
        candidates, candidate_steps: see `cascade_init`.
        split_scale: split insertion in-weight (small keeps tanh near identity).
        max_hidden: growth stops at this many hidden neurons.
        max_steps, max_seconds: budget (history rows, wall seconds). The defaults finish within ~5 minutes on
            2 CPU cores for a few hundred samples.
        val_fraction, validation: held-out share of (X, y) (seeded split), or an explicit (X_val, y_val).
        seed: makes the run deterministic (split, new weights, split choices).
        progress: show a tqdm bar over steps.
        widget: a `gb.GraphWidget` to show the network live (expanded to one node per neuron; pruned
            connections fade, added neurons are highlighted); updates are throttled to under 5% of the time.
        widget_interval: at least this many seconds between widget updates.
        threads: torch CPU threads during the search (restored after); 1 is fastest for small networks.
        name: name of the result graph.

    Returns a `SearchResult`. Ctrl-C stops the search and returns the best network so far.
    """
    from tqdm.auto import tqdm

    _check_choice("complexity", complexity, COMPLEXITIES)
    _check_choice("saliency", saliency, neuron_train.SALIENCIES)
    _check_choice("insertion", insertion, INSERTIONS)
    _check_choice("cascade_init", cascade_init, CASCADE_INITS)
    _check_choice("optimizer", optimizer, neuron_train.OPTIMIZERS)
    _check_choice("activation", activation, ACTIVATIONS)
    if not (isinstance(target_error, (int, float)) and target_error > 0 and math.isfinite(target_error)):
        raise GraphError(f"target_error must be a positive number (a validation RMSE), got {target_error!r}")
    Xt, yt = neuron_train.as_tensors(X, y)
    if validation is not None:
        Xv, yv = neuron_train.as_tensors(*validation)
        Xtr, ytr = Xt, yt
    else:
        Xtr, ytr, Xv, yv = neuron_train.split(Xt, yt, val_fraction, seed)
    if Xv.shape[1] != Xtr.shape[1] or yv.shape[1] != ytr.shape[1]:
        raise GraphError(f"validation data has {Xv.shape[1]} inputs / {yv.shape[1]} outputs, training data "
                         f"{Xtr.shape[1]} / {ytr.shape[1]}")
    n_in, n_out = Xtr.shape[1], ytr.shape[1]
    rng = np.random.default_rng(seed)
    ng = _start_network(start, n_in, n_out, seed)
    config = {"target_error": float(target_error), "complexity": complexity, "saliency": saliency,
              "insertion": insertion, "optimizer": optimizer, "activation": activation, "lr": lr,
              "train_steps": train_steps, "retrain_steps": retrain_steps, "grow_neurons": grow_neurons,
              "prune_batch": prune_batch, "max_prune_batch": max_prune_batch, "prune_tries": prune_tries,
              "patience": patience, "grow_patience": grow_patience,
              "cascade_init": cascade_init, "candidates": candidates, "candidate_steps": candidate_steps,
              "split_scale": split_scale, "max_hidden": max_hidden, "max_steps": max_steps,
              "max_seconds": max_seconds, "val_fraction": val_fraction, "seed": seed, "name": name,
              "train_samples": int(Xtr.shape[0]), "val_samples": int(Xv.shape[0]),
              "start": "given" if start is not None else "direct"}

    t0 = time.perf_counter()
    history: list[dict[str, Any]] = []
    live = LiveView(widget, min_interval=widget_interval) if widget is not None else None
    bar = tqdm(total=max_steps, disable=not progress, desc="prune/grow", unit="step")
    state = {"best": None, "best_key": None, "fallback": None, "fallback_err": math.inf, "cycle": 0}

    def record(move: str, net: NeuronGraph, accepted: bool, train_err: float, val_err: float,
               pruned: list[tuple[int, int]] = (), added: list[int] = ()) -> None:
        row = {"step": len(history), "cycle": state["cycle"], "move": move, "accepted": accepted,
               "neurons": net.num_hidden, "connections": net.num_connections,
               "complexity": complexity_of(net, complexity), "train_error": train_err, "val_error": val_err,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        if accepted:
            key = (row["complexity"], val_err)
            if val_err <= target_error and (state["best_key"] is None or key < state["best_key"]):
                state["best"], state["best_key"] = net.copy(), key
            if val_err < state["fallback_err"]:
                state["fallback"], state["fallback_err"] = net.copy(), val_err
        bar.update(1)
        bar.set_postfix(conns=net.num_connections, neurons=net.num_hidden, val=f"{val_err:.4f}", refresh=False)
        if live is not None:
            live.update(net if accepted else ng, pruned=pruned if accepted else (), added=added)
        if len(history) >= max_steps:
            raise _Budget("max_steps")
        if time.perf_counter() - t0 >= max_seconds:
            raise _Budget("max_seconds")

    def train(net: NeuronGraph, steps: int) -> tuple[float, float]:
        tr = neuron_train.fit(net, Xtr, ytr, steps, optimizer, lr)
        return tr, neuron_train.rmse(net, Xv, yv)

    def grow() -> None:
        nonlocal ng
        added = []
        for _ in range(grow_neurons):
            unit = None
            if insertion == "cascade" and cascade_init == "fit":
                unit = _fit_cascade_unit(ng, Xtr, ytr, activation, candidates, candidate_steps,
                                         int(rng.integers(2**31)))
            added.append(_insert(ng, insertion, activation, split_scale, rng, unit))
        tr, va = train(ng, train_steps)
        record("grow", ng, True, tr, va, added=added)

    stop_reason, interrupted = "", False
    threads_ctx = neuron_train.torch_threads(threads)
    threads_ctx.__enter__()
    try:
        tr, va = train(ng, train_steps)
        record("init", ng, True, tr, va)
        batch = prune_batch
        no_gain = 0
        before = math.inf  # best complexity before this add-then-prune cycle
        while True:
            stale, floor = 0, va
            while va > target_error:
                if ng.num_hidden + grow_neurons > max_hidden:
                    raise _Budget("max_hidden")
                if stale >= grow_patience:
                    raise _Budget("validation error stopped improving above target")
                grow()
                va = history[-1]["val_error"]
                stale, floor = (0, va) if va < floor * 0.995 else (stale + 1, floor)
            # -- prune phase: connections only ever go down here
            failures = 0
            while failures < prune_tries and ng.num_connections > 0:
                scores = neuron_train.saliency(ng, Xtr, ytr, saliency)
                ranked = sorted(scores, key=lambda e: (scores[e], e))
                chosen = ranked[failures * batch:(failures + 1) * batch] if batch == 1 else ranked[:batch]
                if not chosen:
                    break
                trial = ng.copy()
                for e in chosen:
                    trial.remove_connection(*e)
                trial.simplify()
                tr_t, va_t = train(trial, retrain_steps)
                if va_t <= target_error:
                    ng, va = trial, va_t
                    failures = 0
                    batch = min(batch * 2, max_prune_batch)
                    record("prune", ng, True, tr_t, va_t, pruned=chosen)
                else:
                    if batch == prune_batch:
                        failures += 1
                    batch = prune_batch
                    record("prune", trial, False, tr_t, va_t)
            after = state["best_key"][0] if state["best_key"] else math.inf
            no_gain = no_gain + 1 if after >= before else 0
            if no_gain >= patience:
                stop_reason = "an add-then-prune cycle no longer lowered complexity"
                break
            state["cycle"] += 1
            before = after
            if ng.num_hidden + grow_neurons > max_hidden:
                raise _Budget("max_hidden")
            grow()
            va = history[-1]["val_error"]
    except _Budget as e:
        stop_reason = f"budget: {e.args[0]}"
    except KeyboardInterrupt:
        stop_reason, interrupted = "interrupted", True
    finally:
        bar.close()
        threads_ctx.__exit__(None, None, None)
    best = state["best"] if state["best"] is not None else (state["fallback"] or ng)
    stats: dict[str, Any] = {}
    if live is not None:
        live.update(best, force=True)
        stats = {"updates": live.updates, "skipped": live.skipped, "seconds": live.spent,
                 "search_seconds": time.perf_counter() - t0}
    return SearchResult(best, history, float(target_error), config, reached=state["best"] is not None,
                        interrupted=interrupted, stop_reason=stop_reason, widget_stats=stats)


def _check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise GraphError(f"{what} must be one of {list(choices)}, got {value!r}")


def _start_network(start: NeuronGraph | Graph | None, n_in: int, n_out: int, seed: int) -> NeuronGraph:
    if start is None:
        return NeuronGraph.direct(n_in, n_out, seed=seed)
    ng = NeuronGraph.from_graph(start) if isinstance(start, Graph) else start.copy()
    if len(ng.inputs) != n_in or len(ng.outputs) != n_out:
        raise GraphError(f"the start network has {len(ng.inputs)} inputs and {len(ng.outputs)} outputs, but the "
                         f"data has {n_in} and {n_out}")
    return ng


def _fit_cascade_unit(ng: NeuronGraph, X: Any, y: Any, activation: str, candidates: int, steps: int,
                      seed: int) -> tuple[list[float], float, list[float], list[float]]:
    """(in-weights, bias, out-weights, output-bias shifts) of a cascade unit fitted to the training residual,
    fed by every input and hidden neuron (in that order)."""
    module = ng.to_module()
    values = module.neuron_values(X)  # (N, neurons): inputs, hidden, outputs
    with torch.no_grad():
        residual = y - module(X)  # (N, O)
    sources = values[:, :len(ng.inputs) + ng.num_hidden]
    w, b, a, c, _ = neuron_train.fit_unit(sources, residual, activation, candidates=candidates, steps=steps,
                                          seed=seed)
    return w, b, a, c


def _insert(ng: NeuronGraph, insertion: str, activation: str, split_scale: float, rng: np.random.Generator,
            unit: tuple[list[float], float, list[float], list[float]] | None = None) -> int:
    """Add one neuron. Split: exactly the same function for identity, nearly for tanh. Cascade with `unit`
    (from `_fit_cascade_unit`): the fitted unit, output biases shifted, training error no higher; without:
    random in-weights and out-weights 0, exactly the same function."""
    if insertion == "split" and ng.num_connections:
        conns = ng.connections
        weights = np.abs(np.array([ng.weight(*e) for e in conns])) + 1e-12
        src, dst = conns[int(rng.choice(len(conns), p=weights / weights.sum()))]
        new = ng.split(src, dst, activation=activation, scale=split_scale)
        for i in ng.inputs:
            if not ng.has_connection(i, new):
                ng.add_connection(i, new, 0.0)
        return new
    sources = ng.inputs + ng.hidden
    if unit is not None:
        w, b, a, c = unit
        for o, shift in zip(ng.outputs, c, strict=True):
            ng.set_bias(o, ng.bias(o) + shift)
        return ng.add_neuron(sources, ng.outputs, activation, weights=w, out_weights=a, bias=b)
    bound = 1.0 / math.sqrt(len(sources))
    return ng.add_neuron(sources, ng.outputs, activation, weights=rng.uniform(-bound, bound, len(sources)).tolist())
