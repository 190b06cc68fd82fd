"""Activation functions (elementwise, plus softmax over a dim)."""

from __future__ import annotations

from torch import nn

from graphbuilder.ops.declare import choice, dims_in_range, integer, module_op, named, number, size

for _name, _cls, _doc in (
    ("relu", nn.ReLU, "max(0, x)."),
    ("relu6", nn.ReLU6, "min(max(0, x), 6), as in MobileNetV2."),
    ("silu", nn.SiLU, "x * sigmoid(x) (swish)."),
    ("sigmoid", nn.Sigmoid, "1 / (1 + exp(-x))."),
    ("tanh", nn.Tanh, "Hyperbolic tangent."),
    ("hardswish", nn.Hardswish, "x * relu6(x + 3) / 6, as in MobileNetV3."),
    ("hardsigmoid", nn.Hardsigmoid, "relu6(x + 3) / 6."),
):
    module_op(_name, "activation", _doc, _cls)

module_op("leaky_relu", "activation", "x if x > 0 else negative_slope * x.", nn.LeakyReLU,
          named(negative_slope=number("slope for x < 0", 0.01)))
module_op("gelu", "activation", "Gaussian error linear unit, as in Transformers.", nn.GELU,
          named(approximate=choice("exact erf form, or the tanh approximation", ("none", "tanh"), "none")))
module_op("prelu", "activation", "Leaky ReLU with a learned slope (one, or one per channel).", nn.PReLU,
          named(num_parameters=size("1, or the channel count for one slope per channel", 1),
                init=number("initial slope", 0.25)))
for _name, _cls in (("softmax", nn.Softmax), ("log_softmax", nn.LogSoftmax)):
    module_op(_name, "activation", f"{'Log-s' if _name.startswith('log') else 'S'}oftmax over dim `dim`.", _cls,
              named(dim=integer("the dim that sums to one", -1, lo=None)), check=dims_in_range("dim"))
