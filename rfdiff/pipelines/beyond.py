"""Beyond the paper: finite noise draws m, ridge, class-resolved timescales, subspace data.

Four study parts, each from exact closed forms (no iterative training), one unit per
(part, size/value, seed):

1. finite m (:class:`FiniteMUnit`, one per m, m = 0 meaning the exact average m = ∞): curves
   vs τ of training on m frozen noise draws per point at p_max (docs/theory.md §2.6, §3.6) and
   the τ → ∞ losses of the first-p-feature models over a ψ_p grid and a ridge grid (the
   interpolation peak at p = n·m);
2. ridge (:class:`RidgeUnit`, m = ∞): early stopping against ψ_p and the test-loss curves at
   p_max for λ = 0, λ*/10, λ*, 10λ* with λ* the optimal ridge there (docs/theory.md §3.5); the
   lower envelope over λ comes from part 1's ψ_p grid;
3. two-class mixtures ±μ (:class:`ClassUnit`, one per class variance or class weight): per-class
   τ_gen, τ_mem (docs/theory.md §2.8, §6.1);
4. subspace data (:class:`SubspaceUnit`, one per intrinsic dimension D): τ_gen, τ_mem and the
   minimal score error against D/d (:func:`rfdiff.study.run`).

:func:`units` lists every unit of a preset (:data:`PRESETS`); :func:`beyond_unit` runs any of them
(the unit function of the sweep); :func:`run` runs them through :func:`rfdiff.sweep.run_sweep` and
:func:`summarize` turns the unit results into a :class:`BeyondResult` with the key numbers.
Timescales are read by the one rule of :func:`rfdiff.timescales.extract` (docs/theory.md §6.1).
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import jax
import numpy as np

from .. import classes, data, dynamics, features, finite_m, ridge, timescales
from .._util import check_positive, check_positive_int, stream_key
from ..model import build_problem, DataSpec, RFConfig
from ..results import Curves, register, Timescales
from ..ridge import lower_envelope
from ..study import run as run_study, StudyOptions, TauGrid
from ..timescales import extract
from . import _checks

__all__ = ["Sizes", "PRESETS", "PARTS", "MEMORISES_GAP", "FiniteMUnit", "RidgeUnit", "ClassUnit", "SubspaceUnit",
           "StaticsSweep", "FiniteMResult", "RidgeResult", "ClassResult", "SubspaceResult", "StaticsSummary",
           "BeyondResult", "p_grid", "ridge_grid", "units", "finite_m_unit", "ridge_unit", "class_unit",
           "subspace_unit", "beyond_unit", "statics_summary", "summarize", "run"]

PARTS = (1, 2, 3, 4)


def _ints(name: str, values) -> tuple:
    return _checks.sequence(name, values, _checks.integer)


def _floats(name: str, values, upper: float = math.inf) -> tuple:
    return _checks.sequence(name, values, lambda nm, v: _checks.positive(nm, v, upper))


@register
@dataclasses.dataclass(frozen=True)
class Sizes:
    """Sizes of the four parts: finite m / ridge (d, n, p_max, m values, ψ_p-sweep m values, τ and ridge grid
    sizes), classes (cls_d, cls_p, cls_n, class-1 variances and weights, Monte Carlo points n_mc), subspace
    (sub_d, sub_p, sub_n, intrinsic dimensions Ds)."""

    d: int
    n: int
    p_max: int
    ms: tuple
    sweep_ms: tuple
    n_tau: int
    n_ridge: int
    cls_d: int
    cls_p: int
    cls_n: int
    variances: tuple
    weights: tuple
    sub_d: int
    sub_p: int
    sub_n: int
    Ds: tuple
    n_mc: int

    def __post_init__(self):
        for name in ("d", "n", "p_max", "n_tau", "n_ridge", "cls_d", "cls_p", "cls_n", "sub_d", "sub_p", "sub_n",
                     "n_mc"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        for name in ("ms", "sweep_ms", "Ds"):
            object.__setattr__(self, name, _ints(name, getattr(self, name)))
        object.__setattr__(self, "variances", _floats("variances", self.variances))
        object.__setattr__(self, "weights", _floats("weights", self.weights, upper=1.0))
        if max(self.Ds) > self.sub_d:
            raise ValueError(f"Ds must be <= sub_d = {self.sub_d}, got {self.Ds}")


PRESETS = {
    "full": Sizes(d=32, n=64, p_max=2048, ms=(1, 2, 4, 16), sweep_ms=(1, 2, 4), n_tau=161, n_ridge=81,
                  cls_d=32, cls_p=1024, cls_n=256, variances=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
                  weights=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                  sub_d=32, sub_p=1024, sub_n=128, Ds=(2, 4, 8, 16, 24, 32), n_mc=8192),
    "quick": Sizes(d=16, n=24, p_max=512, ms=(1, 2, 4, 16), sweep_ms=(1, 2, 4), n_tau=81, n_ridge=49,
                   cls_d=16, cls_p=128, cls_n=64, variances=(0.25, 1.0, 4.0), weights=(0.125, 0.5, 0.875),
                   sub_d=16, sub_p=256, sub_n=32, Ds=(2, 4, 8, 16), n_mc=2048),
}


def p_grid(n: int, ms: Sequence[int], p_max: int) -> tuple:
    """ψ_p sweep: 22 log-spaced p from 4 to p_max and p = n·m·{0.75, 0.9, 1, 1.1, 1.33} (interpolation thresholds)."""
    ps = set(np.unique(np.round(np.logspace(math.log10(4), math.log10(p_max), 22)).astype(int)).tolist())
    for m in ms:
        ps |= {max(1, int(round(n * m * f))) for f in (0.75, 0.9, 1.0, 1.1, 1.33)}
    return tuple(sorted(int(p) for p in ps if 1 <= p <= p_max))


def ridge_grid(n_ridge: int) -> np.ndarray:
    """λ = 0 and ``n_ridge`` log-spaced values from 1e-5 to 1e3 (units of the eigenvalues of U, docs/theory.md §3.5)."""
    return np.append(0.0, np.logspace(-5, 3, check_positive_int("n_ridge", n_ridge)))


def _taus(lo: float, n_tau: int) -> np.ndarray:
    return np.logspace(lo, 7, n_tau)


# ----------------------------------------------------------------------------------------------
# units


@register
@dataclasses.dataclass(frozen=True)
class FiniteMUnit:
    """Training on m frozen noise draws per point (m = 0: the exact average, m = ∞) at p; statics over ``ps``.

    Draws: W, X from :func:`rfdiff.model.draw` (seed); the noise of m from
    ``stream_key(seed, "finite_m", m)`` (:func:`rfdiff._util.stream_key`). τ grid: ``n_tau`` log-spaced from 0.1 to 1e7.
    ``ps`` (empty: no statics) are the first-p-feature models of the τ → ∞ sweep, over
    :func:`ridge_grid` (``n_ridge``).
    """

    d: int
    n: int
    p: int
    m: int
    t: float = 0.1
    seed: int = 0
    n_tau: int = 161
    ps: tuple = ()
    n_ridge: int = 81

    def __post_init__(self):
        for name in ("d", "n", "p", "n_tau", "n_ridge"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        object.__setattr__(self, "m", _checks.integer("m (0: the exact average)", self.m, 0))
        object.__setattr__(self, "t", check_positive("t", self.t))
        object.__setattr__(self, "seed", _checks.seed(self.seed))
        ps = tuple(self.ps)
        if ps:
            ps = _ints("ps", ps)
            if max(ps) > self.p:
                raise ValueError(f"ps must be <= p = {self.p}, got max {max(ps)}")
        object.__setattr__(self, "ps", ps)

    @property
    def label(self) -> str:
        """``"inf"`` for the exact average, else m."""
        return "inf" if self.m == 0 else str(self.m)

    def config(self):
        return RFConfig(d=self.d, p=self.p, n=self.n, t=self.t, seed=self.seed, tol=1e-8, n_emp=4096)


@register
@dataclasses.dataclass(frozen=True)
class RidgeUnit:
    """Ridge and early stopping at m = ∞ on the problem of :class:`FiniteMUnit` (same draws; docs/theory.md §3.5)."""

    d: int
    n: int
    p: int
    t: float = 0.1
    seed: int = 0
    n_tau: int = 161
    ps: tuple = ()
    n_ridge: int = 81

    def __post_init__(self):
        ref = FiniteMUnit(self.d, self.n, self.p, 0, self.t, self.seed, self.n_tau, self.ps, self.n_ridge)
        for name in ("d", "n", "p", "t", "seed", "n_tau", "n_ridge"):
            object.__setattr__(self, name, getattr(ref, name))
        object.__setattr__(self, "ps", _ints("ps", ref.ps))

    def config(self):
        return FiniteMUnit(self.d, self.n, self.p, 0, self.t, self.seed).config()


@register
@dataclasses.dataclass(frozen=True)
class ClassUnit:
    """Two classes N(±μ, v_c I), μ = mu_norm·e_1: class 1's ``kind`` ("variance" or "weight") set to ``value``.

    The other is fixed (variance 1, weights ½). W from ``stream_key(seed, "classes", "W")``, X
    (stratified) from ``stream_key(seed, "classes", "X", index)`` and the Monte Carlo from
    ``stream_key(seed, "classes", "monte_carlo", index)`` (:func:`rfdiff._util.stream_key`); ``index`` is
    the value's position in its grid.
    τ grid: ``n_tau`` log-spaced from 0.01 to 1e7.
    """

    d: int
    p: int
    n: int
    kind: str
    value: float
    index: int = 0
    t: float = 0.1
    seed: int = 0
    mu_norm: float = 2.0
    n_mc: int = 8192
    n_tau: int = 161

    def __post_init__(self):
        for name in ("d", "p", "n", "n_mc", "n_tau"):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))
        if self.kind not in ("variance", "weight"):
            raise ValueError(f"kind must be 'variance' or 'weight', got {self.kind!r}")
        upper = 1.0 if self.kind == "weight" else math.inf
        object.__setattr__(self, "value", _floats("value", (self.value,), upper)[0])
        object.__setattr__(self, "index", _checks.integer("index", self.index, 0))
        object.__setattr__(self, "t", check_positive("t", self.t))
        object.__setattr__(self, "seed", _checks.seed(self.seed))
        try:
            mu = float(self.mu_norm)
        except (TypeError, ValueError):
            mu = math.nan
        if not (math.isfinite(mu) and mu >= 0):
            raise ValueError(f"mu_norm must be finite and >= 0, got {self.mu_norm!r}")
        object.__setattr__(self, "mu_norm", mu)

    @property
    def variances(self) -> tuple:
        return (1.0, self.value) if self.kind == "variance" else (1.0, 1.0)

    @property
    def weights(self) -> tuple:
        return (0.5, 0.5) if self.kind == "variance" else (1.0 - self.value, self.value)


@register
@dataclasses.dataclass(frozen=True)
class SubspaceUnit:
    """Isotropic variance on a random D-dimensional subspace of R^d (:class:`rfdiff.model.DataSpec` "subspace")."""

    d: int
    p: int
    n: int
    D: int
    t: float = 0.1
    seed: int = 0
    n_tau: int = 161

    def __post_init__(self):
        self.config()
        object.__setattr__(self, "D", check_positive_int("D", self.D))
        if self.D > self.d:
            raise ValueError(f"D must be <= d = {self.d}, got {self.D}")

    def config(self):
        return RFConfig(d=self.d, p=self.p, n=self.n, t=self.t, seed=self.seed, tol=1e-8, n_emp=2048,
                        data=DataSpec(kind="subspace", D=int(self.D)))


# ----------------------------------------------------------------------------------------------
# unit results


@register
@dataclasses.dataclass(frozen=True, eq=False)
class StaticsSweep:
    """τ → ∞ losses of the first-p-feature models, per ridge: arrays (P, R) (docs/theory.md §3.5–3.6).

    ``train_loss`` is the noise-averaged train loss, ``train_loss_frozen`` the loss on the frozen
    draws (finite m only; what is minimised), as in :class:`rfdiff.results.Curves`. ``N = n·m``
    (None for m = ∞).
    """

    m: int
    p: np.ndarray
    ridge: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    score_error: np.ndarray
    weight_norm: np.ndarray
    train_loss_frozen: Optional[np.ndarray] = None
    N: Optional[int] = None

    def envelope(self) -> dict:
        """Lower envelope over λ of the test loss per p (:func:`rfdiff.ridge.lower_envelope`)."""
        return lower_envelope({"test_loss": self.test_loss, "ridge": self.ridge})


@register
@dataclasses.dataclass(frozen=True, eq=False)
class FiniteMResult:
    """One m: curves on the τ grid, their τ → ∞ point, timescales, the frozen-draw τ_mem and the statics.

    ``timescales``: τ_gen from the score error, τ_mem from ``gen_gap`` (test − noise-averaged
    train); ``tau_mem_frozen`` from ``extra["gen_gap_frozen"]`` (test − frozen-draw train; NaN at
    m = ∞). ``form``: "exact" (m = ∞), "primal" or "dual"; ``noise_sq`` = c_Ξ (1 at m = ∞).
    """

    unit: FiniteMUnit
    form: str
    N: Optional[int]
    noise_sq: float
    curves: Curves
    limit: Curves
    timescales: Timescales
    tau_mem_frozen: float
    tau_min_emp_distance: float
    statics: Optional[StaticsSweep]

    @property
    def label(self) -> str:
        return self.unit.label


@register
@dataclasses.dataclass(frozen=True, eq=False)
class RidgeResult:
    """Early stopping vs p (min over τ of the test loss, λ = 0) and test curves at p_max for ``lambdas``."""

    unit: RidgeUnit
    p: np.ndarray
    early_stopping_test: np.ndarray
    early_stopping_tau: np.ndarray
    lambda_opt: float
    lambdas: tuple
    curves: list


@register
@dataclasses.dataclass(frozen=True, eq=False)
class ClassResult:
    """Per-class curves (C, T) and :class:`rfdiff.results.Timescales` of one two-class mixture."""

    unit: ClassUnit
    counts: tuple
    curves: Curves
    timescales: list

    def row(self) -> dict:
        """Value, class variances, weights, counts and per-class τ_gen, τ_mem, min E_score, final gap."""
        ts = self.timescales
        return {"value": self.unit.value, "variances": list(self.unit.variances), "weights": list(self.unit.weights),
                "counts": list(self.counts), "tau_gen": [x.tau_gen for x in ts], "tau_mem": [x.tau_mem for x in ts],
                "min_score_error": [x.min_score_error for x in ts], "final_gap": [x.final_gap for x in ts]}


MEMORISES_GAP = 0.05
"""Subspace: τ_mem is reported only when the final gap reaches this (else it tracks a negligible gap)."""


@register
@dataclasses.dataclass(frozen=True, eq=False)
class SubspaceResult:
    """Curves and timescales of one subspace dimension D; ``fisher`` = J, the Fisher information of P_t."""

    unit: SubspaceUnit
    curves: Curves
    timescales: Timescales
    fisher: float

    def row(self) -> dict:
        """D, D/d, τ_gen, τ_mem (None unless the final gap ≥ MEMORISES_GAP), min E_score absolute and / (J/d)."""
        u, ts = self.unit, self.timescales
        j = self.fisher / u.d
        return {"D": u.D, "D_over_d": u.D / u.d, "tau_gen": ts.tau_gen,
                "tau_mem": ts.tau_mem if ts.final_gap >= MEMORISES_GAP else None, "tau_mem_any_gap": ts.tau_mem,
                "tau_mem_abs": ts.tau_mem_abs, "min_score_error": ts.min_score_error, "J_over_d": j,
                "relative_min_score_error": ts.min_score_error / j, "final_gap": ts.final_gap}


# ----------------------------------------------------------------------------------------------
# unit functions


def _fm_key(seed: int, m: int):
    return stream_key(seed, "finite_m", m)


def finite_m_unit(unit: FiniteMUnit) -> FiniteMResult:
    """Curves vs τ and τ → ∞ statics of training on m frozen draws (m = 0: the exact average; docs/theory.md §3.6)."""

    if not isinstance(unit, FiniteMUnit):
        raise ValueError(f"unit must be a FiniteMUnit, got {type(unit).__name__}")
    cfg = unit.config()
    problem = build_problem(cfg)
    taus = _taus(-1, unit.n_tau)
    ridges = ridge_grid(unit.n_ridge)
    U, V = problem.train.U, problem.train.V
    statics = None
    if unit.m == 0:
        dyn = dynamics.from_problem(problem)
        form, N, noise_sq = "exact", None, 1.0
        if unit.ps:
            sw = ridge.statics_vs_p(U, V, cfg.t, unit.ps, ridges, problem.population)
            statics = StaticsSweep(0, sw["p"], sw["ridge"], sw["train_loss"], sw["test_loss"], sw["score_error"],
                                   sw["weight_norm"])
    else:
        noise = finite_m.frozen_noise(_fm_key(cfg.seed, unit.m), unit.m, cfg.n, cfg.d)
        dyn = finite_m.finite_m_dynamics(problem.W, problem.X, cfg.t, noise, activation=cfg.activation,
                                         pop=problem.population, avg=(U, V))
        form, N, noise_sq = dyn.form, unit.m * cfg.n, float(dyn.noise_sq)
        if unit.ps:
            sw = finite_m.frozen_statics_vs_p(problem.W, problem.X, cfg.t, noise, unit.ps, ridges,
                                              pop=problem.population, avg=(U, V))
            statics = StaticsSweep(unit.m, sw["p"], sw["ridge"], sw["train_loss_avg"], sw["test_loss"],
                                   sw["score_error"], sw["weight_norm"], sw["train_loss"], int(sw["N"]))
    c = dyn.curves(taus)
    gap_frozen = c.get("gen_gap_frozen")
    return FiniteMResult(unit, form, N, noise_sq, c, dyn.curves([np.inf]), extract(c),
                         math.nan if gap_frozen is None else timescales.tau_mem(taus, gap_frozen)["tau_mem"],
                         float(taus[int(np.argmin(c.emp_distance))]), statics)


def ridge_unit(unit: RidgeUnit) -> RidgeResult:
    """Early stopping vs p and ridge dynamics at p_max for λ ∈ {0, λ*/10, λ*, 10λ*} (m = ∞; docs/theory.md §3.5).

    λ* minimises the τ → ∞ test loss at p_max over :func:`ridge_grid` (:func:`rfdiff.ridge.ridge_path`).
    """

    if not isinstance(unit, RidgeUnit):
        raise ValueError(f"unit must be a RidgeUnit, got {type(unit).__name__}")
    problem = build_problem(unit.config())
    taus = _taus(-1, unit.n_tau)
    early = ridge.early_stopping_vs_p(problem.train.U, problem.train.V, unit.t, unit.ps, taus, problem.population)
    dyn = dynamics.from_problem(problem)
    lam = ridge.optimal_ridge(ridge.ridge_path(dyn, ridge_grid(unit.n_ridge)))["ridge"]
    lambdas = (0.0, 0.1 * lam, lam, 10.0 * lam)
    return RidgeResult(unit, early["p"], early["min_test_loss"], early["tau_at_min"], float(lam), lambdas,
                       [ridge.with_ridge(dyn, x).curves(taus) for x in lambdas])


def class_unit(unit: ClassUnit) -> ClassResult:
    """Per-class curves and timescales of one two-class mixture (docs/theory.md §2.8, §6.1)."""


    if not isinstance(unit, ClassUnit):
        raise ValueError(f"unit must be a ClassUnit, got {type(unit).__name__}")
    with jax.enable_x64(True):
        W = features.init_W(stream_key(unit.seed, "classes", "W"), unit.p, unit.d, dtype=np.float64)
        mu = np.zeros(unit.d)
        mu[0] = unit.mu_norm
        dat = data.mixture(list(unit.weights), np.stack([mu, -mu]), list(unit.variances))
        X, lab = classes.stratified_sample(stream_key(unit.seed, "classes", "X", unit.index), dat, unit.n)
        _, cd = classes.class_problem(stream_key(unit.seed, "classes", "monte_carlo", unit.index), W, X, lab, dat,
                                      unit.t, n_mc=unit.n_mc, tol=1e-8)
    c = cd.curves(_taus(-2, unit.n_tau))
    return ClassResult(unit, tuple(int(x) for x in cd.counts), c, classes.class_timescales(c))


def subspace_unit(unit: SubspaceUnit) -> SubspaceResult:
    """Exact curves and timescales for subspace data (:func:`rfdiff.study.run`, dense route, no theory)."""

    if not isinstance(unit, SubspaceUnit):
        raise ValueError(f"unit must be a SubspaceUnit, got {type(unit).__name__}")
    res = run_study(unit.config(), StudyOptions(taus=TauGrid(0.1, 1e7, unit.n_tau), method="dense", theory=False))
    return SubspaceResult(unit, res.simulation.curves, res.simulation.timescales,
                          float(res.diagnostics["matrices"]["fisher"]))


_UNIT_FNS = {FiniteMUnit: finite_m_unit, RidgeUnit: ridge_unit, ClassUnit: class_unit, SubspaceUnit: subspace_unit}


def beyond_unit(unit):
    """Any unit of this study (the unit function of the sweep): dispatches on the unit's type."""
    fn = _UNIT_FNS.get(type(unit))
    if fn is None:
        raise ValueError(f"unit must be one of {', '.join(c.__name__ for c in _UNIT_FNS)}, got {type(unit).__name__}")
    return fn(unit)


