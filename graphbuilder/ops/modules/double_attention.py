"""The double attention block of A^2-Nets (Chen et al., arXiv:1810.11579): gather, then distribute.

For X (N, C, H, W) with L = H W positions:

    A = conv_a(X)   (N, c_m, L)  features                         1x1 convs with bias
    B = conv_b(X)   (N, c_n, L)  attention maps: softmax over the L positions, one per map
    V = conv_v(X)   (N, c_n, L)  attention vectors: softmax over the c_n maps, one per position
    G = A softmax_L(B)^T         (N, c_m, c_n)  gather: c_n global descriptors (second-order pooling)
    Z = G softmax_n(V)           (N, c_m, L)    distribute: each position mixes the descriptors
    Y = conv_out(Z) (+ X)        (N, C, H, W)   1x1 conv back to C channels, added to X when `residual`

Softmax dimensions follow the paper (Eq. 4 and 5); some public re-implementations normalise V over positions
instead, which makes the distribution step a second pooling. Torch-only imports: the exporter inlines this file.
"""

from __future__ import annotations

import torch
from torch import nn


class DoubleAttention(nn.Module):
    """A^2 double attention on (N, C, H, W) with `c_m` feature and `c_n` attention channels."""

    def __init__(self, in_channels: int, c_m: int, c_n: int, residual: bool = True) -> None:
        super().__init__()
        self.in_channels, self.c_m, self.c_n, self.residual = in_channels, c_m, c_n, residual
        self.conv_a = nn.Conv2d(in_channels, c_m, 1)
        self.conv_b = nn.Conv2d(in_channels, c_n, 1)
        self.conv_v = nn.Conv2d(in_channels, c_n, 1)
        self.conv_out = nn.Conv2d(c_m, in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        a = self.conv_a(x).reshape(n, self.c_m, h * w)  # (N, c_m, L)
        maps = torch.softmax(self.conv_b(x).reshape(n, self.c_n, h * w), dim=2)  # (N, c_n, L), over positions
        vectors = torch.softmax(self.conv_v(x).reshape(n, self.c_n, h * w), dim=1)  # (N, c_n, L), over maps
        descriptors = torch.bmm(a, maps.transpose(1, 2))  # (N, c_m, c_n): gather
        z = torch.bmm(descriptors, vectors).reshape(n, self.c_m, h, w)  # (N, c_m, H, W): distribute
        y = self.conv_out(z)
        return x + y if self.residual else y
