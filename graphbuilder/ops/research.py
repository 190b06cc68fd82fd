"""The research palette: operators from efficient-network papers, each faithful to its paper and reference code.

Boundary: declarations only (typed params, checks, docs); the torch modules are in
``graphbuilder/ops/modules/<name>.py`` and import only torch, so compiled and exported models need no
GraphBuilder. Every module keeps its constructor arguments as attributes named like the op's params, and
every op names its class as its `source`, so ``gb.from_module`` imports these modules back as one node.
docs/research_palette.md lists, op by op, the paper, the reference code and every choice made here.

    oct_conv2d               Octave Convolution, arXiv:1904.05049
    dynamic_conv2d           Dynamic Convolution, arXiv:1912.03458
    dy_relu                  Dynamic ReLU (variants A, B, C), arXiv:2003.10027
    micro_factorized_conv2d  MicroNet, arXiv:2011.12289 (code: the ICCV version, arXiv:2108.05894)
    dynamic_shift_max        MicroNet, as above
    channel_shuffle          ShuffleNet, arXiv:1707.01083 (used by MicroNet's blocks)
    double_attention         A^2-Nets, arXiv:1810.11579
    light_nl                 AutoNL (LightNL), arXiv:2004.01961
    idle_block               IdleBlock, arXiv:1911.08609
    multi_fiber_unit         Multi-Fiber Networks, arXiv:1807.11195 (2-D and 3-D)
    re_attention             DeepViT, arXiv:2103.11886
    class_token_embedding,   ViT token plumbing (arXiv:2010.11929) for transformer networks drawn as graphs
    select_token

    >>> g = gb.Graph("oct"); x = g.input("x", shape=(2, 16, 8, 8))
    >>> first = g.add("oct_conv2d", x, out_channels=16, alpha_in=0.0, alpha_out=0.5)
    >>> first[0].shape, first[1].shape     # high at full, low at half resolution
    ((2, 8, 8, 8), (2, 8, 4, 4))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from torch import nn

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.schema import OpDef, Param
from graphbuilder.ops.declare import (
    Specs,
    channels,
    choice,
    declare,
    example,
    features,
    flag,
    integer,
    meta_flops,
    named,
    number,
    size,
)
from graphbuilder.ops.modules.double_attention import DoubleAttention
from graphbuilder.ops.modules.dy_relu import VARIANTS, DyReLU
from graphbuilder.ops.modules.dynamic_conv import DynamicConv2d
from graphbuilder.ops.modules.idle_block import IdleBlock, idle_channels
from graphbuilder.ops.modules.light_nl import LightNL
from graphbuilder.ops.modules.micronet import ChannelShuffle, DynamicShiftMax, MicroFactorizedConv2d
from graphbuilder.ops.modules.multi_fiber import MultiFiberUnit
from graphbuilder.ops.modules.oct_conv import OctConv2d, low_channels
from graphbuilder.ops.modules.re_attention import ReAttention
from graphbuilder.ops.modules.vit import ClassTokenEmbedding, SelectToken

CATEGORY = "research"
_MAP = "(N, C, H, W)"


def _source(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _research_op(name: str, doc: str, cls: type[nn.Module], params: dict[str, Param],
                 build: Callable[[dict[str, Any], Specs], nn.Module], check: Callable[[dict[str, Any], Specs], None],
                 hint: str = _MAP, **kw: Any) -> None:
    """Declare one research op: its module class is its `source`, so gb.from_module maps the class back."""
    declare(name, CATEGORY, doc, params=named(**params), build=build, check=check, hint=hint,
            source=_source(cls), **kw)


def _count_elementwise(name: str, madds_per_element: Callable[[dict[str, Any]], int]) -> None:
    """Make op `name` report torch's count plus its piecewise terms, `madds_per_element(params)` multiply-adds
    per output element (2 FLOPs each), which torch's flop counter does not see (it counts matmuls and convs)."""
    def flops(opdef: OpDef, p: dict[str, Any], specs: Specs) -> int:
        return meta_flops(opdef, p, specs) + 2 * madds_per_element(p) * math.prod(specs[0].shape)
    registry.register(dataclasses.replace(registry.get(name), flops=flops), replace=True)


def _need(condition: bool, message: str) -> None:
    if not condition:
        raise GraphError(message)


def _rank(specs: Specs, ranks: tuple[int, ...], hint: str) -> None:
    for i, spec in enumerate(specs):
        _need(len(spec.shape) in ranks, f"input {i} has shape {spec}; expects {hint}")


