"""Dynamic convolution (Chen et al., arXiv:1912.03458): K kernels aggregated per sample by attention.

    pi(x)   = softmax(FC(ReLU(FC(GAP(x)))) / tau)                      (N, K), sums to 1
    W~(x)   = sum_k pi_k(x) W_k,   b~(x) = sum_k pi_k(x) b_k           one kernel per sample
    y       = conv(x, W~(x)) + b~(x)

The attention branch is the paper's: global average pooling, two fully connected layers with a ReLU between
them (hidden width max(C_in // reduction, 1)), softmax with temperature tau. Temperature annealing, the
paper's training recipe (tau from 30 down to 1 over the first epochs), is a training option: with
``anneal_steps > 0`` tau goes linearly from `temperature` to `final_temperature` over that many forward
passes in training mode, counted in the ``steps`` buffer (saved with the weights, so a resumed run continues
the schedule); eval-mode passes use the current tau and do not count.

The per-sample convolution is an im2col (``F.unfold``) followed by a batched matrix product with the
aggregated kernels. The reference trick (the batch folded into conv groups) makes a conv's group count
depend on the batch size, which ONNX cannot express with a dynamic batch; the product here costs exactly the
convolution's multiply-adds and exports everywhere. Torch-only imports: the exporter inlines this file.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DynamicConv2d(nn.Module):
    """Dynamic 2-D convolution with `num_kernels` kernels; (N, C_in, H, W) -> (N, C_out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = False, num_kernels: int = 4,
                 reduction: int = 4, temperature: float = 30.0, final_temperature: float = 1.0,
                 anneal_steps: int = 0) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.num_kernels, self.reduction = num_kernels, reduction
        self.temperature, self.final_temperature, self.anneal_steps = temperature, final_temperature, anneal_steps
        hidden = max(in_channels // reduction, 1)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, hidden),
                                       nn.ReLU(), nn.Linear(hidden, num_kernels))
        self.bias = bias
        self.kernels = nn.Parameter(torch.empty(num_kernels, out_channels, in_channels // groups, kernel_size,
                                                kernel_size))  # W_1..W_K
        self.biases = nn.Parameter(torch.zeros(num_kernels, out_channels)) if bias else None  # b_1..b_K
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        for k in range(num_kernels):  # each kernel initialised like a plain conv's
            nn.init.kaiming_uniform_(self.kernels[k], a=math.sqrt(5))

    def current_temperature(self) -> torch.Tensor:
        """tau now: `temperature` annealed linearly to `final_temperature` over `anneal_steps` training passes."""
        if self.anneal_steps <= 0:
            return torch.full((), self.temperature)
        progress = torch.clamp(self.steps.float() / self.anneal_steps, max=1.0)
        return self.temperature + (self.final_temperature - self.temperature) * progress

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """pi(x): (N, K) kernel weights, each row summing to 1."""
        return torch.softmax(self.attention(x) / self.current_temperature(), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        pi = self.attention_weights(x)  # (N, K)
        if self.training and self.anneal_steps > 0:
            self.steps.add_(1)
        g, k = self.groups, self.kernel_size
        kernels = torch.matmul(pi, self.kernels.flatten(1))  # (N, C_out * C_in/g * k * k)
        kernels = kernels.reshape(n, g, self.out_channels // g, -1)  # (N, g, C_out/g, C_in/g * k * k)
        cols = F.unfold(x, k, dilation=self.dilation, padding=self.padding, stride=self.stride)
        cols = cols.reshape(n, g, (self.in_channels // g) * k * k, -1)  # (N, g, C_in/g * k * k, L)
        out_h = (h + 2 * self.padding - self.dilation * (k - 1) - 1) // self.stride + 1
        out_w = (w + 2 * self.padding - self.dilation * (k - 1) - 1) // self.stride + 1
        y = torch.matmul(kernels, cols).reshape(n, self.out_channels, out_h, out_w)  # (N, C_out, H', W')
        if self.biases is not None:
            y = y + torch.matmul(pi, self.biases)[:, :, None, None]
        return y
