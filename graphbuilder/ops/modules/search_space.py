"""Torch modules of the Hit-Detector search space: MBConv, separable dilated conv, 1x1 conv, skip, mixed op.

Boundary: plain torch only (imports torch, math, typing), so the standalone exporter can inline this file's
source and compiled models need no GraphBuilder. The op declarations that wrap these classes live in
`graphbuilder/ops/search_space.py`.

The blocks follow the released Hit-Detector code (ggjy/HitDet.pytorch, necks/auto_neck/hit_ops.py and
bbox_heads/auto_head/mbblock_ops.py; paper arXiv:2003.11818):

* ``ir_k{k}_e{e}`` (MBConv, FBNet/MobileNetV2 inverted residual): 1x1 expand to ``C*e`` (no bias), norm, ReLU,
  depthwise kxk (optional dilation, no bias), norm, ReLU, 1x1 project (no bias), norm; residual when
  `residual` is set and the output shape equals the input shape (same channels and stride 1).
* ``sd_k{k}_d{d}`` (separable dilated): depthwise kxk dilation d (no bias), norm, ReLU, 1x1 (no bias), norm;
  residual as above.
* ``conv_1x1``: 1x1 conv with bias, then norm (no ReLU), as the reference `ConvBlock`.
* ``skip``: identity; when channels or stride change, 1x1 conv (no bias), norm, ReLU (FBNet's `Identity`).

Every norm is `BatchNorm2d` (``norm="batch"``) or `GroupNorm` (``norm="group"``, gcd(C, 8) groups of at least
2 channels: the FCOS head's choice, whose statistics do not mix the pyramid levels a shared head sees), with
learnable scale and shift unless ``affine=False``. Searches build their candidates without them:
``w_i * f_i(x)`` with an affine last norm is the same function as ``(w_i c) (f_i(x) / c)``, so the architecture
weight could trade against the norm's scale (DARTS, arXiv:1806.09055, searches with affine-free BN for this
reason).

Every block is *shared over its inputs*: called with several tensors (e.g. the FPN levels) the same weights
process each one and a tuple is returned, one output per input. That is how the shared detection head of
RetinaNet/FCOS is expressed with one graph node per searched position.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

SEARCH_OPS = (
    "ir_k3_e3", "ir_k3_e6", "ir_k5_e3", "ir_k5_e6", "ir_k7_e3", "ir_k7_e6",
    "sd_k3_d1", "sd_k3_d2", "sd_k3_d3", "sd_k5_d1", "sd_k5_d2", "sd_k5_d3",
    "conv_1x1", "skip",
)
NORMS = ("batch", "group")
MAX_GROUPS = 8  # GroupNorm groups: gcd(channels, 8), halved until each group has 2 channels


def group_count(channels: int) -> int:
    """GroupNorm groups for `channels`: gcd(channels, 8), halved while a group would hold a single channel (a
    1x1 map would then normalise single values)."""
    groups = math.gcd(channels, MAX_GROUPS)
    while groups > 1 and channels // groups < 2:
        groups //= 2
    return groups


def norm_layer(kind: str, channels: int, affine: bool = True) -> nn.Module:
    """`BatchNorm2d` or `GroupNorm` (`group_count` groups) over `channels`."""
    if kind == "group":
        return nn.GroupNorm(group_count(channels), channels, affine=affine)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=affine)
    raise ValueError(f"norm={kind!r}: choose from {NORMS}")


class _SharedOverInputs(nn.Module):
    """Base: ``forward(xs)`` applies `block` to every tensor of the list `xs`, sharing weights."""

    def block(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, C', H', W')
        raise NotImplementedError

    def forward(self, xs: list[torch.Tensor]) -> Any:
        outs = [self.block(x) for x in xs]
        return outs[0] if len(outs) == 1 else tuple(outs)


def _conv_norm(cin: int, cout: int, k: int, norm: str, affine: bool, stride: int = 1, dilation: int = 1,
               groups: int = 1, relu: bool = True, bias: bool = False) -> nn.Sequential:
    pad = (k - 1) * dilation // 2
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation,
                                         groups=groups, bias=bias), norm_layer(norm, cout, affine)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MBConv(_SharedOverInputs):
    """Inverted residual: 1x1 expand, norm, ReLU, depthwise kxk, norm, ReLU, 1x1 project, norm (+ x)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, expansion: int = 6,
                 stride: int = 1, dilation: int = 1, residual: bool = True, norm: str = "batch",
                 affine: bool = True) -> None:
        super().__init__()
        mid = in_channels * expansion
        self.expand = _conv_norm(in_channels, mid, 1, norm, affine)
        self.depthwise = _conv_norm(mid, mid, kernel_size, norm, affine, stride=stride, dilation=dilation,
                                    groups=mid)
        self.project = _conv_norm(mid, out_channels, 1, norm, affine, relu=False)
        self.residual = residual and in_channels == out_channels and stride == 1

    def block(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))  # (N, C_out, H/s, W/s)
        return out + x if self.residual else out


