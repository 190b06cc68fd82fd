"""Activation functions (elementwise, plus softmax over a dim)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from graphbuilder.ops.declare import choice, dims_in_range, example, integer, module_op, named, number, size

for _name, _cls, _doc, _ref in (
    ("relu", nn.ReLU, "max(0, x).", torch.relu),
    ("relu6", nn.ReLU6, "min(max(0, x), 6), as in MobileNetV2.", F.relu6),
    ("silu", nn.SiLU, "x * sigmoid(x) (swish).", F.silu),
    ("sigmoid", nn.Sigmoid, "1 / (1 + exp(-x)).", torch.sigmoid),
    ("tanh", nn.Tanh, "Hyperbolic tangent.", torch.tanh),
    ("hardswish", nn.Hardswish, "x * relu6(x + 3) / 6, as in MobileNetV3.", F.hardswish),
    ("hardsigmoid", nn.Hardsigmoid, "relu6(x + 3) / 6.", F.hardsigmoid),
):
    module_op(_name, "activation", _doc, _cls, examples=[example((2, 9), ref=_ref)])

module_op("leaky_relu", "activation", "x if x > 0 else negative_slope * x.", nn.LeakyReLU,
          named(negative_slope=number("slope for x < 0", 0.01)),
          examples=[example((2, 9), negative_slope=0.2, ref=lambda x: F.leaky_relu(x, 0.2))])
module_op("gelu", "activation", "Gaussian error linear unit, as in Transformers.", nn.GELU,
          named(approximate=choice("exact erf form, or the tanh approximation", ("none", "tanh"), "none")),
          examples=[example((2, 9), approximate="tanh", ref=lambda x: F.gelu(x, approximate="tanh")),
                    example((2, 9), ref=F.gelu)])
module_op("prelu", "activation", "Leaky ReLU with a learned slope (one, or one per channel).", nn.PReLU,
          named(num_parameters=size("1, or the channel count for one slope per channel", 1),
                init=number("initial slope", 0.25)),
          examples=[example((2, 3, 4), num_parameters=3, ref=lambda x, weight: F.prelu(x, weight))])
for _name, _cls, _fn in (("softmax", nn.Softmax, torch.softmax), ("log_softmax", nn.LogSoftmax, torch.log_softmax)):
    module_op(_name, "activation", f"{'Log-s' if _name.startswith('log') else 'S'}oftmax over dim `dim`.", _cls,
              named(dim=integer("the dim that sums to one", -1, lo=None)), check=dims_in_range("dim"),
              examples=[example((2, 9), dim=1, ref=(lambda f: lambda x: f(x, 1))(_fn)),
                        example((2, 3, 5), ref=(lambda f: lambda x: f(x, -1))(_fn))])

for _name, _cls, _doc, _params, _ref in (
    ("softplus", nn.Softplus, "log(1 + exp(beta x)) / beta; linear above threshold.",
     named(beta=number("sharpness", 1.0), threshold=number("linear above this", 20.0)), F.softplus),
    ("mish", nn.Mish, "x * tanh(softplus(x)).", (), F.mish),
    ("elu", nn.ELU, "x if x > 0 else alpha (exp(x) - 1).", named(alpha=number("negative saturation", 1.0)), F.elu),
    ("selu", nn.SELU, "Scaled ELU with the self-normalising constants.", (), F.selu),
    ("celu", nn.CELU, "max(0, x) + min(0, alpha (exp(x / alpha) - 1)).", named(alpha=number("alpha", 1.0, lo=1e-6)),
     F.celu),
    ("hardtanh", nn.Hardtanh, "Clamp to [min_val, max_val].",
     named(min_val=number("lower bound", -1.0), max_val=number("upper bound", 1.0)), F.hardtanh),
    ("logsigmoid", nn.LogSigmoid, "log(sigmoid(x)).", (), F.logsigmoid),
):
    module_op(_name, "activation", _doc, _cls, _params, examples=[example((2, 9), ref=_ref)])
module_op("glu", "activation", "Gated linear unit: a * sigmoid(b), halves a, b of dim.", nn.GLU,
          named(dim=integer("the dim halved", -1, lo=None)), check=dims_in_range("dim"),
          examples=[example((2, 8), ref=F.glu)])
