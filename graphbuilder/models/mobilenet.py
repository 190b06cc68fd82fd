"""MobileNetV2 and DY-MobileNetV2 as editable graphs.

    mobilenet_v2(width)      MobileNetV2 (Sandler et al., arXiv:1801.04381), torchvision's layout: widths
                             rounded to multiples of 8, ReLU6, dropout 0.2 before the classifier
    dy_mobilenet_v2(width)   the same with the convolutions of every inverted residual block as
                             `dynamic_conv2d` with K = 4 kernels (Chen et al., arXiv:1912.03458), attention width
                             C_in / 4, temperature annealed from 30. The stem and the last 1x1 conv (to 1280
                             channels) stay static: the paper's parameter counts (11.1M, 7.0M, 4.0M at widths
                             1.0, 0.75, 0.5) are reproduced only this way; a dynamic last conv would add 3 x its
                             weights (+1.2M at width 1.0)

Each inverted residual block is a block node (``features/3``), so the editor shows the stack and expands a
block to its 1x1 expand, depthwise and 1x1 project layers. Input (N, 3, 224, 224).
"""

from __future__ import annotations

from typing import Any

from graphbuilder.ir.graph import Graph
from graphbuilder.models.build import Value, add_block, block, shape_of

SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
            (6, 320, 1, 1))  # (expansion t, channels c, blocks n, stride s), the paper's Table 2
DYNAMIC = dict(num_kernels=4, reduction=4, temperature=30.0, final_temperature=1.0)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a width to a multiple of `divisor`, never more than 10% down (the reference rounding)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv(g: Graph, x: Value, out: int, k: int, stride: int, groups: int, dynamic: bool, act: bool,
          name: str, anneal_steps: int) -> Value:
    pad = k // 2
    if dynamic:
        h = g.add("dynamic_conv2d", x, name=name, out_channels=out, kernel_size=k, stride=stride, padding=pad,
                  groups=groups, anneal_steps=anneal_steps, **DYNAMIC)
    else:
        h = g.add("conv2d", x, name=name, out_channels=out, kernel_size=k, stride=stride, padding=pad, groups=groups,
                  bias=False)
    h = g.add("batch_norm2d", h, name=f"{name}_bn")
    return g.add("relu6", h, name=f"{name}_relu6") if act else h


def _inverted_residual(shape: tuple[int, ...], out: int, stride: int, t: int, dynamic: bool,
                       anneal_steps: int) -> Graph:
    def body(g: Graph, xs: list[Value]) -> list[Value]:
        (x,) = xs
        cin = shape[1]
        hidden = cin * t
        h = x if t == 1 else _conv(g, x, hidden, 1, 1, 1, dynamic, True, "expand", anneal_steps)
        h = _conv(g, h, hidden, 3, stride, hidden, dynamic, True, "depthwise", anneal_steps)
        h = _conv(g, h, out, 1, 1, 1, dynamic, False, "project", anneal_steps)
        return [g.add("add", x, h, name="add") if stride == 1 and cin == out else h]
    return block("InvertedResidual", [shape], body)


def mobilenet_v2(width: float = 1.0, num_classes: int = 1000, image_size: int = 224, batch: int = 1,
                 dynamic: bool = False, anneal_steps: int = 0) -> Graph:
    """MobileNetV2 at width multiplier `width`; `dynamic` makes it DY-MobileNetV2 (see the module docstring)."""
    g = Graph(f"{'dy_' if dynamic else ''}mobilenet_v2_x{width:g}")
    x = g.input("image", shape=(batch, 3, image_size, image_size))
    channels = make_divisible(32 * width)
    h = _conv(g, x, channels, 3, 2, 1, False, True, "stem", anneal_steps)
    index = 1
    for t, c, n, s in SETTINGS:
        out = make_divisible(c * width)
        for k in range(n):
            inner = _inverted_residual(shape_of(h), out, s if k == 0 else 1, t, dynamic, anneal_steps)
            (h,) = add_block(g, inner, h, name=f"features_{index}")
            index += 1
    last = make_divisible(1280 * max(1.0, width))
    h = _conv(g, h, last, 1, 1, 1, False, True, "last", anneal_steps)
    h = g.add("flatten", g.add("adaptive_avg_pool2d", h, name="avgpool", output_size=1), name="flatten")
    h = g.add("dropout", h, name="dropout", p=0.2)
    g.output(g.add("linear", h, name="classifier", out_features=num_classes))
    return g


def dy_mobilenet_v2(width: float = 1.0, num_classes: int = 1000, image_size: int = 224, batch: int = 1,
                    anneal_steps: int = 0, **kwargs: Any) -> Graph:
    """DY-MobileNetV2: MobileNetV2 with K = 4 dynamic convolutions (temperature annealing over `anneal_steps`)."""
    return mobilenet_v2(width, num_classes, image_size, batch, dynamic=True, anneal_steps=anneal_steps, **kwargs)