class SepConv(_SharedOverInputs):
    """Separable dilated conv: depthwise kxk (dilation d), norm, ReLU, 1x1, norm (+ x)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 stride: int = 1, residual: bool = True, norm: str = "batch", affine: bool = True) -> None:
        super().__init__()
        self.depthwise = _conv_norm(in_channels, in_channels, kernel_size, norm, affine, stride=stride,
                                    dilation=dilation, groups=in_channels)
        self.pointwise = _conv_norm(in_channels, out_channels, 1, norm, affine, relu=False)
        self.residual = residual and in_channels == out_channels and stride == 1

    def block(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.depthwise(x))
        return out + x if self.residual else out


class Conv1x1(_SharedOverInputs):
    """1x1 conv (with bias) then norm, no activation: the reference `conv_1x1` ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, norm: str = "batch",
                 affine: bool = True) -> None:
        super().__init__()
        self.conv = _conv_norm(in_channels, out_channels, 1, norm, affine, stride=stride, relu=False, bias=True)

    def block(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Skip(_SharedOverInputs):
    """Identity; a 1x1 conv, norm, ReLU when the channels or the stride change (FBNet's Identity)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, norm: str = "batch",
                 affine: bool = True) -> None:
        super().__init__()
        self.conv = (_conv_norm(in_channels, out_channels, 1, norm, affine, stride=stride)
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


def build_candidate(name: str, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                    residual: bool = True, norm: str = "batch", affine: bool = True) -> nn.Module:
    """The module for search op `name` (`dilation` applies to ``ir_*`` ops, `residual` to ``ir_*`` and
    ``sd_*``; ``sd_*`` carry their own dilation)."""
    spec = parse_candidate(name)
    family = spec["family"]
    if family == "ir":
        return MBConv(in_channels, out_channels, spec["kernel_size"], spec["expansion"], stride, dilation, residual,
                      norm, affine)
    if family == "sd":
        return SepConv(in_channels, out_channels, spec["kernel_size"], spec["dilation"], stride, residual, norm,
                       affine)
    if family == "conv_1x1":
        return Conv1x1(in_channels, out_channels, stride, norm, affine)
    return Skip(in_channels, out_channels, stride, norm, affine)


class MixedOp(nn.Module):
    """A searched position: ``sum_i w_i * op_i(x)`` over candidate ops, ``w = softmax(alpha)`` or ``alpha``.

    `candidates` is a list of ``(name, extra_kwargs)``; `alpha` holds the architecture weights (a trainable
    parameter named ``alpha``). `modules` gives, per candidate, a module already built (any registered op,
    wrapped in `SingleInput`) or None for a search op built here. ``weighting="linear"`` uses alpha as is
    (for group-sparse screening, where a weight must be able to reach exactly zero); ``"softmax"`` is the
    DARTS relaxation.

    Search-op candidates run without their own residual: at a shape-preserving position the identity belongs
    outside the mixture, ``x + sum_i w_i f_i(x)`` (the detector builder adds it as a graph node). Inside, every
    candidate would carry the same ``x``: with linear weights it would be scaled by ``sum(alpha)`` and shrink
    under the sparsity step, with softmax it would hide the candidates' differences from the alpha gradient.
    Their norms are `norm` layers, affine only with `affine`.

    `drop(i)` removes candidate i from the mixture (progressive shrinking): it is no longer computed, and the
    softmax runs over the remaining candidates.
    """

    def __init__(self, in_channels: int, out_channels: int, candidates: list[tuple[str, dict[str, Any]]],
                 alpha: list[float], stride: int = 1, weighting: str = "softmax", norm: str = "batch",
                 affine: bool = False, modules: list[nn.Module | None] | None = None) -> None:
        super().__init__()
        self.names = [name for name, _ in candidates]
        built = modules or [None] * len(candidates)  # candidates other than search ops come built
        self.ops = nn.ModuleList(module if module is not None else
                                 build_candidate(name, in_channels, out_channels, stride, residual=False, norm=norm,
                                                 affine=affine, **extra)
                                 for (name, extra), module in zip(candidates, built, strict=True))
        self.alpha = nn.Parameter(torch.tensor([float(a) for a in alpha]))
        self.weighting = weighting
        self.active = [True] * len(self.ops)

    def drop(self, index: int) -> None:
        """Remove candidate `index` from the mixture (at least one candidate stays)."""
        if sum(self.active) <= 1 and self.active[index]:
            raise ValueError("cannot drop the last active candidate of a mixed op")
        self.active[index] = False

    def weights(self) -> torch.Tensor:
        """The mixing weights, shape (num_candidates,); dropped candidates weigh 0."""
        mask = torch.tensor(self.active, device=self.alpha.device)
        if self.weighting == "softmax":
            return torch.softmax(self.alpha.masked_fill(~mask, float("-inf")), dim=0)
        return self.alpha * mask

    def forward(self, xs: list[torch.Tensor]) -> Any:
        w = self.weights()
        outs = []
        for x in xs:
            total = None
            for i, op in enumerate(self.ops):
                if self.active[i]:
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
