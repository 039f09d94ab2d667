"""τ_mem ∝ n at p ≫ n on the finite network: the large-p study as a plan, a time model and a summary (docs/theory.md §6.3).

The paper's law is a statement about p ≫ n; the theory obeys it (docs/finite_size.md), the finite
model is tested here. At fixed ψ_p = p/d ≫ ψ_n = n/d and diffusion time t, for each d of a ladder,
each ψ_n and each seed, the exact model and its Gaussian-equivalent control (``model="ge"``, the
same W and X: :func:`rfdiff.model.draw` of the same configuration) are one unit each
(:class:`rfdiff.study.Study`, run by :func:`rfdiff.study.run_study`); the theory (finite-d and
d → ∞) rides along with the first seed's exact unit.

* :func:`plan` — ``{Label: Study}`` for a :class:`Preset`, small d first and seed by seed within a
  rung (the order a sweep should run them in: a sweep cut short has whole rungs and whole seeds).
* :func:`estimate` — seconds for a plan from the route's operation count (:func:`unit_flops`) and
  rates measured on small units (:class:`Calibration`, :func:`calibrate`).
* :func:`predict_missing` — the theory columns (d → ∞ and finite-d, with their local exponents, and
  the §8 train loss where affordable) of every rung whose units are not all present, written
  before the simulation runs (:class:`RungPrediction` per rung, :func:`predict_rung`).
* :func:`summarize` — a :class:`LargePSummary`: for each d, τ_mem and τ_gen per ψ_n (seed means
  with 95 % intervals) and their excess over the d → ∞ theory; the local exponent between
  neighbouring ψ_n, per seed ``ln(τ(ψ_n')/τ(ψ_n)) / ln(ψ_n'/ψ_n)`` (paired: the same seed at both),
  with an interval over seeds (and the least-squares exponent over the whole ψ_n range); each local exponent extrapolated in d by
  :func:`rfdiff.stats.fit_finite_size` (``a + b d^{-γ}``, γ = 1 or ½, over every (d, seed) point —
  the ladder's fit with d in place of n, which moves only ``b``) and compared with the d → ∞ theory's
  local exponent at the same (ψ_p, ψ_n) read from its curves by the same rule
  (:func:`rfdiff.timescales.extract`). A missing result is an error naming its label.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Mapping, Optional, Sequence

import numpy as np

from ..model import RFConfig
from . import _checks
from ..results import register
from ..stats import Estimate, FiniteSizeFit, fit_finite_size, forecast_finite_size, mean_ci
from ..study import EXACT_SPECTRUM_MAX_P, StudyOptions, Study, StudyResult, TauGrid, choose_method, memory_estimate
from ..timescales import extract

__all__ = ["Block", "Preset", "PRESETS", "Label", "Calibration", "CALIBRATION", "Point", "LocalExponent",
           "LACK_OF_FIT_ALPHA", "forecast", "Approach", "approach",
           "Extrapolation", "LargePSummary", "QUANTITIES", "TOLERANCE", "plan", "unit_flops", "unit_seconds",
           "estimate", "calibrate", "peak_memory", "summarize", "local_exponents",
           "overall_exponents", "PredictedPoint", "PredictedExponent", "RungPrediction", "predict_rung",
           "predict_missing", "missing_rungs"]

QUANTITIES = ("tau_mem", "tau_gen")
TOLERANCE = 0.05
"""How close a local exponent must come to the theory's to count as the law (absolute)."""
LACK_OF_FIT_ALPHA = 0.01
"""Below this lack-of-fit p-value the extrapolation's form a + b d^-γ is rejected (docs/theory.md §6.3)."""
TAUS = TauGrid(1e-2, 1e8, 161)
N_EMP = 2048


def _distinct(name: str, values, check) -> tuple:
    """``values`` checked one by one (:mod:`rfdiff.pipelines._checks`), sorted, without repeats."""
    vals = _checks.sequence(name, values, check)
    if len(set(vals)) != len(vals):
        raise ValueError(f"{name} must not repeat a value, got {values!r}")
    return tuple(sorted(vals))


def _d(name, v) -> int:
    return _checks.integer(name, v, 4)


def _seed(name, v) -> int:
    return _checks.seed(v, name)


@register
@dataclasses.dataclass(frozen=True)
class Block:
    """One ψ_p and the ladder of d it is run at."""

    psi_p: float
    ds: tuple

    def __post_init__(self):
        object.__setattr__(self, "psi_p", _checks.positive("psi_p", self.psi_p))
        object.__setattr__(self, "ds", _distinct("ds", self.ds, _d))