def units(sizes: Sizes, *, seed: int = 0, t: float = 0.1, mu_norm: float = 2.0, parts: Sequence[int] = PARTS) -> list:
    """Every unit of the requested ``parts`` (part 2 adds part 1, whose ψ_p sweep its envelope uses), largest first."""
    parts = set(parts)
    if not parts or not parts <= set(PARTS):
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {sorted(parts)!r}")
    if not isinstance(sizes, Sizes):
        raise ValueError(f"sizes must be a Sizes, got {type(sizes).__name__}")
    if 2 in parts:
        parts.add(1)
    S, out = sizes, []
    ps = p_grid(S.n, S.sweep_ms, S.p_max)
    if 1 in parts:
        for m in (0,) + S.ms:
            sweep = m == 0 or m in S.sweep_ms
            out.append(FiniteMUnit(S.d, S.n, S.p_max, m, t, seed, S.n_tau, ps if sweep else (), S.n_ridge))
    if 2 in parts:
        out.append(RidgeUnit(S.d, S.n, S.p_max, t, seed, S.n_tau, ps, S.n_ridge))
    if 3 in parts:
        for kind, grid in (("variance", S.variances), ("weight", S.weights)):
            out += [ClassUnit(S.cls_d, S.cls_p, S.cls_n, kind, v, j, t, seed, mu_norm, S.n_mc, S.n_tau)
                    for j, v in enumerate(grid)]
    if 4 in parts:
        out += [SubspaceUnit(S.sub_d, S.sub_p, S.sub_n, D, t, seed, S.n_tau) for D in S.Ds]
    return out


