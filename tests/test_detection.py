"""Detection building blocks against references: IoU and NMS vs brute force, focal loss vs its formula, box
coding round trips, FCOS assignment, COCO mAP (overall and per pyramid level) through pycocotools on hand-made
cases, the dataset loader and the two synthetic sets."""

from __future__ import annotations

import json
import math

import pytest
import torch

from graphbuilder.datasets.detection import CONTEXT_COLOURS, CocoDetection, make_context_coco, make_synthetic_coco
from graphbuilder.detection import (
    DetectionLayout,
    assign,
    batched_nms,
    box_iou,
    coco_map,
    decode,
    decode_ltrb,
    detection_loss,
    detections_to_coco,
    encode_ltrb,
    generalized_iou,
    level_ap,
    nms,
    sigmoid_focal_loss,
)
from graphbuilder.detection.reference import box_iou_reference, nms_reference


def random_boxes(n: int, seed: int, size: float = 50.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 3 + 0.5
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("seed", range(5))
def test_box_iou_matches_brute_force(seed):
    a, b = random_boxes(30, seed), random_boxes(20, seed + 50)
    b[0] = a[0]  # an identical pair: IoU 1
    b[1] = torch.tensor([100.0, 100.0, 100.0, 105.0])  # zero area
    ref = box_iou_reference(a, b)
    torch.testing.assert_close(box_iou(a, b).double(), ref, atol=1e-6, rtol=1e-5)
    assert ref[0, 0] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_matches_brute_force(seed, threshold):
    base = random_boxes(40, seed, size=40.0)
    jitter = torch.randn(40, 4, generator=torch.Generator().manual_seed(seed + 2)) * 1.5
    boxes = torch.cat([base, base + jitter])  # near-duplicates: suppressed at every threshold
    scores = torch.rand(80, generator=torch.Generator().manual_seed(seed + 1))
    scores[5] = scores[6]  # a tie: lower index first in both
    kept = nms(boxes, scores, threshold)
    assert kept.tolist() == nms_reference(boxes, scores, threshold).tolist()
    assert 0 < len(kept) < 80


@pytest.mark.parametrize("seed", range(5))
def test_batched_nms_matches_brute_force_per_class(seed):
    boxes = random_boxes(60, seed, size=30.0)
    g = torch.Generator().manual_seed(seed + 9)
    scores, labels = torch.rand(60, generator=g), torch.randint(0, 3, (60,), generator=g)
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == nms_reference(boxes, scores, 0.5, labels).tolist()


def test_nms_empty():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


def test_focal_loss_matches_formula():
    logits = torch.tensor([[2.0, -1.0], [0.5, -3.0], [-0.2, 1.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    alpha, gamma = 0.25, 2.0
    expected = 0.0
    for z, t in zip(logits.flatten().tolist(), targets.flatten().tolist(), strict=True):
        p = 1 / (1 + math.exp(-z))
        if t == 1:
            expected += -alpha * (1 - p) ** gamma * math.log(p)
        else:
            expected += -(1 - alpha) * p ** gamma * math.log(1 - p)
    assert float(sigmoid_focal_loss(logits, targets, alpha, gamma)) == pytest.approx(expected, rel=1e-5)


def test_giou_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 3.0, 1.0]])
    # identical: 1; disjoint unit squares 1 apart: IoU 0, hull 3, union 2 -> -1/3
    torch.testing.assert_close(generalized_iou(a, b), torch.tensor([1.0, -1.0 / 3.0]))


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    boxes = random_boxes(50, 1)
    points = (boxes[:, :2] + boxes[:, 2:]) / 2 + (torch.rand(50, 2, generator=g) - 0.5)
    strides = torch.tensor([8.0, 16.0, 32.0]).repeat(17)[:50]
    ltrb = encode_ltrb(points, boxes, strides)
    torch.testing.assert_close(decode_ltrb(points, ltrb, strides), boxes)
    torch.testing.assert_close(ltrb[0] * strides[0], torch.cat([points[0] - boxes[0, :2], boxes[0, 2:] - points[0]]))


def test_assign_picks_centre_points_on_the_right_level():
    layout = DetectionLayout((128, 128), (8, 16, 32), num_classes=3)  # size bounds: half-size 16, 32
    # small (half-size 7 <= 16), whole-image (64 > 32), and thin (1 px wide: no point inside it)
    boxes = torch.tensor([[9.0, 9.0, 23.0, 23.0], [0.0, 0.0, 128.0, 128.0], [40.5, 40.0, 41.5, 52.0]])
    labels = torch.tensor([2, 0, 1])
    cls, matched = assign(layout, boxes, labels)
    pts, strides, levels = layout.points()
    small = cls == 2
    assert small.any() and (levels[small] == 0).all()
    assert ((pts[small] - 16).abs() < 1.5 * 8).all()  # centre sampling
    thin = torch.nonzero(cls == 1).flatten()
    assert len(thin) == 1 and levels[thin] == 0  # half-size 6: stride 8; the one point nearest the centre
    torch.testing.assert_close(pts[thin[0]], torch.tensor([44.0, 44.0]))
    big = cls == 0
    assert big.any() and (levels[big] == 2).all()
    torch.testing.assert_close(matched[small], boxes[0].expand(int(small.sum()), 4))
    assert (cls[~(small | big) & (cls != 1)] == 3).all()  # background


def _gt(images: int, boxes_per_image: list[list[list[float]]], cats=(1, 2)) -> dict:
    anns = []
    for i, boxes in enumerate(boxes_per_image):
        for b in boxes:
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": b[4], "bbox": b[:4],
                         "area": b[2] * b[3], "iscrowd": 0})
    return {"images": [{"id": i + 1, "width": 64, "height": 64} for i in range(images)], "annotations": anns,
            "categories": [{"id": c, "name": str(c)} for c in cats]}