@register
@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of the study: ψ_p blocks (each with its d ladder), ψ_n, t, seeds, models, τ grid."""

    blocks: tuple = (Block(256.0, (8, 12, 16, 32, 64, 100)),)
    psi_ns: tuple = (2.0, 4.0, 8.0, 16.0)
    t: float = 0.1
    seeds: tuple = (0, 1, 2, 3, 4)
    models: tuple = ("exact", "ge")
    taus: TauGrid = TAUS

    def __post_init__(self):
        blocks = tuple(self.blocks) if isinstance(self.blocks, (tuple, list)) else None
        if not blocks or not all(isinstance(b, Block) for b in blocks):
            raise ValueError(f"blocks must be a non-empty sequence of Block, got {self.blocks!r}")
        if len({b.psi_p for b in blocks}) != len(blocks):
            raise ValueError(f"blocks must have distinct psi_p, got {[b.psi_p for b in blocks]}")
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "psi_ns", _distinct("psi_ns", self.psi_ns, _checks.positive))
        if len(self.psi_ns) < 2:
            raise ValueError(f"psi_ns must hold at least two values (a local exponent needs a pair), got {self.psi_ns!r}")
        object.__setattr__(self, "t", _checks.positive("t", self.t))
        object.__setattr__(self, "seeds", _distinct("seeds", self.seeds, _seed))
        models = tuple(self.models)
        if not models or any(m not in ("exact", "ge") for m in models) or len(set(models)) != len(models):
            raise ValueError(f"models must be distinct values of exact, ge, got {self.models!r}")
        object.__setattr__(self, "models", models)
        if not isinstance(self.taus, TauGrid):
            raise ValueError(f"taus must be a TauGrid, got {self.taus!r}")
        for b in blocks:
            for d in b.ds:
                for pn in self.psi_ns:
                    p, n = _checks.size(b.psi_p, d), _checks.size(pn, d)
                    if not n + d < p:
                        raise ValueError(f"psi_ns: n + d = {n + d} >= p = {p} at d = {d}, psi_p = {b.psi_p:g} "
                                         f"(no memorisation bulk below the population bulk)")
                    if not n > d:
                        raise ValueError(f"psi_ns must be > 1 (n > d: a memorisation bulk of positive mass), "
                                         f"got {pn:g}")

    def restrict(self, ds: Optional[Sequence[int]] = None) -> "Preset":
        """The same preset on a subset of its d's (blocks left without a d are dropped); the units are unchanged."""
        if ds is None:
            return self
        want = set(_distinct("ds", ds, _d))
        extra = want - {d for b in self.blocks for d in b.ds}
        if extra:
            raise ValueError(f"ds must be among the preset's {sorted({d for b in self.blocks for d in b.ds})}, "
                             f"got {sorted(extra)}")
        return dataclasses.replace(self, blocks=tuple(Block(b.psi_p, tuple(d for d in b.ds if d in want))
                                                      for b in self.blocks if any(d in want for d in b.ds)))


PRESETS = {
    # the study of the paper's law at p ≫ n: ψ_p/ψ_n ≥ 16; the rungs d = 8, 12 cost 2 % of the whole
    # and give the small-d end of the extrapolation
    "full": Preset(),
    # the same with ψ_p = 512 added at d ≤ 64 (ψ_p/ψ_n ≥ 32)
    "full_512": Preset(blocks=(Block(256.0, (8, 12, 16, 32, 64, 100)), Block(512.0, (8, 12, 16, 32, 64)))),
    # a smoke version at tiny sizes (seconds, serial)
    "quick": Preset(blocks=(Block(16.0, (8, 12)),), psi_ns=(2.0, 4.0), seeds=(0, 1, 2)),
}


@register
@dataclasses.dataclass(frozen=True, order=True)
class Label:
    """The address of one unit: block ψ_p, d, ψ_n, seed, model (order: small d first)."""

    d: int
    psi_p: float
    psi_n: float
    model: str
    seed: int

    @property
    def p(self) -> int:
        return _checks.size(self.psi_p, self.d)

    @property
    def n(self) -> int:
        return _checks.size(self.psi_n, self.d)


def _study(preset: Preset, lab: Label) -> Study:
    """The unit of ``lab``. The study reads τ_mem and τ_gen off the curves; the spectrum of U rides along
    where it is cheap (its eigenvalues, p ≤ EXACT_SPECTRUM_MAX_P) and is not computed beyond, where the
    top-eigenvalue Lanczos would cost more than the rest of the unit."""
    theory = lab.model == "exact" and lab.seed == preset.seeds[0]
    extra = {"spectrum": "none"} if lab.model == "exact" and lab.p > EXACT_SPECTRUM_MAX_P else {}
    return Study(RFConfig(d=lab.d, p=lab.p, n=lab.n, t=preset.t, seed=lab.seed, n_emp=N_EMP),
                 StudyOptions(taus=preset.taus, model=lab.model, theory=theory, **extra))


def plan(preset: Preset) -> dict[Label, Study]:
    """Every unit of ``preset``, keyed by its :class:`Label`, in the order to run them: by d, then the
    (fast) GE control before the exact model, then ψ_p, seed, ψ_n (a rung cut short has whole seeds)."""
    if not isinstance(preset, Preset):
        raise ValueError(f"preset must be a Preset, got {type(preset).__name__}")
    labels = [Label(d, b.psi_p, pn, m, s) for b in preset.blocks for d in b.ds for pn in preset.psi_ns
              for m in preset.models for s in preset.seeds]
    order = {"ge": 0, "exact": 1}
    labels.sort(key=lambda lab: (lab.d, order[lab.model], lab.psi_p, lab.seed, lab.psi_n))
    return {lab: _study(preset, lab) for lab in labels}


