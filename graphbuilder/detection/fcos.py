"""FCOS-style one-stage detection: the layout of predictions, target assignment, losses and decoding.

Boundary: functions from the predictor's raw output (N, P, num_classes + 5) (see the `det_predict` op) and
ground-truth boxes to losses, and from raw output to scored boxes. Geometry is in `boxes.py`.
References: FCOS (arXiv:1904.01355; centre sampling and centerness), focal loss (RetinaNet, arXiv:1708.02002),
GIoU loss (arXiv:1902.09630).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from graphbuilder.detection.boxes import batched_nms, decode_ltrb, encode_ltrb, generalized_iou, level_points
from graphbuilder.ir.errors import GraphError

MAX_LOG_DISTANCE = 8.0  # exp(8) * stride bounds a predicted distance: keeps early training finite


@dataclass(frozen=True)
class DetectionLayout:
    """Where each prediction row lives: image size, one stride per level, and the class count.

    Attributes:
        image_size: (H, W) of the network input; each must be divisible by every stride.
        strides: stride of each level, e.g. (8, 16, 32).
        num_classes: number of object classes (channels before the 5 box/centerness channels).
        size_bounds: an object goes to level l when its half-size max(w, h) / 2 lies in
            (bounds[l-1], bounds[l]]; default: twice the stride of each level but the last (unbounded), so a
            level takes objects up to four times its stride.
        center_radius: centre sampling: positives lie within radius * stride of the object centre.
    """

    image_size: tuple[int, int]
    strides: tuple[int, ...]
    num_classes: int
    size_bounds: tuple[float, ...] = field(default=())
    center_radius: float = 1.5

    def __post_init__(self) -> None:
        for s in self.strides:
            if self.image_size[0] % s or self.image_size[1] % s:
                raise GraphError(f"image size {self.image_size} is not divisible by stride {s}; resize the images "
                                 f"to a multiple of {max(self.strides)}")
        if not self.size_bounds:
            object.__setattr__(self, "size_bounds", tuple(2.0 * s for s in self.strides[:-1]))

    @property
    def level_sizes(self) -> list[tuple[int, int]]:
        """(H_l, W_l) of each level."""
        return [(self.image_size[0] // s, self.image_size[1] // s) for s in self.strides]

    @property
    def num_points(self) -> int:
        """Rows of the prediction tensor: sum over levels of H_l * W_l."""
        return sum(h * w for h, w in self.level_sizes)

    def points(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Point centres (P, 2), their strides (P,), and their level index (P,)."""
        pts, strides = level_points(self.level_sizes, self.strides)
        levels = torch.cat([torch.full((h * w,), i) for i, (h, w) in enumerate(self.level_sizes)])
        return pts, strides, levels


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
                       ) -> torch.Tensor:
    """Summed focal loss: -alpha_t (1 - p_t)^gamma log(p_t), p = sigmoid(logits), targets in {0, 1}."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * (1 - p_t) ** gamma * ce).sum()


def giou_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Summed 1 - GIoU of aligned boxes (K, 4), optionally weighted per box."""
    loss = 1 - generalized_iou(pred, target)
    return (loss * weight).sum() if weight is not None else loss.sum()


def assign(layout: DetectionLayout, boxes: torch.Tensor, labels: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """FCOS targets for one image: class per point (P,) (num_classes = background) and matched box (P, 4).

    Each object goes to one level by its half-size ``max(w, h) / 2`` (see `DetectionLayout.size_bounds`).
    Its positives are that level's points inside the box and within `center_radius` strides of its centre;
    an object left with none (its level's grid misses the box, or smaller boxes took its points) gets the
    point inside its box on the nearest level, nearest its centre, so every object is learned.
    Where objects compete for a point, the smallest box wins.
    """
    pts, strides, levels = layout.points()
    num = pts.shape[0]
    if boxes.numel() == 0:
        return torch.full((num,), layout.num_classes, dtype=torch.long), torch.zeros(num, 4)
    x, y = pts[:, 0:1], pts[:, 1:2]  # (P, 1)
    ltrb = torch.stack([x - boxes[:, 0], y - boxes[:, 1], boxes[:, 2] - x, boxes[:, 3] - y], dim=2)  # (P, G, 4)
    inside = ltrb.min(dim=2).values > 0
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    r = strides[:, None] * layout.center_radius
    near = ((x - cx).abs() < r) & ((y - cy).abs() < r)
    half = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2  # (G,)
    obj_level = torch.bucketize(half, torch.tensor(layout.size_bounds, dtype=half.dtype))  # (G,)
    fits = levels[:, None] == obj_level[None, :]  # (P, G)
    ok = inside & near & fits
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None, :].expand(num, -1)
    best_area, best = torch.where(ok, area, torch.full_like(area, math.inf)).min(dim=1)
    won = torch.zeros(len(boxes), dtype=torch.bool)
    won[best[torch.isfinite(best_area)]] = True
    if not won.all():  # objects left without a point take one: inside the box, nearest level, nearest centre
        gap = (levels[:, None] - obj_level[None, :]).abs().double()  # (P, G) levels away from the object's
        dist = ((x - cx) ** 2 + (y - cy) ** 2).double()
        far = dist.max() + 1  # ranks: level gap first, then distance; points outside the box last
        rank = torch.where(inside, gap * far + dist, (gap.max() + 1) * far + dist)
        for g in torch.nonzero(~won).flatten().tolist():
            p = int(rank[:, g].argmin())
            best[p], best_area[p] = g, area[p, g]
    cls = torch.where(torch.isfinite(best_area), labels[best], torch.full_like(best, layout.num_classes))
    return cls, boxes[best]