def _divides(what: str, value: int, divisor_name: str, divisor: int) -> None:
    _need(divisor >= 1 and value % divisor == 0,
          f"{what} ({value}) is not divisible by {divisor_name}={divisor}; pick {divisor_name} dividing {value}")


def _alpha(name: str, value: float) -> None:
    _need(0.0 <= value < 1.0, f"{name}={value} is outside [0, 1): it is the fraction of low-frequency channels; "
                              "0 makes a full-resolution side, 1 would leave no high-frequency channels")


def _positive(name: str, value: float, why: str) -> None:
    _need(value > 0, f"{name}={value} must be > 0 ({why})")


# -- oct_conv2d ------------------------------------------------------------------------------------------------
def _oct_check(p: dict[str, Any], specs: Specs) -> None:
    _alpha("alpha_in", p["alpha_in"])
    _alpha("alpha_out", p["alpha_out"])
    _rank(specs, (4,), "(N, C, H, W) inputs: [high] or [high, low]")
    if p["alpha_in"] == 0:
        _need(len(specs) == 1, f"alpha_in=0 (the first form) takes one input, got {len(specs)}; drop the low "
                               "input or set alpha_in > 0")
    else:
        _need(len(specs) == 2, f"alpha_in={p['alpha_in']} takes two inputs (high, low), got {len(specs)}; connect "
                               "the low-frequency tensor as the second input, or set alpha_in=0")
    cin = sum(s.shape[1] for s in specs)
    if len(specs) == 2:
        high, low = specs[0].shape, specs[1].shape
        need_low = low_channels(cin, p["alpha_in"])
        _need(low[1] == need_low, f"alpha_in={p['alpha_in']} of {cin} input channels means {need_low} low-frequency "
                                  f"channels, but the low input has {low[1]}; set alpha_in to match the node that "
                                  "made it (the same alpha_out)")
        _need(high[0] == low[0] and high[2] == 2 * low[2] and high[3] == 2 * low[3],
              f"the low input {specs[1]} must have half the height and width of the high input {specs[0]}")
    octave = p["alpha_in"] > 0 or p["alpha_out"] > 0 or p["stride"] == 2  # halves a resolution somewhere
    _need(not octave or (specs[0].shape[2] % 2 == 0 and specs[0].shape[3] % 2 == 0),
          f"the high input {specs[0]} needs an even height and width (the low octave is half as large)")
    cout = p["out_channels"]
    depthwise = p["groups"] > 1 and p["groups"] == cin == cout
    in_low, out_low = low_channels(cin, p["alpha_in"]), low_channels(cout, p["alpha_out"])
    _need(cout - out_low >= 1, f"out_channels={cout} leaves no high-frequency channel")
    if p["groups"] > 1 and not depthwise:
        for what, count in (("high-frequency input channels", cin - in_low), ("low-frequency input channels", in_low),
                            ("high-frequency output channels", cout - out_low),
                            ("low-frequency output channels", out_low)):
            if count:
                _divides(what, count, "groups", p["groups"])


def _oct_build(p: dict[str, Any], specs: Specs) -> OctConv2d:
    cin = sum(s.shape[1] for s in specs)
    return OctConv2d(cin, p["out_channels"], p["kernel_size"], p["alpha_in"], p["alpha_out"], p["stride"],
                     p["padding"], p["groups"], p["bias"])


_research_op(
    "oct_conv2d",
    "Octave convolution (arXiv:1904.05049): high- and low-frequency (half-resolution) parts updated by four "
    "convs with exchange between them. alpha_in = 0 is the first form (one input), alpha_out = 0 the last "
    "form (one output). Outputs: high, then low when alpha_out > 0. Parameters equal a plain conv's.",
    OctConv2d,
    dict(out_channels=size("output channels, high and low together"),
         kernel_size=integer("square kernel size", 3, lo=1),
         alpha_in=number("fraction of the input channels that are low-frequency, in [0, 1)", 0.5, lo=0.0, hi=1.0),
         alpha_out=number("fraction of the output channels that are low-frequency, in [0, 1)", 0.5, lo=0.0, hi=1.0),
         stride=choice("1, or 2 (average-pools the inputs first, as the reference)", (1, 2), 1),
         padding=integer("zero padding on each side", 1, lo=0),
         groups=size("groups of every path; groups = in = out channels is depthwise (no exchange)", 1),
         bias=flag("a learnable bias per output channel", False)),
    _oct_build, _oct_check, hint="[high (N, C_h, H, W), low (N, C_l, H/2, W/2)] or [x (N, C, H, W)]",
    inputs=("inputs",), variadic=True)


