"""Estimates with intervals: seed means, power-law exponents and finite-size extrapolations (docs/theory.md §6.3).

Every estimate is a :class:`Estimate` — a value, a confidence interval at a stated level and how
it was obtained — so that a verdict can be read off it by one rule (``rfdiff_analysis/verdict.py``).

* :func:`mean_ci` — mean over seeds with a Student-t interval.
* :func:`fit_power_law` — OLS of log y on log x; the exponent with its t-interval, the fitted
  range ``[x_min, x_max]`` and the local slopes at both ends of that range (an exponent is only
  meaningful together with its range).
* :func:`fit_finite_size` — ``y = a + b n^{-γ}`` (γ = 1, or ½ when that fits better; a second
  term only if an F-test at 1 % asks for it) by OLS over every (n, seed) point; ``a`` is the
  extrapolation to n → ∞ (d → ∞ at fixed ψ's), ``b`` the finite-size coefficient, both with t-intervals.
* :func:`local_exponents` — ``d log y / d log x`` at every point of a range: exactly (no interval)
  for a theory curve, from seed means with a delta-method interval for simulations (§6.4).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

from ._util import check_fraction
from .results import register

__all__ = ["Estimate", "PowerLawFit", "FiniteSizeFit", "LocalExponents", "mean_ci", "exact", "fit_power_law",
           "fit_finite_size", "forecast_finite_size", "local_exponents"]


def _scipy_stats():
    """scipy.stats, imported on first use (importing it costs 0.3 s, a twentieth of the main job)."""
    from scipy import stats
    return stats


@register
@dataclasses.dataclass(frozen=True)
class Estimate:
    """A value with its ``level`` confidence interval ``[lo, hi]`` (NaN when it cannot be estimated)."""

    value: float
    lo: float = math.nan
    hi: float = math.nan
    level: float = 0.95
    n: int = 0
    method: str = ""

    @property
    def half_width(self) -> float:
        return 0.5 * (self.hi - self.lo)

    def contains(self, x: float) -> bool:
        return bool(self.lo <= x <= self.hi)

    @property
    def source(self) -> str:
        """How the value was obtained, read from ``method``: ``"exact"`` (no sampling error: a theory
        value; the interval is the point), ``"seeds"`` (over ``n`` seeds), ``"fit"`` (an interval from a
        fit's residuals) or ``""`` (not stated). The verdict rule needs it (docs/theory.md §6.4)."""
        m = self.method.lower()
        if m.startswith("exact"):
            return "exact"
        if "seed" in m:
            return "seeds"
        if "ols" in m or "fit" in m:
            return "fit"
        return ""


@register
@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    """``y ≈ c x^slope`` over ``x_range``: the exponent (:class:`Estimate`), the local slopes at the two ends."""

    slope: Estimate
    prefactor: float
    x_range: tuple
    local_slope_lo: float
    local_slope_hi: float
    r2: float
    n_points: int
    n_dropped: int


@register
@dataclasses.dataclass(frozen=True)
class FiniteSizeFit:
    """``y = a + b n^{-γ} (+ c n^{-γ'})``: extrapolation ``a`` and coefficient ``b`` (each an :class:`Estimate`).

    ``gamma``: exponent of the leading correction (chosen among the candidates by the smaller
    residual); ``c``/``gamma2``: a second term, kept only when an F-test asks for it.
    """

    a: Estimate
    b: Estimate
    c: Optional[Estimate]
    n_range: tuple
    n_points: int
    residual_sd: float
    f_test_p: float            # p-value of adding the second term (NaN when too few points)
    gamma: float = 1.0
    gamma2: Optional[float] = None
    lack_of_fit_p: float = math.nan   # p-value of the form against the seeds' scatter at each size (NaN: not testable)

    def predict(self, n) -> np.ndarray:
        """The fitted model at ``n``: ``a + b n^{-γ} (+ c n^{-γ'})``, exactly the terms the fit kept
        (docs/theory.md §6.3); ``n = ∞`` gives ``a``. float64, the shape of ``n``."""
        n = np.asarray(n, dtype=np.float64)
        if np.any(~(n > 0)):
            raise ValueError("n must be positive")
        y = self.a.value + self.b.value * n ** -self.gamma
        if self.c is not None:
            g2 = self.gamma2 if self.gamma2 is not None else 2.0 * self.gamma
            y = y + self.c.value * n ** -g2
        return np.asarray(y, dtype=np.float64)


def _check_level(level: float) -> float:
    return check_fraction("level", level)


def mean_ci(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean of the finite ``values`` with a Student-t interval (a single value: no interval)."""
    level = _check_level(level)
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(math.nan, level=level, method="mean over seeds (no finite value)")
    m = float(v.mean())
    if v.size == 1:
        return Estimate(m, math.nan, math.nan, level, 1, "one seed (no interval)")
    half = float(_scipy_stats().t.ppf(0.5 + level / 2, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return Estimate(m, m - half, m + half, level, int(v.size), f"mean over {v.size} seeds, t-interval")


def exact(value: float, what: str = "") -> Estimate:
    """A value without sampling error (a theory's): its interval is the point itself, ``method`` "exact"."""
    v = float(value)
    return Estimate(v, v, v, 0.95, 0, "exact" + (f" ({what})" if what else ""))


def _ols(X: np.ndarray, y: np.ndarray):
    """Least squares: coefficients, their standard errors, residual sum of squares and degrees of freedom."""
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    rss = float(resid @ resid)
    dof = X.shape[0] - X.shape[1]
    if dof <= 0:
        return coef, np.full(coef.size, math.nan), rss, dof
    cov = rss / dof * np.linalg.pinv(X.T @ X)
    return coef, np.sqrt(np.clip(np.diag(cov), 0.0, None)), rss, dof


def _est(value, se, dof, level, n, method) -> Estimate:
    if not (dof > 0 and math.isfinite(se)):
        return Estimate(float(value), math.nan, math.nan, level, n, method + " (no interval: too few points)")
    half = float(_scipy_stats().t.ppf(0.5 + level / 2, dof)) * se
    return Estimate(float(value), float(value - half), float(value + half), level, n, method)


def fit_power_law(x, y, level: float = 0.95) -> PowerLawFit:
    """OLS fit of ``log y = log c + slope·log x`` over all finite positive points (repeated x = seeds).

    The local slopes are those of the straight lines through the mean log y at the two smallest and
    at the two largest distinct x (how the exponent drifts across the range).
    """
    level = _check_level(level)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    nan = math.nan
    if lx.size < 2 or np.ptp(lx) == 0:
        return PowerLawFit(Estimate(nan, level=level), nan, (nan, nan), nan, nan, nan, int(lx.size),
                           int(x.size - lx.size))
    coef, se, rss, dof = _ols(np.stack([np.ones_like(lx), lx], axis=1), ly)
    ux = np.unique(lx)
    mean_ly = np.array([ly[lx == u].mean() for u in ux])
    loc = lambda i, j: float((mean_ly[j] - mean_ly[i]) / (ux[j] - ux[i])) if ux.size >= 2 else nan  # noqa: E731
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    return PowerLawFit(_est(coef[1], se[1], dof, level, int(lx.size), "OLS in log-log, t-interval"),
                       float(math.exp(coef[0])), (float(np.exp(ux[0])), float(np.exp(ux[-1]))), loc(0, 1),
                       loc(-2, -1), 1.0 - rss / ss_tot if ss_tot > 0 else 1.0, int(lx.size), int(x.size - lx.size))


def fit_finite_size(n, y, level: float = 0.95, f_test_alpha: float = 0.01,
                    exponents: Sequence[float] = (1.0, 0.5)) -> FiniteSizeFit:
    """Fit ``y = a + b n^{-γ}`` with γ the candidate of ``exponents`` that fits best (smallest residual), and
    add the next order ``c n^{-2γ}`` when an F-test at ``f_test_alpha`` asks for it (docs/theory.md §6.3).

    ``n`` and ``y`` hold one entry per (size, seed); non-finite y are dropped. The first candidate
    (1/n) is the expected leading correction of the loss-type quantities; 1/√n is that of spectral
    edges smeared by the spread of the training points' norms (relative s.d. √(2/d)). The second
    term is the next order of the same expansion, never the other candidate: a mixture of n^{-1/2}
    and n^{-1} with opposite signs can bend the fit at the smallest sizes and throw the
    extrapolation far outside the data.
    """
    level = _check_level(level)
    n = np.asarray(n, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if n.shape != y.shape:
        raise ValueError(f"n and y must have the same length, got {n.size} and {y.size}")
    exps = [float(g) for g in exponents]
    if not exps or any(not g > 0 for g in exps):
        raise ValueError(f"exponents must be positive, got {exponents!r}")
    ok = np.isfinite(n) & np.isfinite(y) & (n > 0)
    n, y = n[ok], y[ok]
    nan = math.nan
    if n.size < 2 or np.unique(n).size < 2:
        return FiniteSizeFit(Estimate(nan, level=level), Estimate(nan, level=level), None, (nan, nan), int(n.size),
                             nan, nan, exps[0])
    fits = []
    for g in exps:
        X1 = np.stack([np.ones_like(n), n ** -g], axis=1)
        fits.append((_ols(X1, y), g, X1))
    (coef, se, rss1, dof1), gamma, X1 = min(fits, key=lambda f: f[0][2])
    c_est, p_val, gamma2 = None, nan, None
    if np.unique(n).size >= 4 and n.size >= 5:
        g2 = 2.0 * gamma
        coef2, se2, rss2, dof2 = _ols(np.concatenate([X1, (n ** -g2)[:, None]], axis=1), y)
        if dof2 > 0 and rss2 > 0:
            p_val = float(_scipy_stats().f.sf((rss1 - rss2) / (rss2 / dof2), 1, dof2))
            if p_val < f_test_alpha:
                coef, se, rss1, dof1, gamma2 = coef2, se2, rss2, dof2, g2
                c_est = _est(coef[2], se[2], dof1, level, int(n.size), "OLS, t-interval")
    method = f"OLS in n^-{gamma:g}" + (f" + n^-{gamma2:g}" if gamma2 else "") + ", t-interval"
    return FiniteSizeFit(_est(coef[0], se[0], dof1, level, int(n.size), method),
                         _est(coef[1], se[1], dof1, level, int(n.size), method), c_est,
                         (float(n.min()), float(n.max())), int(n.size),
                         math.sqrt(rss1 / dof1) if dof1 > 0 else nan, p_val, gamma, gamma2,
                         _lack_of_fit(n, y, rss1, n.size - dof1))


def forecast_finite_size(fit: FiniteSizeFit, n, y, at: float) -> Estimate:
    """The mean of ``y`` at size ``at`` predicted by ``fit`` (refitted on its points ``n``, ``y`` with its exponents),
    with the t-interval of that prediction at the fit's level (docs/theory.md §6.3).

    ``x₀ = (1, at^-γ[, at^-γ₂])``; value ``x₀ᵀβ``, standard error ``√(x₀ᵀ Cov(β) x₀)``, Cov(β) = s² (XᵀX)⁻¹. Used to
    hold out a size: fitted on the others, the forecast is set beside what that size measured.
    """
    n = np.asarray(n, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(n) & np.isfinite(y) & (n > 0)
    n, y = n[ok], y[ok]
    if not (isinstance(at, (int, float)) and at > 0):
        raise ValueError(f"at must be a positive size, got {at!r}")
    level = fit.a.level
    exps = [fit.gamma] + ([fit.gamma2] if fit.gamma2 is not None else [])
    if not math.isfinite(fit.a.value) or n.size <= len(exps) + 1:
        return Estimate(math.nan, level=level)
    X = np.stack([np.ones_like(n)] + [n ** -g for g in exps], axis=1)
    coef, _, rss, dof = _ols(X, y)
    x0 = np.array([1.0] + [float(at) ** -g for g in exps])
    value = float(x0 @ coef)
    cov = rss / dof * np.linalg.pinv(X.T @ X)
    return _est(value, math.sqrt(max(float(x0 @ cov @ x0), 0.0)), dof, level, int(n.size),
                f"forecast at {at:g} of OLS in n^-{fit.gamma:g}, t-interval")


def _lack_of_fit(n: np.ndarray, y: np.ndarray, rss: float, n_params: int) -> float:
    """p-value of the lack-of-fit F-test (docs/theory.md §6.3): the residual sum of squares split into the seeds'
    scatter about each size's mean (pure error, N − k dof) and the rest (lack of fit, k − n_params dof), k sizes.

    F = (SS_lof/(k − n_params)) / (SS_pe/(N − k)); a small p says the form cannot describe how the size means
    move, whatever its parameters. NaN without replicates or without more sizes than parameters."""
    sizes, inverse = np.unique(n, return_inverse=True)
    k, N = sizes.size, n.size
    if not (k > n_params and N > k):
        return math.nan
    means = np.bincount(inverse, weights=y) / np.bincount(inverse)
    ss_pe = float(np.sum((y - means[inverse]) ** 2))
    ss_lof = max(float(rss) - ss_pe, 0.0)
    if ss_pe <= 0:
        return 0.0 if ss_lof > 0 else 1.0
    F = (ss_lof / (k - n_params)) / (ss_pe / (N - k))
    return float(_scipy_stats().f.sf(F, k - n_params, N - k))


@register
@dataclasses.dataclass(frozen=True, eq=False)
class LocalExponents:
    """Local exponents ``d log y / d log x`` at the points ``x`` with ``level`` intervals ``[lo, hi]`` (§6.4).

    ``seeds``: the fewest seeds behind any point of each slope's stencil (0 for an exact curve, whose
    interval is the point itself); ``method`` says how they were obtained.
    """

    x: np.ndarray
    slope: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    seeds: np.ndarray
    level: float
    method: str

    def estimates(self) -> list:
        """One :class:`Estimate` per point (what the verdict rule reads)."""
        return [Estimate(float(s), float(a), float(b), self.level, int(k), self.method)
                for s, a, b, k in zip(self.slope, self.lo, self.hi, self.seeds)]


def _log_derivative_operator(lx: np.ndarray) -> np.ndarray:
    """Matrix D with ``D @ f`` = df/dlx at every point: second-order central differences on the (non-uniform)
    grid, second-order one-sided at the ends (first order with two points); exact for a quadratic in lx."""
    return np.gradient(np.eye(lx.size), lx, axis=0, edge_order=2 if lx.size >= 3 else 1)


def _apply(D: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``D @ v`` where a NaN of ``v`` spoils its own row and the rows whose stencil uses it, and no other (NaN · 0
    in the product would spoil every row)."""
    bad = ~np.isfinite(v)
    out = D @ np.where(bad, 0.0, v)
    out[(np.abs(D[:, bad]) > 0).any(axis=1) | bad] = np.nan
    return out


def local_exponents(x, y, level: float = 0.95) -> LocalExponents:
    """Local exponent ``a(x) = d log y / d log x`` at every point of ``x`` (docs/theory.md §6.4).

    ``y`` of shape ``(len(x),)``: an exact curve (a theory's); the slopes are finite differences of
    log y in log x, second order (exact for a pure power law, and for log y quadratic in log x), with no
    interval (``lo = hi = slope``). ``y`` of shape ``(seeds, len(x))``: independent seeds per point
    (NaN where missing); the slope is that of the seed means ȳ, and its interval is the delta
    method, ``Var log ȳ_j = s_j²/(k_j ȳ_j²)``, ``Var a_i = Σ_j D_ij² Var log ȳ_j``, with a Student-t
    quantile at the fewest seeds of the stencil minus one. Points with y ≤ 0 give NaN slopes nearby.
    """
    level = _check_level(level)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.size < 2 or not np.all(np.isfinite(x)) or np.any(x <= 0) or np.any(np.diff(x) <= 0):
        raise ValueError("x must be a 1-d array of at least 2 finite, positive, strictly increasing values")
    if y.ndim not in (1, 2) or y.shape[-1] != x.size:
        raise ValueError(f"y must have shape (len(x),) or (seeds, len(x)) = (k, {x.size}), got {y.shape}")
    D = _log_derivative_operator(np.log(x))
    if y.ndim == 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            ly = np.where(y > 0, np.log(np.where(y > 0, y, 1.0)), np.nan)
        s = _apply(D, ly)
        return LocalExponents(x, s, s.copy(), s.copy(), np.zeros(x.size, dtype=np.int64), level,
                              "exact (second-order finite differences of log y in log x)")
    ok = np.isfinite(y)
    k = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(k > 0, np.nansum(np.where(ok, y, 0.0), axis=0) / np.maximum(k, 1), np.nan)
        var = np.where(k > 1, np.nansum(np.where(ok, (y - mean) ** 2, 0.0), axis=0) / np.maximum(k - 1, 1), np.nan)
        ly = np.where(mean > 0, np.log(np.where(mean > 0, mean, 1.0)), np.nan)
        var_ly = var / (np.maximum(k, 1) * mean ** 2)
    s = _apply(D, ly)
    used = np.abs(D) > 0
    seeds = np.where(used, k[None, :], np.iinfo(np.int64).max).min(axis=1).astype(np.int64)
    with np.errstate(invalid="ignore"):
        se = np.sqrt((D ** 2 * np.where(used, var_ly[None, :], 0.0)).sum(axis=1))
        q = _scipy_stats().t.ppf(0.5 + level / 2, np.maximum(seeds - 1, 1))
    half = np.where(seeds >= 2, q * se, np.nan)
    return LocalExponents(x, s, s - half, s + half, seeds, level,
                          "local exponent of the seed means over seeds, delta-method t-interval")
