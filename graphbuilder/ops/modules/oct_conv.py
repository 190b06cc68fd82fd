"""Octave convolution (Chen et al., "Drop an Octave", arXiv:1904.05049): one torch module, torch-only imports.

A feature map with C channels is stored as two tensors: a high-frequency part with C - int(alpha C) channels
at full resolution and a low-frequency part with int(alpha C) channels at half resolution. An octave
convolution updates both and exchanges information between them with four ordinary convolutions:

    Y_high = conv_hh(X_high) + upsample(conv_lh(X_low))       upsample: nearest, x2
    Y_low  = conv_ll(X_low)  + conv_hl(avgpool(X_high))        avgpool: 2x2, stride 2

The first form (alpha_in = 0) takes one full-resolution tensor and makes both parts; the last form
(alpha_out = 0) takes both parts and returns one full-resolution tensor. Stride 2 average-pools the inputs
first (as the reference code does instead of striding the kernels). Depthwise octave convolution
(groups = in_channels = out_channels) keeps the two paths apart, as the reference's depthwise case.

The module takes a list of tensors ``[high]`` or ``[high, low]`` and returns a list ``[high]`` or
``[high, low]``, so one class covers every form with fixed TorchScript types.
Parameters equal a plain convolution's: the four kernels partition the (out x in) kernel matrix, and a
bias, when asked for, is added once per output channel (on the high->high and low->low paths).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def low_channels(channels: int, alpha: float) -> int:
    """Low-frequency channels of a `channels`-wide map with ratio `alpha` (the reference's int(alpha C))."""
    return int(alpha * channels)


class OctConv2d(nn.Module):
    """Octave convolution over ``[high]`` or ``[high, low]`` (N, C, H, W) inputs; see the module docstring."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, alpha_in: float = 0.5,
                 alpha_out: float = 0.5, stride: int = 1, padding: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.alpha_in, self.alpha_out, self.stride, self.padding = alpha_in, alpha_out, stride, padding
        self.groups, self.bias = groups, bias
        in_l, out_l = low_channels(in_channels, alpha_in), low_channels(out_channels, alpha_out)
        in_h, out_h = in_channels - in_l, out_channels - out_l
        depthwise = groups > 1 and groups == in_channels == out_channels

        def conv(cin: int, cout: int, with_bias: bool, g: int) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, kernel_size, 1, padding, groups=g, bias=with_bias)

        self.conv_hh = conv(in_h, out_h, bias, in_h if depthwise else groups)
        self.conv_ll = conv(in_l, out_l, bias, in_l if depthwise else groups) if in_l and out_l else None
        cross = not depthwise
        self.conv_hl = conv(in_h, out_l, bias and not in_l, groups) if out_l and cross else None
        self.conv_lh = conv(in_l, out_h, False, groups) if in_l and cross else None

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        high = inputs[0]  # (N, C_h, H, W)
        if self.stride == 2:
            high = F.avg_pool2d(high, 2, 2)
        y_high = self.conv_hh(high)
        low = inputs[1] if len(inputs) > 1 else None  # (N, C_l, H/2, W/2)
        if low is not None and self.stride == 2:
            low_in = F.avg_pool2d(low, 2, 2)
        else:
            low_in = low
        if self.conv_lh is not None and low is not None:
            from_low = self.conv_lh(low)  # at half resolution: the high output's size when striding
            if self.stride == 1:
                from_low = F.interpolate(from_low, scale_factor=2.0, mode="nearest")
            y_high = y_high + from_low
        if self.conv_hl is None and self.conv_ll is None:
            return [y_high]
        y_low: torch.Tensor | None = None
        if self.conv_ll is not None and low_in is not None:
            y_low = self.conv_ll(low_in)
        if self.conv_hl is not None:
            from_high = self.conv_hl(F.avg_pool2d(high, 2, 2))
            y_low = from_high if y_low is None else y_low + from_high
        assert y_low is not None
        return [y_high, y_low]
