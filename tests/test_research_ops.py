"""The research palette's ops (graphbuilder/ops/research.py): each against its paper's formula and an
independent straightforward implementation written here, plus compile, save/load, export and import back.

References: every `ref_*` function below recomputes an op from the paper's equations with plain functional
torch (F.conv2d, einsum, explicit loops and index lists) on the compiled module's own weights, so a
mistake in a module (a wrong axis, a missing term, a swapped path) shows as a mismatch. Parameter counts
and FLOPs are checked against closed forms (a multiply-add counts 2 FLOPs, the summary's convention).
Full export checks (torch.export, ONNX) of every example run under ``-m slow``; the default run checks the
Python source and TorchScript of one graph holding every op.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from test_glore import randomise  # random values in every float state, BN statistics included
from torch import nn

import graphbuilder as gb
from graphbuilder.compile import store_weights
from graphbuilder.ops.modules.light_nl import light_nl_macs
from graphbuilder.ops.modules.micronet import squeeze_channels

# op -> [(input shapes, params)]: the examples declared with each op, which every op-driven test below runs.
EXAMPLES: dict[str, list[tuple[list[tuple[int, ...]], dict[str, Any]]]] = {
    op.name: [([s.shape for s in ex.inputs], dict(ex.params)) for ex in op.examples]
    for op in gb.ops.all_ops() if op.category == "research"}
RESEARCH_OPS = sorted(EXAMPLES)
CASES = [(op, i) for op in RESEARCH_OPS for i in range(len(EXAMPLES[op]))]


def single_op_graph(op: str, shapes: list[tuple[int, ...]], params: dict[str, Any], name: str = "node") -> gb.Graph:
    g = gb.Graph(op)
    node = g.add(op, *[g.input(f"x{i}", shape=s) for i, s in enumerate(shapes)], name=name, **params)
    g.output(*(node[i] for i in range(node.num_outputs)))
    return g


def bn(x: torch.Tensor, w: dict[str, torch.Tensor], key: str, eps: float = 1e-5) -> torch.Tensor:
    """Batch norm in eval mode from the state dict entries under `key`."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean, var = w[f"{key}.running_mean"].view(shape), w[f"{key}.running_var"].view(shape)
    return (x - mean) / torch.sqrt(var + eps) * w[f"{key}.weight"].view(shape) + w[f"{key}.bias"].view(shape)


