"""Hit-Detector trinity search: backbone, neck and head of a one-stage detector searched together on the IR.

    result = gb.search.trinity(train, val, seed=0)
    result.screening          # which ops each component kept
    result.plot()             # architecture weights over the joint search
    result.derived            # a plain gb.Graph detector (backbone, neck, head blocks), retrained
    result.metrics            # COCO mAP through pycocotools

Boundary: the search procedure (screening, joint differentiable search, derivation, retraining) on graphs from
`detector_space.py`; detection losses and metrics come from `graphbuilder.detection`. Reference: Hit-Detector,
Guo et al., CVPR 2020, arXiv:2003.11818. Its search code was never released; every choice below is documented
in docs/hit_detector.md.

Stages:
1. Screening. A supernet with every candidate of the large operator set at every searched position, mixed
   *linearly* by alpha (so an op can be switched off exactly). Weights (split A) and alphas (split B) are
   updated alternately; the alpha step is a proximal-gradient step for the group-sparsity penalty
   ``lambda * sum_ops ||alpha[:, op]||_2`` over each component's positions, i.e. group soft-thresholding
   ``alpha[:, op] *= max(0, 1 - lr * lambda / ||alpha[:, op]||)``. The top-k ops by column norm are kept per
   component.
2. Joint search. A new supernet whose positions mix the kept ops of their component with softmax(alpha)
   (first-order DARTS, arXiv:1806.09055): weights on split A, alphas on split B, alternately, with loss
   ``detection + gamma * sum_pos sum_i softmax(alpha_pos)_i * cost_pos_i``. Costs are measured once per
   position and candidate with torch.utils.flop_counter (or parameter counts) and divided by the sum over
   positions of the mean candidate cost, so a uniform architecture costs 1.
3. Derive: argmax per position gives a plain detector graph, trimmed to a cost `budget` when one is given
   (`fit_budget`); it is retrained from scratch and evaluated.

Defaults that matter (docs/hit_detector.md says why): half of each stage is weight-only warm-up; the joint
supernet inherits the screening supernet's trained weights (`inherit`); group-lasso lambda 0.15.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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
from graphbuilder.ir.errors import GraphError
from graphbuilder.ir.graph import Graph
from graphbuilder.ir.render import Summary
from graphbuilder.ops.modules.search_space import MixedOp
from graphbuilder.ops.search_space import candidate_label, candidate_list
from graphbuilder.search.detector_space import (
    COMPONENTS,
    FULL_OPS,
    DetectorSpace,
    Position,
    build_detector,
    candidate_costs,
    find_position,
)
from graphbuilder.search.live import LiveView

#: Gradient-norm clip of the screening alphas (over all positions) before each proximal SGD step.
SCREEN_ALPHA_CLIP = 1.0

#: Ops a component keeps fixed when it is not searched (the hand-designed baseline's choices).
DEFAULT_FIXED = {"backbone": "ir_k3_e6", "neck": "sd_k3_d1", "head": "sd_k3_d1"}


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


@dataclass
class TrinityResult:
    """Everything a trinity search produced (fields are None where a stage did not run or was interrupted).

    Attributes:
        derived: the derived detector (a plain `gb.Graph` with backbone, neck and head blocks; retrained
            weights in ``derived.weights`` when retraining ran).
        supernet: the joint-search supernet, its mixed_op nodes holding the final alphas.
        arch: chosen op per searched position.
        candidates: candidate labels per position in the joint search.
        alpha_history: per position, softmax(alpha) at each logged step; `history_steps` gives the steps.
        screen_history: per position, the raw screening alphas at each logged screening step.
        screening: the `ScreeningReport` (None without screening).
        costs: per position and candidate ``{"flops", "params"}`` (the lookup table of the joint search).
        budget: the derivation's cost budget (None: plain argmax); `arch` may then differ from the argmax.
        metrics: COCO metrics of the retrained detector on the validation set.
        flops, params: of the derived detector (one image batch of `space.batch`... see `summary`).
        times: seconds per stage (``screen``, ``search``, ``retrain``).
        skipped: per stage, optimisation steps skipped for a non-finite loss or gradient (normally 0).
        interrupted: True when Ctrl-C stopped the run; `stage` says where.
        model: the retrained compiled module (None without retraining).
    """

    space: DetectorSpace
    layout: DetectionLayout
    derived: Graph | None = None
    supernet: Graph | None = None
    arch: dict[str, str] = field(default_factory=dict)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    alpha_history: dict[str, list[list[float]]] = field(default_factory=dict)
    history_steps: list[int] = field(default_factory=list)
    screen_history: dict[str, list[list[float]]] = field(default_factory=dict)
    screen_steps: list[int] = field(default_factory=list)
    screening: ScreeningReport | None = None
    costs: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    cost_kind: str = "flops"
    gamma: float = 0.0
    budget: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    flops: int = 0
    params: int = 0
    times: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    stage: str = "setup"
    model: nn.Module | None = None

    def plot(self, positions: Sequence[str] | None = None, cols: int = 4) -> Any:
        """A matplotlib figure: softmax(alpha) of every candidate over the joint search, one panel per
        position (the argmax drawn thick)."""
        import matplotlib.pyplot as plt

        names = list(positions or self.alpha_history)
        if not names:
            raise GraphError("no alpha history to plot: the joint search did not run")
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names, strict=False):
            hist = torch.tensor(self.alpha_history[name])  # (T, K)
            best = int(hist[-1].argmax())
            for k, label in enumerate(self.candidates[name]):
                ax.plot(self.history_steps, hist[:, k].tolist(), lw=2.5 if k == best else 1, label=label)
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
        lines = [f"{'position':12s} {'op':12s} {'MFLOPs':>8s} {'params':>8s}"]
        for pos, op in self.arch.items():
            c = self.costs.get(pos, {}).get(op, {"flops": 0, "params": 0})
            lines.append(f"{pos:12s} {op:12s} {c['flops'] / 1e6:8.2f} {c['params']:8d}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = f"interrupted in {self.stage}" if self.interrupted else self.stage
        return (f"TrinityResult({state}, {len(self.arch)} positions, flops={self.flops:,}, params={self.params:,}, "
                f"metrics={ {k: round(v, 4) for k, v in self.metrics.items() if k in ('mAP', 'mAP50')} })")


# -- the supernet as a graph ---------------------------------------------------------------------------------
def supernet(space: DetectorSpace, candidates: dict[str, list[Any]], weighting: str = "softmax",
             fixed: dict[str, Any] | None = None, name: str = "supernet") -> Graph:
    """The supernet graph: a ``mixed_op`` at every position of the components in `candidates` (component ->
    candidate list), the ops of `fixed` (component -> op) elsewhere."""
    fixed = {**DEFAULT_FIXED, **(fixed or {})}

    def choose(pos: Position) -> tuple[str, dict[str, Any]]:
        if pos.component in candidates:
            return "mixed_op", {"candidates": list(candidates[pos.component]), "weighting": weighting}
        entry = candidate_list([fixed[pos.component]])[0]
        return entry[0], entry[1]

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


def fit_budget(alphas: dict[str, list[float]], costs: dict[str, dict[str, float]], choice: dict[str, int],
               excess: float) -> dict[str, int]:
    """Lower the chosen candidates' total cost by at least `excess`, giving up as little architecture
    probability as possible: repeatedly make the swap (position, cheaper candidate) with the smallest drop in
    ``log softmax(alpha)`` per unit of cost saved. `costs` is per position the candidate costs in candidate
    order; `choice` the chosen index per position (argmax). Stops at the cheapest architecture when the
    excess cannot be removed. Returns the new choice."""
    choice = dict(choice)
    logp = {p: torch.log_softmax(torch.tensor(a, dtype=torch.float64), 0).tolist() for p, a in alphas.items()}
    table = {p: list(c.values()) for p, c in costs.items()}
    while excess > 0:
        best: tuple[float, str, int] | None = None
        for pos, cur in choice.items():
            for k, c in enumerate(table[pos]):
                saved = table[pos][cur] - c
                if saved > 0:
                    rate = (logp[pos][cur] - logp[pos][k]) / saved
                    if best is None or rate < best[0]:
                        best = (rate, pos, k)
        if best is None:
            break
        _, pos, k = best
        excess -= table[pos][choice[pos]] - table[pos][k]
        choice[pos] = k
    return choice


def derive(space: DetectorSpace, graph: Graph, alphas: dict[str, list[float]], name: str = "hit_detector",
           budget: float | None = None, cost: str = "flops") -> tuple[Graph, dict[str, str]]:
    """The plain detector: at every mixed_op position of `graph`, the candidate with the largest alpha.

    With a `budget` (FLOPs per image, or parameters, by `cost`) the argmax architecture is made to fit it by
    `fit_budget` (cheapest drop in architecture probability per unit of cost saved); costs are measured with
    `candidate_costs`, the rest of the network (stem, laterals, predictor, fixed positions) counted as is.
    """
    cands_at = {pos.name: candidate_list(find_position(graph, pos.name).params["candidates"])
                for pos in space.positions() if find_position(graph, pos.name).op == "mixed_op"}
    choice = {p: int(torch.tensor(alphas[p]).argmax()) for p in cands_at}
    if budget is not None and cands_at:
        per = space.batch if cost == "flops" else 1  # costs are measured at the graph's example batch
        table = {p: {k: v[cost] / per for k, v in
                     candidate_costs(graph, p, find_position(graph, p).params["candidates"]).items()}
                 for p in cands_at}
        first, _ = derive(space, graph, alphas, name)
        s = Summary.of(first)
        total = s.total_flops / space.batch if cost == "flops" else s.total_params
        choice = fit_budget({p: alphas[p] for p in cands_at}, table, choice, total - budget)
    arch: dict[str, str] = {}
    picks: dict[str, tuple[str, dict[str, Any]]] = {}
    for pos in space.positions():
        node = find_position(graph, pos.name)
        if node.op == "mixed_op":
            best = cands_at[pos.name][choice[pos.name]]
        else:
            best = (node.op, {"dilation": node.params["dilation"]} if "dilation" in node.params else {})
        picks[pos.name] = best
        arch[pos.name] = candidate_label(best)
    g = build_detector(space, lambda p: picks[p.name], name)
    g.meta["trinity"] = {"arch": arch}
    return g, arch


def display_graph(graph: Graph, space: DetectorSpace, alphas: dict[str, list[float]] | None = None) -> Graph:
    """A flat graph for the editor: each mixed_op position drawn as its candidate nodes (``pos.op``) feeding
    a ``weighted_sum`` named ``pos``, weighted by softmax(alpha) (or the given weights)."""
    def choose(pos: Position) -> tuple[str, dict[str, Any]]:
        node = find_position(graph, pos.name)
        if node.op != "mixed_op":
            return node.op, {}
        cands = node.params["candidates"]
        w = alphas.get(pos.name) if alphas else None
        if w is None:
            w = _weights(node.params)
        return "mixed_op", {"candidates": cands, "display_weights": list(w)}

    return build_detector(space, choose, f"{graph.name}_display", blocks=False, expand=True)


def _weights(params: Any) -> list[float]:
    alpha = params["alpha"]
    n = len(params["candidates"])
    if alpha is None:
        return [1.0 / n] * n
    a = torch.tensor(alpha)
    return (torch.softmax(a, 0) if params["weighting"] == "softmax" else a.abs() / a.abs().sum().clamp(min=1e-12)
            ).tolist()


class WidgetView:
    """Shows architecture weights live in a `GraphWidget`: candidate -> position edges get width, colour,
    opacity and a label from each candidate's weight; the current argmax candidates are highlighted.

    Uses the widget's ``graph`` attribute, ``style_edges({(src, dst): style})`` and ``highlight(nodes, style)``.
    """

    def __init__(self, widget: Any, graph: Graph, space: DetectorSpace) -> None:
        self.widget = widget
        self.graph = graph
        self.space = space
        self.display = display_graph(graph, space)
        if hasattr(widget, "graph"):
            widget.graph = self.display

    @staticmethod
    def colour(w: float) -> str:
        """Light grey (weight 0) to red (weight 1)."""
        w = min(max(w, 0.0), 1.0)
        r, g, b = int(200 + 14 * w), int(200 - 161 * w), int(200 - 160 * w)
        return f"#{r:02x}{g:02x}{b:02x}"

    def styles(self, weights: dict[str, list[float]]) -> tuple[dict[tuple[str, str], dict[str, Any]], list[str]]:
        """Edge styles per (candidate node, position node) and the names of the argmax candidate nodes."""
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        best = []
        for pos, w in weights.items():
            node = find_position(self.graph, pos)
            labels = [candidate_label(c) for c in candidate_list(node.params["candidates"])]
            top = max(w)
            for label, v in zip(labels, w, strict=True):
                rel = v / top if top > 0 else 0.0
                edges[(f"{pos}.{label}", pos)] = {"width": round(1 + 7 * rel, 2), "color": self.colour(rel),
                                                  "opacity": round(0.25 + 0.75 * rel, 3), "label": f"{v:.2f}"}
            best.append(f"{pos}.{labels[int(torch.tensor(w).argmax())]}")
        return edges, best

    def update(self, weights: dict[str, list[float]]) -> None:
        """Push new weights to the widget."""
        edges, best = self.styles(weights)
        self.widget.style_edges(edges)
        self.widget.highlight(best, {"border_color": "#d62728", "border_width": 3})


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
    alpha_lr: float
    log_every: int
    progress: bool
    desc: str
    skipped: int = 0

    def run(self, alpha_step: Any, record: Any, on_log: Any = None) -> tuple[int, bool]:
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
                    alpha_step(images, targets)
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


def _finite_grads(params: list[torch.Tensor]) -> bool:
    """Whether every gradient of `params` is finite (a rare non-finite detection loss skips the alpha step)."""
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)


def _alphas(mixed: dict[str, MixedOp], softmax: bool) -> dict[str, list[float]]:
    with torch.no_grad():
        return {k: (torch.softmax(m.alpha, 0) if softmax else m.alpha).tolist() for k, m in mixed.items()}


def group_soft_threshold(columns: torch.Tensor, threshold: float) -> torch.Tensor:
    """Proximal operator of ``threshold * sum_j ||columns[:, j]||_2``: each column shrunk towards zero by
    `threshold` in L2 norm, and set to exactly zero when its norm is below it."""
    norms = columns.norm(dim=0, keepdim=True)
    return columns * (1 - threshold / norms.clamp(min=1e-12)).clamp(min=0)


def proximal_group_step(mixed: dict[str, MixedOp], groups: dict[str, list[str]], threshold: float) -> None:
    """Apply `group_soft_threshold` in place to each group's alpha matrix (positions x ops): the proximal
    step of the group-sparsity penalty after a plain gradient step on the alphas."""
    with torch.no_grad():
        for names in groups.values():
            if names:
                cols = group_soft_threshold(torch.stack([mixed[n].alpha for n in names]), threshold)
                for n, row in zip(names, cols, strict=True):
                    mixed[n].alpha.copy_(row)


def group_norms(mixed: dict[str, MixedOp], names: list[str]) -> dict[str, float]:
    """Per op, the L2 norm of its alphas across the positions `names` (the group-sparsity columns)."""
    with torch.no_grad():
        cols = torch.stack([mixed[n].alpha for n in names])  # (positions, ops)
    labels = [candidate_label((nm, {})) for nm in mixed[names[0]].names]
    return dict(zip(labels, cols.norm(dim=0).tolist(), strict=True))


def select_top_k(norms: dict[str, float], k: int) -> list[str]:
    """The `k` ops with the largest column norms, largest first (ties: candidate order)."""
    return sorted(norms, key=lambda o: -norms[o])[:k]


def _groups(space: DetectorSpace, mixed: dict[str, MixedOp]) -> dict[str, list[str]]:
    return {c: [p.name for p in space.component_positions(c) if p.name in mixed] for c in COMPONENTS}


def column_norms(space: DetectorSpace, mixed: dict[str, MixedOp]) -> dict[str, dict[str, float]]:
    """Per component and op, the L2 norm of that op's alphas across the component's positions."""
    return {comp: group_norms(mixed, names) for comp, names in _groups(space, mixed).items() if names}


def _labels(graph: Graph, pos: str) -> list[str]:
    return [candidate_label(c) for c in candidate_list(find_position(graph, pos).params["candidates"])]


def inherit_weights(src: nn.Module, src_graph: Graph, dst: nn.Module, dst_graph: Graph) -> int:
    """Copy trained weights (and BN statistics) from supernet `src` into supernet `dst`: every tensor of the
    fixed parts with the same name and shape, and at each mixed position the tensors of each candidate that
    both supernets hold (matched by candidate label, not index). Alphas are not copied. Returns how many
    tensors were copied."""
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    src_mixed = {qual: m for qual, m in src.named_modules() if isinstance(m, MixedOp)}
    dst_mixed = {qual: m for qual, m in dst.named_modules() if isinstance(m, MixedOp)}
    remap: dict[str, dict[int, int]] = {}
    for qual in dst_mixed:
        if qual in src_mixed:
            pos = qual.rsplit(".", 1)[-1]
            src_labels = _labels(src_graph, pos)
            remap[qual] = {j: src_labels.index(label) for j, label in enumerate(_labels(dst_graph, pos))
                           if label in src_labels}
    copied = 0
    for key in dst_sd:
        src_key: str | None = key
        for qual, mapping in remap.items():
            if key.startswith(qual + "."):
                rest = key[len(qual) + 1:]
                if not rest.startswith("ops."):
                    src_key = None  # the alpha: the joint search starts from its own
                else:
                    j, tail = rest[4:].split(".", 1)
                    src_key = f"{qual}.ops.{mapping[int(j)]}.{tail}" if int(j) in mapping else None
                break
        if src_key is not None and src_key in src_sd and src_sd[src_key].shape == dst_sd[key].shape:
            dst_sd[key] = src_sd[src_key].clone()
            copied += 1
    dst.load_state_dict(dst_sd)
    return copied


# -- the search ---------------------------------------------------------------------------------------------
def trinity(train: Any, val: Any = None, *, space: DetectorSpace | None = None,
            search: Sequence[str] = COMPONENTS, operators: Sequence[str] | dict[str, Sequence[str]] = FULL_OPS,
            top_k: int | dict[str, int] = 4, fixed: dict[str, Any] | None = None,
            screen_steps: int = 60, search_steps: int = 100, warmup_steps: int | None = None,
            retrain_steps: int = 300, batch_size: int = 8, lr: float = 3e-3, screen_alpha_lr: float = 0.05,
            sparsity: float = 0.15, alpha_lr: float = 0.03, gamma: float = 0.02, cost: str = "flops",
            budget: float | None = None, inherit: bool = True, seed: int = 0, log_every: int = 5,
            progress: bool = True, widget: Any = None, evaluate: bool = True) -> TrinityResult:
    """Search backbone, neck and head of a detector together (Hit-Detector, arXiv:2003.11818).

    Args:
        train, val: `CocoDetection`-like datasets (``images``, ``targets``; val also ``coco`` for mAP).
        space: sizes of the detector (`DetectorSpace`); defaults to one fitting `train`'s image size and classes.
        search: components to search; the others use `fixed` ops (default: the hand-designed choices).
        operators: the large operator set screened (one list, or one per component).
        top_k: ops kept per component by screening (int or per component). ``screen_steps=0`` skips
            screening and searches over all `operators`.
        screen_steps, search_steps, warmup_steps, retrain_steps: optimisation lengths. Warm-up: weight-only
            steps before alphas move, in both screening and joint search; None (default) warms up for half of
            each stage, so alphas are judged on trained weights (DARTS collapse otherwise favours whatever
            trains fastest).
        batch_size, lr: weight training (AdamW, cosine schedule).
        screen_alpha_lr, sparsity: proximal SGD on screening alphas; `sparsity` is the group-lasso lambda.
        alpha_lr: Adam on joint-search alphas (betas 0.5, 0.999, weight decay 1e-3, as DARTS).
        gamma, cost: resource penalty weight and cost kind (``"flops"`` or ``"params"``).
        budget: derive within this cost (FLOPs per image, or params, by `cost`) of the whole detector:
            the argmax architecture is trimmed by `fit_budget`. None: plain argmax.
        inherit: the joint-search supernet starts from the screening supernet's trained weights (the kept
            candidates and the fixed parts), so the joint search's warm-up continues training instead of
            starting from scratch. Ignored without screening.
        seed: fixes data order, splits and initialisation: same seed, same result.
        widget: a `GraphWidget` to show the architecture weights live (candidate edges styled by weight).
        evaluate: retrain the derived detector from scratch and compute COCO metrics on `val`.

    Ctrl-C (KeyboardInterrupt) stops the current stage and returns the result so far (``interrupted=True``).
    """
    if cost not in ("flops", "params"):
        raise GraphError(f"cost={cost!r}: choose 'flops' or 'params'")
    for comp in search:
        if comp not in COMPONENTS:
            raise GraphError(f"search={list(search)}: {comp!r} is not a component; choose from {COMPONENTS}")
    if space is None:
        space = DetectorSpace(image_size=int(train.images.shape[-1]), num_classes=int(train.num_classes))
    if tuple(train.images.shape[-2:]) != (space.image_size, space.image_size):
        raise GraphError(f"images are {tuple(train.images.shape[-2:])} but space.image_size is {space.image_size}; "
                         "load the dataset with image_size equal to the space's")
    ops = {c: list(operators[c] if isinstance(operators, dict) else operators) for c in search}
    ks = {c: int(top_k[c] if isinstance(top_k, dict) else top_k) for c in search}
    layout = DetectionLayout((space.image_size, space.image_size), space.strides, space.num_classes)
    result = TrinityResult(space=space, layout=layout, cost_kind=cost, gamma=gamma, budget=budget)
    torch.manual_seed(seed)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    split_w, split_a = order[: len(order) // 2], order[len(order) // 2:]
    if len(split_a) == 0:
        raise GraphError(f"the training set has {len(train)} image(s); the search needs at least 2 (two splits)")

    def loop(graph: Graph, steps: int, alr: float, desc: str, salt: int) -> tuple[nn.Module, _Loop]:
        model = gb_compile(graph)
        lp = _Loop(model, mixed_modules(graph, model), layout,
                   Batches(train, layout, batch_size, seed * 1000 + salt, split_w),
                   Batches(train, layout, batch_size, seed * 1000 + salt + 1, split_a),
                   steps, steps // 2 if warmup_steps is None else min(warmup_steps, steps), lr, alr, log_every,
                   progress, desc)
        return model, lp

    # 1. screening ------------------------------------------------------------------------------------------
    kept = ops
    screen_net, screen_model = None, None
    if screen_steps > 0:
        result.stage = "screen"
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        screen_net = supernet(space, ops, weighting="linear", fixed=fixed, name="screening_supernet")
        screen_model, lp = loop(screen_net, screen_steps, screen_alpha_lr, "screening", 0)
        alpha_params = [m.alpha for m in lp.mixed.values()]
        sgd = torch.optim.SGD(alpha_params, lr=screen_alpha_lr)
        groups = _groups(space, lp.mixed)
        view = LiveView(WidgetView(widget, screen_net, space).update) if widget is not None else None

        def screen_step(images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> None:
            loss = detection_loss(lp.model(images), targets, layout)["loss"]
            sgd.zero_grad()
            loss.backward()
            if not _finite_grads(alpha_params):
                lp.skipped += 1
                return
            # linear alphas are unbounded and multiply through the depth: clip the step (a long screen diverged)
            nn.utils.clip_grad_norm_(alpha_params, SCREEN_ALPHA_CLIP)
            sgd.step()
            proximal_group_step(lp.mixed, groups, screen_alpha_lr * sparsity)

        def screen_record(step: int) -> None:
            result.screen_steps.append(step)
            for k, v in _alphas(lp.mixed, softmax=False).items():
                result.screen_history.setdefault(k, []).append(v)

        def screen_show(force: bool = False) -> None:
            if view is not None:
                view.update({k: [abs(a) for a in v] for k, v in _alphas(lp.mixed, softmax=False).items()},
                            force=force)

        done, stopped = lp.run(screen_step, screen_record, screen_show)
        screen_show(force=True)  # the throttle may have skipped the last state
        result.skipped["screen"] = lp.skipped
        norms = column_norms(space, lp.mixed)
        kept = {c: select_top_k(norms[c], ks[c]) for c in search}
        result.screening = ScreeningReport(kept, norms, {c: [o for o, v in norms[c].items() if v == 0.0]
                                                         for c in search}, done)
        result.times["screen"] = time.perf_counter() - t0
        if stopped:
            result.interrupted = True
            return result

    # 2. joint search -------------------------------------------------------------------------------------------
    result.stage = "search"
    t0 = time.perf_counter()
    torch.manual_seed(seed + 1)
    net = supernet(space, kept, weighting="softmax", fixed=fixed)
    model, lp = loop(net, search_steps, alpha_lr, "joint search", 2)
    if inherit and screen_model is not None and screen_net is not None:
        inherit_weights(screen_model, screen_net, model, net)
    for pos in lp.mixed:
        node = find_position(net, pos)
        result.costs[pos] = candidate_costs(net, pos, node.params["candidates"])
        result.candidates[pos] = list(result.costs[pos])
    table = {pos: torch.tensor([float(c[cost]) for c in result.costs[pos].values()]) for pos in lp.mixed}
    scale = sum(float(t.mean()) for t in table.values()) or 1.0
    norm_cost = {pos: t / scale for pos, t in table.items()}
    adam = torch.optim.Adam([m.alpha for m in lp.mixed.values()], lr=alpha_lr, betas=(0.5, 0.999), weight_decay=1e-3)
    view = LiveView(WidgetView(widget, net, space).update) if widget is not None else None

    def search_step(images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> None:
        loss = detection_loss(lp.model(images), targets, layout)["loss"]
        if gamma:
            loss = loss + gamma * sum((torch.softmax(m.alpha, 0) * norm_cost[p]).sum() for p, m in lp.mixed.items())
        adam.zero_grad()
        loss.backward()
        if not _finite_grads([m.alpha for m in lp.mixed.values()]):
            lp.skipped += 1
            return
        adam.step()

    def search_record(step: int) -> None:
        result.history_steps.append(step)
        for k, v in _alphas(lp.mixed, softmax=True).items():
            result.alpha_history.setdefault(k, []).append(v)

    def search_show(force: bool = False) -> None:
        if view is not None:
            view.update(_alphas(lp.mixed, softmax=True), force=force)

    _, stopped = lp.run(search_step, search_record, search_show)
    search_show(force=True)
    result.skipped["search"] = lp.skipped
    final = _alphas(lp.mixed, softmax=False)
    for pos, alpha in final.items():
        find_position(net, pos).params["alpha"] = tuple(alpha)
    result.supernet = net
    result.derived, result.arch = derive(space, net, final, budget=budget, cost=cost)
    summary = Summary.of(result.derived)
    result.flops, result.params = summary.total_flops // space.batch, summary.total_params
    result.times["search"] = time.perf_counter() - t0
    if stopped:
        result.interrupted = True
        return result

    # 3. retrain from scratch and evaluate -------------------------------------------------------------------------
    if evaluate and retrain_steps > 0:
        result.stage = "retrain"
        t0 = time.perf_counter()
        torch.manual_seed(seed + 2)
        model = gb_compile(result.derived)
        run = train_detector(model, train, layout, retrain_steps, batch_size=max(batch_size, 16), lr=lr,
                             seed=seed + 3, progress=progress, desc="retrain")
        result.model = model
        store_weights(result.derived, model)
        result.times["retrain"] = time.perf_counter() - t0
        if run["interrupted"]:
            result.interrupted = True
            return result
        if val is not None:
            result.metrics = evaluate_detector(model, val, layout)
    result.stage = "done"
    return result
