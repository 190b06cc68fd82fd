"""Benchmark of the Hit-Detector trinity search (arXiv:2003.11818): does it beat a hand design, and where?

Modes (each prints its figures beside baselines measured in the same run; nothing asserts on time):

  --protocol           the pre-set protocol (graphbuilder/search/trinity_protocol.py): for each seed, retrain
                       (a) the hand-designed detector, (b) backbone-only search, (c) trinity search and (r) a random
                       architecture from (c)'s screened sets, all with the same retraining seed, within 3% of (a)'s
                       FLOPs, on the same 256 validation images; per-seed table, per-level AP, diagnostics (alpha
                       entropy, op histograms), and the paired exact sign-flip tests. Ends with exactly
                           trinity-vs-hand: mean=<d> ci95=[<lo>,<hi>] p=<p>
                           trinity-vs-backbone: ...
                           trinity-vs-random: ...
                           verdict: win|no-win
                       (p: one-sided; Holm-corrected over hand and backbone; random's is uncorrected).
  --positive-control   retrain fixed architectures of the space (hand-designed; with a dilated neck; with a dilated
                       head; both; equal FLOPs) over 3 seeds: a search can only win if one of them beats the hand
                       design by >= 0.05 mAP.
  (default)            box IoU / NMS against brute force, and the resource penalty: derived FLOPs as gamma rises.

    .venv/bin/python benchmarks/bench_trinity.py --protocol --seeds 8 --data-seed 0 --out runs/d0 > d0.log
    .venv/bin/python benchmarks/bench_trinity.py --positive-control
    .venv/bin/python benchmarks/bench_trinity.py --protocol --quick      # smoke run of the whole pipeline

The protocol's settings (`PROTOCOL` below) were fixed on data seed 0 before the runs; `--task shapes` runs the
same protocol on the old shapes task, where neck and head hardly matter (the null case). Small convolutions
run fastest on one thread (--threads 1, the default): one 8-seed protocol run takes about 2 hours of one core.
`--out DIR` saves each unit as JSON and resumes from the units already there.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm import tqdm

from graphbuilder.datasets import synthetic_detection
from graphbuilder.detection import box_iou, nms
from graphbuilder.detection.reference import box_iou_reference, nms_reference
from graphbuilder.search.detector_space import COMPONENTS, DetectorSpace
from graphbuilder.search.trinity import TrinityConfig, trinity
from graphbuilder.search.trinity_protocol import (
    ARMS,
    OPPONENTS,
    ProtocolConfig,
    UnitResult,
    compare,
    run_fixed,
    run_protocol,
    verdict,
)

#: The protocol's settings, chosen on data seed 0 (positive control and pilot runs; docs/hit_detector.md).
SEARCH = TrinityConfig(space=DetectorSpace(image_size=96), size_bounds=(8.0, 16.0), screen_steps=40,
                       search_steps=120, retrain_steps=600, alpha_lr=0.1, sparsity=0.15, top_k=4)
PROTOCOL = ProtocolConfig(task="context", num_train=512, num_val=256, image_size=96, search=SEARCH)
QUICK = TrinityConfig(space=DetectorSpace(image_size=96, stem_channels=8, stages=((8, 1), (8, 1), (12, 1), (16, 1)),
                                          neck_channels=8, head_positions=2),
                      size_bounds=(8.0, 16.0), screen_steps=4, search_steps=8, retrain_steps=6, batch_size=4, top_k=3)
SHAPES_SPACE = DetectorSpace(image_size=64)  # the shapes task's 64 px images, default level bounds

#: Fixed architectures of the positive control: role -> op changes to the hand design (equal FLOPs: dilation
#: does not change a separable conv's cost).
CONTROLS = {"hand": {}, "dilated-neck": {"neck": "sd_k3_d3"}, "dilated-head": {"head": "sd_k3_d3"},
            "dilated-both": {"neck": "sd_k3_d3", "head": "sd_k3_d3"}}
LEVELS = ("AP_P3", "AP_P4", "AP_P5")


def say(text: str) -> None:
    """Print a line above the progress bar (flushed: the log of a long run is read while it runs)."""
    tqdm.write(text)
    sys.stdout.flush()


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


def bench_gamma(quick: bool) -> None:
    """Derived FLOPs (plain argmax) of joint searches over one operator set as the resource penalty rises."""
    train, _ = synthetic_detection(96 if quick else 384, 8, image_size=64, seed=0)
    steps = 10 if quick else 80
    print(f"\n== resource penalty: joint search over 4 ops, {steps} steps, plain argmax (shapes task) ==")
    flops = []
    for gamma in tqdm((0.0, 0.1, 1.0, 4.0), desc="gamma", leave=False):
        res = trinity(train, None, TrinityConfig(space=SHAPES_SPACE, operators=["ir_k5_e6", "ir_k3_e3", "sd_k3_d1",
                                                                                "conv_1x1"],
                                                 screen_steps=0, search_steps=steps, retrain_steps=0, gamma=gamma,
                                                 shrink_at=()), progress=False, evaluate=False)
        flops.append(res.flops)
        say(f"gamma {gamma:4.1f}: derived {res.flops / 1e6:6.2f} MFLOPs/image "
              f"(x{res.flops / flops[0]:.2f} of gamma 0)")
    falls = all(b <= a for a, b in zip(flops, flops[1:], strict=False))
    print(f"derived FLOPs fall as gamma rises: {'yes' if falls else 'NO'}")


def fmt_levels(metrics: list[dict[str, float]]) -> str:
    return " ".join(f"{lv[3:]} {statistics.fmean(m.get(lv, 0.0) for m in metrics):.3f}" for lv in LEVELS)


def positive_control(config: ProtocolConfig, seeds: list[int], out: str | None, variants: list[str]) -> None:
    hand = config.hand_flops()
    print(f"\n== positive control: fixed architectures retrained on seeds {seeds}, data seed {config.data_seed}, "
          f"{config.search.retrain_steps} steps each; hand-designed {hand / 1e6:.2f} MFLOPs/image ==", flush=True)
    done = {(r.arm, r.seed): r for r in load_done(out, config, retraining_settings)}
    runs: dict[str, list[UnitResult]] = {name: [] for name in variants}
    units = [(seed, name) for seed in seeds for name in variants]  # seed-major: every architecture's first seed early
    with tqdm(units, desc="retrained", unit="unit") as bar:
        for seed, name in bar:
            r = done.get((name, seed))
            if r is None:
                r = run_fixed(config, seed, CONTROLS[name], arm=name)
                save_unit(out, config, r)
            runs[name].append(r)
            say(f"  {name:13s} seed {seed}: mAP {r.metrics['mAP']:.4f}  {fmt_levels([r.metrics])}  "
                f"{r.flops / 1e6:.2f} MFLOPs  {r.seconds:.0f} s")
    if "hand" not in runs:
        return
    base = [r.metrics["mAP"] for r in runs["hand"]]
    print(f"\n{'architecture':13s} {'mAP mean':>9s} {'per seed':>24s} {'vs hand':>8s}  per-level AP (mean)")
    best = 0.0
    for name, rs in runs.items():
        maps = [r.metrics["mAP"] for r in rs]
        diff = statistics.fmean(m - b for m, b in zip(maps, base, strict=True))
        best = max(best, diff) if name != "hand" else best
        print(f"{name:13s} {statistics.fmean(maps):9.4f} {' '.join(f'{m:.4f}' for m in maps):>24s} {diff:+8.4f}  "
              f"{fmt_levels([r.metrics for r in rs])}")
    print(f"largest gain over hand-designed: {best:+.4f} mAP -> "
          f"{'a search can win on this task' if best >= 0.05 else 'below 0.05: change the task'}")


def retraining_settings(protocol: dict) -> dict:
    """The settings a fixed architecture's retraining depends on (data, space, level bounds, retraining): the
    positive control reuses units across protocol settings that differ only in the search."""
    search = protocol.get("search", {})
    keys = ("space", "size_bounds", "retrain_steps", "retrain_batch_size", "lr", "fixed")
    return {**{k: v for k, v in protocol.items() if k != "search"}, **{k: search.get(k) for k in keys}}


def save_unit(folder: str | None, config: ProtocolConfig, unit: UnitResult) -> None:
    """Write one unit's result (with the settings it ran under) as ``{arm}_{seed}.json`` in `folder`."""
    if folder:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{unit.arm}_{unit.seed}.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"protocol": config.to_dict(), "unit": unit.to_dict()}, f)
        os.replace(path + ".tmp", path)


