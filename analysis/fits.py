"""Log-log power-law fits with confidence intervals (for the scaling laws of issue 4).

``fit_power_law(x, y)`` fits ``log y = a + b log x`` by ordinary least squares and returns the
slope b with its standard error and a Student-t confidence interval (``level``, default 95 %).
Non-finite or non-positive points are dropped (and counted). With two points the slope is exact
and the interval is undefined (``nan``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats


def fit_power_law(x, y, level: float = 0.95) -> dict:
    """OLS fit of ``log y = log c + slope · log x``; slope, its std. error and ``level`` CI.

    Returns a JSON-able dict: ``slope``, ``slope_se``, ``ci`` (low, high), ``prefactor`` (c),
    ``r2``, ``n_points`` used, ``n_dropped`` and ``level``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    k = lx.size
    out = {"n_points": int(k), "n_dropped": int(x.size - k), "level": level}
    if k < 2 or np.ptp(lx) == 0:
        return {**out, "slope": math.nan, "slope_se": math.nan, "ci": [math.nan, math.nan],
                "prefactor": math.nan, "r2": math.nan}
    xm = lx.mean()
    sxx = float(np.sum((lx - xm) ** 2))
    slope = float(np.sum((lx - xm) * (ly - ly.mean())) / sxx)
    icpt = float(ly.mean() - slope * xm)
    resid = ly - (icpt + slope * lx)
    ss_res = float(resid @ resid)
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    if k > 2:
        se = math.sqrt(ss_res / (k - 2) / sxx)
        half = float(stats.t.ppf(0.5 + level / 2, k - 2)) * se
    else:
        se = half = math.nan
    return {**out, "slope": slope, "slope_se": se, "ci": [slope - half, slope + half],
            "prefactor": math.exp(icpt), "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0}


def fmt_fit(fit: dict, digits: int = 2) -> str:
    """``"0.98 ± 0.05 (95% CI [0.93, 1.03], 6 pts)"``."""
    if not math.isfinite(fit.get("slope", math.nan)):
        return "n/a"
    lo, hi = fit["ci"]
    ci = (f", {100 * fit['level']:.0f}% CI [{lo:.{digits}f}, {hi:.{digits}f}]"
          if math.isfinite(lo) else "")
    se = f" ± {fit['slope_se']:.{digits}f}" if math.isfinite(fit["slope_se"]) else ""
    return f"{fit['slope']:.{digits}f}{se}{ci}, {fit['n_points']} pts"
