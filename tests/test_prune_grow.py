"""gb.search.prune_grow (issue 6, arXiv:2108.02231): invariants of the search, determinism, results and files,
the datasets, the saliencies against brute force, the live widget view, and the comparison with layered MLPs
on a 16x16 image function."""

from __future__ import annotations

import os
import signal
import threading

import matplotlib
import networkx as nx
import numpy as np
import pytest
import torch

import graphbuilder as gb
from graphbuilder.datasets import image_function, next_pixel, sample_image
from graphbuilder.datasets.images import causal_offsets, resize
from graphbuilder.search import NeuronGraph, SearchResult, mlp_sweep, neuron_train, prune_grow, smallest_reaching
from graphbuilder.search.live import LiveView

matplotlib.use("Agg")
FAST = dict(train_steps=300, retrain_steps=60, progress=False)


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray]:
    return image_function(sample_image("china.jpg", 16))


@pytest.fixture(scope="module")
def result(problem) -> SearchResult:
    X, y = problem
    return prune_grow(X, y, 0.11, seed=0, **FAST)


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


# -- the search's invariants -------------------------------------------------------------------------------------
def test_search_reaches_target_and_keeps_its_invariants(result: SearchResult) -> None:
    target = result.target_error
    assert result.reached and result.best["val_error"] <= target
    hist = result.history
    assert [r["step"] for r in hist] == list(range(len(hist)))
    assert any(r["move"] == "prune" and r["accepted"] for r in hist)
    assert any(r["move"] == "prune" and not r["accepted"] for r in hist)
    for r in hist:
        if r["move"] == "prune" and r["accepted"]:
            assert r["val_error"] <= target, r  # no accepted prune leaves the error above target
    accepted = [r for r in hist if r["accepted"]]
    for a, b in zip(accepted, accepted[1:], strict=False):
        if b["move"] == "prune":  # inside a prune phase the connection count never rises
            assert b["connections"] <= a["connections"], (a, b)
    within = [r for r in accepted if r["val_error"] <= target]
    assert result.network.num_connections == min(r["connections"] for r in within)
    g = nx.DiGraph(result.network.connections)
    assert nx.is_directed_acyclic_graph(g)
    # the kept network really has the recorded error on the validation split
    Xt, yt = neuron_train.as_tensors(*image_function(sample_image("china.jpg", 16)))
    _, _, Xv, yv = neuron_train.split(Xt, yt, 0.25, 0)
    assert neuron_train.rmse(result.network, Xv, yv) == pytest.approx(result.best["val_error"], rel=1e-5)


def test_same_seed_same_graph(problem, result: SearchResult) -> None:
    X, y = problem
    again = prune_grow(X, y, 0.11, seed=0, **FAST)
    assert again.network == result.network
    assert [r["val_error"] for r in again.history] == [r["val_error"] for r in result.history]
    other = prune_grow(X, y, 0.11, seed=1, max_steps=3, **FAST)
    assert other.history[0]["val_error"] != result.history[0]["val_error"]  # another split


def test_fewer_connections_than_the_smallest_mlp_reaching_the_target(problem, result: SearchResult) -> None:
    X, y = problem
    rows = mlp_sweep(X, y, depths=(1, 2), widths=(2, 4, 8, 16), steps=1500, progress=False)
    mlp = smallest_reaching(rows, result.target_error)
    assert mlp is not None, rows
    assert result.network.num_connections < mlp["connections"], (result, mlp)


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
    assert back.network == result.network and back.history == result.history
    assert back.config == result.config and back.target_error == result.target_error
    fig = result.plot()
    assert len(fig.axes) == 3 and fig.axes[2].get_xlabel().startswith("complexity")
    front = result.front()
    assert all(a[0] < b[0] and a[1] > b[1] for a, b in zip(front, front[1:], strict=False))
    assert "prune" in result.table()


def test_ctrl_c_returns_the_best_so_far(problem) -> None:
    X, y = problem
    timer = threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        r = prune_grow(X, y, 0.01, seed=0, train_steps=300, retrain_steps=60, progress=False, max_seconds=60)
    finally:
        timer.cancel()
    assert r.interrupted and r.stop_reason == "interrupted" and not r.reached
    assert r.network.num_connections > 0 and r.best["val_error"] == min(
        h["val_error"] for h in r.history if h["accepted"])


def test_other_choices_run_and_respect_the_target(problem) -> None:
    X, y = next_pixel(sample_image("china.jpg", 12), context=1)
    start = NeuronGraph.layered(X.shape[1], (3,), 1, seed=0)
    for kw in (dict(saliency="obd", insertion="split", complexity="both"),
               dict(saliency="trial", optimizer="lbfgs", train_steps=60, retrain_steps=20, complexity="neurons")):
        r = prune_grow(X, y, 0.15, start=start, seed=0, max_steps=25, progress=False,
                       **{"train_steps": 150, "retrain_steps": 40, **kw})
        assert all(h["val_error"] <= 0.15 for h in r.history if h["move"] == "prune" and h["accepted"])
        assert r.config["saliency"] == kw["saliency"] and r.history[0]["move"] == "init"
    with pytest.raises(gb.GraphError, match="saliency must be one of"):
        prune_grow(X, y, 0.1, saliency="random")


