"""The multi-fiber unit of MFNet (Chen et al., arXiv:1807.11195; reference cypw/PyTorch-MFNet ``MF_UNIT``).

A residual unit whose convolutions are split into `fibers` parallel paths (group convolutions), with a
multiplexer that mixes information across fibers first. Every conv is preceded by BN and ReLU
(pre-activation), as in the reference:

    mux  = conv_i2(conv_i1(X))             1x1 convs C_in -> mid/4 -> C_in: the multiplexer
    h    = conv_m1(X + mux)                 3x3 (3-D: t x 3 x 3) grouped conv C_in -> mid, `fibers` groups, stride
    h    = conv_m2(h)                       3x3 (3-D: 1 x 3 x 3) grouped conv mid -> C_out; 1x1 in a first unit
    Y    = h + (conv_w1(X) if first unit else X)   the first unit of a stage adapts the shortcut (1x1, stride)

Works on (N, C, H, W) (2-D) and (N, C, T, H, W) (3-D) inputs; `temporal_kernel` is the reference's 3
(``use_3d``) or 1. Torch-only imports: the exporter inlines this file.
"""

from __future__ import annotations

import torch
from torch import nn


class BNReLUConv(nn.Module):
    """BN, ReLU, then a convolution (the reference's ``BN_AC_CONV3D``), 2-D or 3-D."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, ...], stride: tuple[int, ...], groups: int,
                 dims: int) -> None:
        super().__init__()
        norm, conv = (nn.BatchNorm2d, nn.Conv2d) if dims == 2 else (nn.BatchNorm3d, nn.Conv3d)
        self.bn = norm(cin)
        self.relu = nn.ReLU()
        self.conv = conv(cin, cout, kernel, stride, tuple(k // 2 for k in kernel), groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.relu(self.bn(x)))


class MultiFiberUnit(nn.Module):
    """Multi-fiber unit; `dims` 2 or 3, `stride` one int per spatial dim (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, fibers: int = 16,
                 stride: tuple[int, ...] = (1, 1), first_block: bool = False, dims: int = 2,
                 temporal_kernel: int = 3) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.mid_channels = in_channels, out_channels, mid_channels
        self.fibers, self.stride, self.first_block = fibers, tuple(stride), first_block
        self.dims, self.temporal_kernel = dims, temporal_kernel
        one = (1,) * dims
        square = (3, 3) if dims == 2 else (temporal_kernel, 3, 3)
        square2 = (3, 3) if dims == 2 else (1, 3, 3)
        self.conv_i1 = BNReLUConv(in_channels, mid_channels // 4, one, one, 1, dims)
        self.conv_i2 = BNReLUConv(mid_channels // 4, in_channels, one, one, 1, dims)
        self.conv_m1 = BNReLUConv(in_channels, mid_channels, square, self.stride, fibers, dims)
        if first_block:
            self.conv_m2 = BNReLUConv(mid_channels, out_channels, one, one, 1, dims)
            self.conv_w1: BNReLUConv | None = BNReLUConv(in_channels, out_channels, one, self.stride, 1, dims)
        else:
            self.conv_m2 = BNReLUConv(mid_channels, out_channels, square2, one, fibers, dims)
            self.conv_w1 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_m2(self.conv_m1(x + self.conv_i2(self.conv_i1(x))))
        shortcut = self.conv_w1(x) if self.conv_w1 is not None else x
        return h + shortcut
