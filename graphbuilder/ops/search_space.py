"""Search-space ops of Hit-Detector (arXiv:2003.11818) as registered ops, plus the `mixed_op` choice node.

Boundary: declarations only; the torch modules are in `graphbuilder/ops/modules/search_space.py` (plain torch,
inlinable by the standalone exporter). The search itself (`gb.search.trinity`) is in `graphbuilder.search`.

Ops (one node each, category ``"search space"``):
    ir_k{3,5,7}_e{3,6}   MBConv, optional ``dilation``
    sd_k{3,5}_d{1,2,3}   depthwise-separable dilated conv
    conv_1x1, skip
    mixed_op             a searched position: candidates + architecture weights ``alpha``
    weighted_sum         fixed-weight sum; the merge node of a mixed op drawn expanded (display graphs)

Every op keeps its input's channels unless ``out_channels`` (and ``stride``) are given, and takes one or more
inputs: several inputs are processed by the same weights (a head shared over FPN levels), one output each.
``norm`` picks BatchNorm or GroupNorm, ``affine=False`` drops the norms' scale and shift (searches), and
``residual=False`` drops the MBConv / separable conv's own identity (positions that add it outside).

    >>> g = gb.Graph(); x = g.input("x", shape=(2, 16, 8, 8))
    >>> g.add("ir_k3_e6", x).num_params
    4352
"""

from __future__ import annotations

from typing import Any

from torch import nn

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.limits import MAX_CANDIDATES
from graphbuilder.ir.schema import Param, TensorSpec
from graphbuilder.ops.declare import Specs, channels, choice, declare, example, flag, integer, named
from graphbuilder.ops.modules.search_space import (
    NORMS,
    SEARCH_OPS,
    MixedOp,
    SingleInput,
    WeightedSum,
    build_candidate,
    parse_candidate,
)

CATEGORY = "search space"
_HINT = "one or more (N, C, H, W) tensors with the same channels"


def _out_channels() -> Param:
    return integer("output channels (default: the input's channels)", lo=1, optional=True)


def _stride() -> Param:
    return choice("spatial stride (2 halves height and width)", (1, 2), 1)


def _check_inputs(params: dict[str, Any], specs: Specs) -> None:
    for i, spec in enumerate(specs):
        if len(spec.shape) != 4:
            raise GraphError(f"input {i} has shape {spec}; expects {_HINT}: connect a feature map (N, C, H, W)")
        if spec.shape[1] != specs[0].shape[1]:
            raise GraphError(f"input {i} has {spec.shape[1]} channels but input 0 has {specs[0].shape[1]}; "
                             "inputs of one node share weights, so give them equal channels")


def _out(params: dict[str, Any], specs: Specs) -> int:
    return params.get("out_channels") or channels(specs)


def _norm() -> Param:
    return choice("normalisation: BatchNorm, or GroupNorm with gcd(C, 8) groups of >= 2 channels (statistics per "
                  "sample)", NORMS, "batch")


def _affine(default: bool) -> Param:
    return flag("learnable scale and shift in the norms (searches run without)", default)


def _declare_block(name: str) -> None:
    spec = parse_candidate(name)
    params: dict[str, Param] = {"out_channels": _out_channels(), "stride": _stride()}
    if spec["family"] == "ir":
        params["dilation"] = integer("dilation of the depthwise conv", 1, lo=1, hi=8)
        doc = (f"MBConv inverted residual, kernel {spec['kernel_size']}, expansion {spec['expansion']}: 1x1 expand, "
               "norm, ReLU, depthwise kxk, norm, ReLU, 1x1 project, norm; residual when shapes match, stride is "
               "1 and `residual` is set.")
    elif spec["family"] == "sd":
        doc = (f"Separable dilated conv, kernel {spec['kernel_size']}, dilation {spec['dilation']}: depthwise "
               "kxk, norm, ReLU, 1x1, norm; residual when shapes match, stride is 1 and `residual` is set.")
    elif name == "conv_1x1":
        doc = "1x1 convolution with bias, then norm (Hit-Detector's conv_1x1)."
    else:
        doc = "Identity; a 1x1 conv, norm, ReLU when out_channels or stride change the shape (FBNet's skip)."
    if spec["family"] in ("ir", "sd"):
        params["residual"] = flag("add the input when the output has its shape", True)
    params["norm"] = _norm()
    params["affine"] = _affine(True)

    def build(p: dict[str, Any], specs: Specs) -> nn.Module:
        extra = {k: p[k] for k in ("dilation", "residual") if k in p}
        return build_candidate(name, channels(specs), _out(p, specs), p["stride"], norm=p["norm"],
                               affine=p["affine"], **extra)

    declare(name, CATEGORY, doc + " Several inputs share the weights (one output each).", params=named(**params),
            inputs=("inputs",), variadic=True, build=build, check=_check_inputs, hint=_HINT,
            examples=[example((2, 4, 8, 8), (2, 4, 4, 4), out_channels=6, stride=2)], advanced=True)


