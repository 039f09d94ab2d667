"""rfdiff.stats.local_exponents: d log y / d log x exactly for curves, with delta-method intervals for seeds (§6.4)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfdiff.stats import local_exponents


@settings(max_examples=100, deadline=None)
@given(a=st.floats(-3, 3), c=st.floats(1e-3, 1e3), lo=st.floats(-2, 2), span=st.floats(0.1, 4),
       m=st.integers(2, 40), jitter=st.integers(0, 2**31 - 1))
def test_pure_power_law_recovered_exactly(a, c, lo, span, m, jitter):
    """y = c x^a on any increasing (non-uniform) grid: every local exponent is a, to rounding."""
    rng = np.random.default_rng(jitter)
    lx = np.sort(lo + span * rng.random(m))
    lx = np.unique(np.round(lx, 9))
    if lx.size < 2 or np.min(np.diff(lx)) < 1e-6:
        return
    x = 10.0 ** lx
    le = local_exponents(x, c * x ** a)
    np.testing.assert_allclose(le.slope, a, atol=1e-7)
    assert np.array_equal(le.lo, le.slope) and np.array_equal(le.hi, le.slope)
    assert all(e.source == "exact" for e in le.estimates())


def test_quadratic_in_log_is_exact_and_ends_second_order():
    x = np.geomspace(1, 100, 7)
    L = np.log(x)
    le = local_exponents(x, np.exp(0.3 + 1.2 * L - 0.1 * L**2))
    np.testing.assert_allclose(le.slope, 1.2 - 0.2 * L, atol=1e-12)


def test_seed_intervals_cover_the_true_exponent():
    """Independent seeds per point (lognormal noise, s.d. 5 %): the 95 % intervals cover the true slope ≈ 95 %."""
    rng = np.random.default_rng(0)
    x = np.geomspace(10, 1000, 6)
    hits, total = 0, 0
    for _ in range(80):
        y = 2.0 * x ** 0.8 * np.exp(0.05 * rng.standard_normal((6, x.size)))
        le = local_exponents(x, y)
        hits += int(np.sum((le.lo <= 0.8) & (0.8 <= le.hi)))
        total += x.size
        assert np.all(le.seeds == 6) and le.estimates()[0].source == "seeds"
    assert 0.88 < hits / total <= 1.0


def test_missing_seeds_and_bad_input():
    x = np.array([1.0, 2.0, 4.0])
    y = np.array([[1.0, 2.0, 4.0], [1.1, np.nan, 4.2], [0.9, np.nan, 3.9]])
    le = local_exponents(x, y)
    # the ends' one-sided stencils use the middle point (one seed): no interval; the central one skips it
    assert list(le.seeds) == [1, 3, 1]
    assert np.isnan(le.lo[0]) and np.isnan(le.hi[2]) and np.isfinite(le.lo[1])
    le2 = local_exponents(x, np.array([1.0, -1.0, 4.0]))
    assert np.all(np.isnan(le2.slope))                  # a non-positive value poisons its stencil (here: all)
    with pytest.raises(ValueError, match="x must"):
        local_exponents([1.0, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="y must"):
        local_exponents([1.0, 2.0], [1.0, 2.0, 3.0])
