"""Prune/grow architecture search over arbitrary neuron DAGs: `prune_grow(X, y, target_error) -> SearchResult`.

Paper: "Growing an architecture for a neural network", arXiv:2108.02231. The network is any DAG of neurons
(`NeuronGraph`); the search alternates two moves, pruning connections and adding neurons, to minimise
complexity while the validation error stays within `target_error`. The paper's body (its saliency, where and
how it inserts neurons, its stopping rule) could not be checked, so every such choice below is ours, a field
of `PruneGrowConfig`, and measured in `benchmarks/bench_prune_grow.py`:

    for each of `restarts` seeds (the time budget shared among them; the best network kept):
        start from the inputs wired straight to the outputs (or a given network); train
        grow until the validation error is within target                                  (grow_to)
        prune within target until it stalls                                              (prune_phase)
        repeat until `patience` cycles in a row fail to lower the best complexity:
            from the best network, prune past the target (validation error up to
            target * (1 + past_target), at most `past_prunes` prunes), add a neuron,
            grow back to target, prune within target; keep it if it is smaller
    return the lowest-complexity network within target (else the lowest validation error seen)

The moves:
- **Retrain** (`train`): Levenberg-Marquardt by default (`neuron_train.fit`); L-BFGS and Adam (moments kept
  across edits, rate decayed within each retrain) are options.
- **Prune** (`prune_move`): connections ranked by Optimal Brain Surgeon saliency w_q^2 / (2 [H^-1]_qq) on
  the Gauss-Newton Hessian; each candidate is removed *with* OBS's compensating update of every other
  parameter (backtracked where the quadratic model is poor), then confirmed by a short retrain. Candidates
  per move: the `confirm` top-ranked single connections and one set of `batch` connections chosen greedily
  by joint OBS cost (the batch doubles after it is accepted, up to `max_prune_batch`). The candidate
  removing the most connections within the limit wins; `prune_tries` rounds go deeper into the ranking
  before the phase stalls.
- **Grow** (`grow_move`): a pool of candidate neurons, each with at most `fan_in` sources chosen from the
  inputs and hidden neurons by how much of the residual a unit on them could explain
  (`neuron_train.source_scores`), and each activation of `activations`; every candidate is fitted to the
  current training residual; the one leaving the least validation residual is inserted feeding the outputs
  with its least-squares out-weights (so the training error can only fall), and the network retrained.
  Several neurons per move while the validation error is above `grow_far` x target. "cascade" (a fitted
  unit fed by every input and hidden neuron) and "split" (NEAT: split a connection) are the alternatives.

Candidate scoring is a pure function of (network, candidate, data, config, seed) (`score_prune`,
`score_unit`), mapped over the candidates with `map_fn` (the builtin `map` by default), so a parallel map
can score them on several workers.

Invariants: the graph stays acyclic (NeuronGraph checks every edit); no accepted "prune" step leaves the
validation error above target (only the deliberate "prune_past" steps may, and growth follows them), and
the returned network is within target when one was reached; connections never increase inside a prune
phase; an inserted neuron does not raise the training error; a fixed seed gives the same result (with a
step budget, or a time budget that is not reached). Decisions use a fixed validation split (`split_seed`,
the same for every restart); with `test=` the test error of every accepted network is recorded too.

Boundary: search logic and its result. Training, Hessians and saliency are in `neuron_train.py`, the live
view and progress bar in `live.py`, the layered-MLP baseline in `baseline.py`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.ops.modules.neuron_graph import activate
from graphbuilder.ops.neuron_graph import ACTIVATIONS, Edge, NeuronGraph
from graphbuilder.search import neuron_train
from graphbuilder.search.live import LiveView, NeuronGraphDisplay, SearchProgress
from graphbuilder.search.result import BaseResult

COMPLEXITIES = ("connections", "neurons", "both")
INSERTIONS = ("pool", "cascade", "split")
RESULT_FORMAT = "graphbuilder.prune_grow_result"
HISTORY_COLUMNS = ("step", "restart", "cycle", "move", "accepted", "neurons", "connections", "complexity",
                   "train_error", "val_error", "test_error", "seconds")
MapFn = Callable[[Callable[..., Any], Iterable[Any]], Iterable[Any]]


def complexity_of(ng: NeuronGraph, measure: str) -> int:
    """connections: connection count; neurons: hidden neuron count; both: their sum (weights + hidden biases)."""
    if measure == "connections":
        return ng.num_connections
    if measure == "neurons":
        return ng.num_hidden
    if measure == "both":
        return ng.num_connections + ng.num_hidden
    raise GraphError(f"complexity must be one of {COMPLEXITIES}, got {measure!r}")


# -- configuration ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PruneGrowConfig:
    """Every choice of the prune/grow search, with its default. `prune_grow(X, y, target, **fields)` or
    `prune_grow(X, y, target, config, **overrides)`; unknown names raise `GraphError` listing these.

    Retraining:
        optimizer: "lm" (Levenberg-Marquardt), "lbfgs" or "adam" (see `neuron_train.fit`).
        lr, lr_floor: Adam's rate, cosine-decayed to lr * lr_floor within each retrain.
        train_steps: optimiser steps after the start and after each growth (lm/lbfgs stop earlier once
            converged).
        retrain_steps: optimiser steps confirming each prune candidate.
    Pruning:
        saliency: "obs" (compensated), "obd", "trial" or "magnitude" (`neuron_train.saliency`).
        obs_damping: the Hessian's diagonal damping, relative to its mean diagonal.
        confirm: top-ranked single connections retrained per prune move.
        prune_batch, max_prune_batch: size of the greedy OBS set tried with them (doubles after acceptance).
        prune_tries: rounds of `confirm` further candidates before a prune phase stalls.
        past_target, past_prunes: in each cycle, prune past the target up to val error target*(1+past_target),
            at most `past_prunes` prunes, before regrowing.
        patience: cycles in a row that may fail to lower the best complexity before a restart ends.
    Growing:
        insertion: "pool" (sparse fitted candidates), "cascade" (fitted, fed by every input and hidden
            neuron) or "split" (NEAT add-node).
        pool: candidate source sets per new neuron (each tried with every activation).
        fan_in: at most this many sources per pool candidate.
        activations: the activations a new neuron may get (chosen per neuron by fit).
        candidate_starts, candidate_steps: random starts and L-BFGS iterations fitting each candidate.
        grow_far, max_grow: add up to `max_grow` neurons per move while val error > grow_far * target.
        grow_patience: growth moves in a row that may fail to lower the validation error by 1% before the
            search gives up on the target.
        split_scale: NEAT split in-weight (small keeps tanh near identity).
        max_hidden: no growth beyond this many hidden neurons.
    Budget and data:
        restarts: seeds tried per target (seed, seed + 1, ...); the best result is kept.
        max_seconds: time budget of the whole search (shared equally by the restarts), on `clock`.
        clock: "wall" (wall-clock seconds) or "process" (this process's CPU seconds: the same budget buys the
            same work however busy the machine is; benchmarks use it).
        max_steps: history rows, at most.
        val_fraction, split_seed: the fixed validation split (the same for every restart).
        seed: first restart's seed (start weights, candidate choices).
        complexity: what is minimised: "connections", "neurons" (hidden) or "both".
        threads: torch CPU threads during the search (restored after); 1 is fastest for small networks.
        widget_interval: at least this many seconds between live widget updates.
        name: the result graph's name.
    """

    optimizer: str = "lm"
    lr: float = 0.02
    lr_floor: float = 0.1
    train_steps: int = 100
    retrain_steps: int = 20
    saliency: str = "obs"
    obs_damping: float = 1e-4
    confirm: int = 3
    prune_batch: int = 1
    max_prune_batch: int = 16
    prune_tries: int = 2
    past_target: float = 0.1
    past_prunes: int = 4
    patience: int = 3
    insertion: str = "pool"
    pool: int = 6
    fan_in: int = 3
    activations: tuple[str, ...] = ("tanh", "sin")
    candidate_starts: int = 2
    candidate_steps: int = 40
    grow_far: float = 1.5
    max_grow: int = 3
    grow_patience: int = 6
    split_scale: float = 0.1
    max_hidden: int = 64
    restarts: int = 1
    max_seconds: float = 240.0
    clock: str = "wall"
    max_steps: int = 20_000
    val_fraction: float = 0.25
    split_seed: int = 0
    seed: int = 0
    complexity: str = "connections"
    threads: int | None = 1
    widget_interval: float = 0.5
    name: str = "prune_grow"

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, neuron_train.OPTIMIZERS)
        _check_choice("saliency", self.saliency, neuron_train.SALIENCIES)
        _check_choice("insertion", self.insertion, INSERTIONS)
        _check_choice("complexity", self.complexity, COMPLEXITIES)
        _check_choice("clock", self.clock, tuple(neuron_train.CLOCKS))
        acts = tuple(self.activations) if not isinstance(self.activations, str) else (self.activations,)
        object.__setattr__(self, "activations", acts)
        if not acts:
            raise GraphError("activations must name at least one activation")
        for a in acts:
            _check_choice("activations", a, ACTIVATIONS)
        for name in ("train_steps", "retrain_steps", "confirm", "prune_batch", "max_prune_batch", "prune_tries",
                     "pool", "fan_in", "candidate_starts", "max_grow", "grow_patience", "max_hidden", "restarts",
                     "max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name.endswith("_steps") else 1):
                raise GraphError(f"{name} must be a positive integer, got {value!r}")
        if not (self.max_seconds > 0 and self.past_target >= 0 and self.grow_far >= 1):
            raise GraphError(f"need max_seconds > 0, past_target >= 0 and grow_far >= 1; got {self.max_seconds}, "
                             f"{self.past_target}, {self.grow_far}")

    @classmethod
    def make(cls, base: PruneGrowConfig | None = None, **overrides: Any) -> PruneGrowConfig:
        """`base` (default: the defaults) with `overrides`; an unknown name raises `GraphError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise GraphError(f"unknown prune_grow option(s) {unknown}; the options are {sorted(names)}")
        return dataclasses.replace(base or cls(), **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values."""
        out = dataclasses.asdict(self)
        out["activations"] = list(self.activations)
        return out


def _check_choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise GraphError(f"{what} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class Data:
    """The fixed split every decision uses: training tensors (fit, saliency, residuals) and validation
    tensors (accept or reject); `test` is only ever reported."""

    X: torch.Tensor
    y: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None


# -- result -----------------------------------------------------------------------------------------------------
@dataclass
class SearchResult(BaseResult):
    """What `prune_grow` found.

    Attributes:
        network: the best network (lowest complexity with validation error <= target over all restarts; if
            none reached the target, the lowest validation error seen), with trained weights.
        history: one dict per step with `HISTORY_COLUMNS`: restart index, cycle, move ("init", "grow",
            "prune" within target, "prune_past" past it), whether it was accepted (rejected candidates are not
            kept), hidden neurons, connections,
            complexity, train / validation / test RMSE (test: None without `test=`), seconds since the start.
        target_error: the validation RMSE the search had to stay within.
        config: every option the search ran with (`PruneGrowConfig.to_dict`) plus the split sizes.
        reached: whether some network met the target.
        interrupted: whether the search was stopped with Ctrl-C (the best network so far is kept).
        stop_reason: why the search ended.
        restarts: one summary per restart: seed, reached, connections, neurons, val_error, test_error,
            seconds, stop reason.
        widget_stats: with `widget=`, the live view's updates, skipped updates and seconds spent on them.
        best_step: the history row of `network` (None when no step was recorded).
    """

    network: NeuronGraph
    history: list[dict[str, Any]]
    target_error: float
    config: dict[str, Any] = field(default_factory=dict)
    reached: bool = False
    interrupted: bool = False
    stop_reason: str = ""
    restarts: list[dict[str, Any]] = field(default_factory=list)
    widget_stats: dict[str, Any] = field(default_factory=dict)
    best_step: int | None = None

    @property
    def graph(self) -> Graph:
        """A `gb.Graph` x (1, inputs) -> neuron_graph -> y holding the best network and its weights: ready to
        compile, save, export or open in the widget."""
        return self.network.to_graph(self.config.get("name", "prune_grow"))

    @property
    def best(self) -> dict[str, Any]:
        """The history row of the returned network ({} when none was recorded)."""
        return self.history[self.best_step] if self.best_step is not None else {}

    @property
    def val_error(self) -> float:
        """Validation RMSE of the returned network."""
        return float(self.best.get("val_error", math.nan))

    @property
    def test_error(self) -> float | None:
        """Test RMSE of the returned network (None when the search had no `test=` data)."""
        return self.best.get("test_error")

    def metrics(self) -> dict[str, float]:
        """The graph's parameters and FLOPs, plus ``error`` (the returned network's validation RMSE),
        ``connections``, ``neurons`` (hidden) and ``reached`` (1 if it met the target, else 0)."""
        return {**super().metrics(), "error": self.val_error,
                "connections": float(self.network.num_connections), "neurons": float(self.network.num_hidden),
                "reached": float(self.reached)}

    def front(self, error: str = "val_error") -> list[tuple[int, float]]:
        """The complexity-error Pareto front of every accepted network: (complexity, error), complexity
        rising, error falling. `error` is "val_error" or "test_error" (where recorded)."""
        return pareto([(r["complexity"], r[error]) for r in self.history if r["accepted"] and r[error] is not None])

    def table(self, last: int | None = None) -> str:
        """The history as a text table (the last `last` rows)."""
        rows = self.history if last is None else self.history[-last:]
        head = (f"{'step':>5} {'rs':>2} {'cycle':>5} {'move':<6} {'ok':<3} {'neurons':>7} {'conns':>6} {'train':>8} "
                f"{'val':>8} {'test':>8} {'s':>7}")
        lines = [head]
        for r in rows:
            test = "-" if r.get("test_error") is None else f"{r['test_error']:.4f}"
            lines.append(f"{r['step']:>5} {r.get('restart', 0):>2} {r['cycle']:>5} {r['move']:<6} "
                         f"{'y' if r['accepted'] else 'n':<3} {r['neurons']:>7} {r['connections']:>6} "
                         f"{r['train_error']:8.4f} {r['val_error']:8.4f} {test:>8} {r['seconds']:7.2f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        test = "" if self.test_error is None else f", test_error={self.test_error:.4g}"
        return (f"SearchResult(target_error={self.target_error}, reached={self.reached}, "
                f"connections={self.network.num_connections}, neurons={self.network.num_hidden}, "
                f"val_error={self.val_error:.4g}{test}, restarts={len(self.restarts)}, steps={len(self.history)}, "
                f"stop={self.stop_reason!r})")

    def plot(self, fig: Any = None) -> Any:
        """Matplotlib figure: complexity and error over steps (rejected candidates as crosses), and the
        complexity-error front of accepted networks with the target line. Returns the figure."""
        import matplotlib.pyplot as plt

        fig = fig or plt.figure(figsize=(11, 3.6))
        ax1, ax2, ax3 = fig.subplots(1, 3)
        steps = [r["step"] for r in self.history]
        ok = [r for r in self.history if r["accepted"]]
        bad = [r for r in self.history if not r["accepted"]]
        ax1.plot([r["step"] for r in ok], [r["connections"] for r in ok], ".-", ms=2, label="connections")
        ax1.plot([r["step"] for r in ok], [r["neurons"] for r in ok], ".-", ms=2, label="hidden neurons")
        ax1.set(xlabel="step", ylabel="count", title="complexity")
        ax1.legend(fontsize=8)
        ax2.plot([r["step"] for r in ok], [r["val_error"] for r in ok], ".-", ms=2, label="validation")
        ax2.plot([r["step"] for r in ok], [r["train_error"] for r in ok], ".-", ms=2, alpha=0.6, label="train")
        if bad:
            ax2.plot([r["step"] for r in bad], [r["val_error"] for r in bad], "x", color="C3", ms=3,
                     label="rejected")
        ax2.axhline(self.target_error, color="k", ls="--", lw=1, label="target")
        ax2.set(xlabel="step", ylabel="RMSE", title="error", xlim=(min(steps, default=0), max(steps, default=1)))
        ax2.legend(fontsize=8)
        ax3.scatter([r["complexity"] for r in ok], [r["val_error"] for r in ok], s=8, alpha=0.4, label="accepted")
        front = self.front()
        ax3.step([c for c, _ in front], [e for _, e in front], where="post", color="C1", label="front")
        ax3.axhline(self.target_error, color="k", ls="--", lw=1)
        ax3.set(xlabel=f"complexity ({self.config.get('complexity', 'connections')})", ylabel="validation RMSE",
                title="complexity-error front", xscale="log")
        ax3.legend(fontsize=8)
        fig.tight_layout()
        return fig

    # -- files -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON document: format tag, target, config, flags, restarts, history, and the network (topology +
        weights)."""
        state = self.network.state_dict(torch.float64)  # the weights exactly (Python floats are doubles)
        return {"format": RESULT_FORMAT, "version": 2, "target_error": self.target_error, "config": self.config,
                "reached": self.reached, "interrupted": self.interrupted, "stop_reason": self.stop_reason,
                "restarts": self.restarts, "widget_stats": self.widget_stats, "best_step": self.best_step,
                "history": self.history,
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
        history, restarts = data.get("history", []), data.get("restarts", [])
        for name, rows in (("history", history), ("restarts", restarts)):
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise GraphError(f"{name!r} must be a list of objects")
        target = data.get("target_error")
        if isinstance(target, bool) or not isinstance(target, (int, float)):
            raise GraphError(f"'target_error' must be a number, got {target!r}")
        step = data.get("best_step")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(history)):
            raise GraphError(f"'best_step' must be a row of 'history' (0..{len(history) - 1}) or null, got {step!r}")
        return cls(ng, history, float(target), dict(data.get("config", {})), bool(data.get("reached")),
                   bool(data.get("interrupted")), str(data.get("stop_reason", "")), restarts,
                   dict(data.get("widget_stats", {})), step)


def _floats(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise GraphError(f"{where} must be a list of numbers")
    return [float(v) for v in value]


def pareto(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The Pareto front of (complexity, error) points: complexity rising, error strictly falling."""
    out: list[tuple[float, float]] = []
    for c, e in sorted(points):
        if not out or e < out[-1][1]:
            if out and out[-1][0] == c:
                continue
            out.append((c, e))
    return out


# -- moves: pure functions of (network, candidate, data, config, seed) ------------------------------------------
def train(net: NeuronGraph, data: Data, cfg: PruneGrowConfig, steps: int,
          moments: neuron_train.AdamMoments | None = None) -> tuple[float, float]:
    """Retrain `net` in place with the configured optimiser; returns (train RMSE, validation RMSE)."""
    tr = neuron_train.fit(net, data.X, data.y, steps, cfg.optimizer, lr=cfg.lr, lr_floor=cfg.lr_floor,
                          moments=moments, clock=cfg.clock)
    return tr, neuron_train.rmse(net, data.X_val, data.y_val)


@dataclass(frozen=True)
class PruneCandidate:
    """Connections to remove together, and the parameter vector to start the confirming retrain from (OBS's
    compensated weights; None keeps the others as they are)."""

    edges: tuple[Edge, ...]
    theta: tuple[float, ...] | None = None


@dataclass
class Scored:
    """A candidate network after its confirming retrain."""

    net: NeuronGraph
    train_error: float
    val_error: float
    removed: tuple[Edge, ...] = ()


def prune_candidates(net: NeuronGraph, data: Data, cfg: PruneGrowConfig, batch: int, offset: int = 0
                     ) -> list[PruneCandidate]:
    """The `confirm` single connections ranked `offset`, `offset` + 1, ... by saliency, plus (when `batch`
    > 1) one set of `batch` connections: with OBS, chosen greedily by joint cost and compensated."""
    if not net.num_connections:
        return []
    if cfg.saliency == "obs":
        surgeon = neuron_train.Surgeon.at(net, data.X, data.y, cfg.obs_damping)
        scores = surgeon.saliencies()
    else:
        surgeon = None
        scores = neuron_train.saliency(net, data.X, data.y, cfg.saliency)
    ranked = sorted(scores, key=lambda e: (scores[e], e))
    out = []
    for e in ranked[offset:offset + cfg.confirm]:
        theta = tuple(surgeon.remove([e])[0].tolist()) if surgeon is not None else None
        out.append(PruneCandidate((e,), theta))
    if batch > 1 and offset == 0 and len(ranked) > 1:
        k = min(batch, len(ranked) - 1)
        if surgeon is not None:
            chosen, theta, _ = surgeon.greedy(k)
            out.append(PruneCandidate(tuple(chosen), tuple(theta.tolist())))
        else:
            out.append(PruneCandidate(tuple(ranked[:k])))
    return out


def score_prune(net: NeuronGraph, candidate: PruneCandidate, data: Data, cfg: PruneGrowConfig, seed: int) -> Scored:
    """Apply `candidate` to a copy of `net` (removal, compensation, `simplify`) and retrain it for
    `retrain_steps`. Pure: `net` is not changed. (`seed` is unused by the deterministic optimisers; it is
    part of the signature so every scorer can be mapped alike.)

    OBS's compensating update is exact only for a quadratic loss; far from one (a flat direction of the
    Hessian makes the update large) it can land worse than removing the connection alone. So the update is
    scaled by whichever of 1, 1/2, 1/4 and 0 gives the lowest training loss (a backtracking safeguard; four
    forward passes) before the retrain."""
    trial = net.copy()
    for e in candidate.edges:
        trial.remove_connection(*e)
    if candidate.theta is not None:
        index = {c: k for k, c in enumerate(net.connections)}
        keep = torch.tensor([index[c] for c in trial.connections] +
                            list(range(net.num_connections, net.num_connections + net.num_hidden + len(net.outputs))))
        plain = neuron_train.parameters(net)[keep]
        step = torch.tensor(candidate.theta, dtype=torch.float64)[keep] - plain
        best = min((1.0, 0.5, 0.25, 0.0), key=lambda a: _train_loss(trial, plain + a * step, data))
        neuron_train.set_parameters(trial, plain + best * step)
    trial.simplify()
    tr, va = train(trial, data, cfg, cfg.retrain_steps)
    return Scored(trial, tr, va, candidate.edges)


def _train_loss(net: NeuronGraph, theta: torch.Tensor, data: Data) -> float:
    neuron_train.set_parameters(net, theta)
    return neuron_train.rmse(net, data.X, data.y)


@dataclass(frozen=True)
class UnitCandidate:
    """A would-be neuron: its sources (existing neuron ids) and activation."""

    sources: tuple[int, ...]
    activation: str


@dataclass(frozen=True)
class FittedUnit:
    """A candidate fitted to the training residual: in-weights, bias, out-weights and output-bias shifts (one
    per output), and the MSE left after adding it on the training and on the validation residual (the
    latter picks the unit, so a sharp unit that only fits training noise loses)."""

    candidate: UnitCandidate
    weights: tuple[float, ...]
    bias: float
    out_weights: tuple[float, ...]
    shifts: tuple[float, ...]
    mse: float
    val_mse: float = math.nan


def residual(net: NeuronGraph, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(values of every neuron (N, neurons) in topology order: inputs, hidden, outputs; residual y - f(X))."""
    module = net.to_module(dtype=torch.float64)
    X64 = X.to(torch.float64)
    values = module.neuron_values(X64)
    with torch.no_grad():
        return values, y.to(torch.float64) - module(X64)


def unit_candidates(net: NeuronGraph, data: Data, cfg: PruneGrowConfig, rng: np.random.Generator
                    ) -> list[UnitCandidate]:
    """The pool of would-be neurons. "pool": source sets of 1..`fan_in` neurons among inputs and hidden
    neurons: the top-k by `neuron_train.source_scores` for each k, then random sets drawn with probability
    ~ score, `pool` sets in all, each with every activation. "cascade": every input and hidden neuron as
    sources, one candidate per activation."""
    sources = net.inputs + net.hidden
    if cfg.insertion == "cascade":
        return [UnitCandidate(tuple(sources), a) for a in cfg.activations]
    values, r = residual(net, data.X, data.y)
    scores = neuron_train.source_scores(values[:, :len(sources)], r).numpy()
    order = [sources[j] for j in np.argsort(-scores, kind="stable")]
    sets: list[tuple[int, ...]] = []
    for k in range(1, min(cfg.fan_in, len(sources)) + 1):
        top = tuple(sorted(order[:k]))
        if top not in sets:
            sets.append(top)
    p = scores + 1e-3 * max(float(scores.max()), 1e-12)
    p = p / p.sum()
    tries = 0
    while len(sets) < cfg.pool and tries < 20 * cfg.pool:
        tries += 1
        k = int(rng.integers(1, min(cfg.fan_in, len(sources)) + 1))
        pick = tuple(sorted(int(sources[j]) for j in rng.choice(len(sources), size=k, replace=False, p=p)))
        if pick not in sets:
            sets.append(pick)
    return [UnitCandidate(s, a) for s in sets[:cfg.pool] for a in cfg.activations]


def score_unit(net: NeuronGraph, candidate: UnitCandidate, data: Data, cfg: PruneGrowConfig, seed: int
               ) -> FittedUnit:
    """Fit `candidate` to the training residual of `net` (`neuron_train.fit_unit`) and measure what it leaves
    of the validation residual. Pure."""
    column = {n: k for k, n in enumerate(net.inputs + net.hidden)}
    pick = [column[s] for s in candidate.sources]
    values, r = residual(net, data.X, data.y)
    w, b, a, c, mse = neuron_train.fit_unit(values[:, pick], r, candidate.activation, candidates=cfg.candidate_starts,
                                            steps=cfg.candidate_steps, seed=seed)
    values_v, r_v = residual(net, data.X_val, data.y_val)
    h = activate(candidate.activation, values_v[:, pick] @ torch.tensor(w, dtype=torch.float64) + b)  # (N_val,)
    fit_v = h[:, None] * torch.tensor(a, dtype=torch.float64) + torch.tensor(c, dtype=torch.float64)
    val_mse = float(torch.mean((r_v - fit_v) ** 2))
    return FittedUnit(candidate, tuple(w), b, tuple(a), tuple(c), mse, val_mse)


def insert_unit(net: NeuronGraph, unit: FittedUnit) -> int:
    """Add a fitted unit to `net` in place (feeding every output, output biases shifted); returns its id."""
    for o, shift in zip(net.outputs, unit.shifts, strict=True):
        net.set_bias(o, net.bias(o) + shift)
    return net.add_neuron(unit.candidate.sources, net.outputs, unit.candidate.activation,
                          weights=list(unit.weights), out_weights=list(unit.out_weights), bias=unit.bias)


def split_unit(net: NeuronGraph, cfg: PruneGrowConfig, rng: np.random.Generator) -> int:
    """NEAT add-node: split a connection chosen with probability ~ ``|w|`` (plus zero-weight connections from
    every input, so the new unit can learn more than a 1-D function); nearly the same function."""
    conns = net.connections
    if not conns:
        return insert_unit(net, FittedUnit(UnitCandidate(tuple(net.inputs), cfg.activations[0]),
                                           (0.0,) * len(net.inputs), 0.0, (0.0,) * len(net.outputs),
                                           (0.0,) * len(net.outputs), math.nan))
    weights = np.abs(np.array([net.weight(*e) for e in conns])) + 1e-12
    src, dst = conns[int(rng.choice(len(conns), p=weights / weights.sum()))]
    new = net.split(src, dst, activation=cfg.activations[0], scale=cfg.split_scale)
    for i in net.inputs:
        if not net.has_connection(i, new):
            net.add_connection(i, new, 0.0)
    return new


def grow_move(net: NeuronGraph, data: Data, cfg: PruneGrowConfig, n_units: int, rng: np.random.Generator,
              map_fn: MapFn = map) -> list[int]:
    """Add `n_units` neurons to `net` in place, each the candidate of a fresh pool (fitted to the residual
    left by the ones before) that leaves the least validation residual; returns their ids. Retraining is the
    caller's."""
    added = []
    for _ in range(n_units):
        if cfg.insertion == "split":
            added.append(split_unit(net, cfg, rng))
            continue
        pool = unit_candidates(net, data, cfg, rng)
        seeds = [int(s) for s in rng.integers(2**31, size=len(pool))]
        fitted = list(map_fn(score_unit, [net] * len(pool), pool, [data] * len(pool), [cfg] * len(pool), seeds))
        best = min(fitted, key=lambda f: (f.val_mse, len(f.candidate.sources)))
        added.append(insert_unit(net, best))
    return added


def prune_move(net: NeuronGraph, data: Data, cfg: PruneGrowConfig, batch: int, offset: int, seed: int,
               map_fn: MapFn = map) -> list[Scored]:
    """Score the prune candidates of `net` (`prune_candidates`), each confirmed by a short retrain."""
    cands = prune_candidates(net, data, cfg, batch, offset)
    n = len(cands)
    return list(map_fn(score_prune, [net] * n, cands, [data] * n, [cfg] * n, [seed] * n))


# -- the search -------------------------------------------------------------------------------------------------
class _Stop(Exception):
    """Raised inside a restart when its budget (time or steps) runs out; args[0] says which."""


class _Search:
    """One prune/grow search: the shared history, budget, display and the best network over restarts."""

    def __init__(self, data: Data, target: float, cfg: PruneGrowConfig, start: NeuronGraph | None,
                 progress: SearchProgress, live: LiveView | None, display: NeuronGraphDisplay | None,
                 map_fn: MapFn) -> None:
        self.data, self.target, self.cfg, self.start = data, target, cfg, start
        self.progress, self.live, self.display, self.map_fn = progress, live, display, map_fn
        self.history: list[dict[str, Any]] = []
        self.clock = neuron_train.CLOCKS[cfg.clock]
        self.t0 = self.clock()
        self.run_deadline = self.t0 + cfg.max_seconds  # this restart's share of the budget ends here
        self.restart, self.cycle = 0, 0
        self.best: NeuronGraph | None = None  # lowest complexity within target, all restarts
        self.best_key: tuple[int, float] | None = None
        self.fallback: NeuronGraph | None = None  # lowest validation error, all restarts
        self.fallback_err = math.inf
        self.best_step: int | None = None  # the history row of `best` (else of `fallback`)
        self.fallback_step: int | None = None
        self.run_best: NeuronGraph | None = None  # this restart's
        self.run_key: tuple[int, float] | None = None
        self.moments: neuron_train.AdamMoments | None = None

    # -- bookkeeping
    def key(self, net: NeuronGraph, val: float) -> tuple[int, float]:
        return complexity_of(net, self.cfg.complexity), val

    def record(self, move: str, net: NeuronGraph, accepted: bool, tr: float, va: float,
               pruned: Sequence[Edge] = ()) -> None:
        d = self.data
        test = (neuron_train.rmse(net, d.X_test, d.y_test) if accepted and d.X_test is not None else None)
        row = {"step": len(self.history), "restart": self.restart, "cycle": self.cycle, "move": move,
               "accepted": accepted, "neurons": net.num_hidden, "connections": net.num_connections,
               "complexity": complexity_of(net, self.cfg.complexity), "train_error": tr, "val_error": va,
               "test_error": test, "seconds": self.clock() - self.t0}
        self.history.append(row)
        if accepted:
            key = self.key(net, va)
            if va <= self.target:
                if self.run_key is None or key < self.run_key:
                    self.run_best, self.run_key = net.copy(), key
                if self.best_key is None or key < self.best_key:
                    self.best, self.best_key, self.best_step = net.copy(), key, row["step"]
            if va < self.fallback_err:
                self.fallback, self.fallback_err, self.fallback_step = net.copy(), va, row["step"]
            if self.display is not None:
                self.display.mark(pruned=pruned)
            if self.live is not None:
                self.live.update(net)
        best = self.best_key[0] if self.best_key else "-"
        self.progress.advance_to(row["seconds"], restart=self.restart, conns=net.num_connections,
                                 val=f"{va:.4f}", best=best)
        if len(self.history) >= self.cfg.max_steps:
            raise _Stop("max_steps")
        if self.clock() >= self.run_deadline:
            raise _Stop("max_seconds")

    def train(self, net: NeuronGraph, steps: int) -> tuple[float, float]:
        return train(net, self.data, self.cfg, steps, self.moments)

    # -- phases
    def grow(self, net: NeuronGraph, va: float, rng: np.random.Generator) -> float:
        """One growth move (several neurons when far above target) and retrain; returns the new val error."""
        cfg = self.cfg
        n = 1 + sum(va > self.target * cfg.grow_far ** k for k in (1, 2))
        n = min(n, cfg.max_grow, cfg.max_hidden - net.num_hidden)
        if n <= 0:
            raise _Stop("max_hidden")
        grow_move(net, self.data, cfg, n, rng, self.map_fn)
        tr, va = self.train(net, cfg.train_steps)
        self.record("grow", net, True, tr, va)
        return va

    def grow_to_target(self, net: NeuronGraph, va: float, rng: np.random.Generator) -> float:
        """Grow until the validation error is within target; raises _Stop when growth stops helping."""
        stale, floor = 0, va
        while va > self.target:
            if stale >= self.cfg.grow_patience:
                raise _Stop("validation error stopped improving above target")
            va = self.grow(net, va, rng)
            stale, floor = (0, va) if va < floor * 0.99 else (stale + 1, floor)
        return va

    def prune_phase(self, net: NeuronGraph, limit: float, rng: np.random.Generator,
                    max_accepts: int | None = None, move: str = "prune") -> NeuronGraph:
        """Prune while some candidate stays within `limit`; returns the pruned network (a new object).
        History rows are `move`: "prune" within target, "prune_past" past it."""
        cfg = self.cfg
        batch, accepts = cfg.prune_batch, 0
        while net.num_connections and (max_accepts is None or accepts < max_accepts):
            chosen = None
            for attempt in range(cfg.prune_tries):
                scored = prune_move(net, self.data, cfg, batch if attempt == 0 else 1, attempt * cfg.confirm,
                                    int(rng.integers(2**31)), self.map_fn)
                ok = [s for s in scored if s.val_error <= limit]
                if ok:
                    chosen = min(ok, key=lambda s: (-len(s.removed), s.val_error))
                    break
                if scored:
                    closest = min(scored, key=lambda s: s.val_error)
                    self.record(move, closest.net, False, closest.train_error, closest.val_error)
                if len(scored) < cfg.confirm:
                    break
            if chosen is None:
                break
            net = chosen.net
            accepts += 1
            batch = min(batch * 2, cfg.max_prune_batch) if len(chosen.removed) >= max(batch, 2) else cfg.prune_batch
            self.record(move, net, True, chosen.train_error, chosen.val_error, pruned=chosen.removed)
        return net

    def run(self, seed: int) -> str:
        """One restart from `seed`; returns why it ended."""
        cfg = self.cfg
        rng = np.random.default_rng(seed)
        self.run_best, self.run_key, self.cycle = None, None, 0
        self.moments = neuron_train.AdamMoments() if cfg.optimizer == "adam" else None
        n_in, n_out = self.data.X.shape[1], self.data.y.shape[1]
        net = self.start.copy() if self.start is not None else NeuronGraph.direct(n_in, n_out, seed=seed)
        try:
            tr, va = self.train(net, cfg.train_steps)
            self.record("init", net, True, tr, va)
            va = self.grow_to_target(net, va, rng)
            net = self.prune_phase(net, self.target, rng)
            no_gain = 0
            while no_gain < cfg.patience:
                self.cycle += 1
                before = self.run_key
                base = self.run_best.copy() if self.run_best is not None else net
                net = self.prune_phase(base, self.target * (1 + cfg.past_target), rng, cfg.past_prunes, "prune_past")
                va = self.grow(net, neuron_train.rmse(net, self.data.X_val, self.data.y_val), rng)
                va = self.grow_to_target(net, va, rng)
                net = self.prune_phase(net, self.target, rng)
                gained = self.run_key is not None and before is not None and self.run_key < before
                no_gain = 0 if gained else no_gain + 1
            return "cycles stopped lowering complexity"
        except _Stop as stop:
            return f"budget: {stop.args[0]}" if stop.args[0] in ("max_seconds", "max_steps", "max_hidden") \
                else stop.args[0]

    def summary(self, seed: int, reason: str, started: float) -> dict[str, Any]:
        net = self.run_best
        rows = [r for r in self.history if r["restart"] == self.restart and r["accepted"]]
        val = self.run_key[1] if self.run_key else min((r["val_error"] for r in rows), default=math.nan)
        test = None
        if net is not None and self.data.X_test is not None:
            test = neuron_train.rmse(net, self.data.X_test, self.data.y_test)
        return {"restart": self.restart, "seed": seed, "reached": net is not None,
                "connections": None if net is None else net.num_connections,
                "neurons": None if net is None else net.num_hidden, "val_error": val, "test_error": test,
                "seconds": self.clock() - started, "stop_reason": reason}


def prune_grow(X: Any, y: Any, target_error: float, config: PruneGrowConfig | None = None, *,
               start: NeuronGraph | Graph | None = None, validation: tuple[Any, Any] | None = None,
               test: tuple[Any, Any] | None = None, widget: Any = None, progress: bool = True,
               map_fn: MapFn | None = None, **overrides: Any) -> SearchResult:
    """Search a neuron DAG that fits (X, y) within `target_error` (validation RMSE) with few connections.

    Args:
        X, y: data, (N, inputs) and (N,) or (N, outputs); arrays or tensors (unscaled).
        target_error: the validation RMSE the returned network must stay within.
        config: a `PruneGrowConfig` (default: its defaults); `**overrides` replace any of its fields, e.g.
            ``prune_grow(X, y, 0.05, max_seconds=60, restarts=3, seed=1)``.
        start: the start network (a `NeuronGraph`, or a `gb.Graph` holding one `neuron_graph` node); default:
            every input wired straight to every output (a linear model).
        validation: an explicit (X_val, y_val) instead of the seeded split of (X, y).
        test: held-out (X_test, y_test): never used for a decision; its RMSE is recorded for every accepted
            network and reported in `restarts` and `SearchResult.test_error`.
        widget: a `gb.GraphWidget` to show the network live (expanded to one node per neuron; pruned
            connections fade, new and rewired neurons are coloured by `gb.diff`), throttled to under 5% of the time.
        progress: show a progress bar over the time budget; it ends saying why the search stopped.
        map_fn: how candidate scorers are mapped over candidates (`map(fn, *iterables)`, the default; a
            parallel map runs them on several workers).

    Returns a `SearchResult`. Ctrl-C stops the search and returns the best network so far.
    """
    cfg = PruneGrowConfig.make(config, **overrides)
    if isinstance(target_error, bool) or not (isinstance(target_error, (int, float)) and target_error > 0
                                               and math.isfinite(target_error)):
        raise GraphError(f"target_error must be a positive number (a validation RMSE), got {target_error!r}")
    data = _data(X, y, validation, test, cfg)
    start_net = _start_network(start, data.X.shape[1], data.y.shape[1])
    config_dict = {**cfg.to_dict(), "target_error": float(target_error), "train_samples": int(data.X.shape[0]),
                   "val_samples": int(data.X_val.shape[0]),
                   "test_samples": 0 if data.X_test is None else int(data.X_test.shape[0]),
                   "start": "given" if start is not None else "direct"}
    display = NeuronGraphDisplay(widget) if widget is not None else None
    live = LiveView(display, min_interval=cfg.widget_interval) if display is not None else None
    bar = SearchProgress(cfg.max_seconds, f"prune/grow to {target_error:g}", enabled=progress)
    search = _Search(data, float(target_error), cfg, start_net, bar, live, display, map_fn or map)
    restarts: list[dict[str, Any]] = []
    stop_reason, interrupted = "", False
    with neuron_train.torch_threads(cfg.threads):
        try:
            for k in range(cfg.restarts):
                search.restart = k
                started = search.clock()
                search.run_deadline = search.t0 + cfg.max_seconds * (k + 1) / cfg.restarts
                reason = search.run(cfg.seed + k)
                restarts.append(search.summary(cfg.seed + k, reason, started))
                stop_reason = reason if cfg.restarts == 1 else f"{k + 1} restarts done (last: {reason})"
                if reason == "budget: max_steps":
                    break
        except KeyboardInterrupt:
            stop_reason, interrupted = "interrupted", True
        except BaseException:
            bar.finish("failed", failed=True)
            raise
    best = search.best if search.best is not None else (search.fallback or start_net or
                                                        NeuronGraph.direct(data.X.shape[1], data.y.shape[1]))
    bar.finish(stop_reason, failed=interrupted)
    stats: dict[str, Any] = {}
    if live is not None:
        live.update(best, force=True)
        stats = live.stats()
    step = search.best_step if search.best is not None else search.fallback_step
    return SearchResult(best, search.history, float(target_error), config_dict, reached=search.best is not None,
                        interrupted=interrupted, stop_reason=stop_reason, restarts=restarts, widget_stats=stats,
                        best_step=step)


def _data(X: Any, y: Any, validation: tuple[Any, Any] | None, test: tuple[Any, Any] | None,
          cfg: PruneGrowConfig) -> Data:
    Xt, yt = neuron_train.as_tensors(X, y)
    if validation is not None:
        Xv, yv = neuron_train.as_tensors(*validation)
        Xtr, ytr = Xt, yt
    else:
        Xtr, ytr, Xv, yv = neuron_train.split(Xt, yt, cfg.val_fraction, cfg.split_seed)
    Xte, yte = neuron_train.as_tensors(*test) if test is not None else (None, None)
    for name, (a, b) in (("validation", (Xv, yv)), ("test", (Xte, yte))):
        if a is not None and (a.shape[1] != Xtr.shape[1] or b.shape[1] != ytr.shape[1]):
            raise GraphError(f"{name} data has {a.shape[1]} inputs / {b.shape[1]} outputs, training data "
                             f"{Xtr.shape[1]} / {ytr.shape[1]}")
    return Data(Xtr, ytr, Xv, yv, Xte, yte)


def _start_network(start: NeuronGraph | Graph | None, n_in: int, n_out: int) -> NeuronGraph | None:
    if start is None:
        return None
    ng = NeuronGraph.from_graph(start) if isinstance(start, Graph) else start.copy()
    if len(ng.inputs) != n_in or len(ng.outputs) != n_out:
        raise GraphError(f"the start network has {len(ng.inputs)} inputs and {len(ng.outputs)} outputs, but the "
                         f"data has {n_in} and {n_out}")
    return ng
