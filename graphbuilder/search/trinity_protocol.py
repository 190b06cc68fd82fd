"""A pre-set protocol for asking whether trinity search wins: paired seeds, equal FLOPs, one exact test.

For each seed s (search seed and retraining seed alike), four arms are retrained from scratch with the same
seed, hence the same initialisation stream and the same batches, on the same data, and evaluated on the same
validation images:

    hand       the hand-designed detector (`detector_space.hand_designed`)
    backbone   backbone-only trinity search (neck and head fixed to the hand-designed ops)
    trinity    backbone, neck and head searched together
    random     a random architecture from the trinity arm's screened operator sets

Every searched or sampled arm is derived within ``tolerance`` of the hand-designed detector's FLOPs
(`darts.fit_budget`). The comparison is paired over seeds: trinity minus each other arm, the one-sided exact
sign-flip test (`paired_stats`), Holm-corrected over the two claims that decide the verdict (trinity beats
hand, trinity beats backbone-only). Verdict ``win`` when both corrected p-values are below `alpha` and both
mean differences are at least `min_difference` mAP.

Units of work: `run_unit(config, arm, seed, kept)` runs one (arm, seed) pair and returns a `UnitResult`
(metrics, the derived graph, diagnostics). Units are independent except that `random` needs the trinity arm's
screened sets (`kept`), so `run_protocol` runs them in two phases; each phase is a plain list of calls that an
executor can spread over processes or machines (``by_seed=False``: every seed at once).

Boundary: data, the four arms, and the statistics of their comparison; the search itself is `trinity.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from graphbuilder.datasets.detection import CocoDetection, context_detection, synthetic_detection
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.ir.render import Summary
from graphbuilder.ir.serialize import graph_from_dict, graph_to_dict
from graphbuilder.ops.search_space import candidate_label
from graphbuilder.search import paired_stats
from graphbuilder.search.detector_space import COMPONENTS, DetectorSpace, find_position, hand_designed, node_choice
from graphbuilder.search.trinity import (
    TrinityConfig,
    candidate_labels,
    derivation_scores,
    derive_within,
    retrain,
    supernet,
    trinity,
)

ARMS = ("hand", "backbone", "trinity", "random")
TASKS = ("context", "shapes")
#: The opponents of the trinity arm, in report order; the first two form the Holm family of the verdict.
OPPONENTS = ("hand", "backbone", "random")
VERDICT_FAMILY = ("hand", "backbone")


@dataclass(frozen=True)
class ProtocolConfig:
    """The protocol's settings, fixed before it runs (frozen; saved with every unit's result).

    Attributes:
        task: ``"context"`` (classes differ only by a ring around the object; objects a third per level) or
            ``"shapes"`` (classes are shapes; three quarters of the objects on P3: the null case).
        data_seed: seed of the synthetic data.
        num_train, num_val, image_size: data sizes (the same validation images for every arm and seed).
        search: the trinity settings of the backbone and trinity arms, and the retraining settings of all
            arms (its `seed` and `budget` are set per unit; `space` must be given).
        alpha, min_difference: the verdict's level and smallest mean mAP difference that counts.
    """

    task: str = "context"
    data_seed: int = 0
    num_train: int = 512
    num_val: int = 256
    image_size: int = 96
    search: TrinityConfig = field(default_factory=lambda: TrinityConfig(space=DetectorSpace(image_size=96),
                                                                        size_bounds=(8.0, 16.0)))
    alpha: float = 0.05
    min_difference: float = 0.02

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise GraphError(f"task={self.task!r}: choose from {TASKS}")
        if self.search.space is None or self.search.space.image_size != self.image_size:
            raise GraphError(f"search.space must be set, with image_size {self.image_size}")

    @property
    def space(self) -> DetectorSpace:
        """The detector space of every arm."""
        assert self.search.space is not None
        return self.search.space

    def hand_flops(self) -> float:
        """FLOPs per image of the hand-designed detector: every arm's budget."""
        return Summary.of(hand_designed(self.space)).total_flops / self.space.batch

    def arm_config(self, arm: str, seed: int) -> TrinityConfig:
        """The trinity settings of `arm` on `seed`: its search components, the seed, the FLOPs budget."""
        search = ("backbone",) if arm == "backbone" else COMPONENTS
        return self.search.replace(search=search, seed=seed, budget=self.hand_flops())

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["search"] = self.search.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ProtocolConfig:
        """Inverse of `to_dict`."""
        if not isinstance(data, dict):
            raise GraphError("a protocol config must be an object")
        return cls(**{**data, "search": TrinityConfig.from_dict(data["search"])})


