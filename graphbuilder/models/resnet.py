"""ResNet-50 and the papers' variants of it as editable graphs: OctResNet-50 and GloRe ResNet-50.

    resnet50()                 ResNet-50 v1.5 (He et al., arXiv:1512.03385; stride in the 3x3 conv, as torchvision)
    oct_resnet50(alpha)        every conv of stages res2-res4 an octave conv with ratio alpha, res5 plain
                               (Chen et al., arXiv:1904.05049; the reference resnet50_v1b of
                               facebookresearch/OctConv: ratio (alpha, alpha, alpha, 0), the first block's
                               convs in the first form, res5's first block in the last form; res5's other convs
                               are `oct_conv2d` with both ratios 0, a plain conv that strides by average
                               pooling as every conv of the reference does)
    glore_resnet50(preset)     ResNet-50 with GloRe units, "res4x3" or "res3x2+res4x3" (arXiv:1811.12814),
                               inserted by `gb.passes.insert_glore`

Each residual block is a block node (``layer3/0``), inside a stage block (``layer3``), as torchvision names
them, so the editor shows four stages that expand to blocks that expand to layers. Input (N, 3, 224, 224).
"""

from __future__ import annotations

from graphbuilder.ir.graph import Graph
from graphbuilder.models.build import Value, add_block, block, conv_bn, shape_of
from graphbuilder.passes.glore import insert_glore

STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, blocks, stride) of res2..res5
EXPANSION = 4


def _stem(g: Graph, x: Value) -> Value:
    h = conv_bn(g, x, 64, 7, stride=2, padding=3, name="conv1")
    return g.add("max_pool2d", h, name="maxpool", kernel_size=3, stride=2, padding=1)


def _head(g: Graph, h: Value, num_classes: int) -> None:
    h = g.add("flatten", g.add("adaptive_avg_pool2d", h, name="avgpool", output_size=1), name="flatten")
    g.output(g.add("linear", h, name="fc", out_features=num_classes))


def _bottleneck(shape: tuple[int, ...], width: int, stride: int) -> Graph:
    def body(g: Graph, xs: list[Value]) -> list[Value]:
        (x,) = xs
        h = conv_bn(g, x, width, 1, name="conv1")
        h = conv_bn(g, h, width, 3, stride=stride, name="conv2")
        h = conv_bn(g, h, width * EXPANSION, 1, act=None, name="conv3")
        skip = x
        if stride != 1 or shape[1] != width * EXPANSION:
            skip = conv_bn(g, x, width * EXPANSION, 1, stride=stride, act=None, name="downsample")
        return [g.add("relu", g.add("add", h, skip, name="add"), name="relu")]
    return block("Bottleneck", [shape], body)


def resnet50(num_classes: int = 1000, image_size: int = 224, batch: int = 1) -> Graph:
    """ResNet-50 v1.5 as a graph: 25,557,032 parameters and 4.09 G multiply-adds at 224 x 224."""
    g = Graph("resnet50")
    h = _stem(g, g.input("image", shape=(batch, 3, image_size, image_size)))
    for index, (width, blocks, stride) in enumerate(STAGES):
        def stage(s: Graph, xs: list[Value], width: int = width, blocks: int = blocks, stride: int = stride
                  ) -> list[Value]:
            (h,) = xs
            for k in range(blocks):
                (h,) = add_block(s, _bottleneck(shape_of(h), width, stride if k == 0 else 1), h, name=str(k))
            return [h]
        (h,) = add_block(g, block("Stage", [shape_of(h)], stage), h, name=f"layer{index + 1}")
    _head(g, h, num_classes)
    return g


def glore_resnet50(preset: str = "res4x3", num_classes: int = 1000, image_size: int = 224) -> Graph:
    """ResNet-50 with GloRe units at `preset` ("res4x3" or "res3x2+res4x3"), each C/2 states and C/4 nodes."""
    g = insert_glore(resnet50(num_classes, image_size), preset)
    g.name = f"glore_resnet50_{preset.replace('+', '_')}"
    return g


# -- OctResNet-50 ------------------------------------------------------------------------------------------------
def _oct_bn_act(g: Graph, parts: list[Value], name: str, act: bool) -> list[Value]:
    """Batch norm on each frequency part (the reference's bn_h, bn_l), then ReLU when `act`."""
    out = []
    for part, tag in zip(parts, ("h", "l"), strict=False):
        h = g.add("batch_norm2d", part, name=f"{name}_bn_{tag}")
        out.append(g.add("relu", h, name=f"{name}_relu_{tag}") if act else h)
    return out


def _oct_conv(g: Graph, parts: list[Value], out_channels: int, kernel: int, alpha_in: float, alpha_out: float,
              stride: int, name: str, act: bool = True) -> list[Value]:
    node = g.add("oct_conv2d", *parts, name=name, out_channels=out_channels, kernel_size=kernel,
                 alpha_in=alpha_in, alpha_out=alpha_out, stride=stride, padding=kernel // 2)
    return _oct_bn_act(g, [node[i] for i in range(node.num_outputs)], name, act)


def _oct_bottleneck(shapes: list[tuple[int, ...]], width: int, stride: int, alpha_in: float, alpha: float) -> Graph:
    def body(g: Graph, xs: list[Value]) -> list[Value]:
        h = _oct_conv(g, xs, width, 1, alpha_in, alpha, 1, "conv1")
        h = _oct_conv(g, h, width, 3, alpha, alpha, stride, "conv2")
        h = _oct_conv(g, h, width * EXPANSION, 1, alpha, alpha, 1, "conv3", act=False)
        skip = xs
        if stride != 1 or sum(s[1] for s in shapes) != width * EXPANSION:
            skip = _oct_conv(g, xs, width * EXPANSION, 1, alpha_in, alpha, stride, "downsample", act=False)
        return [g.add("relu", g.add("add", a, b, name=f"add_{t}"), name=f"relu_{t}")
                for a, b, t in zip(h, skip, ("h", "l")[:len(h)], strict=True)]
    return block("OctBottleneck", shapes, body, input_names=("x_h", "x_l")[:len(shapes)])


def oct_resnet50(alpha: float = 0.5, num_classes: int = 1000, image_size: int = 224, batch: int = 1) -> Graph:
    """OctResNet-50 with low-frequency ratio `alpha` in res2-res4 (res5 plain); parameters equal ResNet-50's."""
    g = Graph(f"oct_resnet50_alpha{alpha:g}")
    parts = [_stem(g, g.input("image", shape=(batch, 3, image_size, image_size)))]
    ratio_in = 0.0
    for index, (width, blocks, stride) in enumerate(STAGES):
        ratio = alpha if index < 3 else 0.0

        def stage(s: Graph, xs: list[Value], width: int = width, blocks: int = blocks, stride: int = stride,
                  ratio: float = ratio, ratio_in: float = ratio_in) -> list[Value]:
            for k in range(blocks):
                inner = _oct_bottleneck([shape_of(x) for x in xs], width, stride if k == 0 else 1,
                                        ratio_in if k == 0 else ratio, ratio)
                xs = add_block(s, inner, *xs, name=str(k))
            return xs
        shapes = [shape_of(p) for p in parts]
        parts = add_block(g, block("OctStage", shapes, stage, ("x_h", "x_l")[:len(shapes)]), *parts,
                          name=f"layer{index + 1}")
        ratio_in = ratio
    _head(g, parts[0], num_classes)
    return g
