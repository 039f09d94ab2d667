"""The verdict rule: is a measured quantity equivalent to a reference value? (docs/theory.md §6.4)

One rule for every claim of the report, the equivalence test of metrology and pharmacology (two
one-sided tests). Inputs: an estimate with its 95 % interval ``[ℓ, h]``
(:class:`rfdiff.stats.Estimate`), a reference ``r`` (the theory's value or the paper's) and the
claim's tolerance δ (absolute, or relative to |r|):

* **agree** — the whole interval lies within ``[r − δ, r + δ]``;
* **disagree** — the whole interval lies outside it (``h < r − δ`` or ``ℓ > r + δ``);
* **inconclusive** — otherwise (the interval straddles an end of the band, or is wider than it:
  an interval wider than 2δ can never agree).

Only estimates whose interval means something are judged: an exact value (a theory's,
``Estimate.source == "exact"``: the interval is the point), a mean over at least ``min_seeds``
seeds, or a fit whose residuals give the interval. A value without an interval gets
``"no verdict (point)"``; a mean over fewer seeds ``"no verdict (k seeds)"``.

A power law ``y ∝ x^a`` is judged on its local exponents (:func:`rfdiff.stats.local_exponents`):
:func:`judge_power_law` agrees only where every local slope agrees with ``a``. Degenerate points
are excluded before any fit by a stated rule (:func:`degenerate`), never by hand.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

from rfdiff.stats import Estimate, LocalExponents

AGREE, DISAGREE, INCONCLUSIVE = "agree", "disagree", "inconclusive"
NO_VERDICT = "no verdict"
MIN_SEEDS = 5


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome and why: the estimate, the reference, the tolerance used and a one-line reason.

    ``outcome`` is :data:`AGREE`, :data:`DISAGREE`, :data:`INCONCLUSIVE`, or starts with
    :data:`NO_VERDICT` (``"no verdict (point)"``, ``"no verdict (3 seeds)"``, …); ``points`` holds the
    per-point verdicts of a power-law verdict (empty otherwise).
    """

    outcome: str
    estimate: Estimate
    reference: float
    tolerance: float
    reason: str
    points: tuple = ()

    @property
    def judged(self) -> bool:
        """True when the rule gave a verdict (agree, disagree or inconclusive)."""
        return self.outcome in (AGREE, DISAGREE, INCONCLUSIVE)


def _seeds(k: int) -> str:
    return f"{k} seed" + ("" if k == 1 else "s")


def judge(estimate: Estimate, reference: float, tolerance: float = 0.0, relative: bool = False,
          max_half_width: Optional[float] = None, *, min_seeds: int = MIN_SEEDS) -> Verdict:
    """The equivalence rule of the module docstring (docs/theory.md §6.4).

    ``relative=True`` makes ``tolerance`` a fraction of |reference|. ``max_half_width`` (optional, a
    stated precision): a wider interval is inconclusive whatever else. ``min_seeds``: the fewest seeds
    a seed mean needs to be judged.
    """
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}")
    if min_seeds < 2:
        raise ValueError(f"min_seeds must be >= 2, got {min_seeds!r}")
    x, r = estimate.value, float(reference)
    tol = tolerance * abs(r) if relative else tolerance
    if not (math.isfinite(x) and math.isfinite(r)):
        return Verdict(f"{NO_VERDICT} (no finite value)", estimate, r, tol, "no finite estimate or reference")
    source = estimate.source
    if source == "exact":
        lo = hi = x
    else:
        if source == "seeds" and estimate.n < min_seeds:
            return Verdict(f"{NO_VERDICT} ({_seeds(estimate.n)})", estimate, r, tol,
                           f"a mean over {_seeds(estimate.n)}; at least {min_seeds} are needed")
        lo, hi = estimate.lo, estimate.hi
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return Verdict(f"{NO_VERDICT} (point)", estimate, r, tol, "a value without an interval")
    a, b = r - tol, r + tol
    band = f"[{a:.4g}, {b:.4g}] (r = {r:.4g} ± {tol:.3g})"
    if max_half_width is not None and 0.5 * (hi - lo) > max_half_width:
        return Verdict(INCONCLUSIVE, estimate, r, tol,
                       f"the interval's half-width {0.5 * (hi - lo):.3g} exceeds the stated precision {max_half_width:.3g}")
    if a <= lo and hi <= b:
        return Verdict(AGREE, estimate, r, tol, f"the interval [{lo:.4g}, {hi:.4g}] lies within {band}")
    if hi < a or lo > b:
        return Verdict(DISAGREE, estimate, r, tol, f"the interval [{lo:.4g}, {hi:.4g}] lies outside {band}")
    why = "is wider than the band" if hi - lo > b - a else "straddles an end of the band"
    return Verdict(INCONCLUSIVE, estimate, r, tol, f"the interval [{lo:.4g}, {hi:.4g}] {why} {band}")


