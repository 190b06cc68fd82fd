"""MicroNet M0-M3 as editable graphs (Li et al.; arXiv:2011.12289, the released models of arXiv:2108.05894).

The architectures are the released ones (liyunsheng13/micronet, its eval scripts' settings): a
spatially separable stem, then micro-blocks built from grouped 1x1 convs, micro-factorized depthwise convs
(`micro_factorized_conv2d`, k x 1 then 1 x k), Dynamic Shift-Max activations (`dynamic_shift_max`) and
channel shuffles, then ReLU6, global pooling, h-swish and two Linear + BN + h-swish layers.

A block row (stride, repeats, out, kernel, depthwise multipliers e1 e2, stem-group pair g1 g2, pointwise-out
groups c3 g3 g4, activation switches y1 y2 y3, reduction multiplier r) builds one of three layouts, as the
reference `DYMicroBlock`:
    g1 == 0     depthwise first: dw(k x 1, x e1), dw(1 x k, x e2), act, shuffles, group 1x1 (g3), act, shuffles
    g4 == 0     the last row: group 1x1 expansion (g1), act
    otherwise   group 1x1 expansion (g1), act, shuffle, dw(k x 1), dw(1 x k), act, shuffle, group 1x1 (g3),
                act, shuffles; plus the identity when stride 1 and channels match
Every activation switch is 0 (ReLU6 or none), 1 (Dynamic Shift-Max with one fusion) or 2 (two fusions, maxed).
"""

from __future__ import annotations

from dataclasses import dataclass

from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.models.build import Value, add_block, block, shape_of

# stride, repeats, out, kernel, e1, e2, g1, g2, c3, g3, g4, y1, y2, y3, r
Row = tuple[int, int, int, int, int, int, int, int, int, int, int, int, int, int, int]

_M0: tuple[Row, ...] = (
    (2, 1, 8, 3, 2, 2, 0, 4, 8, 2, 2, 2, 0, 1, 1), (2, 1, 12, 3, 2, 2, 0, 8, 12, 4, 4, 2, 2, 1, 1),
    (2, 1, 16, 5, 2, 2, 0, 12, 16, 4, 4, 2, 2, 1, 1), (1, 1, 32, 5, 1, 4, 4, 4, 32, 4, 4, 2, 2, 1, 1),
    (2, 1, 64, 5, 1, 4, 8, 8, 64, 8, 8, 2, 2, 1, 1), (1, 1, 96, 3, 1, 4, 8, 8, 96, 8, 8, 2, 2, 1, 2),
    (1, 1, 384, 3, 1, 4, 12, 12, 0, 0, 0, 2, 2, 1, 2))
_M1: tuple[Row, ...] = (
    (2, 1, 8, 3, 2, 2, 0, 6, 8, 2, 2, 2, 0, 1, 1), (2, 1, 16, 3, 2, 2, 0, 8, 16, 4, 4, 2, 2, 1, 1),
    (2, 1, 16, 5, 2, 2, 0, 16, 16, 4, 4, 2, 2, 1, 1), (1, 1, 32, 5, 1, 6, 4, 4, 32, 4, 4, 2, 2, 1, 1),
    (2, 1, 64, 5, 1, 6, 8, 8, 64, 8, 8, 2, 2, 1, 1), (1, 1, 96, 3, 1, 6, 8, 8, 96, 8, 8, 2, 2, 1, 2),
    (1, 1, 576, 3, 1, 6, 12, 12, 0, 0, 0, 2, 2, 1, 2))
_M2: tuple[Row, ...] = (
    (2, 1, 12, 3, 2, 2, 0, 8, 12, 4, 4, 2, 0, 1, 1), (2, 1, 16, 3, 2, 2, 0, 12, 16, 4, 4, 2, 2, 1, 1),
    (1, 1, 24, 3, 2, 2, 0, 16, 24, 4, 4, 2, 2, 1, 1), (2, 1, 32, 5, 1, 6, 6, 6, 32, 4, 4, 2, 2, 1, 1),
    (1, 1, 32, 5, 1, 6, 8, 8, 32, 4, 4, 2, 2, 1, 2), (1, 1, 64, 5, 1, 6, 8, 8, 64, 8, 8, 2, 2, 1, 2),
    (2, 1, 96, 5, 1, 6, 8, 8, 96, 8, 8, 2, 2, 1, 2), (1, 1, 128, 3, 1, 6, 12, 12, 128, 8, 8, 2, 2, 1, 2),
    (1, 1, 768, 3, 1, 6, 16, 16, 0, 0, 0, 2, 2, 1, 2))
