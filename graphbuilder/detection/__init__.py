"""One-stage (FCOS-style) detection building blocks written in-house: boxes, NMS, losses, decoding, COCO mAP.

    boxes       IoU, GIoU, points per level, (l, t, r, b) coding, NMS and batched NMS
    fcos        layout of predictions, target assignment, focal + GIoU + centerness loss, decoding
    evaluate    pycocotools mAP (overall and per pyramid level) of decoded detections / of a detector
    train       a small training loop for compiled detectors
    reference   brute-force IoU and NMS (tests, benchmarks)

The network side is the `det_predict` op (graphbuilder/ops/detection.py). No torchvision is used.
"""

from graphbuilder.detection.boxes import (
    batched_nms,
    box_area,
    box_iou,
    decode_ltrb,
    encode_ltrb,
    generalized_iou,
    level_points,
    nms,
)
from graphbuilder.detection.evaluate import coco_map, detections_to_coco, evaluate_detector, level_ap, predict
from graphbuilder.detection.fcos import (
    DetectionLayout,
    assign,
    decode,
    detection_loss,
    giou_loss,
    sigmoid_focal_loss,
)
from graphbuilder.detection.train import train_detector

__all__ = ["DetectionLayout", "assign", "batched_nms", "box_area", "box_iou", "coco_map", "decode",
           "decode_ltrb", "detection_loss", "detections_to_coco", "encode_ltrb", "evaluate_detector",
           "generalized_iou", "giou_loss", "level_ap", "level_points", "nms", "predict", "sigmoid_focal_loss",
           "train_detector"]
