"""Timescales read from loss curves and from spectra, by one rule for simulation and theory (docs/theory.md §6).

τ_gen: first τ at which the score error comes within ``gen_frac`` of its minimum,
``E(τ) ≤ (1 + gen_frac) min_τ E``. τ_mem: first τ at which the generalisation gap L_gen reaches
``mem_frac`` of its value at the end of the grid (and, separately, an absolute level).
Crossings are located by linear interpolation in log τ between grid points. The memorisation
edge λ_mem is the spectral quantile 1 − n/p + 1/(2p) (the first eigenvalue of the memorisation
bulk) and ``τ_mem_spectral = ψ_p/(Δ_t λ_mem)`` the relaxation time of that mode; likewise the
population edge (quantile 1 − d/p + 1/(2p)) gives ``τ_gen_spectral`` (§6.2).
:func:`extract` applies all of these to a :class:`~rfdiff.results.Curves` (simulated or
theoretical) and a :class:`~rfdiff.results.Spectrum`, so both sides are compared like with like.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ._util import check_fraction
from .diffusion import delta
from .results import Curves, Spectrum, Thresholds, Timescales

__all__ = ["NAMES", "first_crossing", "tau_gen", "tau_mem", "memorisation_edge", "memorisation_upper_edge", "population_edge",
           "spectral_tau", "extract"]


NAMES = {
    "tau_gen": "τ_gen,curve",
    "tau_gen_spectral": "τ_gen,quantile",
    "tau_gen_thm32": "τ_gen,Thm3.2",
    "tau_mem": "τ_mem,curve",
    "tau_mem_abs": "τ_mem,abs",
    "tau_mem_spectral": "τ_mem,quantile",
    "tau_mem_thm32": "τ_mem,Thm3.2",
}
"""One name per definition of a timescale, the same in the main job, the report and the docs (docs/theory.md §6.1–6.2):

* ``τ_gen,curve``: first τ with E_score ≤ (1 + gen_frac)·min (§6.1); ``τ_mem,curve``: first τ with
  L_gen ≥ mem_frac·final; ``τ_mem,abs``: first τ with L_gen ≥ mem_abs;
* ``τ_gen,quantile`` = ψ_p/(Δ_t λ_pop) and ``τ_mem,quantile`` = ψ_p/(Δ_t λ_mem), with the edges λ_pop, λ_mem read
  by the quantile rule from a spectrum (the simulated one, or Theorem 3.1's density at the same ψ's) (§6.2);
