"""Benchmark of the Hit-Detector trinity search (arXiv:2003.11818) on the synthetic shapes detection set.

Measures, in one run (medians where timed repeatedly; ratios against baselines measured in the same run):
  1. box IoU and NMS: vectorised vs the brute-force references (speed, and that they agree);
  2. detectors, each retrained from scratch with the same steps, the same data and the same retraining seeds,
     and evaluated with pycocotools, over `--seeds` seeds (mean and min-max printed):
       (a) hand-designed: MobileNetV2-style backbone + FPN-lite neck + separable conv head,
       (b) backbone-only search (neck and head fixed to the hand-designed choices),
       (c) trinity: backbone, neck and head searched together;
     (b) and (c) are derived within the hand-designed detector's FLOPs (`budget=`; --no-budget: plain argmax),
     so the comparison is at comparable FLOPs; reporting mAP, mAP@0.5, params, FLOPs per image, search time;
  3. the resource penalty: derived FLOPs for gamma in {0, 0.01, 0.1, 1} (joint search over the trinity
     screening's kept ops, plain argmax); they should fall as gamma rises.

    .venv/bin/python benchmarks/bench_trinity.py              # small config, 2 seeds (~15 min on the busy shared
                                                              #   2-core machine; --seeds 1 for about half)
    .venv/bin/python benchmarks/bench_trinity.py --long       # 3x longer screening and search (the config whose
                                                              #   search has enough signal to matter; ~2x time)
    .venv/bin/python benchmarks/bench_trinity.py --quick      # smoke run (~3 min)

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
from graphbuilder.search.detector_space import COMPONENT_OPS, FULL_OPS, DetectorSpace, hand_designed
from graphbuilder.search.trinity import trinity

CONFIGS = {
    "small": dict(num_train=384, num_val=128, screen_steps=40, search_steps=80, retrain_steps=400, boxes=400,
                  sweep_steps=80),
    "long": dict(num_train=384, num_val=128, screen_steps=120, search_steps=240, retrain_steps=400, boxes=400,
                 sweep_steps=160),
    "quick": dict(num_train=96, num_val=32, screen_steps=6, search_steps=10, retrain_steps=40, boxes=150,
                  sweep_steps=6),
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


def spread(values: list[float]) -> str:
    """``mean (min-max)`` of a list, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny smoke configuration")
    parser.add_argument("--long", action="store_true", help="3x longer screening and search (~2x the time)")
    parser.add_argument("--seeds", type=int, default=2, help="search/retraining seeds per method (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="first search/retraining seed")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data set (default 0)")
    parser.add_argument("--no-budget", action="store_true",
                        help="derive by plain argmax (no FLOPs budget; the searched detectors' FLOPs then differ)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the gamma sweep")
    parser.add_argument("--component-ops", action="store_true",
                        help="screen per-component operator sets (MBConv-only backbone and head) instead of one")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = CONFIGS["quick" if args.quick else "long" if args.long else "small"]
    start = time.perf_counter()
    bench_boxes(cfg["boxes"])

    train, val = synthetic_detection(cfg["num_train"], cfg["num_val"], image_size=SPACE.image_size,
                                     seed=args.data_seed)
    layout = DetectionLayout((SPACE.image_size,) * 2, SPACE.strides, SPACE.num_classes)
    hand = hand_designed(SPACE)
    hand_params, hand_flops = summary(hand)
    budget = None if args.no_budget else hand_flops
    search_kw = dict(space=SPACE, screen_steps=cfg["screen_steps"], search_steps=cfg["search_steps"],
                     retrain_steps=cfg["retrain_steps"], budget=budget, progress=False,
                     operators=COMPONENT_OPS if args.component_ops else FULL_OPS)
    seeds = list(range(args.seed, args.seed + args.seeds))
    methods = ["(a) hand-designed", "(b) backbone-only search", "(c) trinity search"]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    results = {}
    for seed in seeds:
        t = time.perf_counter()
        torch.manual_seed(seed + 2)  # exactly the retraining of trinity(seed=seed)
        model = gb.compile(hand)
        train_detector(model, train, layout, cfg["retrain_steps"], batch_size=16, seed=seed + 3, progress=False)
        runs[methods[0]].append(dict(metrics=evaluate_detector(model, val, layout), params=hand_params,
                                     flops=hand_flops, search=0.0, total=time.perf_counter() - t))
        for method, search in zip(methods[1:], (["backbone"], ["backbone", "neck", "head"]), strict=True):
            t = time.perf_counter()
            res = trinity(train, val, search=search, seed=seed, **search_kw)
            runs[method].append(dict(metrics=res.metrics, params=res.params, flops=res.flops,
                                     search=res.times["screen"] + res.times["search"], total=time.perf_counter() - t))
            results[(method, seed)] = res
            if any(res.skipped.values()):
                print(f"  seed {seed} {method}: steps skipped for a non-finite loss: {res.skipped}", flush=True)
        for method in methods:
            r = runs[method][-1]
            print(f"  seed {seed} {method:26s} mAP {r['metrics']['mAP']:.3f}  {r['flops'] / 1e6:.2f} MFLOPs  "
                  f"{r['total']:.0f} s", flush=True)

    budget_note = f"derived within the hand-designed FLOPs ({hand_flops / 1e6:.2f} M)" if budget else "plain argmax"
    print(f"\n== detectors on {cfg['num_val']} validation images: seeds {seeds}, {cfg['retrain_steps']} retraining "
          f"steps each (same data, same retraining seeds), {budget_note} ==")
    print("mean (min-max) over seeds")
    print(f"{'detector':26s} {'mAP':>19s} {'mAP50':>19s} {'params':>8s} {'MFLOPs':>7s} {'search s':>8s} "
          f"{'total s':>8s}  mAP vs (a)")
    base = statistics.mean(r["metrics"]["mAP"] for r in runs[methods[0]])
    for method in methods:
        rs = runs[method]
        maps = [r["metrics"]["mAP"] for r in rs]
        print(f"{method:26s} {spread(maps):>19s} {spread([r['metrics']['mAP50'] for r in rs]):>19s} "
              f"{statistics.mean(r['params'] for r in rs):8.0f} {statistics.mean(r['flops'] for r in rs) / 1e6:7.2f} "
              f"{statistics.mean(r['search'] for r in rs):8.1f} {statistics.mean(r['total'] for r in rs):8.1f}  "
              f"x{statistics.mean(maps) / max(base, 1e-9):.2f}")
    print("per seed mAP: " + "; ".join(f"{m[:3]} " + " ".join(f"{r['metrics']['mAP']:.3f}" for r in runs[m])
                                       for m in methods))
    tri = results[(methods[2], seeds[0])]
    print("\n" + str(tri.screening))
    print(f"\ntrinity architecture (seed {seeds[0]}):\n" + tri.table())
    for seed in seeds:
        bb, tr = results[(methods[1], seed)], results[(methods[2], seed)]
        print(f"seed {seed}: backbone-only  " + " ".join(v for k, v in bb.arch.items() if k.startswith("bb_")))
        print(f"seed {seed}: trinity        " + " ".join(tr.arch.values()))
        peak = {m: statistics.mean(max(h[-1]) for h in r.alpha_history.values())
                for m, r in (("backbone-only", bb), ("trinity", tr))}
        print("         mean max softmax(alpha) at the end: " + ", ".join(f"{k} {v:.2f}" for k, v in peak.items())
              + f" (uniform {1 / len(next(iter(tr.candidates.values()))):.2f})")

    if not args.no_sweep:
        print(f"\n== gamma sweep (cost = FLOPs; joint search over the screened ops, {cfg['sweep_steps']} steps, "
              "plain argmax) ==")
        flops = []
        for gamma in GAMMAS:
            res = trinity(train, None, **{**search_kw, "operators": tri.screening.kept, "screen_steps": 0,
                          "search_steps": cfg["sweep_steps"], "gamma": gamma, "retrain_steps": 0, "budget": None,
                          "seed": seeds[0]})
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
