"""gb.search.prune_grow (arXiv:2108.02231): invariants of the search, determinism, restarts, its config,
results and files, the moves as pure functions, the datasets, the live view and progress bar, and the
comparison with layered MLPs (fronts, targets, the fair sweep)."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import threading

import matplotlib
import networkx as nx
import numpy as np
import pytest
import torch

import graphbuilder as gb
from graphbuilder.datasets import image_function, next_pixel, sample_image, smooth_edge
from graphbuilder.datasets.images import causal_offsets, resize
from graphbuilder.search import NeuronGraph, SearchResult, mlp_sweep, neuron_train, prune_grow, smallest_reaching
from graphbuilder.search.baseline import (
    comparison,
    connections_to_reach,
    format_comparison,
    front_gap,
    mlp_targets,
    rows_front,
)
from graphbuilder.search.live import LiveView, NeuronGraphDisplay, SearchProgress
from graphbuilder.search.prune_grow import (
    Data,
    PruneCandidate,
    PruneGrowConfig,
    UnitCandidate,
    grow_move,
    insert_unit,
    pareto,
    prune_candidates,
    score_prune,
    score_unit,
)

matplotlib.use("Agg")
TARGET = 0.12


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one torch thread is fastest, and much faster on a busy machine."""
    with neuron_train.torch_threads(1):
        yield


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray]:
    return image_function(sample_image("china.jpg", 12))


@pytest.fixture(scope="module")
def result(problem) -> SearchResult:
    X, y = problem
    return prune_grow(X[::2], y[::2], TARGET, test=(X[1::2], y[1::2]), progress=False, patience=2)


# -- datasets ----------------------------------------------------------------------------------------------------
def test_image_function_and_next_pixel_read_the_image() -> None:
    img = np.arange(20, dtype=np.float64).reshape(4, 5) / 20
    X, y = image_function(img)
    assert X.shape == (20, 2) and y.shape == (20, 1)
    assert X[0].tolist() == [-1, -1] and X[-1].tolist() == [1, 1] and y[7, 0] == pytest.approx(img[1, 2])
    X, y = next_pixel(img, context=1)  # left, and above-left, above, above-right
    assert causal_offsets(1) == [(0, -1), (-1, -1), (-1, 0), (-1, 1)]
    assert X.shape == (3 * 3, 4)
    # the first sample is pixel (1, 1): left (1, 0), above row 0 columns 0..2
    assert X[0].tolist() == pytest.approx([img[1, 0], img[0, 0], img[0, 1], img[0, 2]])
    assert y[0, 0] == pytest.approx(img[1, 1])
    with pytest.raises(gb.GraphError, match="not causal"):
        next_pixel(img, context=[(0, 1)])
    rgb = np.stack([img * 255] * 3, axis=2).astype(np.uint8)
    assert np.allclose(image_function(rgb)[1], image_function(img)[1], atol=1 / 255)


def test_sample_image_is_gray_and_downscaled() -> None:
    img = sample_image("flower.jpg", (12, 16))
    assert img.shape == (12, 16) and img.dtype == np.float32 and 0 <= img.min() < img.max() <= 1
    assert np.allclose(resize(np.ones((7, 9)), (3, 4)), 1)  # area averaging keeps constants
    assert resize(np.arange(4.0).reshape(2, 2), (1, 1))[0, 0] == pytest.approx(1.5)


def test_smooth_edge_is_smooth_except_across_its_edge() -> None:
    sharp = smooth_edge(64, supersample=1).astype(np.float64)
    assert sharp.shape == (64, 64) and 0 <= sharp.min() < sharp.max() <= 1
    xs = np.linspace(-1, 1, 64)
    edge = 0.35 * np.sin(2.5 * xs) + 0.1  # row coordinate of the edge per column
    rows = np.linspace(-1, 1, 64)
    jumps = np.abs(np.diff(sharp, axis=0))  # (63, 64) vertical differences
    crossing = (rows[:-1, None] <= edge[None, :]) & (rows[1:, None] > edge[None, :])
    assert jumps[crossing].min() > 0.3 and jumps[~crossing].max() < 0.05
    soft = smooth_edge(16)  # area-averaged: edge pixels lie between the two sides
    assert np.allclose(soft, resize(smooth_edge(128, supersample=1), (16, 16)), atol=1e-6)
    d = np.abs(soft - smooth_edge(16, supersample=1))
    assert 0.05 < d.max() < 0.35 and (d > 0.02).sum() <= 2 * 16  # intermediate values, only along the edge