def linear(x: torch.Tensor, w: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    return x @ w[f"{key}.weight"].T + (w[f"{key}.bias"] if f"{key}.bias" in w else 0)


# -- references ----------------------------------------------------------------------------------------------------
def ref_oct(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> list[torch.Tensor]:
    """Y_h = f(X_h; W_hh) + up(f(X_l; W_lh)), Y_l = f(X_l; W_ll) + f(pool(X_h); W_hl) (Eq. 3 of the paper)."""
    def pool(t: torch.Tensor) -> torch.Tensor:  # 2x2 average by reshaping, not avg_pool2d
        n, c, h, wd = t.shape
        return t.reshape(n, c, h // 2, 2, wd // 2, 2).mean(dim=(3, 5))

    def up(t: torch.Tensor) -> torch.Tensor:
        return t.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    def conv(t: torch.Tensor, path: str) -> torch.Tensor:
        return F.conv2d(t, w[f"conv_{path}.weight"], w.get(f"conv_{path}.bias"), padding=p["padding"],
                        groups=p["groups"])

    high, low = xs[0], (xs[1] if len(xs) > 1 else None)
    if p["stride"] == 2:
        high_in, low_in = pool(high), (pool(low) if low is not None else None)
    else:
        high_in, low_in = high, low
    y_high = conv(high_in, "hh")
    if low is not None:
        from_low = conv(low, "lh")
        y_high = y_high + (up(from_low) if p["stride"] == 1 else from_low)
    if "conv_hl.weight" not in w and "conv_ll.weight" not in w:
        return [y_high]
    y_low = conv(pool(high_in), "hl")
    if low_in is not None:
        y_low = y_low + conv(low_in, "ll")
    return [y_high, y_low]


def ref_dynamic_conv(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    """Sample by sample: pi = softmax(FC(ReLU(FC(GAP x))) / tau), one conv with sum_k pi_k W_k (+ sum_k pi_k b_k)."""
    x = xs[0]
    outs = []
    for i in range(x.shape[0]):
        z = linear(torch.relu(linear(x[i].mean(dim=(1, 2)), w, "attention.2")), w, "attention.4")
        pi = torch.softmax(z / p["temperature"], dim=0)
        kernel = sum(pi[k] * w["kernels"][k] for k in range(len(pi)))
        bias = sum(pi[k] * w["biases"][k] for k in range(len(pi))) if "biases" in w else None
        outs.append(F.conv2d(x[i:i + 1], kernel, bias, p["stride"], p["padding"], p["dilation"], p["groups"]))
    return torch.cat(outs)


def ref_dy_relu(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    """y_c = max_k (a_k x_c + b_k), a_k = [k == 0] + 1.0 r_k, b_k = 0.5 r_{K+k}, r = 2 sigmoid(theta) - 1."""
    x = xs[0]
    n, c, h, wd = x.shape
    k_pieces = p["num_pieces"]
    r = 2 * torch.sigmoid(linear(torch.relu(linear(x.mean(dim=(2, 3)), w, "fc1")), w, "fc2")) - 1
    r = r.reshape(n, 1 if p["variant"] == "A" else c, 2 * k_pieces)
    pi = torch.ones(n, 1, h, wd)
    if p["variant"] == "C":
        z = torch.einsum("c,nchw->nhw", w["spatial.weight"][0, :, 0, 0], x) + w["spatial.bias"]
        soft = torch.softmax(z.reshape(n, -1) / p["temperature"], dim=1).reshape(n, 1, h, wd)
        pi = torch.clamp(soft * p["spatial_gamma"] * h * wd, max=1.0)
    pieces = []
    for k in range(k_pieces):
        a = (1.0 if k == 0 else 0.0) + p["lambda_a"] * r[:, :, k]
        b = p["lambda_b"] * r[:, :, k_pieces + k]
        pieces.append(a[:, :, None, None] * pi * x + b[:, :, None, None] * pi)
    return torch.stack(pieces).amax(dim=0)


def shuffle_index(channels: int, groups: int) -> list[int]:
    """Output channel j of a shuffle reads input channel (j % groups) * (channels / groups) + j // groups."""
    per = channels // groups
    return [(j % groups) * per + j // groups for j in range(channels)]


def ref_micro(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    if p["kind"] == "pointwise":
        h = bn(F.conv2d(x, w["layers.0.weight"], groups=p["groups"]), w, "layers.1")
        h = h[:, shuffle_index(h.shape[1], p["groups"])]
        return bn(F.conv2d(h, w["layers.3.weight"], groups=p["groups"]), w, "layers.4")
    k, s = p["kernel_size"], p["stride"]
    h = F.conv2d(x, w["layers.0.weight"], stride=(s, 1), padding=(k // 2, 0), groups=x.shape[1])
    h = bn(h, w, "layers.1")
    h = F.conv2d(h, w["layers.3.weight"], stride=(1, s), padding=(0, k // 2), groups=h.shape[1])
    return bn(h, w, "layers.4")


def ref_shift_max(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    """y = max over fusions of (a x + b x[shift]), shift: group i, place j -> (i + 1 mod G, j + 1 mod C/G)."""
    x = xs[0]
    n, c = x.shape[:2]
    g, per = p["groups"], c // p["groups"]
    shift = [((i + 1) % g) * per + (j + 1) % per for i in range(g) for j in range(per)]
    y = linear(torch.relu(linear(x.mean(dim=(2, 3)), w, "fc.0")), w, "fc.2")
    y = (torch.clamp((y + 3) / 6, 0, 1) - 0.5) * 2 * p["act_max"]
    y = y.reshape(n, 2 * p["fusions"], c, 1, 1)
    fused = [x * (y[:, 2 * f] + p["init_a"][f]) + x[:, shift] * (y[:, 2 * f + 1] + p["init_b"][f])
             for f in range(p["fusions"])]
    return torch.stack(fused).amax(dim=0)


def ref_double_attention(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    n, c, h, wd = x.shape

    def conv1x1(t: torch.Tensor, key: str) -> torch.Tensor:
        return torch.einsum("oc,ncl->nol", w[f"{key}.weight"][:, :, 0, 0], t) + w[f"{key}.bias"][:, None]

    flat = x.reshape(n, c, h * wd)
    a = conv1x1(flat, "conv_a")
    maps = torch.softmax(conv1x1(flat, "conv_b"), dim=2)  # gather: attention over positions
    vectors = torch.softmax(conv1x1(flat, "conv_v"), dim=1)  # distribute: attention over the descriptors
    descriptors = torch.einsum("nml,nkl->nmk", a, maps)
    z = torch.einsum("nmk,nkl->nml", descriptors, vectors)
    y = conv1x1(z, "conv_out").reshape(n, c, h, wd)
    return x + y if p["residual"] else y


def ref_light_nl(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    """Affinity between all positions and strided ones on the first ratio*C channels, no softmax, / HW."""
    x = xs[0]
    n, c, h, wd = x.shape
    sub, s = int(p["ratio"] * c), p["stride"]
    keys = x[:, :, ::s, ::s].reshape(n, c, -1)
    affinity = torch.einsum("ncp,ncq->npq", x[:, :sub].reshape(n, sub, -1), keys[:, :sub])
    f = torch.einsum("npq,ncq->ncp", affinity, keys).reshape(n, c, h, wd) / (h * wd)
    return x + bn(F.conv2d(f, w["conv.weight"], padding=1, groups=c), w, "bn")


def ref_idle(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    idle = int(p["idle_ratio"] * x.shape[1])
    h = torch.clamp(bn(F.conv2d(x[:, idle:], w["transform.0.weight"]), w, "transform.1"), 0, 6)
    h = F.conv2d(h, w["transform.3.weight"], padding=p["kernel_size"] // 2, groups=h.shape[1])
    h = torch.clamp(bn(h, w, "transform.4"), 0, 6)
    h = bn(F.conv2d(h, w["transform.6.weight"]), w, "transform.7")
    return torch.cat([h, x[:, :idle]], dim=1)


def ref_multi_fiber(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    conv = F.conv2d if x.dim() == 4 else F.conv3d
    stride = p["stride"]

    def unit(t: torch.Tensor, key: str, groups: int = 1, s: Any = 1) -> torch.Tensor:
        kernel = w[f"{key}.conv.weight"]
        pad = tuple(k // 2 for k in kernel.shape[2:])
        return conv(torch.relu(bn(t, w, f"{key}.bn")), kernel, stride=s, padding=pad, groups=groups)

    g = p["fibers"]
    h = unit(x + unit(unit(x, "conv_i1"), "conv_i2"), "conv_m1", g, stride)
    h = unit(h, "conv_m2", 1 if p["first_block"] else g)
    return h + (unit(x, "conv_w1", 1, stride) if p["first_block"] else x)


def ref_re_attention(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    n, t, d = x.shape
    heads = p["num_heads"]
    hd = d // heads
    q, k, v = linear(x, w, "qkv").reshape(n, t, 3, heads, hd).unbind(2)  # (N, T, H, hd) each
    attn = torch.softmax(torch.einsum("nihd,njhd->nhij", q, k) / math.sqrt(hd), dim=-1)
    theta = w["reatten_matrix.weight"][:, :, 0, 0]
    attn = torch.einsum("gh,nhij->ngij", theta, attn) + w["reatten_matrix.bias"][None, :, None, None]
    if p["norm"]:
        attn = bn(attn, w, "var_norm")
    if p["transform_scale"]:
        attn = attn / math.sqrt(hd)
    y = torch.einsum("nhij,njhd->nihd", attn, v).reshape(n, t, d)
    return linear(y, w, "proj")


def ref_class_token(xs: list[torch.Tensor], w: dict[str, torch.Tensor], p: dict[str, Any]) -> torch.Tensor:
    x = xs[0]
    return torch.cat([w["cls_token"].expand(x.shape[0], 1, -1), x], dim=1) + w["pos_embed"]


REFERENCES: dict[str, Callable[..., Any]] = {
    "oct_conv2d": ref_oct, "dynamic_conv2d": ref_dynamic_conv, "dy_relu": ref_dy_relu,
    "micro_factorized_conv2d": ref_micro, "dynamic_shift_max": ref_shift_max,
    "channel_shuffle": lambda xs, w, p: xs[0][:, shuffle_index(xs[0].shape[1], p["groups"])],
    "double_attention": ref_double_attention, "light_nl": ref_light_nl, "idle_block": ref_idle,
    "multi_fiber_unit": ref_multi_fiber, "re_attention": ref_re_attention, "class_token_embedding": ref_class_token,
    "select_token": lambda xs, w, p: xs[0][:, p["index"]],
}


@pytest.mark.parametrize(("op", "index"), CASES)
def test_matches_the_straightforward_implementation(op: str, index: int) -> None:
    shapes, params = EXAMPLES[op][index]
    g = single_op_graph(op, shapes, params)
    model = randomise(gb.compile(g), seed=index).eval()
    xs = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes)]
    full = g["node"].params  # every param, defaults filled
    weights = {k.removeprefix("node."): v for k, v in model.state_dict().items()}
    with torch.no_grad():
        got = model(*xs)
        expected = REFERENCES[op](xs, weights, dict(full))
    got = list(got) if isinstance(got, tuple) else [got]
    expected = expected if isinstance(expected, list) else [expected]
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in expected] == [s.shape for s in g["node"].outputs]
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    if op not in ("select_token", "channel_shuffle"):  # not vacuous: the op changes its input
        assert not torch.allclose(got[0][..., :1].flatten()[:4], xs[0][..., :1].flatten()[:4])


def test_every_research_op_has_examples() -> None:
    declared = {o.name for o in gb.ops.all_ops() if o.category == "research"}
    assert declared == set(EXAMPLES) == set(REFERENCES)


# -- parameter counts and FLOPs from the papers' formulas --------------------------------------------------------
def counts(op: str, shapes: list[tuple[int, ...]], **params: Any) -> tuple[int, int]:
    g = single_op_graph(op, shapes, params)
    return g["node"].num_params, g.summary().total_flops


@pytest.mark.parametrize("alpha", [0.0, 0.125, 0.25, 0.5, 0.75])
def test_octave_params_equal_a_plain_conv_and_flops_follow_the_cost_ratio(alpha: float) -> None:
    """Params = C_in C_out k^2 for every alpha; FLOPs = plain conv x (1 - 3/4 alpha (2 - alpha)) (Sec. 3.3)."""
    c, hw, k = 32, 16, 3
    plain_params, plain_flops = counts("conv2d", [(2, c, hw, hw)], out_channels=c, kernel_size=k, padding=1,
                                       bias=False)
    low = int(alpha * c)
    shapes = [(2, c - low, hw, hw)] + ([(2, low, hw // 2, hw // 2)] if low else [])
    params, flops = counts("oct_conv2d", shapes, out_channels=c, alpha_in=alpha, alpha_out=alpha)
    assert params == plain_params == c * c * k * k
    assert flops == plain_flops * (1 - 0.75 * alpha * (2 - alpha))
    first_params, first_flops = counts("oct_conv2d", [(2, c, hw, hw)], out_channels=c, alpha_in=0.0,
                                       alpha_out=alpha)
    assert first_params == plain_params and first_flops == plain_flops * (1 - 0.75 * alpha)  # h2h + h2l at 1/4


def test_dynamic_conv_params_and_flops() -> None:
    """K kernels and biases + the attention's two FCs; multiply-adds: the conv, the aggregation (K x kernel
    entries per sample) and the FCs (GAP and softmax are not multiply-adds)."""
    n, c, out, k, kk, hw = 2, 16, 24, 3, 4, 8
    hidden = c // 4
    params, flops = counts("dynamic_conv2d", [(n, c, hw, hw)], out_channels=out, padding=1, bias=True,
                           num_kernels=kk)
    assert params == kk * (out * c * k * k + out) + (c * hidden + hidden) + (hidden * kk + kk)
    macs = n * (out * c * k * k * hw * hw + kk * (out * c * k * k + out) + c * hidden + hidden * kk)
    assert flops == 2 * macs


@pytest.mark.parametrize(("variant", "sets"), [("A", 1), ("B", 16), ("C", 16)])
def test_dy_relu_coefficient_branch_size_and_flops(variant: str, sets: int) -> None:
    """Hyper function C -> C/R -> 2K S (S = 1 for A, C for B and C), plus C's 1x1 spatial conv; the piecewise
    form costs K multiply-adds per element."""
    n, c, hw, kk, r = 2, 16, 6, 2, 8
    params, flops = counts("dy_relu", [(n, c, hw, hw)], variant=variant)
    hidden = c // r
    spatial = c + 1 if variant == "C" else 0
    assert params == c * hidden + hidden + hidden * 2 * kk * sets + 2 * kk * sets + spatial
    macs = n * (c * hidden + hidden * 2 * kk * sets + (c * hw * hw if variant == "C" else 0) + kk * c * hw * hw)
    assert flops == 2 * macs


def test_micro_factorized_params_follow_the_factorization() -> None:
    """Pointwise: (C C/R + C/R C') / G weights; depthwise: C e k + C e e2 k (k x 1 then 1 x k), plus BNs."""
    c, out, g, r = 16, 24, 4, 2
    pointwise, _ = counts("micro_factorized_conv2d", [(2, c, 6, 6)], out_channels=out, groups=g, reduction=r)
    assert pointwise == (c * (c // r) + (c // r) * out) // g + 2 * (c // r) + 2 * out
    params, flops = counts("micro_factorized_conv2d", [(2, c, 6, 6)], out_channels=4 * c, kind="depthwise",
                           expansion=2, kernel_size=5)
    assert params == c * 2 * 5 + 4 * c * 5 + 2 * 2 * c + 2 * 4 * c
    assert flops == 2 * 2 * (2 * c * 5 * 36 + 4 * c * 5 * 36)  # k x 1 and 1 x k, one MAC per tap and output
    dense, _ = counts("conv2d", [(2, c, 6, 6)], out_channels=out, kernel_size=1, bias=False)
    assert pointwise < dense  # the point of the factorization


def test_dynamic_shift_max_params_flops_and_reference_squeeze() -> None:
    """FC C -> squeeze -> 2 K C; squeeze = C / reduction rounded to a multiple of 4, at least 4 (reference)."""
    assert [squeeze_channels(c, r) for c, r in ((16, 8), (96, 8), (384, 16), (24, 4), (1000, 3))] == [
        4, 12, 24, 8, 332]
    n, c, hw = 2, 48, 5
    s = squeeze_channels(c, 4)
    params, flops = counts("dynamic_shift_max", [(n, c, hw, hw)], groups=4)
    assert params == c * s + s + s * 4 * c + 4 * c
    assert flops == 2 * n * (c * s + s * 4 * c + 4 * c * hw * hw)  # two fusions of two terms per element


def test_double_attention_flops_are_the_gather_and_distribute_products() -> None:
    n, c, cm, cn, h, w = 2, 16, 8, 4, 5, 6
    params, flops = counts("double_attention", [(n, c, h, w)], c_m=cm, c_n=cn)
    length = h * w
    assert params == (c + 1) * (cm + 2 * cn) + (cm + 1) * c
    assert flops == 2 * n * (length * c * (cm + 2 * cn) + length * cm * c + 2 * length * cm * cn)


@pytest.mark.parametrize(("c", "hw", "ratio", "stride"), [(8, 16, 0.25, 2), (64, 4, 0.5, 1)])
def test_light_nl_costs_the_cheaper_product_order(c: int, hw: int, ratio: float, stride: int) -> None:
    """The reference picks (theta^T phi) g or theta^T (phi g^T) by cost; both shapes above exercise each."""
    params, flops = counts("light_nl", [(2, c, hw, hw)], ratio=ratio, stride=stride)
    assert params == 9 * c + 2 * c  # depthwise 3x3 and BN: no embedding convs
    assert flops == 2 * 2 * (light_nl_macs(c, hw, hw, ratio, stride) + 9 * c * hw * hw)


def test_idle_block_passes_the_idle_fraction_through_untouched() -> None:
    g = single_op_graph("idle_block", [(2, 16, 5, 5)], dict(idle_ratio=0.25, expansion=3))
    model = randomise(gb.compile(g)).eval()
    x = torch.randn(2, 16, 5, 5)
    y = model(x)
    assert torch.equal(y[:, -4:], x[:, :4])  # int(0.25 * 16) channels, bit for bit
    x2 = x.clone()
    x2[:, :4] += 1.0  # the idle channels never reach the transform
    assert torch.equal(model(x2)[:, :12], y[:, :12])
    active = 12
    assert g["node"].num_params == active * active * 3 * 2 + 9 * active * 3 + 2 * 2 * active * 3 + 2 * active


def test_multi_fiber_params_follow_the_fiber_groups() -> None:
    cin, mid, out, g = 16, 32, 16, 8
    params, _ = counts("multi_fiber_unit", [(2, cin, 6, 6)], out_channels=out, mid_channels=mid, fibers=g)
    mux = cin * mid // 4 + mid // 4 * cin
    assert params == mux + cin * mid * 9 // g + mid * out * 9 // g + 2 * (cin + mid // 4 + cin + mid)
    params3d, _ = counts("multi_fiber_unit", [(2, cin, 4, 6, 6)], out_channels=out, mid_channels=mid, fibers=g)
    assert params3d == params + cin * mid * 18 // g  # the t x 3 x 3 first conv (t = 3) of the 3-D unit


def test_re_attention_params_and_flops() -> None:
    n, t, d, heads = 2, 10, 16, 4
    params, flops = counts("re_attention", [(n, t, d)], num_heads=heads, qkv_bias=True)
    assert params == d * 3 * d + 3 * d + d * d + d + heads * heads + heads + 2 * heads
    assert flops == 2 * n * (t * d * 3 * d + 2 * t * t * d + heads * heads * t * t + t * d * d)


def test_re_attention_mixes_heads() -> None:
    """With Theta the identity and no norm it is plain multi-head attention; a permutation Theta swaps heads."""
    g = single_op_graph("re_attention", [(1, 6, 8)], dict(num_heads=2, norm=False))
    model = gb.compile(g).eval()
    x = torch.randn(1, 6, 8)
    with torch.no_grad():
        model.node.reatten_matrix.weight.copy_(torch.eye(2)[:, :, None, None])
        model.node.reatten_matrix.bias.zero_()
        mha = nn.MultiheadAttention(8, 2, batch_first=True, bias=False).eval()
        mha.in_proj_weight.copy_(model.node.qkv.weight)
        mha.out_proj.weight.copy_(model.node.proj.weight)
        torch.testing.assert_close(model(x), mha(x, x, x, need_weights=False)[0] + model.node.proj.bias)
        identity = model(x)
        model.node.reatten_matrix.weight.copy_(torch.eye(2).flip(0)[:, :, None, None])
        assert not torch.allclose(model(x), identity)


# -- training behaviour ------------------------------------------------------------------------------------------
def test_dynamic_conv_temperature_anneals_in_training_and_resumes_from_the_weights(tmp_path) -> None:
    g = single_op_graph("dynamic_conv2d", [(4, 8, 6, 6)], dict(out_channels=8, padding=1, temperature=30.0,
                                                                final_temperature=1.0, anneal_steps=10))
    model = gb.compile(g)
    x = torch.randn(4, 8, 6, 6)
    conv = model.node
    assert float(conv.current_temperature()) == 30.0
    model.eval()(x)
    assert int(conv.steps) == 0  # eval passes do not count
    model.train()
    for _ in range(5):
        model(x)
    assert float(conv.current_temperature()) == pytest.approx(15.5)  # halfway from 30 to 1
    for _ in range(10):
        model(x)
    assert float(conv.current_temperature()) == 1.0  # annealed, and stays there
    pi = conv.attention_weights(x)
    torch.testing.assert_close(pi.sum(dim=1), torch.ones(4))
    store_weights(g, model)
    path = str(tmp_path / "dy.graph.json")
    g.save(path)
    assert int(gb.compile(gb.Graph.load(path)).node.steps) == 15  # the schedule resumes where it was


# -- bad input -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("op", "shapes", "params", "constraint"), [
    ("oct_conv2d", [(2, 8, 8, 8), (2, 8, 4, 4)], dict(out_channels=16, alpha_out=1.0), r"outside \[0, 1\)"),
    ("oct_conv2d", [(2, 8, 8, 8), (2, 8, 4, 4)], dict(out_channels=16, alpha_in=-0.5), r">= 0"),
    ("oct_conv2d", [(2, 8, 8, 8), (2, 8, 4, 4)], dict(out_channels=16, alpha_in=0.25), "low-frequency channels"),
    ("oct_conv2d", [(2, 8, 8, 8), (2, 8, 4, 4)], dict(out_channels=16, groups=3), "not divisible by groups=3"),
    ("oct_conv2d", [(2, 16, 8, 8)], dict(out_channels=16, alpha_in=0.5), "takes two inputs"),
    ("idle_block", [(2, 8, 4, 4)], dict(idle_ratio=1.0), r"outside \[0, 1\)"),
    ("dynamic_conv2d", [(2, 8, 6, 6)], dict(out_channels=8, temperature=0.0), "temperature=0.0 must be > 0"),
    ("dynamic_conv2d", [(2, 8, 6, 6)], dict(out_channels=6, groups=4), "not divisible by groups=4"),
    ("dy_relu", [(2, 8, 6, 6)], dict(variant="C", temperature=0.0), "temperature=0.0 must be > 0"),
    ("multi_fiber_unit", [(2, 12, 6, 6)], dict(out_channels=12, mid_channels=16, fibers=8), "fibers=8"),
    ("multi_fiber_unit", [(2, 16, 6, 6)], dict(out_channels=32, mid_channels=16, fibers=8), "first_block=True"),
    ("micro_factorized_conv2d", [(2, 8, 6, 6)], dict(out_channels=12, groups=3), "groups=3"),
    ("dynamic_shift_max", [(2, 10, 6, 6)], dict(groups=4), "not divisible by groups=4"),
    ("re_attention", [(2, 5, 10)], dict(num_heads=4), "num_heads=4"),
])
def test_bad_input_names_the_node_and_the_constraint(op, shapes, params, constraint) -> None:
    g = gb.Graph("bad")
    xs = [g.input(f"x{i}", shape=s) for i, s in enumerate(shapes)]
    with pytest.raises(gb.GraphError, match=constraint) as info:
        g.add(op, *xs, name="culprit", **params)
    assert "culprit" in info.value.nodes and "'culprit'" in str(info.value)
    assert "culprit" not in g  # a failed add leaves the graph unchanged


def test_an_edit_that_breaks_a_constraint_marks_the_node() -> None:
    g = single_op_graph("dynamic_conv2d", [(2, 8, 6, 6)], dict(out_channels=8), name="dy")
    g["dy"].params["temperature"] = 0.0
    errors = g.infer()
    assert "temperature=0.0 must be > 0" in str(errors["dy"]) and "dy" in errors["dy"].nodes


# -- one graph with every op: compile, save/load, Python source, TorchScript, import back --------------------------
def palette_graph() -> gb.Graph:
    g = gb.Graph("palette")
    x = g.input("x", shape=(2, 8, 8, 8))
    first = g.add("oct_conv2d", x, name="oct_first", out_channels=16, alpha_in=0.0, alpha_out=0.5)
    mid = g.add("oct_conv2d", first[0], first[1], name="oct", out_channels=16, groups=2)
    h = g.add("oct_conv2d", mid[0], mid[1], name="oct_last", out_channels=16, alpha_out=0.0)
    h = g.add("dynamic_conv2d", h, name="dyconv", out_channels=16, padding=1, anneal_steps=5)
    h = g.add("dy_relu", h, name="dyrelu", variant="C")
    h = g.add("micro_factorized_conv2d", h, name="micro_pw", out_channels=16, groups=2)
    h = g.add("micro_factorized_conv2d", h, name="micro_dw", out_channels=32, kind="depthwise", expansion=2)
    h = g.add("dynamic_shift_max", h, name="shift_max", groups=4)
    h = g.add("channel_shuffle", h, name="shuffle", groups=4)
    h = g.add("double_attention", h, name="a2")
    h = g.add("light_nl", h, name="lightnl", zero_init=False)
    h = g.add("idle_block", h, name="idle", expansion=2)
    h = g.add("multi_fiber_unit", h, name="fiber", out_channels=32, mid_channels=32, fibers=4)
    t = g.add("permute", g.add("flatten", h, name="flat", start_dim=2), name="tokens", dims=(0, 2, 1))
    t = g.add("class_token_embedding", t, name="embed")
    t = g.add("re_attention", t, name="reattn", num_heads=4, qkv_bias=True)
    g.output(g.add("select_token", t, name="cls"))
    return g


def test_one_graph_with_every_op_saves_loads_and_exports_source_and_torchscript(tmp_path) -> None:
    g = palette_graph()
    assert {n.op for n in g} >= set(RESEARCH_OPS)
    model = randomise(gb.compile(g)).eval()
    store_weights(g, model)
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        expected = model(x)
    path = str(tmp_path / "palette.graph.json")
    g.save(path)
    with torch.no_grad():
        assert torch.equal(gb.compile(gb.Graph.load(path)).eval()(x), expected)
    report = gb.export.check(g, formats=("python", "torchscript"), tolerance=1e-5)
    assert report.ok, report
    source = gb.export.to_python(g)
    assert not re.search(r"^\s*(import|from)\s+graphbuilder", source, re.MULTILINE)  # standalone torch


def test_modules_import_back_with_from_module() -> None:
    """A hand-written nn.Module using the op classes imports as one node per op, with its weights."""
    from graphbuilder.ops.modules.dynamic_conv import DynamicConv2d
    from graphbuilder.ops.modules.micronet import DynamicShiftMax
    from graphbuilder.ops.modules.multi_fiber import MultiFiberUnit
    from graphbuilder.ops.modules.oct_conv import OctConv2d
    from graphbuilder.ops.modules.re_attention import ReAttention

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = OctConv2d(8, 16, 3, 0.0, 0.5)
            self.last = OctConv2d(16, 8, 3, 0.5, 0.0)
            self.dy = DynamicConv2d(8, 8, 3, padding=1, temperature=5.0)
            self.fiber = MultiFiberUnit(8, 8, 8, 2, (1, 1))
            self.shift = DynamicShiftMax(8, 2, 4, 2, 2.0, (1.0, 0.5), (0.0, 0.5))
            self.attn = ReAttention(8, 2, True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            high, low = self.first([x])
            h = self.shift(self.fiber(self.dy(self.last([high, low])[0])))
            return self.attn(h.flatten(2).transpose(1, 2))

    module = randomise(Net()).eval()
    x = torch.randn(2, 8, 8, 8)
    g = gb.from_module(module, (x,))
    ops = [n.op for n in g]
    assert ops.count("oct_conv2d") == 2 and {"dynamic_conv2d", "multi_fiber_unit", "dynamic_shift_max",
                                             "re_attention"} <= set(ops)
    assert g["first"].params["alpha_in"] == 0.0 and g["dy"].params["temperature"] == 5.0
    assert g["shift"].params["init_b"] == (0.0, 0.5)
    with torch.no_grad():
        assert torch.equal(gb.compile(g).eval()(x), module(x))


# -- the searches take the new ops as candidates -------------------------------------------------------------------
def test_mixed_op_takes_research_ops_as_candidates() -> None:
    g = gb.Graph("search")
    x = g.input("x", shape=(2, 16, 8, 8))
    m = g.add("mixed_op", x, name="pos", candidates=["ir_k3_e6", "dy_relu", "light_nl", "idle_block",
                                                      {"op": "dynamic_conv2d", "padding": 1},
                                                      {"op": "micro_factorized_conv2d", "groups": 4}])
    down = g.add("mixed_op", m, name="down", stride=2, out_channels=24,
                 candidates=["sd_k3_d1", {"op": "dynamic_conv2d", "padding": 1}, {"op": "multi_fiber_unit",
                             "mid_channels": 16, "fibers": 4, "first_block": True}])
    g.output(down)
    assert down.shape == (2, 24, 4, 4)
    model = gb.compile(g)
    out = model(torch.randn(2, 16, 8, 8))
    out.sum().backward()
    assert model.pos.alpha.grad is not None and torch.count_nonzero(model.pos.alpha.grad) == 6
    with pytest.raises(gb.GraphError, match="candidates\\[1\\] = 'dynamic_conv2d' gives"):
        g.add("mixed_op", x, name="bad", candidates=["skip", "dynamic_conv2d"])


def test_trinity_costs_and_display_graph_take_research_candidates() -> None:
    from graphbuilder.search import detector_space
    from graphbuilder.search.trinity import supernet

    space = detector_space.DetectorSpace(image_size=32, num_classes=2, batch=1, stem_channels=8,
                                         stages=((8, 1), (8, 1), (12, 1), (16, 1)), neck_channels=8, head_positions=1)
    cands = {"backbone": ["ir_k3_e3", {"op": "dynamic_conv2d", "padding": 1, "num_kernels": 2}]}
    net = supernet(space, cands)
    pos = space.component_positions("backbone")[0].name
    costs = detector_space.candidate_costs(net, pos, cands["backbone"])
    assert set(costs) == {"ir_k3_e3", "dynamic_conv2d"} and costs["dynamic_conv2d"]["params"] > 0
    outs = gb.compile(net).eval()(torch.randn(2, 3, 32, 32))
    assert all(torch.isfinite(o).all() for o in outs)


def test_insert_glore_is_unaffected_by_research_ops_in_the_blocks() -> None:
    """A residual network whose blocks use research ops: stages are found, outputs unchanged after insertion."""
    from graphbuilder.passes.glore import INSERTED_BY, residual_stages

    g = gb.Graph("net")
    h = g.add("conv2d", g.input("x", shape=(2, 3, 16, 16)), out_channels=16, kernel_size=3, padding=1)
    for i in range(4):
        branch = g.add("dy_relu", g.add("dynamic_conv2d", h, out_channels=16, padding=1), name=f"act{i}")
        branch = g.add("idle_block", branch, name=f"idle{i}")
        h = g.add("relu", g.add("add", h, branch, name=f"add{i}"), name=f"out{i}")
    g.output(g.add("flatten", g.add("adaptive_avg_pool2d", h, output_size=1)))
    assert [len(s.blocks) for s in residual_stages(g)] == [4]
    model = randomise(gb.compile(g)).eval()
    store_weights(g, model)
    g2 = gb.passes.insert_glore(g, "res2x2")
    assert sum(1 for n in g2 if n.meta.get("inserted_by") == INSERTED_BY) == 2
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(gb.compile(g2).eval()(x), model(x))


# -- every export format, per example (slow: torch.export and ONNX take seconds per graph here) ----------------------
@pytest.mark.slow
@pytest.mark.parametrize(("op", "index"), CASES)
def test_every_example_exports_to_every_format(op: str, index: int) -> None:
    shapes, params = EXAMPLES[op][index]
    g = single_op_graph(op, shapes, params)
    store_weights(g, randomise(gb.compile(g), seed=index))
    report = gb.export.check(g, tolerance=1e-4)
    assert report.ok, report
