"""Where the laws hold: maps over (ψ_p, ψ_n) of the local exponents of the d → ∞ timescales (docs/theory.md §6.5).

The paper's laws are τ_mem ∝ ψ_n (local exponent ``∂log τ_mem/∂log ψ_n = 1``) and τ_gen independent
of ψ_n (exponent 0). For each (t, ψ_p, ψ_n) of a grid with ψ_n ≤ ψ_p/2, :func:`run_map_unit` reads
the timescales of :func:`rfdiff.theory.predict`:

* curve-based (§6.1, :func:`rfdiff.timescales.extract` on the theory's curves): ``tau_mem``, ``tau_gen``;
* spectral (§6.2): ``tau_mem_spectral`` (the memorisation edge as a quantile of Theorem 3.1's
  measure), ``tau_gen_spectral_exact`` (the lower edge of Theorem 3.1's population bulk), and
  Theorem 3.2's closed forms ``tau_mem_asymptotic`` (left edge of ρ_1) and ``tau_gen_spectral``
  (left edge of ρ_2, independent of ψ_n by construction), each ``ψ_p/(Δ_t λ_edge)``.

The units are a plan (:func:`plan`) run by :func:`rfdiff.run_sweep` (cached, resumable);
:func:`assemble` turns their results into one :class:`TheoryMap` per (t, quantity): the values on
the grid and the local exponent along ψ_n at each ψ_p (:func:`rfdiff.stats.local_exponents`, exact:
second-order finite differences in log ψ_n), and :meth:`TheoryMap.holds` marks where the law holds
within a tolerance. :func:`asymptotic_mem_exponent` is the exact exponent of Theorem 3.2's τ_mem.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np

from ..results import Thresholds, register
from ..stats import local_exponents
from .constants import ge_constants

__all__ = ["QUANTITIES", "PRESETS", "preset_units", "MapUnit", "MapPoint", "TheoryMap", "plan", "run_map_unit", "assemble",
           "asymptotic_mem_exponent"]

# quantity → (definition, the law's exponent in ψ_n, needs the theory's curves)
QUANTITIES = {
    "tau_mem": ("curve-based τ_mem (L_gen reaches half its final value, §6.1)", 1.0, True),
    "tau_gen": ("curve-based τ_gen (score error within 10 % of its minimum, §6.1)", 0.0, True),
    "tau_mem_spectral": ("spectral τ_mem: memorisation edge, quantile of Theorem 3.1's measure (§6.2)", 1.0, False),
    "tau_gen_spectral_exact": ("spectral τ_gen: lower edge of Theorem 3.1's population bulk (§6.2)", 0.0, False),
    "tau_mem_asymptotic": ("Theorem 3.2's τ_mem: left edge of ρ_1 (§4.8)", 1.0, False),
    "tau_gen_spectral": ("Theorem 3.2's τ_gen: left edge of ρ_2 (§4.8)", 0.0, False),
}


# grids of the maps: ψ_p from 8 to 10⁴, ψ_n from 1 to ψ_p/2. The spectral quantities cost ≈ 0.3 s a point,
# the curve-based ones 2–35 s (the test-loss contour integrals), hence a coarser grid for those.
PRESETS = {
    "full": {"ts": (0.01, 0.1),
             "spectral": {"psi_ps": tuple(np.geomspace(8, 1e4, 19)), "psi_ns": tuple(np.geomspace(1, 5000, 23))},
             "curves": {"psi_ps": (8.0, 32.0, 128.0, 512.0, 2048.0, 1e4), "psi_ns": tuple(np.geomspace(1, 5000, 9))}},
    "quick": {"ts": (0.1,),
              "spectral": {"psi_ps": (8.0, 32.0), "psi_ns": (1.0, 2.0, 4.0)},
              "curves": {"psi_ps": (8.0,), "psi_ns": (1.0, 2.0, 4.0)}},
}


def preset_units(name: str) -> list:
    """Every unit of a preset of :data:`PRESETS`: the spectral grid, then the curve grid (docs/theory.md §6.5)."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {name!r}")
    P = PRESETS[name]
    return (plan(P["ts"], P["spectral"]["psi_ps"], P["spectral"]["psi_ns"], curves=False)
            + plan(P["ts"], P["curves"]["psi_ps"], P["curves"]["psi_ns"], curves=True))