# ----------------------------------------------------------------------------------------------
# summaries


@register
@dataclasses.dataclass(frozen=True)
class StaticsSummary:
    """Key numbers of one τ → ∞ sweep over p: the λ = 0 test-loss peak and minimum, the ridge envelope.

    For m = ∞ also the λ = 0 test loss at p ≈ n, at the smallest and largest p, and the largest
    early-stopping test loss over p (NaN without the ridge part).
    """

    m: int
    N: Optional[int]
    p_peak: int
    psi_peak: float
    test_at_peak: float
    p_min_test: int
    min_test: float
    envelope_max: float
    envelope_min: float
    optimal_ridge_at_peak: float
    envelope_at_grid_edge: int
    test_at_p_n: float = math.nan
    test_at_p_min: float = math.nan
    test_at_p_max: float = math.nan
    early_stopping_max: float = math.nan


def statics_summary(sw: StaticsSweep, d: int, n: int, early: Optional[RidgeResult] = None) -> StaticsSummary:
    """:class:`StaticsSummary` of one sweep (λ = 0 column; envelope over every λ)."""
    t0 = sw.test_loss[:, 0]
    env = sw.envelope()
    i, j = int(np.argmax(t0)), int(np.argmin(t0))
    extra = {}
    if sw.m == 0:
        extra = {"test_at_p_n": float(t0[int(np.argmin(np.abs(sw.p - n)))]), "test_at_p_min": float(t0[0]),
                 "test_at_p_max": float(t0[-1]),
                 "early_stopping_max": float(np.max(early.early_stopping_test)) if early is not None else math.nan}
    return StaticsSummary(sw.m, sw.N, int(sw.p[i]), float(sw.p[i] / d), float(t0[i]), int(sw.p[j]), float(t0[j]),
                          float(env["value"].max()), float(env["value"].min()), float(env["ridge"][i]),
                          int(env["at_grid_edge"].sum()), **extra)


