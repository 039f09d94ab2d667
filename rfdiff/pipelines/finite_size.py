"""Finite-size study: how far the d → ∞ theory is from the exact finite-d model, and why (docs/theory.md §7.1).

For each (d, ψ_n, ψ_p) at fixed t, one draw of W and X (:func:`rfdiff.model.draw`, seed of the
unit) gives train- and test-loss curves on one τ grid from three sources:

* exact: the noise-averaged U, V, Ũ, Ṽ of the finite-d model and its gradient-flow curves
  (:func:`rfdiff.study.run`, dense route; docs/theory.md §2.3–2.5, §3.2);
* GE draw: the Gaussian-equivalent model of Lemma C.1 on the same W and X
  (``StudyOptions(model="ge")``, :func:`rfdiff.theory.ge_dynamics`; docs/theory.md §4.2);
* theory: the d → ∞ deterministic equivalents (train loss §4.6, test loss §4.7) and the train
  loss with the finite-d norm correction (§4.5).

:func:`gap_unit` reports the largest relative error over τ ≤ 100 τ_mem (τ_mem the relaxation time
of the lower edge of the d → ∞ memorisation bulk, docs/theory.md §6.2) of each pair of sources,
and at the last grid point;
:func:`fits_by_psi_n` fits these errors against n at fixed (ψ_p, ψ_n) (a correction ∝ 1/n has
slope −1, :func:`rfdiff.stats.fit_power_law`); :func:`fit_psi_p_scan` fits the GE-vs-exact error
against ψ_p/n across every point. :func:`decompose_unit` splits L_train(τ → ∞) of the exact model
into parts (docs/theory.md §7.1, "Decomposition"). :func:`run` runs both kinds of unit through
:func:`rfdiff.sweep.run_sweep` and returns a :class:`FiniteSizeResult`.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..model import draw, RFConfig
from . import _checks
from ..results import Curves, register
from ..stats import fit_power_law, PowerLawFit
from ..study import run as run_study, StudyOptions, TauGrid
from .._surrogates import train_loss_surrogates
from ..theory import predict
from ..timescales import spectral_tau

__all__ = ["MAIN_PSI_P", "TAU_GRID", "WINDOW", "ERROR_PAIRS", "Block", "PRESETS", "DECOMPOSE_DS", "GapUnit",
           "GapResult", "DecomposeUnit", "DecomposeResult", "GapFit", "PsiPScan", "FiniteSizeResult", "grid",
           "gap_units", "decompose_units", "gap_unit", "decompose_unit", "fits_by_psi_n", "fit_psi_p_scan",
           "summarize", "run"]

MAIN_PSI_P = 64.0
"""ψ_p of the d-scan (the acceptance setting of the study)."""
TAU_GRID = TauGrid(1e-2, 1e8, 61)
WINDOW = 100.0
"""Errors are maxima over τ ≤ WINDOW · τ_mem (τ_mem of the lower edge of the d → ∞ memorisation bulk)."""
ERROR_PAIRS = (  # name, source a, source b, curve: relative error |a − b|/|b|
    ("theory_vs_exact", "theory", "exact", "train_loss"), ("theory_d_vs_exact", "theory_d", "exact", "train_loss"),
    ("theory_vs_ge", "theory", "ge", "train_loss"), ("ge_vs_exact", "ge", "exact", "train_loss"),
    ("test_theory_vs_exact", "theory", "exact", "test_loss"), ("test_theory_vs_ge", "theory", "ge", "test_loss"),
    ("test_ge_vs_exact", "ge", "exact", "test_loss"))
FIT_KEYS = ("theory_vs_exact", "ge_vs_exact", "theory_vs_exact_inf", "test_theory_vs_exact")


def _positive_tuple(name: str, values, cast, minimum: float = 0.0, strict: bool = True) -> tuple:
    return _checks.sequence(name, values, lambda nm, v: _checks.number(nm, v, cast, minimum, strict, shown=values))


@register
@dataclasses.dataclass(frozen=True)
class Block:
    """A product grid d × ψ_n × ψ_p of study points (d ≥ 4 integers, ψ's > 0)."""

    ds: tuple
    psi_ns: tuple
    psi_ps: tuple = (MAIN_PSI_P,)

    def __post_init__(self):
        object.__setattr__(self, "ds", _positive_tuple("ds", self.ds, int, 4, strict=False))
        object.__setattr__(self, "psi_ns", _positive_tuple("psi_ns", self.psi_ns, float))
        object.__setattr__(self, "psi_ps", _positive_tuple("psi_ps", self.psi_ps, float))


PRESETS = {
    # the d-scan at ψ_p = 64 and a ψ_p-scan at fixed d, n that isolates the p-dependence of the gap
    "full": (Block((16, 24, 32, 48, 64, 100), (4.0, 8.0, 16.0)),
             Block((16, 24, 32, 48), (4.0, 8.0), (8.0, 16.0, 32.0))),
    "quick": (Block((12, 16, 24, 32), (4.0, 8.0)), Block((12, 16), (4.0,), (8.0, 16.0, 32.0))),
}
DECOMPOSE_DS = (24, 32, 48, 64, 96)


def grid(blocks: Sequence[Block]) -> list[tuple[int, float, float]]:
    """The distinct (d, ψ_n, ψ_p) of ``blocks``: the main ψ_p first, then by ψ_p, ψ_n, d."""
    if not blocks or not all(isinstance(b, Block) for b in blocks):
        raise ValueError("blocks must be a non-empty sequence of Block")
    pts = {(d, psi_n, psi_p) for b in blocks for psi_p in b.psi_ps for psi_n in b.psi_ns for d in b.ds}
    return sorted(pts, key=lambda g: (g[2] != MAIN_PSI_P, g[2], g[1], g[0]))


def _sizes(d, psi_n, psi_p) -> tuple[int, int]:
    p, n = _checks.size(psi_p, d), _checks.size(psi_n, d)
    if n < 1:
        raise ValueError(f"psi_n = {psi_n!r} gives n = round(psi_n d) = 0 training points at d = {d}")
    if p < 1:
        raise ValueError(f"psi_p = {psi_p!r} gives p = round(psi_p d) = 0 features at d = {d}")
    return p, n


@register
@dataclasses.dataclass(frozen=True)
class GapUnit:
    """One (d, ψ_n, ψ_p, t, seed) point of the gap study; p = round(ψ_p d), n = round(ψ_n d)."""

    d: int
    psi_n: float
    psi_p: float = MAIN_PSI_P
    t: float = 0.1
    seed: int = 1
    activation: str = "tanh"
    tol: float = 1e-10
    taus: TauGrid = TAU_GRID

    def __post_init__(self):
        object.__setattr__(self, "d", _checks.number("d", self.d, int, 4, strict=False))
        object.__setattr__(self, "psi_n", _checks.number("psi_n", self.psi_n, float))
        object.__setattr__(self, "psi_p", _checks.number("psi_p", self.psi_p, float))
        object.__setattr__(self, "seed", _checks.seed(self.seed))
        if not isinstance(self.taus, TauGrid):
            raise ValueError(f"taus must be a TauGrid, got {self.taus!r}")
        self.config()

    @property
    def p(self) -> int:
        return _sizes(self.d, self.psi_n, self.psi_p)[0]

    @property
    def n(self) -> int:
        return _sizes(self.d, self.psi_n, self.psi_p)[1]

    def config(self) -> RFConfig:
        """The model of this point (isotropic data); its draws come from :func:`rfdiff.model.draw`."""
        p, n = _sizes(self.d, self.psi_n, self.psi_p)
        return RFConfig(d=int(self.d), p=p, n=n, t=self.t, activation=self.activation, seed=self.seed, tol=self.tol)


@register
@dataclasses.dataclass(frozen=True, eq=False)
class GapResult:
    """The three sources' curves of one :class:`GapUnit` and their relative errors (module docstring).

    ``curves``: ``exact``, ``ge``, ``theory`` (d → ∞; train and test loss) and ``theory_d`` (train
    loss with the finite-d correction), on ``unit.taus``. ``errors[name]`` is the largest relative
    error over τ ≤ WINDOW·``tau_mem`` and ``errors[name + "_inf"]`` the error at the last grid
    point, for each name of :data:`ERROR_PAIRS`; ``tau_mem = ψ_p/(Δ_t λ)`` with λ the lower support
    edge of the d → ∞ memorisation bulk (``Prediction.lambda_mem_support``, defined also when
    n + d ≥ p). ``edge_exact``: first eigenvalue of the exact memorisation bulk (spectral quantile,
    docs/theory.md §6.2; NaN unless d < n and n + d < p); ``edge_err``: the d → ∞ support edge
    relative to it, ``edge_err_d``: the finite-d theory's ``lambda_mem`` (same quantile) relative
    to it. ``exact_s``: seconds of the exact route.
    """

    unit: GapUnit
    p: int
    n: int
    tau_mem: float
    edge_exact: float
    edge_err: float
    edge_err_d: float
    errors: dict
    curves: dict
    exact_s: float

    @property
    def d(self) -> int:
        return self.unit.d

    @property
    def psi_n(self) -> float:
        return self.unit.psi_n

    @property
    def psi_p(self) -> float:
        return self.unit.psi_p

    def row(self) -> dict:
        """The scalars as one flat dict (sizes, τ_mem, edges, every error)."""
        return {"d": self.d, "p": self.p, "n": self.n, "psi_n": self.psi_n, "psi_p": self.psi_p,
                "tau_mem": self.tau_mem, "exact_s": self.exact_s, "edge_exact": self.edge_exact,
                "edge_err": self.edge_err, "edge_err_d": self.edge_err_d, **self.errors}

    def __getitem__(self, name: str):
        return self.row()[name]


def _relative_errors(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> tuple[float, float]:
    r = np.abs(a - b) / np.abs(b)
    return (float(r[keep].max()) if keep.any() else math.nan), float(r[-1])


def gap_unit(unit: GapUnit) -> GapResult:
    """Exact, GE-draw and theory curves of one point and their relative errors (docs/theory.md §7.1)."""

    if not isinstance(unit, GapUnit):
        raise ValueError(f"unit must be a GapUnit, got {type(unit).__name__}")
    cfg = unit.config()
    sim = run_study(cfg, StudyOptions(taus=unit.taus, method="dense", theory=True))
    ge = run_study(cfg, StudyOptions(taus=unit.taus, model="ge", theory=False))
    exact_s = sum(sim.timings.get(k, 0.0) for k in ("matrices", "dynamics", "spectrum", "curves"))
    tau = sim.simulation.curves.tau

    def two(c: Curves, method: str) -> Curves:
        return Curves(tau, c.train_loss, c.test_loss, method=method)

    curves = {"exact": two(sim.simulation.curves, "exact finite d"),
              "ge": two(ge.simulation.curves, "Gaussian-equivalent model on the same W, X"),
              "theory": two(sim.theory_d_inf.curves, "theory d → ∞"),
              "theory_d": Curves(tau, sim.theory.curves.train_loss, method="theory with the finite-d norm correction")}
    pred, pred_inf = sim.prediction, sim.prediction_d_inf
    lam_support = float(pred_inf.lambda_mem_support)     # lower edge of the d → ∞ memorisation bulk
    tau_mem = spectral_tau(lam_support, cfg.psi_p, cfg.t)
    keep = tau <= WINDOW * tau_mem
    errors = {}
    for name, a, b, key in ERROR_PAIRS:
        errors[name], errors[name + "_inf"] = _relative_errors(curves[a][key], curves[b][key], keep)
    edge = float(sim.simulation.timescales.lambda_mem)
    return GapResult(unit, cfg.p, cfg.n, tau_mem, edge, lam_support / edge - 1.0, float(pred.lambda_mem) / edge - 1.0,
                     errors, curves, float(exact_s))


@register
@dataclasses.dataclass(frozen=True)
class DecomposeUnit:
    """One d of the L_train(∞) decomposition (ψ_n = 4, ψ_p = 64); the draws of the :class:`GapUnit` of that point."""

    d: int
    psi_n: float = 4.0
    psi_p: float = MAIN_PSI_P
    t: float = 0.1
    seed: int = 1
    activation: str = "tanh"
    tol: float = 1e-10

    def __post_init__(self):
        self.gap_unit()

    def gap_unit(self) -> GapUnit:
        return GapUnit(self.d, self.psi_n, self.psi_p, self.t, self.seed, self.activation, self.tol)


@register
@dataclasses.dataclass(frozen=True)
class DecomposeResult:
    """L_train(τ → ∞) of the exact model, of its surrogates (:func:`decompose_unit`) and of the d → ∞ theory."""

    d: int
    p: int
    n: int
    psi_n: float
    psi_p: float
    exact: float
    order1: float
    slopes_avg: float
    mean_iid: float
    both: float
    theory: float

    def __getitem__(self, name: str):
        return getattr(self, name)


def decompose_unit(unit: DecomposeUnit) -> DecomposeResult:
    """L_train(∞) = 1 − (1/d) Tr Vᵀ U⁻¹ V of the exact model and of surrogates that replace one part of it
    (:func:`rfdiff._surrogates.train_loss_surrogates`, docs/theory.md §7.1), on the draws of the
    :class:`GapUnit` of that point, with the d → ∞ theory's value."""

    if not isinstance(unit, DecomposeUnit):
        raise ValueError(f"unit must be a DecomposeUnit, got {type(unit).__name__}")
    cfg = unit.gap_unit().config()
    dr = draw(cfg)                                   # the same W, X as gap_unit at this point
    sur = train_loss_surrogates(dr.W, dr.X, cfg.t, cfg.activation, tol=cfg.tol, seed=unit.seed)
    theory = predict(cfg.activation, cfg.t, unit.psi_p, unit.psi_n, test_loss=False).train_loss_inf
    return DecomposeResult(cfg.d, cfg.p, cfg.n, float(unit.psi_n), float(unit.psi_p), sur.exact, sur.order1,
                           sur.slopes_avg, sur.mean_iid, sur.both, float(theory))


@register
@dataclasses.dataclass(frozen=True)
class GapFit:
    """Power-law fits against n of the errors at one (ψ_p, ψ_n): ``fits[key]`` for key in FIT_KEYS; n × error."""

    psi_p: float
    psi_n: float
    n: tuple
    fits: dict
    n_times_error: tuple


@register
@dataclasses.dataclass(frozen=True)
class PsiPScan:
    """Fits of the errors against ψ_p/n over every point, and GE-vs-exact error × n/ψ_p (median, range)."""

    theory_vs_exact: PowerLawFit
    ge_vs_exact: PowerLawFit
    ratio_median: float
    ratio_min: float
    ratio_max: float


def fits_by_psi_n(rows: Sequence[GapResult]) -> list[GapFit]:
    """Power-law fits of the errors against n per (ψ_p, ψ_n) with at least three sizes (docs/theory.md §7.1)."""
    out = []
    for psi_p, psi_n in sorted({(r.psi_p, r.psi_n) for r in rows}):
        sel = sorted((r for r in rows if r.psi_n == psi_n and r.psi_p == psi_p), key=lambda r: r.n)
        if len(sel) < 3:
            continue
        n = np.array([r.n for r in sel], float)
        fits = {k: fit_power_law(n, np.array([r.errors[k] for r in sel])) for k in FIT_KEYS}
        out.append(GapFit(psi_p, psi_n, tuple(int(x) for x in n), fits,
                          tuple(float(v) for v in n * np.array([r.errors["theory_vs_exact"] for r in sel]))))
    return out


def fit_psi_p_scan(rows: Sequence[GapResult]) -> Optional[PsiPScan]:
    """Errors against ψ_p/n over every point (None unless there are several ψ_p): GE vs exact ≈ c·ψ_p/n."""
    if len({r.psi_p for r in rows}) < 2:
        return None
    x = np.array([r.psi_p / r.n for r in rows])
    ratio = np.array([r.errors["ge_vs_exact"] for r in rows]) / x
    ratio = ratio[np.isfinite(ratio)] if np.isfinite(ratio).any() else np.array([math.nan])
    return PsiPScan(fit_power_law(x, [r.errors["theory_vs_exact"] for r in rows]),
                    fit_power_law(x, [r.errors["ge_vs_exact"] for r in rows]),
                    float(np.median(ratio)), float(ratio.min()), float(ratio.max()))


@register
@dataclasses.dataclass(frozen=True, eq=False)
class FiniteSizeResult:
    """The whole study: its grid, every point's :class:`GapResult`, the fits, the decomposition, the wall time."""

    blocks: tuple
    t: float
    seed: int
    taus: TauGrid
    rows: list
    fits: list
    psi_p_scan: Optional[PsiPScan]
    decomposition: list
    wall_s: float = math.nan


def gap_units(blocks: Sequence[Block], t: float = 0.1, seed: int = 1) -> list[GapUnit]:
    """One :class:`GapUnit` per point of :func:`grid`."""
    return [GapUnit(d, psi_n, psi_p, t, seed) for d, psi_n, psi_p in grid(blocks)]


def decompose_units(t: float = 0.1, seed: int = 1, ds: Sequence[int] = DECOMPOSE_DS) -> list[DecomposeUnit]:
    """One :class:`DecomposeUnit` per d (ψ_n = 4, ψ_p = 64)."""
    return [DecomposeUnit(d, t=t, seed=seed) for d in _positive_tuple("ds", ds, int, 4, strict=False)]


def summarize(blocks: Sequence[Block], t: float, seed: int, rows: Sequence[GapResult],
              decomposition: Sequence[DecomposeResult] = (), wall_s: float = math.nan) -> FiniteSizeResult:
    """The :class:`FiniteSizeResult` of unit results (fits included)."""
    rows = list(rows)
    return FiniteSizeResult(tuple(blocks), float(t), int(seed), rows[0].unit.taus if rows else TAU_GRID, rows,
                            fits_by_psi_n(rows), fit_psi_p_scan(rows), list(decomposition), float(wall_s))


def run(blocks: Sequence[Block], *, t: float = 0.1, seed: int = 1, decompose: bool = False, cache_dir,
        client=None, progress: Optional[Callable[[str, int, int], None]] = None) -> tuple[FiniteSizeResult, list]:
    """Run the gap units (and the decomposition) through :func:`rfdiff.sweep.run_sweep`, cached in ``cache_dir``,
    on ``client`` (a ``distributed.Client``; None: serially in this process).

    ``progress(stage, done, total)`` with stage ``"finite size"`` or ``"decomposition"``. Returns
    the result and the sweeps' :class:`rfdiff.sweep.SweepReport` s; raises
    :class:`rfdiff.sweep.SweepError` if a unit failed.
    """
    from ..sweep import Cache, run_sweep

    t0 = time.perf_counter()
    cache = Cache(Path(cache_dir))
    tell = progress or (lambda stage, done, total: None)
    reports = [run_sweep(gap_unit, gap_units(blocks, t, seed), cache=cache, client=client,
                         progress=lambda i, k: tell("finite size", i, k)).raise_on_failure()]
    if decompose:
        reports.append(run_sweep(decompose_unit, decompose_units(t, seed), cache=cache, client=client,
                                 progress=lambda i, k: tell("decomposition", i, k)).raise_on_failure())
    dec = reports[1].results if decompose else []
    return summarize(blocks, t, seed, reports[0].results, dec, time.perf_counter() - t0), reports