@dataclass
class UnitResult:
    """One (arm, seed) unit: metrics of the retrained detector (``mAP``, ``AP_P3``...), its FLOPs per image
    and params, the op per position, the derived graph (with retrained weights), the screened sets (trinity
    arm), diagnostics (alpha entropy, largest weights, budget fit, shrinking) and seconds."""

    arm: str
    seed: int
    metrics: dict[str, float]
    flops: float
    params: int
    arch: dict[str, str]
    graph: Graph
    kept: dict[str, list[str]] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON (the graph without its weights)."""
        return {"arm": self.arm, "seed": self.seed, "metrics": self.metrics, "flops": self.flops,
                "params": self.params, "arch": self.arch, "graph": graph_to_dict(self.graph), "kept": self.kept,
                "diagnostics": self.diagnostics, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnitResult:
        """Inverse of `to_dict`."""
        return cls(str(data["arm"]), int(data["seed"]), dict(data["metrics"]), float(data["flops"]),
                   int(data["params"]), dict(data["arch"]), graph_from_dict(data["graph"]), data.get("kept"),
                   dict(data.get("diagnostics", {})), float(data.get("seconds", 0.0)))


@functools.lru_cache(maxsize=4)
def datasets(task: str, num_train: int, num_val: int, image_size: int, data_seed: int
             ) -> tuple[CocoDetection, CocoDetection]:
    """The protocol's train and validation sets (generated once per process into a temporary folder)."""
    make = context_detection if task == "context" else synthetic_detection
    return make(num_train, num_val, image_size=image_size, seed=data_seed,
                folder=tempfile.mkdtemp(prefix=f"gb-{task}-{data_seed}-"))


def _data(config: ProtocolConfig) -> tuple[CocoDetection, CocoDetection]:
    return datasets(config.task, config.num_train, config.num_val, config.image_size, config.data_seed)


def _summary(graph: Graph, space: DetectorSpace) -> tuple[float, int]:
    s = Summary.of(graph)
    return s.total_flops / space.batch, s.total_params


def run_fixed(config: ProtocolConfig, seed: int, changes: Mapping[str, str] | None = None, arm: str = "hand",
              progress: bool = False) -> UnitResult:
    """Retrain the hand-designed detector with the ops of `changes` (role or position -> op; e.g.
    ``{"neck": "sd_k3_d3"}``, a dilated neck) on `seed`, as every arm is retrained."""
    t0 = time.perf_counter()
    train, val = _data(config)
    graph = hand_designed(config.space, arm, **dict(changes or {}))
    run = retrain(graph, train, val, config.arm_config(arm, seed), progress=progress)
    flops, params = _summary(graph, config.space)
    arch = {p.name: graph_op(graph, p.name) for p in config.space.positions()}
    return UnitResult(arm, seed, run.metrics, flops, params, arch, graph, seconds=time.perf_counter() - t0)


def graph_op(graph: Graph, position: str) -> str:
    """The op label at a searched position of a plain detector graph."""
    return candidate_label(node_choice(find_position(graph, position)))


