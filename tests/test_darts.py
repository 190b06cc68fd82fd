"""Generic DARTS pieces against references: the group-lasso proximal step against its defining minimisation,
budget fitting (trim and raise) against brute-force enumeration, shrinking and entropy against their
definitions, weight inheritance by candidate label."""

from __future__ import annotations

import itertools
import math
import random

import pytest
import torch

import graphbuilder as gb
from graphbuilder.search import darts
from graphbuilder.search.detector_space import DetectorSpace
from graphbuilder.search.trinity import mixed_modules, supernet


def test_group_soft_threshold_is_the_group_lasso_prox():
    cols = torch.tensor([[3.0, 0.1, 0.0], [4.0, 0.1, -2.0]])  # column norms 5, 0.141, 2
    out = darts.group_soft_threshold(cols, 1.0)
    torch.testing.assert_close(out[:, 0], cols[:, 0] * (1 - 1 / 5))
    assert torch.equal(out[:, 1], torch.zeros(2))  # norm below the threshold: exactly zero
    torch.testing.assert_close(out[:, 2], cols[:, 2] * 0.5)

    def objective(z):  # the prox minimises 0.5 ||z - cols||^2 + t * sum ||z_j||
        return 0.5 * ((z - cols) ** 2).sum() + z.norm(dim=0).sum()

    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert objective(out) <= objective(out + 0.01 * torch.randn(2, 3, generator=gen)) + 1e-6


def brute_force(logp, costs, fixed, lo, hi):
    """Best total log-probability over every architecture with fixed + cost in [lo, hi] (None if none)."""
    names = list(logp)
    best = None
    for pick in itertools.product(*[range(len(logp[n])) for n in names]):
        total = fixed + sum(costs[n][k] for n, k in zip(names, pick, strict=True))
        if lo <= total <= hi:
            score = sum(logp[n][k] for n, k in zip(names, pick, strict=True))
            best = score if best is None else max(best, score)
    return best


def _score(fit, logp):
    return sum(logp[n][k] for n, k in fit.choice.items())


@pytest.mark.parametrize("seed", range(6))
def test_fit_budget_is_the_most_probable_architecture_in_the_window(seed):
    rng = random.Random(seed)
    positions = {f"p{i}": rng.randint(2, 4) for i in range(4)}
    logp = {n: [math.log(rng.random() + 1e-3) for _ in range(k)] for n, k in positions.items()}
    costs = {n: [rng.randint(1, 40) for _ in range(k)] for n, k in positions.items()}
    fixed = 25.0
    for budget in (60.0, 90.0, 120.0):
        tol = 0.1
        lo, hi = (1 - tol) * budget, (1 + tol) * budget
        fit = darts.fit_budget(logp, costs, fixed, budget, tol)
        exact = brute_force(logp, costs, fixed, lo, hi)
        if fit.feasible:
            assert lo <= fit.cost <= hi
            assert fit.cost == fixed + sum(costs[n][k] for n, k in fit.choice.items())
            assert _score(fit, logp) <= exact + 1e-9  # never claims more than the best in the window
            margin = 2 * (hi - lo) / 8  # the grid may miss architectures this close to an edge
            inner = brute_force(logp, costs, fixed, lo + margin, hi - margin)
            assert inner is None or _score(fit, logp) >= inner - 1e-9
        else:
            assert exact is None or brute_force(logp, costs, fixed, lo + (hi - lo) / 4, hi - (hi - lo) / 4) is None


def test_fit_budget_raises_an_architecture_under_budget():
    logp = {"a": [math.log(0.7), math.log(0.2), math.log(0.1)], "b": [math.log(0.6), math.log(0.4)]}
    costs = {"a": [1.0, 5.0, 9.0], "b": [1.0, 4.0]}
    argmax_cost = 10.0 + 1.0 + 1.0
    fit = darts.fit_budget(logp, costs, 10.0, 20.0, 0.1)  # argmax costs 12, far under 18-22
    assert argmax_cost < 18.0 and fit.feasible and 18.0 <= fit.cost <= 22.0
    # the only ways into [18, 22]: a=9 & b=1 (cost 20, 0.1 * 0.6) or a=5 & b=4 (cost 19, 0.2 * 0.4)
    assert fit.choice == {"a": 1, "b": 1}
    trimmed = darts.fit_budget(logp, costs, 10.0, 12.0, 0.05)
    assert trimmed.choice == {"a": 0, "b": 0}  # the argmax already fits: unchanged
    far = darts.fit_budget(logp, costs, 10.0, 100.0, 0.03)
    assert not far.feasible and far.choice == {"a": 2, "b": 1}  # nearest reachable total


def test_weakest_and_entropy_follow_their_definitions():
    alpha = torch.tensor([0.3, -0.5, 0.1, -0.5])
    assert darts.weakest(alpha, [True] * 4, 1) == [3]  # tie: the later candidate first
    assert darts.weakest(alpha, [True, False, True, True], 2) == [3, 2]
    assert darts.weakest(alpha, [True, False, False, False], 1) == []  # one candidate always stays
    assert darts.entropy([0.25] * 4) == pytest.approx(1.0)
    assert darts.entropy([1.0, 0.0, 0.0]) == 0.0
    p = [0.7, 0.2, 0.1]
    assert darts.entropy(p) == pytest.approx(-sum(v * math.log(v) for v in p) / math.log(3))
    assert darts.entropy([0.5, 0.5, 0.0]) == pytest.approx(1.0)  # over the candidates still in play


def test_inherit_weights_copies_kept_candidates_by_label():
    space = DetectorSpace(stem_channels=8, stages=((8, 1), (8, 1), (12, 1), (16, 1)), neck_channels=8,
                          head_positions=1)
    torch.manual_seed(0)
    src_g = supernet(space, {"backbone": ["ir_k3_e3", "sd_k3_d1", "conv_1x1"]}, weighting="linear")
    dst_g = supernet(space, {"backbone": ["conv_1x1", "ir_k3_e3"]})
    src, dst = gb.compile(src_g), gb.compile(dst_g)
    for m in src.modules():  # make running statistics differ from a fresh module's
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)

    def labels(g, model):
        return {q: [c if isinstance(c, str) else c["op"] for c in
                    next(n for comp in ("backbone",) for n in g[comp].block if n.name == q.rsplit(".", 1)[-1]
                         ).params["candidates"]]
                for q, m in model.named_modules() if isinstance(m, gb.ops.modules.search_space.MixedOp)}

    assert darts.inherit_weights(src, dst, labels(src_g, src), labels(dst_g, dst)) > 0
    s_sd, d_sd = src.state_dict(), dst.state_dict()
    for key, value in d_sd.items():
        if ".bb_" not in key:  # fixed parts: same names, copied
            assert torch.equal(value, s_sd[key]), key
    for pos in mixed_modules(dst_g, dst):
        q = f"backbone.{pos}"
        for tail in ("expand.0.weight", "depthwise.1.running_var", "project.0.weight"):
            # ir_k3_e3 is candidate 0 in the screening supernet and 1 in the joint one
            assert torch.equal(d_sd[f"{q}.ops.1.{tail}"], s_sd[f"{q}.ops.0.{tail}"])
        assert torch.equal(d_sd[f"{q}.ops.0.conv.0.weight"], s_sd[f"{q}.ops.2.conv.0.weight"])
        assert torch.equal(d_sd[f"{q}.alpha"], torch.zeros(2))  # alphas are not inherited
