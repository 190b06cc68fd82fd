"""Torch modules of the Hit-Detector search space: MBConv, separable dilated conv, 1x1 conv, skip, mixed op.

Boundary: plain torch only (imports torch, math, typing), so the standalone exporter can inline this file's
source and compiled models need no GraphBuilder. The op declarations that wrap these classes live in
`graphbuilder/ops/search_space.py`.

The blocks follow the released Hit-Detector code (ggjy/HitDet.pytorch, necks/auto_neck/hit_ops.py and
bbox_heads/auto_head/mbblock_ops.py; paper arXiv:2003.11818):

* ``ir_k{k}_e{e}`` (MBConv, FBNet/MobileNetV2 inverted residual): 1x1 expand to ``C*e`` (no bias), BN, ReLU,
  depthwise kxk (optional dilation, no bias), BN, ReLU, 1x1 project (no bias), BN; residual when the
  output shape equals the input shape (same channels and stride 1).
* ``sd_k{k}_d{d}`` (separable dilated): depthwise kxk dilation d (no bias), BN, ReLU, 1x1 (no bias), BN;
  residual as above.
* ``conv_1x1``: 1x1 conv with bias, then BN (no ReLU), as the reference `ConvBlock`.
* ``skip``: identity; when channels or stride change, 1x1 conv (no bias), BN, ReLU (FBNet's `Identity`).

Every block is *shared over its inputs*: called with several tensors (e.g. the FPN levels) the same weights
process each one and a tuple is returned, one output per input. That is how the shared detection head of
RetinaNet/FCOS is expressed with one graph node per searched position.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

SEARCH_OPS = (
    "ir_k3_e3", "ir_k3_e6", "ir_k5_e3", "ir_k5_e6", "ir_k7_e3", "ir_k7_e6",
    "sd_k3_d1", "sd_k3_d2", "sd_k3_d3", "sd_k5_d1", "sd_k5_d2", "sd_k5_d3",
    "conv_1x1", "skip",
)


class _SharedOverInputs(nn.Module):
    """Base: ``forward(xs)`` applies `block` to every tensor of the list `xs`, sharing weights."""

    def block(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C', H', W')
        raise NotImplementedError

    def forward(self, xs: list[torch.Tensor]) -> Any:
        outs = [self.block(x) for x in xs]
        return outs[0] if len(outs) == 1 else tuple(outs)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, dilation: int = 1, groups: int = 1,
             relu: bool = True, bias: bool = False) -> nn.Sequential:
    pad = (k - 1) * dilation // 2
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation,
                                         groups=groups, bias=bias), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MBConv(_SharedOverInputs):
    """Inverted residual: 1x1 expand, BN, ReLU, depthwise kxk, BN, ReLU, 1x1 project, BN (+ x)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, expansion: int = 6,
                 stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        mid = in_channels * expansion
        self.expand = _conv_bn(in_channels, mid, 1)
        self.depthwise = _conv_bn(mid, mid, kernel_size, stride=stride, dilation=dilation, groups=mid)
        self.project = _conv_bn(mid, out_channels, 1, relu=False)
        self.residual = in_channels == out_channels and stride == 1

    def block(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))  # (N, C_out, H/s, W/s)
        return out + x if self.residual else out