* ``τ_gen,Thm3.2`` and ``τ_mem,Thm3.2``: Theorem 3.2's closed forms, from the d → ∞ support edges (§4.8).
"""


def first_crossing(tau, y, level: float, upward: bool) -> float:
    """First τ where y crosses ``level`` (upward: y ≥ level; else y ≤ level), interpolated linearly in log τ."""
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


def _check(tau, y, name):
    tau = np.asarray(tau, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if tau.ndim != 1 or tau.shape != y.shape or tau.size < 2:
        raise ValueError(f"tau and {name} must be 1-d arrays of the same length (>= 2), got {tau.shape}, {y.shape}")
    if not np.all(np.isfinite(tau)) or np.any(tau <= 0) or np.any(np.diff(tau) <= 0):
        raise ValueError("tau must be finite, positive and strictly increasing")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains non-finite values")
    return tau, y


def tau_gen(tau, score_error, frac: float = 0.1) -> dict:
    """τ_gen = first τ with E(τ) ≤ (1 + frac)·min E; also ``min`` and ``tau_at_min`` (docs/theory.md §6.1)."""
    tau, y = _check(tau, score_error, "score_error")
    if not frac > 0:
        raise ValueError(f"gen_frac must be > 0, got {frac}")
    ymin = float(y.min())
    level = ymin * (1 + frac) if ymin > 0 else ymin + frac * (y[0] - ymin)
    return {"tau_gen": first_crossing(tau, y, level, upward=False), "level": level, "min": ymin,
            "tau_at_min": float(tau[int(np.argmin(y))])}


def tau_mem(tau, gen_gap, frac: float = 0.5, abs_threshold: float = 0.05) -> dict:
    """τ_mem = first τ with L_gen(τ) ≥ frac·L_gen(τ_max); ``tau_mem_abs``: first τ with L_gen ≥ abs_threshold (§6.1)."""
    tau, y = _check(tau, gen_gap, "gen_gap")
    check_fraction("mem_frac", frac)
    final = float(y[-1])
    rel = first_crossing(tau, y, frac * final, upward=True) if final > 0 else math.nan
    return {"tau_mem": rel, "level": frac * final, "final_gap": final,
            "tau_mem_abs": first_crossing(tau, y, abs_threshold, upward=True)}


def memorisation_edge(spectrum: Spectrum, n: int, p: int, d: int) -> float:
    """First eigenvalue of the memorisation bulk: the spectral quantile 1 − n/p + 1/(2p) (docs/theory.md §6.2).

    Below it sit the p − n − d eigenvalues of the atom at s_t² and the finite group of ≈ d.
    Defined only for d < n and n + d < p (otherwise the memorisation bulk has no mass, or no
    atom separates it): NaN there.
    """
    if not (d < n and n + d < p):
        return math.nan
    return spectrum.quantile(1.0 - n / p + 0.5 / p)


def memorisation_upper_edge(spectrum: Spectrum, n: int, p: int, d: int) -> float:
    """Last eigenvalue of the memorisation bulk, just below the d of the population bulk: quantile 1 − d/p − 1/(2p) (§6.2)."""
    if not (d < n and n + d < p):
        return math.nan
    return spectrum.quantile(1.0 - d / p - 0.5 / p)


def population_edge(spectrum: Spectrum, p: int, d: int) -> float:
    """First eigenvalue of the population bulk: the spectral quantile 1 − d/p + 1/(2p) (docs/theory.md §6.2); NaN if d ≥ p."""
    return spectrum.quantile(1.0 - d / p + 0.5 / p) if d < p else math.nan


def spectral_tau(lam: float, psi_p: float, t: float) -> float:
    """Relaxation time ψ_p/(Δ_t λ) of the mode λ (docs/theory.md §6.2); NaN for λ ≤ 0 or NaN."""
    return psi_p / (delta(t) * lam) if lam > 0 else math.nan


def extract(curves: Curves, thresholds: Thresholds = Thresholds(), spectrum: Optional[Spectrum] = None, *,
            n: Optional[int] = None, p: Optional[int] = None, d: Optional[int] = None,
            t: Optional[float] = None) -> Timescales:
    """All timescales of one side (simulation or theory) by the rules above (docs/theory.md §6).

    Needs ``curves.score_error`` for τ_gen and ``curves.gen_gap`` for τ_mem (NaN without them);
    the spectral quantities need ``spectrum`` and the sizes n, p, d and the time t. A value that
    sits at an end of the τ grid is a bound, and is named in ``Timescales.at_grid_end``.
    """
    out, ends = {}, []
    tau = curves.tau
    if curves.score_error is not None and curves.score_error.ndim == 1:
        g = tau_gen(tau, curves.score_error, thresholds.gen_frac)
        out.update(tau_gen=g["tau_gen"], min_score_error=g["min"], tau_at_min=g["tau_at_min"])
        if g["tau_gen"] == tau[0]:
            ends.append("tau_gen<")
        if g["tau_at_min"] == tau[-1] and curves.score_error[-1] < curves.score_error[-2]:
            ends.append("min_score_error>")
    if curves.gen_gap is not None and curves.gen_gap.ndim == 1:
        m = tau_mem(tau, curves.gen_gap, thresholds.mem_frac, thresholds.mem_abs)
        out.update(tau_mem=m["tau_mem"], tau_mem_abs=m["tau_mem_abs"], final_gap=m["final_gap"])
        if m["tau_mem"] == tau[0]:
            ends.append("tau_mem<")
        if m["tau_mem_abs"] == tau[0]:
            ends.append("tau_mem_abs<")
        elif math.isnan(m["tau_mem_abs"]):
            ends.append("tau_mem_abs>")
    if spectrum is not None and None not in (n, p, d, t):
        lam, lam_pop = memorisation_edge(spectrum, n, p, d), population_edge(spectrum, p, d)
        out.update(lambda_mem=lam, tau_mem_spectral=spectral_tau(lam, p / d, t),
                   lambda_mem_upper=memorisation_upper_edge(spectrum, n, p, d),
                   lambda_pop=lam_pop, tau_gen_spectral=spectral_tau(lam_pop, p / d, t))
    return Timescales(**out, thresholds=thresholds, at_grid_end=tuple(ends))