def test_saliencies_match_brute_force() -> None:
    ng = NeuronGraph.random(3, 5, 1, 14, seed=4, activations=("tanh",))
    X, y = torch.randn(40, 3), torch.randn(40, 1)
    trial = neuron_train.saliency(ng, X, y, "trial")
    base = neuron_train.rmse(ng, X, y) ** 2
    e = ng.connections[3]
    cut = ng.copy()
    cut.remove_connection(*e)
    assert trial[e] == pytest.approx(neuron_train.rmse(cut, X, y) ** 2 - base, rel=1e-4, abs=1e-7)
    obd = neuron_train.saliency(ng, X, y, "obd")
    module = ng.to_module(dtype=torch.float64)
    k = ng.connections.index(e)
    h = 0.0
    for n in range(40):
        (grad,) = torch.autograd.grad(module(X[n:n + 1].double())[0, 0], module.weight)
        h += float(grad[k]) ** 2
    assert obd[e] == pytest.approx(0.5 * (2 / 40) * h * ng.weight(*e) ** 2, rel=1e-6)
    assert neuron_train.saliency(ng, X, y, "magnitude")[e] == abs(ng.weight(*e))


# -- live view ---------------------------------------------------------------------------------------------------
def test_live_view_throttles_by_time_share() -> None:
    now = [0.0]
    shown: list[int] = []

    class Clocked(LiveView):
        def show(self, ng: NeuronGraph) -> None:  # a display that takes 1 s of the fake clock
            shown.append(ng.num_connections)
            now[0] += 1.0

    view = Clocked(widget=None, min_interval=0.0, max_fraction=0.05, clock=lambda: now[0])
    ng = NeuronGraph.direct(2)
    for _ in range(1000):
        now[0] += 0.1  # a 0.1 s search step
        view.update(ng)
    elapsed = now[0]
    assert view.spent <= 0.05 * elapsed + 1.0
    assert view.updates == len(shown) > 3 and view.skipped == 1000 - view.updates


def test_search_drives_the_widget() -> None:
    widget_mod = pytest.importorskip("graphbuilder.widget")
    X, y = image_function(sample_image("china.jpg", 12))
    w = widget_mod.GraphWidget(NeuronGraph.direct(2).expand())
    r = prune_grow(X, y, 0.12, seed=0, widget=w, widget_interval=0.0, max_steps=12, **FAST)
    names = {n.name for n in w.graph}
    assert {f"n{i}" for i in r.network.neurons} <= names  # the final network, one node per neuron
    styled = {(e["source"], e["target"]) for e in w.edge_styles}
    assert {(f"n{s}", f"n{d}") for s, d in r.network.connections} <= styled



# -- cascade-correlation insertion, targets, held-out test -------------------------------------------------------
def test_fitted_cascade_unit_lowers_training_error_and_matches_least_squares(problem) -> None:
    from graphbuilder.search.prune_grow import _fit_cascade_unit, _insert

    X, y = problem
    Xt, yt = neuron_train.as_tensors(X[::2], y[::2])
    ng = NeuronGraph.layered(2, (2,), 1, seed=0)
    neuron_train.fit(ng, Xt, yt, 300, "adam", 0.05)
    before = neuron_train.rmse(ng, Xt, yt)
    zero = ng.copy()
    _insert(zero, "cascade", "tanh", 0.1, np.random.default_rng(0))  # out-weights 0: the same function
    assert neuron_train.rmse(zero, Xt, yt) == pytest.approx(before, abs=1e-7)
    unit = _fit_cascade_unit(ng, Xt, yt, "tanh", candidates=2, steps=30, seed=0)
    new = _insert(ng, "cascade", "tanh", 0.1, np.random.default_rng(0), unit)
    assert ng.sources(new) == [0, 1] + [h for h in ng.hidden if h != new] and ng.targets(new) == ng.outputs
    assert neuron_train.rmse(ng, Xt, yt) < before - 1e-3  # a fitted unit explains part of the residual
    # with no refinement, (a, c) are the least-squares line of the residual on the random unit's output
    S, r = torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 1, dtype=torch.float64)
    w, b, a, c, mse = neuron_train.fit_unit(S, r, "tanh", candidates=1, steps=0, seed=3)
    h = torch.tanh(S @ torch.tensor(w, dtype=torch.float64) + b).numpy()
    slope, intercept = np.polyfit(h, r[:, 0].numpy(), 1)
    assert a[0] == pytest.approx(slope, rel=1e-6) and c[0] == pytest.approx(intercept, rel=1e-6, abs=1e-9)
    assert mse == pytest.approx(float(np.mean((h * slope + intercept - r[:, 0].numpy()) ** 2)), rel=1e-9)


def test_mlp_targets_follow_the_front_and_comparison_reports_test_error(problem) -> None:
    from graphbuilder.search.baseline import comparison, format_comparison, mlp_targets

    rows = [{"connections": c, "val_error": e} for c, e in ((4, 0.20), (20, 0.15), (60, 0.16), (70, 0.10),
                                                            (250, 0.08), (400, 0.05))]
    assert mlp_targets(rows) == [0.15, 0.1, 0.08]  # best at <= 25, 80, 300 connections
    odd = [{"connections": 4, "val_error": 0.2}, {"connections": 20, "val_error": 0.15004}]
    assert smallest_reaching(odd, mlp_targets(odd)[-1])["connections"] == 20  # rounded up, still reached
    flat = [{"connections": c, "val_error": 0.1} for c in (4, 20, 400)]
    assert mlp_targets(flat) == [0.1]
    X, y = problem
    res = prune_grow(X[:200], y[:200], 0.2, seed=0, max_steps=3, **FAST)
    table = comparison([res], [{"depth": 1, "width": 2, "connections": 6, "neurons": 2, "val_error": 0.1,
                                "test_error": 0.12}], test=(X[200:], y[200:]))
    want = neuron_train.rmse(res.network, *neuron_train.as_tensors(X[200:], y[200:]))
    assert table[0]["pg_test"] == pytest.approx(want) and table[0]["mlp_test"] == 0.12
    assert "test" in format_comparison(table).splitlines()[0]