@register
@dataclasses.dataclass(frozen=True)
class MapUnit:
    """One point of a map: ``curves`` also computes the theory's curves on the log grid ``taus = (lo, hi, points)``."""

    t: float
    psi_p: float
    psi_n: float
    curves: bool = False
    taus: tuple = (1e-2, 1e10, 241)
    activation: str = "tanh"

    def __post_init__(self):
        for name in ("t", "psi_p", "psi_n"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        if not self.psi_n <= self.psi_p / 2:
            raise ValueError(f"psi_n must be <= psi_p/2 (a memorisation bulk below the population's), "
                             f"got psi_n = {self.psi_n}, psi_p = {self.psi_p}")
        lo, hi, k = self.taus
        if not (0 < lo < hi and math.isfinite(hi) and int(k) >= 2):
            raise ValueError(f"taus must be (lo, hi, points) with 0 < lo < hi finite and points >= 2, got {self.taus!r}")


@register
@dataclasses.dataclass(frozen=True)
class MapPoint:
    """The timescales of one (t, ψ_p, ψ_n) of the d → ∞ theory (NaN where undefined or not computed;
    ``curves``: whether the curve-based ones were computed)."""

    t: float
    psi_p: float
    psi_n: float
    curves: bool
    tau_mem: float
    tau_gen: float
    tau_mem_spectral: float
    tau_gen_spectral_exact: float
    tau_mem_asymptotic: float
    tau_gen_spectral: float


@register
@dataclasses.dataclass(frozen=True, eq=False)
class TheoryMap:
    """One quantity over the (ψ_p, ψ_n) grid at one t: ``values[i, j]`` at ``psi_p[i]``, ``psi_n[j]`` (NaN where
    ψ_n > ψ_p/2 or not computed) and ``slope[i, j] = ∂log value/∂log ψ_n`` along row i (exact finite differences)."""

    t: float
    quantity: str
    definition: str
    exponent: float
    psi_p: np.ndarray
    psi_n: np.ndarray
    values: np.ndarray
    slope: np.ndarray

    def holds(self, tolerance: float = 0.05) -> np.ndarray:
        """Boolean (ψ_p, ψ_n) mask: the law's exponent within ``tolerance`` of the local slope (NaN: False)."""
        if not (tolerance >= 0 and math.isfinite(tolerance)):
            raise ValueError(f"tolerance must be finite and >= 0, got {tolerance!r}")
        with np.errstate(invalid="ignore"):
            return np.abs(self.slope - self.exponent) <= tolerance


def plan(ts: Sequence[float], psi_ps: Sequence[float], psi_ns: Sequence[float], curves: bool = False,
         taus: tuple = (1e-2, 1e10, 241)) -> list:
    """The units of a map: every (t, ψ_p, ψ_n) of the grids with ψ_n ≤ ψ_p/2, in that order."""
    for name, g in (("ts", ts), ("psi_ps", psi_ps), ("psi_ns", psi_ns)):
        a = np.asarray(g, dtype=np.float64)
        if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0) or np.any(np.diff(a) <= 0):
            raise ValueError(f"{name} must be a non-empty, strictly increasing list of positive values")
    return [MapUnit(float(t), float(pp), float(pn), curves, tuple(taus))
            for t in ts for pp in psi_ps for pn in psi_ns if pn <= pp / 2]