class SepConv(_SharedOverInputs):
    """Separable dilated conv: depthwise kxk (dilation d), BN, ReLU, 1x1, BN (+ x)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 stride: int = 1) -> None:
        super().__init__()
        self.depthwise = _conv_bn(in_channels, in_channels, kernel_size, stride=stride, dilation=dilation,
                                  groups=in_channels)
        self.pointwise = _conv_bn(in_channels, out_channels, 1, relu=False)
        self.residual = in_channels == out_channels and stride == 1

    def block(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.depthwise(x))
        return out + x if self.residual else out


class Conv1x1(_SharedOverInputs):
    """1x1 conv (with bias) then BN, no activation: the reference `conv_1x1` ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = _conv_bn(in_channels, out_channels, 1, stride=stride, relu=False, bias=True)

    def block(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Skip(_SharedOverInputs):
    """Identity; a 1x1 conv, BN, ReLU when the channels or the stride change (FBNet's Identity)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = (_conv_bn(in_channels, out_channels, 1, stride=stride)
                     if in_channels != out_channels or stride != 1 else None)

    def block(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.conv is None else self.conv(x)


def parse_candidate(name: str) -> dict[str, Any]:
    """Split a search-op name into its family and numbers: ``"ir_k5_e6"`` -> ``{"family": "ir", ...}``."""
    parts = name.split("_")
    if name in ("conv_1x1", "skip"):
        return {"family": name}
    if len(parts) == 3 and parts[0] == "ir" and parts[1][:1] == "k" and parts[2][:1] == "e":
        return {"family": "ir", "kernel_size": int(parts[1][1:]), "expansion": int(parts[2][1:])}
    if len(parts) == 3 and parts[0] == "sd" and parts[1][:1] == "k" and parts[2][:1] == "d":
        return {"family": "sd", "kernel_size": int(parts[1][1:]), "dilation": int(parts[2][1:])}
    raise ValueError(f"unknown search op {name!r}; known ops are {', '.join(SEARCH_OPS)}")


def build_candidate(name: str, in_channels: int, out_channels: int, stride: int = 1,
                    dilation: int = 1) -> nn.Module:
    """The module for search op `name` (`dilation` applies to ``ir_*`` ops; ``sd_*`` carry their own)."""
    spec = parse_candidate(name)
    family = spec["family"]
    if family == "ir":
        return MBConv(in_channels, out_channels, spec["kernel_size"], spec["expansion"], stride, dilation)
    if family == "sd":
        return SepConv(in_channels, out_channels, spec["kernel_size"], spec["dilation"], stride)
    if family == "conv_1x1":
        return Conv1x1(in_channels, out_channels, stride)
    return Skip(in_channels, out_channels, stride)


class MixedOp(nn.Module):
    """A searched position: ``sum_i w_i * op_i(x)`` over candidate ops, ``w = softmax(alpha)`` or ``alpha``.

    `candidates` is a list of ``(name, extra_kwargs)``; `alpha` holds the architecture weights (a trainable
    parameter named ``alpha``). `modules` gives, per candidate, a module already built (any registered op,
    wrapped in `SingleInput`) or None for a search op built here. ``weighting="linear"`` uses alpha as is
    (for group-sparse screening, where a weight must be able to reach exactly zero); ``"softmax"`` is the
    DARTS relaxation.
    """

    def __init__(self, in_channels: int, out_channels: int, candidates: list[tuple[str, dict[str, Any]]],
                 alpha: list[float], stride: int = 1, weighting: str = "softmax",
                 modules: list[nn.Module | None] | None = None) -> None:
        super().__init__()
        self.names = [name for name, _ in candidates]
        built = modules or [None] * len(candidates)  # candidates other than search ops come built
        self.ops = nn.ModuleList(module if module is not None else
                                 build_candidate(name, in_channels, out_channels, stride, **extra)
                                 for (name, extra), module in zip(candidates, built, strict=True))
        self.alpha = nn.Parameter(torch.tensor([float(a) for a in alpha]))
        self.weighting = weighting

    def weights(self) -> torch.Tensor:
        """The mixing weights, shape (num_candidates,)."""
        return torch.softmax(self.alpha, dim=0) if self.weighting == "softmax" else self.alpha

    def forward(self, xs: list[torch.Tensor]) -> Any:
        w = self.weights()
        outs = []
        for x in xs:
            total = None
            for i, op in enumerate(self.ops):
                term = w[i] * op([x])
                total = term if total is None else total + term
            outs.append(total)
        return outs[0] if len(outs) == 1 else tuple(outs)


class WeightedSum(nn.Module):
    """Sum of inputs with fixed weights: inputs are candidate-major groups, one output per group member.

    With ``k`` weights and ``k * L`` inputs ``[c0_l0, .., c0_l(L-1), c1_l0, ..]`` it returns ``L`` tensors
    ``sum_i w_i * c_i_l``. The display graph of a mixed op draws its candidates feeding one of these.
    """

    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.register_buffer("w", torch.tensor([float(v) for v in weights]))
        self.k = len(weights)

    def forward(self, xs: list[torch.Tensor]) -> Any:
        levels = len(xs) // self.k
        outs = []
        for level in range(levels):
            total = None
            for i in range(self.k):
                term = self.w[i] * xs[i * levels + level]
                total = term if total is None else total + term
            outs.append(total)
        return outs[0] if len(outs) == 1 else tuple(outs)


class SingleInput(nn.Module):
    """Calls a one-tensor module the way search ops are called, with a list holding one tensor."""

    def __init__(self, op: nn.Module) -> None:
        super().__init__()
        self.op = op

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.op(xs[0])
