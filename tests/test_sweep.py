"""gb.search.sweep and its executors: every executor gives the same graphs as calling the search directly with
the same seed; results travel as validated graph files; a results folder resumes a stopped sweep without
running a finished trial again; bad input fails its trial with a GraphError naming it; Ray is optional.

Real components throughout: spawned processes, a local Ray instance (ray.init(num_cpus=2)), a real
GraphWidget, a driver process killed with SIGKILL."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import matplotlib
import pytest
import torch
from sweep_helpers import fails_for_seed, linear_unit, logged_prune_grow, tiny_problem

import graphbuilder as gb
from graphbuilder.ir import serialize
from graphbuilder.search import transport
from graphbuilder.search.executors import ProcessExecutor, Work, make_executor, run_work
from graphbuilder.search.sweep import SweepError, SweepResult

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def problem() -> dict:
    return tiny_problem()


@pytest.fixture(scope="module")
def direct(problem) -> list[gb.search.SearchResult]:
    """The reference: prune_grow called directly, once per seed."""
    return [gb.search.prune_grow(seed=s, progress=False, **problem) for s in SEEDS]


@pytest.fixture(scope="module")
def local(problem) -> SweepResult:
    return gb.search.sweep(gb.search.prune_grow, [problem], seeds=SEEDS, progress=False)


def same_graph(a: gb.Graph, b: gb.Graph) -> bool:
    """Same file JSON and bit-identical weights."""
    if serialize.dumps(a) != serialize.dumps(b) or a.weights.keys() != b.weights.keys():
        return False
    return all(torch.equal(a.weights[n][k], b.weights[n][k]) for n in a.weights for k in a.weights[n])


def assert_same_results(got: SweepResult, want: SweepResult) -> None:
    assert [t.key for t in got.trials] == [t.key for t in want.trials]
    for g, w in zip(got.trials, want.trials, strict=True):
        assert same_graph(g.graph, w.graph), g.key
        assert g.metrics == w.metrics and g.result.network == w.result.network


# -- local: results, table, plot, files ------------------------------------------------------------------------
def test_local_sweep_equals_direct_calls_in_config_seed_order(local: SweepResult, direct) -> None:
    assert [(t.config_index, t.seed) for t in local.trials] == [(0, 0), (0, 1)]
    for trial, want in zip(local.trials, direct, strict=True):
        assert isinstance(trial.result, gb.search.SearchResult)
        assert trial.result.network == want.network
        assert same_graph(trial.graph, want.graph) and same_graph(trial.result.graph, want.graph)
        assert trial.metrics["error"] == pytest.approx(want.best["val_error"], rel=1e-6)
        assert trial.metrics["connections"] == want.network.num_connections
        assert trial.metrics["flops"] == want.graph.summary().total_flops
    assert local.results == [t.result for t in local.trials]
    best = min(local.trials, key=lambda t: t.metrics["error"])
    assert local.best is best and local.graph is best.graph


def test_table_plot_and_round_trip(local: SweepResult, tmp_path) -> None:
    table = local.table()
    assert list(table["seed"]) == SEEDS and list(table["trial"]) == ["c0-s0", "c0-s1"]
    assert list(table["error"]) == [t.metrics["error"] for t in local.trials]
    fig = local.plot()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "flops" and ax.get_ylabel() == "error"
    front = local.front("flops")
    assert front and all(not (o.metrics["flops"] <= t.metrics["flops"] and o.metrics["error"] < t.metrics["error"])
                         for t in front for o in local.trials)
    local.save(tmp_path / "sweep.json")
    back = SweepResult.load(tmp_path / "sweep.json")
    assert [t.key for t in back.trials] == [t.key for t in local.trials]
    assert all(same_graph(b.graph, t.graph) and b.metrics == t.metrics
               for b, t in zip(back.trials, local.trials, strict=True))


def test_graph_metrics_units_and_graph_configs_travel_as_files(problem) -> None:
    start = gb.search.NeuronGraph.direct(2, 1, seed=5).to_graph("start")
    cfg = {**problem, "start": start}
    got = gb.search.sweep(gb.search.prune_grow, cfg, seeds=[0], progress=False)
    want = gb.search.prune_grow(seed=0, progress=False, **cfg)
    assert same_graph(got.graph, want.graph)
    pairs = gb.search.sweep(linear_unit, [{"X": problem["X"]}, {"X": problem["X"], "width": 2}], seeds=[3],
                            progress=False)
    assert pairs.results == [None, None] and pairs.best.key == "c1-s3"
    assert same_graph(pairs.trials[1].graph, linear_unit(problem["X"], 3, 2)[0])
    assert pairs.table()["width"].tolist()[1] == 2


# -- the other executors give the same graphs --------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool():
    """Two spawned worker processes, shared by the tests that need a healthy pool (spawning costs seconds)."""
    with ProcessExecutor(workers=2) as ex:
        yield ex


def test_processes_equal_local(problem, local: SweepResult, pool) -> None:
    got = gb.search.sweep(gb.search.prune_grow, [problem], seeds=SEEDS, executor=pool, progress=False)
    assert_same_results(got, local)
    assert all(t.pid != os.getpid() for t in got.trials)


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_equals_local_and_reports_a_failing_trial(problem, local: SweepResult, ray_local, tmp_path) -> None:
    """One Tune run: the good config's trials equal the local ones; the config the search rejects fails its
    trials with the search's message, and the good trials are kept (in the results folder too)."""
    with pytest.raises(SweepError, match=r"trial c1-s0 \(config 1, seed 0\): GraphError: target_error must be a "
                                         r"positive number") as err:
        gb.search.sweep(gb.search.prune_grow, [problem, {**problem, "target_error": -1.0}], seeds=SEEDS,
                        executor="ray", results_dir=tmp_path, progress=False)
    got = err.value.sweep
    assert [t.key for t in err.value.failed] == ["c1-s0", "c1-s1"]
    assert_same_results(SweepResult(got.trials[:2]), local)
    assert all(t.pid != os.getpid() for t in got.trials[:2])
    assert sorted(os.listdir(tmp_path / "trials")) == ["c0-s0", "c0-s1"]
    # finer units run as Ray tasks through the same interface
    with gb.search.RayExecutor() as ex:
        outcomes = ex.map([Work(f"u{s}", gb.search.prune_grow, {**problem, "progress": False}, s) for s in SEEDS])
    assert all(same_graph(o.graph, t.graph) for o, t in zip(outcomes, local.trials, strict=True))


