"""Generic pieces of differentiable architecture search, independent of what is searched.

    group_soft_threshold, proximal_group_step   the group-lasso proximal step on architecture weights
    group_norms, select_top_k                   per-op column norms and the ops a screening keeps
    weakest, entropy                            progressive shrinking and how decided the weights are
    fit_budget                                  the most probable architecture within a cost window
    inherit_weights                             carry trained candidate weights into a new supernet

Boundary: tensors and `MixedOp` modules in, numbers and choices out; no detector, data or training loop
(`trinity.py` composes these). References: DARTS (arXiv:1806.09055); group-sparse screening as in Hit-Detector
(arXiv:2003.11818); progressive shrinking of the candidate set as in P-DARTS (arXiv:1904.12760) and DA2S-style
discretisation-aware searches, here by dropping the weakest candidates at fixed points of the search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from graphbuilder.ir.errors import GraphError
from graphbuilder.ops.modules.search_space import MixedOp


def group_soft_threshold(columns: torch.Tensor, threshold: float) -> torch.Tensor:
    """Proximal operator of ``threshold * sum_j ||columns[:, j]||_2``: each column shrunk towards zero by
    `threshold` in L2 norm, and set to exactly zero when its norm is below it."""
    norms = columns.norm(dim=0, keepdim=True)
    return columns * (1 - threshold / norms.clamp(min=1e-12)).clamp(min=0)


def proximal_group_step(mixed: Mapping[str, MixedOp], groups: Mapping[str, Sequence[str]], threshold: float) -> None:
    """Apply `group_soft_threshold` in place to each group's alpha matrix (positions x ops): the proximal
    step of the group-sparsity penalty after a plain gradient step on the alphas."""
    with torch.no_grad():
        for names in groups.values():
            if names:
                cols = group_soft_threshold(torch.stack([mixed[n].alpha for n in names]), threshold)
                for n, row in zip(names, cols, strict=True):
                    mixed[n].alpha.copy_(row)


def group_norms(alphas: Sequence[torch.Tensor], labels: Sequence[str]) -> dict[str, float]:
    """Per op, the L2 norm of its alphas across positions (the group-sparsity columns): `alphas` holds one
    vector per position, in the candidate order of `labels`."""
    with torch.no_grad():
        cols = torch.stack([a.detach() for a in alphas])  # (positions, ops)
    return dict(zip(labels, cols.norm(dim=0).tolist(), strict=True))


def select_top_k(norms: Mapping[str, float], k: int) -> list[str]:
    """The `k` ops with the largest column norms, largest first (ties: candidate order)."""
    return sorted(norms, key=lambda o: -norms[o])[:k]


def weakest(alpha: torch.Tensor, active: Sequence[bool], count: int) -> list[int]:
    """Indices of the `count` active candidates with the smallest alpha (at least one candidate stays
    active; ties: the later candidate goes first)."""
    alive = [i for i, a in enumerate(active) if a]
    count = min(count, len(alive) - 1)
    order = sorted(alive, key=lambda i: (float(alpha[i]), -i))
    return order[:max(count, 0)]


def entropy(weights: Sequence[float]) -> float:
    """Entropy of a weight vector normalised by the log of its non-zero entries: 0 when one candidate has
    all the weight, 1 when the weight is uniform over the candidates still in play."""
    w = [v for v in weights if v > 0]
    if len(w) < 2:
        return 0.0
    total = sum(w)
    return -sum(v / total * math.log(v / total) for v in w) / math.log(len(w))


@dataclass(frozen=True)
class BudgetFit:
    """What `fit_budget` chose: an index per position, the resulting total cost, and whether it lies in
    the window (otherwise it is the reachable total nearest to the window)."""

    choice: dict[str, int]
    cost: float
    feasible: bool


def fit_budget(logp: Mapping[str, Sequence[float]], costs: Mapping[str, Sequence[float]], fixed: float,
               budget: float, tolerance: float = 0.03) -> BudgetFit:
    """The most probable architecture whose total cost lies within ``budget * (1 +- tolerance)``.

    Maximises ``sum_pos logp[pos][choice]`` subject to ``fixed + sum_pos costs[pos][choice]`` in the window,
    by dynamic programming over positions on costs rounded to a grid of 1/(4 * positions) of the window's
    width; the window is narrowed by the worst-case rounding, so the returned total is always inside it
    (architectures within 1/8 of the width of an edge may be missed). This both trims an architecture over
    budget and raises one under it. When no architecture fits, returns the most probable one among those
    whose total is nearest the window, with ``feasible=False``.
    """
    names = list(logp)
    if not names:
        return BudgetFit({}, float(fixed), (1 - tolerance) * budget <= fixed <= (1 + tolerance) * budget)
    for n in names:
        if len(logp[n]) != len(costs[n]):
            raise GraphError(f"position {n!r}: {len(logp[n])} log-probabilities but {len(costs[n])} costs")
    lo, hi = (1 - tolerance) * budget - fixed, (1 + tolerance) * budget - fixed  # window for the searched part
    q = max(hi - lo, 1e-9 * max(abs(budget), 1.0)) / (4 * len(names))
    margin = len(names) * q / 2
    cand = [np.round(np.asarray(costs[n], dtype=np.float64) / q).astype(np.int64) for n in names]
    scores = [np.asarray(logp[n], dtype=np.float64) for n in names]
    size = int(sum(int(c.max()) for c in cand)) + 1
    best = np.zeros(1)  # best[b]: the highest total log-probability with rounded cost b
    back = []
    for c, s in zip(cand, scores, strict=True):
        new = np.full(len(best) + int(c.max()), -np.inf)
        arg = np.full(len(new), -1, dtype=np.int64)
        for k in range(len(c)):
            shifted = np.full(len(new), -np.inf)
            shifted[c[k]:c[k] + len(best)] = best + s[k]
            better = shifted > new
            new[better], arg[better] = shifted[better], k
        best, _ = new, back.append(arg)
    assert len(best) == size
    totals = np.arange(size) * q
    reachable = np.isfinite(best)
    inside = reachable & (totals >= lo + margin) & (totals <= hi - margin)
    if inside.any():
        pick = int(np.argmax(np.where(inside, best, -np.inf)))
    else:
        gap = np.where(reachable, np.maximum(lo - totals, totals - hi).clip(min=0), np.inf)
        nearest = reachable & (gap <= gap.min() + q)
        pick = int(np.argmax(np.where(nearest, best, -np.inf)))
    choice: dict[str, int] = {}
    b = pick
    for n, c, arg in zip(reversed(names), reversed(cand), reversed(back), strict=True):
        k = int(arg[b])
        choice[n] = k
        b -= int(c[k])
    choice = {n: choice[n] for n in names}
    total = fixed + sum(float(costs[n][choice[n]]) for n in names)
    return BudgetFit(choice, total, (1 - tolerance) * budget <= total <= (1 + tolerance) * budget)


def inherit_weights(src: nn.Module, dst: nn.Module, src_labels: Mapping[str, Sequence[str]],
                    dst_labels: Mapping[str, Sequence[str]]) -> int:
    """Copy trained tensors (and norm statistics) from supernet `src` into supernet `dst`: every tensor of
    the fixed parts with the same name and shape, and in each `MixedOp` the tensors of each candidate both
    hold, matched by label (not index). `src_labels` / `dst_labels` give the candidate labels of each
    MixedOp by its qualified module name. Alphas are not copied. Returns how many tensors were copied."""
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    remap: dict[str, dict[int, int] | None] = {}
    for qual, labels in dst_labels.items():
        source = src_labels.get(qual)
        remap[qual] = None if source is None else {j: list(source).index(lab) for j, lab in enumerate(labels)
                                                   if lab in source}
    copied = 0
    for key in dst_sd:
        src_key: str | None = key
        for qual, mapping in remap.items():
            if key.startswith(qual + "."):
                rest = key[len(qual) + 1:]
                if mapping is None or not rest.startswith("ops."):
                    src_key = None  # the alpha, or a position the source did not mix
                else:
                    j, tail = rest[4:].split(".", 1)
                    src_key = f"{qual}.ops.{mapping[int(j)]}.{tail}" if int(j) in mapping else None
                break
        if src_key is not None and src_key in src_sd and src_sd[src_key].shape == dst_sd[key].shape:
            dst_sd[key] = src_sd[src_key].clone()
            copied += 1
    dst.load_state_dict(dst_sd)
    return copied
