"""The paper's random-features figures and claims as plans and typed summaries (docs/theory.md §6).

Every figure of Bonnaire, Urfin, Biroli, Mézard (2025) that concerns the RF model, and the
finite-size ladder that tells how fast the finite-d model approaches the d → ∞ theory, is a
plan: :func:`plan` gives ``{Label: unit}`` once — each unit a :class:`rfdiff.study.Study`
(simulation + theory, timescales by one rule), a :class:`DensityUnit` (a theoretical density on
a grid) or a :class:`TrainingUnit` (iterative training: Adam, or the authors' fresh-noise
gradient descent) — run by :func:`run_unit` through :func:`rfdiff.sweep.run_sweep`.
:func:`summarize` reads the results by label (:class:`Results`: a missing one is an error naming
its label) and returns the figure's typed frozen summary of key numbers with their intervals
(:mod:`rfdiff.stats`), from which ``rfdiff_analysis`` draws the figures and judges the claims.
Sizes are the frozen :class:`Preset` s of :data:`PRESETS` ("full": the paper's sizes where 2
cores allow; "quick": a smoke version).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

import numpy as np

from .. import dynamics, fluctuations, training
from .._util import check_fraction, stream_key
from ..diffusion import delta
from ..fluctuations import FloorPrediction
from ..model import build_problem, DataSpec, RFConfig
from ..results import Curves, register
from ..stats import Estimate, fit_finite_size, fit_power_law, local_exponents, LocalExponents, mean_ci, PowerLawFit
from ..study import resolve, run_study, Study, StudyOptions, StudyResult, TauGrid
from ..theory import classify_bulks, ge_constants, solve_spectrum
from ..theory.asymptotics import tau_mem_asymptotic
from ..timescales import extract, first_crossing, tau_mem as tm_rule
from . import _checks

__all__ = ["FIGURES", "PRESETS", "ACTIVATION", "Label", "Results", "MissingResult", "NotPlanned", "Preset", "Ladder",
           "SpectrumSizes", "CurvesSizes", "MinScoreSizes", "SigmaXSizes", "AdamSizes", "ScalingSizes",
           "HeatmapSizes", "PhaseSizes", "ProcedureSizes", "DensityUnit", "Density", "TrainingUnit", "TrainingOutcome",
           "run_unit", "plan", "summarize", "LADDER_QUANTITIES", "collapse_spread", "simulation_phase", "theory_phase",
           "MEMORISATION", "DYNAMICAL", "ARCHITECTURAL", "LadderPoint", "LadderBlock", "LadderSummary", "SpectrumEntry",
           "SpectrumSummary", "SeedTimescales", "Collapse", "CurvesSummary", "SeedSpread", "MinScoreSummary",
           "ExponentFits", "SigmaXSummary", "AdamSummary", "ScalingFits", "ScalingSummary", "HeatmapCell",
           "HeatmapSummary", "PhaseSummary", "FloorComparison", "ProcedureSummary", "SeedTable", "COLLAPSE_FRACTIONS"]

FIGURES = ("finite_size_scaling", "spectrum", "learning_curves", "min_score", "sigma_x", "adam", "scaling",
           "heatmap", "phase", "procedure")
TAUS = TauGrid(1e-2, 1e8, 161)
ACTIVATION = "tanh"
"""The activation of every figure (the paper's)."""
ATOMS_2 = ((0.5, 0.5), (1.5, 0.5))                    # ρ_Σ = ½δ_0.5 + ½δ_1.5
DENSITY_GRID = (1e-3, 1e3, 1200)
# ladder quantities, read by the same rule on each side
LADDER_QUANTITIES = ("train_loss_inf", "test_loss_inf", "min_score_error", "tau_gen", "tau_mem", "lambda_mem",
                     "lambda_mem_upper")
# candidate leading corrections: 1/n for the losses (measured: n × error ≈ const); 1/√n as well for the
# spectral edges and the timescales they set (the training points' norms spread by √(2/d))
FINITE_SIZE_EXPONENTS = {"train_loss_inf": (1.0,), "test_loss_inf": (1.0,), "min_score_error": (1.0,),
                         "tau_gen": (1.0, 0.5), "tau_mem": (1.0, 0.5), "lambda_mem": (1.0, 0.5),
                         "lambda_mem_upper": (1.0, 0.5)}


# ----------------------------------------------------------------------------------------------
# presets


def _ints(name, values, minimum=1) -> tuple:
    return _checks.sequence(name, values, lambda nm, v: _checks.integer(nm, v, minimum))


def _floats(name, values) -> tuple:
    return _checks.sequence(name, values, _checks.positive)


def _seeds(name, values) -> tuple:
    return _checks.sequence(name, values, lambda nm, v: _checks.seed(v, nm))


def _validate(obj, ints=(), floats=(), int_seqs=(), float_seqs=(), seed_seqs=()) -> None:
    for name in ints:
        object.__setattr__(obj, name, _checks.integer(name, getattr(obj, name)))
    for name in floats:
        object.__setattr__(obj, name, _checks.positive(name, getattr(obj, name)))
    for name in int_seqs:
        object.__setattr__(obj, name, _ints(name, getattr(obj, name)))
    for name in float_seqs:
        object.__setattr__(obj, name, _floats(name, getattr(obj, name)))
    for name in seed_seqs:
        object.__setattr__(obj, name, _seeds(name, getattr(obj, name)))


@register
@dataclasses.dataclass(frozen=True)
class Ladder:
    """One finite-size ladder: d over ``ds`` at fixed ψ_p and each ψ_n of ``psi_ns``, at t; ``seeds`` at every d,
    ``extra_seeds`` added at the largest d and at the rungs ``full_seeds_at`` (where the finite-d theory of the
    train loss is judged, docs/theory.md §8); the theory rides with the first seed at every d (``theory="all_d"``)
    or only at the largest (``"largest_d"``)."""

    ds: tuple
    psi_p: float
    psi_ns: tuple
    t: float
    seeds: tuple
    extra_seeds: tuple = ()
    theory: str = "all_d"
    full_seeds_at: tuple = ()

    def __post_init__(self):
        _validate(self, floats=("psi_p", "t"), int_seqs=("ds",), float_seqs=("psi_ns",), seed_seqs=("seeds",))
        object.__setattr__(self, "extra_seeds", tuple(_checks.seed(s, "extra_seeds") for s in self.extra_seeds))
        object.__setattr__(self, "full_seeds_at", tuple(int(d) for d in self.full_seeds_at))
        if not set(self.full_seeds_at) <= set(self.ds):
            raise ValueError(f"full_seeds_at must be rungs of ds {self.ds}, got {self.full_seeds_at}")
        if self.theory not in ("all_d", "largest_d"):
            raise ValueError(f"theory must be 'all_d' or 'largest_d', got {self.theory!r}")

    def seeds_at(self, d: int) -> tuple:
        return self.seeds + (self.extra_seeds if d == max(self.ds) or d in self.full_seeds_at else ())


@register
@dataclasses.dataclass(frozen=True)
class SpectrumSizes:
    """Fig. 4: isotropic data and ρ_Σ = ½δ_0.5 + ½δ_1.5 at each ψ_n over ``seeds`` (the first drawn), with the
    theory's densities."""

    d: int
    psi_p: float
    psi_ns: tuple
    t: float
    seeds: tuple = (0,)

    def __post_init__(self):
        _validate(self, ints=("d",), floats=("psi_p", "t"), float_seqs=("psi_ns",), seed_seqs=("seeds",))


@register
@dataclasses.dataclass(frozen=True)
class CurvesSizes:
    """Fig. 5A/B: learning curves at each ψ_n over ``seeds`` (the theory with the first)."""

    d: int
    psi_p: float
    psi_ns: tuple
    t: float
    seeds: tuple

    def __post_init__(self):
        _validate(self, ints=("d",), floats=("psi_p", "t"), float_seqs=("psi_ns",), seed_seqs=("seeds",))


@register
@dataclasses.dataclass(frozen=True)
class MinScoreSizes(CurvesSizes):
    """Fig. 13: the minimal score error against ψ_n over ``seeds`` (the theory with the first)."""


@register
@dataclasses.dataclass(frozen=True)
class SigmaXSizes:
    """Fig. 12: τ_mem against ψ_n for each data scale σ_x over ``seeds`` (the theory with the first)."""

    d: int
    psi_p: float
    psi_ns: tuple
    t: float
    sigma_x: tuple
    seeds: tuple

    def __post_init__(self):
        _validate(self, ints=("d",), floats=("psi_p", "t"), float_seqs=("psi_ns", "sigma_x"), seed_seqs=("seeds",))


@register
@dataclasses.dataclass(frozen=True)
class AdamSizes:
    """Fig. 15: Adam (step ``eta``, ``steps`` steps) on the exact loss; steps to L_gen = ``gap_fraction`` of its final
    value against n (the claim's form: τ_mem by the report's rule), and to the absolute level ``gap_level``."""

    d: int
    psi_p: float
    psi_ns: tuple
    t: float
    eta: float
    steps: int
    gap_level: float
    seeds: tuple
    gap_fraction: float = 0.5

    def __post_init__(self):
        _validate(self, ints=("d", "steps"), floats=("psi_p", "t", "eta", "gap_level"), float_seqs=("psi_ns",),
                  seed_seqs=("seeds",))
        object.__setattr__(self, "gap_fraction", check_fraction("gap_fraction", self.gap_fraction))


@register
@dataclasses.dataclass(frozen=True)
class ScalingSizes:
    """Timescales against n at fixed p (``ns``) and against p at fixed n (``p_scan``, n = ``n_fixed``)."""

    d: int
    p: int
    ns: tuple
    t: float
    seeds: tuple
    n_fixed: int
    p_scan: tuple

    def __post_init__(self):
        _validate(self, ints=("d", "p", "n_fixed"), floats=("t",), int_seqs=("ns", "p_scan"), seed_seqs=("seeds",))


@register
@dataclasses.dataclass(frozen=True)
class HeatmapSizes:
    """Fig. 5C: L_gen at times ``taus`` over the (ψ_n, ψ_p) grid, one draw per cell."""

    d: int
    psi_ns: tuple
    psi_ps: tuple
    t: float
    taus: tuple

    def __post_init__(self):
        _validate(self, ints=("d",), floats=("t",), float_seqs=("psi_ns", "psi_ps", "taus"))


@register
@dataclasses.dataclass(frozen=True)
class PhaseSizes:
    """The phase diagram on the heatmap's grid at times ``taus``; no gap below ``gap_thr``."""

    taus: tuple
    gap_thr: float

    def __post_init__(self):
        _validate(self, floats=("gap_thr",), float_seqs=("taus",))


@register
@dataclasses.dataclass(frozen=True)
class ProcedureSizes:
    """Fresh-noise GD at the authors' learning rate ``lr_factor``·d/Δ_t against its mean trajectory: one draw of
    (W, X), ``noise_seeds`` independent fresh-noise runs on it, the floor predicted with ``draws`` Monte Carlo
    gradients per history node at ``checks`` checkpoints (docs/theory.md §7.2)."""

    d: int
    psi_p: float
    psi_n: float
    t: float
    steps: int
    lr_factor: float
    n_log: int
    draws: int
    checks: int
    noise_seeds: tuple = (0,)

    def __post_init__(self):
        _validate(self, ints=("d", "steps", "n_log", "checks"), floats=("psi_p", "psi_n", "t", "lr_factor"),
                  seed_seqs=("noise_seeds",))
        object.__setattr__(self, "draws", _checks.integer("draws", self.draws, 0))


@register
@dataclasses.dataclass(frozen=True)
class Preset:
    """The sizes of every figure; ``name`` is recorded with each figure and a report never mixes two names."""

    name: str
    ladder: tuple
    spectrum: SpectrumSizes
    learning_curves: CurvesSizes
    min_score: MinScoreSizes
    sigma_x: SigmaXSizes
    adam: AdamSizes
    scaling: ScalingSizes
    heatmap: HeatmapSizes
    phase: PhaseSizes
    procedure: ProcedureSizes

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "ladder", tuple(self.ladder))
        if not self.ladder or not all(isinstance(L, Ladder) for L in self.ladder):
            raise ValueError("ladder must be a non-empty sequence of Ladder")

    def sizes(self, figure: str):
        """The sizes ``figure`` is planned from."""
        _check_figure(figure)
        if figure == "finite_size_scaling":
            return self.ladder
        if figure == "phase":
            return (self.heatmap, self.phase)
        return getattr(self, figure)


