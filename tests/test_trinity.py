"""gb.search.trinity (Hit-Detector, arXiv:2003.11818): the group-sparse screening recovers the ops a synthetic
target was built from; a supernet with one-hot weights is the derived detector (identity outside the mixture,
affine-free norms); the head uses GroupNorm in every arm; a tiny end-to-end search is deterministic, shrinks
its candidates, is interruptible, and its result saves and loads with its config and derived detector."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import graphbuilder as gb
from graphbuilder.datasets import synthetic_detection
from graphbuilder.ops.modules.search_space import MixedOp
from graphbuilder.search import darts
from graphbuilder.search.detector_space import HAND_DESIGNED, DetectorSpace, build_detector, hand_designed
from graphbuilder.search.result import BaseResult
from graphbuilder.search.trinity import (
    TrinityConfig,
    TrinityResult,
    derive,
    mixed_modules,
    supernet,
    trinity,
)
from graphbuilder.search.trinity_protocol import ProtocolConfig, UnitResult, compare, run_protocol, run_unit
from graphbuilder.search.trinity_view import WidgetView, display_graph

SPACE = DetectorSpace(stem_channels=8, stages=((8, 1), (8, 2), (12, 1), (16, 1)), neck_channels=8, head_positions=2)
OPS = ["ir_k3_e3", "sd_k3_d1", "sd_k5_d2", "conv_1x1"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small convolutions run fastest (and deterministically) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_config_is_frozen_validated_and_round_trips():
    config = TrinityConfig(space=SPACE, operators=OPS, top_k=3, search=["backbone", "head"])
    assert config.operators == {c: tuple(OPS) for c in ("backbone", "neck", "head")}
    assert config.top_k == {"backbone": 3, "neck": 3, "head": 3} and config.search == ("backbone", "head")
    assert TrinityConfig.from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3  # type: ignore[misc]
    assert config.replace(seed=3).seed == 3
    for bad, match in [({"cost": "latency"}, "choose 'flops' or 'params'"),
                       ({"search": ["backbone", "rpn"]}, "not a component"),
                       ({"operators": ["sd_k3_d1", "skip"]}, "skip is left out"),
                       ({"warmup": 1.0}, "weight-only fraction"),
                       ({"shrink_at": (0.7, 0.3)}, "increasing fractions"),
                       ({"fixed": {"rpn": "sd_k3_d1"}}, "unknown roles")]:
        with pytest.raises(gb.GraphError, match=match):
            TrinityConfig(**bad)
    with pytest.raises(gb.GraphError, match="unknown trinity settings"):
        TrinityConfig.from_dict({"screen_step": 3})


CANDIDATES = ["ir_k3_e3", "ir_k3_e6", "sd_k3_d1", "sd_k3_d2", "sd_k3_d3", "sd_k5_d3", "conv_1x1"]
TARGET = ["ir_k3_e6", "sd_k5_d3"]


def screen_synthetic(seed: int, steps: int = 100, channels: int = 4, batch: int = 16) -> list[str]:
    """Regress a fixed random network, ``x + f1(x)`` then ``h + f2(h)`` with f = TARGET, with a 2-position
    supernet of linearly mixed candidates (identity outside the mixture, affine-free norms), alternating weight
    and alpha steps with the group-lasso proximal step; returns the top-2 columns."""
    torch.manual_seed(seed)
    teacher = [gb.ops.modules.search_space.build_candidate(t, channels, channels) for t in TARGET]  # with residual
    g = gb.Graph("screen")
    h = g.input("x", shape=(batch, channels, 8, 8))
    for i in range(len(TARGET)):
        h = g.add("add", h, g.add("mixed_op", h, name=f"p{i}", candidates=CANDIDATES, weighting="linear"))
    g.output(h)
    model = gb.compile(g)
    mixed = {f"p{i}": m for i, m in enumerate(m for m in model.modules() if isinstance(m, MixedOp))}
    alphas = [m.alpha for m in mixed.values()]
    w_opt = torch.optim.Adam([p for p in model.parameters() if all(p is not a for a in alphas)], lr=1e-2)
    a_opt = torch.optim.SGD(alphas, lr=0.05)
    gen = torch.Generator().manual_seed(seed + 100)

    def loss() -> torch.Tensor:
        x = torch.randn(batch, channels, 8, 8, generator=gen)
        with torch.no_grad():
            y = teacher[1]([teacher[0]([x])])
        return torch.nn.functional.mse_loss(model(x), y)

    for _ in range(steps):
        w_opt.zero_grad()
        loss().backward()
        w_opt.step()
        a_opt.zero_grad()
        loss().backward()
        a_opt.step()
        darts.proximal_group_step(mixed, {"all": list(mixed)}, 0.05 * 0.1)
    return darts.select_top_k(darts.group_norms(alphas, CANDIDATES), 2)


def test_screening_recovers_the_two_ops_of_a_synthetic_target():
    found = [set(screen_synthetic(seed)) == set(TARGET) for seed in range(4)]
    assert sum(found) >= 3, found


def _one_hot_state(net_model: torch.nn.Module, derived_model: torch.nn.Module, picks: dict[str, int]) -> None:
    """Load the picked candidate's tensors of every mixed op of `net_model` into `derived_model` (whose
    searched positions are plain ops); every other tensor by name."""
    src = net_model.state_dict()
    dst = derived_model.state_dict()
    for key in dst:
        parts = key.split(".")
        pos = next((i for i, p in enumerate(parts) if p in picks), None)
        if pos is None:
            dst[key] = src[key]
            continue
        sub = ".".join(parts[:pos + 1]) + f".ops.{picks[parts[pos]]}." + ".".join(parts[pos + 1:])
        if sub in src:
            dst[key] = src[sub]  # affine norm scale 1 / shift 0 stay as initialised: same function
    derived_model.load_state_dict(dst)


def test_supernet_with_one_hot_weights_is_the_derived_detector():
    """x + sum_i w_i f_i(x) with w one-hot on k equals the derived x + f_k(x): the identity sits outside the
    mixture, so nothing of it is scaled by the weights, and affine-free norms equal fresh affine ones."""
    torch.manual_seed(0)
    ops = ["ir_k3_e3", "sd_k3_d2", "conv_1x1"]
    net = supernet(SPACE, {c: ops for c in ("backbone", "neck", "head")}, weighting="linear")
    picks = {p.name: (i % 3) for i, p in enumerate(SPACE.positions())}
    net_model = gb.compile(net).eval()
    for name, m in mixed_modules(net, net_model).items():
        with torch.no_grad():
            m.alpha.copy_(torch.nn.functional.one_hot(torch.tensor(picks[name]), 3).float())
    for m in net_model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    derived = derive(SPACE, net, {p: [float(k == picks[p]) for k in range(3)] for p in picks}).graph
    assert all(n.op != "mixed_op" for c in ("backbone", "neck", "head") for n in derived[c].block)
    derived_model = gb.compile(derived).eval()
    _one_hot_state(net_model, derived_model, picks)
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(net_model(x), derived_model(x), rtol=1e-4, atol=1e-5)


def test_head_uses_group_norm_in_every_arm():
    net = supernet(SPACE, {c: OPS for c in ("backbone", "neck", "head")})
    derived = derive(SPACE, net, {p.name: [0.0, 1.0, 0.0, 0.0] for p in SPACE.positions()}).graph
    for graph in (hand_designed(SPACE), net, derived, supernet(SPACE, {"backbone": OPS})):
        head = graph["head"].block
        assert all(n.params["norm"] == "group" for n in head if n.name.startswith("head_") and n.op != "add")
        modules = list(gb.compile(graph)._modules["head"].modules())
        assert any(isinstance(m, torch.nn.GroupNorm) for m in modules)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in modules)


def test_derive_within_a_flops_budget_trims_and_raises():
    net = supernet(SPACE, {c: OPS for c in ("backbone", "neck", "head")})
    big = {p.name: [1.0, 0.0, 0.0, 0.0] for p in SPACE.positions()}  # ir_k3_e3 everywhere: the most expensive
    small = {p.name: [0.0, 0.0, 0.0, 1.0] for p in SPACE.positions()}  # conv_1x1 everywhere: the cheapest
    free, cheap = derive(SPACE, net, big), derive(SPACE, net, small)
    assert set(free.arch.values()) == {"ir_k3_e3"} and set(cheap.arch.values()) == {"conv_1x1"}
    for scores in (big, small):
        budget = (free.cost + cheap.cost) / 2
        fit = derive(SPACE, net, scores, budget=budget, tolerance=0.03)
        assert fit.feasible and abs(fit.cost / budget - 1) <= 0.03
        assert fit.cost == fit.graph.summary().total_flops / SPACE.batch
    params = derive(SPACE, net, big, budget=0.8 * free.graph.summary().total_params, cost="params")
    assert abs(params.graph.summary().total_params / (0.8 * free.graph.summary().total_params) - 1) <= 0.03


@pytest.fixture(scope="module")
def tiny():
    train, val = synthetic_detection(24, 8, image_size=64, seed=1)
    config = TrinityConfig(space=SPACE, operators=OPS, top_k=4, screen_steps=3, search_steps=9, retrain_steps=2,
                           batch_size=4, log_every=1, seed=3)
    return train, val, config


@pytest.fixture(scope="module")
def searched(tiny):
    train, val, config = tiny
    return trinity(train, val, config, progress=False)


def test_trinity_end_to_end_is_deterministic_and_shrinks(tiny, searched):
    train, val, config = tiny
    a, b = searched, trinity(train, val, config, progress=False)
    assert isinstance(a, BaseResult) and a.stage == "done" and not a.interrupted
    assert a.arch == b.arch and a.alpha_history == b.alpha_history and a.screening.norms == b.screening.norms
    assert set(a.screening.kept) == {"backbone", "neck", "head"}
    assert set(a.arch) == {p.name for p in SPACE.positions()}
    # progressive shrinking: 4 candidates, one dropped after 1/3 and 2/3 of the alpha phase, 2 remain
    alpha_phase = config.search_steps - round(config.warmup * config.search_steps)
    expected = sorted({config.search_steps - alpha_phase + round(f * alpha_phase) for f in config.shrink_at})
    for pos, drops in a.dropped.items():
        assert [s for s, _ in drops] == expected
        assert a.arch[pos] not in {label for _, label in drops}  # without a budget: a finalist
        final = a.alpha_history[pos][-1]
        assert sum(w == 0 for w in final) == 2 and sum(final) == pytest.approx(1.0)
        assert a.arch[pos] == a.candidates[pos][max(range(4), key=lambda i: final[i])]
    assert len(a.entropy_history) == len(a.history_steps) == config.search_steps + 1
    assert 0 <= a.alpha_entropy <= 1 and a.entropy_history[0] == pytest.approx(1.0)  # uniform at the start
    assert {"mAP", "mAP50", "AP_P3", "AP_P4", "AP_P5"} <= set(a.metrics)
    assert a.params == a.graph.summary().total_params
    assert [n.op for n in a.graph] == ["input", "block", "block", "block", "output"]
    assert len(a.plot().axes) >= len(a.arch)


def test_result_saves_and_loads_with_config_and_weights(searched, tiny, tmp_path):
    _, val, _ = tiny
    path = tmp_path / "hit.json"
    searched.save(path)
    loaded = TrinityResult.load(path)
    assert loaded.config == searched.config and loaded.arch == searched.arch
    assert loaded.dropped == searched.dropped and loaded.metrics == searched.metrics
    assert loaded.screening.kept == searched.screening.kept
    x = val.images[:2]
    torch.testing.assert_close(gb.compile(loaded.graph).eval()(x), searched.model.eval()(x))
    with pytest.raises(gb.GraphError, match="not a trinity result"):
        TrinityResult.from_dict({"format": "graphbuilder.prune_grow_result"})


class Interrupting:
    """A dataset that raises KeyboardInterrupt (as Ctrl-C does) after `after` batch reads."""

    def __init__(self, data, after: int) -> None:
        self.data, self.after, self.reads = data, after, 0
        self.targets, self.num_classes, self.coco = data.targets, data.num_classes, data.coco

    @property
    def images(self):
        self.reads += 1
        if self.reads > self.after:
            raise KeyboardInterrupt
        return self.data.images

    def __len__(self) -> int:
        return len(self.data)


def test_interrupt_returns_state_so_far(tiny):
    train, val, config = tiny
    config = config.replace(search_steps=4)
    # the shape checks read images once per stage; screening reads 1 + 2 per alpha step: stop inside search
    res = trinity(Interrupting(train, 2 + 3 + 1 + 2 + 2), val, config, progress=False)
    assert res.interrupted and res.stage == "search"
    assert res.screening is not None and res.screening.steps == 3
    assert res.derived is not None and set(res.arch) == {p.name for p in SPACE.positions()}
    res = trinity(Interrupting(train, 3), val, config, progress=False)
    assert res.interrupted and res.stage == "screen" and res.derived is None and res.screening.steps == 1
    with pytest.raises(gb.GraphError, match="before deriving"):
        res.graph  # noqa: B018


def test_backbone_only_search_keeps_neck_and_head_fixed(tiny):
    train, _, config = tiny
    res = trinity(train, None, config.replace(search=("backbone",), search_steps=3), progress=False, evaluate=False)
    assert set(res.screening.kept) == {"backbone"}
    for p in SPACE.positions():
        if p.component != "backbone":
            assert res.arch[p.name] == HAND_DESIGNED[p.role]
    assert res.metrics == {}


def test_resource_penalty_lowers_derived_flops(tiny):
    train, _, config = tiny
    run = config.replace(screen_steps=0, search_steps=10, warmup=0.2, shrink_at=())
    free = trinity(train, None, run.replace(gamma=0.0), progress=False, evaluate=False)
    cheap = trinity(train, None, run.replace(gamma=2.0), progress=False, evaluate=False)
    assert cheap.flops < free.flops


def test_widget_view_styles_candidate_edges():
    widget_mod = pytest.importorskip("graphbuilder.widget")
    net = build_detector(SPACE, lambda p: ("mixed_op", {"candidates": ["conv_1x1", "sd_k3_d1"]}), "net")
    widget = widget_mod.GraphWidget(hand_designed(SPACE))
    view = WidgetView(widget, net, SPACE)
    assert widget.graph is view.display
    weights = {p.name: [0.2, 0.8] for p in SPACE.positions()}
    view.update(weights)
    widget.flush()
    edges = {(u.node.name, n.name) for n in view.display for u in n.inputs if u is not None}
    styled = {(e["source"], e["target"]): e for e in widget.edge_styles}
    assert len(styled) == 2 * len(SPACE.positions()) and set(styled) <= edges
    strong, weak = styled[("head_0.sd_k3_d1", "head_0")], styled[("head_0.conv_1x1", "head_0")]
    assert strong["width"] > weak["width"] and strong["label"] == "0.80" and weak["label"] == "0.20"
    assert set(widget.highlights) == {f"{p.name}.sd_k3_d1" for p in SPACE.positions()}
    assert display_graph(net, SPACE, weights)["head_0"].params["weights"] == (0.2, 0.8)


def test_protocol_compares_paired_seeds_and_needs_screened_sets_for_random():
    graph = hand_designed(SPACE)

    def unit(arm: str, seed: int, m: float) -> UnitResult:
        return UnitResult(arm, seed, {"mAP": m}, 1.0, 1, {}, graph)

    results = [unit(a, s, base + 0.01 * s + {"hand": 0.0, "backbone": 0.01, "trinity": 0.05, "random": 0.0}[a])
               for s, base in enumerate([0.3, 0.25, 0.35, 0.3, 0.28, 0.33]) for a in ("hand", "backbone", "trinity",
                                                                                   "random")]
    comps = compare(results)
    assert comps["hand"].diffs == pytest.approx((0.05,) * 6) and comps["hand"].p_raw == 1 / 64
    assert comps["hand"].p == pytest.approx(2 / 64)  # Holm over hand and backbone: the smaller p doubles
    assert comps["random"].p == comps["random"].p_raw  # random is reported uncorrected
    assert comps["backbone"].line().startswith("trinity-vs-backbone: mean=0.0400 ci95=[")
    config = ProtocolConfig(search=TrinityConfig(space=DetectorSpace(image_size=96)))
    with pytest.raises(gb.GraphError, match="kept="):
        run_unit(config, "random", 0)
    with pytest.raises(gb.GraphError, match="choose from"):
        run_unit(config, "oracle", 0)


@pytest.mark.parametrize("by_seed", [True, False])
def test_run_protocol_orders_calls_and_hands_random_the_screened_sets(by_seed):
    """The scheduling alone, through the runner hook that executors use: random units come after the trinity
    unit of their seed and get its screened sets; done units are not rerun; by_seed finishes seed 0 first."""
    graph = hand_designed(SPACE)
    batches: list[list[tuple[str, int]]] = []

    def runner(config, calls):
        batches.append([(arm, seed) for arm, seed, _ in calls])
        for arm, seed, kept in calls:
            assert (kept is not None) == (arm == "random")
            if kept is not None:
                assert kept == {"backbone": [f"op{seed}"]}
            yield UnitResult(arm, seed, {"mAP": 0.1}, 1.0, 1, {}, graph,
                             kept={"backbone": [f"op{seed}"]} if arm == "trinity" else None)

    config = ProtocolConfig(search=TrinityConfig(space=DetectorSpace(image_size=96)))
    done = [UnitResult("hand", 0, {"mAP": 0.1}, 1.0, 1, {}, graph)]
    results = run_protocol(config, [0, 1], runner=runner, done=done, by_seed=by_seed)
    assert [(r.arm, r.seed) for r in results] == [(a, s) for s in (0, 1) for a in ("hand", "backbone", "trinity",
                                                                                   "random")]
    if by_seed:
        assert batches == [[("backbone", 0), ("trinity", 0)], [("random", 0)],
                           [("hand", 1), ("backbone", 1), ("trinity", 1)], [("random", 1)]]
    else:
        assert batches == [[("backbone", 0), ("trinity", 0), ("hand", 1), ("backbone", 1), ("trinity", 1)],
                           [("random", 0), ("random", 1)]]


@pytest.mark.slow
def test_gamma_sweep_flops_fall_as_gamma_rises():
    train, _ = synthetic_detection(96, 8, image_size=64, seed=0)
    flops = []
    config = TrinityConfig(operators=["ir_k5_e6", "ir_k3_e3", "sd_k3_d1", "conv_1x1"], screen_steps=0,
                           search_steps=40, warmup=0.25, retrain_steps=0, shrink_at=())
    for gamma in (0.0, 0.1, 1.0):
        flops.append(trinity(train, None, config.replace(gamma=gamma), progress=False, evaluate=False).flops)
    assert flops[0] >= flops[1] >= flops[2] and flops[2] < flops[0], flops


@pytest.mark.slow
def test_quick_protocol_runs_every_arm_within_budget(tmp_path):
    space = DetectorSpace(image_size=96, stem_channels=8, stages=((8, 1), (8, 1), (12, 1), (16, 1)), neck_channels=8,
                          head_positions=2)
    config = ProtocolConfig(num_train=32, num_val=8, search=TrinityConfig(
        space=space, size_bounds=(8.0, 16.0), screen_steps=3, search_steps=6, retrain_steps=2, batch_size=4, top_k=3))
    results = run_protocol(config, [0])
    assert [r.arm for r in results] == ["hand", "backbone", "trinity", "random"]
    hand = config.hand_flops()
    assert all(abs(r.flops / hand - 1) <= 0.03 for r in results)
    assert all(r.metrics and r.graph["backbone"].block.weights for r in results)  # retrained weights kept
    assert UnitResult.from_dict(results[2].to_dict()).arch == results[2].arch