# ----------------------------------------------------------------------------------------------
# time estimate


@register
@dataclasses.dataclass(frozen=True)
class Calibration:
    """Rates of one worker (one BLAS thread): operations per second of each stage of a unit (the
    counts of :func:`unit_flops`), and seconds of the theory and of a unit's fixed overhead."""

    matrices: float = 1.4e10
    dynamics: float = 3.8e10
    spectrum: float = 3.8e10
    ge: float = 3.0e8
    theory_seconds: float = 1.2
    overhead_seconds: float = 0.5             # per exact unit
    ge_overhead_seconds: float = 0.1          # per GE unit
    source: str = "exact d = 16, ψ_p = 256, ψ_n = 16 on one niced thread of the 2-core development machine"


CALIBRATION = Calibration()


def unit_flops(study: Study, memory: Optional[int] = None, route: Optional[str] = None) -> dict[str, float]:
    """Operation count per stage of one unit by the route it takes (docs/theory.md §3.4, K = 8 Mehler orders).

    Exact model: matrices 9 p² n + p² d (U's Mehler sums; + 2 p² d when Ũ is formed, dense route);
    dynamics 13 p³ on the dense route (eigenvectors and QᵀŨQ), 4 p² m + 2 p² d + 4 p m² + 9 m³ by
    block Krylov (m = min(p, steps · d) basis vectors; on the streamed route each of the m/d
    products with U also rebuilds its rows, 18 p² n + 2 p² d); spectrum (4/3) p³ for the eigenvalues
    alone (Krylov route, p ≤ 8192), else 8 p² m_e for the top eigenvalues (m_e = 7 (n + d + 32)), 0 when
    the unit does not compute it (``spectrum="none"``, :func:`plan` beyond p = 8192).
    GE control: p (n + 2d)². ``route``: the route taken (default: the one
    :func:`rfdiff.study.choose_method` takes with ``memory``).
    """
    c, o = study.config, study.options
    p, n, d = float(c.p), float(c.n), float(c.d)
    if o.model == "ge":
        return {"ge": p * (n + 2 * d) ** 2}
    route = route or choose_method(c, o.method, memory=memory, max_steps=o.lanczos_max_steps, spectrum=o.spectrum)
    if route == "dense":
        return {"matrices": 9 * p * p * n + 3 * p * p * d, "dynamics": 13 * p ** 3}
    m = min(p, o.lanczos_max_steps * d)
    rebuild = (18 * p * p * n + 2 * p * p * d) * m / d if route == "streamed" else 0.0
    out = {"matrices": 0.0 if route == "streamed" else 9 * p * p * n + p * p * d,
           "dynamics": 4 * p * p * m + 2 * p * p * d + 4 * p * m * m + 9 * m ** 3 + rebuild}
    if o.spectrum == "none":
        out["spectrum"] = 0.0
    elif route == "lanczos" and c.p <= 8192:
        out["spectrum"] = 4 / 3 * p ** 3
    else:
        out["spectrum"] = 8 * p * p * 7 * (n + d + 32)
    return out


def unit_seconds(study: Study, calibration: Calibration = CALIBRATION, memory: Optional[int] = None) -> float:
    """Predicted seconds of one unit on one worker: Σ stage operations / stage rate + theory + overhead."""
    f = unit_flops(study, memory)
    s = sum(v / getattr(calibration, k) for k, v in f.items()) + \
        (calibration.ge_overhead_seconds if "ge" in f else calibration.overhead_seconds)
    return s + (calibration.theory_seconds if study.options.theory else 0.0)


