"""Hit-Detector search-space ops: parameter counts from the reference formulas, outputs against hand-written
torch modules, weight sharing over inputs, the mixed_op choice node and its errors (arXiv:2003.11818)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import graphbuilder as gb
from graphbuilder.ops.modules.search_space import SEARCH_OPS, group_count


def _node(op: str, shape=(2, 16, 8, 8), **params):
    g = gb.Graph("t")
    x = g.input("x", shape=shape)
    return g, g.add(op, x, **params)


def bn(c: int) -> int:
    return 2 * c  # BatchNorm2d: weight + bias (running stats are buffers)


def mbconv_formula(c: int, c_out: int, k: int, e: int) -> int:
    mid = c * e
    return c * mid + bn(mid) + mid * k * k + bn(mid) + mid * c_out + bn(c_out)


def sepconv_formula(c: int, c_out: int, k: int) -> int:
    return c * k * k + bn(c) + c * c_out + bn(c_out)


def test_ir_k3_e6_at_16_channels_has_4352_params():
    assert _node("ir_k3_e6")[1].num_params == 4352


@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("e", [3, 6])
@pytest.mark.parametrize(("c_out", "stride"), [(None, 1), (24, 2), (8, 1)])
def test_mbconv_param_counts(k, e, c_out, stride):
    _, node = _node(f"ir_k{k}_e{e}", out_channels=c_out, stride=stride)
    assert node.num_params == mbconv_formula(16, c_out or 16, k, e)
    assert node.shape == (2, c_out or 16, 8 // stride, 8 // stride)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_sepconv_param_counts(k, d):
    assert _node(f"sd_k{k}_d{d}")[1].num_params == sepconv_formula(16, 16, k)
    assert _node(f"sd_k{k}_d{d}", out_channels=32)[1].num_params == sepconv_formula(16, 32, k)


def test_conv_1x1_and_skip_param_counts():
    assert _node("conv_1x1")[1].num_params == 16 * 16 + 16 + bn(16)  # conv with bias, then BN
    assert _node("skip")[1].num_params == 0
    assert _node("skip", out_channels=24, stride=2)[1].num_params == 16 * 24 + bn(24)


def _copy_into(reference: nn.Module, module: nn.Module) -> None:
    """Load `module`'s tensors into `reference` in order (same layer order, different names)."""
    ref_state = reference.state_dict()
    values = list(module.state_dict().values())
    assert len(values) == len(ref_state)
    reference.load_state_dict(dict(zip(ref_state, values, strict=True)))


def _randomise_bn(module: nn.Module) -> None:
    gen = torch.Generator().manual_seed(3)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=gen))
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


@pytest.mark.parametrize(("op", "c_out", "stride", "dilation"),
                         [("ir_k5_e3", None, 1, 1), ("ir_k3_e6", 24, 2, 1), ("ir_k3_e3", None, 1, 2)])
