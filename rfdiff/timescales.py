"""Operational timescales from loss curves (the analysis layer of SPEC §4: τ_gen, τ_mem).

τ_gen: first τ at which the score error (or test loss) comes within ``frac`` of its minimum,
``E(τ) ≤ (1 + frac) min_τ E``. τ_mem: first τ at which the generalisation gap L_gen exceeds
``frac`` of its final value, and (separately) an absolute threshold. Crossings are located by
linear interpolation in log τ between grid points; thresholds are returned with the result.
"""
from __future__ import annotations

import math

import numpy as np


def _first_crossing(tau: np.ndarray, y: np.ndarray, level: float, upward: bool) -> float:
    """First τ where y crosses ``level`` (upward: y ≥ level; else y ≤ level), log-interpolated."""
    tau = np.asarray(tau, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    hit = y >= level if upward else y <= level
    idx = np.flatnonzero(hit)
    if idx.size == 0:
        return math.nan
    i = int(idx[0])
    if i == 0:
        return float(tau[0])
    y0, y1 = y[i - 1], y[i]
    frac = (level - y0) / (y1 - y0) if y1 != y0 else 1.0
    return float(np.exp(np.log(tau[i - 1]) + frac * (np.log(tau[i]) - np.log(tau[i - 1]))))


def _check(tau, y):
    tau = np.asarray(tau, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if tau.ndim != 1 or tau.shape != y.shape or tau.size < 2:
        raise ValueError("tau and the curve must be 1-d arrays of the same length (>= 2)")
    if np.any(tau <= 0) or np.any(np.diff(tau) <= 0):
        raise ValueError("tau must be positive and strictly increasing")
    if not np.all(np.isfinite(y)):
        raise ValueError("curve contains non-finite values")
    return tau, y


def tau_gen(tau, score_error, frac: float = 0.1) -> dict:
    """τ_gen = first τ with E(τ) ≤ (1 + frac)·min E (score error or test loss)."""
    tau, y = _check(tau, score_error)
    if not frac > 0:
        raise ValueError(f"frac must be > 0, got {frac}")
    ymin = float(y.min())
    level = ymin * (1 + frac) if ymin > 0 else ymin + frac * (y[0] - ymin)
    return {"tau_gen": _first_crossing(tau, y, level, upward=False), "level": level, "min": ymin,
            "tau_at_min": float(tau[int(np.argmin(y))]),
            "definition": f"first tau with curve <= (1+{frac:g}) * min"}


def tau_mem(tau, gen_gap, frac: float = 0.5, abs_threshold: float = 0.05) -> dict:
    """τ_mem = first τ with L_gen(τ) ≥ frac·L_gen(τ_max); also the first τ with L_gen ≥ abs_threshold."""
    tau, y = _check(tau, gen_gap)
    if not 0 < frac < 1:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    final = float(y[-1])
    rel = _first_crossing(tau, y, frac * final, upward=True) if final > 0 else math.nan
    return {"tau_mem": rel, "level": frac * final, "final_gap": final,
            "tau_mem_abs": _first_crossing(tau, y, abs_threshold, upward=True), "abs_threshold": abs_threshold,
            "definition": f"first tau with gen_gap >= {frac:g} * final gap; abs: gen_gap >= {abs_threshold:g}"}
