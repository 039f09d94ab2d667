"""The verdict rule (rfdiff_analysis/verdict.py): two one-sided tests against [r − δ, r + δ], docs/theory.md §6.4."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfdiff.stats import Estimate, exact, local_exponents, mean_ci
from rfdiff_analysis.verdict import (AGREE, DISAGREE, INCONCLUSIVE, NO_VERDICT, degenerate, judge, judge_power_law,
                                     law_holds)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
small = st.floats(0.0, 1e3, allow_nan=False, allow_infinity=False)


def _fit(lo, hi):
    """An interval from a fit (its source is "fit"), the value at its centre."""
    return Estimate(0.5 * (lo + hi), lo, hi, 0.95, 10, "OLS in log-log, t-interval")


@settings(max_examples=400, deadline=None)
@given(r=finite, lo=finite, w=small, tol=small)
def test_agree_and_disagree_say_what_the_interval_says(r, lo, w, tol):
    """agree ⟹ interval ⊂ [r − δ, r + δ]; disagree ⟹ interval ∩ [r − δ, r + δ] = ∅; wider than 2δ ⟹ never agree."""
    hi = lo + w
    v = judge(_fit(lo, hi), r, tol)
    assert v.judged
    if v.outcome == AGREE:
        assert r - tol <= lo and hi <= r + tol
    if v.outcome == DISAGREE:
        assert hi < r - tol or lo > r + tol
    if hi - lo > 2 * tol:
        assert v.outcome != AGREE
    if v.outcome == INCONCLUSIVE:
        assert not (r - tol <= lo and hi <= r + tol) and not (hi < r - tol or lo > r + tol)


ints = st.integers(-10**6, 10**6)


@settings(max_examples=400, deadline=None)
@given(r=ints, a=ints, w=st.integers(0, 10**4), tol=st.integers(0, 10**4))
def test_symmetric_under_reflection_about_the_reference(r, a, w, tol):
    """[ℓ, h] and its mirror [2r − h, 2r − ℓ] get the same verdict (integers: the arithmetic is exact)."""
    lo, hi = float(a), float(a + w)
    v = judge(_fit(lo, hi), float(r), float(tol))
    m = judge(_fit(2.0 * r - hi, 2.0 * r - lo), float(r), float(tol))
    assert v.outcome == m.outcome


@settings(max_examples=200, deadline=None)
@given(x=finite, r=finite, tol=small, relative=st.booleans(), n=st.integers(0, 50))
def test_a_point_never_gets_a_verdict(x, r, tol, relative, n):
    """No interval (a lone value, one seed, a fit without residual degrees of freedom): no verdict, ever."""
    for est in (Estimate(x), Estimate(x, n=n, method="OLS in log-log, t-interval (no interval: too few points)"),
                mean_ci([x])):
        v = judge(est, r, tol, relative=relative)
        assert not v.judged and v.outcome.startswith(NO_VERDICT)


def test_seed_means_need_five_seeds():
    rng = np.random.default_rng(0)
    for k in (2, 3, 4):
        v = judge(mean_ci(1.0 + 0.001 * rng.standard_normal(k)), 1.0, 0.5)
        assert v.outcome == f"{NO_VERDICT} ({k} seeds)"
    assert judge(mean_ci([1.0]), 1.0, 0.5).outcome == f"{NO_VERDICT} (1 seed)"
    assert judge(mean_ci(1.0 + 0.001 * rng.standard_normal(5)), 1.0, 0.5).outcome == AGREE
    assert judge(mean_ci(1.0 + 0.001 * rng.standard_normal(3)), 1.0, 0.5, min_seeds=3).outcome == AGREE


def test_rule_cases():
    assert judge(Estimate(10, -50, 70, n=10, method="fit"), 1.0, 0.1).outcome == INCONCLUSIVE  # no power: wide
    assert judge(_fit(0.95, 1.05), 1.0, 0.1).outcome == AGREE
    assert judge(_fit(0.95, 1.15), 1.0, 0.1).outcome == INCONCLUSIVE                # straddles r + δ
    assert judge(_fit(1.2, 1.4), 1.0, 0.1).outcome == DISAGREE
    assert judge(_fit(1.1, 1.4), 1.0, 0.1).outcome == INCONCLUSIVE                  # touches the band
    assert judge(_fit(0.99, 1.01), 1.0).outcome == INCONCLUSIVE                     # δ = 0: agree is impossible
    assert judge(_fit(1.01, 1.02), 1.0, 0.02, relative=True).outcome == AGREE
    assert judge(_fit(0.9, 1.1), 1.0, 0.2, max_half_width=0.05).outcome == INCONCLUSIVE
    # exact values (a theory's): the interval is the point
    assert judge(exact(1.04), 1.0, 0.05).outcome == AGREE
    assert judge(exact(1.06), 1.0, 0.05).outcome == DISAGREE
    assert judge(Estimate(1.0, 1.0, 1.0, method="exact"), 1.0).outcome == AGREE
    assert judge(Estimate(1.0, math.nan, 1.2, 0.95, 9, "fit"), 1.0, 0.1).outcome == f"{NO_VERDICT} (point)"
    assert judge(Estimate(math.nan, 0, 1), 1.0).outcome.startswith(NO_VERDICT)
    with pytest.raises(ValueError, match="tolerance"):
        judge(Estimate(1.0), 1.0, -1.0)


def test_power_law_by_local_slopes():
    """A curved law (local slopes 1.34 → 0.82, as the theory's τ_mem at p ≫ n) is not "∝ n"; a straight one is."""
    n = np.geomspace(10, 448, 9)
    L, b = np.log(n / 10), 0.52 / (2 * np.log(44.8))
    curved = 3.0 * np.exp(1.34 * L - b * L**2)                  # slope 1.34 − 2bL: falls 1.34 → 0.82
    le = local_exponents(n, curved)
    np.testing.assert_allclose(le.slope, 1.34 - 2 * b * L, atol=1e-12)   # exact for log y quadratic in log n
    v = judge_power_law(le, 1.0, 0.05)
    assert v.outcome == DISAGREE and len(v.points) == n.size
    assert list(law_holds(le, 1.0, 0.05)) == [p.outcome == AGREE for p in v.points]
    assert judge_power_law(local_exponents(n, 2.0 * n ** 1.02), 1.0, 0.05).outcome == AGREE
    rng = np.random.default_rng(1)
    noisy = n ** 1.0 * np.exp(0.01 * rng.standard_normal((8, n.size)))
    assert judge_power_law(local_exponents(n, noisy), 1.0, 0.2).outcome == AGREE
    assert judge_power_law(local_exponents(n, noisy[:3]), 1.0, 0.2).outcome == f"{NO_VERDICT} (3 seeds)"
    assert judge_power_law(local_exponents(n, noisy), 0.0, 0.2).outcome == DISAGREE


def test_degenerate_points_by_rule():
    assert degenerate(64, 64, 4096, "tau_mem") is not None           # n = d: the memorisation bulk has no mass
    assert degenerate(4050, 64, 4096, "lambda_mem") is not None      # n + d ≥ p
    assert degenerate(512, 64, 4096, "tau_mem") is None
    assert degenerate(64, 64, 4096, "tau_gen") is None


def test_power_law_against_per_point_reference_slopes():
    """Simulation against theory slope by slope: each local slope judged against the reference slope at its x."""
    n = np.geomspace(10, 448, 7)
    L = np.log(n / 10)
    theory = local_exponents(n, np.exp(1.3 * L - 0.06 * L**2))           # curved: slopes 1.3 → 0.84
    rng = np.random.default_rng(2)
    sim = local_exponents(n, np.exp(1.3 * L - 0.06 * L**2) * np.exp(0.005 * rng.standard_normal((8, n.size))))
    assert judge_power_law(sim, theory.slope, 0.1).outcome == AGREE        # same curve: agrees point by point
    assert judge_power_law(sim, 1.0, 0.1).outcome == DISAGREE             # but it is not ∝ n
    shifted = theory.slope.copy()
    shifted[3] += 0.5                                                     # one reference slope off: disagree
    v = judge_power_law(sim, shifted, 0.1)
    assert v.outcome == DISAGREE and [p.outcome for p in v.points].count(DISAGREE) == 1
    with pytest.raises(ValueError):
        judge_power_law(sim, np.ones(n.size + 1), 0.1)                  # one reference per point, or one number


@settings(max_examples=100, deadline=None)
@given(a=st.floats(-2, 2), shift=st.floats(-1, 1), tol=st.floats(0.01, 0.5))
def test_per_point_references_equal_the_scalar_rule_when_constant(a, shift, tol):
    """A constant per-point reference gives exactly the verdict of the scalar exponent."""
    n = np.geomspace(4, 64, 5)
    le = local_exponents(n, n ** a)
    assert judge_power_law(le, np.full(n.size, a + shift), tol).outcome == judge_power_law(le, a + shift, tol).outcome


def test_a_non_positive_point_spoils_only_the_slopes_that_use_it():
    """y ≤ 0 at one end (a gap that changes sign) leaves the far slopes finite (NaN · 0 once spoiled them all)."""
    n = np.geomspace(8, 512, 7)
    y = 1.0 / n
    y[0] = -0.01
    le = local_exponents(n, y)
    assert np.isnan(le.slope[:2]).all() and np.allclose(le.slope[3:], -1.0)
    seeds = np.vstack([y * (1 + 0.01 * k) for k in range(5)])
    les = local_exponents(n, seeds)
    assert np.isnan(les.slope[:2]).all() and np.isfinite(les.slope[3:]).all() and np.isfinite(les.lo[3:]).all()