PRESETS: dict[str, Preset] = {
    "full": Preset(
        "full",
        ladder=(Ladder((16, 24, 32, 48, 64, 100), 64.0, (4.0, 8.0, 16.0, 32.0), 0.1, (0, 1, 2), (3, 4),
                       full_seeds_at=(32,)),
                Ladder((16, 24, 32, 48, 64, 100), 64.0, (8.0,), 0.01, (0, 1, 2), (3, 4))),
        spectrum=SpectrumSizes(64, 64.0, (8.0, 32.0), 0.01, (0, 1, 2, 3, 4)),
        learning_curves=CurvesSizes(64, 64.0, (4.0, 8.0, 16.0, 32.0), 0.1, (0, 1, 2, 3, 4)),
        min_score=MinScoreSizes(64, 32.0, (1.0, 2.0, 4.0, 8.0, 16.0, 32.0), 0.01, (0, 1, 2, 3, 4)),
        sigma_x=SigmaXSizes(32, 64.0, (4.0, 8.0, 16.0, 32.0), 0.1, (0.5, 2.0), (0, 1, 2, 3, 4)),
        adam=AdamSizes(16, 32.0, (2.0, 4.0, 8.0, 16.0), 0.1, 1e-3, 60000, 0.3, (0, 1, 2, 3, 4)),
        scaling=ScalingSizes(8, 2048, (12, 16, 24, 32, 64, 128, 256), 0.1, (0, 1, 2, 3, 4), 64,
                             (512, 1024, 2048)),
        heatmap=HeatmapSizes(12, (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0), (4.0, 8.0, 16.0, 32.0, 64.0, 128.0), 0.1,
                             (1e3, 1e4)),
        phase=PhaseSizes((1e2, 1e3, 1e4, 1e5), 0.1),
        procedure=ProcedureSizes(32, 64.0, 8.0, 0.1, 20000, 1e-2, 40, 64, 6, tuple(range(8)))),
    "quick": Preset(
        "quick",
        ladder=(Ladder((8, 12, 16), 64.0, (4.0, 8.0), 0.1, (0, 1, 2), (3, 4), full_seeds_at=(12,)),),
        spectrum=SpectrumSizes(16, 64.0, (8.0, 32.0), 0.01, (0, 1, 2, 3, 4)),
        learning_curves=CurvesSizes(16, 64.0, (4.0, 8.0), 0.1, (0, 1, 2, 3, 4)),
        min_score=MinScoreSizes(16, 32.0, (1.0, 2.0, 4.0, 8.0, 16.0), 0.01, (0, 1, 2, 3, 4)),
        sigma_x=SigmaXSizes(12, 64.0, (4.0, 8.0, 16.0), 0.1, (0.5, 2.0), (0, 1, 2, 3, 4)),
        adam=AdamSizes(8, 32.0, (2.0, 4.0, 8.0), 0.1, 1e-2, 8000, 0.3, (0, 1, 2, 3, 4)),
        scaling=ScalingSizes(8, 1024, (12, 16, 24, 32, 48, 64), 0.1, (0, 1, 2, 3, 4), 32, (256, 512, 1024)),
        heatmap=HeatmapSizes(8, (1.0, 2.0, 8.0, 32.0), (4.0, 16.0, 64.0), 0.1, (1e3, 1e4)),
        phase=PhaseSizes((1e2, 1e3, 1e4, 1e5), 0.1),
        procedure=ProcedureSizes(16, 16.0, 4.0, 0.1, 2000, 1e-2, 16, 64, 4, tuple(range(5)))),
}