def judge_power_law(local: LocalExponents, exponent, tolerance: float, *,
                    min_seeds: int = MIN_SEEDS) -> Verdict:
    """``y ∝ x^exponent`` over the range of ``local``: each local slope judged by :func:`judge` (docs/theory.md §6.4).

    ``exponent``: one number (the paper's law), or one reference slope per point of ``local`` (e.g. the
    theory's exact local slopes at the same x: simulation against theory, point by point).
    agree — every local slope agrees; disagree — some local slope disagrees; no verdict — some slope
    cannot be judged (a point, too few seeds, NaN); inconclusive — otherwise. ``estimate`` spans the
    slopes: value their mean, interval from the lowest ``lo`` to the highest ``hi``.
    """
    refs = np.broadcast_to(np.asarray(exponent, dtype=np.float64), np.shape(local.x))
    pts = tuple(judge(e, float(r), tolerance, min_seeds=min_seeds) for e, r in zip(local.estimates(), refs))
    if not pts:
        raise ValueError("local must hold at least one point")
    exponent = float(refs[0]) if np.all(refs == refs[0]) else "the reference slopes"
    s = np.asarray(local.slope, dtype=np.float64)
    span = Estimate(float(np.mean(s)), float(np.min(local.lo)), float(np.max(local.hi)), local.level,
                    int(np.min(local.seeds)), local.method)
    x = np.asarray(local.x)
    rng = f"x = {x[0]:.4g} … {x[-1]:.4g}"
    tol = float(tolerance)
    bad = [i for i, v in enumerate(pts) if not v.judged]
    if bad:
        return Verdict(pts[bad[0]].outcome, span, _ref_value(refs), tol,
                       f"local slope at x = {x[bad[0]]:.4g}: {pts[bad[0]].reason}", pts)
    off = [i for i, v in enumerate(pts) if v.outcome == DISAGREE]
    if off:
        return Verdict(DISAGREE, span, _ref_value(refs), tol,
                       f"local slope {s[off[0]]:.3g} at x = {x[off[0]]:.4g} is outside {_ref(refs[off[0]])} ± {tol:g} "
                       f"({len(off)} of {len(pts)} points, {rng})", pts)
    if all(v.outcome == AGREE for v in pts):
        return Verdict(AGREE, span, _ref_value(refs), tol,
                       f"every local slope ({s.min():.3g} … {s.max():.3g}) lies within {_ref(exponent)} ± {tol:g}, {rng}",
                       pts)
    first = next(i for i, v in enumerate(pts) if v.outcome == INCONCLUSIVE)
    return Verdict(INCONCLUSIVE, span, _ref_value(refs), tol, f"local slope at x = {x[first]:.4g}: {pts[first].reason}", pts)


def _ref(r) -> str:
    return r if isinstance(r, str) else f"{float(r):.3g}"


def _ref_value(refs: np.ndarray) -> float:
    """The reference a power-law verdict records: the exponent, or the mean of per-point reference slopes."""
    return float(np.mean(refs))


def law_holds(local: LocalExponents, exponent: float, tolerance: float) -> np.ndarray:
    """Where ``y ∝ x^exponent`` holds for an exact curve: ``|a(x) − exponent| ≤ tolerance`` per point (NaN: False)."""
    s = np.asarray(local.slope, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(s - exponent) <= tolerance


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
