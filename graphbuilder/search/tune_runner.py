"""Ray Tune as the trial runner of sweeps on Ray (`executors.RayExecutor.run`, `sweep(..., search_alg=...)`).

Boundary: turning units of work into Tune trials and Tune's finished trials back into packets. It needs the
optional ``ray[tune]``, so it is imported only after `executors.require_ray` found it. Tune brings what a
cluster run needs: placement of trials on the cluster's CPUs, restarting a trial whose worker process or node
died (``FailureConfig.max_failures``), its trial schedulers, and its search algorithms (Optuna's sampler
among them).

Each trial runs `executors.run_work` and saves the unit's packet (`transport.py`) as its Tune checkpoint, a
folder holding ``trial.zip``; a callback on the driver reads that checkpoint when the trial completes and hands
the packet to the caller. A trial restarted after its packet was saved reports the saved packet again instead
of running the search twice. The searches report once, when they finish, so a scheduler that stops trials
early (ASHA, HyperBand) has only that one result to act on.

Tune's run state and checkpoints go under `workdir` (``<results folder>/tune``). On a cluster of several
machines that folder must be on a file system every machine shares (NFS), because each trial writes its
checkpoint from the machine it ran on.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ray import tune
from ray.tune.search.sample import Domain

from graphbuilder.ir.errors import GraphError
from graphbuilder.search import transport
from graphbuilder.search.executors import Work, run_work

PACKET_NAME = "trial.zip"


def run_trials(works: Sequence[Work], on_done: Callable[[Work, bytes], None], *, retries: int = 2,
               workdir: str | None = None, scheduler: Any = None) -> None:
    """Run each unit as one Tune trial (a grid over the units' keys), calling ``on_done(work, packet)`` on the
    driver as each trial completes, exactly once per unit. A trial whose worker dies is restarted up to
    `retries` times; after that its packet is an error naming Tune's error file. `scheduler` is any Tune
    trial scheduler."""
    by_key = {w.key: w.for_transport() for w in works}
    if len(by_key) != len(works):
        raise GraphError("the units of a Tune run need distinct keys")
    trainable = tune.with_parameters(_trial, works=by_key)
    threads = max((w.threads or 1) for w in works) if works else 1
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": threads}),
        param_space={"key": tune.grid_search(list(by_key))},
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=True),
        run_config=_run_config(workdir, retries, _Collect(lambda trial: by_key[trial.config["key"]], on_done)))
    with _quiet_tune():
        tuner.fit()


def search_trials(fn: Callable[..., Any], space: Mapping[str, Any], seeds: Sequence[int], *, search_alg: Any,
                  num_samples: int, metric: str, mode: str, on_done: Callable[[str, dict[str, Any], bytes], None],
                  retries: int = 2, workdir: str | None = None, scheduler: Any = None, threads: int | None = 1) -> None:
    """Let a Tune search algorithm choose `num_samples` configs from `space` (its values that are Tune
    sampling domains, e.g. ``tune.loguniform(1e-3, 1e-1)``; other values are passed as they are). Each trial
    runs ``fn(**config, seed=s)`` for every seed in `seeds` and reports the mean of `metric` to the searcher.
    ``on_done(key, chosen, packet)`` gets each seed's packet (key ``"<trial id>-s<seed>"``) with the values
    the searcher chose. `search_alg` is a Tune searcher, or ``"optuna"`` for `OptunaSearch` (Optuna's TPE
    sampler)."""
    chosen_space = {k: v for k, v in space.items() if isinstance(v, Domain)}
    if not chosen_space:
        raise GraphError("search_alg needs a config with values to choose: Tune sampling domains such as "
                         "ray.tune.uniform(0.01, 0.1) or ray.tune.choice([...])")
    fixed = Work("fixed", fn, {k: v for k, v in space.items() if k not in chosen_space}).for_transport().config
    if search_alg == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg = OptunaSearch()
    trainable = tune.with_parameters(_search_trial, fn=fn, fixed=fixed, seeds=list(seeds), metric=metric,
                                     threads=threads)

    def deliver(trial: Any, packet: bytes) -> None:
        for name, data in _unzip_members(packet).items():
            on_done(name.removesuffix(".zip"), {k: trial.config[k] for k in chosen_space}, data)

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": threads or 1}),
        param_space=chosen_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, metric=metric, mode=mode,
                                    num_samples=num_samples, reuse_actors=True),
        run_config=_run_config(workdir, retries, _Collect(lambda trial: trial, deliver)))
    with _quiet_tune():
        tuner.fit()


# -- in the trial's worker -----------------------------------------------------------------------------------------
def _trial(config: dict[str, Any], works: dict[str, Work]) -> None:
    work = works[config["key"]]
    packet = _saved_packet()
    if packet is None:
        packet = run_work(work)
    _report(packet, transport.unzip(packet)[transport.TRIAL_FILE], {"key": work.key})


def _search_trial(config: dict[str, Any], fn: Callable[..., Any], fixed: dict[str, Any], seeds: list[int],
                  metric: str, threads: int | None) -> None:
    packet = _saved_packet()
    if packet is None:
        trial_id = tune.get_context().get_trial_id()
        packets = {f"{trial_id}-s{s}.zip": run_work(Work(f"{trial_id}-s{s}", fn, {**fixed, **config}, s, threads))
                   for s in seeds}
        packet = _zip_members(packets)
    values = []
    for inner in _unzip_members(packet).values():
        doc = json.loads(transport.unzip(inner)[transport.TRIAL_FILE])
        values.append(doc.get("metrics", {}).get(metric, math.nan))
    # a failed seed makes the config's figure NaN, which Tune's searchers (Optuna: a failed trial) skip
    _report(packet, None, {metric: sum(values) / len(values)})


def _saved_packet() -> bytes | None:
    """The packet this trial saved before its worker died, if it got that far."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder, open(os.path.join(folder, PACKET_NAME), "rb") as f:
        return f.read()


def _report(packet: bytes, trial_json: bytes | None, metrics: dict[str, Any]) -> None:
    # the worker would otherwise log a line per checkpoint, which Ray forwards to the driver's console
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    if trial_json is not None:  # the unit's figures, for Tune's own logs and schedulers
        doc = json.loads(trial_json)
        metrics = {**doc.get("metrics", {}), **metrics, "failed": doc.get("error") is not None}
    with tempfile.TemporaryDirectory(prefix="gb-trial-") as folder:
        with open(os.path.join(folder, PACKET_NAME), "wb") as f:
            f.write(packet)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _zip_members(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _unzip_members(packet: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(packet)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


# -- on the driver -----------------------------------------------------------------------------------------------
class _Collect(tune.Callback):
    """Hands each completed trial's packet to ``deliver(key_of(trial), packet)``, once per trial; a trial
    that failed beyond its retries gets an error packet naming Tune's error file."""

    def __init__(self, key_of: Callable[[Any], Any], deliver: Callable[[Any, bytes], None]) -> None:
        self.key_of, self.deliver, self.seen = key_of, deliver, set()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Read the trial's checkpoint (its packet)."""
        if trial.trial_id in self.seen:
            return
        self.seen.add(trial.trial_id)
        checkpoint = trial.checkpoint
        if checkpoint is None:
            raise GraphError(f"Tune trial {trial.trial_id} finished without its packet")
        with checkpoint.as_directory() as folder, open(os.path.join(folder, PACKET_NAME), "rb") as f:
            self.deliver(self.key_of(trial), f.read())

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial out of retries: an error packet."""
        if trial.trial_id in self.seen:
            return
        self.seen.add(trial.trial_id)
        target = self.key_of(trial)
        key = target.key if isinstance(target, Work) else trial.trial_id
        message = f"its Ray worker failed {trial.num_failures} time(s); Tune's error file: {trial.error_file}"
        packet = transport.pack_error(key, GraphError(message), 0.0)
        if not isinstance(target, Work):  # a search trial's packet holds one packet per seed
            packet = _zip_members({f"{key}.zip": packet})
        self.deliver(target, packet)


def _run_config(workdir: str | None, retries: int, callback: Any) -> Any:
    workdir = os.path.abspath(workdir or os.path.join(tempfile.gettempdir(), "graphbuilder-tune"))
    return tune.RunConfig(
        name=time.strftime("sweep-%Y%m%d-%H%M%S-") + os.urandom(3).hex(), storage_path=workdir, verbose=0,
        failure_config=tune.FailureConfig(max_failures=retries), callbacks=[callback])


class _quiet_tune:
    """Tune's tables and INFO lines would interleave with the sweep's own progress bar. With its newer console
    output (the default) even ``verbose=0`` prints a table per experiment, so the run uses the older output,
    whose ``verbose=0`` prints nothing."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("ray.tune")
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)
        self.env = os.environ.get("RAY_AIR_NEW_OUTPUT")
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)
        if self.env is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = self.env