# ----------------------------------------------------------------------------------------------
# units


@register
@dataclasses.dataclass(frozen=True)
class DensityUnit:
    """The theory's density ρ(λ) on a log grid (Theorem 3.1; with the finite-d correction when ``d`` is set)."""

    t: float
    psi_p: float
    psi_n: float
    atoms: Optional[tuple] = None
    d: Optional[int] = None
    grid: tuple = (1e-3, 1e3, 600)


@register
@dataclasses.dataclass(frozen=True, eq=False)
class Density:
    lambdas: np.ndarray
    rho: np.ndarray
    edges: list
    atom_location: float
    atom_weight: float
    labels: dict


@register
@dataclasses.dataclass(frozen=True)
class TrainingUnit:
    """Iterative training on one problem: Adam on the exact loss, or gradient descent with fresh noise
    at the authors' learning rate (with the exact mean trajectory and the predicted fluctuation floor)."""

    config: RFConfig
    optimizer: str = "adam"
    noise: str = "exact"
    eta: float = 1e-2
    steps: int = 10000
    n_log: int = 60
    draws: int = 0          # Monte Carlo draws per history node for the fluctuation floor (0: none)
    checks: int = 6         # checkpoints where the floor is predicted
    noise_seed: int = 0     # the fresh-noise (and Adam) stream on the config's draw of (W, X)


@register
@dataclasses.dataclass(frozen=True, eq=False)
class TrainingOutcome:
    """Logged curves of the iterative run; for gradient descent also the exact mean trajectory at the same
    steps (``mean``, discrete GD per mode) and the predicted fluctuation floor."""

    curves: Curves
    step: np.ndarray
    mean: Optional[Curves] = None
    floor: Optional[FloorPrediction] = None


def run_density(unit: DensityUnit) -> Density:
    lo, hi, k = unit.grid
    atoms = [tuple(a) for a in unit.atoms] if unit.atoms else None
    res = solve_spectrum(ACTIVATION, unit.t, unit.psi_p, unit.psi_n, atoms=atoms, d=unit.d,
                         lambdas=np.geomspace(lo, hi, int(k)))
    c = ge_constants(ACTIVATION, unit.t, float(res.params.sigma_x2))
    labels = classify_bulks(res.edges, res.bulk_masses, res.params, c.mu1, c.Gamma2, unit.t) if res.edges else {}
    return Density(res.lambdas, res.rho, [list(map(float, e)) for e in res.edges], float(res.atom_location),
                   float(res.atom_weight), labels)


def run_training(unit: TrainingUnit) -> TrainingOutcome:
    """Train (key ``stream_key(seed, "training", noise_seed)``); for gradient descent add the exact mean trajectory
    and, with ``draws``, the fluctuation floor at ``checks`` log-spaced checkpoints, its noise covariance evaluated
    along the mean trajectory's history (key ``stream_key(seed, "fluctuations")``,
    :func:`rfdiff.fluctuations.predict_floor_history`, docs/theory.md §7.2)."""
    cfg = unit.config
    prob = build_problem(cfg)
    tc = training.TrainConfig(optimizer=unit.optimizer, eta=unit.eta, tau_max=unit.steps * unit.eta / cfg.d**2,
                              n_log=unit.n_log, noise=unit.noise, log_chunk=20)
    res = training.train_problem(stream_key(cfg.seed, "training", unit.noise_seed), tc, prob)
    if unit.optimizer != "gd":
        return TrainingOutcome(res.curves, res.step)
    dyn = dynamics.from_problem(prob)
    mean = dyn.curves(res.curves.tau, eta=unit.eta)
    if not unit.draws:
        return TrainingOutcome(res.curves, res.step, mean)
    idx = np.unique(np.round(np.geomspace(1, res.step.size, unit.checks)).astype(int) - 1)
    floor = fluctuations.predict_floor_history(stream_key(cfg.seed, "fluctuations"), dyn, prob.pop.U, prob.W, prob.X,
                                               res.curves.tau[idx], res.step[idx], unit.eta, unit.draws,
                                               cfg.activation)
    return TrainingOutcome(res.curves, res.step, mean, floor)


def run_unit(unit):
    """The unit function of the figures sweep: dispatches on the unit's type."""
    if isinstance(unit, Study):
        return run_study(unit)
    if isinstance(unit, DensityUnit):
        return run_density(unit)
    if isinstance(unit, TrainingUnit):
        return run_training(unit)
    raise ValueError(f"unit must be a Study, DensityUnit or TrainingUnit, got {type(unit).__name__}")


# ----------------------------------------------------------------------------------------------
# labels and labelled results


@register
@dataclasses.dataclass(frozen=True)
class Label:
    """The name of one unit of a figure's plan: its ``role`` and the coordinates that tell it apart (None: not one)."""

    role: str
    t: Optional[float] = None
    d: Optional[int] = None
    p: Optional[int] = None
    n: Optional[int] = None
    psi_p: Optional[float] = None
    psi_n: Optional[float] = None
    seed: Optional[int] = None
    data: Optional[str] = None
    sigma_x: Optional[float] = None

    def __str__(self) -> str:
        coords = ", ".join(f"{f.name}={getattr(self, f.name):g}" if isinstance(getattr(self, f.name), float)
                           else f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)[1:]
                           if getattr(self, f.name) is not None)
        return f"{self.role}({coords})"


class NotPlanned(KeyError):
    """A label that the figure's plan did not produce."""

    def __str__(self) -> str:
        return str(self.args[0])


class MissingResult(KeyError):
    """A planned unit without a result (it failed, or was not run)."""

    def __init__(self, figure: str, label: Label):
        super().__init__(figure, label)
        self.figure, self.label = figure, label

    def __str__(self) -> str:
        return f"{self.figure}: no result for {self.label}"


class Results(Mapping):
    """The results of one figure's plan, by label: reading a label not in the plan raises :class:`NotPlanned`, a
    planned label without a result :class:`MissingResult` (never a silent skip)."""

    def __init__(self, figure: str, plan_: Mapping[Label, Any], results: Mapping[Label, Any]):
        self.figure = _check_figure(figure)
        self._plan = dict(plan_)
        extra = [lab for lab in results if lab not in self._plan]
        if extra:
            raise NotPlanned(f"{figure}: results for labels outside the plan: {', '.join(map(str, extra[:3]))}")
        self._results = {lab: r for lab, r in results.items() if r is not None}

    def __getitem__(self, label: Label):
        if label not in self._plan:
            raise NotPlanned(f"{self.figure}: {label} is not in the plan")
        if label not in self._results:
            raise MissingResult(self.figure, label)
        return self._results[label]

    def __iter__(self) -> Iterator[Label]:
        return iter(self._plan)

    def __len__(self) -> int:
        return len(self._plan)

    def unit(self, label: Label):
        """The planned unit of ``label``."""
        if label not in self._plan:
            raise NotPlanned(f"{self.figure}: {label} is not in the plan")
        return self._plan[label]

    def labels(self, role: str, **coords) -> list[Label]:
        """The planned labels of ``role`` whose coordinates equal ``coords``, in plan order."""
        return [lab for lab in self._plan if lab.role == role and all(getattr(lab, k) == v for k, v in coords.items())]

    @property
    def missing(self) -> list[Label]:
        """Planned labels without a result."""
        return [lab for lab in self._plan if lab not in self._results]


# ----------------------------------------------------------------------------------------------
# plans