# -- dynamic_conv2d ----------------------------------------------------------------------------------------------
def _dyconv_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (4,), _MAP)
    _positive("temperature", p["temperature"], "the attention is softmax(z / temperature)")
    _positive("final_temperature", p["final_temperature"], "the temperature annealing ends there")
    _divides("input channels", channels(specs), "groups", p["groups"])
    _divides("out_channels", p["out_channels"], "groups", p["groups"])


_research_op(
    "dynamic_conv2d",
    "Dynamic convolution (arXiv:1912.03458): num_kernels kernels aggregated per sample by softmax(attention / "
    "temperature) over GAP -> FC -> ReLU -> FC. anneal_steps > 0 anneals the temperature linearly to "
    "final_temperature over that many training passes (the paper: 30 -> 1 in the first epochs).",
    DynamicConv2d,
    dict(out_channels=size("output channels"), kernel_size=integer("square kernel size", 3, lo=1),
         stride=integer("stride", 1, lo=1), padding=integer("zero padding on each side", 0, lo=0),
         dilation=integer("dilation", 1, lo=1), groups=size("groups (in_channels for depthwise)", 1),
         bias=flag("aggregated per-kernel biases", False), num_kernels=size("K, the number of kernels", 4),
         reduction=size("attention hidden width = in_channels // reduction (at least 1)", 4),
         temperature=number("softmax temperature (at the start of annealing); > 0", 30.0, lo=0.0),
         final_temperature=number("temperature after annealing; > 0", 1.0, lo=0.0),
         anneal_steps=integer("training forward passes over which to anneal (0: constant temperature)", 0, lo=0)),
    lambda p, specs: DynamicConv2d(channels(specs), **p), _dyconv_check)


# -- dy_relu -------------------------------------------------------------------------------------------------------
def _dyrelu_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (4,), _MAP)
    _positive("temperature", p["temperature"], "variant C's spatial attention is softmax(z / temperature)")
    _positive("spatial_gamma", p["spatial_gamma"], "variant C's attention is clipped at gamma = spatial_gamma H W")


_research_op(
    "dy_relu",
    "Dynamic ReLU (arXiv:2003.10027): y = max_k(a_k(x) x + b_k(x)), the coefficients from GAP -> FC -> ReLU -> "
    "FC -> 2 sigmoid - 1 around the ReLU. Variant A shares them over channels and positions, B is per channel, "
    "C per channel times a spatial attention.",
    DyReLU,
    dict(variant=choice("A: shared, B: channel-wise, C: spatial and channel-wise", VARIANTS, "B"),
         num_pieces=size("K, the number of linear pieces", 2),
         reduction=size("hyper-function hidden width = C // reduction", 8),
         lambda_a=number("range of the slopes' residual", 1.0),
         lambda_b=number("range of the intercepts' residual", 0.5),
         temperature=number("variant C: softmax temperature of the spatial attention; > 0", 10.0, lo=0.0),
         spatial_gamma=number("variant C: clip gamma = spatial_gamma * H W (the paper's 1/3)", 1.0 / 3.0, lo=0.0)),
    lambda p, specs: DyReLU(channels(specs), **p), _dyrelu_check)
_count_elementwise("dy_relu", lambda p: p["num_pieces"])  # a_k x + b_k for each of the K pieces


# -- MicroNet ------------------------------------------------------------------------------------------------------
def _micro_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (4,), _MAP)
    cin, cout = channels(specs), p["out_channels"]
    if p["kind"] == "pointwise":
        _divides("input channels", cin, "reduction", p["reduction"])
        _divides("input channels // reduction", cin // p["reduction"], "groups", p["groups"])
        _divides("out_channels", cout, "groups", p["groups"])
        _divides("input channels", cin, "groups", p["groups"])
    else:
        _divides("out_channels", cout, "input channels * expansion", cin * p["expansion"])


_research_op(
    "micro_factorized_conv2d",
    "Micro-factorized convolution (MicroNet, arXiv:2011.12289). pointwise: group conv C -> C/reduction "
    "(groups), channel shuffle, group conv -> out_channels (groups). depthwise: k x 1 depthwise conv "
    "(x expansion) then 1 x k depthwise conv. Batch norm after each factor, as the reference blocks.",
    MicroFactorizedConv2d,
    dict(out_channels=size("output channels"),
         kind=choice("factorize a pointwise (1x1) or a depthwise (k x k) convolution", ("pointwise", "depthwise"),
                     "pointwise"),
         groups=size("pointwise: groups G of both factors", 2),
         reduction=size("pointwise: the hidden width is C / reduction", 2),
         kernel_size=integer("depthwise: k", 3, lo=1), stride=integer("depthwise: stride", 1, lo=1),
         expansion=size("depthwise: channel multiplier of the k x 1 factor", 1),
         batch_norm=flag("batch norm after each factor", True)),
    lambda p, specs: MicroFactorizedConv2d(channels(specs), **p), _micro_check)


def _grouped_channels_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (4,), _MAP)
    _divides("input channels", channels(specs), "groups", p["groups"])


