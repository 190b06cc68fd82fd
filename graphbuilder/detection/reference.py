"""Brute-force references for box IoU and NMS: plain Python loops over boxes, obviously correct and slow.

Boundary: used by the tests (agreement on random boxes) and by benchmarks/bench_trinity.py (speed ratio);
never by training or inference code.
"""

from __future__ import annotations

import torch


def iou_pair(a: list[float], b: list[float]) -> float:
    """IoU of two boxes given as [x1, y1, x2, y2] lists."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def box_iou_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU by a double loop over boxes."""
    la, lb = a.tolist(), b.tolist()
    return torch.tensor([[iou_pair(x, y) for y in lb] for x in la], dtype=torch.float64).reshape(len(la), len(lb))


def nms_reference(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy NMS by the textbook loop: visit boxes by decreasing score (ties: lower index first); keep a box
    unless a kept box of the same label overlaps it with IoU above the threshold."""
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i))
    b = boxes.tolist()
    lab = labels.tolist() if labels is not None else [0] * len(b)
    kept: list[int] = []
    for i in order:
        if all(lab[j] != lab[i] or iou_pair(b[i], b[j]) <= iou_threshold for j in kept):
            kept.append(i)
    return torch.tensor(kept, dtype=torch.long)