_M3: tuple[Row, ...] = (
    (2, 1, 16, 3, 2, 2, 0, 12, 16, 4, 4, 0, 2, 0, 1), (2, 1, 24, 3, 2, 2, 0, 16, 24, 4, 4, 0, 2, 0, 1),
    (1, 1, 24, 3, 2, 2, 0, 24, 24, 4, 4, 0, 2, 0, 1), (2, 1, 32, 5, 1, 6, 6, 6, 32, 4, 4, 0, 2, 0, 1),
    (1, 1, 32, 5, 1, 6, 8, 8, 32, 4, 4, 0, 2, 0, 2), (1, 1, 64, 5, 1, 6, 8, 8, 48, 8, 8, 0, 2, 0, 2),
    (1, 1, 80, 5, 1, 6, 8, 8, 80, 8, 8, 0, 2, 0, 2), (1, 1, 80, 5, 1, 6, 10, 10, 80, 8, 8, 0, 2, 0, 2),
    (2, 1, 120, 5, 1, 6, 10, 10, 120, 10, 10, 0, 2, 0, 2), (1, 1, 120, 5, 1, 6, 12, 12, 120, 10, 10, 0, 2, 0, 2),
    (1, 1, 144, 3, 1, 6, 12, 12, 144, 12, 12, 0, 2, 0, 2), (1, 1, 864, 3, 1, 6, 12, 12, 0, 0, 0, 0, 2, 0, 2))


@dataclass(frozen=True)
class MicroNetConfig:
    """One MicroNet variant: block rows, stem groups (its width is their product), head width, activation init."""

    rows: tuple[Row, ...]
    stem_groups: tuple[int, int]
    head: int
    dropout: float
    init_a: tuple[float, float]
    init_b: tuple[float, float]
    reduction: int = 8  # Dynamic Shift-Max reduction, times the row's r
    act_max: float = 2.0
    init_last: tuple[float, float] = (1.0, 0.0)  # the third activation's (a, b) offsets of the first fusion


VARIANTS = {
    "M0": MicroNetConfig(_M0, (2, 2), 640, 0.05, (1.0, 1.0), (0.0, 0.0)),
    "M1": MicroNetConfig(_M1, (3, 2), 960, 0.05, (1.0, 1.0), (0.0, 0.0)),
    "M2": MicroNetConfig(_M2, (4, 2), 1024, 0.1, (1.0, 1.0), (0.0, 0.0)),
    "M3": MicroNetConfig(_M3, (4, 3), 1024, 0.1, (1.0, 0.5), (0.0, 0.5)),
}


def _activation(g: Graph, x: Value, switch: int, groups: int, reduction: int, cfg: MicroNetConfig, last: bool,
                name: str) -> Value:
    """Switch 0: ReLU6 (none for a block's last activation). Else Dynamic Shift-Max: two fusions for switch 2,
    one otherwise; a block's last activation always fuses once, offset by `init_last` (the reference)."""
    if switch == 0:
        return x if last else g.add("relu6", x, name=name)
    init_a, init_b = ((cfg.init_last[0], 0.0), (cfg.init_last[1], 0.0)) if last else (cfg.init_a, cfg.init_b)
    return g.add("dynamic_shift_max", x, name=name, groups=groups, reduction=reduction,
                 fusions=2 if switch == 2 and not last else 1, act_max=cfg.act_max, init_a=init_a, init_b=init_b)


def _shuffle(g: Graph, x: Value, groups: int, name: str) -> Value:
    return g.add("channel_shuffle", x, name=name, groups=groups)


def _group_conv(g: Graph, x: Value, out: int, groups: int, name: str) -> Value:
    h = g.add("conv2d", x, name=name, out_channels=out, kernel_size=1, groups=groups, bias=False)
    return g.add("batch_norm2d", h, name=f"{name}_bn")


