"""The Hit-Detector search space on the graph IR: a one-stage detector whose searched positions are nodes.

Boundary: builds `gb.Graph`s only (supernet, derived detector, hand-designed baselines, display graphs) and
measures per-candidate costs on meta tensors; no training (that is `trinity.py`). Reference: Hit-Detector,
arXiv:2003.11818 (backbone, neck and head searched together); FBNet (arXiv:1812.03443) backbone; FPN
(arXiv:1612.03144) neck; FCOS (arXiv:1904.01355) head outputs.

The detector, for an image (N, 3, S, S):

    backbone  stem conv3x3 s2 + BN + ReLU, then stages; each stage opens with a stride-2 searched position
              and continues with stride-1 ones. The last three stages give C3, C4, C5 (strides 8, 16, 32).
    neck      FPN: 1x1 lateral convs to `neck_channels`, top-down nearest upsampling + add, then `neck_depth`
              searched positions per level -> P3, P4, P5.
    head      `head_positions` searched positions, each ONE node applied to all levels with shared weights
              (RetinaNet/FCOS shared head), then `det_predict` -> (N, P, num_classes + 5).

Each component is a block of the top-level graph (``backbone``, ``neck``, ``head``), so the derived detector
opens in the editor as three boxes and compiles, saves and exports like any graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph, Node
from graphbuilder.ops.modules.search_space import SEARCH_OPS
from graphbuilder.ops.search_space import candidate_label, candidate_list, candidate_params

COMPONENTS = ("backbone", "neck", "head")

#: The one large operator set each component screens from (the 14 registered search ops).
FULL_OPS: tuple[str, ...] = SEARCH_OPS

#: Per-component sets shaped like the paper's: MBConv-only backbone (FBNet-style) and head (the released head
#: ops are 6 MBConv variants); 8 non-MBConv ops for the neck (the exact neck list is GraphBuilder's choice).
#: Pass as ``trinity(operators=COMPONENT_OPS)``; it keeps 1x1 convs and skips out of strided backbone positions.
COMPONENT_OPS: dict[str, tuple[str, ...]] = {
    "backbone": tuple(o for o in SEARCH_OPS if o.startswith("ir_")),
    "neck": tuple(o for o in SEARCH_OPS if not o.startswith("ir_")),
    "head": tuple(o for o in SEARCH_OPS if o.startswith("ir_")),
}


@dataclass(frozen=True)
class Position:
    """One searched position: its node name, component, output channels, stride and how many levels it
    processes at once (the head's positions take every level)."""

    name: str
    component: str
    out_channels: int | None
    stride: int
    levels: int = 1


@dataclass(frozen=True)
class DetectorSpace:
    """Sizes of the searchable detector (defaults: a small CPU setting; the paper's is far larger).

    Attributes:
        image_size: input side S (square images); must be divisible by 32.
        num_classes: object classes.
        batch: example batch size of the graph input (compiled models take any batch).
        stem_channels: channels after the stem.
        stages: (channels, positions) per backbone stage; every stage halves the resolution. The last three
            stages give C3, C4, C5 (the paper: 5 stages, 20 positions).
        neck_channels: FPN width (also the head's width).
        neck_depth: searched positions per FPN level (paper: 8 positions in all).
        head_positions: searched positions in the shared head (paper: 4).
    """

    image_size: int = 64
    num_classes: int = 4
    batch: int = 2
    stem_channels: int = 8
    stages: tuple[tuple[int, int], ...] = ((16, 1), (24, 1), (32, 2), (48, 1))
    neck_channels: int = 24
    neck_depth: int = 1
    head_positions: int = 4
    strides: tuple[int, ...] = field(default=(8, 16, 32), init=False)

    def __post_init__(self) -> None:
        if len(self.stages) < 3:
            raise GraphError(f"stages={self.stages}: need at least 3 backbone stages (C3, C4, C5)")
        if any(c < 1 or n < 1 for c, n in self.stages):
            raise GraphError(f"stages={self.stages}: every stage needs channels >= 1 and positions >= 1")
        strides = tuple(2 ** (len(self.stages) + 1 - k) for k in (2, 1, 0))
        object.__setattr__(self, "strides", strides)
        if self.image_size % strides[-1]:
            raise GraphError(f"image_size={self.image_size} must be divisible by the coarsest stride {strides[-1]}")

    def positions(self) -> list[Position]:
        """Every searched position in build order (backbone, neck, head)."""
        out = []
        for s, (ch, n) in enumerate(self.stages):
            out += [Position(f"bb_s{s}_{i}", "backbone", ch, 2 if i == 0 else 1) for i in range(n)]
        for level in (5, 4, 3):
            out += [Position(f"neck_p{level}_{i}", "neck", None, 1) for i in range(self.neck_depth)]
        out += [Position(f"head_{i}", "head", None, 1, levels=3) for i in range(self.head_positions)]
        return out

    def component_positions(self, component: str) -> list[Position]:
        """The positions of one component."""
        return [p for p in self.positions() if p.component == component]


Chooser = Callable[[Position], tuple[str, dict[str, Any]]]


def _apply(g: Graph, pos: Position, inputs: list[Any], choose: Chooser, expand: bool) -> list[Any]:
    op, params = choose(pos)
    shape = {"stride": pos.stride, **({"out_channels": pos.out_channels} if pos.out_channels else {})}
    if expand and op == "mixed_op":
        cands = candidate_list(params["candidates"])
        weights = params.get("display_weights") or [1.0 / len(cands)] * len(cands)
        outs = []
        for entry in cands:
            name, extra = entry
            params = candidate_params(name, extra, pos.out_channels or inputs[0].shape[1], pos.stride)
            node = g.add(name, *inputs, name=f"{pos.name}.{candidate_label(entry)}", **params)
            outs += [node[i] for i in range(len(inputs))]
        merged = g.add("weighted_sum", *outs, name=pos.name, weights=tuple(float(w) for w in weights))
    else:
        merged = g.add(op, *inputs, name=pos.name, **shape, **{k: v for k, v in params.items()
                                                                   if k != "display_weights"})
        merged.meta["component"] = pos.component
    return [merged[i] for i in range(len(inputs))] if len(inputs) > 1 else [merged]


def _backbone(g: Graph, x: Any, space: DetectorSpace, choose: Chooser, expand: bool) -> list[Any]:
    h = g.add("conv2d", x, name="stem_conv", out_channels=space.stem_channels, kernel_size=3, stride=2, padding=1,
              bias=False)
    h = g.add("relu", g.add("batch_norm2d", h, name="stem_bn"), name="stem_relu")
    feats = []
    positions = space.component_positions("backbone")
    for s in range(len(space.stages)):
        for pos in [p for p in positions if p.name.startswith(f"bb_s{s}_")]:
            h = _apply(g, pos, [h], choose, expand)[0]
        feats.append(h)
    return feats[-3:]


def _neck(g: Graph, feats: list[Any], space: DetectorSpace, choose: Chooser, expand: bool) -> list[Any]:
    lateral = {lvl: g.add("conv2d", f, name=f"lateral_c{lvl}", out_channels=space.neck_channels, kernel_size=1)
               for lvl, f in zip((3, 4, 5), feats, strict=True)}
    merged = {5: lateral[5]}
    for lvl in (4, 3):
        up = g.add("upsample", merged[lvl + 1], name=f"up_p{lvl + 1}", scale_factor=2.0, mode="nearest")
        merged[lvl] = g.add("add", lateral[lvl], up, name=f"merge_p{lvl}")
    outs = {}
    for lvl in (5, 4, 3):
        h = merged[lvl]
        for i in range(space.neck_depth):
            pos = Position(f"neck_p{lvl}_{i}", "neck", None, 1)
            h = _apply(g, pos, [h], choose, expand)[0]
        outs[lvl] = h
    return [outs[3], outs[4], outs[5]]


def _head(g: Graph, levels: list[Any], space: DetectorSpace, choose: Chooser, expand: bool) -> Node:
    for pos in space.component_positions("head"):
        levels = _apply(g, pos, levels, choose, expand)
    return g.add("det_predict", *levels, name="predict", num_classes=space.num_classes)


def build_detector(space: DetectorSpace, choose: Chooser, name: str = "detector", blocks: bool = True,
                   expand: bool = False) -> Graph:
    """A detector graph whose searched positions get ``choose(position) -> (op, params)``.

    With `blocks` (default) backbone, neck and head are block nodes of the returned graph; without, all nodes
    sit in one flat graph. With `expand`, a ``mixed_op`` position is drawn as its candidate nodes feeding a
    ``weighted_sum`` named after the position (candidates are named ``position.candidate``): a display graph
    for the editor, where each candidate edge can show its architecture weight.
    """
    s = space.image_size
    top = Graph(name)
    top.meta["detector"] = {"image_size": [s, s], "strides": list(space.strides), "num_classes": space.num_classes}
    x = top.input("image", shape=(space.batch, 3, s, s))
    if not blocks:
        feats = _backbone(top, x, space, choose, expand)
        levels = _neck(top, feats, space, choose, expand)
        top.output(_head(top, levels, space, choose, expand), name="predictions")
        return top
    bb = Graph("backbone")
    feats = _backbone(bb, bb.input("image", shape=(space.batch, 3, s, s)), space, choose, expand)
    for lvl, f in zip((3, 4, 5), feats, strict=True):
        bb.output(f, name=f"c{lvl}")
    bb_node = top.add(bb, x, name="backbone")
    nk = Graph("neck")
    ins = [nk.input(f"c{lvl}", shape=bb_node[i].shape) for i, lvl in enumerate((3, 4, 5))]
    for lvl, p in zip((3, 4, 5), _neck(nk, ins, space, choose, expand), strict=True):
        nk.output(p, name=f"p{lvl}")
    nk_node = top.add(nk, *[bb_node[i] for i in range(3)], name="neck")
    hd = Graph("head")
    ins = [hd.input(f"p{lvl}", shape=nk_node[i].shape) for i, lvl in enumerate((3, 4, 5))]
    hd.output(_head(hd, ins, space, choose, expand), name="predictions")
    head_node = top.add(hd, *[nk_node[i] for i in range(3)], name="head")
    top.output(head_node, name="predictions")
    return top


def find_position(graph: Graph, position: str) -> Node:
    """The node of a searched position in a detector graph (looking inside the component blocks)."""
    if position in graph:
        return graph[position]
    for comp in COMPONENTS:
        if comp in graph and graph[comp].block is not None and position in graph[comp].block:
            return graph[comp].block[position]
    raise GraphError(f"graph {graph.name!r} has no searched position {position!r}", [position])


def candidate_costs(graph: Graph, position: str, candidates: list[Any]) -> dict[str, dict[str, int]]:
    """FLOPs (torch.utils.flop_counter on meta tensors) and params of each candidate at a position of
    `graph`, at that position's input shapes: ``{label: {"flops": f, "params": p}}``."""
    node = find_position(graph, position)
    specs = [p.spec for p in node.inputs if p is not None]
    out = {}
    for entry in candidate_list(candidates):
        name, extra = entry
        opdef = registry.get(name)
        params = candidate_params(name, extra, node.params["out_channels"] or specs[0].shape[1], node.params["stride"])
        assert opdef.flops is not None and opdef.infer is not None
        out[candidate_label(entry)] = {"flops": int(opdef.flops(opdef, params, specs)),
                                       "params": int(opdef.infer(opdef, params, specs).num_params)}
    return out


def fixed(arch: dict[str, Any]) -> Chooser:
    """A chooser from ``{position or component: op}`` (component keys apply to all its positions); ops are
    names or ``{"op": name, "dilation": d}``."""
    def choose(pos: Position) -> tuple[str, dict[str, Any]]:
        entry = arch.get(pos.name, arch.get(pos.component))
        if entry is None:
            raise GraphError(f"no op chosen for position {pos.name!r} ({pos.component}); give one per position "
                             "or per component", [pos.name])
        name, extra = candidate_list([entry])[0]
        return name, extra
    return choose


def hand_designed(space: DetectorSpace, name: str = "hand_designed") -> Graph:
    """The hand-designed baseline: MobileNetV2-style backbone (every position ``ir_k3_e6``), FPN with a
    separable 3x3 output conv per level (``sd_k3_d1``, FPN-lite), and a 4-layer separable conv head."""
    return build_detector(space, fixed({"backbone": "ir_k3_e6", "neck": "sd_k3_d1", "head": "sd_k3_d1"}), name)
