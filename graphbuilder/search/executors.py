"""Where search work runs: in this process, in a pool of local processes, or on a Ray cluster.

Boundary: running units of work and handing back their packets (`transport.py`); what the work means and how
results are kept is the caller's (`sweep.py`). One interface, three implementations:

    local       in this process, one unit after another (the default; nothing to install or start)
    processes   a pool of spawned local processes, one per core (`concurrent.futures.ProcessPoolExecutor`)
    ray         Ray (optional extra ``graphbuilder[ray]``): ``ray.init()`` on this machine, or ``address=`` of
                a running cluster; whole trials run under Ray Tune (`tune_runner.py`), finer units as Ray tasks

A unit (`Work`) is a function, its config and a seed; it goes to the worker pickled (functions by reference
under ``processes``, by Ray's cloudpickle under ``ray``), except that graphs in the config travel as graph
files. What comes back is bytes only: the unit's packet of graph files, which the caller reads with the same
validation as any file. Every executor runs a unit through the same `run_work`: torch threads set to
``threads`` (1 by default, so parallel units do not contend for cores), every random generator seeded with the
unit's seed, the packet made the same way; so the same seeds give the same graphs wherever they run.

Failures: an exception raised by the function is part of the packet (`Outcome.error`), never retried, since
running it again would raise it again. A worker process that dies (killed, out of memory, its machine gone)
is not the function's fault: its units are run again, up to ``retries`` more times each.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import random
import time
import weakref
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import torch

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.search import transport
from graphbuilder.search.neuron_train import torch_threads
from graphbuilder.search.transport import GraphDocument, Outcome

EXECUTORS = ("local", "processes", "ray")
RAY_INSTALL = "pip install 'graphbuilder[ray]'"


@dataclass(frozen=True)
class Work:
    """One unit of search work: ``fn(**config, seed=seed)`` with ``threads`` torch threads.

    `fn` returns a search result (`BaseResult`) or a ``(gb.Graph, metrics dict)`` pair. `key` names the unit
    in errors and stored results.
    """

    key: str
    fn: Callable[..., Any]
    config: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    threads: int | None = 1

    def for_transport(self) -> Work:
        """This unit with each `gb.Graph` in its config replaced by its file bytes (`GraphDocument`)."""
        if not any(isinstance(v, Graph) for v in self.config.values()):
            return self
        config = {k: GraphDocument.of(v) if isinstance(v, Graph) else v for k, v in self.config.items()}
        return replace(self, config=config)


def run_work(work: Work) -> bytes:
    """Run one unit and return its packet (`transport.pack`); an exception becomes an error packet."""
    start = time.perf_counter()
    try:
        config = {k: _writable(v.load() if isinstance(v, GraphDocument) else v) for k, v in work.config.items()}
        with torch_threads(work.threads), seeded(work.seed):
            produced = work.fn(**config, seed=work.seed)
        return transport.pack(work.key, produced, time.perf_counter() - start)
    except Exception as e:  # the driver reports it, naming the unit
        return transport.pack_error(work.key, e, time.perf_counter() - start)


def _writable(value: Any) -> Any:
    """A NumPy array that Ray handed over read-only (zero-copy from its object store) as a writable copy, so
    a search sees the same kind of array on every executor."""
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        return value.copy()
    return value


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's global generators for the block, and restore them after (a search
    run in the caller's process leaves the caller's random streams as they were)."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class Executor(ABC):
    """Runs units of work (`Work`) and hands back their packets.

    `submit` is the primitive. `run_units` drives many units to completion through it, with retries after
    lost workers, and `map` reads their packets into `Outcome`s; `run` does the same for whole trials (Ray
    hands those to Tune). Use an executor as a context manager, or call `close`.

    Args:
        retries: how many more times a unit runs after its worker dies.
    """

    name: ClassVar[str]

    def __init__(self, retries: int = 2) -> None:
        if not isinstance(retries, int) or retries < 0:
            raise GraphError(f"retries must be a whole number >= 0, got {retries!r}")
        self.retries = retries

    @property
    @abstractmethod
    def workers(self) -> int:
        """How many units run at once."""

    @abstractmethod
    def submit(self, work: Work) -> Future[bytes]:
        """Start one unit; the future's result is its packet."""

    def worker_lost(self, error: BaseException) -> bool:
        """Whether `error` (a failed future's) means the worker died rather than the unit failing."""
        return False

    def recover(self, future: Future[bytes]) -> None:  # noqa: B027 (a hook: most executors need nothing)
        """Called after a worker of `future` was lost, before its units are submitted again."""

    def run(self, works: Sequence[Work], on_done: Callable[[Work, bytes], None], *,
            workdir: str | None = None) -> None:
        """Run whole trials: every unit, calling ``on_done(work, packet)`` on this thread as each finishes (in
        completion order, exactly once per unit). A unit whose worker dies runs again, up to `retries` times;
        after that its packet is an error saying so. `workdir` is a folder the executor may keep run state
        in. By default this is `run_units`; Ray runs trials under Tune instead."""
        self.run_units(works, on_done)

    def run_units(self, works: Sequence[Work], on_done: Callable[[Work, bytes], None]) -> None:
        """`run` through `submit`: the units are submitted at once and handed over as they finish."""
        pending: dict[Future[bytes], Work] = {}
        attempts: Counter[str] = Counter()

        def launch(work: Work) -> None:
            attempts[work.key] += 1
            pending[self.submit(work)] = work

        for work in works:
            launch(work)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            lost = []
            for future in done:
                work = pending.pop(future)
                error = future.exception()
                if error is None:
                    on_done(work, future.result())
                elif self.worker_lost(error):
                    self.recover(future)
                    lost.append(work)
                else:
                    on_done(work, transport.pack_error(work.key, error, 0.0))
            for work in lost:
                if attempts[work.key] > self.retries:
                    on_done(work, transport.pack_error(work.key, GraphError(
                        f"its worker died {attempts[work.key]} times (executor {self.name!r})"), 0.0))
                else:
                    launch(work)

    def map(self, works: Sequence[Work]) -> list[Outcome]:
        """Run `works` as units (`run_units`: Ray tasks, not Tune trials) and return their outcomes in the
        order given (packets read with `transport.read`)."""
        packets: dict[str, bytes] = {}
        self.run_units(works, lambda work, packet: packets.__setitem__(work.key, packet))
        return [transport.read(packets[w.key]) for w in works]

    def close(self) -> None:  # noqa: B027 (a hook: the local executor holds no workers)
        """Release the executor's workers."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers}, retries={self.retries})"


class LocalExecutor(Executor):
    """Units run in this process, one after another, when submitted."""

    name = "local"

    @property
    def workers(self) -> int:
        """One unit at a time."""
        return 1

    def submit(self, work: Work) -> Future[bytes]:
        """Run the unit now (through the same transport as the other executors) and return a done future."""
        future: Future[bytes] = Future()
        future.set_result(run_work(work.for_transport()))
        return future

    def run_units(self, works: Sequence[Work], on_done: Callable[[Work, bytes], None]) -> None:
        """Run the units one after another, handing each packet over as soon as it is made."""
        for work in works:
            on_done(work, run_work(work.for_transport()))


class ProcessExecutor(Executor):
    """A pool of spawned local processes (one per core by default); a broken pool is replaced and its units
    resubmitted. Functions travel by reference, so they must be importable (module-level, not lambdas).

    Args:
        workers: pool size (default: the cores this process may use).
        retries: see `Executor`.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, retries: int = 2) -> None:
        super().__init__(retries)
        self._workers = workers or len(os.sched_getaffinity(0))
        if self._workers < 1:
            raise GraphError(f"workers must be >= 1, got {workers!r}")
        self._pool: ProcessPoolExecutor | None = None
        self._pool_of: weakref.WeakKeyDictionary[Future[bytes], ProcessPoolExecutor] = weakref.WeakKeyDictionary()

    @property
    def workers(self) -> int:
        """The pool size."""
        return self._workers

    def _current_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: a forked child inherits the parent's torch threads and locks mid-use
            self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def submit(self, work: Work) -> Future[bytes]:
        """Queue the unit on the pool. Raises `GraphError` for a function the workers could not import."""
        try:
            pickle.dumps(work.fn)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise GraphError(f"executor 'processes' sends the search function by name, and {work.fn!r} has none "
                             f"that a new process can import ({e}); define it at the top level of a module, or "
                             "use executor='ray'") from None
        pool = self._current_pool()
        future = pool.submit(run_work, work.for_transport())
        self._pool_of[future] = pool
        return future

    def worker_lost(self, error: BaseException) -> bool:
        """A pool whose process died breaks, failing all its futures with `BrokenProcessPool`."""
        return isinstance(error, BrokenProcessPool)

    def recover(self, future: Future[bytes]) -> None:
        """Replace the pool, unless that was already done for another future of the same broken pool."""
        if self._pool is not None and self._pool_of.get(future) is self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Shut the pool down (its processes exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor(Executor):
    """Ray: a local instance started with ``ray.init()``, or the cluster at `address` (``"auto"``, or
    ``"ray://host:10001"`` / ``"host:6379"``). If Ray is already initialised in this process, that instance
    is used. Whole trials (`run`) run under Ray Tune, which restarts a trial whose worker died; single
    units (`submit`) run as Ray tasks, which Ray retries the same way.

    Args:
        address: the cluster to join (None: start Ray on this machine, unless it is running already).
        retries: see `Executor`.
        tune_options: keyword arguments of `tune_runner.run_trials` for `run`: ``scheduler=``, a Ray Tune trial
            scheduler.
    """

    name = "ray"

    def __init__(self, address: str | None = None, retries: int = 2, **tune_options: Any) -> None:
        super().__init__(retries)
        ray = require_ray()
        if not ray.is_initialized():
            try:
                # the workers' output stays in Ray's logs: the sweep draws one bar, and failures come back
                # in the packets with their tracebacks
                ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
            except Exception as e:  # Ray raises plain Exception when its processes do not come up
                where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
                raise GraphError(f"could not start or join {where}: {type(e).__name__}: {e}") from e
        self.address = address
        self.tune_options = tune_options

    @property
    def workers(self) -> int:
        """The CPUs of the Ray cluster."""
        return int(require_ray().cluster_resources().get("CPU", 1))

    def submit(self, work: Work) -> Future[bytes]:
        """Run the unit as a Ray task (one CPU, retried by Ray after a worker dies)."""
        task = _ray_task().options(num_cpus=work.threads or 1, max_retries=self.retries)
        return task.remote(work.for_transport()).future()

    def run(self, works: Sequence[Work], on_done: Callable[[Work, bytes], None], *,
            workdir: str | None = None) -> None:
        """Run the units as Ray Tune trials (`tune_runner.run_trials`)."""
        from graphbuilder.search.tune_runner import run_trials

        run_trials(works, on_done, retries=self.retries, workdir=workdir, **self.tune_options)


_RAY_TASK: Any = None


def _ray_task() -> Any:
    """`run_work` as a Ray remote function (made once, on first use)."""
    global _RAY_TASK
    if _RAY_TASK is None:
        _RAY_TASK = require_ray().remote(run_work)
    return _RAY_TASK


def require_ray() -> ModuleType:
    """The `ray` module, or a `GraphError` that says how to install it."""
    try:
        import ray
        import ray.tune  # noqa: F401  (the extra installs both; a partial install is as good as none)
    except ImportError as e:
        raise GraphError(f"the 'ray' executor needs Ray with Ray Tune, which is not installed ({e}); install "
                         f"it with {RAY_INSTALL} (or pip install 'ray[tune]')") from None
    return ray


def make_executor(executor: str | Executor = "local", address: str | None = None, workers: int | None = None,
                  retries: int = 2, **tune_options: Any) -> Executor:
    """An executor by name (``"local"``, ``"processes"``, ``"ray"``); an `Executor` passes through."""
    if isinstance(executor, Executor):
        return executor
    if executor == "local":
        return LocalExecutor(retries)
    if executor == "processes":
        return ProcessExecutor(workers, retries)
    if executor == "ray":
        return RayExecutor(address, retries, **tune_options)
    raise GraphError(f"executor must be one of {list(EXECUTORS)} or an Executor, got {executor!r}")