for _name in SEARCH_OPS:
    _declare_block(_name)


# -- mixed_op ----------------------------------------------------------------------------------------------------
def candidate_list(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """Normalise a `candidates` param to ``[(op_name, extra_params), ...]``; raise `GraphError` saying the fix.

    Entries are search-op names (``"ir_k3_e6"``) or objects ``{"op": "ir_k3_e6", "dilation": 2}``.
    """
    if not isinstance(value, (list, tuple)) or not value:
        raise GraphError(f"candidates must be a non-empty list of search-op names, got {value!r}; e.g. "
                         "['ir_k3_e6', 'sd_k3_d2', 'skip']")
    if len(value) > MAX_CANDIDATES:  # each candidate builds a module
        raise GraphError(f"candidates must hold at most {MAX_CANDIDATES} ops, got {len(value)}")
    out = []
    for i, entry in enumerate(value):
        if isinstance(entry, str):
            name, extra = entry, {}
        elif isinstance(entry, dict) and isinstance(entry.get("op"), str):
            name, extra = entry["op"], {k: v for k, v in entry.items() if k != "op"}
        else:
            raise GraphError(f"candidates[{i}] = {entry!r}: give an op name or {{'op': name, ...}}")
        if name not in SEARCH_OPS:  # any other registered op: its own params, checked by its declaration
            opdef = registry.get(name)
            for key in extra:
                opdef.param(key)
            out.append((name, dict(extra)))
            continue
        allowed = {"dilation"} if name.startswith("ir_") else set()
        bad = set(extra) - allowed
        if bad:
            raise GraphError(f"candidates[{i}] ({name}) has unknown params {sorted(bad)}; allowed: "
                             f"{sorted(allowed) or 'none'}")
        if "dilation" in extra and (not isinstance(extra["dilation"], int) or not 1 <= extra["dilation"] <= 8):
            raise GraphError(f"candidates[{i}] ({name}): dilation must be an integer in [1, 8]")
        out.append((name, dict(extra)))
    return out


def candidate_label(entry: tuple[str, dict[str, Any]]) -> str:
    """A short label for one candidate: ``ir_k3_e6`` or ``ir_k3_e6_dil2``."""
    name, extra = entry
    return name + (f"_dil{extra['dilation']}" if extra.get("dilation", 1) != 1 else "")


def initial_alpha(params: dict[str, Any], n: int) -> list[float]:
    """`alpha` of a mixed_op node, or its default: zeros (softmax: uniform) or 1/n (linear)."""
    alpha = params.get("alpha")
    if alpha is not None:
        return [float(a) for a in alpha]
    return [0.0] * n if params.get("weighting", "softmax") == "softmax" else [1.0 / n] * n


def candidate_params(name: str, extra: dict[str, Any], out_channels: int | None, stride: int) -> dict[str, Any]:
    """The validated params of candidate `name` at a position: its extras, plus the position's `out_channels`
    and `stride` for each of the two that the op declares (an op is an op: nothing else is special)."""
    opdef = registry.get(name)
    declared = {p.name for p in opdef.params}
    shape = {k: v for k, v in (("out_channels", out_channels), ("stride", stride)) if k in declared}
    return opdef.validate_params({**shape, **extra})


def _other_candidates(p: dict[str, Any], specs: Specs) -> list[tuple[int, str, dict[str, Any]]]:
    """(index, name, params) of the candidates that are not search ops, with their params at this position."""
    return [(i, name, candidate_params(name, extra, _out(p, specs), p["stride"]))
            for i, (name, extra) in enumerate(candidate_list(p["candidates"])) if name not in SEARCH_OPS]


def _mixed_check(params: dict[str, Any], specs: Specs) -> None:
    _check_inputs(params, specs)
    cands = candidate_list(params["candidates"])
    if params["alpha"] is not None and len(params["alpha"]) != len(cands):
        raise GraphError(f"alpha has {len(params['alpha'])} values but there are {len(cands)} candidates; give "
                         "one architecture weight per candidate (or leave alpha unset)")
    n, _, h, w = specs[0].shape
    s = params["stride"]
    want = TensorSpec((n, _out(params, specs), (h - 1) // s + 1, (w - 1) // s + 1), specs[0].dtype)
    for i, name, cand in _other_candidates(params, specs):
        opdef = registry.get(name)
        assert opdef.infer is not None
        got = opdef.infer(opdef, cand, [specs[0]]).outputs
        if got != (want,):
            raise GraphError(f"candidates[{i}] = {name!r} gives {', '.join(map(str, got))} where the position needs "
                             f"{want}; give it params that keep the shape (e.g. padding) or drop it")


def _mixed_build(p: dict[str, Any], specs: Specs) -> nn.Module:
    cands = candidate_list(p["candidates"])
    modules: list[nn.Module | None] = [None] * len(cands)
    for i, name, cand in _other_candidates(p, specs):
        opdef = registry.get(name)
        assert opdef.build is not None
        modules[i] = SingleInput(opdef.build(cand, [specs[0]]))
    return MixedOp(channels(specs), _out(p, specs), cands, initial_alpha(p, len(cands)), p["stride"],
                   p["weighting"], p["norm"], p["affine"], modules if any(m is not None for m in modules) else None)


declare("mixed_op", CATEGORY,
        "A searched position: sum_i w_i * candidate_i(x), w = softmax(alpha) (DARTS) or alpha itself "
        "(linear, for group-sparse screening). Candidates are search-space ops sharing out_channels and stride, or "
        "any other one-input op (given the position's out_channels and stride where it declares them). Search-op "
        "candidates run without their own residual (add the identity outside: x + mixed_op(x)) and, by default, "
        "without affine norms.",
        params=named(candidates=Param("json", None, doc="candidate op names, e.g. ['ir_k3_e6', 'sd_k3_d2', "
                                                        "'skip'], or {'op': name, 'dilation': d} entries"),
                     alpha=Param("floats", None, optional=True,
                                 doc="architecture weights, one per candidate (default: uniform)"),
                     weighting=choice("softmax(alpha) (DARTS search) or alpha as is (screening)",
                                      ("softmax", "linear"), "softmax"),
                     out_channels=_out_channels(), stride=_stride(), norm=_norm(), affine=_affine(False)),
        inputs=("inputs",), variadic=True, build=_mixed_build, check=_mixed_check, hint=_HINT,
        examples=[example((2, 4, 8, 8), candidates=["ir_k3_e3", "sd_k3_d2", "conv_1x1", "skip"],
                          alpha=(0.1, 0.2, 0.3, 0.4))], advanced=True)


def _sum_check(params: dict[str, Any], specs: Specs) -> None:
    k = len(params["weights"])
    if len(specs) % k:
        raise GraphError(f"{len(specs)} inputs cannot be split into {k} groups (one per weight); connect "
                         f"k * levels inputs, candidate-major")
    for i, spec in enumerate(specs):
        ref = specs[i % (len(specs) // k)]
        if spec.shape != ref.shape:
            raise GraphError(f"input {i} has shape {spec} but its level's first input has {ref}; candidates "
                             "of one position must give equal shapes")


declare("weighted_sum", CATEGORY,
        "sum_i weights[i] * input_i with fixed weights; with k weights and k*L inputs (candidate-major) it "
        "returns L sums. The merge node of a mixed op drawn with its candidates.",
        params=named(weights=Param("floats", None, doc="one weight per candidate, e.g. softmax(alpha)")),
        inputs=("inputs",), variadic=True, build=lambda p, specs: WeightedSum(list(p["weights"])),
        check=_sum_check, hint="k * L tensors, candidate-major",
        examples=[example((2, 4, 8, 8), (2, 4, 8, 8), weights=(0.3, 0.7))], advanced=True)