# -- the search's invariants -------------------------------------------------------------------------------------
def test_search_reaches_target_and_keeps_its_invariants(result: SearchResult, problem) -> None:
    target = result.target_error
    assert result.reached and result.val_error <= target
    hist = result.history
    assert [r["step"] for r in hist] == list(range(len(hist)))
    assert {"init", "grow", "prune"} <= {r["move"] for r in hist}
    assert any(r["move"] == "prune" and not r["accepted"] for r in hist)
    for r in hist:
        if r["move"] == "prune" and r["accepted"]:
            assert r["val_error"] <= target, r  # no accepted within-target prune leaves the error above target
        assert (r["test_error"] is not None) == r["accepted"]  # test error recorded for every kept network
    accepted = [r for r in hist if r["accepted"]]
    for a, b in zip(accepted, accepted[1:], strict=False):
        if b["move"] in ("prune", "prune_past") and a["move"] == b["move"]:
            assert b["connections"] <= a["connections"], (a, b)  # inside a prune phase, never more connections
    within = [r for r in accepted if r["val_error"] <= target]
    assert result.network.num_connections == min(r["connections"] for r in within)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(result.network.connections))
    # the kept network really has the recorded errors on the validation and test data
    X, y = problem
    Xt, yt = neuron_train.as_tensors(X[::2], y[::2])
    _, _, Xv, yv = neuron_train.split(Xt, yt, 0.25, 0)
    assert neuron_train.rmse(result.network, Xv, yv) == pytest.approx(result.val_error, rel=1e-6)
    assert neuron_train.rmse(result.network, *neuron_train.as_tensors(X[1::2], y[1::2])) == pytest.approx(
        result.test_error, rel=1e-6)
    assert result.restarts[0]["test_error"] == pytest.approx(result.test_error)


def test_same_seed_same_graph_and_restarts_keep_the_best(problem, result: SearchResult) -> None:
    X, y = problem
    again = prune_grow(X[::2], y[::2], TARGET, test=(X[1::2], y[1::2]), progress=False, patience=2, max_steps=20)
    assert again.history == [{**r, "seconds": a["seconds"]} for r, a in zip(result.history, again.history,
                                                                             strict=False)]
    # restarts: seeds 0 and 1 on the same validation split; the best of the two is returned, k is reported
    two = prune_grow(X[::2], y[::2], TARGET, restarts=2, progress=False, patience=1, max_seconds=3, clock="process")
    assert [r["seed"] for r in two.restarts] == [0, 1] and two.config["restarts"] == 2
    assert {r["restart"] for r in two.history} == {0, 1}
    best = min((r for r in two.restarts if r["reached"]), key=lambda r: (r["connections"], r["val_error"]))
    assert two.network.num_connections == best["connections"]
    first = [r for r in two.history if r["restart"] == 0]
    assert first[0]["val_error"] == result.history[0]["val_error"]  # restart 0 is the plain run's start