def centerness_target(ltrb: torch.Tensor) -> torch.Tensor:
    """sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)) for positive points (K, 4)."""
    lr, tb = ltrb[:, [0, 2]], ltrb[:, [1, 3]]
    c = (lr.min(dim=1).values / lr.max(dim=1).values) * (tb.min(dim=1).values / tb.max(dim=1).values)
    return c.clamp(min=0).sqrt()


def detection_loss(pred: torch.Tensor, targets: list[dict[str, torch.Tensor]], layout: DetectionLayout
                   ) -> dict[str, torch.Tensor]:
    """FCOS loss for a batch: focal (classes), GIoU weighted by centerness (boxes), BCE (centerness).

    `pred` is (N, P, num_classes + 5); `targets` one dict per image with ``boxes`` (G, 4) and ``labels`` (G,)
    (and optionally ``assigned``, the cached result of `assign` for that image).
    Returns ``{"loss", "cls", "box", "ctr"}``; each part is normalised by the number of positives.
    """
    n, p, c = pred.shape
    k = layout.num_classes
    if p != layout.num_points or c != k + 5:
        raise GraphError(f"predictions have shape {tuple(pred.shape)} but the layout expects (N, {layout.num_points}, "
                         f"{k + 5}); check image_size, strides and num_classes of the DetectionLayout")
    pts, strides, _ = layout.points()
    assigned = [t["assigned"] if "assigned" in t else assign(layout, t["boxes"].float(), t["labels"].long())
                for t in targets]
    cls_t = torch.stack([a[0] for a in assigned])  # (N, P)
    box_t = torch.stack([a[1] for a in assigned])  # (N, P, 4)
    onehot = F.one_hot(cls_t, k + 1)[..., :k].to(pred.dtype)
    pos = cls_t < k
    num_pos = max(float(pos.sum()), 1.0)
    cls_loss = sigmoid_focal_loss(pred[..., :k], onehot) / num_pos
    if pos.any():
        pts_pos = pts.expand(n, -1, -1)[pos]
        str_pos = strides.expand(n, -1)[pos]
        target_ltrb = encode_ltrb(pts_pos, box_t[pos], str_pos)
        ctr_t = centerness_target(target_ltrb)
        dist = pred[..., k:k + 4][pos].clamp(max=MAX_LOG_DISTANCE).exp()
        boxes = decode_ltrb(pts_pos, dist, str_pos)
        box_loss = giou_loss(boxes, box_t[pos], ctr_t) / ctr_t.sum().clamp(min=1e-6)
        ctr_loss = F.binary_cross_entropy_with_logits(pred[..., k + 4][pos], ctr_t, reduction="sum") / num_pos
    else:
        box_loss = ctr_loss = pred.sum() * 0
    return {"loss": cls_loss + box_loss + ctr_loss, "cls": cls_loss, "box": box_loss, "ctr": ctr_loss}


def decode(pred: torch.Tensor, layout: DetectionLayout, score_threshold: float = 0.05, iou_threshold: float = 0.6,
           pre_nms: int = 200, max_detections: int = 100) -> list[dict[str, torch.Tensor]]:
    """Scored boxes per image from raw predictions: score = sqrt(sigmoid(class) * sigmoid(centerness)),
    top `pre_nms` above `score_threshold`, class-wise NMS, at most `max_detections`, boxes clipped to the image.
    """
    k = layout.num_classes
    pts, strides, _ = layout.points()
    h, w = layout.image_size
    out = []
    for row in pred.detach():
        scores = (torch.sigmoid(row[:, :k]) * torch.sigmoid(row[:, k + 4:k + 5])).sqrt()  # (P, K)
        flat = scores.flatten()
        keep = torch.nonzero(flat > score_threshold).flatten()
        if keep.numel() > pre_nms:
            keep = keep[flat[keep].topk(pre_nms).indices]
        point, label = keep // k, keep % k
        dist = row[point, k:k + 4].clamp(max=MAX_LOG_DISTANCE).exp()
        boxes = decode_ltrb(pts[point], dist, strides[point])
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h), boxes[:, 2].clamp(0, w),
                             boxes[:, 3].clamp(0, h)], dim=1)
        finite = torch.isfinite(boxes).all(dim=1)
        boxes, score, label = boxes[finite], flat[keep][finite], label[finite]
        sel = batched_nms(boxes, score, label, iou_threshold)[:max_detections]
        out.append({"boxes": boxes[sel], "scores": score[sel], "labels": label[sel]})
    return out
