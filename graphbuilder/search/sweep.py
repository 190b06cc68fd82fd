"""`sweep`: run a search for every config and seed, here, on all local cores, or on a Ray cluster.

    result = gb.search.sweep(gb.search.prune_grow, [{"X": X, "y": y, "target_error": 0.05}], seeds=[0, 1, 2, 3],
                             executor="ray", results_dir="runs/pg")
    result.results      # the four SearchResults, in (config, seed) order, each with its .graph
    result.table()      # one row per trial: seed, config values, metrics, seconds, host
    result.plot()       # error against FLOPs (or connections) with the Pareto front

Boundary: the sweep's bookkeeping (trials, the results folder, progress, the live widget, the result object);
where the trials run is `executors.py`, how their results travel `transport.py`.

Each trial is one unit of work ``search_fn(**config, seed=seed)`` run by the executor, which hands back the
trial's packet of graph files. With `results_dir`, every finished trial is written there at once, all or
nothing (``trials/<key>/``: ``trial.json``, ``graph.graph.json``, ``graph.safetensors``), before anything else
happens to it; a sweep started again with the same folder loads the trials it finds (validated like any file)
and runs only the rest. So a finished trial is never lost or run twice, even when the driver itself was
stopped. ``sweep.json`` in the folder holds a fingerprint of each trial's search, config and seed; a folder
written by a different sweep is refused rather than mixed in.

A search that raises fails its trial only: the other trials finish and are kept, and the sweep then raises a
`SweepError` (a `GraphError`) naming each failed trial and its cause, with the finished part as `.sweep`.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphbuilder.ir import serialize
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.search import transport
from graphbuilder.search.executors import Executor, Work, make_executor
from graphbuilder.search.result import BaseResult
from graphbuilder.search.transport import Outcome

SWEEP_FORMAT = "graphbuilder.sweep"
RESULT_FORMAT = "graphbuilder.sweep_result"
MODES = ("min", "max")


@dataclass
class Trial(Outcome):
    """One (config, seed) run of a sweep: its `Outcome` (key, metrics, result, graph with weights, error and
    the worker's traceback, seconds, host, pid), and which config and seed it ran.

    Attributes:
        config_index, seed: which config and seed it ran. Its key is ``c<config index>-s<seed>`` (a Tune
            search's: ``<trial id>-s<seed>``).
        config: the config's JSON values (arrays and other objects are left out).
    """

    config_index: int = 0
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepResult(BaseResult):
    """What `sweep` found: one `Trial` per (config, seed), in that order.

    `results` are the search results; `graph` is the best trial's graph (by `metric` and `mode`); `table()`
    and `plot()` compare the trials.
    """

    trials: list[Trial]
    metric: str = "error"
    mode: str = "min"
    search: str = ""
    results_dir: str | None = None

    @property
    def results(self) -> list[BaseResult | None]:
        """The search results in (config, seed) order (None for a trial that failed)."""
        return [t.result for t in self.trials]

    @property
    def graphs(self) -> list[Graph | None]:
        """The trials' graphs with their weights, in (config, seed) order."""
        return [t.graph for t in self.trials]

    @property
    def best(self) -> Trial:
        """The finished trial with the lowest (mode "min") or highest `metric`."""
        ranked = [t for t in self.trials if t.error is None and self.metric in t.metrics]
        if not ranked:
            raise GraphError(f"no finished trial has the metric {self.metric!r}; metrics: "
                             f"{sorted({m for t in self.trials for m in t.metrics})}")
        sign = 1.0 if self.mode == "min" else -1.0
        return min(ranked, key=lambda t: sign * t.metrics[self.metric])

    @property
    def graph(self) -> Graph:
        """The best trial's graph."""
        graph = self.best.graph
        assert graph is not None
        return graph

    def metrics(self) -> dict[str, float]:
        """The best trial's metrics."""
        return dict(self.best.metrics)

    def table(self) -> Any:
        """One row per trial: key, config index, seed, the config values that differ between configs, the
        metrics, seconds, host and failure (a failed trial's error). A pandas DataFrame when pandas is
        installed, else a list of dicts."""
        varying = _varying_keys([t.config for t in self.trials])
        names = sorted({m for t in self.trials for m in t.metrics})
        rows = []
        for t in self.trials:
            row: dict[str, Any] = {"trial": t.key, "config": t.config_index, "seed": t.seed}
            row.update({k: t.config.get(k) for k in varying})
            row.update({m: t.metrics.get(m, math.nan) for m in names})
            row.update({"seconds": t.seconds, "host": t.host, "failure": t.error})
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)

    def plot(self, x: str | None = None, fig: Any = None) -> Any:
        """Matplotlib figure: each trial's `metric` against its cost `x` (default: FLOPs when the trials have
        them, else connections, else parameters), coloured by config, with the Pareto front (the trials no
        other trial beats on both) and the best trial starred. Returns the figure."""
        import matplotlib.pyplot as plt

        done = [t for t in self.trials if t.error is None and self.metric in t.metrics]
        x = x or next((m for m in ("flops", "connections", "params")
                       if done and all(t.metrics.get(m, 0) > 0 for t in done)), "params")
        fig = fig or plt.figure(figsize=(5.5, 4))
        ax = fig.subplots()
        for index in sorted({t.config_index for t in done}):
            group = [t for t in done if t.config_index == index and x in t.metrics]
            ax.scatter([t.metrics[x] for t in group], [t.metrics[self.metric] for t in group], s=18,
                       label=f"config {index}")
        front = self.front(x)
        ax.step([t.metrics[x] for t in front], [t.metrics[self.metric] for t in front], where="post",
                color="k", lw=1, label="Pareto front")
        if done:
            best = self.best
            ax.scatter([best.metrics.get(x, math.nan)], [best.metrics[self.metric]], marker="*", s=160,
                       color="gold", edgecolor="k", zorder=3, label=f"best ({best.key})")
        ax.set(xlabel=x, ylabel=self.metric, title=f"sweep of {self.search or 'a search'}: {len(done)} trials")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def front(self, x: str) -> list[Trial]:
        """The trials on the Pareto front of cost `x` (lower is better) and `metric` (by `mode`), by cost."""
        sign = 1.0 if self.mode == "min" else -1.0
        done = sorted((t for t in self.trials if t.error is None and {x, self.metric} <= set(t.metrics)),
                      key=lambda t: (t.metrics[x], sign * t.metrics[self.metric]))
        out: list[Trial] = []
        for t in done:
            if not out or sign * t.metrics[self.metric] < sign * out[-1].metrics[self.metric]:
                out.append(t)
        return out

    def __repr__(self) -> str:
        failed = sum(t.error is not None for t in self.trials)
        best = self.best.key if len(self.trials) > failed else None
        return (f"SweepResult({self.search or 'search'}: {len(self.trials)} trials, {failed} failed, "
                f"best={best!r} by {self.metric} ({self.mode}))")

    # -- files -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON document: metric, mode, search name and each trial with its result's document. Graphs of
        trials whose function returned a (graph, metrics) pair are kept without weights (the results folder
        has them with weights)."""
        trials = []
        for t in self.trials:
            entry: dict[str, Any] = {"key": t.key, "config_index": t.config_index, "seed": t.seed,
                                     "config": t.config, "metrics": t.metrics, "error": t.error,
                                     "details": t.details, "seconds": t.seconds, "host": t.host, "pid": t.pid}
            if t.result is not None:
                entry["result_type"], entry["result"] = t.result.type_name(), t.result.to_dict()
            elif t.graph is not None:
                entry["graph"] = serialize.graph_to_dict(t.graph)
            trials.append(entry)
        return {"format": RESULT_FORMAT, "version": 1, "metric": self.metric, "mode": self.mode,
                "search": self.search, "results_dir": self.results_dir, "trials": trials}

    @classmethod
    def from_dict(cls, data: Any) -> SweepResult:
        """Rebuild a sweep result from `to_dict` output; each trial's result through its class's `from_dict`
        (the class must be imported, `BaseResult.named`)."""
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            raise GraphError(f"not a sweep result: 'format' must be {RESULT_FORMAT!r}")
        if not isinstance(data.get("trials"), list):
            raise GraphError("a sweep result needs a 'trials' list")
        trials = []
        for i, entry in enumerate(data["trials"]):
            if not isinstance(entry, dict):
                raise GraphError(f"trials[{i}] must be an object")
            result = graph = None
            if entry.get("result_type") is not None:
                result = BaseResult.named(str(entry["result_type"])).from_dict(entry.get("result"))
                graph = result.graph
            elif entry.get("graph") is not None:
                graph = serialize.graph_from_dict(entry["graph"])
            metrics = transport.check_metrics(entry.get("metrics") or {})
            trials.append(Trial(str(entry["key"]), metrics, graph, result, entry.get("error"),
                                str(entry.get("details", "")), float(entry.get("seconds", 0.0)),
                                str(entry.get("host", "")), int(entry.get("pid", 0)), int(entry["config_index"]),
                                int(entry["seed"]), dict(entry.get("config") or {})))
        return cls(trials, str(data.get("metric", "error")), str(data.get("mode", "min")),
                   str(data.get("search", "")), data.get("results_dir"))


class SweepError(GraphError):
    """Some trials of a sweep failed. The message names each with its cause; `.sweep` is the `SweepResult`
    with every trial (failed ones with `error` set) and `.failed` the failed trials."""

    def __init__(self, message: str, sweep: SweepResult) -> None:
        super().__init__(message)
        self.sweep = sweep
        self.failed = [t for t in sweep.trials if t.error is not None]


def sweep(search_fn: Callable[..., Any], configs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
          seeds: Sequence[int] = (0,), executor: str | Executor = "local", address: str | None = None, *,
          results_dir: str | os.PathLike[str] | None = None, workers: int | None = None, retries: int = 2,
          threads: int | None = 1, metric: str = "error", mode: str = "min", progress: bool = True,
          widget: Any = None, widget_interval: float = 1.0, scheduler: Any = None, search_alg: Any = None,
          num_samples: int | None = None) -> SweepResult:
    """Run ``search_fn(**config, seed=seed)`` for every config and seed and collect the results.

    Args:
        search_fn: a search (`gb.search.prune_grow`, `gb.search.trinity`, or any function taking the config's
            keywords and ``seed``) returning a search result (`BaseResult`) or a ``(gb.Graph, metrics)`` pair.
            Under ``processes`` it must be importable (a module-level function). If it takes ``progress`` and
            a config does not set it, it gets ``progress=False``: the sweep shows one bar over trials instead.
        configs: one config (a dict of keyword arguments) or a list of them. A `gb.Graph` value travels to
            the worker as a graph file.
        seeds: the seeds each config runs with (distinct integers).
        executor: ``"local"`` (this process, one trial after another; the default), ``"processes"`` (one
            spawned process per core) or ``"ray"`` (Ray Tune trials on ``ray.init()``'s local instance, or on
            the cluster at `address`; needs ``pip install 'graphbuilder[ray]'``); or an `Executor` to reuse.
        address: the Ray cluster to use with ``executor="ray"`` (``"auto"``, ``"host:6379"``, ``"ray://..."``).
        results_dir: a folder that keeps every finished trial; running the same sweep again with it resumes
            (see the module docstring). Default: none (results live in memory only).
        workers: processes for ``"processes"`` (default: one per core).
        retries: how many more times a trial runs after its worker process died.
        threads: torch threads per trial (and CPUs each Ray trial asks for); the same on every executor, so
            the same seeds give the same graphs everywhere.
        metric, mode: the figure that ranks trials (``"error"``, lowest first by default) for `best`, the
            widget and Tune's searchers.
        progress: one tqdm bar over trials.
        widget: a `gb.GraphWidget` that shows the best graph so far, updated at most every `widget_interval`
            seconds (and once at the end).
        scheduler: a Ray Tune trial scheduler (``executor="ray"`` only).
        search_alg: a Ray Tune search algorithm, or ``"optuna"`` for Optuna's sampler through Tune
            (``executor="ray"`` only). `configs` is then one config whose values may be Tune sampling domains
            (``ray.tune.loguniform(1e-3, 1e-1)``); `num_samples` configs are chosen, each run with every seed,
            and the searcher sees the mean of `metric` over the seeds. Such a sweep does not resume.
        num_samples: how many configs `search_alg` chooses.

    Returns a `SweepResult`. Raises `GraphError` for bad arguments and `SweepError` when trials failed.
    """
    if not callable(search_fn):
        raise GraphError(f"search_fn must be a function, got {type(search_fn).__name__}")
    config_list = [configs] if isinstance(configs, Mapping) else list(configs)
    if not config_list or not all(isinstance(c, Mapping) for c in config_list):
        raise GraphError("configs must be a dict of keyword arguments or a non-empty list of them")
    seed_list = list(seeds)
    if not seed_list or not all(isinstance(s, int) and not isinstance(s, bool) for s in seed_list):
        raise GraphError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seed_list)) != len(seed_list):
        raise GraphError(f"seeds must be distinct, got {seed_list}")
    if mode not in MODES:
        raise GraphError(f"mode must be one of {list(MODES)}, got {mode!r}")
    if any("seed" in c for c in config_list):
        raise GraphError("a config sets 'seed'; give seeds with seeds=[...] instead")
    tune_options = {"scheduler": scheduler} if scheduler is not None else {}
    if (tune_options or search_alg is not None) and executor != "ray":
        raise GraphError("scheduler and search_alg are Ray Tune's: use them with executor='ray' (for an "
                         "executor you made, RayExecutor(scheduler=...))")
    config_list = [_quiet(search_fn, c) for c in config_list]
    name = getattr(search_fn, "__qualname__", type(search_fn).__name__)
    identity = f"{getattr(search_fn, '__module__', '')}.{name}"
    run = _Run(name, metric, mode, progress, widget, widget_interval)
    runner = make_executor(executor, address, workers, retries, **tune_options)
    try:
        with _results_folder(results_dir) as folder:
            if search_alg is not None:
                if len(config_list) != 1 or not num_samples or num_samples < 1:
                    raise GraphError("search_alg needs one config (with Tune sampling domains) and num_samples >= 1")
                return run.chosen(search_fn, config_list[0], seed_list, folder, search_alg=search_alg,
                                  num_samples=num_samples, retries=retries, threads=threads,
                                  scheduler=scheduler, keep=results_dir is not None)
            works = {f"c{i}-s{s}": (i, Work(f"c{i}-s{s}", search_fn, c, s, threads))
                     for i, c in enumerate(config_list) for s in seed_list}
            return run.grid(runner, works, config_list, folder, identity if results_dir is not None else None)
    finally:
        if runner is not executor:
            runner.close()


def _quiet(search_fn: Callable[..., Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The config, with ``progress=False`` added for searches that draw their own bar."""
    try:
        takes_progress = "progress" in inspect.signature(search_fn).parameters
    except (TypeError, ValueError):  # builtins and some callables have no signature
        takes_progress = False
    return {**config, "progress": False} if takes_progress and "progress" not in config else dict(config)


class _results_folder:
    """The given results folder, or a temporary one removed afterwards."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path, self.tmp = path, None

    def __enter__(self) -> str:
        if self.path is None:
            self.tmp = tempfile.TemporaryDirectory(prefix="gb-sweep-")
            return self.tmp.name
        os.makedirs(self.path, exist_ok=True)
        return os.path.abspath(self.path)

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


class _Run:
    """One call of `sweep`: the trials so far, the progress bar and the widget."""

    def __init__(self, search: str, metric: str, mode: str, progress: bool, widget: Any, interval: float) -> None:
        self.search, self.metric, self.mode = search, metric, mode
        self.progress, self.widget, self.interval = progress, widget, interval
        self.trials: dict[str, Trial] = {}
        self.best: Trial | None = None
        self.shown: Trial | None = None
        self.last_shown = -math.inf

    # -- the two kinds of sweep ------------------------------------------------------------------------------------
    def grid(self, runner: Executor, works: dict[str, tuple[int, Work]], configs: list[dict[str, Any]],
             folder: str, identity: str | None) -> SweepResult:
        """Every (config, seed) unit, resuming from `folder` (kept when the search's `identity` is given)."""
        keep = identity is not None
        if keep:
            _check_manifest(folder, identity, works)
        for key, (index, work) in works.items():
            stored = os.path.join(folder, "trials", key)
            if os.path.isdir(stored):
                self._add(_trial(transport.load(stored), index, work.seed, configs[index]))
        todo = [work for key, (_, work) in works.items() if key not in self.trials]
        bar = self._bar(len(works), len(self.trials))

        def on_done(work: Work, packet: bytes) -> None:
            if work.key in self.trials:  # already delivered: a unit counts once
                return
            index = works[work.key][0]
            self._add(_trial(self._read(packet, folder, work.key), index, work.seed, configs[index]))
            self._tick(bar)

        try:
            if todo:
                runner.run(todo, on_done, workdir=os.path.join(folder, "tune"))
        finally:
            bar.close()
        return self._finish([self.trials[key] for key in works], folder if keep else None)

    def chosen(self, fn: Callable[..., Any], space: dict[str, Any], seeds: list[int], folder: str, *,
               search_alg: Any, num_samples: int, retries: int, threads: int | None, scheduler: Any,
               keep: bool) -> SweepResult:
        """A Tune search algorithm chooses the configs."""
        from graphbuilder.search import tune_runner

        bar = self._bar(num_samples * len(seeds), 0)
        order: list[str] = []

        def on_done(key: str, chosen: dict[str, Any], packet: bytes) -> None:
            trial_id = key.rsplit("-s", 1)[0]
            if trial_id not in order:
                order.append(trial_id)
            seed = int(key.rsplit("-s", 1)[1])
            self._add(_trial(self._read(packet, folder, key), order.index(trial_id), seed, chosen))
            self._tick(bar)

        try:
            tune_runner.search_trials(fn, space, seeds, search_alg=search_alg, num_samples=num_samples,
                                      metric=self.metric, mode=self.mode, on_done=on_done, retries=retries,
                                      workdir=os.path.join(folder, "tune"), scheduler=scheduler, threads=threads)
        finally:
            bar.close()
        trials = sorted(self.trials.values(), key=lambda t: (t.config_index, seeds.index(t.seed)))
        return self._finish(trials, folder if keep else None)

    # -- shared steps ------------------------------------------------------------------------------------------------
    def _read(self, packet: bytes, folder: str, key: str) -> Outcome:
        """Store the packet in the results folder (all or nothing), then read it back from there. A failed
        trial is not stored, so running the sweep again retries it."""
        stored = os.path.join(folder, "trials", key)
        try:
            transport.store(packet, stored)
            outcome = transport.load(stored)
        except GraphError as e:  # a packet that does not validate fails its trial, not the sweep
            outcome = Outcome(key, error=f"its result did not load: {e}")
        if outcome.error is not None:
            shutil.rmtree(stored, ignore_errors=True)
        return outcome

    def _add(self, trial: Trial) -> None:
        self.trials[trial.key] = trial
        if trial.error is None and self.metric in trial.metrics:
            sign = 1.0 if self.mode == "min" else -1.0
            if self.best is None or sign * trial.metrics[self.metric] < sign * self.best.metrics[self.metric]:
                self.best = trial

    def _bar(self, total: int, done: int) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=done, disable=not self.progress, desc="sweep", unit="trial")

    def _tick(self, bar: Any) -> None:
        if self.best is not None:
            bar.set_postfix({self.metric: f"{self.best.metrics[self.metric]:.4g}"}, refresh=False)
        bar.update(1)
        self._show()

    def _show(self, force: bool = False) -> None:
        """Put the best graph so far in the widget, at most every `interval` seconds (or now, if `force`)."""
        if self.widget is None or self.best is None or self.best is self.shown or self.best.graph is None:
            return
        now = time.perf_counter()
        if not force and now - self.last_shown < self.interval:
            return
        self.widget.graph = self.best.graph.copy()
        self.shown, self.last_shown = self.best, time.perf_counter()

    def _finish(self, trials: list[Trial], results_dir: str | None) -> SweepResult:
        self._show(force=True)
        result = SweepResult(trials, self.metric, self.mode, self.search, results_dir)
        failed = [t for t in trials if t.error is not None]
        if failed:
            lines = "\n".join(f"  trial {t.key} (config {t.config_index}, seed {t.seed}): {t.error}" for t in failed)
            kept = f"; the other {len(trials) - len(failed)} trials finished" if len(failed) < len(trials) else ""
            again = (f" and are kept in {results_dir}: run the sweep again with it to retry only the failed ones"
                     if results_dir and kept else "")
            raise SweepError(f"{len(failed)} of {len(trials)} trials failed:\n{lines}\n(the workers' tracebacks "
                             f"are in error.failed[i].details){kept}{again}", result)
        return result


def _trial(outcome: Outcome, index: int, seed: int, config: Mapping[str, Any]) -> Trial:
    return Trial(**vars(outcome), config_index=index, seed=seed, config=_json_values(config))


def _json_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config's entries that are JSON scalars or lists of them (for tables; data arrays are left out)."""
    def plain(v: Any) -> bool:
        return v is None or isinstance(v, (bool, int, float, str)) or (
            isinstance(v, (list, tuple)) and len(v) <= 16 and all(plain(x) for x in v))

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items() if plain(v)}


def _varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1]


def _check_manifest(folder: str, search: str, works: dict[str, tuple[int, Work]]) -> None:
    """Refuse a results folder written by a different sweep; record this sweep's trials in it."""
    path = os.path.join(folder, "sweep.json")
    prints = {key: transport.fingerprint({"search": search, "config": work.config,
                                          "seed": work.seed})
              for key, (_, work) in works.items()}
    known: dict[str, str] = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            known = dict(doc["trials"]) if doc.get("format") == SWEEP_FORMAT else {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise GraphError(f"{path} is not a sweep manifest ({e}); use another results folder") from None
        changed = sorted(k for k in prints if k in known and known[k] != prints[k])
        if changed:
            raise GraphError(f"{folder} holds results of a different sweep: trial(s) {', '.join(changed)} ran "
                             "another search, config or seed; use another results folder (or delete this one)")
    doc = {"format": SWEEP_FORMAT, "version": 1, "trials": {**known, **prints}}
    serialize.atomic_write(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8"))
