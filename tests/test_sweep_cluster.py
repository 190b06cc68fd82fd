"""A sweep on a Ray cluster of two nodes on this machine (`ray start --head` on 127.0.0.1 plus a second node
process), submitted with ``address=``, while one worker process is killed in the middle of a trial: the sweep
finishes, every trial has exactly one result, only the killed trial ran twice, and the results equal an
uninterrupted run's. Everything the test started is stopped by PID.

Slow (two Ray nodes start, then four trials of a few seconds each): run with ``-m slow``."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sweep_helpers import logged_prune_grow

import graphbuilder as gb
from graphbuilder.datasets import image_function, sample_image

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
SEEDS = [0, 1, 2, 3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """A head node and a second node, one CPU each; yields the head's address. Each ``ray start --block``
    runs in a session of its own, and afterwards every process in those sessions (the Ray daemons and
    workers, even ones orphaned by a failed start) is stopped by PID."""
    ray_cli = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="gbray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    # token authentication off: the cluster listens on this machine only, and the driver (this process) would
    # otherwise need the token that `ray start` generates
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    started: list[subprocess.Popen] = []
    log = open(tmp_path / "ray.log", "w")  # noqa: SIM115 (closed below)

    address = f"127.0.0.1:{port}"

    def start(*args: str) -> None:
        started.append(subprocess.Popen([ray_cli, "start", *args, *common], env=env, stdout=log, stderr=log,
                                        start_new_session=True))

    def status() -> str:
        out = subprocess.run([ray_cli, "status", f"--address={address}"], env=env, capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else ""

    try:
        start("--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false")
        deadline = time.monotonic() + 180
        while not status():
            assert started[0].poll() is None and time.monotonic() < deadline, (tmp_path / "ray.log").read_text()
            time.sleep(1)
        start(f"--address={address}")
        while len(re.findall(r"^\s*1 node_", status(), re.M)) < 2:  # `ray status` lists "1 node_<id>" per node
            assert started[1].poll() is None and time.monotonic() < deadline + 180, (tmp_path / "ray.log").read_text()
            time.sleep(1)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        sessions = {proc.pid for proc in started}
        pids = session_members(sessions)
        for pid in pids:
            send(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while session_members(sessions) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in session_members(sessions):
            send(pid, signal.SIGKILL)
        for proc in started:
            proc.wait(timeout=30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        assert not session_members(sessions), "a Ray process the test started is still running"
        print(f"stopped {len(pids)} Ray processes by PID")


def session_members(sessions: set[int]) -> list[int]:
    """PIDs of the live (not zombie) processes whose session id is in `sessions` (from /proc/<pid>/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, session
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) in sessions:
            found.append(int(entry))
    return found


def send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def test_a_worker_killed_mid_trial_on_a_two_node_cluster(cluster, tmp_path) -> None:
    X, y = image_function(sample_image("china.jpg", 8))
    config = dict(X=X, y=y, target_error=0.12, train_steps=150, retrain_steps=40, max_steps=16, max_seconds=1e9,
                  progress=False)
    logs, results = tmp_path / "log", tmp_path / "results"
    logs.mkdir()
    want = gb.search.sweep(gb.search.prune_grow, config, seeds=SEEDS, progress=False)  # uninterrupted

    killed: list[str] = []

    def kill_the_first_trial() -> None:  # SIGKILL the worker process of the first trial to start, once
        while not os.listdir(logs):
            time.sleep(0.05)
        time.sleep(0.5)
        first = sorted(os.listdir(logs), key=lambda n: int(n.split("-")[3]))[0]
        os.kill(int(first.split("-")[1]), signal.SIGKILL)
        killed.append(first)

    killer = threading.Thread(target=kill_the_first_trial)
    killer.start()
    t = time.perf_counter()
    got = gb.search.sweep(logged_prune_grow, {**config, "log_dir": str(logs)}, seeds=SEEDS, executor="ray",
                          address=cluster, results_dir=results, progress=False)
    wall = time.perf_counter() - t
    killer.join()
    nodes = [n for n in ray.nodes() if n["Alive"]]

    starts = sorted(os.listdir(logs), key=lambda n: int(n.split("-")[3]))
    killed_seed = int(killed[0].split("-")[0])
    print(f"\ncluster: {len(nodes)} nodes; sweep of {len(SEEDS)} trials in {wall:.1f} s; killed worker "
          f"{killed[0].split('-')[1]} running seed {killed_seed}")
    for name in starts:
        seed, pid, parent, _ = name.split("-")
        print(f"  trial seed {seed} started in worker {pid} (raylet {parent})")
    print(got.table()[["trial", "seed", "error", "connections", "seconds"]].to_string(index=False))

    assert len(nodes) == 2
    assert len({name.split("-")[2] for name in starts}) == 2  # trials ran under both nodes' raylets
    assert sorted(int(n.split("-")[0]) for n in starts) == sorted(SEEDS + [killed_seed])  # only it ran twice
    assert sorted(os.listdir(results / "trials")) == [f"c0-s{s}" for s in SEEDS]
    assert [t.key for t in got.trials] == [t.key for t in want.trials]
    for g, w in zip(got.trials, want.trials, strict=True):
        assert g.error is None and g.result.network == w.result.network and g.metrics == w.metrics
        assert gb.ir.serialize.dumps(g.graph) == gb.ir.serialize.dumps(w.graph)