def estimate(units: Mapping[Label, Study], calibration: Calibration = CALIBRATION, workers: int = 1,
             memory: Optional[int] = None) -> float:
    """Predicted wall seconds of ``units`` on ``workers`` workers: max(Σ unit seconds / workers, longest unit)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    secs = [unit_seconds(u, calibration, memory) for u in units.values()]
    return max(sum(secs) / workers, max(secs, default=0.0))


def peak_memory(units: Mapping[Label, Study], memory: int) -> tuple[int, dict]:
    """Peak bytes of the largest unit on a worker with ``memory`` bytes, and the route of each exact unit there.

    The route is the one :func:`rfdiff.study.choose_method` takes with that memory (as the worker
    will, from its own free memory), its peak :func:`rfdiff.study.memory_estimate`; the GE control
    holds a few p × (n + 2d) factors. ValueError (naming ``p``) if some unit fits no route.
    """
    routes, peak = {}, 0
    for lab, u in units.items():
        c = u.config
        if u.options.model == "ge":
            peak = max(peak, 4 * 8 * c.p * (c.n + 2 * c.d))
            continue
        routes[lab] = choose_method(c, u.options.method, memory=memory, max_steps=u.options.lanczos_max_steps,
                                    spectrum=u.options.spectrum)
        peak = max(peak, memory_estimate(c.p, c.n, c.d, routes[lab], spectrum=u.options.spectrum))
    return peak, routes


def calibrate(results: Sequence[StudyResult], base: Calibration = CALIBRATION) -> Calibration:
    """Rates measured on ``results`` (their per-stage ``timings``, each by the route it took).

    Per stage, seconds = overhead + operations / rate by least squares over the results when they
    span sizes and the slope is positive, else rate = Σ operations / Σ seconds; the exact model's
    stage overheads add up to ``overhead_seconds``, the control's is ``ge_overhead_seconds``. Stages no
    result measured keep ``base``'s rate.
    """
    pts: dict = {}
    th = []
    for r in results:
        route = r.diagnostics.get("method") if isinstance(r.diagnostics, dict) else None
        f = unit_flops(r.study, route=None if route == "ge" else route)
        t = r.timings
        stage_time = {"ge": t.get("matrices", 0.0) + t.get("curves", 0.0)} if "ge" in f else \
            {k: t.get(k, 0.0) for k in f}
        for k, v in f.items():
            if v > 0 and stage_time.get(k, 0.0) > 0:
                pts.setdefault(k, []).append((v, stage_time[k]))
        if "theory" in t:
            th.append(t["theory"])
    kw: dict = {}
    overhead = {"exact": 0.0, "ge": 0.0}
    for k, xy in pts.items():
        x, y = np.array(xy).T
        slope = intercept = 0.0
        if np.unique(x).size >= 2:
            slope, intercept = np.polyfit(x, y, 1)
        if slope > 0 and intercept >= 0:
            kw[k] = 1.0 / slope
            overhead["ge" if k == "ge" else "exact"] += intercept
        else:
            kw[k] = float(x.sum() / y.sum())
    if th:
        kw["theory_seconds"] = float(np.mean(th))
    if any(k != "ge" for k in pts):
        kw["overhead_seconds"] = overhead["exact"]
    if "ge" in pts:
        kw["ge_overhead_seconds"] = overhead["ge"]
    return dataclasses.replace(base, **kw, source=f"{len(results)} measured units")


# ----------------------------------------------------------------------------------------------
# summary


@register
@dataclasses.dataclass(frozen=True)
class Point:
    """One (model, ψ_p, d, ψ_n) and quantity: the seed mean, the d → ∞ theory (and finite-d), the excess
    ``value / theory`` (per seed, with its interval)."""

    model: str
    psi_p: float
    d: int
    psi_n: float
    quantity: str
    value: Estimate
    theory: float
    theory_finite_d: float
    excess: Estimate


@register
@dataclasses.dataclass(frozen=True)
class LocalExponent:
    """The local exponent between neighbouring ψ_n at one d: mean over seeds of the paired slope, the
    d → ∞ theory's (the same rule on its curves) and the finite-d theory's."""

    model: str
    psi_p: float
    d: int
    quantity: str
    psi_n_lo: float
    psi_n_hi: float
    value: Estimate
    per_seed: tuple
    theory: float
    theory_finite_d: float


@register
@dataclasses.dataclass(frozen=True)
class Extrapolation:
    """A local exponent extrapolated in d (``fit.a``) against the d → ∞ theory's.

    ``d_within``: the smallest measured d from which every larger measured seed mean is within
    ``tolerance`` of the theory (None: none is). ``d_within_fit``: the d from which the fitted curve
    stays within ``tolerance`` (inf when its limit is farther; NaN without a fit). ``form_rejected``: the
    lack-of-fit test rejects a + b d^-γ against the seeds' scatter (p < ``LACK_OF_FIT_ALPHA``): the fit's
    limit is then no test of the law (docs/theory.md §6.3). ``holdout_forecast``: the fit of the rungs below
    the largest d (at least two), evaluated at the largest, to set beside its measured seed mean — a test of
    the fit's form on a rung it did not see (:func:`rfdiff.stats.forecast_finite_size`, with its interval; None
    with fewer than three rungs).
    """

    model: str
    psi_p: float
    quantity: str
    psi_n_lo: float
    psi_n_hi: float
    fit: FiniteSizeFit
    theory: float
    ds: tuple
    tolerance: float
    d_within: Optional[int]
    d_within_fit: float
    holdout_forecast: Optional[Estimate] = None   # the same fit on the rungs below the largest d, evaluated at it

    @property
    def form_rejected(self) -> bool:
        return bool(self.fit.lack_of_fit_p < LACK_OF_FIT_ALPHA)


@register
@dataclasses.dataclass(frozen=True)
class LargePSummary:
    """What the study says (module docstring); ``labels``: every result it read."""

    points: tuple
    local_exponents: tuple
    extrapolations: tuple
    labels: tuple
    tolerance: float = TOLERANCE
    routes: tuple = ()          # (d, psi_p, route of the exact model)
    overall_exponents: tuple = ()   # LocalExponent over the whole ψ_n range (least squares per seed)

    def point(self, model: str, psi_p: float, d: int, psi_n: float, quantity: str) -> Point:
        for x in self.points:
            if (x.model, x.psi_p, x.d, x.psi_n, x.quantity) == (model, float(psi_p), d, float(psi_n), quantity):
                return x
        raise KeyError(f"no point model={model}, psi_p={psi_p:g}, d={d}, psi_n={psi_n:g}, quantity={quantity}")

    def extrapolation(self, model: str, psi_p: float, quantity: str, psi_n_lo: float) -> Extrapolation:
        for x in self.extrapolations:
            if (x.model, x.psi_p, x.quantity, x.psi_n_lo) == (model, float(psi_p), quantity, float(psi_n_lo)):
                return x
        raise KeyError(f"no extrapolation model={model}, psi_p={psi_p:g}, quantity={quantity}, psi_n_lo={psi_n_lo:g}")


def _series(locs, model: str, psi_p: float, quantity: str, psi_n_lo: float) -> list:
    """The local exponents of one (model, ψ_p, quantity, ψ_n pair), small d first."""
    return sorted((x for x in locs if (x.model, x.psi_p, x.quantity, x.psi_n_lo) ==
                   (model, float(psi_p), quantity, float(psi_n_lo))), key=lambda x: x.d)


def _seed_points(series) -> tuple[list, list]:
    """(d, value) of every seed of a :func:`_series`, as the two lists a finite-size fit takes."""
    return [x.d for x in series for _ in x.per_seed], [v for x in series for v in x.per_seed]


def _route(method: str, diagnostics: Sequence[dict]) -> str:
    """The exact model's route on one rung, with the Krylov basis and whether it met its tolerance on every unit."""
    dyn = [g.get("dynamics", {}) for g in diagnostics]
    kry = [x for x in dyn if "blocks" in x]
    if not kry:
        return str(method)
    bad = [x for x in kry if not x.get("converged", False)]
    size = f"{max(x['blocks'] for x in kry)} blocks, basis {max(x['basis_size'] for x in kry)}"
    if not bad:
        return f"{method}, {size}, converged"
    return (f"{method}, {size}, not converged to {bad[0]['tol']:.0e} on {len(bad)} of {len(kry)} units "
            f"(last-block change ≤ {max(x['change_last_block'] for x in bad):.1e})")


