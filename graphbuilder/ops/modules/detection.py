"""Torch module of the one-stage detection predictor (FCOS-style outputs, shared over FPN levels).

Boundary: plain torch only (imports torch, math, typing), so the standalone exporter can inline it. The op
declaration is in `graphbuilder/ops/detection.py`; decoding, losses and NMS are in `graphbuilder.detection`.
References: FCOS (arXiv:1904.01355) for the outputs, RetinaNet (arXiv:1708.02002) for the prior bias.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class DetectionPredictor(nn.Module):
    """Shared 3x3 convs for class logits, box distances (l, t, r, b) and centerness on every level.

    ``forward(xs)`` takes the head's feature maps, one per level (N, C, H_l, W_l), and returns one tensor
    (N, sum_l H_l * W_l, num_classes + 5): levels in order, positions row-major, channels
    ``[class logits..., l, t, r, b, centerness]``. Box channels are raw: ``distance = exp(v) * stride``.
    """

    def __init__(self, in_channels: int, num_classes: int, prior: float = 0.01) -> None:
        super().__init__()
        self.cls = nn.Conv2d(in_channels, num_classes, 3, padding=1)
        self.box = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.ctr = nn.Conv2d(in_channels, 1, 3, padding=1)
        for conv in (self.cls, self.box, self.ctr):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.cls.bias, -math.log((1 - prior) / prior))  # focal-loss prior (RetinaNet)

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        outs = []
        for x in xs:
            y = torch.cat([self.cls(x), self.box(x), self.ctr(x)], dim=1)  # (N, K + 5, H, W)
            outs.append(y.flatten(2).transpose(1, 2))  # (N, H * W, K + 5)
        return torch.cat(outs, dim=1)