_research_op(
    "dynamic_shift_max",
    "Dynamic Shift-Max (MicroNet, arXiv:2011.12289): y = max over fusions of a1(x) x + a2(x) x_shift, x_shift the "
    "channels moved one group and one place within the group; coefficients from GAP -> FC -> ReLU -> FC -> "
    "h-sigmoid, in [-act_max, act_max] around init_a / init_b.",
    DynamicShiftMax,
    dict(groups=size("channel groups G of the circular shift", 2),
         reduction=size("FC hidden width = C // reduction, rounded to a multiple of 4 (at least 4)", 4),
         fusions=choice("K: 2 maxes two fusions (the activation), 1 is one linear fusion", (1, 2), 2),
         act_max=number("the coefficients' residual range", 2.0, lo=0.0),
         init_a=Param("floats", (1.0, 0.0), length=2, doc="offsets of the x coefficients, one per fusion"),
         init_b=Param("floats", (0.0, 0.0), length=2, doc="offsets of the x_shift coefficients, one per fusion")),
    lambda p, specs: DynamicShiftMax(channels(specs), **p), _grouped_channels_check)
_count_elementwise("dynamic_shift_max", lambda p: 2 * p["fusions"])  # a x + b x_shift per fusion

_research_op(
    "channel_shuffle",
    "Channel shuffle (ShuffleNet, arXiv:1707.01083): channels viewed as (groups, C/groups) and transposed, so "
    "the next group conv mixes every group.",
    ChannelShuffle, dict(groups=size("number of groups", 2)),
    lambda p, specs: ChannelShuffle(p["groups"]), _grouped_channels_check)


# -- attention-like blocks ---------------------------------------------------------------------------------------
def _a2_sizes(p: dict[str, Any], specs: Specs) -> tuple[int, int]:
    c = channels(specs)
    return p["c_m"] or max(c // 4, 1), p["c_n"] or max(c // 4, 1)


_research_op(
    "double_attention",
    "Double attention block (A^2-Nets, arXiv:1810.11579): gather c_n global descriptors with attention maps "
    "(softmax over positions), distribute them with attention vectors (softmax over the descriptors), 1x1 "
    "conv back to C, added to the input when residual.",
    DoubleAttention,
    dict(c_m=integer("feature channels c_m (default C/4)", lo=1, optional=True),
         c_n=integer("attention maps c_n (default C/4)", lo=1, optional=True),
         residual=flag("add the input (the block's residual form)", True)),
    lambda p, specs: DoubleAttention(channels(specs), *_a2_sizes(p, specs), p["residual"]),
    lambda p, specs: _rank(specs, (4,), _MAP))


def _nl_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (4,), _MAP)
    _need(0.0 < p["ratio"] <= 1.0, f"ratio={p['ratio']} must be in (0, 1]: the fraction of channels in the affinity")
    _need(int(p["ratio"] * channels(specs)) >= 1, f"ratio={p['ratio']} of {channels(specs)} channels keeps none; "
                                                  "raise the ratio")


_research_op(
    "light_nl",
    "Lightweight non-local block (AutoNL, arXiv:2004.01961): affinity of the first ratio*C channels between all "
    "positions and positions strided by `stride`, no embeddings or softmax, / HW, depthwise 3x3 conv, BN "
    "(zero-initialised: starts as the identity), added to the input.",
    LightNL,
    dict(ratio=number("channel subsampling: fraction of channels in the affinity, in (0, 1]", 0.25, lo=0.0, hi=1.0),
         stride=size("spatial subsampling of keys and values", 2),
         zero_init=flag("BN weight zero at init (the block starts as the identity)", True)),
    lambda p, specs: LightNL(channels(specs), **p), _nl_check)


