"""gb.search.trinity (Hit-Detector, arXiv:2003.11818): the group-sparse screening recovers the ops a synthetic
target was built from; a tiny end-to-end search is deterministic, interruptible, and its derived detector
compiles, saves and loads; the widget view styles real edges of the display graph."""

from __future__ import annotations

import pytest
import torch

import graphbuilder as gb
from graphbuilder.datasets import synthetic_detection
from graphbuilder.ops.modules.search_space import MixedOp, build_candidate
from graphbuilder.search.detector_space import DetectorSpace, build_detector, hand_designed
from graphbuilder.search.trinity import (
    WidgetView,
    derive,
    display_graph,
    fit_budget,
    group_norms,
    group_soft_threshold,
    inherit_weights,
    mixed_modules,
    proximal_group_step,
    select_top_k,
    supernet,
    trinity,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small convolutions run fastest (and deterministically) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_group_soft_threshold_is_the_group_lasso_prox():
    cols = torch.tensor([[3.0, 0.1, 0.0], [4.0, 0.1, -2.0]])  # column norms 5, 0.141, 2
    out = group_soft_threshold(cols, 1.0)
    torch.testing.assert_close(out[:, 0], cols[:, 0] * (1 - 1 / 5))
    assert torch.equal(out[:, 1], torch.zeros(2))  # norm below the threshold: exactly zero
    torch.testing.assert_close(out[:, 2], cols[:, 2] * 0.5)
    # prox property: out minimises 0.5 ||z - cols||^2 + t * sum ||z_j||; check against perturbations
    def objective(z):
        return 0.5 * ((z - cols) ** 2).sum() + z.norm(dim=0).sum()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert objective(out) <= objective(out + 0.01 * torch.randn(2, 3, generator=gen)) + 1e-6


CANDIDATES = ["ir_k3_e3", "ir_k3_e6", "sd_k3_d1", "sd_k3_d2", "sd_k3_d3", "sd_k5_d3", "conv_1x1", "skip"]
TARGET = ["ir_k3_e6", "sd_k5_d3"]


def screen_synthetic(seed: int, steps: int = 100, channels: int = 4, batch: int = 16) -> list[str]:
    """Regress a fixed random network `TARGET[1](TARGET[0](x))` with a 2-position supernet of the 8 candidates
    (linear mixing), alternating weight and alpha steps with the group-lasso proximal step; top-2 columns."""
    torch.manual_seed(seed)
    teacher = [build_candidate(t, channels, channels) for t in TARGET]  # random, fixed; BN on batch stats
    g = gb.Graph("screen")
    h = g.input("x", shape=(batch, channels, 8, 8))
    for i in range(len(TARGET)):
        h = g.add("mixed_op", h, name=f"p{i}", candidates=CANDIDATES, weighting="linear")
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
        proximal_group_step(mixed, {"all": list(mixed)}, 0.05 * 0.1)
    return select_top_k(group_norms(mixed, list(mixed)), 2)


def test_screening_recovers_the_two_ops_of_a_synthetic_target():
    found = [set(screen_synthetic(seed)) == set(TARGET) for seed in range(4)]
    assert sum(found) >= 3, found


@pytest.fixture(scope="module")
def tiny():
    train, val = synthetic_detection(24, 8, image_size=64, seed=1)
    space = DetectorSpace(stem_channels=8, stages=((8, 1), (8, 1), (12, 1), (16, 1)), neck_channels=8,
                          head_positions=2)
    kw = dict(space=space, operators=["ir_k3_e3", "sd_k3_d1", "sd_k5_d2", "conv_1x1", "skip"], top_k=3,
              screen_steps=3, search_steps=4, warmup_steps=1, retrain_steps=2, batch_size=4, log_every=2,
              progress=False)
    return train, val, space, kw


def test_trinity_end_to_end_is_deterministic(tiny, tmp_path):
    train, val, space, kw = tiny
    a = trinity(train, val, seed=3, **kw)
    b = trinity(train, val, seed=3, **kw)
    assert a.stage == "done" and not a.interrupted
    assert a.arch == b.arch and a.alpha_history == b.alpha_history and a.screening.norms == b.screening.norms
    assert set(a.screening.kept) == {"backbone", "neck", "head"}
    assert all(len(v) == 3 for v in a.screening.kept.values())
    assert set(a.arch) == {p.name for p in space.positions()}
    for pos, op in a.arch.items():
        comp = next(p.component for p in space.positions() if p.name == pos)
        assert op in a.screening.kept[comp]  # the joint search only chooses among kept ops
        assert len(a.alpha_history[pos]) == len(a.history_steps) == 3  # steps 0, 2, 4
    assert set(a.metrics) >= {"mAP", "mAP50"} and a.flops > 0 and a.params == a.derived.summary().total_params
    assert a.supernet["backbone"].block["bb_s0_0"].params["alpha"] is not None
    # the derived detector is a plain graph with three blocks; it saves, loads and runs identically
    assert [n.op for n in a.derived] == ["input", "block", "block", "block", "output"]
    assert all(n.op != "mixed_op" for comp in ("backbone", "neck", "head") for n in a.derived[comp].block)
    path = tmp_path / "hit.graph.json"
    a.derived.save(str(path))
    loaded = gb.Graph.load(str(path))
    x = val.images[:2]
    m1, m2 = gb.compile(a.derived).eval(), gb.compile(loaded).eval()
    torch.testing.assert_close(m1(x), m2(x))
    torch.testing.assert_close(m1(x), a.model.eval()(x))
    fig = a.plot()
    assert len(fig.axes) >= len(a.arch)


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
    train, val, space, kw = tiny
    # the shape check reads images once; screening then reads 2 per step (weights, alphas): stop inside search
    res = trinity(Interrupting(train, 1 + 2 * 3 + 3), val, seed=0, **kw)
    assert res.interrupted and res.stage == "search"
    assert res.screening is not None and res.screening.steps == 3
    assert res.derived is not None and set(res.arch) == {p.name for p in space.positions()}
    res = trinity(Interrupting(train, 3), val, seed=0, **kw)
    assert res.interrupted and res.stage == "screen" and res.derived is None and res.screening.steps == 1


def test_bad_arguments_raise_graph_errors(tiny):
    train, val, space, kw = tiny
    with pytest.raises(gb.GraphError, match="choose 'flops' or 'params'"):
        trinity(train, val, **{**kw, "cost": "latency"})
    with pytest.raises(gb.GraphError, match="not a component"):
        trinity(train, val, **{**kw, "search": ["backbone", "rpn"]})
    with pytest.raises(gb.GraphError, match="image_size"):
        trinity(train, val, **{**kw, "space": DetectorSpace(image_size=96)})


def test_backbone_only_search_keeps_neck_and_head_fixed(tiny):
    train, val, space, kw = tiny
    res = trinity(train, None, seed=0, search=["backbone"], **{**kw, "retrain_steps": 0})
    assert set(res.screening.kept) == {"backbone"}
    assert all(res.arch[p.name] == "sd_k3_d1" for p in space.positions() if p.component != "backbone")
    assert res.metrics == {}


def test_widget_view_styles_candidate_edges():
    widget_mod = pytest.importorskip("graphbuilder.widget")
    space = DetectorSpace(stem_channels=8, stages=((8, 1), (8, 1), (8, 1), (8, 1)), neck_channels=8,
                          head_positions=1)
    net = build_detector(space, lambda p: ("mixed_op", {"candidates": ["skip", "sd_k3_d1"]}), "net")
    widget = widget_mod.GraphWidget(hand_designed(space))
    view = WidgetView(widget, net, space)
    assert widget.graph is view.display
    weights = {p.name: [0.2, 0.8] for p in space.positions()}
    view.update(weights)
    widget.flush()
    edges = {(u.node.name, n.name) for n in view.display for u in n.inputs if u is not None}
    styled = {(e["source"], e["target"]): e for e in widget.edge_styles}
    assert len(styled) == 2 * len(space.positions()) and set(styled) <= edges
    strong, weak = styled[("head_0.sd_k3_d1", "head_0")], styled[("head_0.skip", "head_0")]
    assert strong["width"] > weak["width"] and strong["label"] == "0.80" and weak["label"] == "0.20"
    assert set(widget.highlights) == {f"{p.name}.sd_k3_d1" for p in space.positions()}
    # the display graph is a real, valid graph: weighted_sum merges the candidates with the weights
    assert display_graph(net, space, weights)["head_0"].params["weights"] == (0.2, 0.8)


def test_resource_penalty_lowers_derived_flops(tiny):
    train, _, _, kw = tiny
    run = {**kw, "screen_steps": 0, "search_steps": 10, "warmup_steps": 2, "retrain_steps": 0}
    free = trinity(train, None, seed=0, gamma=0.0, **run)
    cheap = trinity(train, None, seed=0, gamma=1.0, **run)
    assert cheap.flops < free.flops
    costs = {pos: {op: c["flops"] for op, c in table.items()} for pos, table in cheap.costs.items()}
    assert sum(costs[p][o] for p, o in cheap.arch.items()) < sum(costs[p][o] for p, o in free.arch.items())


@pytest.mark.slow
def test_gamma_sweep_flops_fall_as_gamma_rises():
    train, _ = synthetic_detection(96, 8, image_size=64, seed=0)
    flops = []
    for gamma in (0.0, 0.1, 1.0):
        res = trinity(train, None, seed=0, gamma=gamma, screen_steps=0, search_steps=40, warmup_steps=10,
                      retrain_steps=0, operators=["ir_k5_e6", "ir_k3_e3", "sd_k3_d1", "skip"], progress=False)
        flops.append(res.flops)
    assert flops[0] >= flops[1] >= flops[2] and flops[2] < flops[0], flops


def test_fit_budget_makes_the_cheapest_probability_trade():
    alphas = {"a": [2.0, 1.9, 0.0], "b": [3.0, 0.0, 0.0]}
    costs = {"a": {"big": 10.0, "mid": 4.0, "small": 1.0}, "b": {"big": 10.0, "mid": 4.0, "small": 1.0}}
    argmax = {"a": 0, "b": 0}
    assert fit_budget(alphas, costs, argmax, 0.0) == argmax  # within budget: plain argmax
    # saving 6: a big->mid costs 0.1 nats (0.017 per unit), b big->mid costs 3 nats: a moves
    assert fit_budget(alphas, costs, argmax, 6.0) == {"a": 1, "b": 0}
    # brute force: the greedy choice stays within budget and never beats the best feasible log-probability
    logp = {p: torch.log_softmax(torch.tensor(a), 0) for p, a in alphas.items()}
    for excess in (3.0, 7.0, 12.0, 15.0):
        got = fit_budget(alphas, costs, argmax, excess)
        cost = {p: list(c.values()) for p, c in costs.items()}
        saved = sum(cost[p][argmax[p]] - cost[p][k] for p, k in got.items())
        assert saved >= excess
        best = max(float(logp["a"][i] + logp["b"][j]) for i in range(3) for j in range(3)
                   if cost["a"][0] - cost["a"][i] + cost["b"][0] - cost["b"][j] >= excess)
        assert float(logp["a"][got["a"]] + logp["b"][got["b"]]) <= best + 1e-9
    assert fit_budget(alphas, costs, argmax, 100.0) == {"a": 2, "b": 2}  # unreachable: the cheapest


def test_derive_within_a_flops_budget(tiny):
    _, _, space, kw = tiny
    net = supernet(space, {c: kw["operators"] for c in ("backbone", "neck", "head")})
    big = {p.name: [0.0, 0.0, 0.0, 0.0, 0.0] for p in space.positions()}
    for p in big:
        big[p][0] = 1.0  # ir_k3_e3 everywhere: the most expensive candidate
    free, arch = derive(space, net, big)
    flops = free.summary().total_flops // space.batch
    assert set(arch.values()) == {"ir_k3_e3"}
    budget = 0.7 * flops
    tight, tight_arch = derive(space, net, big, budget=budget)
    assert tight.summary().total_flops / space.batch <= budget < flops
    assert "ir_k3_e3" in tight_arch.values()  # trimmed, not replaced wholesale
    params = free.summary().total_params
    by_params, _ = derive(space, net, big, budget=0.8 * params, cost="params")
    assert by_params.summary().total_params <= 0.8 * params


def test_inherit_weights_copies_kept_candidates_by_label(tiny):
    _, _, space, _ = tiny
    torch.manual_seed(0)
    src_g = supernet(space, {"backbone": ["ir_k3_e3", "sd_k3_d1", "skip"]}, weighting="linear")
    dst_g = supernet(space, {"backbone": ["skip", "ir_k3_e3"]})
    src, dst = gb.compile(src_g), gb.compile(dst_g)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    assert inherit_weights(src, src_g, dst, dst_g) > 0
    s_sd, d_sd = src.state_dict(), dst.state_dict()
    for key, value in d_sd.items():
        if ".bb_" not in key:  # fixed parts: same names, copied
            assert torch.equal(value, s_sd[key]), key
    for pos in mixed_modules(dst_g, dst):
        q = f"backbone.{pos}"
        for tail in ("expand.0.weight", "depthwise.1.running_var", "project.0.weight"):
            # ir_k3_e3 is candidate 0 in the screening supernet and 1 in the joint one
            assert torch.equal(d_sd[f"{q}.ops.1.{tail}"], s_sd[f"{q}.ops.0.{tail}"])
            assert not torch.equal(before[f"{q}.ops.1.{tail}"], s_sd[f"{q}.ops.0.{tail}"]) or "running" in tail
        assert torch.equal(d_sd[f"{q}.alpha"], torch.zeros(2))  # alphas are not inherited