def random_scores(candidates: Mapping[str, Sequence[str]], seed: int) -> dict[str, list[float]]:
    """Independent Gumbel(0, 1) scores per position and candidate: their argmax is a uniformly random
    architecture, and `derive` under a budget then gives a random architecture within the budget."""
    gen = torch.Generator().manual_seed(10_007 * seed + 17)
    out = {}
    for pos, labels in candidates.items():
        u = torch.rand(len(labels), generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        out[pos] = (-torch.log(-torch.log(u))).tolist()
    return out


def run_unit(config: ProtocolConfig, arm: str, seed: int, kept: Mapping[str, Sequence[str]] | None = None,
             progress: bool = False) -> UnitResult:
    """Run one (arm, seed) unit of the protocol (see the module docstring); `kept` (component -> ops, the
    trinity arm's screened sets on this seed) is needed by the random arm only."""
    if arm not in ARMS:
        raise GraphError(f"arm={arm!r}: choose from {ARMS}")
    if arm == "hand":
        return run_fixed(config, seed, progress=progress)
    t0 = time.perf_counter()
    train, val = _data(config)
    cfg = config.arm_config(arm, seed)
    if arm == "random":
        if kept is None:
            raise GraphError("the random arm samples from the trinity arm's screened sets: pass kept= (component "
                             "-> ops) from the trinity unit of the same seed")
        net = supernet(config.space, {c: list(kept[c]) for c in COMPONENTS}, fixed=cfg.fixed)
        cands = {p.name: candidate_labels(net, p.name) for p in config.space.positions()}
        gumbel = random_scores(cands, seed)
        derived = derive_within(config.space, cfg, lambda universe: derivation_scores(gumbel, cands, {}, universe),
                                net, name="random")
        run = retrain(derived.graph, train, val, cfg, progress=progress)
        flops, params = _summary(derived.graph, config.space)
        return UnitResult(arm, seed, run.metrics, flops, params, derived.arch, derived.graph,
                          diagnostics={"within_budget": derived.feasible}, seconds=time.perf_counter() - t0)
    res = trinity(train, val, cfg, progress=progress)
    first_drop = min((s for drops in res.dropped.values() for s, _ in drops), default=None)
    before = [e for s, e in zip(res.history_steps, res.entropy_history, strict=True)
              if first_drop is None or s < first_drop]
    diagnostics = {"within_budget": res.within_budget, "entropy_before_shrink": before[-1] if before else None,
                   "entropy_final": res.alpha_entropy, "max_weight_final": res.max_weight,
                   "skipped": res.skipped, "times": res.times,
                   "screening_norms": res.screening.norms if res.screening else None}
    return UnitResult(arm, seed, res.metrics, res.flops, res.params, res.arch, res.graph,
                      kept=res.screening.kept if res.screening else None, diagnostics=diagnostics,
                      seconds=time.perf_counter() - t0)


Call = tuple[str, int, dict[str, list[str]] | None]  # (arm, seed, kept)
Runner = Callable[[ProtocolConfig, list[Call]], Iterable[UnitResult]]


def run_local(config: ProtocolConfig, calls: list[Call]) -> Iterable[UnitResult]:
    """Run calls one after the other in this process (the default runner)."""
    for arm, seed, kept in calls:
        yield run_unit(config, arm, seed, kept)


def run_protocol(config: ProtocolConfig, seeds: Sequence[int], *, runner: Runner = run_local,
                 done: Iterable[UnitResult] = (), on_result: Callable[[UnitResult], None] | None = None,
                 by_seed: bool = True) -> list[UnitResult]:
    """Run every (arm, seed) unit not already in `done`, in two phases: the hand, backbone and trinity arms,
    then the random arm (which needs the trinity arm's screened sets). `runner(config, calls)` yields one result
    per call, in any order; `on_result` sees each new result (to save it). With `by_seed` (for a runner that
    works through calls one by one) each seed's units run before the next seed's, so a run stopped early
    leaves complete seeds; without, each phase hands the runner every seed at once (for executors that run
    calls in parallel). Returns all results, seed-major in `ARMS` order."""
    results = {(r.arm, r.seed): r for r in done}
    for group in ([[s] for s in seeds] if by_seed else [list(seeds)]):
        for phase in (("hand", "backbone", "trinity"), ("random",)):
            calls: list[Call] = []
            for seed in group:
                for arm in phase:
                    if (arm, seed) not in results:
                        kept = results[("trinity", seed)].kept if arm == "random" else None
                        calls.append((arm, seed, kept))
            for res in runner(config, calls):
                results[(res.arm, res.seed)] = res
                if on_result is not None:
                    on_result(res)
    return [results[(arm, s)] for s in seeds for arm in ARMS]


@dataclass(frozen=True)
class Comparison:
    """Trinity minus one opponent over seeds: mean difference, its 95% interval (inverted sign-flip test),
    the one-sided exact p-value, and the p-value reported (Holm-corrected within the verdict's family)."""

    opponent: str
    diffs: tuple[float, ...]
    mean: float
    ci95: tuple[float, float]
    p_raw: float
    p: float

    def line(self) -> str:
        """``trinity-vs-<opponent>: mean=<d> ci95=[<lo>,<hi>] p=<p>``."""
        return (f"trinity-vs-{self.opponent}: mean={self.mean:.4f} ci95=[{self.ci95[0]:.4f},{self.ci95[1]:.4f}] "
                f"p={self.p:.4f}")


def compare(results: Sequence[UnitResult], metric: str = "mAP") -> dict[str, Comparison]:
    """Paired comparisons of the trinity arm against each opponent over the seeds both have."""
    by = {(r.arm, r.seed): r.metrics.get(metric, 0.0) for r in results}
    seeds = sorted({s for arm, s in by if arm == "trinity"})
    raw: dict[str, tuple[list[float], float]] = {}
    for opp in OPPONENTS:
        diffs = [by[("trinity", s)] - by[(opp, s)] for s in seeds if (opp, s) in by]
        if diffs:
            raw[opp] = (diffs, paired_stats.sign_flip_pvalue(diffs, "greater"))
    adjusted = paired_stats.holm({k: raw[k][1] for k in VERDICT_FAMILY if k in raw})
    return {opp: Comparison(opp, tuple(d), statistics.fmean(d), paired_stats.sign_flip_ci(d), p,
                            adjusted.get(opp, p)) for opp, (d, p) in raw.items()}


def verdict(comparisons: Mapping[str, Comparison], alpha: float = 0.05, min_difference: float = 0.02) -> str:
    """``win`` when trinity beats hand and backbone-only with Holm-corrected p < `alpha` and mean
    differences >= `min_difference`; else ``no-win``."""
    family = [comparisons.get(k) for k in VERDICT_FAMILY]
    ok = all(c is not None and c.p < alpha and c.mean >= min_difference for c in family)
    return "win" if ok else "no-win"
