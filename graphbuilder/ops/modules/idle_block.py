"""IdleBlock (Xu et al., "Hybrid Composition with IdleBlock", arXiv:1911.08609): part of the channels idle.

A fraction `idle_ratio` of the input channels passes through untouched; the rest go through an inverted
bottleneck (MobileNetV2 style: 1x1 expand, BN, ReLU6, k x k depthwise, BN, ReLU6, 1x1 project, BN):

    idle   = X[:, :I]                  I = int(idle_ratio C) channels, copied
    active = X[:, I:]                  C - I channels
    Y      = cat(F(active), idle)      the computed channels first, the idle ones last

Where the paper leaves the layout open, this module chooses: the idle channels are the first I of the input
and the last I of the output, so in a chain of IdleBlocks a channel that idled in one block is computed in
the next (for idle_ratio <= 0.5); the transform reads only the active channels (the pruned connections) and
has no residual of its own (the idle channels are the identity path). Torch-only imports.
"""

from __future__ import annotations

import torch
from torch import nn


def idle_channels(channels: int, idle_ratio: float) -> int:
    """Channels that pass through untouched: int(idle_ratio C)."""
    return int(idle_ratio * channels)


class IdleBlock(nn.Module):
    """IdleBlock on (N, C, H, W) -> (N, C, H, W); see the module docstring."""

    def __init__(self, in_channels: int, idle_ratio: float = 0.5, expansion: int = 6, kernel_size: int = 3) -> None:
        super().__init__()
        self.in_channels, self.idle_ratio, self.expansion, self.kernel_size = (in_channels, idle_ratio, expansion,
                                                                               kernel_size)
        self.idle = idle_channels(in_channels, idle_ratio)
        active = in_channels - self.idle
        hidden = active * expansion
        self.transform = nn.Sequential(
            nn.Conv2d(active, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, active, 1, bias=False), nn.BatchNorm2d(active))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.transform(x[:, self.idle:]), x[:, : self.idle]], dim=1)
