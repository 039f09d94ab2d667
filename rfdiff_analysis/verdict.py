"""The verdict rule: does a measured quantity agree with a reference value? (docs/theory.md §6.4)

One rule for every claim of the report. Inputs: an estimate with its confidence interval
(:class:`rfdiff.stats.Estimate`: seeds, a bootstrap or a fit), a reference value (the theory's,
or the paper's) and a stated tolerance δ (absolute, or relative to the reference).

* **agree** — the interval contains the reference, or it does not but the estimate is within
  the tolerance of it (|x̂ − r| ≤ δ: the difference is real but smaller than what the claim is
  about);
* **inconclusive** — the interval contains the reference but is wider than ``max_half_width``
  (nothing was tested), or there is no interval and no tolerance;
* **disagree** — the interval excludes the reference and |x̂ − r| > δ.

So a verdict never contradicts its own interval: "disagree" is only ever said of an interval
that excludes the reference. Degenerate points are excluded before any fit by a stated rule
(:func:`degenerate`), never by hand.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from rfdiff.stats import Estimate

AGREE, DISAGREE, INCONCLUSIVE = "agree", "disagree", "inconclusive"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome and why: the estimate, the reference, the tolerance used and a one-line reason."""

    outcome: str
    estimate: Estimate
    reference: float
    tolerance: float
    reason: str


def judge(estimate: Estimate, reference: float, tolerance: float = 0.0, relative: bool = False,
          max_half_width: Optional[float] = None) -> Verdict:
    """Apply the rule of the module docstring; ``relative=True`` makes ``tolerance`` a fraction of |reference|."""
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}")
    x, r = estimate.value, reference
    tol = tolerance * abs(r) if relative else tolerance
    if not (math.isfinite(x) and math.isfinite(r)):
        return Verdict(INCONCLUSIVE, estimate, r, tol, "no finite estimate or reference")
    has_ci = math.isfinite(estimate.lo) and math.isfinite(estimate.hi)
    close = abs(x - r) <= tol
    if not has_ci:
        if tol > 0:
            return Verdict(AGREE if close else INCONCLUSIVE, estimate, r, tol,
                           f"no interval; |x − r| = {abs(x - r):.3g} {'≤' if close else '>'} tolerance {tol:.3g}")
        return Verdict(INCONCLUSIVE, estimate, r, tol, "no interval and no tolerance")
    if estimate.contains(r):
        if max_half_width is not None and estimate.half_width > max_half_width:
            return Verdict(INCONCLUSIVE, estimate, r, tol,
                           f"interval contains the reference but its half-width {estimate.half_width:.3g} "
                           f"exceeds {max_half_width:.3g}")
        return Verdict(AGREE, estimate, r, tol, "the interval contains the reference")
    if close:
        return Verdict(AGREE, estimate, r, tol,
                       f"the interval excludes the reference, but |x − r| = {abs(x - r):.3g} ≤ tolerance {tol:.3g}")
    return Verdict(DISAGREE, estimate, r, tol,
                   f"the interval [{estimate.lo:.4g}, {estimate.hi:.4g}] excludes {r:.4g} and "
                   f"|x − r| = {abs(x - r):.3g} > tolerance {tol:.3g}")


def degenerate(n: int, d: int, p: int, quantity: str) -> Optional[str]:
    """Why a point is excluded from a fit of ``quantity``, or None (the rule is stated, not chosen per plot).

    τ_mem and the memorisation edge need a memorisation bulk of positive mass below the
    population bulk: n > d and n + d < p. τ_gen needs a population bulk: d < p.
    """
    if quantity in ("tau_mem", "tau_mem_abs", "lambda_mem", "lambda_mem_upper", "tau_mem_spectral", "final_gap"):
        if n <= d:
            return f"n = {n} ≤ d = {d}: the memorisation bulk has zero mass"
        if n + d >= p:
            return f"n + d = {n + d} ≥ p = {p}: no atom separates the memorisation bulk"
    if quantity in ("tau_gen", "tau_gen_spectral") and d >= p:
        return f"d = {d} ≥ p = {p}: no population bulk"
    return None
