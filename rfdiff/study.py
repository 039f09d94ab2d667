"""One unit of work, from a configuration to simulation and theory side by side (docs/theory.md §3, §4, §6).

:func:`run` is the whole pipeline of the main job and of every sweep unit: draw W and X
(:func:`rfdiff.model.draw`, the only place they are drawn), build the exact matrices, solve the
dynamics (the Krylov route by default, the dense eigendecomposition on request), evaluate the
curves on the τ grid, compute the spectrum of U, the theory (finite-d and d → ∞), and read the
timescales off both sides by the same rules (:func:`rfdiff.timescales.extract`). It returns a
:class:`StudyResult`; :func:`run_study` is the same call on a :class:`Study` (what sweeps cache).

Routes (``method``):

* ``"dense"`` — U formed and fully eigendecomposed; curves in its eigenbasis; spectrum exact.
* ``"lanczos"`` — U formed; curves from block Lanczos in the Ritz basis (adaptive, a-posteriori
  change below ``lanczos_tol``); spectrum from the eigenvalues of U alone (LAPACK, no vectors)
  up to p = 8192 on CPU, by stochastic Lanczos quadrature beyond.
* ``"streamed"`` — neither U nor Ũ is formed (their Mehler rows are streamed through every
  product); spectrum by stochastic Lanczos quadrature. For p beyond memory.
* ``"auto"`` — ``"dense"`` up to p = 3000 on CPU (and on an accelerator while it fits), then
  ``"lanczos"`` while U fits in memory, then ``"streamed"``. The Krylov basis that resolves the
  curves to 1e-8 holds about half of p at ψ_p = 64 (the spectrum of U has p − n − d eigenvalues
  spread around s_t² that V sees; measured 28 blocks of 64 at p = 4096), so with few blocks
  (p/(2d) > ``lanczos_max_steps``, small d) one eigendecomposition is the route.

``model="ge"`` replaces the exact model by its Gaussian equivalent on the same W and X
(:func:`rfdiff.theory.ge_dynamics`): the control whose finite-size correction should vanish.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Callable, Optional

import jax
import numpy as np

from . import dynamics, lanczos
from ._util import check_positive, check_positive_int
from .io import device_memory
from .model import RFConfig, RFProblem, build_problem, data_law
from .model import draw
from .theory import ge_dynamics, predict
from .results import CURVE_FIELDS, Curves, Prediction, Spectrum, Thresholds, Timescales, register
from .timescales import extract

__all__ = ["TauGrid", "StudyOptions", "Study", "Side", "StudyResult", "run", "run_study", "memory_estimate",
           "available_memory", "choose_method", "theory_warnings", "METHODS", "MODELS", "THEORY_MIN_D"]

METHODS = ("auto", "lanczos", "dense", "streamed")
MODELS = ("exact", "ge")
SPECTRA = ("auto", "exact", "slq")
THEORY_MIN_D = 8           # below it the d → ∞ theory is not a meaningful comparison (a warning is recorded)
EXACT_SPECTRUM_MAX_P = 8192  # CPU: eigenvalues of U up to this p (O(p³)); SLQ beyond
DENSE_MAX_P = 3000           # CPU: the "auto" route eigendecomposes U up to this p, then Krylov


@register
@dataclasses.dataclass(frozen=True)
class TauGrid:
    """``n_tau`` log-spaced training times from ``tau_min`` to ``tau_max`` (docs/theory.md §1.4)."""

    tau_min: float = 0.1
    tau_max: float = 1e7
    n_tau: int = 161

    def __post_init__(self):
        check_positive("tau_min", self.tau_min)
        check_positive("tau_max", self.tau_max)
        if not self.tau_max > self.tau_min:
            raise ValueError(f"tau_max must be > tau_min, got tau_min={self.tau_min!r}, tau_max={self.tau_max!r}")
        n = check_positive_int("n_tau", self.n_tau)
        if n < 2:
            raise ValueError(f"n_tau must be >= 2, got {self.n_tau!r}")
        object.__setattr__(self, "tau_min", float(self.tau_min))
        object.__setattr__(self, "tau_max", float(self.tau_max))
        if self.tau_min < 1e-300:
            raise ValueError(f"tau_min must be >= 1e-300, got {self.tau_min!r}")
        if self.tau_max > 1e300:
            raise ValueError(f"tau_max must be <= 1e300, got {self.tau_max!r}")
        if not np.all(np.diff(self.values()) > 0):
            raise ValueError(f"n_tau is too large: {n} log-spaced points between {self.tau_min!r} and "
                             f"{self.tau_max!r} are not distinct in float64 (use fewer points or a wider range)")

    def values(self) -> np.ndarray:
        """The grid: ``n_tau`` log-spaced points with both ends exact."""
        return np.geomspace(self.tau_min, self.tau_max, self.n_tau)


@register
@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """Everything beyond the model that changes a result: τ grid, route, GD step, timescale rule, theory, solver sizes."""

    taus: TauGrid = TauGrid()
    model: str = "exact"                      # "exact" model, or its Gaussian equivalent "ge" on the same W, X
    method: str = "auto"
    eta: Optional[float] = None               # discrete GD step (None: gradient flow)
    thresholds: Thresholds = Thresholds()
    theory: bool = True
    spectrum: str = "auto"                    # "exact" eigenvalues, "slq", or auto (exact when U is formed)
    lanczos_tol: float = 1e-8
    lanczos_max_steps: int = 64
    slq_probes: int = 16
    slq_steps: int = 80

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.spectrum not in SPECTRA:
            raise ValueError(f"spectrum must be one of {', '.join(SPECTRA)}, got {self.spectrum!r}")
        if self.eta is not None:
            object.__setattr__(self, "eta", check_positive("eta", self.eta))
        check_positive("lanczos_tol", self.lanczos_tol)
        for name in ("lanczos_max_steps", "slq_probes", "slq_steps"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.theory, bool):
            raise ValueError(f"theory must be a bool, got {self.theory!r}")


@register
@dataclasses.dataclass(frozen=True)
class Study:
    """One unit of work: a model and the options of its study (hashed whole for caching)."""

    config: RFConfig = RFConfig()
    options: StudyOptions = StudyOptions()


@register
@dataclasses.dataclass(frozen=True, eq=False)
class Side:
    """What one side says: ``curves`` on the τ grid, ``spectrum`` of U, ``timescales`` read from both, and
    ``limit``: the curves at τ = ∞ (one point)."""

    curves: Curves
    spectrum: Optional[Spectrum]
    timescales: Timescales
    limit: Optional[Curves] = None


@register
@dataclasses.dataclass(frozen=True, eq=False)
class StudyResult:
    """Simulation and theory of one :class:`Study`, the same fields on every side.

    ``theory``: Theorem 3.1 with the finite-d correction at the simulated d (curves: train loss
    finite-d, test loss and score error d → ∞); ``theory_d_inf``: everything as d → ∞.
    ``prediction``/``prediction_d_inf``: the theory's spectral quantities (:class:`Prediction`,
    curves and spectrum moved to the sides). ``diagnostics``: route, Mehler orders and errors,
    Lanczos convergence, memory; ``warnings``: why the theory column may not be valid here;
    ``timings``: seconds per stage.
    """

    study: Study
    simulation: Side
    theory: Optional[Side] = None
    theory_d_inf: Optional[Side] = None
    prediction: Optional[Prediction] = None
    prediction_d_inf: Optional[Prediction] = None
    diagnostics: dict = dataclasses.field(default_factory=dict)
    warnings: tuple = ()
    timings: dict = dataclasses.field(default_factory=dict)

    @property
    def config(self) -> RFConfig:
        return self.study.config


# ----------------------------------------------------------------------------------------------
# memory and route


def memory_estimate(p: int, n: int, d: int, method: str, max_order: int = 12, basis_blocks: int = 40) -> int:
    """Peak bytes of one route (float64): p×p arrays, Mehler factors g_k (p × n), Krylov basis (p × m).

    dense: U, Ũ, eigenvectors Q, QᵀŨQ, H and temporaries ≈ 7 p² doubles; lanczos: U, Ũ, the
    eigenvalue workspace and temporaries ≈ 4 p² doubles plus the basis; streamed: no p × p array.
    """
    p, n, d = int(p), int(n), int(d)
    g = 2 * (max_order + 1) * p * n * 8 + 3 * p * n * 8
    basis = 3 * p * min(p, basis_blocks * d) * 8
    if method == "dense":
        return 7 * 8 * p * p + g
    if method == "lanczos":
        return 4 * 8 * p * p + g + basis
    if method == "streamed":
        return g + basis + 8 * 1024 * p * 2
    raise ValueError(f"method must be one of dense, lanczos, streamed, got {method!r}")


def available_memory() -> int:
    """Bytes available for one computation: 70 % of an accelerator's memory, else MemAvailable of this machine."""
    mem = device_memory()
    if mem and "bytes_limit" in mem:
        return int(0.7 * mem["bytes_limit"])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def choose_method(config: RFConfig, method: str = "auto", memory: Optional[int] = None,
                  max_steps: int = 64) -> str:
    """The route for ``config``: ``method`` itself, or under ``"auto"`` the fastest one that fits in ``memory`` (module docstring).

    Raises ValueError (naming ``p``) when even the streamed route does not fit, or when an
    explicitly requested route does not.
    """
    memory = available_memory() if memory is None else memory
    need = {m: memory_estimate(config.p, config.n, config.d, m) for m in ("lanczos", "dense", "streamed")}
    if method == "auto":
        # the Krylov basis that resolves the curves holds about half of p (module docstring), i.e. about
        # p/(2d) blocks: beyond ``max_steps`` of them (small d) one eigendecomposition is the better route
        krylov_ok = 0.5 * config.p / config.d <= max_steps
        dense_first = config.p <= DENSE_MAX_P or jax.default_backend() != "cpu" or \
            (not krylov_ok and config.p <= EXACT_SPECTRUM_MAX_P)
        for m in (("dense",) if dense_first else ()) + ("lanczos", "streamed"):
            if need[m] <= memory:
                return m
        method = "streamed"
    if need[method] > memory:
        raise ValueError(f"p={config.p}: the {method} route needs about {need[method] / 1e9:.1f} GB "
                         f"(n={config.n}, d={config.d}) but {memory / 1e9:.1f} GB are available")
    return method