@register
@dataclasses.dataclass(frozen=True, eq=False)
class BeyondResult:
    """The whole study: sizes, settings, every unit's result by part, the statics summaries and the run times.

    ``finite_m``: one :class:`FiniteMResult` per m (m = ∞ last); ``statics``: ``{label: StaticsSummary}``
    (label ``"inf"`` or m); ``timings``: seconds per unit (NaN when loaded from the cache) and ``total``.
    """

    sizes: Sizes
    seed: int
    t: float
    mu_norm: float
    parts: tuple
    finite_m: list
    ridge: Optional[RidgeResult]
    statics: dict
    classes: list
    subspace: list
    timings: dict


def _unit_label(u) -> str:
    if isinstance(u, FiniteMUnit):
        return f"finite m: m = {'∞' if u.m == 0 else u.m}"
    if isinstance(u, RidgeUnit):
        return "ridge"
    if isinstance(u, ClassUnit):
        return f"classes: {u.kind} = {u.value:g}"
    return f"subspace: D = {u.D}"


def summarize(sizes: Sizes, seed: int, t: float, mu_norm: float, parts: Sequence[int], unit_list: Sequence,
              results: Sequence, runtimes: Optional[Sequence] = None) -> BeyondResult:
    """Gather unit results (aligned with ``unit_list``) into a :class:`BeyondResult`."""
    fm = [r for r in results if isinstance(r, FiniteMResult)]
    fm = [r for r in fm if r.unit.m != 0] + [r for r in fm if r.unit.m == 0]
    rd = next((r for r in results if isinstance(r, RidgeResult)), None)
    statics = {r.label: statics_summary(r.statics, sizes.d, sizes.n, rd) for r in fm if r.statics is not None}
    timings = {_unit_label(u): (math.nan if rt is None else float(rt))
               for u, rt in zip(unit_list, runtimes or [None] * len(unit_list))}
    parts = set(parts) | ({1} if 2 in parts else set())
    return BeyondResult(sizes, int(seed), float(t), float(mu_norm), tuple(sorted(parts)), fm, rd, statics,
                        [r for r in results if isinstance(r, ClassResult)],
                        [r for r in results if isinstance(r, SubspaceResult)], timings)


def run(sizes: Sizes, *, seed: int = 0, t: float = 0.1, mu_norm: float = 2.0, parts: Sequence[int] = PARTS,
        cache_dir, client=None, progress: Optional[Callable[[int, int], None]] = None):
    """Every unit of ``parts`` through one :func:`rfdiff.sweep.run_sweep` (cached in ``cache_dir``), on ``client``
    (a ``distributed.Client``; None: serially in this process).

    Returns ``(BeyondResult, SweepReport)``; raises :class:`rfdiff.sweep.SweepError` if a unit failed.
    """
    from ..sweep import Cache, run_sweep

    t0 = time.perf_counter()
    todo = units(sizes, seed=seed, t=t, mu_norm=mu_norm, parts=parts)
    rep = run_sweep(beyond_unit, todo, cache=Cache(Path(cache_dir)), client=client, progress=progress).raise_on_failure()
    res = summarize(sizes, seed, t, mu_norm, parts, todo, rep.results, rep.runtimes)
    res.timings["total"] = time.perf_counter() - t0
    return res, rep