def test_coco_map_known_answers():
    gt = _gt(2, [[[10, 10, 20, 20, 1]], [[5, 5, 30, 10, 2]]])
    perfect = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
               {"image_id": 2, "category_id": 2, "bbox": [5, 5, 30, 10], "score": 0.8}]
    assert coco_map(gt, perfect)["mAP"] == pytest.approx(1.0)
    wrong_class = [{**d, "category_id": 3 - d["category_id"]} for d in perfect]
    assert coco_map(gt, wrong_class)["mAP"] == pytest.approx(0.0)
    # one category found, the other missed: mean over categories of (1, 0)
    assert coco_map(gt, perfect[:1])["mAP"] == pytest.approx(0.5)
    # a box shifted to IoU 0.6: counted at thresholds 0.5, 0.55, 0.6 only -> AP 3/10 for that category
    shifted = [perfect[0], {**perfect[1], "bbox": [5 + 7.5, 5, 30, 10]}]
    iou = 22.5 * 10 / (30 * 10 + 30 * 10 - 22.5 * 10)
    assert iou == pytest.approx(0.6)
    assert coco_map(gt, shifted)["mAP"] == pytest.approx((1.0 + 0.3) / 2)
    assert coco_map(gt, [])["mAP"] == 0.0


def test_oracle_predictions_decode_to_perfect_map(tmp_path):
    """Predictions built from the assigned targets decode (points, distances, NMS) back to the ground truth."""
    path = make_synthetic_coco(tmp_path, 6, image_size=64, seed=3)
    data = CocoDetection(path, tmp_path, 64)
    layout = DetectionLayout((64, 64), (8, 16, 32), data.num_classes)
    pts, strides, _ = layout.points()
    preds = []
    for t in data.targets:
        cls, matched = assign(layout, t["boxes"], t["labels"])
        pred = torch.full((layout.num_points, data.num_classes + 5), -20.0)
        pos = cls < data.num_classes
        pred[pos, cls[pos]] = 20.0
        pred[pos, data.num_classes:data.num_classes + 4] = encode_ltrb(pts[pos], matched[pos], strides[pos]).log()
        pred[pos, -1] = 20.0
        preds.append(pred)
        assert len({tuple(b) for b in matched[pos].tolist()}) == len(t["labels"])  # every object has points
    results = decode(torch.stack(preds), layout)
    dets = detections_to_coco(results, data.image_ids, data.category_ids, data.scales)
    assert coco_map(data.coco, dets)["mAP"] == pytest.approx(1.0)
    losses = detection_loss(torch.stack(preds), data.targets, layout)
    assert float(losses["box"]) == pytest.approx(0.0, abs=1e-4) and float(losses["cls"]) < 1e-3