def _study(d: int, p: int, n: int, t: float, seed: int, *, model: str = "exact", theory: bool = True,
           sigma_x: float = 1.0, data: str = "isotropic", atoms=None) -> Study:
    """A :class:`Study` with the figure defaults (τ ∈ [1e-2, 1e8], tanh, Mehler tolerance 1e-8), its route resolved
    (:func:`rfdiff.study.resolve`) so that its cache key names the route computed."""
    spec = DataSpec(kind=data, sigma_x=sigma_x, atoms=tuple(tuple(a) for a in atoms) if atoms else None)
    cfg = RFConfig(d=int(d), p=int(p), n=int(n), t=float(t), data=spec, seed=int(seed), n_emp=2048,
                   activation=ACTIVATION)
    return Study(cfg, resolve(cfg, StudyOptions(taus=TAUS, model=model, theory=theory)))


def _plan_ladder(P: Preset) -> dict:
    out = {}
    for L in P.ladder:
        for d in L.ds:
            for pn in L.psi_ns:
                p, n = _checks.size(L.psi_p, d), _checks.size(pn, d)
                for s in L.seeds_at(d):
                    first = s == L.seeds_at(d)[0] and (L.theory == "all_d" or d == max(L.ds))
                    lab = dict(t=L.t, psi_p=L.psi_p, psi_n=pn, d=d, seed=s)
                    out[Label("exact", **lab)] = _study(d, p, n, L.t, s, theory=first)
                    if s in L.seeds:           # the GE control needs no theory
                        out[Label("ge", **lab)] = _study(d, p, n, L.t, s, model="ge", theory=False)
    return out


def _plan_spectrum(P: Preset) -> dict:
    S = P.spectrum
    out = {}
    for pn in S.psi_ns:
        p, n = int(round(S.psi_p * S.d)), int(round(pn * S.d))
        for data, atoms in (("isotropic", None), ("spectrum", ATOMS_2)):
            lab = dict(t=S.t, psi_p=S.psi_p, psi_n=pn, data=data)
            for s in S.seeds:
                out[Label("study", d=S.d, seed=s, **lab)] = _study(S.d, p, n, S.t, s, data=data, atoms=atoms,
                                                                   theory=(s == S.seeds[0]))
            out[Label("density", **lab)] = DensityUnit(S.t, S.psi_p, pn, atoms, None, DENSITY_GRID)
            out[Label("density_d", d=S.d, **lab)] = DensityUnit(S.t, S.psi_p, pn, atoms, S.d, DENSITY_GRID)
    return out


def _plan_seeds(S) -> dict:
    return {Label("study", t=S.t, d=S.d, psi_p=S.psi_p, psi_n=pn, seed=s):
            _study(S.d, int(S.psi_p * S.d), int(pn * S.d), S.t, s, theory=(s == S.seeds[0]))
            for pn in S.psi_ns for s in S.seeds}


def _plan_sigma_x(P: Preset) -> dict:
    S = P.sigma_x
    return {Label("study", t=S.t, d=S.d, psi_p=S.psi_p, psi_n=pn, seed=s, sigma_x=sx):
            _study(S.d, int(S.psi_p * S.d), int(pn * S.d), S.t, s, sigma_x=sx, theory=(s == S.seeds[0]))
            for sx in S.sigma_x for pn in S.psi_ns for s in S.seeds}


def _plan_adam(P: Preset) -> dict:
    A = P.adam
    return {Label("adam", t=A.t, d=A.d, psi_p=A.psi_p, psi_n=pn, n=int(pn * A.d), seed=s):
            TrainingUnit(RFConfig(d=A.d, p=int(A.psi_p * A.d), n=int(pn * A.d), t=A.t, seed=s, n_emp=1024,
                                  activation=ACTIVATION), "adam", "exact", A.eta, A.steps, 60)
            for pn in A.psi_ns for s in A.seeds}


def _plan_scaling(P: Preset) -> dict:
    S = P.scaling
    out = {}
    for var, pairs in (("vs_n", [(S.p, n) for n in S.ns]), ("vs_p", [(p, S.n_fixed) for p in S.p_scan])):
        for p, n in pairs:
            for s in S.seeds:
                out[Label(var, t=S.t, d=S.d, p=p, n=n, seed=s)] = _study(S.d, p, n, S.t, s, theory=(s == S.seeds[0]))
    return out


def _plan_heatmap(P: Preset) -> dict:
    H = P.heatmap
    return {Label("study", t=H.t, d=H.d, psi_p=pp, psi_n=pn): _study(H.d, int(pp * H.d), int(pn * H.d), H.t, 0)
            for pp in H.psi_ps for pn in H.psi_ns}


def _plan_procedure(P: Preset) -> dict:
    R = P.procedure
    d, t = R.d, R.t
    p, n = int(R.psi_p * d), int(R.psi_n * d)
    eta = p * R.lr_factor * d / delta(t)   # the authors' lr 1e-2·d/Δ_t acts on A/√p
    lab = dict(t=t, d=d, psi_p=R.psi_p, psi_n=R.psi_n)
    cfg = RFConfig(d=d, p=p, n=n, t=t, seed=0, n_emp=2048, activation=ACTIVATION)
    out = {Label("fresh_noise_gd", seed=k, **lab):   # one (W, X); the floor predicted once, with the first noise seed
           TrainingUnit(cfg, "gd", "fresh", eta, R.steps, R.n_log, R.draws if k == R.noise_seeds[0] else 0, R.checks, k)
           for k in R.noise_seeds}
    out[Label("gradient_flow", seed=0, **lab)] = _study(d, p, n, t, 0)
    return out


# ----------------------------------------------------------------------------------------------
# reading results


def timescales_of(res: StudyResult, side: str):
    """The timescales of one side, re-read from its stored curves and spectrum by the current rule
    (:func:`rfdiff.timescales.extract`), so a cached unit never carries a stale definition."""
    s = getattr(res, side)
    c = res.config
    return extract(s.curves, res.study.options.thresholds, s.spectrum, n=c.n, p=c.p, d=c.d, t=c.t)


def _value(res: StudyResult, side: str, q: str) -> float:
    """Quantity ``q`` of one side ("simulation", "theory", "theory_d_inf") of a study result."""
    s = getattr(res, side)
    if q == "train_loss_inf":
        return float(s.limit.train_loss[-1])
    if q == "test_loss_inf":
        return math.nan if s.limit.test_loss is None else float(s.limit.test_loss[-1])
    return float(getattr(timescales_of(res, side), q))


def _theory_d_inf(res: StudyResult, q: str) -> float:
    """The d → ∞ theory value of a ladder quantity: curves-based ones from the d → ∞ theory's curves by the
    same rule; the memorisation-bulk edges from the support of Theorem 3.1 (the limit of the
    quantile rule as p → ∞)."""
    pred = res.prediction_d_inf
    if q == "lambda_mem":
        return pred.lambda_mem_support
    if q == "lambda_mem_upper":
        mem = (pred.bulk_labels or {}).get("memorisation")
        return math.nan if mem is None else pred.edges[mem][1]
    return _value(res, "theory_d_inf", q)


def _has_theory(res: StudyResult) -> bool:
    return bool(res.study.options.theory)


def _fit(points) -> PowerLawFit:
    x, y = zip(*points)
    return fit_power_law(x, y)


# ----------------------------------------------------------------------------------------------
# summaries


@register
@dataclasses.dataclass(frozen=True)
class SeedTable:
    """Per-seed values of quantities at the points ``x`` (``simulation[q][i][j]``: seed ``seeds[i]`` at ``x[j]``,
    NaN where missing or excluded by :func:`rfdiff_analysis`'s stated degenerate-point rule) and the theory's exact
    value per point (``theory[q][j]``): what the local-exponent verdicts read (docs/theory.md §6.4)."""

    x: tuple
    seeds: tuple
    simulation: dict
    theory: dict

    def local(self, q: str, side: str) -> Optional[LocalExponents]:
        """Local exponents d log q / d log x of one side ("simulation": seed means with delta-method intervals;
        "theory": exact), over the points where that side has a value; None with fewer than two."""
        y = np.asarray(self.simulation[q] if side == "simulation" else self.theory.get(q, ()), dtype=np.float64)
        if y.size == 0:
            return None
        keep = np.isfinite(y).any(axis=0) if y.ndim == 2 else np.isfinite(y)
        if keep.sum() < 2:
            return None
        x = np.asarray(self.x, dtype=np.float64)[keep]
        return local_exponents(x, y[..., keep])


