"""Benchmark of the Hit-Detector trinity search (arXiv:2003.11818) on the synthetic shapes detection set.

Measures, in one run (medians where timed repeatedly; ratios against baselines measured in the same run):
  1. box IoU and NMS: vectorised vs the brute-force references (speed, and that they agree);
  2. detectors, each retrained from scratch with the same steps and evaluated with pycocotools:
       (a) hand-designed: MobileNetV2-style backbone + FPN-lite neck + separable conv head,
       (b) backbone-only search (neck and head fixed to the hand-designed choices),
       (c) trinity: backbone, neck and head searched together;
     reporting mAP, mAP@0.5, params, FLOPs per image and search time;
  3. the resource penalty: derived FLOPs for gamma in {0, 0.01, 0.1, 1} (joint search over the trinity
     screening's kept ops); they should fall as gamma rises.

    .venv/bin/python benchmarks/bench_trinity.py            # small config (~5-10 min on 2 CPU cores)
    .venv/bin/python benchmarks/bench_trinity.py --quick    # smoke run (~1 min)

Never asserts on time. Small convolutions run fastest on one thread; --threads changes that.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import graphbuilder as gb
from graphbuilder.datasets import synthetic_detection
from graphbuilder.detection import DetectionLayout, box_iou, evaluate_detector, nms, train_detector
from graphbuilder.detection.reference import box_iou_reference, nms_reference
from graphbuilder.search.detector_space import DetectorSpace, hand_designed
from graphbuilder.search.trinity import trinity

CONFIGS = {
    "small": dict(num_train=384, num_val=128, screen_steps=40, search_steps=80, warmup_steps=20,
                  retrain_steps=400, boxes=400),
    "quick": dict(num_train=96, num_val=32, screen_steps=6, search_steps=10, warmup_steps=3,
                  retrain_steps=40, boxes=150),
}
SPACE = DetectorSpace()  # the default small space: 5 backbone, 3 neck, 4 head positions
GAMMAS = (0.0, 0.01, 0.1, 1.0)


def median_time(fn, repeat: int = 5) -> float:
    """Median wall time of `fn()` over `repeat` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_boxes(n: int) -> None:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(n, 2, generator=gen) * 100
    boxes = torch.cat([xy, xy + torch.rand(n, 2, generator=gen) * 30 + 1], dim=1)
    scores = torch.rand(n, generator=gen)
    assert torch.allclose(box_iou(boxes, boxes).double(), box_iou_reference(boxes, boxes), atol=1e-5)
    assert nms(boxes, scores, 0.5).tolist() == nms_reference(boxes, scores, 0.5).tolist()
    t_iou = median_time(lambda: box_iou(boxes, boxes))
    t_iou_ref = median_time(lambda: box_iou_reference(boxes, boxes), 3)
    t_nms = median_time(lambda: nms(boxes, scores, 0.5))
    t_nms_ref = median_time(lambda: nms_reference(boxes, scores, 0.5), 3)
    print(f"\n== boxes: {n} random boxes (results agree with brute force) ==")
    print(f"box IoU  {t_iou * 1e3:9.2f} ms   brute force {t_iou_ref * 1e3:9.2f} ms   speed-up x{t_iou_ref / t_iou:.0f}")
    print(f"NMS      {t_nms * 1e3:9.2f} ms   brute force {t_nms_ref * 1e3:9.2f} ms   speed-up x{t_nms_ref / t_nms:.0f}")


def summary(graph: gb.Graph) -> tuple[int, int]:
    s = graph.summary()
    return s.total_params, s.total_flops // SPACE.batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = CONFIGS["quick" if args.quick else "small"]
    start = time.perf_counter()
    bench_boxes(cfg["boxes"])

    train, val = synthetic_detection(cfg["num_train"], cfg["num_val"], image_size=SPACE.image_size, seed=args.seed)
    layout = DetectionLayout((SPACE.image_size,) * 2, SPACE.strides, SPACE.num_classes)
    search_kw = dict(space=SPACE, screen_steps=cfg["screen_steps"], search_steps=cfg["search_steps"],
                     warmup_steps=cfg["warmup_steps"], retrain_steps=cfg["retrain_steps"], seed=args.seed,
                     progress=False)
    rows = []

    t = time.perf_counter()
    hand = hand_designed(SPACE)
    torch.manual_seed(args.seed + 2)
    model = gb.compile(hand)
    train_detector(model, train, layout, cfg["retrain_steps"], batch_size=16, seed=args.seed + 3, progress=False)
    rows.append(("(a) hand-designed", evaluate_detector(model, val, layout), *summary(hand), 0.0,
                 time.perf_counter() - t))

    t = time.perf_counter()
    bb = trinity(train, val, search=["backbone"], **search_kw)
    rows.append(("(b) backbone-only search", bb.metrics, bb.params, bb.flops,
                 bb.times["screen"] + bb.times["search"], time.perf_counter() - t))

    t = time.perf_counter()
    tri = trinity(train, val, **search_kw)
    rows.append(("(c) trinity search", tri.metrics, tri.params, tri.flops,
                 tri.times["screen"] + tri.times["search"], time.perf_counter() - t))

    print(f"\n== detectors on {cfg['num_val']} validation images ({cfg['retrain_steps']} retraining steps each) ==")
    print(f"{'detector':26s} {'mAP':>6s} {'mAP50':>6s} {'params':>8s} {'MFLOPs':>7s} {'search s':>8s} "
          f"{'total s':>8s}  mAP vs (a)  FLOPs vs (a)")
    base = rows[0]
    for name, metrics, params, flops, search_s, total_s in rows:
        print(f"{name:26s} {metrics['mAP']:6.3f} {metrics['mAP50']:6.3f} {params:8d} {flops / 1e6:7.2f} "
              f"{search_s:8.1f} {total_s:8.1f}  x{metrics['mAP'] / max(base[1]['mAP'], 1e-9):.2f}"
              f"       x{flops / base[3]:.2f}")
    print("\n" + str(tri.screening))
    print("\ntrinity architecture:\n" + tri.table())
    print("\nbackbone-only architecture (backbone positions):")
    print("  " + ", ".join(f"{k}={v}" for k, v in bb.arch.items() if k.startswith("bb_")))

    print(f"\n== gamma sweep (cost = FLOPs; joint search over the screened ops, {cfg['search_steps']} steps) ==")
    flops = []
    for gamma in GAMMAS:
        res = trinity(train, None, operators=tri.screening.kept, **{**search_kw, "screen_steps": 0,
                                                                       "gamma": gamma, "retrain_steps": 0})
        flops.append(res.flops)
        print(f"gamma {gamma:5.2f}: derived {res.flops / 1e6:6.2f} MFLOPs/image, {res.params:7d} params "
              f"(x{res.flops / max(flops[0], 1):.2f} of gamma 0)  "
              + " ".join(f"{v}" for k, v in res.arch.items() if k.startswith("head")))
    falls = all(b <= a for a, b in zip(flops, flops[1:], strict=False))
    chain = " >= ".join(f"{f / 1e6:.2f}" for f in flops)
    print(f"derived FLOPs fall as gamma rises: {'yes' if falls else 'NO'} ({chain})")
    print(f"\ntotal benchmark time {time.perf_counter() - start:.0f} s ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
