"""rfdiff.stats: intervals that cover, power-law exponents with their range, finite-size extrapolation."""
import math

import numpy as np
import pytest

from rfdiff.stats import Estimate, fit_finite_size, fit_power_law, mean_ci


def test_mean_ci_covers_at_its_level():
    rng = np.random.default_rng(0)
    hits = sum(mean_ci(rng.normal(2.0, 0.5, 5)).contains(2.0) for _ in range(400))
    assert 0.91 <= hits / 400 <= 0.99
    one = mean_ci([3.0])
    assert one.value == 3.0 and math.isnan(one.lo)


@pytest.mark.parametrize("slope", [1.0, 0.0, -0.59])
def test_power_law_recovers_slope_range_and_local_slopes(slope):
    rng = np.random.default_rng(1)
    x = np.geomspace(10, 1000, 12)
    hits = 0
    for _ in range(200):
        f = fit_power_law(x, 3.0 * x**slope * np.exp(0.05 * rng.standard_normal(x.size)))
        hits += f.slope.contains(slope)
    assert 0.88 <= hits / 200 <= 0.99
    f = fit_power_law(x, 2.0 * x**slope)
    assert f.slope.value == pytest.approx(slope, abs=1e-12) and f.prefactor == pytest.approx(2.0)
    assert f.x_range == pytest.approx((10.0, 1000.0))
    assert f.local_slope_lo == pytest.approx(slope) and f.local_slope_hi == pytest.approx(slope)
    bent = fit_power_law(x, x + 30.0)            # slope 0 → 1 across the range: the local slopes say so
    assert bent.local_slope_lo < 0.3 < 0.9 < bent.local_slope_hi


def test_power_law_drops_bad_points():
    f = fit_power_law([1, 2, 4, 8, 16], [1, 2, np.nan, -1, 16])
    assert f.n_points == 3 and f.n_dropped == 2 and f.slope.value == pytest.approx(1.0)
    assert math.isnan(fit_power_law([1], [1]).slope.value)
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1, 2], [1, 2, 3])


def test_finite_size_extrapolation_recovers_a_and_b():
    """Noisy y = a + b/n at 3 seeds per n: the 95 % intervals of a and b cover the truth at ≈ 95 %."""
    rng = np.random.default_rng(2)
    n = np.repeat([64, 96, 128, 192, 256, 400], 3)
    cover_a = cover_b = 0
    for _ in range(200):
        f = fit_finite_size(n, 0.35 + 40.0 / n + 0.003 * rng.standard_normal(n.size), exponents=(1.0,))
        cover_a += f.a.contains(0.35)
        cover_b += f.b.contains(40.0)
    assert 0.9 <= cover_a / 200 <= 0.99 and 0.9 <= cover_b / 200 <= 0.99
    f = fit_finite_size(n, 0.06 - 0.3 / np.sqrt(n))
    assert f.gamma == 0.5 and f.a.value == pytest.approx(0.06, abs=1e-10)   # 1/√n chosen when it fits better
    flat = fit_finite_size(n, 1.0 + 0.003 * rng.standard_normal(n.size))
    assert flat.b.contains(0.0)
    assert isinstance(flat.a, Estimate) and flat.n_points == n.size


def test_lack_of_fit_rejects_a_correction_that_turns_back():
    """Size means that fall then rise (not a + b n^-γ for any a, b) are rejected against the seeds' scatter; the
    same scatter about a true a + b/n is not (at about the test's 1 % rate over repeats); no replicates: NaN."""
    rng = np.random.default_rng(7)
    n = np.repeat([8, 12, 16, 32, 64], 5)
    rejected = kept = 0
    for _ in range(100):
        noise = 0.02 * rng.standard_normal(n.size)
        rejected += fit_finite_size(n, 1.0 + 0.3 * np.sin(np.log(n) * 2.5) + noise).lack_of_fit_p < 0.01
        kept += fit_finite_size(n, 1.0 + 2.0 / n + noise).lack_of_fit_p >= 0.01
    assert rejected >= 95 and kept >= 95
    assert math.isnan(fit_finite_size([8, 12, 16], [1.0, 0.9, 0.8]).lack_of_fit_p)


def test_forecast_of_a_held_out_size_covers_the_truth():
    """Fitted on n = 8 … 32 (5 seeds each) of y = 1 + 3/n + noise, the forecast at n = 64 covers 1 + 3/64 at ≈ 95 %;
    a forecast needs a positive size."""
    from rfdiff.stats import forecast_finite_size
    rng = np.random.default_rng(11)
    n = np.repeat([8, 12, 16, 32], 5)
    cover = 0
    for _ in range(200):
        y = 1 + 3.0 / n + 0.02 * rng.standard_normal(n.size)
        f = forecast_finite_size(fit_finite_size(n, y, exponents=(1.0,)), n, y, 64.0)
        cover += f.lo <= 1 + 3 / 64 <= f.hi
    assert 0.9 <= cover / 200 <= 0.99
    with pytest.raises(ValueError, match="^at"):
        forecast_finite_size(fit_finite_size(n, y), n, y, 0.0)


def test_finite_size_second_term_only_when_the_data_ask():
    """The next order c n^-2γ enters only when an F-test asks for it, and then recovers a."""
    rng = np.random.default_rng(5)
    n = np.repeat([64, 96, 128, 192, 256, 400], 3)
    curved = fit_finite_size(n, 0.3 + 20.0 / n - 3000.0 / n**2 + 1e-4 * rng.standard_normal(n.size), exponents=(1.0,))
    assert curved.c is not None and curved.a.contains(0.3) and curved.c.contains(-3000.0)
    straight = fit_finite_size(n, 0.3 + 20.0 / n + 1e-3 * rng.standard_normal(n.size), exponents=(1.0,))
    assert straight.c is None and straight.a.contains(0.3)