@pytest.mark.slow
def test_optuna_chooses_configs_through_tune(problem, ray_local) -> None:
    from ray import tune

    got = gb.search.sweep(gb.search.prune_grow, {**problem, "lr": tune.loguniform(0.005, 0.05)}, seeds=[0],
                          executor="ray", search_alg="optuna", num_samples=3, progress=False)
    rates = [t.config["lr"] for t in got.trials]
    assert len(got.trials) == 3 and len(set(rates)) == 3 and all(0.005 <= r <= 0.05 for r in rates)
    for t in got.trials:  # each chosen config's result is the search's own with that learning rate
        want = gb.search.prune_grow(seed=0, progress=False, **{**problem, "lr": t.config["lr"]})
        assert t.result.network == want.network


# -- bad input ----------------------------------------------------------------------------------------------------
def test_unknown_executor_and_bad_arguments(problem) -> None:
    with pytest.raises(gb.GraphError, match=r"executor must be one of \['local', 'processes', 'ray'\]"):
        gb.search.sweep(gb.search.prune_grow, problem, executor="dask")
    made = make_executor("processes", workers=3)  # by name (its pool starts on the first unit)
    assert isinstance(made, ProcessExecutor) and made.workers == 3
    with pytest.raises(gb.GraphError, match="define it at the top level of a module"):
        gb.search.sweep(lambda seed, **kw: None, problem, executor=made)
    with pytest.raises(gb.GraphError, match="seeds must be distinct"):
        gb.search.sweep(gb.search.prune_grow, problem, seeds=[1, 1])
    with pytest.raises(gb.GraphError, match="scheduler and search_alg are Ray Tune's"):
        gb.search.sweep(gb.search.prune_grow, problem, search_alg="optuna")


def test_a_config_the_search_rejects_fails_its_trial_only(problem, tmp_path) -> None:
    configs = [problem, {**problem, "target_error": -1.0}]
    with pytest.raises(SweepError, match=r"trial c1-s0 \(config 1, seed 0\): GraphError: target_error must be a "
                                         r"positive number") as err:
        gb.search.sweep(gb.search.prune_grow, configs, seeds=[0], results_dir=tmp_path, progress=False)
    assert "the other 1 trials finished" in str(err.value)
    assert err.value.sweep.trials[0].result is not None
    assert os.listdir(tmp_path / "trials") == ["c0-s0"]  # the failed trial is not stored, so a rerun retries it


def test_a_search_that_raises_in_a_worker_process(problem, pool) -> None:
    with pytest.raises(SweepError, match=r"trial c0-s1 \(config 0, seed 1\): ZeroDivisionError: division by zero"):
        gb.search.sweep(fails_for_seed, {**problem, "bad_seed": 1}, seeds=SEEDS, executor=pool, progress=False)



def test_a_killed_worker_process_is_replaced_and_its_trial_rerun(problem, direct, pool, tmp_path) -> None:
    """SIGKILL a pool worker mid-trial: the broken pool is replaced and its units run again."""
    logs = tmp_path / "log"
    logs.mkdir()

    def kill_the_first_worker() -> None:
        while not os.listdir(logs):
            time.sleep(0.02)
        os.kill(int(os.listdir(logs)[0].split("-")[1]), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_first_worker)
    killer.start()
    outcomes = pool.map([Work(f"w{s}", logged_prune_grow, {**problem, "log_dir": str(logs), "progress": False}, s)
                         for s in SEEDS])
    killer.join()
    started = sorted(int(n.split("-")[0]) for n in os.listdir(logs))
    assert len(started) > len(SEEDS)  # the killed trial (and any beside it in the broken pool) ran again
    for outcome, want in zip(outcomes, direct, strict=True):
        assert outcome.error is None and same_graph(outcome.graph, want.graph)