def _micro_block(shape: tuple[int, ...], row: Row, stride: int, cfg: MicroNetConfig) -> Graph:
    _, _, out, k, e1, e2, g1, g2, _, g3, g4, y1, y2, y3, r = row
    cin = shape[1]
    hidden = cin * e1 * e2
    red = cfg.reduction * r

    def depthwise(g: Graph, x: Value, expansion: int, out_channels: int) -> Value:
        return g.add("micro_factorized_conv2d", x, name="depthwise", kind="depthwise", out_channels=out_channels,
                     kernel_size=k, stride=stride, expansion=expansion)

    def body(g: Graph, xs: list[Value]) -> list[Value]:
        (x,) = xs
        if g1 == 0:  # depthwise first
            h = depthwise(g, x, e1, hidden)
            h = _activation(g, h, y2, g2, red, cfg, False, "act2")
            h = _shuffle(g, h, g2, "shuffle1")
            if y2:
                h = _shuffle(g, h, hidden // 2, "shuffle2")
            h = _group_conv(g, h, out, g3, "pointwise2")
            h = _activation(g, h, y3, g4, red // 2, cfg, True, "act3")
            h = _shuffle(g, h, g4, "shuffle3")
            if y3 and out % 2 == 0:
                h = _shuffle(g, h, out // 2, "shuffle4")
        elif g4 == 0:  # the last row: expansion only
            h = _group_conv(g, x, hidden, g1, "pointwise1")
            h = _activation(g, h, y3, g2, red, cfg, True, "act3")
        else:
            h = _group_conv(g, x, hidden, g1, "pointwise1")
            h = _activation(g, h, y1, g2, red, cfg, False, "act1")
            h = _shuffle(g, h, g2, "shuffle1")
            h = depthwise(g, h, 1, hidden)
            groups = hidden // g2 if g2 != 1 else 1  # the reference's groups for an expanded activation
            h = _activation(g, h, y2, groups, red, cfg, False, "act2")
            if y1 and y2:
                h = _shuffle(g, h, hidden // 4, "shuffle2")
            elif y1 or y2:
                h = _shuffle(g, h, hidden // 2, "shuffle2")
            h = _group_conv(g, h, out, g3, "pointwise2")
            h = _activation(g, h, y3, g4, red // 2 if out < hidden else red, cfg, True, "act3")
            h = _shuffle(g, h, g4, "shuffle3")
            if y3:
                h = _shuffle(g, h, out // 2, "shuffle4")
        if stride == 1 and cin == out:
            h = g.add("add", h, x, name="identity")
        return [h]
    return block("MicroBlock", [shape], body)


def micronet(variant: str = "M0", num_classes: int = 1000, image_size: int = 224, batch: int = 1) -> Graph:
    """MicroNet `variant` ("M0".."M3") as a graph; see the module docstring."""
    if variant not in VARIANTS:
        raise GraphError(f"unknown MicroNet variant {variant!r}; choose one of {sorted(VARIANTS)}")
    cfg = VARIANTS[variant]
    g = Graph(f"micronet_{variant.lower()}")
    x = g.input("image", shape=(batch, 3, image_size, image_size))
    a, b = cfg.stem_groups

    def stem(s: Graph, xs: list[Value]) -> list[Value]:
        h = s.add("conv2d", xs[0], name="conv_kx1", out_channels=a, kernel_size=(3, 1), stride=(2, 1),
                  padding=(1, 0), bias=False)
        h = s.add("batch_norm2d", h, name="conv_kx1_bn")
        h = s.add("conv2d", h, name="conv_1xk", out_channels=a * b, kernel_size=(1, 3), stride=(1, 2),
                  padding=(0, 1), groups=a, bias=False)
        h = s.add("batch_norm2d", h, name="conv_1xk_bn")
        return [s.add("relu6", _shuffle(s, h, a, "shuffle"), name="relu6")]
    (h,) = add_block(g, block("Stem", [shape_of(x)], stem), x, name="stem")
    index = 1
    for row in cfg.rows:
        for k in range(row[1]):
            (h,) = add_block(g, _micro_block(shape_of(h), row, row[0] if k == 0 else 1, cfg), h,
                             name=f"block{index}")
            index += 1
    h = g.add("adaptive_avg_pool2d", g.add("relu6", h, name="relu6"), name="avgpool", output_size=1)
    h = g.add("flatten", g.add("hardswish", h, name="hswish"), name="flatten")
    for i, (width, drop) in enumerate(((cfg.head, cfg.dropout), (num_classes, 0.0))):
        h = g.add("linear", h, name=f"fc{i + 1}", out_features=width)
        h = g.add("hardswish", g.add("batch_norm1d", h, name=f"fc{i + 1}_bn"), name=f"fc{i + 1}_hswish")
        if drop:
            h = g.add("dropout", h, name="dropout", p=drop)
    g.output(h)
    return g