def test_config_is_frozen_and_keywords_override_it(problem) -> None:
    X, y = problem
    cfg = PruneGrowConfig(max_steps=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_steps = 4  # type: ignore[misc]
    r = prune_grow(X, y, 0.2, cfg, progress=False, seed=5)  # a config plus an override
    assert r.config["seed"] == 5 and r.config["max_steps"] == 3 and len(r.history) == 3
    call = {"X": X, "y": y, "target_error": 0.2}  # how a parameter sweep calls it
    assert prune_grow(**call, seed=1, max_steps=2, progress=False).config["seed"] == 1
    with pytest.raises(gb.GraphError, match="unknown prune_grow option.*'max_step'"):
        prune_grow(X, y, 0.1, max_step=3)
    with pytest.raises(gb.GraphError, match="saliency must be one of"):
        prune_grow(X, y, 0.1, saliency="random")
    with pytest.raises(gb.GraphError, match="activations must be one of"):
        PruneGrowConfig(activations=("tanh", "swish"))


# -- results, graphs, files --------------------------------------------------------------------------------------
def test_result_graph_compiles_saves_and_loads(result: SearchResult, tmp_path) -> None:
    g = result.graph
    x = torch.randn(10, 2)
    want = result.network.to_module()(x)
    assert torch.allclose(gb.compile(g)(x), want)
    g.save(tmp_path / "best.graph.json")
    assert torch.allclose(gb.compile(gb.Graph.load(tmp_path / "best.graph.json"))(x), want)
    result.save(tmp_path / "search.json")
    back = SearchResult.load(tmp_path / "search.json")
    assert back.network == result.network and back.history == result.history and back.restarts == result.restarts
    assert back.config == result.config and back.target_error == result.target_error
    fig = result.plot()
    assert len(fig.axes) == 3 and fig.axes[2].get_xlabel().startswith("complexity")
    front = result.front()
    assert all(a[0] < b[0] and a[1] > b[1] for a, b in zip(front, front[1:], strict=False))
    assert front == pareto([(r["complexity"], r["val_error"]) for r in result.history if r["accepted"]])
    assert "prune" in result.table() and "test" in result.table().splitlines()[0]
    with pytest.raises(gb.GraphError, match="not a prune/grow result"):
        SearchResult.from_dict({"format": "something else"})


def test_ctrl_c_returns_the_best_so_far(problem) -> None:
    X, y = problem
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        r = prune_grow(X, y, 0.001, progress=False, max_seconds=60, grow_patience=1000, max_hidden=1000)
    finally:
        timer.cancel()
    assert r.interrupted and r.stop_reason == "interrupted" and not r.reached
    assert r.network.num_connections > 0
    assert r.val_error == min(h["val_error"] for h in r.history if h["accepted"])


def test_other_choices_run_and_respect_the_target() -> None:
    X, y = next_pixel(sample_image("china.jpg", 12), context=1)
    start = NeuronGraph.layered(X.shape[1], (3,), 1, seed=0)
    for kw in (dict(saliency="obd", insertion="split", complexity="both", optimizer="adam", train_steps=60),
               dict(saliency="trial", insertion="cascade", optimizer="lbfgs", complexity="neurons"),
               dict(saliency="magnitude", activations=("tanh", "sin", "relu"))):
        r = prune_grow(X, y, 0.15, start=start, max_steps=8, progress=False,
                       **{"train_steps": 30, "retrain_steps": 10, **kw})
        assert all(h["val_error"] <= 0.15 for h in r.history if h["move"] == "prune" and h["accepted"])
        assert r.config["saliency"] == kw["saliency"] and r.history[0]["move"] == "init"


# -- the moves ---------------------------------------------------------------------------------------------------
def _data(problem) -> Data:
    X, y = problem
    Xt, yt = neuron_train.as_tensors(X, y)
    return Data(*neuron_train.split(Xt, yt, 0.25, 0))


def test_prune_candidates_are_obs_ranked_and_scoring_is_pure(problem) -> None:
    data, cfg = _data(problem), PruneGrowConfig(confirm=3)
    net = NeuronGraph.layered(2, (4,), 1, seed=0)
    neuron_train.fit(net, data.X, data.y, 60, "lm")
    cands = prune_candidates(net, data, cfg, batch=4)
    sal = neuron_train.Surgeon.at(net, data.X, data.y, cfg.obs_damping).saliencies()
    ranked = sorted(sal, key=lambda e: (sal[e], e))
    assert [c.edges for c in cands[:3]] == [(e,) for e in ranked[:3]] and len(cands[3].edges) == 4
    before = net.copy()
    scored = score_prune(net, cands[0], data, cfg, seed=0)
    assert net == before  # pure
    assert scored.net.num_connections == net.num_connections - 1 and scored.removed == cands[0].edges
    # the compensated start (backtracked) is never worse than removing the connection alone
    e = cands[0].edges[0]
    no_retrain = dataclasses.replace(cfg, retrain_steps=0)
    plain = score_prune(net, PruneCandidate((e,)), data, no_retrain, seed=0)
    compensated = score_prune(net, cands[0], data, no_retrain, seed=0)
    assert compensated.train_error <= plain.train_error + 1e-12
    cut = net.copy()
    cut.remove_connection(*e)
    assert plain.train_error == pytest.approx(neuron_train.rmse(cut, data.X, data.y))


def test_growth_fits_few_sources_and_never_raises_the_training_error(problem) -> None:
    data = _data(problem)
    cfg = PruneGrowConfig(pool=4, fan_in=2, activations=("tanh", "sin"))
    net = NeuronGraph.layered(2, (2,), 1, seed=0)
    neuron_train.fit(net, data.X, data.y, 60, "lm")
    before = neuron_train.rmse(net, data.X, data.y)
    fitted = score_unit(net, UnitCandidate((0, 1), "sin"), data, cfg, seed=0)
    assert fitted.mse <= before ** 2 + 1e-12 and math.isfinite(fitted.val_mse)
    grown = net.copy()
    new = insert_unit(grown, fitted)
    assert grown.sources(new) == [0, 1] and grown.activation(new) == "sin" and grown.targets(new) == grown.outputs
    assert neuron_train.rmse(grown, data.X, data.y) ** 2 == pytest.approx(fitted.mse, rel=1e-6)
    added = grow_move(net, data, cfg, 2, np.random.default_rng(0))
    assert len(added) == 2 and all(1 <= len(net.sources(n)) <= 2 for n in added)
    assert neuron_train.rmse(net, data.X, data.y) < before
    seen: list[int] = []

    def counting_map(fn, *iterables):  # a parallel map would go here; the search calls it per move
        seen.append(len(iterables[0]))
        return map(fn, *iterables)

    grow_move(net, data, cfg, 1, np.random.default_rng(1), counting_map)
    assert seen and seen[0] == 4 * 2  # pool x activations


# -- live view and progress --------------------------------------------------------------------------------------
def test_live_view_throttles_by_time_share() -> None:
    now = [0.0]
    shown: list[int] = []

    def show(state: int) -> None:  # a display that takes 1 s of the fake clock
        shown.append(state)
        now[0] += 1.0

    view = LiveView(show, min_interval=0.0, max_fraction=0.05, clock=lambda: now[0])
    for step in range(1000):
        now[0] += 0.1  # a 0.1 s search step
        view.update(step)
    assert view.spent <= 0.05 * now[0] + 1.0
    assert view.updates == len(shown) > 3 and view.skipped == 1000 - view.updates
    assert shown[-1] > 900  # it shows the latest state, not a stale one


def test_progress_bar_ends_at_the_real_end_and_says_why() -> None:
    bar = SearchProgress(100, "search", enabled=True)
    bar.advance_to(7.3, conns=5)
    bar.finish("cycles stopped lowering complexity")
    assert bar.bar.n == pytest.approx(7.3) and bar.bar.total == bar.bar.n  # completed, not stuck at 7%
    assert "cycles stopped lowering complexity" in bar.bar.desc
    stopped = SearchProgress(100, "search")
    stopped.advance_to(5)
    stopped.finish("interrupted", failed=True)
    assert stopped.bar.total == 100


def test_search_drives_the_widget() -> None:
    widget_mod = pytest.importorskip("graphbuilder.widget")
    X, y = image_function(sample_image("china.jpg", 10))
    w = widget_mod.GraphWidget(NeuronGraph.direct(2).expand())
    r = prune_grow(X, y, 0.12, widget=w, widget_interval=0.0, max_steps=12, progress=False)
    names = {n.name for n in w.graph}
    assert {f"n{i}" for i in r.network.neurons} <= names  # the final network, one node per neuron
    styled = {(e["source"], e["target"]) for e in w.edge_styles}
    assert {(f"n{s}", f"n{d}") for s, d in r.network.connections} <= styled
    assert r.widget_stats["updates"] >= 1
    display = NeuronGraphDisplay(w)
    display.mark(pruned=[(0, 2)])
    display(NeuronGraph.direct(2))
    assert any(e.get("opacity") == 0.25 for e in w.edge_styles)  # the pruned connection fades


def test_display_colours_the_diff_of_consecutive_networks() -> None:
    widget_mod = pytest.importorskip("graphbuilder.widget")
    net = NeuronGraph.direct(2)
    w = widget_mod.GraphWidget(net.expand())
    display = NeuronGraphDisplay(w)
    display(net)
    assert w.highlights == {}  # nothing changed
    grown = net.copy()
    new = grown.split(net.inputs[0], net.outputs[0], activation="tanh")  # a neuron on input 0 -> output
    display(grown)
    out = f"n{net.outputs[0]}"
    assert w.highlights == {f"n{new}": "added", out: "changed"}  # the new neuron, and the output it now feeds


# -- against layered MLPs ----------------------------------------------------------------------------------------
def test_fronts_targets_and_the_gap_between_fronts() -> None:
    mlp = [(4, 0.20), (20, 0.15), (60, 0.10), (250, 0.08)]
    ours = [(2, 0.20), (5, 0.15), (30, 0.10)]
    assert connections_to_reach(mlp, 0.12) == 60 and connections_to_reach(ours, 0.05) == math.inf
    gap = front_gap(ours, mlp, 0.10, 0.20, levels=5)
    # levels 0.2, 0.168, 0.141, 0.119, 0.1: MLP needs 4, 20, 60, 60, 60; ours 2, 5, 30, 30, 30
    want = np.mean(np.log2([4 / 2, 20 / 5, 60 / 30, 60 / 30, 60 / 30]))
    assert gap["log2_ratio"] == pytest.approx(want) and gap["worst_ratio"] == pytest.approx(2.0)
    assert front_gap(ours, mlp, 0.08, 0.10, levels=3)["only_theirs"] == pytest.approx(2 / 3)
    rows = [{"depth": 0, "width": 0, "connections": 2, "val_error": 0.2}] + [
        {"depth": 1, "width": w, "connections": 3 * w, "val_error": 0.2 - 0.01 * w} for w in (1, 5, 10)]
    targets = mlp_targets(rows, fractions=(0.5, 0.1))
    assert targets == [0.15, 0.11]  # halfway and a tenth of the way from the best MLP (0.10) to linear (0.2)
    assert smallest_reaching(rows, 0.11)["width"] == 10 and rows_front(rows)[0] == (2, 0.2)


def test_mlp_sweep_keeps_the_best_seed_and_comparison_reports_test_error(problem, result: SearchResult) -> None:
    X, y = problem
    rows = mlp_sweep(X[::2], y[::2], depths=(1,), widths=(2, 3), seeds=(0, 1), steps=30,
                     test=(X[1::2], y[1::2]), progress=False)
    assert [(r["depth"], r["width"]) for r in rows] == [(0, 0), (1, 2), (1, 3)]
    assert rows[1]["seeds"] == 2 and rows[1]["connections"] == 2 * 2 + 2
    again = NeuronGraph.layered(2, [2], 1, seed=rows[1]["seed"])
    Xt, yt = neuron_train.as_tensors(X[::2], y[::2])
    Xtr, ytr, Xv, yv = neuron_train.split(Xt, yt, 0.25, 0)
    neuron_train.fit(again, Xtr, ytr, 30, "lm")
    assert neuron_train.rmse(again, Xv, yv) == pytest.approx(rows[1]["val_error"])
    table = comparison([result], rows)
    assert table[0]["pg_test"] == pytest.approx(result.test_error)
    assert "test" in format_comparison(table).splitlines()[0]


@pytest.mark.slow
def test_fewer_connections_than_the_smallest_mlp_reaching_the_target() -> None:
    X, y = image_function(sample_image("china.jpg", 16))
    r = prune_grow(X, y, 0.1, progress=False, restarts=2, max_seconds=120, clock="process")
    rows = mlp_sweep(X, y, depths=(1, 2), widths=range(1, 17), progress=False)
    mlp = smallest_reaching(rows, r.target_error)
    assert r.reached and mlp is not None, rows
    assert r.network.num_connections < mlp["connections"], (r, mlp)