def _idle_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (4,), _MAP)
    _need(0.0 <= p["idle_ratio"] < 1.0, f"idle_ratio={p['idle_ratio']} is outside [0, 1): it is the fraction of "
                                        "channels that pass through untouched")
    _need(p["kernel_size"] % 2 == 1, f"kernel_size={p['kernel_size']} must be odd (same-size depthwise conv)")
    _need(channels(specs) - idle_channels(channels(specs), p["idle_ratio"]) >= 1, "no active channel left")


_research_op(
    "idle_block",
    "IdleBlock (arXiv:1911.08609): int(idle_ratio C) channels pass through untouched, the rest go through an "
    "inverted bottleneck (1x1 expand, depthwise, 1x1 project); output = cat(computed, idle).",
    IdleBlock,
    dict(idle_ratio=number("fraction of channels that pass through untouched, in [0, 1)", 0.5, lo=0.0, hi=1.0),
         expansion=size("expansion of the inverted bottleneck", 6),
         kernel_size=integer("depthwise kernel size (odd)", 3, lo=1)),
    lambda p, specs: IdleBlock(channels(specs), **p), _idle_check)


def _mf_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (4, 5), "(N, C, H, W) or (N, C, T, H, W)")
    cin, g = channels(specs), p["fibers"]
    _divides("input channels", cin, "fibers", g)
    _divides("mid_channels", p["mid_channels"], "fibers", g)
    _divides("mid_channels", p["mid_channels"], "the multiplexer's reduction", 4)
    if not p["first_block"]:
        _divides("out_channels", p["out_channels"], "fibers", g)
        stride = p["stride"] if isinstance(p["stride"], tuple) else (p["stride"],)
        _need(cin == p["out_channels"] and set(stride) == {1},
              f"a unit that changes channels ({cin} -> {p['out_channels']}) or strides ({p['stride']}) needs the "
              "shortcut adapter: set first_block=True")
    dims = len(specs[0].shape) - 2
    if isinstance(p["stride"], tuple):
        _need(len(p["stride"]) == dims, f"stride={p['stride']} needs {dims} values for a {dims}-D input")


def _mf_build(p: dict[str, Any], specs: Specs) -> MultiFiberUnit:
    dims = len(specs[0].shape) - 2
    stride = p["stride"] if isinstance(p["stride"], tuple) else (p["stride"],) * dims
    return MultiFiberUnit(channels(specs), p["out_channels"], p["mid_channels"], p["fibers"], stride,
                          p["first_block"], dims, p["temporal_kernel"])


_research_op(
    "multi_fiber_unit",
    "Multi-fiber unit (MFNet, arXiv:1807.11195): a 1x1-1x1 multiplexer mixes the fibers, then two grouped convs "
    "(`fibers` groups) with BN-ReLU before each conv, plus the shortcut (adapted in a stage's first unit). "
    "2-D on (N, C, H, W), 3-D on (N, C, T, H, W).",
    MultiFiberUnit,
    dict(out_channels=size("output channels"), mid_channels=size("channels of the fibers' middle layer"),
         fibers=size("number of fibers (groups of the grouped convs)", 16),
         stride=Param("int_or_ints", 1, min=1, doc="stride, one int or one per spatial dim"),
         first_block=flag("a stage's first unit: 1x1 second conv and a 1x1 (strided) shortcut adapter", False),
         temporal_kernel=choice("3-D: temporal size of the first grouped conv (the reference's 3; 1 for 2-D-like)",
                                (1, 3), 3)),
    _mf_build, _mf_check, hint="(N, C, H, W) or (N, C, T, H, W)")


def _reattn_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (3,), "(N, T, D) tokens")
    _divides("embedding width", features(specs), "num_heads", p["num_heads"])


_research_op(
    "re_attention",
    "Re-attention (DeepViT, arXiv:2103.11886): multi-head self-attention whose maps are re-mixed across heads by "
    "a learnable H x H matrix (1x1 conv over heads) and normalised (BatchNorm over heads) before use.",
    ReAttention,
    dict(num_heads=size("number of heads; must divide the embedding width", 8),
         qkv_bias=flag("bias on the query/key/value projection", False),
         norm=flag("BatchNorm over the re-mixed maps (the paper's Norm)", True),
         transform_scale=flag("also scale the re-mixed maps by head_dim^-1/2 (DeepViT-S)", False)),
    lambda p, specs: ReAttention(features(specs), **p), _reattn_check, hint="(N, T, D)")