def _seed_table(R: "Results", labels, x_of, quantities: dict, theory: dict) -> SeedTable:
    """A :class:`SeedTable` from ``labels``: ``x_of(label)`` the point, ``quantities[q](result)`` the simulation's
    value (or None: theory only), ``theory[q](result)`` the theory's (read from the seed that carries it)."""
    xs = sorted({x_of(lab) for lab in labels})
    seeds = sorted({lab.seed for lab in labels})
    sim = {q: [[math.nan] * len(xs) for _ in seeds] for q, f in quantities.items() if f is not None}
    th = {q: [math.nan] * len(xs) for q in theory}
    for lab in labels:
        r, j, i = R[lab], xs.index(x_of(lab)), seeds.index(lab.seed)
        for q, f in quantities.items():
            if f is not None:
                sim[q][i][j] = float(f(lab, r))
        if theory and _has_theory(r):
            for q, f in theory.items():
                th[q][j] = float(f(lab, r))
    return SeedTable(tuple(xs), tuple(seeds), {q: tuple(map(tuple, v)) for q, v in sim.items()},
                     {q: tuple(v) for q, v in th.items()})


def _sim(q):
    return lambda lab, r: _value(r, "simulation", q)


def _th(q):
    return lambda lab, r: _value(r, "theory_d_inf", q)


@register
@dataclasses.dataclass(frozen=True)
class LadderPoint:
    """One rung of a ladder: its sizes, seed and the value of each ladder quantity."""

    n: int
    d: int
    seed: int
    values: dict


@register
@dataclasses.dataclass(frozen=True)
class LadderBlock:
    """One (t, ψ_p, ψ_n) of a ladder: points and fits y = a + b n^-γ (+ c n^-2γ) per model ("exact", "ge") and
    quantity, the d → ∞ theory, and the finite-d theory per d (docs/theory.md §6.3)."""

    t: float
    psi_p: float
    psi_n: float
    points: dict
    fits: dict
    theory_d_inf: dict
    theory_finite_d: dict
    train_loss_section8: dict = dataclasses.field(default_factory=dict)


@register
@dataclasses.dataclass(frozen=True)
class LadderSummary:
    blocks: tuple


def _section8(L: Ladder, psi_n: float, ds: set) -> dict:
    """The §8 finite-d train loss (docs/theory.md §8) at the rungs with the full seeds where it is affordable:
    ``{d: (value, source)}`` (mean over the ladder's seeds' draws of X)."""
    from ..theory.finite_d import MAX_DIM_INF, finite_d_column
    out = {}
    for d in sorted(ds & ({max(L.ds)} | set(L.full_seeds_at))):
        if _checks.size(psi_n, d) * (d + 1) <= MAX_DIM_INF:
            v = finite_d_column(ACTIVATION, L.t, L.psi_p, psi_n, d, seeds=L.seeds_at(d))["train_loss_inf"]
            out[d] = (float(v.value), str(v.source))
    return out


def _summarize_ladder(P: Preset, R: Results) -> LadderSummary:
    blocks = []
    for L in P.ladder:
        for pn in L.psi_ns:
            at = dict(t=L.t, psi_p=L.psi_p, psi_n=pn)
            points = {}
            theory_inf, theory_d = {}, {}
            for model in ("exact", "ge"):
                pts = []
                for lab in R.labels(model, **at):
                    r = R[lab]
                    pts.append(LadderPoint(r.config.n, lab.d, lab.seed,
                                           {q: _value(r, "simulation", q) for q in LADDER_QUANTITIES}))
                    if model == "exact" and _has_theory(r):
                        theory_d[lab.d] = {q: _value(r, "theory", q) for q in LADDER_QUANTITIES}
                        theory_inf = {q: _theory_d_inf(r, q) for q in LADDER_QUANTITIES}
                points[model] = tuple(pts)
            fits = {q: {m: fit_finite_size([pt.n for pt in points[m]], [pt.values[q] for pt in points[m]],
                                           exponents=FINITE_SIZE_EXPONENTS[q]) for m in points}
                    for q in LADDER_QUANTITIES}
            blocks.append(LadderBlock(L.t, L.psi_p, pn, points, fits, theory_inf, theory_d,
                                      _section8(L, pn, {pt.d for pt in points["exact"]})))
    return LadderSummary(tuple(blocks))


@register
@dataclasses.dataclass(frozen=True)
class SpectrumEntry:
    """Fig. 4 at one (data, ψ_n): bulk edges and the atom at s_t² on both sides, the simulation's as means over
    the seeds with their intervals (the same rule on each draw), with the labels drawn (``study``: first seed)."""

    data: str
    psi_n: float
    theory_pop_bulk: Optional[tuple]
    simulation_pop_bulk: tuple
    theory_mem_bulk: Optional[tuple]
    simulation_mem_bulk: tuple
    theory_finite_d_mem_bulk: tuple
    atom_weight_formula: float
    atom_weight_asymptotic: float
    theory_atom_mass: float
    simulation_atom_mass: Estimate
    atom_cut: float
    theory_nonconverged: Optional[int]
    study: Label
    density: Label
    density_d: Label
    seeds: tuple = ()
    simulation_mem_bulk_per_seed: tuple = ()


@register
@dataclasses.dataclass(frozen=True)
class SpectrumSummary:
    entries: tuple

    def entry(self, data: str, psi_n: float) -> SpectrumEntry:
        for e in self.entries:
            if e.data == data and e.psi_n == psi_n:
                return e
        raise KeyError(f"no spectrum entry for data={data}, psi_n={psi_n:g}")


def _summarize_spectrum(P: Preset, R: Results) -> SpectrumSummary:
    S = P.spectrum
    out = []
    for pn in S.psi_ns:
        for data in ("isotropic", "spectrum"):
            labs = R.labels("study", psi_n=pn, data=data)
            first = next(lab for lab in labs if _has_theory(R[lab]))
            r = R[first]
            pred = r.prediction_d_inf
            lab_b = pred.bulk_labels or {}
            pop = [pred.edges[k] for k in lab_b.get("population", [])]
            mem_k = lab_b.get("memorisation")
            low = min(e[0] for e in pred.edges) if pred.edges else math.nan
            cut = math.sqrt(pred.atom_location * low) if pred.edges else math.nan  # between the atom and the first bulk
            atom_mass = lambda sp: float(sp.weights[sp.nodes < cut].sum())  # noqa: E731  the same rule on both sides
            sims = [R[lab] for lab in labs]
            per_seed = lambda f: mean_ci([f(x) for x in sims])  # noqa: E731
            coords = dict(t=first.t, psi_p=first.psi_p, psi_n=pn, data=data)
            nonconv = pred.diagnostics.get("n_nonconverged")
            out.append(SpectrumEntry(
                data, pn,
                (min(e[0] for e in pop), max(e[1] for e in pop)) if pop else None,
                (per_seed(lambda x: _value(x, "simulation", "lambda_pop")),
                 per_seed(lambda x: float(x.simulation.spectrum.nodes.max()))),
                None if mem_k is None else tuple(float(x) for x in pred.edges[mem_k]),
                (per_seed(lambda x: _value(x, "simulation", "lambda_mem")),
                 per_seed(lambda x: _value(x, "simulation", "lambda_mem_upper"))),
                (_value(r, "theory", "lambda_mem"), _value(r, "theory", "lambda_mem_upper")),
                pred.atom_weight_formula, pred.atom_weight_asymptotic, atom_mass(r.theory_d_inf.spectrum),
                per_seed(lambda x: atom_mass(x.simulation.spectrum)), cut,
                None if nonconv is None else int(nonconv),
                first, Label("density", **coords), Label("density_d", d=first.d, **coords),
                tuple(lab.seed for lab in labs),
                tuple((_value(x, "simulation", "lambda_mem"), _value(x, "simulation", "lambda_mem_upper")) for x in sims)))
    for e in out:       # the densities are drawn with the study: a missing one is an error here, not in the plot
        for lab in (e.density, e.density_d):
            R[lab]
    return SpectrumSummary(tuple(out))


