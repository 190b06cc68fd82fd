"""Hit-Detector trinity search: backbone, neck and head of a one-stage detector searched together on the IR.

    config = TrinityConfig(search_steps=150, seed=0)     # every setting, frozen, saved with the result
    result = gb.search.trinity(train, val, config)
    result.screening          # which ops each component kept
    result.plot()             # architecture weights over the joint search
    result.graph              # the derived detector: a plain gb.Graph (backbone, neck, head blocks), retrained
    result.metrics            # COCO mAP (and AP per pyramid level) through pycocotools
    result.save("hit.json"); TrinityResult.load("hit.json")

Boundary: the search procedure on graphs from `detector_space.py`, one function per stage (`screen`, `search`,
`derive`, `retrain`; `trinity` runs them in order). The generic DARTS pieces (proximal group step, budget fit,
weight inheritance, shrinking) are in `darts.py`, detection losses and metrics in `graphbuilder.detection`.
Reference: Hit-Detector, Guo et al., CVPR 2020, arXiv:2003.11818. Its search code was never released; every
choice below is documented in docs/hit_detector.md.

Stages:
1. Screening. A supernet with every candidate of the large operator set at every searched position, mixed
   *linearly* by alpha (so an op can be switched off exactly), candidates without affine norms. Weights
   (split A) and alphas (split B) are updated alternately; the alpha step is a proximal-gradient step for the
   group-sparsity penalty ``lambda * sum_ops ||alpha[:, op]||_2`` over each component's positions, i.e. group
   soft-thresholding. The top-k ops by column norm are kept per component.
2. Joint search. A new supernet whose positions mix the kept ops of their component with softmax(alpha)
   (first-order DARTS, arXiv:1806.09055): weights on split A, alphas on split B, alternately, with loss
   ``detection + gamma * sum_pos sum_i softmax(alpha_pos)_i * cost_pos_i`` (costs normalised so a uniform
   architecture costs 1). At fixed fractions of the alpha phase the weakest candidates of every position are
   dropped (progressive shrinking), so the supernet ends close to the network it will be discretised to.
3. Derive: the most probable architecture (log softmax over the remaining candidates; dropped ones only
   where the budget needs them) within ``budget * (1 +- tolerance)`` when a budget is given, else the argmax.
4. Retrain the derived detector from scratch and evaluate it.

Shape-preserving positions compute ``x + sum_i w_i f_i(x)`` with the identity outside the mixture (see
`detector_space.py`); candidates carry no affine norm while searching; the head uses GroupNorm.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from graphbuilder.compile import compile as gb_compile
from graphbuilder.compile.weights import store_weights
from graphbuilder.detection.evaluate import evaluate_detector
from graphbuilder.detection.fcos import DetectionLayout, detection_loss
from graphbuilder.detection.train import Batches, cosine_lr, train_detector
from graphbuilder.ir import registry
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.ir.render import Summary
from graphbuilder.ir.serialize import graph_from_dict, graph_to_dict
from graphbuilder.ops.modules.search_space import MixedOp
from graphbuilder.ops.search_space import candidate_label, candidate_list
from graphbuilder.search import darts
from graphbuilder.search.detector_space import (
    COMPONENTS,
    FULL_OPS,
    HAND_DESIGNED,
    ROLES,
    DetectorSpace,
    Position,
    build_detector,
    candidate_costs,
    find_position,
    node_choice,
)
from graphbuilder.search.result import BaseResult
from graphbuilder.search.trinity_view import WidgetView

RESULT_FORMAT = "graphbuilder.trinity_result"

#: Gradient-norm clip of the screening alphas (over all positions) before each proximal SGD step.
SCREEN_ALPHA_CLIP = 1.0

#: Log-probability given up per shrinking round a dropped candidate missed: derivation takes a dropped
#: candidate only when no architecture of remaining ones meets the budget (the latest dropped first).
DROPPED_PENALTY = 10.0


@dataclass(frozen=True)
class TrinityConfig:
    """Every setting of a trinity search (frozen; saved with the result). Defaults in brackets.

    Attributes:
        space: sizes of the detector; None [default] fits the training set (image size, classes).
        search: components searched [all three]; the others use the `fixed` ops.
        operators: the large operator set each component screens, per component (a plain sequence applies to
            all) [`FULL_OPS`: the 13 search ops but `skip`; `skip` is refused, see `detector_space.FULL_OPS`].
            Any registered one-input op whose output fits the positions may be listed (see `mixed_op`).
        top_k: ops screening keeps per component (an int applies to all) [4]. ``screen_steps=0`` skips
            screening and searches over all `operators`.
        fixed: op per role (``backbone``, ``lateral``, ``neck``, ``head``) for components not searched
            [the hand-designed detector's].
        screen_steps, search_steps, retrain_steps: optimisation lengths [60, 120, 300].
        warmup: fraction of screening and of the joint search that trains weights only, so alphas rank
            trained ops, not the op that trains fastest [0.5].
        batch_size, retrain_batch_size, lr: weight training (AdamW, cosine schedule) [8, 16, 3e-3].
        screen_alpha_lr, sparsity: proximal SGD on the screening alphas; `sparsity` is the group-lasso
            lambda [0.05, 0.15].
        alpha_lr: Adam on the joint-search alphas (betas 0.5, 0.999, weight decay 1e-3, as DARTS) [0.03].
        shrink_at: fractions of the joint search's alpha phase after which each position drops its
            `shrink_drop` weakest candidates [(1/3, 2/3), 1]; ``()`` turns shrinking off.
        gamma, cost: resource penalty weight and cost kind, ``"flops"`` (per image) or ``"params"``
            [0.0 as the released training config; "flops"].
        budget, tolerance: derive within ``budget * (1 +- tolerance)`` of the whole detector's cost
            (`darts.fit_budget`: raises an architecture under budget as well as trimming one over it);
            None: plain argmax [None, 0.03].
        size_bounds: half-size bounds of the pyramid levels for target assignment (`DetectionLayout`);
            ``()`` [default]: twice each level's stride.
        inherit: the joint supernet starts from the screening supernet's trained weights [True].
        seed: fixes data order, splits and initialisation: same seed, same result [0].
        log_every: steps between recorded alphas [5].
    """

    space: DetectorSpace | None = None
    search: tuple[str, ...] = COMPONENTS
    operators: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, FULL_OPS))
    top_k: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(COMPONENTS, 4))
    fixed: Mapping[str, str] = field(default_factory=lambda: dict(HAND_DESIGNED))
    screen_steps: int = 60
    search_steps: int = 120
    retrain_steps: int = 300
    warmup: float = 0.5
    batch_size: int = 8
    retrain_batch_size: int = 16
    lr: float = 3e-3
    screen_alpha_lr: float = 0.05
    sparsity: float = 0.15
    alpha_lr: float = 0.03
    shrink_at: tuple[float, ...] = (1 / 3, 2 / 3)
    shrink_drop: int = 1
    gamma: float = 0.0
    cost: str = "flops"
    budget: float | None = None
    tolerance: float = 0.03
    size_bounds: tuple[float, ...] = ()
    inherit: bool = True
    seed: int = 0
    log_every: int = 5

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:  # normalise a field of this frozen dataclass
            object.__setattr__(self, name, value)

        set_("search", tuple(self.search))
        for comp in self.search:
            if comp not in COMPONENTS:
                raise GraphError(f"search={list(self.search)}: {comp!r} is not a component; choose from {COMPONENTS}")
        ops = self.operators
        ops = dict(ops) if isinstance(ops, Mapping) else dict.fromkeys(COMPONENTS, ops)
        set_("operators", {c: tuple(ops.get(c, FULL_OPS)) for c in COMPONENTS})
        for comp, names in self.operators.items():
            bad = [o for o in names if o == "skip" or o not in registry.names()]
            if bad or not names:
                raise GraphError(f"operators[{comp!r}] = {list(names)}: {bad or 'empty'}; choose registered ops, "
                                 f"e.g. {list(FULL_OPS)} (skip is left out: positions add their identity outside)")
        k = self.top_k
        set_("top_k", {c: int(k[c] if isinstance(k, Mapping) else k) for c in COMPONENTS})
        if any(v < 1 for v in self.top_k.values()):
            raise GraphError(f"top_k={self.top_k}: keep at least one op per component")
        set_("fixed", {**HAND_DESIGNED, **dict(self.fixed)})
        bad = set(self.fixed) - set(ROLES)
        if bad:
            raise GraphError(f"fixed has unknown roles {sorted(bad)}; give ops for {ROLES}")
        set_("shrink_at", tuple(float(f) for f in self.shrink_at))
        set_("size_bounds", tuple(float(b) for b in self.size_bounds))
        if self.cost not in ("flops", "params"):
            raise GraphError(f"cost={self.cost!r}: choose 'flops' or 'params'")
        if not 0 <= self.warmup < 1:
            raise GraphError(f"warmup={self.warmup}: give the weight-only fraction of each stage, in [0, 1)")
        if any(not 0 < f < 1 for f in self.shrink_at) or list(self.shrink_at) != sorted(self.shrink_at):
            raise GraphError(f"shrink_at={self.shrink_at}: give increasing fractions in (0, 1)")
        if min(self.screen_steps, self.search_steps, self.retrain_steps) < 0 or self.log_every < 1:
            raise GraphError("step counts must be >= 0 and log_every >= 1")
        if self.tolerance <= 0:
            raise GraphError(f"tolerance={self.tolerance}: give the budget window's half-width, e.g. 0.03")

    def replace(self, **changes: Any) -> TrinityConfig:
        """A copy with `changes` (validated like a new config)."""
        return dataclasses.replace(self, **changes)

    def layout(self) -> DetectionLayout:
        """The prediction layout of the configured space (needs `space`)."""
        space = self._space()
        return DetectionLayout((space.image_size, space.image_size), space.strides, space.num_classes,
                               self.size_bounds)

    def for_data(self, train: Any) -> TrinityConfig:
        """This config with `space` fitted to `train` when unset; checks the images fit the space."""
        config = self
        if self.space is None:
            config = self.replace(space=DetectorSpace(image_size=int(train.images.shape[-1]),
                                                      num_classes=int(train.num_classes)))
        size = config._space().image_size
        if tuple(train.images.shape[-2:]) != (size, size):
            raise GraphError(f"images are {tuple(train.images.shape[-2:])} but space.image_size is {size}; load "
                             "the dataset with image_size equal to the space's")
        if len(train) < 2:
            raise GraphError(f"the training set has {len(train)} image(s); the search needs at least 2 (two splits)")
        return config

    def _space(self) -> DetectorSpace:
        if self.space is None:
            raise GraphError("this config has no detector space yet; call config.for_data(train) first")
        return self.space

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["space"] = None if self.space is None else self.space.to_dict()
        out["search"], out["shrink_at"], out["size_bounds"] = (list(self.search), list(self.shrink_at),
                                                               list(self.size_bounds))
        out["operators"] = {c: list(v) for c, v in self.operators.items()}
        out["top_k"], out["fixed"] = dict(self.top_k), dict(self.fixed)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> TrinityConfig:
        """Inverse of `to_dict` (raises `GraphError` on unknown settings)."""
        if not isinstance(data, dict):
            raise GraphError(f"a trinity config must be an object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(data) - known
        if bad:
            raise GraphError(f"unknown trinity settings {sorted(bad)}; known: {sorted(known)}")
        values = dict(data)
        if values.get("space") is not None:
            values["space"] = DetectorSpace.from_dict(values["space"])
        return cls(**values)


@dataclass
class ScreeningReport:
    """What screening kept: per component the kept ops (best first), every op's column norm, the ops whose
    column was driven to exactly zero, and the steps run."""

    kept: dict[str, list[str]]
    norms: dict[str, dict[str, float]]
    zeroed: dict[str, list[str]]
    steps: int

    def __str__(self) -> str:
        lines = [f"screening ({self.steps} steps): kept per component"]
        for comp, ops in self.kept.items():
            dropped = f"; zeroed: {', '.join(self.zeroed[comp])}" if self.zeroed[comp] else ""
            lines.append(f"  {comp:8s} {', '.join(f'{o} ({self.norms[comp][o]:.3f})' for o in ops)}{dropped}")
        return "\n".join(lines)

    __repr__ = __str__


# -- supernets --------------------------------------------------------------------------------------------------
def supernet(space: DetectorSpace, candidates: Mapping[str, Sequence[Any]], weighting: str = "softmax",
             fixed: Mapping[str, str] | None = None, name: str = "supernet") -> Graph:
    """The supernet graph: a ``mixed_op`` (affine-free norms) at every position of the components in
    `candidates` (component -> candidate list), the op of `fixed` (role -> op) elsewhere."""
    fixed = {**HAND_DESIGNED, **(fixed or {})}

    def choose(pos: Position) -> tuple[str, dict[str, Any]]:
        if pos.component in candidates:
            return "mixed_op", {"candidates": list(candidates[pos.component]), "weighting": weighting,
                                "affine": False}
        return candidate_list([fixed[pos.role]])[0]

    return build_detector(space, choose, name)


def mixed_modules(graph: Graph, model: nn.Module) -> dict[str, MixedOp]:
    """The compiled `MixedOp` of every mixed_op position, by position name (position names are identifiers,
    so compile keeps them as the submodule names)."""
    found = {qual.rsplit(".", 1)[-1]: m for qual, m in model.named_modules() if isinstance(m, MixedOp)}
    wanted = [n.name for comp in COMPONENTS if comp in graph and graph[comp].block is not None
              for n in graph[comp].block if n.op == "mixed_op"]
    missing = [n for n in wanted if n not in found]
    if missing:
        raise GraphError(f"compiled supernet lacks mixed ops {missing}; was it compiled from graph {graph.name!r}?",
                         missing)
    return {n: found[n] for n in wanted}


def candidate_labels(graph: Graph, position: str) -> list[str]:
    """The candidate labels of a mixed_op position, in candidate order."""
    return [candidate_label(c) for c in candidate_list(find_position(graph, position).params["candidates"])]


def _qualified_labels(graph: Graph, model: nn.Module) -> dict[str, list[str]]:
    return {qual: candidate_labels(graph, qual.rsplit(".", 1)[-1])
            for qual, m in model.named_modules() if isinstance(m, MixedOp)}


def _groups(space: DetectorSpace, mixed: Mapping[str, MixedOp]) -> dict[str, list[str]]:
    return {c: [p.name for p in space.component_positions(c) if p.name in mixed] for c in COMPONENTS}


def _alphas(mixed: Mapping[str, MixedOp], softmax: bool) -> dict[str, list[float]]:
    with torch.no_grad():
        return {k: (m.weights() if softmax else m.alpha).tolist() for k, m in mixed.items()}


# -- the alternating optimisation ---------------------------------------------------------------------------------
@dataclass
class _Loop:
    """One alternating weight/alpha optimisation (screening or joint search)."""

    model: nn.Module
    mixed: dict[str, MixedOp]
    layout: DetectionLayout
    batches_w: Batches
    batches_a: Batches
    steps: int
    warmup: int
    lr: float
    log_every: int
    progress: bool
    desc: str
    skipped: int = 0

    def run(self, alpha_step: Callable[[int, torch.Tensor, list[dict[str, torch.Tensor]]], None],
            record: Callable[[int], None], on_log: Callable[[], None] | None = None) -> tuple[int, bool]:
        """Alternate weight and alpha steps; `record(step)` every `log_every` steps. Returns (steps done,
        interrupted by Ctrl-C)."""
        alpha_ids = {id(m.alpha) for m in self.mixed.values()}
        weights = [p for p in self.model.parameters() if id(p) not in alpha_ids]
        opt = torch.optim.AdamW(weights, lr=self.lr, weight_decay=1e-4)
        self.model.train()
        done, interrupted = 0, False
        record(0)
        bar = tqdm(range(self.steps), desc=self.desc, disable=not self.progress, leave=False)
        try:
            for step in bar:
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(step, self.steps, self.lr)
                images, targets = self.batches_w.next()
                loss = detection_loss(self.model(images), targets, self.layout)["loss"]
                opt.zero_grad()
                loss.backward()
                if torch.isfinite(nn.utils.clip_grad_norm_(weights, 10.0)):
                    opt.step()  # a non-finite loss or gradient skips the step (counted in `skipped`)
                else:
                    self.skipped += 1
                if step >= self.warmup:
                    images, targets = self.batches_a.next()
                    alpha_step(step, images, targets)
                done = step + 1
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
                if done % self.log_every == 0 or done == self.steps:
                    record(done)
                    if on_log is not None:
                        on_log()
        except KeyboardInterrupt:
            interrupted = True
            record(done)
        finally:
            bar.close()
        return done, interrupted


def _loop(model: nn.Module, graph: Graph, train: Any, config: TrinityConfig, steps: int, salt: int, desc: str,
          progress: bool) -> _Loop:
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(config.seed)).tolist()
    split_w, split_a = order[: len(order) // 2], order[len(order) // 2:]
    layout = config.layout()
    seed = config.seed * 1000 + salt
    return _Loop(model, mixed_modules(graph, model), layout,
                 Batches(train, layout, config.batch_size, seed, split_w),
                 Batches(train, layout, config.batch_size, seed + 1, split_a),
                 steps, int(round(config.warmup * steps)), config.lr, config.log_every, progress, desc)


def _finite_grads(params: list[torch.Tensor]) -> bool:
    """Whether every gradient of `params` is finite (a rare non-finite detection loss skips the alpha step)."""
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)


# -- stage 1: screening -------------------------------------------------------------------------------------------
@dataclass
class Screening:
    """The output of `screen`: the report, the trained linear supernet (graph and module, for inheritance),
    the alpha history, skipped steps, seconds, and whether Ctrl-C stopped it."""

    report: ScreeningReport
    supernet: Graph
    model: nn.Module
    steps: list[int]
    history: dict[str, list[list[float]]]
    skipped: int
    seconds: float
    interrupted: bool


def screen(train: Any, config: TrinityConfig, *, progress: bool = True, widget: Any = None) -> Screening:
    """Stage 1: group-sparse screening of each searched component's operator set; keeps the top-k per
    component (see the module docstring)."""
    config = config.for_data(train)
    space = config._space()
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    graph = supernet(space, {c: config.operators[c] for c in config.search}, weighting="linear",
                     fixed=config.fixed, name="screening_supernet")
    model = gb_compile(graph)
    lp = _loop(model, graph, train, config, config.screen_steps, 0, "screening", progress)
    alpha_params = [m.alpha for m in lp.mixed.values()]
    sgd = torch.optim.SGD(alpha_params, lr=config.screen_alpha_lr)
    groups = _groups(space, lp.mixed)
    view = WidgetView(widget, graph, space) if widget is not None else None
    steps: list[int] = []
    history: dict[str, list[list[float]]] = {}

    def alpha_step(step: int, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> None:
        loss = detection_loss(lp.model(images), targets, lp.layout)["loss"]
        sgd.zero_grad()
        loss.backward()
        if not _finite_grads(alpha_params):
            lp.skipped += 1
            return
        # linear alphas are unbounded and multiply through the depth: clip the step (a long screen diverged)
        nn.utils.clip_grad_norm_(alpha_params, SCREEN_ALPHA_CLIP)
        sgd.step()
        darts.proximal_group_step(lp.mixed, groups, config.screen_alpha_lr * config.sparsity)

    def record(step: int) -> None:
        steps.append(step)
        for k, v in _alphas(lp.mixed, softmax=False).items():
            history.setdefault(k, []).append(v)

    def show() -> None:
        if view is not None:
            view.update({k: [abs(a) for a in v] for k, v in _alphas(lp.mixed, softmax=False).items()})

    done, interrupted = lp.run(alpha_step, record, show)
    norms = {c: darts.group_norms([lp.mixed[n].alpha for n in names], candidate_labels(graph, names[0]))
             for c, names in groups.items() if names}
    kept = {c: darts.select_top_k(norms[c], config.top_k[c]) for c in config.search}
    report = ScreeningReport(kept, norms, {c: [o for o, v in norms[c].items() if v == 0.0] for c in config.search},
                             done)
    return Screening(report, graph, model, steps, history, lp.skipped, time.perf_counter() - t0, interrupted)


# -- stage 2: joint search ----------------------------------------------------------------------------------------
@dataclass
class JointSearch:
    """The output of `search`.

    Attributes:
        supernet: the softmax supernet graph; its mixed_op nodes hold the final alphas, and
            ``node.meta["dropped"]`` maps each dropped candidate to the step it was dropped at.
        model: the trained supernet module.
        candidates: candidate labels per position.
        alphas: final raw alphas per position (dropped candidates keep their value at the drop).
        active: per position, which candidates were still in the mixture at the end.
        dropped: per position, (step, label) of each dropped candidate, in order.
        costs: per position and candidate ``{"flops", "params"}`` (FLOPs per image).
        steps, history: the logged steps and softmax(alpha) over the active candidates at each.
        entropy: mean normalised entropy of the mixing weights over positions at each logged step
            (`darts.entropy`: 1 uniform, 0 decided).
        skipped, seconds, interrupted: as in `Screening`.
    """

    supernet: Graph
    model: nn.Module
    candidates: dict[str, list[str]]
    alphas: dict[str, list[float]]
    active: dict[str, list[bool]]
    dropped: dict[str, list[tuple[int, str]]]
    costs: dict[str, dict[str, dict[str, int]]]
    steps: list[int]
    history: dict[str, list[list[float]]]
    entropy: list[float]
    skipped: int
    seconds: float
    interrupted: bool

    def scores(self, universe: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[float]]:
        """Derivation scores per position (`derivation_scores`)."""
        return derivation_scores(self.alphas, self.candidates, self.dropped, universe)


def derivation_scores(alphas: Mapping[str, Sequence[float]], candidates: Mapping[str, Sequence[str]],
                      dropped: Mapping[str, Sequence[tuple[int, str]]],
                      universe: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[float]]:
    """Scores for `derive`, per position over the labels of `universe` (default: `candidates`).

    An active candidate scores log softmax(alpha) over the active ones. A candidate dropped by shrinking
    scores `DROPPED_PENALTY` per shrinking round since (and including) its drop below the worst active one;
    a label of `universe` the search never had (screening did not keep it) one round more than the earliest
    drop. So budget fitting takes such candidates only where the search's choices cannot meet the budget,
    the latest dropped first. Without shrinking or a universe the scores are log softmax(alpha).
    """
    rounds = sorted({step for drops in dropped.values() for step, _ in drops})
    out = {}
    for pos, alpha in alphas.items():
        out_at = {label: step for step, label in dropped.get(pos, [])}
        on = torch.tensor([label not in out_at for label in candidates[pos]])
        logp = torch.log_softmax(torch.tensor(alpha, dtype=torch.float64).masked_fill(~on, float("-inf")), 0)
        floor = float(logp[on].min())
        score = {label: float(v) if label not in out_at else
                 floor - DROPPED_PENALTY * sum(r >= out_at[label] for r in rounds)
                 for v, label in zip(logp.tolist(), candidates[pos], strict=True)}
        labels = universe[pos] if universe is not None else candidates[pos]
        out[pos] = [score.get(label, floor - DROPPED_PENALTY * (len(rounds) + 1)) for label in labels]
    return out


def search(train: Any, config: TrinityConfig, kept: Mapping[str, Sequence[str]], *,
           screened: Screening | None = None, progress: bool = True, widget: Any = None) -> JointSearch:
    """Stage 2: first-order DARTS over the `kept` ops of each searched component (component -> op names),
    with progressive shrinking; starts from the `screened` supernet's weights when ``config.inherit``."""
    config = config.for_data(train)
    space = config._space()
    t0 = time.perf_counter()
    torch.manual_seed(config.seed + 1)
    graph = supernet(space, {c: list(kept[c]) for c in config.search}, weighting="softmax", fixed=config.fixed)
    model = gb_compile(graph)
    lp = _loop(model, graph, train, config, config.search_steps, 2, "joint search", progress)
    if config.inherit and screened is not None:
        darts.inherit_weights(screened.model, model, _qualified_labels(screened.supernet, screened.model),
                              _qualified_labels(graph, model))
    costs = {pos: {label: {k: v // (space.batch if k == "flops" else 1) for k, v in c.items()}  # FLOPs per image
                   for label, c in candidate_costs(graph, pos, find_position(graph, pos).params["candidates"]).items()}
             for pos in lp.mixed}
    table = {pos: torch.tensor([float(c[config.cost]) for c in costs[pos].values()]) for pos in lp.mixed}
    scale = sum(float(t.mean()) for t in table.values()) or 1.0
    norm_cost = {pos: t / scale for pos, t in table.items()}
    alphas = [m.alpha for m in lp.mixed.values()]
    adam = torch.optim.Adam(alphas, lr=config.alpha_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    alpha_steps = config.search_steps - lp.warmup
    shrink_after = {lp.warmup + max(1, round(f * alpha_steps)) - 1 for f in config.shrink_at} if alpha_steps else set()
    dropped: dict[str, list[tuple[int, str]]] = {pos: [] for pos in lp.mixed}
    labels = {pos: list(costs[pos]) for pos in lp.mixed}
    view = WidgetView(widget, graph, space) if widget is not None else None
    steps: list[int] = []
    history: dict[str, list[list[float]]] = {}
    entropy: list[float] = []

    def alpha_step(step: int, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> None:
        loss = detection_loss(lp.model(images), targets, lp.layout)["loss"]
        if config.gamma:
            loss = loss + config.gamma * sum((m.weights() * norm_cost[p]).sum() for p, m in lp.mixed.items())
        adam.zero_grad()
        loss.backward()
        if _finite_grads(alphas):
            adam.step()
        else:
            lp.skipped += 1
        if step in shrink_after:
            for pos, m in lp.mixed.items():
                for i in darts.weakest(m.alpha.detach(), m.active, config.shrink_drop):
                    m.drop(i)
                    dropped[pos].append((step + 1, labels[pos][i]))

    def record(step: int) -> None:
        steps.append(step)
        weights = _alphas(lp.mixed, softmax=True)
        for k, v in weights.items():
            history.setdefault(k, []).append(v)
        entropy.append(sum(darts.entropy(w) for w in weights.values()) / max(len(weights), 1))

    def show() -> None:
        if view is not None:
            view.update(_alphas(lp.mixed, softmax=True))

    _, interrupted = lp.run(alpha_step, record, show)
    final = _alphas(lp.mixed, softmax=False)
    for pos, alpha in final.items():
        node = find_position(graph, pos)
        node.params["alpha"] = tuple(alpha)
        node.meta["dropped"] = {label: step for step, label in dropped[pos]}
    return JointSearch(graph, model, labels, final, {p: list(m.active) for p, m in lp.mixed.items()}, dropped,
                       costs, steps, history, entropy, lp.skipped, time.perf_counter() - t0, interrupted)


# -- stage 3: derive ----------------------------------------------------------------------------------------------
@dataclass
class Derivation:
    """The output of `derive`: the plain detector graph, the op per position, its cost (FLOPs per image or
    params), and whether it lies within the budget window (None without a budget)."""

    graph: Graph
    arch: dict[str, str]
    cost: float
    feasible: bool | None


def derive(space: DetectorSpace, graph: Graph, scores: Mapping[str, Sequence[float]], *,
           candidates: Mapping[str, Sequence[Any]] | None = None, budget: float | None = None,
           tolerance: float = 0.03, cost: str = "flops", name: str = "hit_detector") -> Derivation:
    """Stage 3: the plain detector from a supernet `graph` and per-position candidate `scores`
    (log-probabilities, e.g. `JointSearch.scores`; any scores work, e.g. random ones).

    `candidates` (position -> candidate entries, aligned with `scores`) defaults to the candidates of the
    graph's mixed_op nodes; positions of other nodes keep their op. Without a `budget`: the highest-scoring
    candidate per position. With one (FLOPs per image, or params, by `cost`): the highest total score within
    ``budget * (1 +- tolerance)`` (`darts.fit_budget`), which raises an architecture under budget as well as
    trimming one over it; the rest of the network (stem, predictor, fixed positions) counts as it is.
    """
    if candidates is None:
        candidates = {p.name: find_position(graph, p.name).params["candidates"] for p in space.positions()
                      if find_position(graph, p.name).op == "mixed_op"}
    cands = {p: candidate_list(c) for p, c in candidates.items()}
    bad = [p for p in cands if p not in scores or len(scores[p]) != len(cands[p])]
    if bad:
        raise GraphError(f"positions {bad} need one score per candidate", bad)
    choice = {p: max(range(len(c)), key=lambda i, p=p: scores[p][i]) for p, c in cands.items()}

    def build(pick: Mapping[str, int]) -> tuple[Graph, dict[str, str]]:
        picks = {pos.name: cands[pos.name][pick[pos.name]] if pos.name in cands else
                 node_choice(find_position(graph, pos.name)) for pos in space.positions()}
        out = build_detector(space, lambda p: picks[p.name], name)
        arch = {p: candidate_label(c) for p, c in picks.items()}
        out.meta["trinity"] = {"arch": arch}
        return out, arch

    def total(g: Graph) -> float:
        s = Summary.of(g)
        return s.total_flops / space.batch if cost == "flops" else float(s.total_params)

    derived, arch = build(choice)
    if budget is None:
        return Derivation(derived, arch, total(derived), None)
    per = space.batch if cost == "flops" else 1
    table = {p: [v[cost] / per for v in candidate_costs(graph, p, candidates[p]).values()] for p in cands}
    fixed_part = total(derived) - sum(table[p][choice[p]] for p in cands)
    fit = darts.fit_budget({p: list(scores[p]) for p in cands}, table, fixed_part, budget, tolerance)
    derived, arch = build(fit.choice)
    got = total(derived)
    return Derivation(derived, arch, got, (1 - tolerance) * budget <= got <= (1 + tolerance) * budget)


def derive_within(space: DetectorSpace, config: TrinityConfig,
                  scores: Callable[[Mapping[str, Sequence[str]] | None], Mapping[str, Sequence[float]]],
                  graph: Graph, name: str = "hit_detector") -> Derivation:
    """`derive` as the search uses it: without a budget, over `graph`'s candidates (the search's); with one,
    over each searched component's whole operator set (``scores(labels)`` ranks the ops the search never
    had last, see `derivation_scores`), so the budget window is met whenever the operator set allows it.
    `graph` is any detector graph of `space` with the searched components as mixed_op positions."""
    if config.budget is None:
        return derive(space, graph, scores(None), cost=config.cost, name=name)
    universe = {p.name: list(config.operators[p.component]) for p in space.positions()
                if p.component in config.search}
    labels = {p: [candidate_label(c) for c in candidate_list(ops)] for p, ops in universe.items()}
    return derive(space, graph, scores(labels), candidates=universe, budget=config.budget,
                  tolerance=config.tolerance, cost=config.cost, name=name)


# -- stage 4: retrain ---------------------------------------------------------------------------------------------
@dataclass
class Retraining:
    """The output of `retrain`: the trained module, its metrics on the validation set (empty without one),
    the training losses, seconds, and whether Ctrl-C stopped it."""

    model: nn.Module
    metrics: dict[str, float]
    losses: list[float]
    seconds: float
    interrupted: bool


def retrain(graph: Graph, train: Any, val: Any, config: TrinityConfig, *, seed: int | None = None,
            progress: bool = True) -> Retraining:
    """Stage 4: train `graph` from scratch (AdamW, cosine, flips; ``config.retrain_steps`` steps of
    ``config.retrain_batch_size``), store the weights in ``graph.weights`` and evaluate on `val`.

    `seed` (default ``config.seed``) fixes initialisation and batches: detectors retrained with the same seed
    see the same batches in the same order, so paired comparisons differ only by architecture.
    """
    config = config.for_data(train)
    seed = config.seed if seed is None else seed
    t0 = time.perf_counter()
    torch.manual_seed(seed + 2)
    model = gb_compile(graph)
    run = train_detector(model, train, config.layout(), config.retrain_steps, batch_size=config.retrain_batch_size,
                         lr=config.lr, seed=seed + 3, progress=progress, desc="retrain")
    store_weights(graph, model)
    metrics = evaluate_detector(model, val, config.layout()) if val is not None and not run["interrupted"] else {}
    return Retraining(model, metrics, run["losses"], time.perf_counter() - t0, run["interrupted"])


# -- the result ---------------------------------------------------------------------------------------------------
@dataclass
class TrinityResult(BaseResult):
    """Everything a trinity search produced (fields are empty where a stage did not run or was interrupted).

    Attributes:
        config: the settings it ran with (space filled in).
        derived: the derived detector (a plain `gb.Graph` with backbone, neck and head blocks; retrained
            weights in ``derived.weights`` when retraining ran). Also `graph`.
        supernet: the joint-search supernet, its mixed_op nodes holding the final alphas.
        arch: chosen op per searched position.
        candidates: candidate labels per position in the joint search.
        alpha_history: per position, softmax(alpha) over the active candidates at each of `history_steps`.
        entropy_history: mean normalised alpha entropy at each of `history_steps` (1 uniform, 0 decided).
        dropped: per position, (step, label) of the candidates progressive shrinking dropped.
        screen_history, screen_steps: the raw screening alphas per position at each logged screening step.
        screening: the `ScreeningReport` (None without screening).
        costs: per position and candidate ``{"flops" (per image), "params"}``.
        metrics: COCO metrics of the retrained detector on the validation set (``AP_P3``... per level).
        flops, params: of the derived detector (FLOPs per image).
        within_budget: whether the derived cost lies in the budget window (None without a budget).
        times: seconds per stage (``screen``, ``search``, ``retrain``).
        skipped: per stage, optimisation steps skipped for a non-finite loss or gradient (normally 0).
        interrupted: True when Ctrl-C stopped the run; `stage` says where.
        model: the retrained compiled module (None without retraining; not saved).
    """

    config: TrinityConfig
    derived: Graph | None = None
    supernet: Graph | None = None
    arch: dict[str, str] = field(default_factory=dict)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    alpha_history: dict[str, list[list[float]]] = field(default_factory=dict)
    history_steps: list[int] = field(default_factory=list)
    entropy_history: list[float] = field(default_factory=list)
    dropped: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    screen_history: dict[str, list[list[float]]] = field(default_factory=dict)
    screen_steps: list[int] = field(default_factory=list)
    screening: ScreeningReport | None = None
    costs: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    flops: float = 0.0
    params: int = 0
    within_budget: bool | None = None
    times: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    stage: str = "setup"
    model: nn.Module | None = None

    @property
    def graph(self) -> Graph:
        """The derived detector (with its retrained weights)."""
        if self.derived is None:
            raise GraphError(f"this search stopped in stage {self.stage!r} before deriving a detector")
        return self.derived

    @property
    def layout(self) -> DetectionLayout:
        """The prediction layout the detector was trained with (for `detection.decode` / `predict`)."""
        return self.config.layout()

    @property
    def alpha_entropy(self) -> float:
        """Mean normalised entropy of the final mixing weights (over the candidates still active)."""
        return self.entropy_history[-1] if self.entropy_history else float("nan")

    @property
    def max_weight(self) -> float:
        """Mean over positions of the largest final mixing weight."""
        finals = [max(h[-1]) for h in self.alpha_history.values() if h]
        return sum(finals) / len(finals) if finals else float("nan")

    def plot(self, positions: Sequence[str] | None = None, cols: int = 4) -> Any:
        """A matplotlib figure: softmax(alpha) of every candidate over the joint search, one panel per
        position (the final choice drawn thick; dotted lines where shrinking dropped candidates)."""
        import matplotlib.pyplot as plt

        names = list(positions or self.alpha_history)
        if not names:
            raise GraphError("no alpha history to plot: the joint search did not run")
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names, strict=False):
            hist = torch.tensor(self.alpha_history[name])  # (T, K)
            for k, label in enumerate(self.candidates[name]):
                thick = self.arch.get(name) == label
                ax.plot(self.history_steps, hist[:, k].tolist(), lw=2.5 if thick else 1, label=label)
            for step in sorted({s for s, _ in self.dropped.get(name, [])}):
                ax.axvline(step, color="grey", ls=":", lw=1)
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, loc="upper left")
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.supxlabel("search step")
        fig.supylabel("softmax(alpha)")
        fig.tight_layout()
        return fig

    def table(self) -> str:
        """Chosen op per position with its cost."""
        lines = [f"{'position':12s} {'op':14s} {'MFLOPs':>8s} {'params':>8s}"]
        for pos, op in self.arch.items():
            c = self.costs.get(pos, {}).get(op)
            cost = f"{c['flops'] / 1e6:8.3f} {c['params']:8d}" if c else f"{'fixed':>8s} {'':8s}"
            lines.append(f"{pos:12s} {op:14s} {cost}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = f"interrupted in {self.stage}" if self.interrupted else self.stage
        return (f"TrinityResult({state}, {len(self.arch)} positions, flops={self.flops:,.0f}, params={self.params:,}, "
                f"metrics={ {k: round(v, 4) for k, v in self.metrics.items() if k in ('mAP', 'mAP50')} })")

    # -- files -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON document: format tag, config, every history, the derived detector with its weights and the
        supernet (alphas in its mixed_op params)."""
        return {
            "format": RESULT_FORMAT, "version": 1, "config": self.config.to_dict(),
            "derived": None if self.derived is None else graph_to_dict(self.derived),
            "weights": None if self.derived is None else _weights_to_json(self.derived),
            "supernet": None if self.supernet is None else graph_to_dict(self.supernet),
            "arch": self.arch, "candidates": self.candidates, "alpha_history": self.alpha_history,
            "history_steps": self.history_steps, "entropy_history": self.entropy_history,
            "dropped": {p: [list(d) for d in v] for p, v in self.dropped.items()},
            "screen_history": self.screen_history, "screen_steps": self.screen_steps,
            "screening": None if self.screening is None else dataclasses.asdict(self.screening),
            "costs": self.costs, "metrics": self.metrics, "flops": self.flops, "params": self.params,
            "within_budget": self.within_budget, "times": self.times, "skipped": self.skipped,
            "interrupted": self.interrupted, "stage": self.stage}

    @classmethod
    def from_dict(cls, data: Any) -> TrinityResult:
        """Rebuild a result from `to_dict` output, validating the graphs (raises `GraphError`)."""
        if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
            raise GraphError(f"not a trinity result: 'format' must be {RESULT_FORMAT!r}")
        derived = None if data.get("derived") is None else graph_from_dict(data["derived"])
        if derived is not None and data.get("weights"):
            _weights_from_json(derived, data["weights"], "weights")
        screening = data.get("screening")
        return cls(
            config=TrinityConfig.from_dict(data.get("config", {})), derived=derived,
            supernet=None if data.get("supernet") is None else graph_from_dict(data["supernet"]),
            arch=dict(data.get("arch", {})), candidates=dict(data.get("candidates", {})),
            alpha_history=dict(data.get("alpha_history", {})), history_steps=list(data.get("history_steps", [])),
            entropy_history=list(data.get("entropy_history", [])),
            dropped={p: [(int(s), str(lab)) for s, lab in v] for p, v in data.get("dropped", {}).items()},
            screen_history=dict(data.get("screen_history", {})), screen_steps=list(data.get("screen_steps", [])),
            screening=None if screening is None else ScreeningReport(**screening),
            costs=dict(data.get("costs", {})), metrics=dict(data.get("metrics", {})),
            flops=float(data.get("flops", 0.0)), params=int(data.get("params", 0)),
            within_budget=data.get("within_budget"), times=dict(data.get("times", {})),
            skipped=dict(data.get("skipped", {})), interrupted=bool(data.get("interrupted", False)),
            stage=str(data.get("stage", "setup")))


def _weights_to_json(graph: Graph) -> dict[str, Any]:
    """`graph.weights` (and its blocks') as JSON: node -> state key -> {dtype, shape, values}; blocks nest."""
    out: dict[str, Any] = {}
    for node in graph:
        if node.block is not None:
            inner = _weights_to_json(node.block)
            if inner:
                out[node.name] = {"block": inner}
        elif node.name in graph.weights:
            out[node.name] = {"state": {k: {"dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape),
                                            "values": v.flatten().tolist()}
                                        for k, v in graph.weights[node.name].items()}}
    return out


def _weights_from_json(graph: Graph, data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise GraphError(f"{where} must be an object")
    for name, entry in data.items():
        if name not in graph or not isinstance(entry, dict):
            raise GraphError(f"{where}.{name}: no such node in graph {graph.name!r}")
        node = graph[name]
        if "block" in entry:
            if node.block is None:
                raise GraphError(f"{where}.{name}: node {name!r} is not a block")
            _weights_from_json(node.block, entry["block"], f"{where}.{name}")
            continue
        state = {}
        for key, t in entry.get("state", {}).items():
            dtype = getattr(torch, str(t.get("dtype")), None)
            if not isinstance(dtype, torch.dtype) or not isinstance(t.get("values"), list):
                raise GraphError(f"{where}.{name}.{key}: needs a torch dtype name and a list of values")
            shape = [int(s) for s in t.get("shape", [])]
            values = torch.tensor(t["values"], dtype=dtype)
            if values.numel() != math.prod(shape):
                raise GraphError(f"{where}.{name}.{key}: {values.numel()} values for shape {shape}")
            state[key] = values.reshape(shape)
        graph.weights[name] = state


# -- the whole search -------------------------------------------------------------------------------------------
def trinity(train: Any, val: Any = None, config: TrinityConfig | None = None, *, progress: bool = True,
            widget: Any = None, evaluate: bool = True) -> TrinityResult:
    """Search backbone, neck and head of a detector together (Hit-Detector, arXiv:2003.11818).

    Args:
        train, val: `CocoDetection`-like datasets (``images``, ``targets``; val also ``coco`` for mAP).
        config: every setting (`TrinityConfig`; default: its defaults, space fitted to `train`).
        progress: tqdm bars per stage.
        widget: a `GraphWidget` to show the architecture weights live (candidate edges styled by weight).
        evaluate: retrain the derived detector from scratch and compute COCO metrics on `val`.

    Ctrl-C (KeyboardInterrupt) stops the current stage and returns the result so far (``interrupted=True``;
    an interrupted joint search still derives from the current alphas).
    """
    config = (config or TrinityConfig()).for_data(train)
    space = config._space()
    result = TrinityResult(config=config)
    kept: dict[str, list[str]] = {c: list(config.operators[c]) for c in config.search}
    screened = None
    if config.screen_steps > 0:
        result.stage = "screen"
        screened = screen(train, config, progress=progress, widget=widget)
        result.screening, kept = screened.report, screened.report.kept
        result.screen_steps, result.screen_history = screened.steps, screened.history
        result.times["screen"], result.skipped["screen"] = screened.seconds, screened.skipped
        if screened.interrupted:
            result.interrupted = True
            return result

    result.stage = "search"
    joint = search(train, config, kept, screened=screened, progress=progress, widget=widget)
    result.supernet, result.candidates, result.costs = joint.supernet, joint.candidates, joint.costs
    result.alpha_history, result.history_steps, result.entropy_history = joint.history, joint.steps, joint.entropy
    result.dropped = joint.dropped
    result.times["search"], result.skipped["search"] = joint.seconds, joint.skipped
    derived = derive_within(space, config, joint.scores, joint.supernet)
    result.derived, result.arch, result.within_budget = derived.graph, derived.arch, derived.feasible
    summary = Summary.of(derived.graph)
    result.flops, result.params = summary.total_flops / space.batch, summary.total_params
    if joint.interrupted:
        result.interrupted = True
        return result

    if evaluate and config.retrain_steps > 0:
        result.stage = "retrain"
        run = retrain(derived.graph, train, val, config, progress=progress)
        result.model, result.metrics, result.times["retrain"] = run.model, run.metrics, run.seconds
        if run.interrupted:
            result.interrupted = True
            return result
    result.stage = "done"
    return result
