"""The verdict rule (rfdiff_analysis/verdict.py): a verdict never contradicts its own interval."""
import math

import numpy as np
import pytest

from rfdiff.stats import Estimate
from rfdiff_analysis.verdict import AGREE, DISAGREE, INCONCLUSIVE, degenerate, judge


def test_interval_containing_the_reference_never_disagrees():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        lo = rng.normal()
        hi = lo + rng.exponential()
        r = rng.uniform(lo, hi)
        v = judge(Estimate(rng.uniform(lo, hi), lo, hi), r, abs(rng.normal()), relative=bool(rng.integers(2)))
        assert v.outcome != DISAGREE


def test_disagree_only_when_the_interval_excludes_and_outside_tolerance():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        lo = rng.normal()
        hi = lo + rng.exponential()
        x = rng.uniform(lo, hi)
        r, tol = rng.normal() * 3, rng.exponential()
        v = judge(Estimate(x, lo, hi), r, tol)
        if v.outcome == DISAGREE:
            assert not lo <= r <= hi and abs(x - r) > tol


def test_rule_cases():
    assert judge(Estimate(1.0, 0.9, 1.1), 1.05).outcome == AGREE
    assert judge(Estimate(1.3, 1.2, 1.4), 1.0, 0.1).outcome == DISAGREE
    assert judge(Estimate(1.05, 1.04, 1.06), 1.0, 0.1).outcome == AGREE          # real but within tolerance
    assert judge(Estimate(1.0, -5.0, 7.0), 1.0, max_half_width=0.5).outcome == INCONCLUSIVE
    assert judge(Estimate(2.0), 1.0).outcome == INCONCLUSIVE                       # no interval, no tolerance
    assert judge(Estimate(1.01), 1.0, 0.02, relative=True).outcome == AGREE
    assert judge(Estimate(math.nan, 0, 1), 1.0).outcome == INCONCLUSIVE
    with pytest.raises(ValueError, match="tolerance"):
        judge(Estimate(1.0), 1.0, -1.0)


def test_degenerate_points_by_rule():
    assert degenerate(64, 64, 4096, "tau_mem") is not None           # n = d: the memorisation bulk has no mass
    assert degenerate(4050, 64, 4096, "lambda_mem") is not None      # n + d ≥ p
    assert degenerate(512, 64, 4096, "tau_mem") is None
    assert degenerate(64, 64, 4096, "tau_gen") is None
