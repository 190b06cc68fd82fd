"""Dynamic ReLU (Chen et al., arXiv:2003.10027): a piecewise-linear activation whose K pieces depend on the input.

    y_c = max_k ( a_c^k(x) x_c + b_c^k(x) )

The coefficients come from a hyper function of the whole input: global average pooling, FC (C -> C/R), ReLU,
FC (-> 2K per coefficient set), then 2 sigmoid - 1 (the residuals in [-1, 1]), and finally

    a^k = alpha^k + lambda_a * residual_a^k,   b^k = beta^k + lambda_b * residual_b^k

with alpha^1 = 1 and every other alpha^k and beta^k = 0, lambda_a = 1.0, lambda_b = 0.5: at a zero
residual the activation is the ReLU (K = 2).

Variants:
    A  spatial- and channel-shared: one set of 2K coefficients per sample        (FC -> 2K)
    B  channel-wise: 2K coefficients per channel                                 (FC -> 2KC)
    C  spatial- and channel-wise: B's coefficients times a spatial attention
       pi_hw = min(gamma * softmax_hw(conv1x1(x) / tau), 1), gamma = spatial_gamma * H W
       (the paper's tau = 10 and gamma = HW/3), so a_chw = pi_hw a_c and b_chw = pi_hw b_c.
Torch-only imports: the exporter inlines this file.
"""

from __future__ import annotations

import torch
from torch import nn

VARIANTS = ("A", "B", "C")


class DyReLU(nn.Module):
    """Dynamic ReLU on (N, C, H, W) inputs, variant "A", "B" or "C" (see the module docstring)."""

    def __init__(self, in_channels: int, variant: str = "B", num_pieces: int = 2, reduction: int = 8,
                 lambda_a: float = 1.0, lambda_b: float = 0.5, temperature: float = 10.0,
                 spatial_gamma: float = 1.0 / 3.0) -> None:
        super().__init__()
        self.in_channels, self.variant, self.num_pieces, self.reduction = in_channels, variant, num_pieces, reduction
        self.lambda_a, self.lambda_b = lambda_a, lambda_b
        self.temperature, self.spatial_gamma = temperature, spatial_gamma
        sets = 1 if variant == "A" else in_channels  # coefficient sets: one per sample (A) or per channel
        hidden = max(in_channels // reduction, 1)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 2 * num_pieces * sets)
        self.spatial = nn.Conv2d(in_channels, 1, 1) if variant == "C" else None
        scale = torch.tensor([lambda_a] * num_pieces + [lambda_b] * num_pieces)
        init = torch.zeros(2 * num_pieces)
        init[0] = 1.0  # alpha^1 = 1: the activation starts as the ReLU
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("init", init, persistent=False)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """(N, S, 2K): a^1..a^K then b^1..b^K per coefficient set (S = 1 for variant A, else C)."""
        n = x.shape[0]
        theta = self.fc2(self.relu(self.fc1(x.mean(dim=(2, 3)))))  # (N, 2K S)
        residual = 2.0 * torch.sigmoid(theta) - 1.0
        return residual.reshape(n, -1, 2 * self.num_pieces) * self.scale + self.init  # (N, S, 2K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        coef = self.coefficients(x)[:, :, None, None, :]  # (N, S, 1, 1, 2K)
        a, b = coef[..., : self.num_pieces], coef[..., self.num_pieces:]
        if self.spatial is not None:
            z = self.spatial(x).reshape(n, h * w) / self.temperature
            pi = torch.softmax(z, dim=1) * (self.spatial_gamma * h * w)
            pi = torch.clamp(pi, max=1.0).reshape(n, 1, h, w, 1)  # (N, 1, H, W, 1)
            a, b = a * pi, b * pi
        return torch.amax(x[..., None] * a + b, dim=-1)  # (N, C, H, W)