def test_synthetic_set_is_deterministic_and_loads_through_coco(tmp_path):
    a = make_synthetic_coco(tmp_path / "a", 5, seed=7)
    b = make_synthetic_coco(tmp_path / "b", 5, seed=7)
    assert json.load(open(a)) == json.load(open(b))
    da, db = CocoDetection(a, tmp_path / "a", 64), CocoDetection(b, tmp_path / "b", 64)
    assert torch.equal(da.images, db.images)
    coco = json.load(open(a))
    assert {c["name"] for c in coco["categories"]} == {"circle", "square", "triangle", "cross"}
    # resized loading scales boxes; scales map them back to the annotation's pixels
    half = CocoDetection(a, tmp_path / "a", 32)
    first = coco["annotations"][0]["bbox"]
    torch.testing.assert_close(half.targets[0]["boxes"][0],
                               torch.tensor([first[0], first[1], first[0] + first[2], first[1] + first[3]]) / 2)
    assert half.scales[0] == (0.5, 0.5) and half.images.shape == (5, 3, 32, 32)


def test_dataset_errors_say_the_fix(tmp_path):
    from graphbuilder.ir.errors import GraphError

    with pytest.raises(GraphError, match="lacks 'annotations'"):
        CocoDetection({"images": [], "categories": []}, tmp_path)
    with pytest.raises(GraphError, match="cannot read image"):
        CocoDetection(_gt(1, [[]]) | {"images": [{"id": 1, "file_name": "nope.png"}]}, tmp_path)
    with pytest.raises(GraphError, match="not divisible by stride"):
        DetectionLayout((60, 64), (8, 16, 32), 2)


def test_level_ap_scores_each_pyramid_level_on_its_own_objects():
    # one object per level under one-stride bounds (half longer side <= 8, <= 16, above): sides 12, 24, 48
    gt = _gt(1, [[[2, 2, 12, 10, 1], [20, 2, 24, 20, 1], [2, 30, 48, 30, 2]]])
    found = [{"image_id": 1, "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
             for a in gt["annotations"]]
    levels = level_ap(gt, found, (8.0, 16.0), (8, 16, 32))
    assert levels == {"AP_P3": pytest.approx(1.0), "AP_P4": pytest.approx(1.0), "AP_P5": pytest.approx(1.0)}
    # miss the P4 object: only P4's AP drops; a false box the size of P3 objects lowers P3 only
    false_small = {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.95}
    levels = level_ap(gt, [found[0], found[2], false_small], (8.0, 16.0), (8, 16, 32))
    assert levels["AP_P4"] == 0.0 and levels["AP_P5"] == pytest.approx(1.0)
    assert 0.0 < levels["AP_P3"] < 1.0
    # the levels are read in network input pixels: at scale 0.5 the 48 px object is a 24 px (P4) one
    halved = level_ap(gt, found[2:], (8.0, 16.0), (8, 16, 32), scales={1: (0.5, 0.5)})
    assert halved["AP_P4"] == pytest.approx(1.0) and halved["AP_P5"] == 0.0


def test_context_set_puts_a_class_coloured_ring_around_each_object(tmp_path):
    path = make_context_coco(tmp_path, 40, image_size=96, seed=5)
    data = CocoDetection(path, tmp_path, 96)
    again = json.load(open(make_context_coco(tmp_path / "again", 8, 96, seed=5)))  # same seed: same first images
    assert again["annotations"] == [a for a in json.load(open(path))["annotations"] if a["image_id"] <= 8]
    colours = torch.tensor(list(CONTEXT_COLOURS.values()))
    boxes = torch.cat([t["boxes"] for t in data.targets])
    half = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values / 2
    counts = torch.bincount(torch.bucketize(half, torch.tensor([8.0, 16.0])), minlength=3)
    assert (counts >= len(boxes) / 5).all(), counts  # every level well populated
    for image, t in zip(data.images, data.targets, strict=True):
        for box, label in zip(t["boxes"], t["labels"], strict=True):
            cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
            h = float((box[2:] - box[:2]).max()) / 2
            # walk right from the box: the first ring-coloured pixel is the object's own class colour
            row = image[:, int(cy)].T  # (W, 3)
            right = [x for x in range(int(cx + h) + 1, 96) if (row[x] - colours).abs().max(dim=1).values.min() < 0.02]
            left = [x for x in range(int(cx - h) - 1, -1, -1)
                    if (row[x] - colours).abs().max(dim=1).values.min() < 0.02]
            nearest = [int((row[x] - colours).abs().max(dim=1).values.argmin()) for x in right[:1] + left[:1]]
            assert int(label) in nearest  # (another object's ring may cross one side, never both)
            assert all(abs(x - cx) > h + 1 for x in right[:1] + left[:1])  # a gap between object and ring