@register
@dataclasses.dataclass(frozen=True)
class SeedTimescales:
    """τ_gen and τ_mem over seeds (mean with its interval)."""

    tau_gen: Estimate
    tau_mem: Estimate


COLLAPSE_FRACTIONS = (0.25, 0.5, 0.75, 0.9)
"""Fractions of the final L_gen at which the collapse of Fig. 5A/B is measured."""
RESCALINGS = ("none", "psi_n", "own_tau_mem")
"""The collapse's rescalings of τ: none (the control: what no collapse gives), τ/ψ_n (the paper's, τ_mem ∝ n) and
τ/τ_mem of each curve (zero spread at ½ by construction)."""


@register
@dataclasses.dataclass(frozen=True)
class Collapse:
    """Spread (decades, max − min of log10) across the ψ_n's of the time at which L_gen reaches each fraction of
    its final value (:func:`collapse_spread`), under each rescaling of :data:`RESCALINGS`: per seed for the
    simulation (``simulation[rescaling][fraction]``: one value per seed) and for the theory's curves
    (``theory[rescaling][fraction]``) (docs/theory.md §6.1)."""

    fractions: tuple
    simulation: dict
    theory: dict


@register
@dataclasses.dataclass(frozen=True)
class CurvesSummary:
    """Fig. 5A/B: per ψ_n the timescales over seeds; τ_gen's power law in n on both sides (a description); the
    per-seed timescales of both definitions against n (``table``, what the verdicts read); the collapse;
    ``shown``: the study drawn per ψ_n (first seed, with the theory)."""

    seeds: tuple
    per_psi_n: dict
    tau_gen_fit_simulation: PowerLawFit
    tau_gen_fit_theory: PowerLawFit
    collapse: Collapse
    shown: dict
    table: Optional[SeedTable] = None


def collapse_spread(curves: list, scale: list, fractions=COLLAPSE_FRACTIONS) -> dict:
    """Spread (max − min of log10) across curves of the rescaled time τ/scale at which each gap reaches a
    fraction of its final value; one number per fraction (the collapse of Fig. 5A/B, docs/theory.md §6.1).
    Curves without a positive final gap or scale do not take part."""
    out = {}
    for f in fractions:
        xs = []
        for c, sc in zip(curves, scale):
            gap = getattr(c, "gen_gap", None)
            if not (sc > 0) or gap is None or not gap[-1] > 0:
                continue
            x = first_crossing(c.tau, gap, f * gap[-1], upward=True)
            if math.isfinite(x):
                xs.append(math.log10(x / sc))
        out[float(f)] = float(np.ptp(xs)) if len(xs) >= 2 else math.nan
    return out


def _collapse(curves: list, psi_ns: list, tau_mem: list) -> dict:
    return {"none": collapse_spread(curves, [1.0] * len(curves)), "psi_n": collapse_spread(curves, psi_ns),
            "own_tau_mem": collapse_spread(curves, tau_mem)}


TAU_GEN_THM32 = lambda lab, r: r.prediction_d_inf.tau_gen_spectral      # noqa: E731  Theorem 3.2 (§4.8)
TAU_MEM_THM32 = lambda lab, r: r.prediction_d_inf.tau_mem_asymptotic    # noqa: E731  Theorem 3.2 (§4.8)


def _summarize_curves(P: Preset, R: Results) -> CurvesSummary:
    L = P.learning_curves
    sim_gen, th_gen, per, shown, rs = [], [], {}, {}, []
    by_seed = {s: ([], [], []) for s in L.seeds}
    for pn in L.psi_ns:
        tg, tm = [], []
        for lab in R.labels("study", psi_n=pn):
            r = R[lab]
            tg.append(_value(r, "simulation", "tau_gen"))
            tm.append(_value(r, "simulation", "tau_mem"))
            sim_gen.append((pn * L.d, tg[-1]))
            c, pns, tms = by_seed[lab.seed]
            c.append(r.simulation.curves), pns.append(pn), tms.append(tm[-1])
            if _has_theory(r):
                th_gen.append((pn * L.d, _value(r, "theory_d_inf", "tau_gen")))
                shown[pn] = lab
                rs.append(r)
        per[pn] = SeedTimescales(mean_ci(tg), mean_ci(tm))
    sims = [_collapse(*by_seed[s]) for s in L.seeds]
    sim = {k: {f: tuple(x[k][f] for x in sims) for f in COLLAPSE_FRACTIONS} for k in RESCALINGS}
    th = _collapse([r.theory_d_inf.curves for r in rs], [lab.psi_n for lab in shown.values()],
                   [_value(r, "theory_d_inf", "tau_mem") for r in rs])
    qs = ("tau_gen", "tau_gen_spectral", "tau_mem", "tau_mem_spectral")
    table = _seed_table(R, R.labels("study"), lambda lab: int(round(lab.psi_n * L.d)), {q: _sim(q) for q in qs},
                        {**{q: _th(q) for q in qs}, "tau_gen_thm32": TAU_GEN_THM32, "tau_mem_thm32": TAU_MEM_THM32})
    return CurvesSummary(tuple(L.seeds), per, _fit(sim_gen), _fit(th_gen), Collapse(COLLAPSE_FRACTIONS, sim, th),
                         shown, table)


@register
@dataclasses.dataclass(frozen=True)
class SeedSpread:
    """A seed mean with its interval and the seeds' standard deviation."""

    simulation: Estimate
    sd: float


@register
@dataclasses.dataclass(frozen=True)
class MinScoreSummary:
    """Fig. 13: min_τ E_score per ψ_n over seeds, its power law in ψ_n on both sides, and the points (ψ_n, value)."""

    per_psi_n: dict
    fit_simulation: PowerLawFit
    fit_theory: PowerLawFit
    points_simulation: tuple
    points_theory: tuple
    table: Optional[SeedTable] = None


def _summarize_min_score(P: Preset, R: Results) -> MinScoreSummary:
    sim, th, per = [], [], {}
    for pn in P.min_score.psi_ns:
        vals = []
        for lab in R.labels("study", psi_n=pn):
            r = R[lab]
            vals.append(_value(r, "simulation", "min_score_error"))
            sim.append((pn, vals[-1]))
            if _has_theory(r):
                th.append((pn, _value(r, "theory_d_inf", "min_score_error")))
        per[pn] = SeedSpread(mean_ci(vals), float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan)
    table = _seed_table(R, R.labels("study"), lambda lab: lab.psi_n, {"min_score_error": _sim("min_score_error")},
                        {"min_score_error": _th("min_score_error")})
    return MinScoreSummary(per, _fit(sim), _fit(th), tuple(sim), tuple(th), table)


@register
@dataclasses.dataclass(frozen=True)
class ExponentFits:
    """Power-law fits of one quantity on both sides (simulation; d → ∞ theory by the same rule)."""

    simulation: PowerLawFit
    theory: PowerLawFit


@register
@dataclasses.dataclass(frozen=True)
class SigmaXSummary:
    """Fig. 12: per σ_x the fits τ_mem ∝ ψ_n^a; ``shown[σ_x][ψ_n]``: the study drawn (first seed)."""

    per_sigma_x: dict
    shown: dict
    tables: Optional[dict] = None