def _read(res: StudyResult, side: str, q: str) -> float:
    """Quantity ``q`` of one side, re-read from its stored curves by the current rule."""
    s = getattr(res, side)
    c = res.config
    return float(getattr(extract(s.curves, res.study.options.thresholds, s.spectrum, n=c.n, p=c.p, d=c.d, t=c.t), q))


def local_exponents(psi_ns: Sequence[float], values: Sequence[float]) -> np.ndarray:
    """Slopes of ln y against ln ψ_n between neighbours: ``ln(y[i+1]/y[i]) / ln(ψ_n[i+1]/ψ_n[i])``."""
    x = np.asarray(psi_ns, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape[-1:] or x.size < 2:
        raise ValueError(f"psi_ns and values must have the same length >= 2, got {x.shape} and {y.shape}")
    if not np.all(np.diff(x) > 0) or not np.all(x > 0):
        raise ValueError(f"psi_ns must be positive and increasing, got {x.tolist()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.diff(np.log(y), axis=-1) / np.diff(np.log(x))


def overall_exponents(psi_ns: Sequence[float], values) -> np.ndarray:
    """Least-squares slope of ln y against ln ψ_n over the whole range (one per row of ``values``)."""
    x = np.log(np.asarray(psi_ns, dtype=np.float64))
    y = np.log(np.asarray(values, dtype=np.float64))
    xc = x - x.mean()
    return (y - y.mean(axis=-1, keepdims=True)) @ xc / (xc @ xc)


def _d_within(fit: FiniteSizeFit, theory: float, tol: float) -> float:
    """The d from which ``a + b d^-γ (+ c d^-γ2)`` stays within ``tol`` of ``theory``."""
    a, b = fit.a.value, fit.b.value
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(theory)):
        return math.nan
    if abs(a - theory) > tol:
        return math.inf
    d = np.geomspace(1.0, 1e9, 4001)
    y = a + b * d ** -fit.gamma + (fit.c.value * d ** -fit.gamma2 if fit.c is not None else 0.0)
    bad = np.nonzero(np.abs(y - theory) > tol)[0]
    return 1.0 if bad.size == 0 else float(d[min(bad[-1] + 1, d.size - 1)])


def _grid(results: Mapping[Label, StudyResult], preset: Optional[Preset]) -> list[Label]:
    """The labels the summary needs: ``plan(preset)``'s, or without a preset the full grid of what is present:
    each rung (ψ_p, d) × every ψ_n and model present × the seeds present at that rung."""
    if preset is not None:
        return list(plan(preset))
    labs = list(results)
    if not labs or not all(isinstance(x, Label) for x in labs):
        raise ValueError("results must be a non-empty mapping from Label to StudyResult")
    pns, models = {x.psi_n for x in labs}, {x.model for x in labs}
    out = set()
    for pp, d in {(x.psi_p, x.d) for x in labs}:
        for s in {x.seed for x in labs if (x.psi_p, x.d) == (pp, d)}:
            out.update(Label(d, pp, pn, m, s) for pn in pns for m in models)
    return sorted(out)


def summarize(results: Mapping[Label, StudyResult], preset: Optional[Preset] = None) -> LargePSummary:
    """The study's summary (module docstring) from its results.

    The labels read are those of ``plan(preset)``, or without a preset the full grid of what is present
    (each rung × every ψ_n and model present × the rung's seeds: a rung may have fewer seeds); a label
    without a result, or a rung without the theory (carried by its first seed's exact unit), raises
    ``KeyError`` naming the label.
    """
    labels = _grid(results, preset)
    missing = [x for x in labels if x not in results]
    if missing:
        raise KeyError(f"no result for {missing[0]} ({len(missing)} of {len(labels)} labels missing)")
    pns = sorted({x.psi_n for x in labels})
    models = [m for m in ("exact", "ge") if any(x.model == m for x in labels)]
    rungs = sorted({(x.psi_p, x.d) for x in labels})
    points, locs, exps, routes, overall = [], [], [], [], []
    for pp, d in rungs:
        seeds = sorted({x.seed for x in labels if (x.psi_p, x.d) == (pp, d)})
        th = {}
        for pn in pns:
            lab = Label(d, pp, pn, "exact", seeds[0])
            r = results.get(lab)
            if r is None or r.theory_d_inf is None or r.theory is None:
                raise KeyError(f"no theory for {lab} (the first seed's exact unit carries it)")
            th[pn] = {q: (_read(r, "theory_d_inf", q), _read(r, "theory", q)) for q in QUANTITIES}
        routes.append((d, pp, _route(r.diagnostics.get("method", ""),
                                     [results[x].diagnostics for x in labels
                                      if (x.psi_p, x.d, x.model) == (pp, d, "exact")])))
        for m in models:
            for q in QUANTITIES:
                vals = np.array([[_read(results[Label(d, pp, pn, m, s)], "simulation", q) for pn in pns]
                                 for s in seeds])
                for j, pn in enumerate(pns):
                    ti, tf = th[pn][q]
                    points.append(Point(m, pp, d, pn, q, mean_ci(vals[:, j]), ti, tf, mean_ci(vals[:, j] / ti)))
                slopes = local_exponents(pns, vals)
                t_inf = local_exponents(pns, [th[pn][q][0] for pn in pns])
                t_fin = local_exponents(pns, [th[pn][q][1] for pn in pns])
                for j in range(len(pns) - 1):
                    locs.append(LocalExponent(m, pp, d, q, pns[j], pns[j + 1], mean_ci(slopes[:, j]),
                                              tuple(float(v) for v in slopes[:, j]), float(t_inf[j]),
                                              float(t_fin[j])))
                whole = overall_exponents(pns, vals)
                overall.append(LocalExponent(m, pp, d, q, pns[0], pns[-1], mean_ci(whole),
                                             tuple(float(v) for v in whole),
                                             float(overall_exponents(pns, [th[pn][q][0] for pn in pns])),
                                             float(overall_exponents(pns, [th[pn][q][1] for pn in pns]))))
    for pp in sorted({r[0] for r in rungs}):
        ds = sorted(d for p_, d in rungs if p_ == pp)
        for m in models:
            for q in QUANTITIES:
                for j in range(len(pns) - 1):
                    sel = _series(locs, m, pp, q, pns[j])
                    fit = fit_finite_size(*_seed_points(sel))
                    ref = sel[-1].theory               # the d → ∞ theory: the same at every rung
                    close = [abs(x.value.value - ref) <= TOLERANCE for x in sel]
                    first = next((k for k in range(len(sel)) if all(close[k:])), None)
                    forecast = None
                    if len(sel) >= 3:
                        below = _seed_points(sel[:-1])
                        forecast = forecast_finite_size(fit_finite_size(*below), *below, float(sel[-1].d))
                    exps.append(Extrapolation(m, pp, q, pns[j], pns[j + 1], fit, ref, tuple(ds), TOLERANCE,
                                              None if first is None else sel[first].d,
                                              _d_within(fit, ref, TOLERANCE), forecast))
    return LargePSummary(tuple(points), tuple(locs), tuple(exps), tuple(labels), TOLERANCE, tuple(routes),
                         tuple(overall))


@register
@dataclasses.dataclass(frozen=True)
class Approach:
    """How one ψ_n pair's local exponent approaches the theory's, set against n = ψ_n d of the pair's smaller ψ_n.

    ``ns``/``ds``: the rungs; ``excess``: local exponent − the d → ∞ theory's at each (seed mean, its interval
    shifted); ``last_slope``: d ln(excess) / d ln n between the two largest rungs (NaN unless both excesses are
    positive); ``n_within``: the n at which that slope, carried on, brings the excess to ``tolerance`` (the last
    n if it is already there, inf if the slope does not fall); ``d_within`` = n_within / ψ_n. An extrapolation of
    one measured slope, labelled as such in the report.
    """

    model: str
    psi_p: float
    quantity: str
    psi_n_lo: float
    psi_n_hi: float
    ds: tuple
    ns: tuple
    excess: tuple
    tolerance: float
    last_slope: float
    n_within: float

    @property
    def d_within(self) -> float:
        return self.n_within / self.psi_n_lo


def approach(summary: LargePSummary, model: str = "exact", quantity: str = "tau_mem") -> tuple:
    """One :class:`Approach` per (ψ_p, ψ_n pair) of ``model``'s local exponents of ``quantity``: the excess over the
    theory's exponent against n (the data say whether the approach is set by n or by d: pairs at the same n
    against pairs at the same d)."""
    out = []
    keys = sorted({(x.psi_p, x.psi_n_lo, x.psi_n_hi) for x in summary.local_exponents
                   if (x.model, x.quantity) == (model, quantity)})
    for pp, lo, hi in keys:
        sel = _series(summary.local_exponents, model, pp, quantity, lo)
        exc = tuple(Estimate(x.value.value - x.theory, x.value.lo - x.theory, x.value.hi - x.theory,
                             x.value.level, x.value.n, "local exponent − theory's") for x in sel)
        ns = tuple(float(lo * x.d) for x in sel)
        slope, n_in = math.nan, math.nan
        if len(sel) >= 2:
            (n1, e1), (n2, e2) = [(ns[k], exc[k].value) for k in (-2, -1)]
            if abs(e2) <= summary.tolerance:
                n_in = n2
            elif e1 > 0 and e2 > 0:
                slope = math.log(e2 / e1) / math.log(n2 / n1)
                n_in = n2 * (summary.tolerance / e2) ** (1.0 / slope) if slope < 0 else math.inf
        out.append(Approach(model, pp, quantity, lo, hi, tuple(x.d for x in sel), ns, exc, summary.tolerance,
                            slope, n_in))
    return tuple(out)


def collapse_forecast(summary: LargePSummary, psi_p: float, n: float, exclude_d: Optional[int] = None,
                      model: str = "exact", quantity: str = "tau_mem") -> Estimate:
    """The excess over the theory's local exponent at n training points if it depends on n alone (docs/finite_size.md,
    "What sets the approach"), read off the pairs of every rung but ``exclude_d``.

    At each measured n (n = ψ_n d of a pair's smaller ψ_n) the excess is the geometric mean over the pairs there;
    ln(excess) is interpolated linearly in ln n between the two nearest measured n, the last (first) slope carried
    on beyond the largest (smallest). The interval is spanned by the same rule on the lowest lower bound and on the
    highest upper bound at each n (ordered: carried on by their own slopes they may cross); a bound is NaN where a
    value it needs is not positive. It carries the measured points' intervals, not the error of the rule itself:
    leaving each rung out in turn and setting it against its forecast (the report's table) measures that. A forecast, not a fit: with
    ``exclude_d`` the rung it is set against took no part in it.
    """
    pts: dict[float, list[Estimate]] = {}
    for a in approach(summary, model, quantity):
        if a.psi_p == psi_p:
            for nn, d, e in zip(a.ns, a.ds, a.excess):
                if d != exclude_d:
                    pts.setdefault(nn, []).append(e)
    ns = np.array(sorted(pts))
    if ns.size < 2:
        return Estimate(math.nan, method="collapse in n: fewer than two measured n")
    x0 = math.log(n)

    def curve(vals) -> float:
        vals = np.asarray(vals, dtype=float)
        k = int(np.clip(np.searchsorted(ns, n), 1, ns.size - 1))
        if not (vals[k - 1] > 0 and vals[k] > 0):
            return math.nan
        x, y = np.log(ns[[k - 1, k]]), np.log(vals[[k - 1, k]])
        return float(np.exp(y[0] + (y[1] - y[0]) / (x[1] - x[0]) * (x0 - x[0])))

    mid = [math.exp(np.mean(np.log([e.value for e in pts[m]]))) if all(e.value > 0 for e in pts[m]) else math.nan
           for m in ns]
    lo = [min(e.lo for e in pts[m]) for m in ns]
    hi = [max(e.hi for e in pts[m]) for m in ns]
    bounds = sorted((curve(lo), curve(hi)))      # the two bound curves, carried on by their own slopes, may cross
    return Estimate(curve(mid), *bounds, 0.95, int(sum(len(v) for v in pts.values())),
                    f"collapse in n: ln(excess) against ln n over {ns.size} measured n"
                    + (f", rung d = {exclude_d} left out" if exclude_d is not None else ""))


def forecast(summary: LargePSummary, model: str, psi_p: float, quantity: str, psi_n_lo: float, d: int) -> Estimate:
    """The extrapolation's forecast of one local exponent at rung ``d`` (:func:`rfdiff.stats.forecast_finite_size`
    on every (d, seed) point the summary fitted), with its interval; written before that rung runs."""
    x = summary.extrapolation(model, psi_p, quantity, psi_n_lo)
    points = _seed_points(_series(summary.local_exponents, model, psi_p, quantity, psi_n_lo))
    return forecast_finite_size(x.fit, *points, float(_d("d", d)))


# ----------------------------------------------------------------------------------------------
# predictions for the rungs not yet simulated


@register
@dataclasses.dataclass(frozen=True)
class PredictedPoint:
    """One (ψ_p, d, ψ_n) and quantity before its units run: the d → ∞ theory's and the finite-d theory's
    value, read by the rule of the summary's columns (the same fields as :class:`Point`)."""

    psi_p: float
    d: int
    psi_n: float
    quantity: str
    theory: float
    theory_finite_d: float


@register
@dataclasses.dataclass(frozen=True)
class PredictedExponent:
    """The theories' local exponent between neighbouring ψ_n at one rung not yet simulated (fields of :class:`LocalExponent`)."""

    psi_p: float
    d: int
    quantity: str
    psi_n_lo: float
    psi_n_hi: float
    theory: float
    theory_finite_d: float


@register
@dataclasses.dataclass(frozen=True)
class RungPrediction:
    """The predictions of one rung (ψ_p, d) written before it is simulated.

    ``points``/``local_exponents``: the theory columns (:class:`PredictedPoint`, :class:`PredictedExponent`);
    ``overall_exponents``: the least-squares exponent over the whole ψ_n range, per quantity
    (``(quantity, d → ∞, finite-d)``); ``train_loss_inf``: per ψ_n ``(ψ_n, value, source)`` of the §8
    finite-d train loss L_train(∞) (:func:`rfdiff.theory.finite_d.finite_d_column`; NaN with its cost
    note above the size limit); ``seconds``: wall seconds of the theory columns and of the §8 column.
    """

    psi_p: float
    d: int
    t: float
    points: tuple
    local_exponents: tuple
    overall_exponents: tuple
    train_loss_inf: tuple
    seconds_theory: float
    seconds_train_loss: float

    def point(self, psi_n: float, quantity: str) -> PredictedPoint:
        for x in self.points:
            if (x.psi_n, x.quantity) == (float(psi_n), quantity):
                return x
        raise KeyError(f"no predicted point psi_n={psi_n:g}, quantity={quantity} at d={self.d}")


def predict_rung(preset: Preset, psi_p: float, d: int, train_loss: bool = True,
                 train_loss_seeds: Sequence[int] = (0, 1, 2)) -> RungPrediction:
    """The theory columns of rung (ψ_p, d) of ``preset`` before its units run (docs/theory.md §4.5, §8).

    For each ψ_n, :func:`rfdiff.study.theory_sides` of the unit that will carry the theory (the first
    seed's exact unit, :func:`plan`), τ_mem and τ_gen read as :func:`summarize` reads them; local
    exponents ``ln(τ(ψ_n')/τ(ψ_n)) / ln(ψ_n'/ψ_n)`` (:func:`local_exponents`). With ``train_loss``,
    the §8 equivalent of L_train(∞) averaged over the training sets of ``train_loss_seeds``.
    """
    from ..study import theory_sides            # looked up at call time (a test may stand in for the theory)
    from ..theory.finite_d import finite_d_column
    if not isinstance(preset, Preset):
        raise ValueError(f"preset must be a Preset, got {type(preset).__name__}")
    if not any(b.psi_p == float(psi_p) and d in b.ds for b in preset.blocks):
        raise ValueError(f"d: no rung psi_p = {psi_p:g}, d = {d} in the preset")
    pns = list(preset.psi_ns)
    t0 = time.perf_counter()
    th = {}
    for pn in pns:
        study = _study(preset, Label(d, float(psi_p), pn, "exact", preset.seeds[0]))
        fin, inf, pred, pred_inf = theory_sides(study.config, study.options)
        r = StudyResult(study, None, fin, inf, pred, pred_inf)
        th[pn] = {q: (_read(r, "theory_d_inf", q), _read(r, "theory", q)) for q in QUANTITIES}
    t1 = time.perf_counter()
    points, locs, overall = [], [], []
    for q in QUANTITIES:
        ti = [th[pn][q][0] for pn in pns]
        tf = [th[pn][q][1] for pn in pns]
        points += [PredictedPoint(float(psi_p), d, pn, q, ti[j], tf[j]) for j, pn in enumerate(pns)]
        li, lf = local_exponents(pns, ti), local_exponents(pns, tf)
        locs += [PredictedExponent(float(psi_p), d, q, pns[j], pns[j + 1], float(li[j]), float(lf[j]))
                 for j in range(len(pns) - 1)]
        overall.append((q, float(overall_exponents(pns, ti)), float(overall_exponents(pns, tf))))
    tl = []
    if train_loss:
        cfg = _study(preset, Label(d, float(psi_p), pns[0], "exact", preset.seeds[0])).config
        for pn in pns:
            col = finite_d_column(cfg.activation, preset.t, float(psi_p), pn, d, seeds=tuple(train_loss_seeds))
            tl.append((pn, float(col["train_loss_inf"].value), col["train_loss_inf"].source))
    t2 = time.perf_counter()
    return RungPrediction(float(psi_p), d, preset.t, tuple(points), tuple(locs), tuple(overall), tuple(tl),
                          t1 - t0, t2 - t1)


def missing_rungs(preset: Preset, present) -> list[tuple[float, int]]:
    """The rungs (ψ_p, d) of ``preset`` some of whose units (:func:`plan`) are not among the labels ``present``."""
    have = set(present)
    return sorted({(lab.psi_p, lab.d) for lab in plan(preset) if lab not in have})


def predict_missing(preset: Preset, present, train_loss: bool = True,
                    train_loss_seeds: Sequence[int] = (0, 1, 2)) -> tuple:
    """:func:`predict_rung` for every rung of :func:`missing_rungs` (small d first)."""
    return tuple(predict_rung(preset, pp, d, train_loss, train_loss_seeds) for pp, d in missing_rungs(preset, present))
