"""MicroNet's operators (Li et al., arXiv:2011.12289; ICCV version arXiv:2108.05894; code liyunsheng13/micronet).

Micro-factorized convolution trades connectivity for width:
    pointwise  W = P Phi Q^T: Q a group conv C_in -> C_in/R with G groups, Phi a channel shuffle, P a group
               conv C_in/R -> C_out with G groups. Each output sees C_in/G^2 ... C_in inputs through
               the shuffle, at (C_in C_in/R + C_in/R C_out) / G weights.
    depthwise  a k x k depthwise conv factorized into a k x 1 depthwise conv then a 1 x k depthwise conv;
               the k x 1 conv may multiply the channels (`expansion`), the 1 x k conv by C_out / (C_in e).
With `batch_norm` each factor is followed by batch norm, as in the reference blocks.

Dynamic Shift-Max fuses each channel with its circular shift, with coefficients from the input:
    y_i = max_{k <= K} ( a_k,1(x) x_i + a_k,2(x) x_shift(i) )
where x_shift moves every channel one group along (G groups) and one place within its group, as the
reference code's index does, and the 2K coefficient maps per channel come from GAP, FC (C -> squeeze), ReLU,
FC (-> 2KC), h-sigmoid, rescaled to [-act_max, act_max] and offset by `init_a` / `init_b`
(squeeze = C / reduction rounded to a multiple of 4, at least 4, as the reference).
Torch-only imports: the exporter inlines this file.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def squeeze_channels(channels: int, reduction: int) -> int:
    """Hidden width of Dynamic Shift-Max's FC: channels // reduction rounded to a multiple of 4, at least 4.

    The reference's ``_make_divisible(v, 4)``: round to the nearest multiple of 4, and up by 4 when rounding
    lost more than 10%.
    """
    v = channels // reduction
    rounded = max(4, int(v + 2) // 4 * 4)
    if rounded < 0.9 * v:
        rounded += 4
    return rounded


class ChannelShuffle(nn.Module):
    """Channel shuffle (ShuffleNet): (N, g * m, H, W) viewed (N, g, m, H, W), transposed to (N, m, g, H, W)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MicroFactorizedConv2d(nn.Module):
    """Micro-factorized pointwise or depthwise convolution on (N, C, H, W) (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, kind: str = "pointwise", groups: int = 2,
                 reduction: int = 2, kernel_size: int = 3, stride: int = 1, expansion: int = 1,
                 batch_norm: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kind, self.groups = in_channels, out_channels, kind, groups
        self.reduction, self.kernel_size, self.stride, self.expansion = reduction, kernel_size, stride, expansion
        self.batch_norm = batch_norm
        if kind == "pointwise":
            hidden = in_channels // reduction
            first = nn.Conv2d(in_channels, hidden, 1, groups=groups, bias=False)
            second = nn.Conv2d(hidden, out_channels, 1, groups=groups, bias=False)
            middle: nn.Module = ChannelShuffle(groups)
        else:
            k, pad, hidden = kernel_size, kernel_size // 2, in_channels * expansion
            first = nn.Conv2d(in_channels, hidden, (k, 1), (stride, 1), (pad, 0), groups=in_channels, bias=False)
            second = nn.Conv2d(hidden, out_channels, (1, k), (1, stride), (0, pad), groups=hidden, bias=False)
            middle = nn.Identity()
        layers = [first, nn.BatchNorm2d(hidden) if batch_norm else nn.Identity(), middle, second]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DynamicShiftMax(nn.Module):
    """Dynamic Shift-Max on (N, C, H, W) with `groups` channel groups and `fusions` (K) maxed fusions."""

    def __init__(self, in_channels: int, groups: int = 2, reduction: int = 4, fusions: int = 2, act_max: float = 2.0,
                 init_a: tuple[float, float] = (1.0, 0.0), init_b: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__()
        self.in_channels, self.groups, self.reduction, self.fusions = in_channels, groups, reduction, fusions
        self.act_max, self.init_a, self.init_b = act_max, tuple(init_a), tuple(init_b)
        squeeze = squeeze_channels(in_channels, reduction)
        self.fc = nn.Sequential(nn.Linear(in_channels, squeeze), nn.ReLU(),
                                nn.Linear(squeeze, 2 * fusions * in_channels))

    def shifted(self, x: torch.Tensor) -> torch.Tensor:
        """x with channel (i, j) (group i, place j) replaced by channel (i + 1 mod G, j + 1 mod C/G)."""
        n, c, h, w = x.shape
        grouped = x.reshape(n, self.groups, c // self.groups, h, w)
        return torch.roll(grouped, shifts=(-1, -1), dims=(1, 2)).reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, _, _ = x.shape
        y = F.hardsigmoid(self.fc(x.mean(dim=(2, 3))))  # (N, 2 K C) in [0, 1]
        y = ((y - 0.5) * (2.0 * self.act_max)).reshape(n, 2 * self.fusions, c, 1, 1)
        x2 = self.shifted(x)
        out = x * (y[:, 0] + self.init_a[0]) + x2 * (y[:, 1] + self.init_b[0])
        if self.fusions == 2:
            out = torch.maximum(out, x * (y[:, 2] + self.init_a[1]) + x2 * (y[:, 3] + self.init_b[1]))
        return out