def load_done(folder: str | None, config: ProtocolConfig, key: Callable[[dict], Any] = lambda d: d
              ) -> list[UnitResult]:
    """Units saved by an earlier run whose settings have the same `key` as `config`'s (default: all settings)."""
    if not folder or not os.path.isdir(folder):
        return []
    done = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                data = json.load(f)
            if key(data.get("protocol", {})) == key(config.to_dict()):
                done.append(UnitResult.from_dict(data["unit"]))
    return done


def protocol(config: ProtocolConfig, seeds: list[int], out: str | None) -> None:
    hand = config.hand_flops()
    print(f"\n== protocol: task {config.task}, data seed {config.data_seed}, seeds {seeds}; {config.num_train} train / "
          f"{config.num_val} val images; every arm within {config.search.tolerance:.0%} of the hand-designed "
          f"{hand / 1e6:.3f} MFLOPs/image; retraining {config.search.retrain_steps} steps ==", flush=True)
    print("settings: " + json.dumps(config.to_dict(), sort_keys=True), flush=True)
    start = time.perf_counter()
    done = [r for r in load_done(out, config) if r.seed in seeds]
    if done:
        print(f"  resuming: {len(done)} units from {out}", flush=True)
    # One step per unit still to run; a run stopped early closes the bar at the units really done.
    bar = tqdm(total=len(seeds) * len(ARMS) - len({(r.arm, r.seed) for r in done if r.arm in ARMS}), desc="protocol",
               unit="unit")

    def save(r: UnitResult) -> None:
        say(f"  seed {r.seed} {r.arm:8s} mAP {r.metrics.get('mAP', 0):.4f}  {fmt_levels([r.metrics])}  "
            f"{r.flops / 1e6:.3f} MFLOPs ({r.flops / hand - 1:+.1%})  {r.seconds:.0f} s  "
            f"[{time.perf_counter() - start:.0f} s]")
        save_unit(out, config, r)
        bar.update(1)

    with bar:
        results = run_protocol(config, seeds, done=done, on_result=save)
    by = {(r.arm, r.seed): r for r in results}

    print(f"\n== per seed: mAP (FLOPs vs hand-designed) ==\n{'seed':>4s} " + " ".join(f"{a:>17s}" for a in ARMS))
    for s in seeds:
        print(f"{s:4d} " + " ".join(f"{by[(a, s)].metrics['mAP']:8.4f} ({by[(a, s)].flops / hand - 1:+5.1%})"
                                    for a in ARMS))
    print("mean " + " ".join(f"{statistics.fmean(by[(a, s)].metrics['mAP'] for s in seeds):8.4f}{'':9s}"
                              for a in ARMS))
    print("\n== per-level AP (mean over seeds; one-stride level bounds) ==")
    for a in ARMS:
        print(f"{a:9s} {fmt_levels([by[(a, s)].metrics for s in seeds])}   mAP50 "
              f"{statistics.fmean(by[(a, s)].metrics['mAP50'] for s in seeds):.3f}")

    print("\n== diagnostics ==")
    for a in ("backbone", "trinity"):
        d = [by[(a, s)].diagnostics for s in seeds]
        ent_b = [x["entropy_before_shrink"] for x in d if x.get("entropy_before_shrink") is not None]
        print(f"{a:9s} alpha entropy before first shrink {statistics.fmean(ent_b) if ent_b else float('nan'):.3f} "
              f"(1 = uniform), largest final weight {statistics.fmean(x['max_weight_final'] for x in d):.3f}, "
              f"within budget {sum(bool(x['within_budget']) for x in d)}/{len(d)}, "
              f"skipped steps {sum(sum(x['skipped'].values()) for x in d)}")
    print(f"random    within budget {sum(bool(by[('random', s)].diagnostics['within_budget']) for s in seeds)}"
          f"/{len(seeds)}")
    space = config.space
    for a in ("backbone", "trinity", "random"):
        for comp in COMPONENTS:
            names = [p.name for p in space.component_positions(comp)]
            hist = collections.Counter(by[(a, s)].arch[n] for s in seeds for n in names)
            print(f"op histogram {a:8s} {comp:8s} " + ", ".join(f"{op} {k}" for op, k in hist.most_common()))
    kept = collections.Counter((c, op) for s in seeds for c, ops in (by[("trinity", s)].kept or {}).items()
                               for op in ops)
    for comp in COMPONENTS:
        print(f"screening kept ({comp}): " + ", ".join(f"{op} {k}" for (c, op), k in kept.most_common() if c == comp))
    print(f"\nunits: {len(results)}, seconds {sum(r.seconds for r in results):.0f} "
          f"(this run {time.perf_counter() - start:.0f} s wall)")
    comparisons = compare(results)
    for opp in OPPONENTS:
        print("  diffs " + opp + ": " + " ".join(f"{v:+.4f}" for v in comparisons[opp].diffs)
              + f"  (raw one-sided p {comparisons[opp].p_raw:.4f})")
    print("p: one-sided exact sign-flip over seeds; hand and backbone Holm-corrected, random uncorrected")
    for opp in OPPONENTS:
        print(comparisons[opp].line())
    print(f"verdict: {verdict(comparisons, config.alpha, config.min_difference)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--protocol", action="store_true", help="run the pre-set protocol")
    mode.add_argument("--positive-control", action="store_true", help="retrain fixed architectures over seeds")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: 8 for the protocol, 3 for the control)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data set (default 0)")
    parser.add_argument("--task", choices=("context", "shapes"), default="context",
                        help="context (default) or shapes (the null case)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke run of the pipeline")
    parser.add_argument("--out", help="folder for per-unit JSON results (resumes from it)")
    parser.add_argument("--variants", default=",".join(CONTROLS),
                        help=f"positive control: architectures to retrain (default all: {','.join(CONTROLS)})")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = PROTOCOL
    if args.task == "shapes":
        config = ProtocolConfig(task="shapes", num_train=512, num_val=256, image_size=64,
                                search=SEARCH.replace(space=SHAPES_SPACE, size_bounds=()))
    if args.quick:
        assert QUICK.space is not None
        space = dataclasses.replace(QUICK.space, image_size=config.image_size)
        config = ProtocolConfig(task=config.task, num_train=48, num_val=16, image_size=config.image_size,
                                search=QUICK.replace(space=space, size_bounds=config.search.size_bounds))
    config = dataclasses.replace(config, data_seed=args.data_seed)
    if args.protocol:
        protocol(config, list(range(args.seeds or 8)), args.out)
        return
    start = time.perf_counter()
    if args.positive_control:
        positive_control(config, list(range(args.seeds or 3)), args.out, args.variants.split(","))
    else:
        bench_boxes(150 if args.quick else 400)
        bench_gamma(args.quick)
    print(f"\ntotal benchmark time {time.perf_counter() - start:.0f} s ({args.threads} thread(s))")


if __name__ == "__main__":
    main()
