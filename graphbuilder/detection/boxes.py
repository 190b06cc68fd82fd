"""Box geometry for one-stage detection: areas, IoU, GIoU, points per FPN level, (l, t, r, b) coding, NMS.

Boundary: pure torch functions on (x1, y1, x2, y2) boxes in pixels; no model, no data. Slow brute-force
versions used to test these live in `graphbuilder.detection.reference`. References: FCOS (arXiv:1904.01355)
for points and distance coding; GIoU (arXiv:1902.09630); greedy NMS as in Faster R-CNN (arXiv:1506.01497).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Areas of (K, 4) boxes; degenerate boxes (x2 < x1) have area 0."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (A, B) of boxes a (A, 4) and b (B, 4); 0 where the union is empty."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])  # (A, B, 2)
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)  # (A, B)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def generalized_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Elementwise GIoU of aligned boxes a (K, 4) and b (K, 4): IoU - (hull - union) / hull, in [-1, 1]."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    union = box_area(a) + box_area(b) - inter
    iou = inter / union.clamp(min=1e-7)
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).clamp(min=0).prod(dim=1)
    return iou - (hull - union) / hull.clamp(min=1e-7)


def level_points(sizes: Sequence[tuple[int, int]], strides: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres of every feature-map cell, level after level, row-major: points (P, 2) as (x, y) and
    the stride of each point (P,). Cell (i, j) of a stride-s level has centre ((j + 0.5) s, (i + 0.5) s)."""
    points, point_strides = [], []
    for (h, w), s in zip(sizes, strides, strict=True):
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        points.append(torch.stack([(xs.flatten() + 0.5) * s, (ys.flatten() + 0.5) * s], dim=1))
        point_strides.append(torch.full((h * w,), float(s)))
    return torch.cat(points), torch.cat(point_strides)


def encode_ltrb(points: torch.Tensor, boxes: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Distances from points (P, 2) to the sides of boxes (P, 4), divided by the stride: (P, 4) l, t, r, b."""
    ltrb = torch.cat([points - boxes[:, :2], boxes[:, 2:] - points], dim=1)
    return ltrb / strides[:, None]


def decode_ltrb(points: torch.Tensor, ltrb: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Inverse of `encode_ltrb`: boxes (P, 4) from points (P, 2) and stride-normalised distances (P, 4)."""
    d = ltrb * strides[:, None]
    return torch.cat([points - d[:, :2], points + d[:, 2:]], dim=1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices of kept boxes, by decreasing score.

    A box is dropped when its IoU with a kept, higher-scoring box is above `iou_threshold`. Ties in score keep
    the lower index first (a stable sort), like the brute-force reference. One IoU matrix is computed up
    front; the loop runs once per kept box.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes[order], boxes[order])  # (K, K) in score order
    alive = torch.ones(len(order), dtype=torch.bool)
    keep = []
    i = 0
    n = len(order)
    while i < n:
        keep.append(i)
        alive &= ~(iou[i] > iou_threshold)
        alive[: i + 1] = False
        rest = torch.nonzero(alive)
        if rest.numel() == 0:
            break
        i = int(rest[0])
    return order[torch.tensor(keep, dtype=torch.long)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each class: boxes of different labels never suppress each other. Returns kept indices,
    by decreasing score. Implemented by shifting each class's boxes to a disjoint region, then one `nms`."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long)
    span = boxes.max() - boxes.min() + 1
    shifted = boxes + (labels.to(boxes.dtype) * span)[:, None]
    return nms(shifted, scores, iou_threshold)
