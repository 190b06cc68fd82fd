"""The lightweight non-local block of AutoNL (Li et al., arXiv:2004.01961; reference LiYingwei/AutoNL).

The non-local operation without its embedding convs and softmax, on a subsample of channels and positions:

    theta = X[:, :rC]                     (N, rC, L)   the first r C channels, all L = H W positions
    phi   = X[:, :rC, ::s, ::s]           (N, rC, L')  the same channels, positions strided by s
    g     = X[:, :, ::s, ::s]             (N, C, L')   all channels, strided positions
    f     = theta^T phi g^T / (H W)       (N, L, C)    computed in whichever order needs fewer
                                                       multiply-adds, as the reference does
    Y     = X + BN(dwconv3x3(f))          depthwise 3x3 conv without bias, BN (weight 0 at init with
                                          `zero_init`, so the block starts as the identity)

r is `ratio` (the channel subsampling), s is `stride` (the spatial subsampling). The division is by H W,
not L', as in the reference. Torch-only imports: the exporter inlines this file.
"""

from __future__ import annotations

import torch
from torch import nn


def light_nl_macs(channels: int, height: int, width: int, ratio: float, stride: int) -> int:
    """Multiply-adds of the affinity products per sample, in the cheaper order (the reference's count)."""
    length = height * width
    reduced = ((height + stride - 1) // stride) * ((width + stride - 1) // stride)
    sub = int(ratio * channels)
    positions_first = length * reduced * (sub + channels)
    channels_first = reduced * sub * channels + length * sub * channels
    return min(positions_first, channels_first)


class LightNL(nn.Module):
    """Lightweight non-local block on (N, C, H, W); see the module docstring."""

    def __init__(self, in_channels: int, ratio: float = 0.25, stride: int = 2, zero_init: bool = True) -> None:
        super().__init__()
        self.in_channels, self.ratio, self.stride, self.zero_init = in_channels, ratio, stride, zero_init
        self.sub = int(ratio * in_channels)
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.bn = nn.BatchNorm2d(in_channels)
        if zero_init:
            nn.init.zeros_(self.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        reduced = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        theta = x[:, : self.sub].reshape(n, self.sub, h * w)  # (N, rC, L)
        phi = reduced[:, : self.sub].reshape(n, self.sub, -1)  # (N, rC, L')
        g = reduced.reshape(n, c, -1)  # (N, C, L')
        length, sub = h * w, self.sub
        positions = phi.shape[2]
        if length * positions * (sub + c) < positions * sub * c + length * sub * c:
            f = torch.bmm(torch.bmm(theta.transpose(1, 2), phi), g.transpose(1, 2))  # (N, L, L') then (N, L, C)
        else:
            f = torch.bmm(theta.transpose(1, 2), torch.bmm(phi, g.transpose(1, 2)))  # (N, rC, C) then (N, L, C)
        f = (f / (h * w)).transpose(1, 2).reshape(n, c, h, w)
        return x + self.bn(self.conv(f))
