"""COCO-style detection metrics through pycocotools (the official evaluator, not a re-implementation).

Boundary: turns decoded detections (see `fcos.decode`) and a COCO-format ground truth into AP numbers, and
runs a compiled detector over a `CocoDetection` dataset to get them. Reference: COCO detection evaluation,
Lin et al. 2014 (arXiv:1405.0312); pycocotools' COCOeval.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Sequence
from typing import Any

import torch

from graphbuilder.detection.fcos import DetectionLayout, decode

STAT_NAMES = ("mAP", "mAP50", "mAP75", "mAP_small", "mAP_medium", "mAP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def coco_map(ground_truth: dict[str, Any], detections: list[dict[str, Any]]) -> dict[str, float]:
    """The 12 COCOeval bbox statistics (``mAP`` = AP@[.5:.95], ``mAP50``, ...) of `detections`.

    `ground_truth` is a COCO-format dict (images, annotations, categories); `detections` a list of
    ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``. No detections gives all zeros.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not detections:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(ground_truth)
        gt.dataset.setdefault("info", {})
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(detections))
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: max(float(v), 0.0) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}


def level_ap(ground_truth: dict[str, Any], detections: list[dict[str, Any]], size_bounds: Sequence[float],
             strides: Sequence[int], scales: dict[int, tuple[float, float]] | None = None) -> dict[str, float]:
    """AP@[.5:.95] per pyramid level: ``{"AP_P3": ..., "AP_P4": ..., ...}`` (level l of stride 2^l).

    A level's objects are those the detector assigns to it: half of the longer box side (in network input
    pixels: original pixels times `scales[image_id]`) between consecutive `size_bounds` (see
    `DetectionLayout.size_bounds`). pycocotools evaluates each level as an area range on the squared longer
    side, so a detection matched to an object of another level is ignored as COCO ignores out-of-range
    boxes, and an unmatched detection counts against the level of its own size. A level without objects
    scores 0.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    names = [f"AP_P{int(math.log2(s))}" for s in strides]
    if not detections:
        return dict.fromkeys(names, 0.0)

    def squared_side(ann: dict[str, Any]) -> float:
        sx, sy = (scales or {}).get(ann["image_id"], (1.0, 1.0))
        return max(ann["bbox"][2] * sx, ann["bbox"][3] * sy) ** 2

    edges = [0.0, *[(2 * b) ** 2 for b in size_bounds], 1e12]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(ground_truth)
        gt.dataset.setdefault("info", {})
        for ann in gt.dataset["annotations"]:
            ann["area"] = squared_side(ann)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(detections))
        for ann in dt.dataset["annotations"]:
            ann["area"] = squared_side(ann)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.areaRng = [[edges[i], edges[i + 1]] for i in range(len(names))]
        ev.params.areaRngLbl = names
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][..., -1]  # (iou, recall, class, level) at 100 detections
    out = {}
    for i, name in enumerate(names):
        p = precision[:, :, :, i]
        out[name] = float(p[p > -1].mean()) if (p > -1).any() else 0.0
    return out


def detections_to_coco(results: list[dict[str, torch.Tensor]], image_ids: list[int], category_ids: list[int],
                       scales: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """COCO result entries from decoded detections; boxes are scaled back by (sx, sy) to original pixels."""
    out = []
    for res, image_id, (sx, sy) in zip(results, image_ids, scales, strict=True):
        for box, score, label in zip(res["boxes"].tolist(), res["scores"].tolist(), res["labels"].tolist(),
                                     strict=True):
            x1, y1, x2, y2 = box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy
            out.append({"image_id": image_id, "category_id": category_ids[label],
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return out


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, layout: DetectionLayout, batch_size: int = 32,
            **decode_kw: Any) -> list[dict[str, torch.Tensor]]:
    """Decoded detections of `model` (eval mode) for a stack of images (N, 3, H, W)."""
    was_training = model.training
    model.eval()
    try:
        results = []
        for start in range(0, len(images), batch_size):
            results += decode(model(images[start:start + batch_size]), layout, **decode_kw)
    finally:
        model.train(was_training)
    return results


def evaluate_detector(model: torch.nn.Module, dataset: Any, layout: DetectionLayout, batch_size: int = 32
                      ) -> dict[str, float]:
    """COCO metrics of `model` on a `CocoDetection` dataset (pycocotools against its annotations), with the
    AP of each pyramid level (`level_ap`: ``AP_P3``, ...)."""
    results = predict(model, dataset.images, layout, batch_size)
    dets = detections_to_coco(results, dataset.image_ids, dataset.category_ids, dataset.scales)
    scales = dict(zip(dataset.image_ids, dataset.scales, strict=True))
    return {**coco_map(dataset.coco, dets), **level_ap(dataset.coco, dets, layout.size_bounds, layout.strides, scales)}