def theory_warnings(config: RFConfig) -> tuple[str, ...]:
    """Reasons why the theory column is not a valid comparison for ``config`` (empty when it is)."""
    out = []
    if config.d < THEORY_MIN_D:
        out.append(f"d = {config.d} is below {THEORY_MIN_D}: the high-dimensional theory does not describe "
                   f"the model there (its finite-size correction ≈ 0.65 ψ_p/n is large)")
    if config.data.kind == "mixture":
        out.append("the theory covers zero-mean Gaussian data only (no theory for mixtures)")
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# the pipeline


def _atoms(data) -> list:
    lam = data.eigvals[0]
    vals, counts = np.unique(np.round(lam, 12), return_counts=True)
    return [(float(v), float(c) / lam.size) for v, c in zip(vals, counts)]


def _theory(config: RFConfig, problem_data, taus: np.ndarray) -> tuple[Prediction, Prediction]:
    """Theory with the finite-d correction and as d → ∞; the test loss and score error are the d → ∞
    deterministic equivalents in both (computed once)."""
    kw = dict(activation=config.activation, t=config.t, psi_p=config.psi_p, psi_n=config.psi_n,
              atoms=_atoms(problem_data))
    inf = predict(taus=taus, **kw)
    fin = predict(taus=taus, d=config.d, test_loss=False, **kw)
    c = inf.curves
    curves = Curves(c.tau, fin.curves.train_loss, c.test_loss, None, c.score_error,
                    method=c.method.replace("Theorem 3.1", f"Theorem 3.1 with the finite-d norm correction (d = {config.d})", 1))
    diag = {**fin.diagnostics, **{k: v for k, v in inf.diagnostics.items() if k.startswith("test")},
            "curves_method": inf.diagnostics.get("curves_method")}
    return dataclasses.replace(fin, curves=curves, test_loss_inf=inf.test_loss_inf, diagnostics=diag), inf


