"""Paired comparisons over seeds: the exact sign-flip permutation test, its confidence interval, Holm's
correction.

Boundary: numbers in, numbers out (numpy). Used to compare two architectures retrained on the same seeds:
``diffs[i]`` is (metric of A) - (metric of B) on seed i. Under the null hypothesis that A and B are
exchangeable on every seed, each difference is as likely to have either sign, so the 2^n sign patterns are
equally likely; the test enumerates all of them (exact, no sampling). References: Fisher's randomisation
test (Fisher 1935; Good, "Permutation Tests", 2005); Holm, "A simple sequentially rejective multiple test
procedure", Scand. J. Statist. 6 (1979).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from graphbuilder.ir.errors import GraphError

MAX_EXACT = 20  # 2^20 sign patterns; beyond that the enumeration is too large to hold


def _signs(n: int) -> np.ndarray:
    """All 2^n sign patterns as a (2^n, n) array of +-1."""
    if n > MAX_EXACT:
        raise GraphError(f"{n} paired differences: the exact sign-flip test enumerates 2^n patterns; use at most "
                         f"{MAX_EXACT} seeds")
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
    return 1 - 2 * bits.astype(np.float64)


def _diffs(diffs: Sequence[float]) -> np.ndarray:
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or len(d) == 0 or not np.isfinite(d).all():
        raise GraphError(f"paired differences must be a non-empty list of finite numbers, got {diffs!r}")
    return d


def sign_flip_pvalue(diffs: Sequence[float], alternative: str = "greater") -> float:
    """Exact sign-flip permutation p-value of the mean paired difference.

    ``alternative="greater"`` (one-sided, H1: mean > 0): the fraction of the 2^n sign patterns whose mean is
    at least the observed mean; ``"two-sided"``: whose absolute mean is at least the observed absolute mean.
    The observed pattern is one of them, so p >= 2^-n.
    """
    d = _diffs(diffs)
    means = _signs(len(d)) @ d / len(d)
    observed = d.mean()
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # ties in floating point count as ties
    if alternative == "greater":
        return float(np.mean(means >= observed - tol))
    if alternative == "two-sided":
        return float(np.mean(np.abs(means) >= abs(observed) - tol))
    raise GraphError(f"alternative={alternative!r}: choose 'greater' or 'two-sided'")


def sign_flip_ci(diffs: Sequence[float], level: float = 0.95, grid: int = 2001) -> tuple[float, float]:
    """Confidence interval of the mean difference by inverting the two-sided sign-flip test: the shifts
    delta for which ``diffs - delta`` is not rejected at 1 - `level`.

    The interval lies within [min(diffs), max(diffs)] once 2 * 2^-n < 1 - level (n >= 6 at 95%); with fewer
    differences the test cannot reject anything and the interval is (-inf, inf). Bounds are found on a grid
    of `grid` shifts over that range, then refined by bisection to 1e-9 of the range.
    """
    d = _diffs(diffs)
    alpha = 1 - level
    signs = _signs(len(d))
    if 2.0 / len(signs) >= alpha:
        return (-np.inf, np.inf)

    def accepted(delta: float) -> bool:
        x = d - delta
        means = signs @ x / len(x)
        tol = 1e-12 * max(1.0, float(np.abs(x).max()))
        return float(np.mean(np.abs(means) >= abs(x.mean()) - tol)) > alpha

    lo_d, hi_d = float(d.min()), float(d.max())
    if lo_d == hi_d:
        return (lo_d, hi_d)
    deltas = np.linspace(lo_d, hi_d, grid)
    ok = np.array([accepted(x) for x in deltas])
    if not ok.any():  # the interval falls between grid points: it holds the mean
        ok[int(np.argmin(np.abs(deltas - d.mean())))] = True
    first, last = int(np.argmax(ok)), len(ok) - 1 - int(np.argmax(ok[::-1]))

    def edge(inside: float, outside: float) -> float:
        for _ in range(60):
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if accepted(mid) else (inside, mid)
            if abs(inside - outside) <= 1e-9 * (hi_d - lo_d):
                break
        return inside

    lo = deltas[first] if first == 0 else edge(deltas[first], deltas[first - 1])
    hi = deltas[last] if last == len(ok) - 1 else edge(deltas[last], deltas[last + 1])
    return (float(lo), float(hi))


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values: sorted ascending, the i-th (from 0) of m is multiplied by (m - i), made
    non-decreasing along the order, and capped at 1. Reject hypothesis j at level a when adjusted p_j < a."""
    names = sorted(pvalues, key=lambda k: pvalues[k])
    m = len(names)
    out: dict[str, float] = {}
    running = 0.0
    for i, name in enumerate(names):
        running = max(running, min(1.0, (m - i) * float(pvalues[name])))
        out[name] = running
    return {k: out[k] for k in pvalues}