def run_map_unit(unit: MapUnit) -> MapPoint:
    """The timescales of one point (docs/theory.md §6.5): one :func:`rfdiff.theory.predict` call."""
    from ..timescales import extract
    from .curves import predict
    lo, hi, k = unit.taus
    taus = np.geomspace(lo, hi, int(k)) if unit.curves else None
    pr = predict(activation=unit.activation, t=unit.t, psi_p=unit.psi_p, psi_n=unit.psi_n, taus=taus)
    tm = tg = math.nan
    if unit.curves:
        ts = extract(pr.curves, Thresholds())
        tm, tg = float(ts.tau_mem), float(ts.tau_gen)
    return MapPoint(unit.t, unit.psi_p, unit.psi_n, unit.curves, tm, tg, float(pr.tau_mem_spectral),
                    float(pr.tau_gen_spectral_exact), float(pr.tau_mem_asymptotic), float(pr.tau_gen_spectral))


def _row_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Local exponents along one row, over each run of consecutive finite positive values (NaN elsewhere)."""
    out = np.full(x.size, np.nan)
    ok = np.isfinite(y) & (y > 0)
    j = 0
    while j < x.size:
        if not ok[j]:
            j += 1
            continue
        k = j
        while k + 1 < x.size and ok[k + 1]:
            k += 1
        if k > j:
            out[j:k + 1] = local_exponents(x[j:k + 1], y[j:k + 1]).slope
        j = k + 1
    return out


def assemble(points: Sequence[Optional[MapPoint]], quantities: Sequence[str] = tuple(QUANTITIES)) -> list:
    """One :class:`TheoryMap` per (t, quantity) from the points of a plan (None: a failed unit, left NaN).

    A quantity is mapped on the grid of the points that hold it: the curve-based ones on the points
    computed with curves, the spectral ones on the points without (their own, finer grid) when there
    are any, else on all. The τ_mem quantities are left out at ψ_n ≤ 1 by the stated rule n > d
    (docs/theory.md §6.4: no memorisation bulk of positive mass there)."""
    pts = [p for p in points if p is not None]
    unknown = [q for q in quantities if q not in QUANTITIES]
    if unknown:
        raise ValueError(f"quantities must be among {', '.join(QUANTITIES)}, got {unknown}")
    if not pts:
        raise ValueError("points must hold at least one MapPoint")
    maps = []
    for t in sorted({p.t for p in pts}):
        at_t = [p for p in pts if p.t == t]
        with_curves = [p for p in at_t if p.curves]
        spectral_only = [p for p in at_t if not p.curves]
        for q in quantities:
            sel = with_curves if QUANTITIES[q][2] else (spectral_only or at_t)
            if not sel:
                continue
            pps = np.array(sorted({p.psi_p for p in sel}))
            pns = np.array(sorted({p.psi_n for p in sel}))
            ip = {v: i for i, v in enumerate(pps)}
            jn = {v: j for j, v in enumerate(pns)}
            vals = np.full((pps.size, pns.size), np.nan)
            for p in sel:
                vals[ip[p.psi_p], jn[p.psi_n]] = getattr(p, q)
            if q.startswith("tau_mem"):                   # τ_mem needs n > d (§6.4): no memorisation bulk at ψ_n ≤ 1
                vals[:, pns <= 1.0] = np.nan
            slope = np.stack([_row_slopes(pns, row) for row in vals])
            definition, exponent, _ = QUANTITIES[q]
            maps.append(TheoryMap(float(t), q, definition, exponent, pps, pns, vals, slope))
    return maps


def asymptotic_mem_exponent(t: float, psi_p, psi_n, activation: str = "tanh") -> np.ndarray:
    """Exact ``∂log τ_mem/∂log ψ_n`` of Theorem 3.2 (docs/theory.md §4.8, §6.5).

    τ_mem = ψ_p/(Δ_t λ_min), λ_min = s_t² + v_t²(1 − g)², g = √(ψ_p/ψ_n), so
    ``∂log τ_mem/∂log ψ_n = v_t² g (g − 1)/(s_t² + v_t² (g − 1)²)`` → 1 as g → ∞.
    """
    c = ge_constants(activation, t, 1.0)
    g = np.sqrt(np.asarray(psi_p, dtype=np.float64) / np.asarray(psi_n, dtype=np.float64))
    return c.v2 * g * (g - 1.0) / (c.s2 + c.v2 * (g - 1.0) ** 2)