def _summarize_sigma_x(P: Preset, R: Results) -> SigmaXSummary:
    S = P.sigma_x
    per, shown = {}, {}
    for sx in S.sigma_x:
        sim, th = [], []
        shown[sx] = {}
        for lab in R.labels("study", sigma_x=sx):
            r = R[lab]
            sim.append((lab.psi_n, _value(r, "simulation", "tau_mem")))
            if _has_theory(r):
                th.append((lab.psi_n, _value(r, "theory_d_inf", "tau_mem")))
            if lab.seed == S.seeds[0]:
                shown[sx][lab.psi_n] = lab
        per[sx] = ExponentFits(_fit(sim), _fit(th))
    tables = {sx: _seed_table(R, R.labels("study", sigma_x=sx), lambda lab: lab.psi_n, {"tau_mem": _sim("tau_mem")},
                              {"tau_mem": _th("tau_mem"), "tau_mem_thm32": TAU_MEM_THM32}) for sx in S.sigma_x}
    return SigmaXSummary(per, shown, tables)


@register
@dataclasses.dataclass(frozen=True)
class AdamSummary:
    """Fig. 15: Adam steps to L_gen = ``gap_fraction`` of its final value per n over seeds (``per_n``, and per seed in
    ``table``: "steps_fraction"; "steps_level" the steps to the absolute ``gap_level``, "level_fraction" that level as
    a fraction of the final gap) and the power-law fit of the fraction steps in n (a description);
    ``shown[n]``: the run drawn (first seed)."""

    per_n: dict
    fit_steps_vs_n: PowerLawFit
    gap_level: float
    shown: dict
    gap_fraction: float = 0.5
    table: Optional[SeedTable] = None


def _summarize_adam(P: Preset, R: Results) -> AdamSummary:
    A = P.adam
    pts, per, shown = [], {}, {}
    rule = lambda r: tm_rule(r.step.astype(float), r.curves.gen_gap, A.gap_fraction, A.gap_level)  # noqa: E731
    for pn in A.psi_ns:
        vals = []
        for lab in R.labels("adam", psi_n=pn):
            steps_at = rule(R[lab])["tau_mem"]
            vals.append(steps_at)
            pts.append((lab.n, steps_at))
            shown.setdefault(lab.n, lab)
        per[int(pn * A.d)] = mean_ci(vals)
    table = _seed_table(R, R.labels("adam"), lambda lab: lab.n,
                        {"steps_fraction": lambda lab, r: rule(r)["tau_mem"],
                         "steps_level": lambda lab, r: rule(r)["tau_mem_abs"],
                         "level_fraction": lambda lab, r: A.gap_level / float(r.curves.gen_gap[-1])}, {})
    return AdamSummary(per, _fit(pts), A.gap_level, shown, A.gap_fraction, table)


@register
@dataclasses.dataclass(frozen=True)
class ScalingFits:
    """Fits of τ_mem and τ_gen against one size on both sides (None with fewer than two points) and the points."""

    tau_mem_sim: Optional[PowerLawFit]
    tau_gen_sim: Optional[PowerLawFit]
    tau_mem_theory: Optional[PowerLawFit]
    tau_gen_theory: Optional[PowerLawFit]
    points: dict


@register
@dataclasses.dataclass(frozen=True)
class ScalingSummary:
    """Timescales against n at fixed p (``vs_n``) and against p at fixed n (``vs_p``)."""

    vs_n: ScalingFits
    vs_p: ScalingFits
    psi_p_over_psi_n_min: float
    d: int
    p: int
    table_vs_n: Optional[SeedTable] = None


def _summarize_scaling(P: Preset, R: Results) -> ScalingSummary:
    S = P.scaling
    out = {}
    for var in ("vs_n", "vs_p"):
        pts = {k: [] for k in ("tau_mem_sim", "tau_gen_sim", "tau_mem_theory", "tau_gen_theory")}
        for lab in R.labels(var):
            r = R[lab]
            x = lab.n if var == "vs_n" else lab.p
            memorises = lab.n > S.d                # the stated degenerate-point rule (n ≤ d: no memorisation bulk)
            if memorises:
                pts["tau_mem_sim"].append((x, _value(r, "simulation", "tau_mem")))
            pts["tau_gen_sim"].append((x, _value(r, "simulation", "tau_gen")))
            if _has_theory(r):
                if memorises:
                    pts["tau_mem_theory"].append((x, _value(r, "theory_d_inf", "tau_mem")))
                pts["tau_gen_theory"].append((x, _value(r, "theory_d_inf", "tau_gen")))
        fits = {k: (_fit(v) if len(v) >= 2 else None) for k, v in pts.items()}
        out[var] = ScalingFits(**fits, points={k: tuple(v) for k, v in pts.items()})
    def masked(q, side):            # the stated degenerate-point rule (n ≤ d: no memorisation bulk) on both sides
        return lambda lab, r: _value(r, side, q) if not (q.startswith("tau_mem") and lab.n <= S.d) else math.nan
    qs = ("tau_mem", "tau_mem_spectral", "tau_gen", "tau_gen_spectral")
    table = _seed_table(R, R.labels("vs_n"), lambda lab: lab.n, {q: masked(q, "simulation") for q in qs},
                        {**{q: masked(q, "theory_d_inf") for q in qs}, "tau_gen_thm32": TAU_GEN_THM32,
                         "tau_mem_thm32": TAU_MEM_THM32})
    return ScalingSummary(out["vs_n"], out["vs_p"], S.p / max(S.ns), S.d, S.p, table)


@register
@dataclasses.dataclass(frozen=True)
class HeatmapCell:
    """One (ψ_n, ψ_p) of the grid: L_gen at the heatmap's and the phase diagram's times, the final gap, τ_mem."""

    psi_n: float
    psi_p: float
    gap_at: dict
    final_gap: float
    tau_mem_sim: float
    tau_mem_theory: float


@register
@dataclasses.dataclass(frozen=True, eq=False)
class HeatmapSummary:
    """Fig. 5C: the grid, and Theorem 3.2's τ_mem on a fine (ψ_p, ψ_n) grid (``tau_mem_asymptotic[i, j]`` at
    ``psi_p[i]``, ``psi_n[j]``) for the boundary τ = τ_mem."""

    cells: tuple
    psi_n: np.ndarray
    psi_p: np.ndarray
    tau_mem_asymptotic: np.ndarray


def _cells(P: Preset, R: Results) -> tuple:
    H = P.heatmap
    out = []
    for lab in R.labels("study"):
        r = R[lab]
        c = r.simulation.curves
        out.append(HeatmapCell(lab.psi_n, lab.psi_p, {tau: float(np.interp(np.log(tau), np.log(c.tau), c.gen_gap))
                                                      for tau in sorted(set(H.taus) | set(P.phase.taus))},
                               float(c.gen_gap[-1]), _value(r, "simulation", "tau_mem"),
                               _value(r, "theory_d_inf", "tau_mem")))
    return tuple(out)


def _summarize_heatmap(P: Preset, R: Results) -> HeatmapSummary:
    H = P.heatmap
    pn = np.geomspace(min(H.psi_ns) / 1.5, max(H.psi_ns) * 1.5, 200)
    pp = np.geomspace(min(H.psi_ps) / 1.5, max(H.psi_ps) * 1.5, 200)
    return HeatmapSummary(_cells(P, R), pn, pp, tau_mem_asymptotic(ACTIVATION, H.t, pp[:, None], pn[None, :]))


MEMORISATION, DYNAMICAL, ARCHITECTURAL = 0, 1, 2
"""Phases: memorisation (τ ≥ τ_mem), dynamical regularisation (τ < τ_mem), architectural (no gap / n ≥ p)."""


def simulation_phase(final_gap: float, tau_mem: float, tau: float, gap_thr: float) -> int:
    """The simulation's phase at time τ: architectural when the final gap is below ``gap_thr``, else
    dynamical regularisation before τ_mem and memorisation after (docs/theory.md §6.1)."""
    if final_gap < gap_thr:
        return ARCHITECTURAL
    return DYNAMICAL if not tau >= tau_mem else MEMORISATION