def _side(curves: Curves, spectrum: Optional[Spectrum], config: RFConfig, thresholds: Thresholds) -> Side:
    """Split the curves on the grid + τ = ∞ (the last point) and read the timescales off the grid part."""
    grid = dataclasses.replace(curves, **{k: None if v is None else v[..., :-1] for k, v in _fields(curves).items()},
                               tau=curves.tau[:-1], extra={k: v[..., :-1] for k, v in curves.extra.items()})
    limit = dataclasses.replace(curves, **{k: None if v is None else v[..., -1:] for k, v in _fields(curves).items()},
                                tau=curves.tau[-1:], extra={k: v[..., -1:] for k, v in curves.extra.items()})
    return Side(grid, spectrum, extract(grid, thresholds, spectrum, n=config.n, p=config.p, d=config.d, t=config.t),
                limit)


def _fields(curves: Curves) -> dict:
    return {k: getattr(curves, k) for k in CURVE_FIELDS}


def run(config: RFConfig, options: StudyOptions = StudyOptions(),
        progress: Optional[Callable[[str], None]] = None) -> StudyResult:
    """Simulate ``config`` exactly and compare it with the theory (module docstring).

    ``progress(stage)`` (optional) is called as each stage starts: ``"matrices"``, ``"dynamics"``,
    ``"spectrum"``, ``"curves"``, ``"theory"``.
    """
    if not isinstance(config, RFConfig):
        raise ValueError(f"config must be an RFConfig, got {type(config).__name__}")
    if not isinstance(options, StudyOptions):
        raise ValueError(f"options must be a StudyOptions, got {type(options).__name__}")
    tell = progress or (lambda stage: None)
    timings, diag = {}, {}
    clock = [time.perf_counter()]

    def lap(name):
        now = time.perf_counter()
        timings[name] = now - clock[0]
        clock[0] = now

    # the theory runs after the simulation, not beside it: on 2 cores a second thread slowed the
    # simulation's BLAS by more than the theory's own time (measured at p = 4096)
    method = choose_method(config, options.method, max_steps=options.lanczos_max_steps) \
        if options.model == "exact" else "ge"
    return _run(config, options, method, tell, timings, diag, lap)