def test_mbconv_matches_hand_written_reference(op, c_out, stride, dilation):
    k, e = int(op[4]), int(op[7])
    c, co = 16, c_out or 16
    mid = c * e
    ref = nn.Sequential(
        nn.Conv2d(c, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
        nn.Conv2d(mid, mid, k, stride, padding=(k - 1) * dilation // 2, dilation=dilation, groups=mid, bias=False),
        nn.BatchNorm2d(mid), nn.ReLU(),
        nn.Conv2d(mid, co, 1, bias=False), nn.BatchNorm2d(co))
    g, node = _node(op, out_channels=c_out, stride=stride, dilation=dilation)
    g.output(node)
    model = gb.compile(g).eval()
    _randomise_bn(model)
    _copy_into(ref, model)
    ref.eval()
    x = torch.randn(2, 16, 8, 8)
    expected = ref(x) + (x if c_out is None and stride == 1 else 0)
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize(("k", "d"), [(3, 1), (5, 3)])
def test_sepconv_matches_hand_written_reference(k, d):
    ref = nn.Sequential(nn.Conv2d(16, 16, k, padding=(k - 1) * d // 2, dilation=d, groups=16, bias=False),
                        nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16))
    g, node = _node(f"sd_k{k}_d{d}")
    g.output(node)
    model = gb.compile(g).eval()
    _randomise_bn(model)
    _copy_into(ref, model)
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(model(x), ref.eval()(x) + x)


def test_several_inputs_share_weights():
    g = gb.Graph("shared")
    a, b = g.input("a", shape=(2, 8, 8, 8)), g.input("b", shape=(2, 8, 4, 4))
    node = g.add("ir_k3_e3", a, b, out_channels=12)
    assert node.num_outputs == 2 and node[1].shape == (2, 12, 4, 4)
    g.output(node[0], node[1])
    single = gb.Graph("single")
    single.output(single.add("ir_k3_e3", single.input("x", shape=(2, 8, 4, 4)), out_channels=12))
    model, one = gb.compile(g).eval(), gb.compile(single).eval()
    one.load_state_dict(dict(zip(one.state_dict(), model.state_dict().values(), strict=True)))
    xa, xb = torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)
    _, out_b = model(xa, xb)
    torch.testing.assert_close(out_b, one(xb))


def _standalone(name: str, module: nn.Module, **params) -> nn.Module:
    """Op `name` compiled alone (16 channels) with `module`'s tensors loaded."""
    g1, n1 = _node(name, **params)
    g1.output(n1)
    one = gb.compile(g1).eval()
    one.load_state_dict(dict(zip(one.state_dict(), module.state_dict().values(), strict=True)))
    return one


def _no_residual(name: str) -> dict[str, bool]:
    return {"residual": False} if name[:2] in ("ir", "sd") else {}


@pytest.mark.parametrize("weighting", ["softmax", "linear"])
def test_mixed_op_is_weighted_sum_of_candidates(weighting):
    cands = ["ir_k3_e6", "sd_k3_d2", "conv_1x1", "skip"]
    alpha = (0.3, -1.0, 0.7, 0.1)
    g, node = _node("mixed_op", candidates=cands, alpha=alpha, weighting=weighting)
    g.output(node)
    model = gb.compile(g).eval()
    _randomise_bn(model)
    x = torch.randn(2, 16, 8, 8)
    a = torch.tensor(alpha)
    w = torch.softmax(a, 0) if weighting == "softmax" else a
    mixed = next(m for m in model.modules() if hasattr(m, "ops"))
    # candidates run without their own residual and without affine norms (the search's setting)
    expected = sum(w[i] * _standalone(name, mixed.ops[i], affine=False, **_no_residual(name))(x)
                   for i, name in enumerate(cands))
    torch.testing.assert_close(model(x), expected)
    affine_free = sum(_node(n, affine=False)[1].num_params for n in cands)
    assert node.num_params == affine_free + len(cands)  # + alpha


def test_affine_free_candidates_have_no_norm_parameters():
    for op in ("ir_k3_e6", "sd_k5_d3", "conv_1x1"):
        _, with_affine = _node(op)
        _, without = _node(op, affine=False)
        norms = {"ir_k3_e6": bn(16 * 6) * 2 + bn(16), "sd_k5_d3": bn(16) * 2, "conv_1x1": bn(16)}[op]
        assert with_affine.num_params - without.num_params == norms
    g, node = _node("mixed_op", candidates=["ir_k3_e3", "sd_k3_d1"])
    g.output(node)
    mods = [m for m in gb.compile(g).modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert mods and not any(m.affine for m in mods)  # mixed_op searches without affine norms by default


def test_residual_flag_drops_the_ops_own_identity():
    g = gb.Graph("res")
    x = g.input("x", shape=(2, 16, 8, 8))
    with_res, without = g.add("sd_k3_d1", x), g.add("sd_k3_d1", x, residual=False)
    g.output(with_res, without)
    model = gb.compile(g).eval()
    sd = model.state_dict()
    half = len(sd) // 2
    model.load_state_dict(dict(zip(sd, list(sd.values())[:half] * 2, strict=True)))  # same weights in both
    xin = torch.randn(2, 16, 8, 8)
    a, b = model(xin)
    torch.testing.assert_close(a, b + xin)


@pytest.mark.parametrize("op", ["ir_k3_e3", "sd_k3_d2", "conv_1x1"])
def test_group_norm_ops_match_hand_written_reference(op):
    g, node = _node(op, shape=(2, 24, 8, 8), norm="group")
    g.output(node)
    model = gb.compile(g).train()
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert norms and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.num_groups == math.gcd(m.num_channels, 8) for m in norms)  # 24 and 72 channels: 8 groups
    assert [group_count(c) for c in (8, 4, 2, 1, 12, 144)] == [4, 2, 1, 1, 4, 8]  # >= 2 channels per group
    x = torch.randn(2, 24, 8, 8)
    # GroupNorm keeps no running statistics: train and eval mode agree (a shared head's levels never mix)
    torch.testing.assert_close(model(x), model.eval()(x))
    if op == "sd_k3_d2":
        ref = nn.Sequential(nn.Conv2d(24, 24, 3, padding=2, dilation=2, groups=24, bias=False), nn.GroupNorm(8, 24),
                            nn.ReLU(), nn.Conv2d(24, 24, 1, bias=False), nn.GroupNorm(8, 24))
        _copy_into(ref, model)
        torch.testing.assert_close(model(x), ref(x) + x)


def test_mixed_op_drop_removes_a_candidate():
    cands = ["ir_k3_e3", "sd_k3_d1", "conv_1x1"]
    alpha = (0.5, 0.2, -0.3)
    g, node = _node("mixed_op", candidates=cands, alpha=alpha)
    g.output(node)
    model = gb.compile(g).eval()
    mixed = next(m for m in model.modules() if hasattr(m, "ops"))
    x = torch.randn(2, 16, 8, 8)
    mixed.drop(0)
    w = torch.softmax(torch.tensor(alpha[1:]), 0)  # the softmax runs over the remaining candidates
    expected = sum(w[i] * _standalone(n, mixed.ops[i + 1], affine=False, **_no_residual(n))(x)
                   for i, n in enumerate(cands[1:]))
    torch.testing.assert_close(model(x), expected)
    assert mixed.weights()[0] == 0
    mixed.drop(1)
    with pytest.raises(ValueError, match="last active candidate"):
        mixed.drop(2)


def test_mixed_op_errors_name_node_and_fix():
    g = gb.Graph("bad")
    x = g.input("x", shape=(2, 16, 8, 8))
    with pytest.raises(gb.GraphError, match="alpha has 1 values but there are 2 candidates") as e:
        g.add("mixed_op", x, name="pos", candidates=["skip", "conv_1x1"], alpha=(1.0,))
    assert "pos" in e.value.nodes
    with pytest.raises(gb.GraphError, match="unknown op 'nope'"):
        g.add("mixed_op", x, candidates=["nope"])
    with pytest.raises(gb.GraphError, match="'kernel_size' is required"):  # any op may be a candidate: its
        g.add("mixed_op", x, candidates=["conv2d"])  # own declaration checks its params
    with pytest.raises(gb.GraphError, match="non-empty list"):
        g.add("mixed_op", x, candidates=[])
    with pytest.raises(gb.GraphError, match="unknown params"):
        g.add("mixed_op", x, candidates=[{"op": "sd_k3_d1", "dilation": 2}])
    y = g.input("y", shape=(2, 8, 8, 8))
    with pytest.raises(gb.GraphError, match="equal channels"):
        g.add("ir_k3_e3", x, y)
    with pytest.raises(gb.GraphError, match=r"\(N, C, H, W\)"):
        g.add("skip", g.input("v", shape=(2, 16)))


def test_mixed_op_candidate_with_dilation_and_all_ops_registered():
    assert set(SEARCH_OPS) <= set(gb.ops.names())
    _, node = _node("mixed_op", candidates=["ir_k3_e6", {"op": "ir_k3_e6", "dilation": 2}])
    affine_free = 4352 - bn(16 * 6) * 2 - bn(16)  # the search's candidates have no norm scale and shift
    assert node.num_params == 2 * affine_free + 2


def test_weighted_sum_groups_levels():
    g = gb.Graph("ws")
    ins = [g.input(f"x{i}", shape=(1, 2, 3, 3)) for i in range(4)]  # 2 candidates x 2 levels
    node = g.add("weighted_sum", *ins, weights=(0.25, 0.75))
    g.output(node[0], node[1])
    xs = [torch.randn(1, 2, 3, 3) for _ in range(4)]
    l0, l1 = gb.compile(g)(*xs)
    torch.testing.assert_close(l0, 0.25 * xs[0] + 0.75 * xs[2])
    torch.testing.assert_close(l1, 0.25 * xs[1] + 0.75 * xs[3])


def test_det_predict_layout_matches_per_level_convs():
    g = gb.Graph("pred")
    p3, p4 = g.input("p3", shape=(2, 8, 4, 4)), g.input("p4", shape=(2, 8, 2, 2))
    g.output(g.add("det_predict", p3, p4, num_classes=3))
    model = gb.compile(g)
    pred = next(m for m in model.modules() if hasattr(m, "cls"))
    x3, x4 = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)
    out = model(x3, x4)
    assert out.shape == (2, 16 + 4, 3 + 5)
    # row 16 + 1 is level 4, cell (0, 1); channels: 3 class logits, 4 distances, 1 centerness
    torch.testing.assert_close(out[:, 17, :3], pred.cls(x4)[:, :, 0, 1])
    torch.testing.assert_close(out[:, 17, 3:7], pred.box(x4)[:, :, 0, 1])
    torch.testing.assert_close(out[:, 5, 7], pred.ctr(x3)[:, 0, 1, 1])
    torch.testing.assert_close(pred.cls.bias, torch.full((3,), -torch.log(torch.tensor(99.0)).item()))