def theory_phase(psi_n: float, psi_p: float, tau: float, tau_mem: float) -> int:
    """The theory's phase at time τ: architectural when ψ_n ≥ ψ_p, else dynamical regularisation before τ_mem."""
    if psi_n >= psi_p:
        return ARCHITECTURAL
    return DYNAMICAL if tau < tau_mem else MEMORISATION


@register
@dataclasses.dataclass(frozen=True)
class PhaseSummary:
    """The phase diagram: per time τ and cell (ψ_n, ψ_p) the simulation's and the theory's phase, the fraction of
    cells where they agree, and the count of each simulated phase per τ."""

    cells: tuple
    simulation: dict
    theory: dict
    agreement: float
    counts: dict


def _summarize_phase(P: Preset, R: Results) -> PhaseSummary:
    H, Ph = P.heatmap, P.phase
    cells = _cells(P, R)
    sim, th, counts = {}, {}, {}
    for tau in Ph.taus:
        sim[tau], th[tau], counts[tau] = {}, {}, {}
        for g in cells:
            s = simulation_phase(g.final_gap, g.tau_mem_sim, tau, Ph.gap_thr)
            # the theory's τ_mem read from its own curves by the simulation's rule (Theorem 3.2 where it has none)
            tm = g.tau_mem_theory if math.isfinite(g.tau_mem_theory) else \
                float(tau_mem_asymptotic(ACTIVATION, H.t, g.psi_p, g.psi_n))
            sim[tau][(g.psi_n, g.psi_p)] = s
            th[tau][(g.psi_n, g.psi_p)] = theory_phase(g.psi_n, g.psi_p, tau, tm)
            counts[tau][s] = counts[tau].get(s, 0) + 1
    pairs = [(sim[tau][k], th[tau][k]) for tau in Ph.taus for k in sim[tau]]
    agree = sum(a == b for a, b in pairs) / len(pairs) if pairs else math.nan
    return PhaseSummary(cells, sim, th, float(agree), counts)


@register
@dataclasses.dataclass(frozen=True, eq=False)
class FloorComparison:
    """At the floor's checkpoints: the measured excess of fresh-noise GD over its mean trajectory (mean over the
    noise seeds, with its 95 % t-interval ``*_lo``, ``*_hi``) and the predicted one (docs/theory.md §7.2)."""

    tau: np.ndarray
    steps: np.ndarray
    measured_train_excess: np.ndarray
    measured_train_excess_lo: np.ndarray
    measured_train_excess_hi: np.ndarray
    predicted_train_excess: np.ndarray
    measured_score_excess: np.ndarray
    measured_score_excess_lo: np.ndarray
    measured_score_excess_hi: np.ndarray
    predicted_score_excess: np.ndarray
    noise_seeds: int

    def estimate(self, which: str, i: int) -> Estimate:
        """The measured excess (``which`` = "train" or "score") at checkpoint ``i`` as an :class:`Estimate`."""
        m = getattr(self, f"measured_{which}_excess")
        return Estimate(float(m[i]), float(getattr(self, f"measured_{which}_excess_lo")[i]),
                        float(getattr(self, f"measured_{which}_excess_hi")[i]), 0.95, self.noise_seeds,
                        f"mean over {self.noise_seeds} seeds, t-interval")


@register
@dataclasses.dataclass(frozen=True, eq=False)
class ProcedureSummary:
    """Fresh-noise GD against the exact mean trajectory over the noise seeds: the relative train excess over τ
    (mean over seeds), the minimal score errors (fresh: mean over seeds with its interval), the floor (None
    without Monte Carlo draws) and the gradient-flow study's minimal score error."""

    tau: np.ndarray
    relative_train_excess: np.ndarray
    max_relative_train_excess: float
    min_relative_train_excess_late: float
    min_score_error_fresh: Estimate
    min_score_error_mean: float
    eta: float
    steps: int
    floor: Optional[FloorComparison]
    gradient_flow_min_score_error: float
    training: Label
    noise_seeds: tuple = ()


def _summarize_procedure(P: Preset, R: Results) -> ProcedureSummary:
    labs, lab_st = R.labels("fresh_noise_gd"), R.labels("gradient_flow")[0]
    runs, st = [R[lab] for lab in labs], R[lab_st]
    lab_tr = next(lab for lab in labs if R.unit(lab).draws)
    tr, unit = R[lab_tr], R.unit(lab_tr)
    c, m = tr.curves, tr.mean                       # one (W, X): the mean trajectory is the same for every noise seed
    train = np.array([r.curves.train_loss for r in runs])
    rel = (train.mean(axis=0) - m.train_loss) / m.train_loss
    floor = None
    if unit.draws:
        f = tr.floor
        j = np.searchsorted(c.tau, f.tau)
        ests = {}
        for which, mean_curve, pred in (("train", m.train_loss, f.train_excess), ("score", m.score_error, f.score_excess)):
            ex = [mean_ci([float(getattr(r.curves, "train_loss" if which == "train" else "score_error")[jj] -
                                 mean_curve[jj]) for r in runs]) for jj in j]
            ests[which] = (np.array([e.value for e in ex]), np.array([e.lo for e in ex]), np.array([e.hi for e in ex]),
                           np.asarray(pred))
        floor = FloorComparison(f.tau, f.steps, *ests["train"], *ests["score"], len(runs))
    return ProcedureSummary(c.tau, rel, float(np.max(rel)), float(np.min(rel[c.tau >= c.tau[-1] / 100])),
                            mean_ci([float(np.min(r.curves.score_error)) for r in runs]), float(np.min(m.score_error)),
                            unit.eta, unit.steps, floor, _value(st, "simulation", "min_score_error"), lab_tr,
                            tuple(lab.seed for lab in labs))


# ----------------------------------------------------------------------------------------------
# the figures


@dataclasses.dataclass(frozen=True)
class _Figure:
    plan: Callable[[Preset], dict]
    summarize: Callable[[Preset, Results], Any]


_FIGURES = {
    "finite_size_scaling": _Figure(_plan_ladder, _summarize_ladder),
    "spectrum": _Figure(_plan_spectrum, _summarize_spectrum),
    "learning_curves": _Figure(lambda P: _plan_seeds(P.learning_curves), _summarize_curves),
    "min_score": _Figure(lambda P: _plan_seeds(P.min_score), _summarize_min_score),
    "sigma_x": _Figure(_plan_sigma_x, _summarize_sigma_x),
    "adam": _Figure(_plan_adam, _summarize_adam),
    "scaling": _Figure(_plan_scaling, _summarize_scaling),
    "heatmap": _Figure(_plan_heatmap, _summarize_heatmap),
    "phase": _Figure(_plan_heatmap, _summarize_phase),
    "procedure": _Figure(_plan_procedure, _summarize_procedure),
}
assert tuple(_FIGURES) == FIGURES


def _check_figure(figure) -> str:
    if figure not in _FIGURES:
        raise ValueError(f"figure must be one of {', '.join(FIGURES)}, got {figure!r}")
    return figure


def _check_preset(preset) -> Preset:
    if not isinstance(preset, Preset):
        raise ValueError(f"preset must be a Preset (e.g. PRESETS['quick']), got {type(preset).__name__}")
    return preset


def plan(figure: str, preset: Preset) -> dict:
    """``{Label: unit}``: every unit figure ``figure`` needs at the sizes of ``preset``, each under its label."""
    return _FIGURES[_check_figure(figure)].plan(_check_preset(preset))


def summarize(figure: str, preset: Preset, results: Results):
    """The typed summary of ``figure`` (key numbers with their intervals) from its labelled results.

    ``results`` is the :class:`Results` of this figure's :func:`plan`; a planned unit without a result
    raises :class:`MissingResult` naming its label.
    """
    if not isinstance(results, Results) or results.figure != _check_figure(figure):
        raise ValueError(f"results must be the Results of figure {figure!r}")
    return _FIGURES[figure].summarize(_check_preset(preset), results)
