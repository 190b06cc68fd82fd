"""The Hit-Detector search space on the graph IR: a one-stage detector whose searched positions are nodes.

Boundary: builds `gb.Graph`s only (supernet, derived detector, hand-designed baselines, display graphs) and
measures per-candidate costs on meta tensors; no training (that is `trinity.py`). Reference: Hit-Detector,
arXiv:2003.11818 (backbone, neck and head searched together); FBNet (arXiv:1812.03443) backbone; FPN
(arXiv:1612.03144) and PANet (arXiv:1803.01534) neck, as in the released SearchPAFPN; FCOS (arXiv:1904.01355)
head outputs.

The detector, for an image (N, 3, S, S):

    backbone  stem conv3x3 s2 + BN + ReLU, then stages; each stage opens with a stride-2 searched position
              and continues with stride-1 ones. The last three stages give C3, C4, C5 (strides 8, 16, 32).
    neck      searched laterals C_l -> `neck_channels`, top-down nearest upsampling + add, then `neck_depth`
              searched positions per level, then a fixed bottom-up path (2x2 max pool + add + `sd_k3_d1`)
              -> P3, P4, P5 (the released SearchPAFPN: 4 searched laterals, 4 searched positions after the
              top-down merge, a fixed bottom-up path).
    head      `head_positions` searched positions with GroupNorm, each ONE node applied to all levels with
              shared weights (RetinaNet/FCOS shared head), then `det_predict` -> (N, P, num_classes + 5).

Residuals belong to positions, not to ops: a position whose output has its input's shape (stride 1, same
channels; all but the first of a backbone stage, the neck positions after the merge, the head) computes
``x + f(x)`` with an `add` node, where f is the chosen op built without its own residual, or a `mixed_op`
of candidates. So the supernet computes ``x + sum_i w_i f_i(x)`` and the derived detector ``x + f_k(x)``.

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
from graphbuilder.ops.modules.search_space import NORMS, SEARCH_OPS
from graphbuilder.ops.search_space import candidate_label, candidate_list

COMPONENTS = ("backbone", "neck", "head")

#: The one large operator set each component screens from: the registered search ops but `skip`. Every
#: shape-preserving position adds its identity outside the op, so a searched `skip` would double the input;
#: the released neck and head sets have no skip either (a skip in them is the DARTS collapse attractor).
FULL_OPS: tuple[str, ...] = tuple(o for o in SEARCH_OPS if o != "skip")

#: Per-component sets shaped like the paper's: MBConv-only backbone (FBNet-style) and head (the released head
#: ops are 6 MBConv variants); the separable convs and 1x1 conv for the neck (the released neck mixes both).
COMPONENT_OPS: dict[str, tuple[str, ...]] = {
    "backbone": tuple(o for o in FULL_OPS if o.startswith("ir_")),
    "neck": tuple(o for o in FULL_OPS if not o.startswith("ir_")),
    "head": tuple(o for o in FULL_OPS if o.startswith("ir_")),
}

#: The hand-designed detector's op per role: MobileNetV2-style backbone, FPN 1x1 laterals, a separable 3x3
#: after each merge (FPN-lite) and a separable-conv head. Also the fixed ops of components not searched.
HAND_DESIGNED: dict[str, str] = {"backbone": "ir_k3_e6", "lateral": "conv_1x1", "neck": "sd_k3_d1",
                                 "head": "sd_k3_d1"}

ROLES = ("backbone", "lateral", "neck", "head")


@dataclass(frozen=True)
class Position:
    """One searched position.

    Attributes:
        name: its node name (unique in the detector).
        component: ``backbone``, ``neck`` or ``head`` (screening groups and `search` use components).
        role: the component, or ``lateral`` for the neck's laterals (they map C_l to the neck's width).
        out_channels: output channels (None: the input's).
        stride: 1 or 2.
        levels: how many pyramid levels one node processes (the shared head: 3).
        identity: the position computes ``x + f(x)`` (its output has its input's shape).
        norm: ``batch`` or ``group`` (the head).
    """

    name: str
    component: str
    role: str
    out_channels: int | None
    stride: int
    levels: int = 1
    identity: bool = False
    norm: str = "batch"


@dataclass(frozen=True)
class DetectorSpace:
    """Sizes of the searchable detector (defaults: a small CPU setting; the paper's is far larger).

    Attributes:
        image_size: input side S (square images); must be divisible by the coarsest stride.
        num_classes: object classes.
        batch: example batch size of the graph input (compiled models take any batch).
        stem_channels: channels after the stem.
        stages: (channels, positions) per backbone stage; every stage halves the resolution. The last three
            stages give C3, C4, C5 (the paper: 5 stages, 20 positions).
        neck_channels: FPN width (also the head's width).
        neck_depth: searched positions per FPN level after the top-down merge (paper: 4 laterals + 4).
        head_positions: searched positions in the shared head (paper: 4).
        head_norm: the head's normalisation (``group``: FCOS's GroupNorm, whose statistics do not mix the
            levels the shared head sees; ``batch``).
        bottom_up: add the fixed bottom-up path (PANet) after the searched neck positions.
    """

    image_size: int = 64
    num_classes: int = 4
    batch: int = 2
    stem_channels: int = 8
    stages: tuple[tuple[int, int], ...] = ((16, 1), (24, 1), (32, 2), (48, 1))
    neck_channels: int = 24
    neck_depth: int = 1
    head_positions: int = 4
    head_norm: str = "group"
    bottom_up: bool = True
    strides: tuple[int, ...] = field(default=(8, 16, 32), init=False)

    def __post_init__(self) -> None:
        if len(self.stages) < 3:
            raise GraphError(f"stages={self.stages}: need at least 3 backbone stages (C3, C4, C5)")
        if any(c < 1 or n < 1 for c, n in self.stages):
            raise GraphError(f"stages={self.stages}: every stage needs channels >= 1 and positions >= 1")
        if self.head_norm not in NORMS:
            raise GraphError(f"head_norm={self.head_norm!r}: choose from {NORMS}")
        strides = tuple(2 ** (len(self.stages) + 1 - k) for k in (2, 1, 0))
        object.__setattr__(self, "strides", strides)
        if self.image_size % strides[-1]:
            raise GraphError(f"image_size={self.image_size} must be divisible by the coarsest stride {strides[-1]}")

    def positions(self) -> list[Position]:
        """Every searched position in build order (backbone, neck, head)."""
        out = []
        for s, (ch, n) in enumerate(self.stages):
            out += [Position(f"bb_s{s}_{i}", "backbone", "backbone", ch, 2 if i == 0 else 1, identity=i > 0)
                    for i in range(n)]
        out += [Position(f"neck_lat{lvl}", "neck", "lateral", self.neck_channels, 1) for lvl in (5, 4, 3)]
        for lvl in (5, 4, 3):
            out += [Position(f"neck_p{lvl}_{i}", "neck", "neck", None, 1, identity=True)
                    for i in range(self.neck_depth)]
        out += [Position(f"head_{i}", "head", "head", None, 1, levels=3, identity=True, norm=self.head_norm)
                for i in range(self.head_positions)]
        return out

    def component_positions(self, component: str) -> list[Position]:
        """The positions of one component."""
        return [p for p in self.positions() if p.component == component]

    def position(self, name: str) -> Position:
        """The position called `name`."""
        for p in self.positions():
            if p.name == name:
                return p
        raise GraphError(f"this space has no position {name!r}", [name])

    def to_dict(self) -> dict[str, Any]:
        """The sizes as JSON."""
        return {"image_size": self.image_size, "num_classes": self.num_classes, "batch": self.batch,
                "stem_channels": self.stem_channels, "stages": [list(s) for s in self.stages],
                "neck_channels": self.neck_channels, "neck_depth": self.neck_depth,
                "head_positions": self.head_positions, "head_norm": self.head_norm, "bottom_up": self.bottom_up}

    @classmethod
    def from_dict(cls, data: Any) -> DetectorSpace:
        """Inverse of `to_dict` (raises `GraphError` on unknown keys or bad sizes)."""
        if not isinstance(data, dict):
            raise GraphError(f"a detector space must be an object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__) - {"strides"}
        bad = set(data) - known
        if bad:
            raise GraphError(f"unknown detector space keys {sorted(bad)}; known: {sorted(known)}")
        values = dict(data)
        if "stages" in values:
            values["stages"] = tuple(tuple(int(v) for v in s) for s in values["stages"])
        return cls(**values)


Chooser = Callable[[Position], tuple[str, dict[str, Any]]]


def position_params(pos: Position, op: str, params: dict[str, Any], channels: int) -> dict[str, Any]:
    """The node params of `op` at `pos` whose input has `channels` (see `params_at`)."""
    return params_at(op, params, pos.stride, pos.out_channels or channels, pos.norm)


def params_at(op: str, params: dict[str, Any], stride: int, out_channels: int, norm: str) -> dict[str, Any]:
    """The chooser's `params` of `op` plus, for each one the op declares, the position's stride, output
    channels and norm; an op with its own residual gets ``residual=False`` (the position adds the identity
    itself). Any registered op may be a candidate: it gets exactly the params it declares."""
    declared = {p.name for p in registry.get(op).params}
    at: dict[str, Any] = {"stride": stride, "out_channels": out_channels, "norm": norm}
    if op != "mixed_op":
        at["residual"] = False
    return {**{k: v for k, v in at.items() if k in declared}, **params}


def _apply(g: Graph, pos: Position, inputs: list[Any], choose: Chooser, expand: bool) -> list[Any]:
    op, params = choose(pos)
    if expand and op == "mixed_op":
        cands = candidate_list(params["candidates"])
        weights = params.get("display_weights") or [1.0 / len(cands)] * len(cands)
        outs = []
        for entry in cands:
            name, extra = entry
            node = g.add(name, *inputs, name=f"{pos.name}.{candidate_label(entry)}",
                         **position_params(pos, name, extra, inputs[0].shape[1]))
            outs += [node[i] for i in range(len(inputs))]
        merged = g.add("weighted_sum", *outs, name=pos.name, weights=tuple(float(w) for w in weights))
    else:
        kept = {k: v for k, v in params.items() if k != "display_weights"}
        merged = g.add(op, *inputs, name=pos.name, **position_params(pos, op, kept, inputs[0].shape[1]))
        merged.meta["component"] = pos.component
    outs = [merged[i] for i in range(len(inputs))] if len(inputs) > 1 else [merged]
    if not pos.identity:
        return outs
    names = [f"{pos.name}_add"] if len(inputs) == 1 else [f"{pos.name}_add{i}" for i in range(len(inputs))]
    return [g.add("add", x, y, name=n) for x, y, n in zip(inputs, outs, names, strict=True)]


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
    lateral = {lvl: _apply(g, space.position(f"neck_lat{lvl}"), [f], choose, expand)[0]
               for lvl, f in zip((3, 4, 5), feats, strict=True)}
    merged = {5: lateral[5]}
    for lvl in (4, 3):
        up = g.add("upsample", merged[lvl + 1], name=f"up_p{lvl + 1}", scale_factor=2.0, mode="nearest")
        merged[lvl] = g.add("add", lateral[lvl], up, name=f"merge_p{lvl}")
    outs = {}
    for lvl in (5, 4, 3):
        h = merged[lvl]
        for i in range(space.neck_depth):
            h = _apply(g, space.position(f"neck_p{lvl}_{i}"), [h], choose, expand)[0]
        outs[lvl] = h
    if space.bottom_up:  # PANet: N3 = M3, N_l = conv(maxpool(N_{l-1}) + M_l), a fixed separable conv
        for lvl in (4, 5):
            down = g.add("max_pool2d", outs[lvl - 1], name=f"down_p{lvl - 1}", kernel_size=2, stride=2)
            h = g.add("add", down, outs[lvl], name=f"bu_merge_p{lvl}")
            outs[lvl] = g.add(HAND_DESIGNED["neck"], h, name=f"bu_p{lvl}")
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
    ``weighted_sum`` (candidates are named ``position.candidate``): a display graph for the editor, where
    each candidate edge can show its architecture weight. A position with an identity is followed by `add`
    nodes ``position_add`` (``position_add{level}`` in the head).
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
    `graph`, built as the derived detector builds it (the position node's stride, output channels and norm),
    at that position's input shapes: ``{label: {"flops": f, "params": p}}`` (FLOPs for the graph's example
    batch)."""
    node = find_position(graph, position)
    specs = [p.spec for p in node.inputs if p is not None]
    at = (node.params["stride"], node.params.get("out_channels") or specs[0].shape[1], node.params.get("norm", "batch"))
    out = {}
    for entry in candidate_list(candidates):
        name, extra = entry
        opdef = registry.get(name)
        params = opdef.validate_params(params_at(name, extra, *at))
        assert opdef.flops is not None and opdef.infer is not None
        out[candidate_label(entry)] = {"flops": int(opdef.flops(opdef, params, specs)),
                                       "params": int(opdef.infer(opdef, params, specs).num_params)}
    return out


def fixed(arch: dict[str, Any]) -> Chooser:
    """A chooser from ``{position, role or component: op}`` (a role or component key applies to all its
    positions; looked up in that order); ops are names or ``{"op": name, "dilation": d}``."""
    def choose(pos: Position) -> tuple[str, dict[str, Any]]:
        entry = arch.get(pos.name, arch.get(pos.role, arch.get(pos.component)))
        if entry is None:
            raise GraphError(f"no op chosen for position {pos.name!r} ({pos.role}); give one per position, "
                             f"role ({', '.join(ROLES)}) or component", [pos.name])
        name, extra = candidate_list([entry])[0]
        return name, extra
    return choose


def hand_designed(space: DetectorSpace, name: str = "hand_designed", **changes: str) -> Graph:
    """The hand-designed baseline: MobileNetV2-style backbone (every position ``ir_k3_e6``), FPN with 1x1
    laterals and a separable 3x3 after each merge (``sd_k3_d1``, FPN-lite), and a 4-layer separable conv
    head. `changes` replace the op of a role, component or position (``neck="sd_k3_d3"``: a dilated neck)."""
    return build_detector(space, fixed({**HAND_DESIGNED, **changes}), name)


def node_choice(node: Node) -> tuple[str, dict[str, Any]]:
    """The (op, extra params) a chooser would give to rebuild a fixed position's node (its dilation)."""
    dilation = node.params.get("dilation", 1) if node.op.startswith("ir_") else 1
    return node.op, ({"dilation": dilation} if dilation != 1 else {})