def test_packets_are_validated_like_files(problem, direct) -> None:
    packet = run_work(Work("k", gb.search.prune_grow, {**problem, "progress": False}, 0))
    files = transport.unzip(packet)
    assert sorted(files) == ["graph.graph.json", "graph.safetensors", "trial.json"]
    assert transport.read(packet).result.network == direct[0].network

    def repack(**changes: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for name, data in {**files, **changes}.items():
                z.writestr(name, data)
        return buffer.getvalue()

    with pytest.raises(gb.GraphError, match="expected only"):
        transport.read(repack(**{"evil.pkl": b"x"}))
    bad_op = files["graph.graph.json"].replace(b'"neuron_graph"', b'"os.system"')
    with pytest.raises(gb.GraphError, match="os.system"):
        transport.read(repack(**{"graph.graph.json": bad_op}))
    other = files["trial.json"].replace(b"graphbuilder.search.prune_grow.SearchResult", b"evil.Result")
    with pytest.raises(gb.GraphError, match="no search result class named 'evil.Result' is imported"):
        transport.read(repack(**{"trial.json": other}))


# -- results folder: resume, exactly once ---------------------------------------------------------------------------
def test_resume_after_the_driver_is_killed(problem, tmp_path) -> None:
    """A driver process is killed (SIGKILL) after its first trial is stored; the same sweep started again
    with its results folder runs only the trials that were not stored, and equals an uninterrupted run."""
    logs, results = tmp_path / "log", tmp_path / "results"
    logs.mkdir()
    seeds = [0, 1, 2]
    script = textwrap.dedent(f"""
        import graphbuilder as gb
        from sweep_helpers import logged_prune_grow, tiny_problem
        gb.search.sweep(logged_prune_grow, {{**tiny_problem(), "log_dir": {str(logs)!r}}}, seeds={seeds},
                        results_dir={str(results)!r}, progress=False)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    driver = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 240
        while not (results / "trials").is_dir() or not os.listdir(results / "trials"):
            assert driver.poll() is None and time.monotonic() < deadline, "the driver stored no trial"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    stored = sorted(os.listdir(results / "trials"))
    assert stored and len(stored) < len(seeds)
    ran_before = sorted(os.listdir(logs))
    got = gb.search.sweep(logged_prune_grow, {**problem, "log_dir": str(logs)}, seeds=seeds, results_dir=results,
                          progress=False)
    ran_after = sorted(set(os.listdir(logs)) - set(ran_before))
    done_seeds = {int(k.split("-s")[1]) for k in stored}
    assert sorted(int(n.split("-")[0]) for n in ran_after) == [s for s in seeds if s not in done_seeds]
    assert sorted(os.listdir(results / "trials")) == [f"c0-s{s}" for s in seeds]
    want = gb.search.sweep(gb.search.prune_grow, problem, seeds=seeds, progress=False)
    assert all(same_graph(g.graph, w.graph) for g, w in zip(got.trials, want.trials, strict=True))
    # a different sweep may not write into this folder
    with pytest.raises(gb.GraphError, match="holds results of a different sweep: trial\\(s\\) c0-s0"):
        gb.search.sweep(logged_prune_grow, {**problem, "log_dir": str(logs), "train_steps": 61}, seeds=[0],
                        results_dir=results, progress=False)


# -- the widget -------------------------------------------------------------------------------------------------------
def test_widget_shows_the_best_graph_throttled(problem) -> None:
    """Each trial beats the last; a new graph structure bumps the widget's document version once per display."""
    configs = [{"X": problem["X"], "width": w} for w in (1, 2, 3)]
    for interval, displays in ((3600.0, 2), (0.0, 3)):  # the first best and the final one / every best
        widget = gb.GraphWidget(gb.Graph("empty"))
        got = gb.search.sweep(linear_unit, configs, seeds=[0], widget=widget, widget_interval=interval,
                              progress=False)
        assert got.best.key == "c2-s0" and same_graph(widget.graph, got.graph)
        assert widget.version == displays


# -- Ray is optional ------------------------------------------------------------------------------------------------
def test_without_ray_everything_else_works_and_ray_says_what_to_install() -> None:
    """A subprocess where `import ray` fails (a meta path finder hides it, as if it were not installed)."""
    script = textwrap.dedent("""
        import importlib.abc, sys

        class HideRay(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

        sys.meta_path.insert(0, HideRay())
        import graphbuilder as gb
        from sweep_helpers import tiny_problem
        r = gb.search.sweep(gb.search.prune_grow, tiny_problem(), seeds=[0], progress=False)
        assert r.trials[0].error is None and "ray" not in sys.modules
        try:
            gb.search.sweep(gb.search.prune_grow, tiny_problem(), executor="ray")
        except gb.GraphError as e:
            print("GraphError:", e)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "GraphError: the 'ray' executor needs Ray" in out.stdout
    assert "pip install 'graphbuilder[ray]'" in out.stdout