def _run(config, options, method, tell, timings, diag, lap) -> StudyResult:
    if options.model == "ge":
        if config.data.kind == "mixture":
            raise ValueError("model='ge' needs zero-mean Gaussian data (the Gaussian equivalent of Lemma C.1)")
        tell("matrices")
        dr = draw(config)
        dyn, eig = ge_dynamics(dr.W, dr.X, config.t, config.activation, seed=config.seed, cov_eigs=dr.data.eigvals[0])
        diag["method"] = "ge"
        diag["dynamics"] = dict(dyn.info)
        lap("matrices")
        spectrum = Spectrum.from_eigenvalues(eig, "exact eigenvalues of the Gaussian-equivalent U")
    else:
        diag["method"] = method
        diag["memory_estimate_bytes"] = memory_estimate(config.p, config.n, config.d, method)
        tell("matrices")
        problem = build_problem(config, dense_population=(method != "streamed"), dense_train=(method != "streamed"))
        diag["matrices"] = {"train_order": problem.train.order, "train_trunc_error": problem.train.trunc_error,
                            "train_quad_order": problem.train.info.get("quad_order"),
                            "pop_order": problem.pop.order, "pop_trunc_error": problem.pop.trunc_error,
                            "fisher": problem.fisher}
        lap("matrices")
        tell("dynamics")
        dyn = _dynamics(problem, method, options)
        diag["dynamics"] = {"n_negative_eigenvalues": dyn.n_negative, **(dyn.info or {"method": "dense eigenvectors"})}
        lap("dynamics")
        tell("spectrum")
        spectrum = _spectrum(problem, dyn, method, options)
        lap("spectrum")
    tell("curves")
    taus = np.append(options.taus.values(), np.inf)      # the grid, then τ = ∞
    sim = _side(dyn.curves(taus, eta=options.eta), spectrum, config, options.thresholds)
    lap("curves")
    warns = theory_warnings(config)
    theory = theory_inf = pred = pred_inf = None
    if options.theory and config.data.kind != "mixture":
        tell("theory")
        pred, pred_inf = _theory(config, data_law(config), taus)
        theory = _side(pred.curves, pred.spectrum, config, options.thresholds)
        theory_inf = _side(pred_inf.curves, pred_inf.spectrum, config, options.thresholds)
        pred = dataclasses.replace(pred, curves=None, spectrum=None)
        pred_inf = dataclasses.replace(pred_inf, curves=None, spectrum=None)
        lap("theory")
    return StudyResult(Study(config, options), sim, theory, theory_inf, pred, pred_inf, diag, warns, timings)


def run_study(study: Study) -> StudyResult:
    """:func:`run` for a :class:`Study` (the unit function of sweeps)."""
    return run(study.config, study.options)


def _dynamics(problem: RFProblem, method: str, options: StudyOptions) -> dynamics.ExactDynamics:
    if method == "dense":
        return dynamics.from_problem(problem)
    U = problem.train.U if problem.train.U is not None else problem.train_plan
    U_pop = problem.pop.U if problem.pop.U is not None else problem.pop_plans
    return lanczos.krylov_dynamics(U, problem.train.V, problem.config.t, tol=options.lanczos_tol,
                                   max_steps=options.lanczos_max_steps, U_pop=U_pop, V_pop=problem.pop.V,
                                   fisher=problem.fisher, emp_cross=problem.emp_cross, emp_sq=problem.emp_sq)


def _spectrum(problem: RFProblem, dyn, method: str, options: StudyOptions) -> Spectrum:
    p = problem.config.p
    kind = options.spectrum
    if kind == "auto":
        kind = "exact" if method == "dense" or (method == "lanczos" and (
            p <= EXACT_SPECTRUM_MAX_P or jax.default_backend() != "cpu")) else "slq"
    if kind == "exact" and method == "dense":
        return Spectrum.from_eigenvalues(np.asarray(dyn.lam), "exact eigenvalues (with eigenvectors)")
    U = problem.train.U if problem.train.U is not None else problem.train_plan
    if kind == "exact":
        if problem.train.U is None:
            raise ValueError("spectrum='exact' needs U formed (method 'dense' or 'lanczos')")
        return Spectrum.from_eigenvalues(dynamics.eigvalsh(U), "exact eigenvalues")
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(problem.config.seed + 1)
    nodes, w = lanczos.slq_spectrum(U, p, key, options.slq_probes, options.slq_steps)
    return Spectrum(nodes, w, f"SLQ ({options.slq_probes} probes × {options.slq_steps} steps; Ritz values)")