_research_op(
    "class_token_embedding",
    "Prepend a learned class token and add a learned position embedding (ViT, arXiv:2010.11929): "
    "(N, T, D) -> (N, T + 1, D).",
    ClassTokenEmbedding, {},
    lambda p, specs: ClassTokenEmbedding(specs[0].shape[1], features(specs)),
    lambda p, specs: _rank(specs, (3,), "(N, T, D) tokens"), hint="(N, T, D)")


def _select_check(p: dict[str, Any], specs: Specs) -> None:
    _rank(specs, (3,), "(N, T, D) tokens")
    tokens = specs[0].shape[1]
    _need(-tokens <= p["index"] < tokens, f"index={p['index']} is out of range for {tokens} tokens")


_research_op(
    "select_token",
    "One token of (N, T, D) tokens: (N, D); index 0 is the class token.",
    SelectToken, dict(index=integer("token index (negative counts from the end)", 0, lo=None)),
    lambda p, specs: SelectToken(p["index"]), _select_check, hint="(N, T, D)")


# -- examples (input shapes, params): what every op test runs for these ops (ops/examples.py) -------------------
_EXAMPLES: dict[str, list[tuple[list[tuple[int, ...]], dict[str, Any]]]] = {
    "oct_conv2d": [([(2, 8, 8, 8), (2, 8, 4, 4)], dict(out_channels=16)),
                   ([(2, 12, 8, 8)], dict(out_channels=16, alpha_in=0.0, alpha_out=0.25, bias=True)),
                   ([(2, 12, 8, 8), (2, 4, 4, 4)], dict(out_channels=8, alpha_in=0.25, alpha_out=0.0, stride=2)),
                   ([(2, 8, 8, 8), (2, 8, 4, 4)], dict(out_channels=16, stride=2, groups=2, bias=True))],
    "dynamic_conv2d": [([(3, 8, 7, 7)], dict(out_channels=6, padding=1, bias=True)),
                       ([(2, 8, 9, 9)], dict(out_channels=8, kernel_size=3, stride=2, padding=2, dilation=2,
                                             groups=8, num_kernels=3, temperature=4.0))],
    "dy_relu": [([(2, 8, 5, 5)], dict(variant="A")), ([(2, 8, 5, 5)], dict(variant="B", num_pieces=3)),
                ([(2, 16, 6, 5)], dict(variant="C", reduction=4))],
    "micro_factorized_conv2d": [([(2, 8, 6, 6)], dict(out_channels=12, groups=2, reduction=2)),
                                ([(2, 4, 7, 7)], dict(out_channels=16, kind="depthwise", kernel_size=5, stride=2,
                                                      expansion=2))],
    "dynamic_shift_max": [([(2, 12, 5, 5)], dict(groups=3)),
                          ([(2, 16, 4, 4)], dict(groups=4, fusions=1, reduction=2, init_a=(1.0, 0.5),
                                                 init_b=(0.0, 0.5)))],
    "channel_shuffle": [([(2, 12, 3, 3)], dict(groups=3))],
    "double_attention": [([(2, 8, 5, 6)], dict(c_m=6, c_n=3)), ([(2, 8, 4, 4)], dict(residual=False))],
    "light_nl": [([(2, 8, 6, 6)], dict(zero_init=False, ratio=0.5)),
                 ([(2, 32, 4, 4)], dict(zero_init=False, ratio=0.25, stride=1))],
    "idle_block": [([(2, 8, 5, 5)], dict(idle_ratio=0.5)), ([(2, 10, 4, 4)], dict(idle_ratio=0.3, expansion=2))],
    "multi_fiber_unit": [([(2, 8, 6, 6)], dict(out_channels=16, mid_channels=16, fibers=4, first_block=True,
                                               stride=2)),
                         ([(2, 8, 3, 6, 6)], dict(out_channels=8, mid_channels=16, fibers=4))],
    "re_attention": [([(2, 5, 8)], dict(num_heads=2, qkv_bias=True)),
                     ([(2, 4, 12)], dict(num_heads=3, norm=False, transform_scale=True))],
    "class_token_embedding": [([(2, 5, 8)], {})],
    "select_token": [([(2, 5, 8)], dict(index=-1))],
}
for _name, _cases in _EXAMPLES.items():
    _examples = tuple(example(*shapes, **params) for shapes, params in _cases)
    registry.register(dataclasses.replace(registry.get(_name), examples=_examples), replace=True)
