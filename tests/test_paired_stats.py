"""Paired statistics of the trinity protocol against references: the exact sign-flip test against a brute-force
enumeration written independently, Holm's correction against its formula, the inverted-test interval against
its definition, and the protocol's verdict rule."""

from __future__ import annotations

import itertools
import random

import pytest

import graphbuilder as gb
from graphbuilder.search.paired_stats import holm, sign_flip_ci, sign_flip_pvalue
from graphbuilder.search.trinity_protocol import Comparison, verdict


def brute_force_p(diffs: list[float], two_sided: bool = False) -> float:
    """Enumerate every sign pattern with itertools and count means at least as extreme as the observed."""
    n = len(diffs)
    observed = sum(diffs) / n
    hits = 0
    for signs in itertools.product((1, -1), repeat=n):
        m = sum(s * d for s, d in zip(signs, diffs, strict=True)) / n
        hits += (abs(m) >= abs(observed) - 1e-12) if two_sided else (m >= observed - 1e-12)
    return hits / 2 ** n


@pytest.mark.parametrize("n", [1, 2, 5, 8, 10])
def test_sign_flip_pvalue_equals_brute_force_enumeration(n):
    rng = random.Random(n)
    for _ in range(5):
        diffs = [rng.gauss(0.01, 0.02) for _ in range(n)]
        assert sign_flip_pvalue(diffs) == pytest.approx(brute_force_p(diffs), abs=1e-12)
        assert sign_flip_pvalue(diffs, "two-sided") == pytest.approx(brute_force_p(diffs, True), abs=1e-12)


def test_sign_flip_pvalue_extremes_and_ties():
    assert sign_flip_pvalue([0.1] * 8) == 1 / 256  # all positive: only the observed pattern is as large
    assert sign_flip_pvalue([-0.1] * 8) == 1.0
    assert sign_flip_pvalue([0.0, 0.0, 0.0]) == 1.0  # every pattern ties with the observed mean
    with pytest.raises(gb.GraphError, match="non-empty"):
        sign_flip_pvalue([])
    with pytest.raises(gb.GraphError, match="greater"):
        sign_flip_pvalue([0.1], "less")


def holm_formula(p: list[float]) -> list[float]:
    """Holm (1979): adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)) for p sorted ascending (1-based)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    for rank, i in enumerate(order, start=1):
        out[i] = max(min(1.0, (m - j + 1) * p[order[j - 1]]) for j in range(1, rank + 1))
    return out


def test_holm_matches_its_formula():
    assert holm({"hand": 0.01, "backbone": 0.04}) == {"hand": 0.02, "backbone": 0.04}
    assert holm({"hand": 0.03, "backbone": 0.02}) == {"hand": 0.04, "backbone": 0.04}  # monotone along the order
    rng = random.Random(0)
    for m in (1, 2, 3, 6):
        p = [rng.random() for _ in range(m)]
        got = holm({str(i): v for i, v in enumerate(p)})
        assert [got[str(i)] for i in range(m)] == pytest.approx(holm_formula(p))


def test_sign_flip_interval_inverts_the_test():
    diffs = [0.03, 0.01, 0.05, -0.01, 0.02, 0.04, 0.0, 0.025]
    lo, hi = sign_flip_ci(diffs)
    mean = sum(diffs) / len(diffs)
    assert lo < mean < hi
    shifted = lambda delta: [d - delta for d in diffs]  # noqa: E731
    # just inside the bounds the two-sided test does not reject at 5%, just outside it does
    for edge, outward in ((lo, -1), (hi, 1)):
        assert sign_flip_pvalue(shifted(edge - outward * 1e-6), "two-sided") > 0.05
        assert sign_flip_pvalue(shifted(edge + outward * 1e-4), "two-sided") <= 0.05
    # a constant shift of the data shifts the interval by the same amount
    lo2, hi2 = sign_flip_ci([d + 0.1 for d in diffs])
    assert (lo2, hi2) == pytest.approx((lo + 0.1, hi + 0.1), abs=1e-7)
    assert sign_flip_ci([0.1, 0.2, 0.3]) == (float("-inf"), float("inf"))  # 3 seeds cannot reject at 5%


def test_verdict_needs_both_corrected_p_values_and_both_differences():
    def comp(opp: str, mean: float, p: float) -> Comparison:
        return Comparison(opp, (mean,), mean, (mean, mean), p, p)

    assert verdict({"hand": comp("hand", 0.05, 0.01), "backbone": comp("backbone", 0.03, 0.02)}) == "win"
    assert verdict({"hand": comp("hand", 0.05, 0.01), "backbone": comp("backbone", 0.015, 0.01)}) == "no-win"
    assert verdict({"hand": comp("hand", 0.05, 0.06), "backbone": comp("backbone", 0.03, 0.01)}) == "no-win"
    assert verdict({"hand": comp("hand", 0.05, 0.01)}) == "no-win"
