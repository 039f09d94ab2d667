"""One unit of work, from a configuration to simulation and theory side by side (docs/theory.md §3, §4, §6).

:func:`run` is the whole pipeline of the main job and of every sweep unit: draw W and X
(:func:`rfdiff.model.draw`, the only place they are drawn), build the exact matrices, solve the
dynamics (the Krylov route by default, the dense eigendecomposition on request), evaluate the
curves on the τ grid, compute the spectrum of U, the theory (finite-d and d → ∞), and read the
timescales off both sides by the same rules (:func:`rfdiff.timescales.extract`). It returns a
:class:`StudyResult`; :func:`run_study` is the same call on a :class:`Study` (what sweeps cache).

Routes (``method``):

* ``"dense"`` — U formed and fully eigendecomposed; curves in its eigenbasis; spectrum exact.
* ``"lanczos"`` — U formed, Ũ formed up to p = 8192 and streamed beyond; curves from block Lanczos in the Ritz basis (adaptive,
  a-posteriori change below ``lanczos_tol``); spectrum from the eigenvalues of U alone (LAPACK, no
  vectors) up to p = 8192 on CPU, beyond it ``spectrum="edges"``: the top d + 1 eigenvalues by block Lanczos and
  the n-th by one LDLᵀ of U − σI and shift-invert Lanczos (the top n by block Lanczos when the shift is too far;
  every spectral quantity with a residual bound).
* ``"streamed"`` — neither U nor Ũ is formed (their Mehler rows are streamed through every
  product); spectrum ``"edges"``. For p beyond memory.
* ``"auto"`` — ``"dense"`` up to p = 3000 on CPU (and on an accelerator while it fits), then
  ``"lanczos"`` while U fits in memory, then ``"streamed"``. The Krylov basis that resolves the
  curves to 1e-8 holds about half of p at ψ_p = 64 (the spectrum of U has p − n − d eigenvalues
  spread around s_t² that V sees; measured 28 blocks of 64 at p = 4096), so with few blocks
  (p/(2d) > ``lanczos_max_steps``, small d) one eigendecomposition is the route.

Spectra (``spectrum``): ``"exact"`` (all p eigenvalues), ``"edges"`` (the top eigenvalues by
:func:`rfdiff.lanczos.top_eigenvalues`; the rest of the mass is not resolved and sits in one node at 0),
``"slq"`` (stochastic Lanczos quadrature: a smooth picture of the bulk that cannot resolve single
eigenvalues, so the spectral rows λ_mem, λ_pop and their τ are NaN, with the reason in
``diagnostics["spectral_rows"]``), ``"none"`` (not computed: the spectral rows are NaN with that reason; for
studies that need only the curves). :func:`resolve` turns ``"auto"`` into the route and spectrum
actually used (what a cache key must name); :func:`route_cost` gives its bytes and operations.

``model="ge"`` replaces the exact model by its Gaussian equivalent on the same W and X
(:func:`rfdiff.theory.ge_dynamics`): the control whose finite-size correction should vanish.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import dynamics, lanczos
from ._util import check_positive, check_positive_int, stream_key, warn
from .matrices import MAX_ORDER, ROW_BLOCK, FeatureMoments, train_order
from .resources import device_memory
from .model import RFConfig, RFProblem, build_problem, data_law
from .model import draw
from .theory import ge_dynamics, predict
from .results import CURVE_FIELDS, Curves, Prediction, Spectrum, Thresholds, Timescales, register
from .timescales import extract

__all__ = ["TauGrid", "StudyOptions", "Study", "Side", "StudyResult", "run", "run_study", "memory_estimate",
           "available_memory", "choose_method", "choose_spectrum", "resolve", "route_cost", "theory_sides", "theory_warnings",
           "METHODS", "MODELS", "NO_THEORY", "SPECTRA", "THEORY_MIN_D"]

METHODS = ("auto", "lanczos", "dense", "streamed")
MODELS = ("exact", "ge")
SPECTRA = ("auto", "exact", "edges", "slq", "none")
THEORY_MIN_D = 8           # below it the d → ∞ theory is not a meaningful comparison (a warning is recorded)
EXACT_SPECTRUM_MAX_P = 8192  # CPU: eigenvalues of U up to this p (O(p³)); its top eigenvalues by block Lanczos beyond
EDGE_MAX_STEPS = 16          # at most this many blocks of the top-eigenvalue Lanczos ("edges" spectrum)
EDGE_INVERSE_COLUMNS = 768   # columns the shift-invert Lanczos of λ_mem is budgeted (a window of ~64, 8 blocks)
EDGE_BLOCKS = 7              # blocks the memory and operation estimates assume (measured 5–7 to 1e-8)
DENSE_MAX_P = 3000           # CPU: the "auto" route eigendecomposes U up to this p, then Krylov
POP_DENSE_MAX_P = 8192       # the Krylov route forms Ũ up to this p (8 p² bytes), then streams it (≈ 2 p² d flops more
                             # per Ritz projection: at p = 4096 forming it saves about 1 s)


def _dense_population(p: int, method: str) -> bool:
    """Whether the route forms Ũ (dense; lanczos up to :data:`POP_DENSE_MAX_P`) rather than streaming its Mehler plans."""
    return method == "dense" or (method == "lanczos" and p <= POP_DENSE_MAX_P)


# the theory's peak memory grows with the τ grid (its deterministic equivalents hold contour × τ arrays):
# measured 0.44 GB at n_tau = 2001 and 2.06 GB at 20 001 (p = 256, n = 64, d = 16), i.e. ≈ 90 kB per point
THEORY_BYTES_PER_TAU = 90_000
THEORY_BYTES = 300_000_000
N_TAU_MAX = 20_001          # a finer log grid resolves nothing more of the smooth curves, and costs the theory ~2 GB


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
        if not 2 <= n <= N_TAU_MAX:
            raise ValueError(f"n_tau must be in [2, {N_TAU_MAX}] (the curves are smooth in log τ; the theory needs "
                             f"about {THEORY_BYTES_PER_TAU // 1000} kB per point), got {self.n_tau!r}")
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
    spectrum: str = "auto"                    # "exact" eigenvalues, top "edges" by Lanczos, "slq", "none", or auto (resolve)
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


def _edge_sizes(p: int, n: int, d: int) -> tuple[int, int]:
    """(k, b) of the "edges" spectrum: the top k = max(n, d + 1) eigenvalues (λ_mem is the n-th largest,
    λ_pop the d-th, λ_mem_upper the (d+1)-th) and the Lanczos block b = n + d + o, o = max(32, (n + d)/16)."""
    k = min(p, max(n, d + 1))
    return k, min(p, n + d + max(32, (n + d) // 16))


def _ldl_edge(method: str, p: int, n: int, d: int) -> bool:
    """Whether the "edges" spectrum takes λ_mem from one LDLᵀ of U − σI (:func:`_edges_ldl`): U is formed by the
    Krylov route (the dense route's "edges" take the top n from its U: it has no G₀ kept) and the n-th eigenvalue
    lies below the top d + 1 and above the bottom."""
    return method == "lanczos" and d + 1 < n < p


def _upper_rows(method: str, spectrum: str, p: int, n: int, d: int) -> bool:
    """Whether the Krylov route holds U as its upper row blocks (:class:`rfdiff.matrices.UpperRows`, p²/2 numbers)
    rather than dense: when nothing downstream needs the dense array, i.e. the spectrum is neither ``"exact"``
    (LAPACK) nor ``"edges"`` by one LDLᵀ of U − σI in U's memory (:func:`_ldl_edge`) (docs/theory.md §3.4)."""
    return method == "lanczos" and spectrum != "exact" and not (spectrum == "edges" and _ldl_edge(method, p, n, d))


def _auto_spectrum(p: int, method: str) -> str:
    if method == "dense":
        return "exact"
    if method == "lanczos" and (p <= EXACT_SPECTRUM_MAX_P or jax.default_backend() != "cpu"):
        return "exact"
    return "edges"


def memory_estimate(p: int, n: int, d: int, method: str, max_order: int = MAX_ORDER, basis_blocks: int = 40, *,
                    n_tau: int = 0, spectrum: str = "auto", slq_columns: int = 16 * 80) -> int:
    """Peak bytes of one route (float64), stage by stage (docs/theory.md §3.4).

    Mehler factors g_k while U is built: (max_order + 2) p n; Krylov stage: the basis p m (m = min(p,
    ``basis_blocks``·d); the Ritz basis is formed in its memory and Ũ enters by row blocks); spectrum stage: a copy of U for LAPACK (``"exact"``), or the
    top-eigenvalue Lanczos basis p m_e, T and its copies (4 m_e²), two blocks, G₀ and the Krylov stage's arrays
    (``"edges"``, m_e = 7 blocks of n + d + o), or the SLQ basis; τ grid: 4 arrays of at most ``GRID_CHUNK`` elements (``n_tau`` × modes,
    p or m, evaluated in slices: :func:`curves_chunked`) and 8 output curves of ``n_tau`` points.
    dense: U, Ũ, eigenvectors Q, QᵀŨQ, H and temporaries ≈ 7 p²; lanczos: U (p², or p²/2 as upper row blocks where
    the spectrum needs no dense U: :func:`_upper_rows`), and Ũ up to p = POP_DENSE_MAX_P (streamed beyond);
    streamed: no p × p array.
    """
    p, n, d, n_tau = int(p), int(n), int(d), int(n_tau)
    if method not in ("dense", "lanczos", "streamed"):
        raise ValueError(f"method must be one of dense, lanczos, streamed, got {method!r}")
    if spectrum == "auto":
        spectrum = _auto_spectrum(p, method)
    if spectrum not in SPECTRA[1:]:
        raise ValueError(f"spectrum must be one of {', '.join(SPECTRA)}, got {spectrum!r}")
    g = (max_order + 2) * p * n * 8
    grid = lambda r: 4 * 8 * min(n_tau * r, GRID_CHUNK) + 8 * 8 * n_tau      # noqa: E731
    if method == "dense":
        return 7 * 8 * p * p + g + grid(p)
    m = min(p, basis_blocks * d)
    g += 8 * p * p if _dense_population(p, method) else 0          # Ũ formed (lanczos, p ≤ POP_DENSE_MAX_P)
    if spectrum == "exact":
        spec = 8 * p * p
    elif spectrum == "edges" and _ldl_edge(method, p, n, d):
        # U formed: the top d + 1 by Lanczos, then λ_mem by LDLᵀ in U's own memory (_edges_ldl): the largest of
        # the top-(d+1) basis with its T copies, the two-block Ritz basis of n columns with U times it, and
        # the inverse Lanczos basis (EDGE_INVERSE_COLUMNS), beside G₀ and the Krylov arrays still held
        m_t = min(p, EDGE_BLOCKS * (d + 1 + 32))
        spec = 8 * (max(p * m_t + 4 * m_t * m_t, 4 * p * n + 4 * (2 * n) ** 2, p * EDGE_INVERSE_COLUMNS)
                    + p * n) + 2 * 8 * p * m
    elif spectrum == "edges":
        _, b = _edge_sizes(p, n, d)
        m_e = min(p, EDGE_BLOCKS * b)
        # the basis, T and two m_e² copies of it for its Ritz values (eigvalsh, then eigh with vectors), the
        # blocks and G₀; beside the Krylov stage's three p × m arrays, still held (measured at p = 25600, n = 1600,
        # d = 100: 17.3 GB peak against 16.5 GB from this count, 11.3 GB from the count without them)
        spec = 8 * (p * m_e + 4 * m_e * m_e + 2 * p * b + p * n) + 2 * 8 * p * m
    elif spectrum == "slq":
        spec = 8 * p * slq_columns
    else:
        spec = 0
    # Krylov stage: the basis (the Ritz basis is formed in its memory) and row blocks of Ũ (with the Mehler
    # temporaries of a streamed Ũ); then the spectrum or the τ grid beside the basis
    stages = max(8 * p * m + 4 * 8 * ROW_BLOCK * p, 8 * p * m + spec, 8 * p * m + grid(m))
    if method == "lanczos":
        u = 4 * p * (p + ROW_BLOCK) if _upper_rows(method, spectrum, p, n, d) else 8 * p * p
        return u + max(g, 8 * p * n + stages)
    return g + stages + 8 * 1024 * p * 2


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
                  max_steps: int = 64, *, n_tau: int = 0, spectrum: str = "auto") -> str:
    """The route for ``config``: ``method`` itself, or under ``"auto"`` the fastest one that fits in ``memory`` (module docstring).

    The memory needed includes the spectrum's stage and ``n_tau`` points of the τ grid
    (:func:`memory_estimate`). The Mehler factors are budgeted at the largest order (12) first; where a route
    does not fit that budget, it is sized with the order the training plan will choose, probed on the plan's sample
    rows (:func:`_sized`; p·n work, once per configuration), so a faster route is never passed over for a budget
    the plan would not use. Raises ValueError (naming
    ``p``) when even the streamed route does not fit, or when an explicitly requested route does not.
    """
    memory = available_memory() if memory is None else memory

    def need(m, spec=spectrum):
        spec = spec if not (spec == "exact" and m == "streamed") else "edges"
        return _sized(config, m, spec, n_tau, memory)

    if method != "auto":
        if need(method)[0] <= memory:
            return method
    else:
        # the Krylov basis that resolves the curves holds about half of p (module docstring), i.e. about
        # p/(2d) blocks: beyond ``max_steps`` of them (small d) one eigendecomposition is the better route
        krylov_ok = 0.5 * config.p / config.d <= max_steps
        dense_first = config.p <= DENSE_MAX_P or jax.default_backend() != "cpu" or \
            (not krylov_ok and config.p <= EXACT_SPECTRUM_MAX_P)
        for m in (("dense",) if dense_first else ()) + ("lanczos",) + (() if spectrum == "exact" else ("streamed",)):
            if need(m)[0] <= memory:
                return m
    m = "streamed" if method == "auto" else method
    (size, order), hint = need(m), ""
    if spectrum not in ("none", "slq") and m != "dense" and need("lanczos", "none")[0] <= memory:
        hint = f"; without the spectrum (spectrum='none') the lanczos route needs {need('lanczos', 'none')[0] / 1e9:.1f} GB"
    raise ValueError(f"p={config.p}: the {m} route needs about {size / 1e9:.1f} GB "
                     f"(n={config.n}, d={config.d}, n_tau={n_tau}, Mehler order budget {order}) but "
                     f"{memory / 1e9:.1f} GB are available{hint}")


def _sized(config: RFConfig, method: str, spectrum: str, n_tau: int, memory: int) -> tuple[int, int]:
    """(bytes, Mehler order) a route is sized with: the order-12 budget where that fits in ``memory``, else the order
    the training plan will choose (:func:`_probe_order`) — the rule of :func:`choose_method` and :func:`route_cost`."""
    size = memory_estimate(config.p, config.n, config.d, method, n_tau=n_tau, spectrum=spectrum)
    if size <= memory:
        return size, MAX_ORDER
    order = _probe_order(config)
    return memory_estimate(config.p, config.n, config.d, method, max_order=order, n_tau=n_tau,
                           spectrum=spectrum), order


@functools.lru_cache(maxsize=256)
def _probe_order(config: RFConfig) -> int:
    """The Mehler order the training plan of ``config`` will choose (:func:`rfdiff.matrices.train_order`; a function
    of the configuration alone, kept per configuration: the route is sized by ``resolve`` and again by
    :func:`route_cost` and the sweeps' estimates)."""
    dr = draw(config)
    return train_order(dr.W, dr.X, config.t, config.activation, tol=config.tol, max_order=MAX_ORDER)


def choose_spectrum(config: RFConfig, method: str, spectrum: str = "auto") -> str:
    """The spectrum of route ``method``: ``spectrum`` itself, or under ``"auto"`` the exact eigenvalues where the
    route has them or they are affordable (p ≤ 8192 on CPU, any p on an accelerator), else ``"edges"``.

    ``"exact"`` needs U formed (not the streamed route): ValueError naming ``spectrum`` otherwise.
    """
    if spectrum not in SPECTRA:
        raise ValueError(f"spectrum must be one of {', '.join(SPECTRA)}, got {spectrum!r}")
    if method not in METHODS[1:]:
        raise ValueError(f"method must be one of {', '.join(METHODS[1:])}, got {method!r}")
    if spectrum == "auto":
        return _auto_spectrum(config.p, method)
    if spectrum == "exact" and method == "streamed":
        raise ValueError("spectrum='exact' needs U formed (method 'dense' or 'lanczos'), not the streamed route")
    return spectrum


def resolve(config: RFConfig, options: "StudyOptions" = None, memory: Optional[int] = None) -> "StudyOptions":
    """``options`` with ``method`` and ``spectrum`` replaced by the route and spectrum :func:`run` will use here.

    Call it before hashing a :class:`Study` for a cache, so the key names what was computed: under
    ``"auto"`` the route depends on this machine's memory and backend. Idempotent. The Gaussian-equivalent
    control (``model="ge"``) always eigendecomposes: ``"dense"`` and ``"exact"``.
    """
    options = StudyOptions() if options is None else options
    if not isinstance(config, RFConfig):
        raise ValueError(f"config must be an RFConfig, got {type(config).__name__}")
    if not isinstance(options, StudyOptions):
        raise ValueError(f"options must be a StudyOptions, got {type(options).__name__}")
    if options.model == "ge":
        return dataclasses.replace(options, method="dense", spectrum="exact")
    method = choose_method(config, options.method, memory, options.lanczos_max_steps, n_tau=options.taus.n_tau + 1,
                           spectrum=options.spectrum)
    return dataclasses.replace(options, method=method, spectrum=choose_spectrum(config, method, options.spectrum))


def route_cost(config: RFConfig, options: "StudyOptions", order: int = 8, basis: Optional[int] = None,
               edge_basis: Optional[int] = None, pop_order: int = 8, memory: Optional[int] = None) -> dict:
    """Operations per stage and peak bytes of the route of ``resolve(config, options)`` (docs/theory.md §3.4).

    ``order``/``pop_order``: Mehler orders K, K̃ of U and Ũ; ``basis``: the curves' Krylov basis m
    (default min(p, steps·d)); ``edge_basis``: the top-eigenvalue basis m_e (default 7 blocks of
    b = n + d + o). With a dense U (upper half formed, mirrored):

    * matrices: (K + 1) p² n + p² d (U) + (K̃ + 1) p² (+ 2 p² d on the dense route, Ũ formed);
    * dynamics, dense: 9 p³ (eigenvectors) + 4 p³ (QᵀŨQ); Krylov: 2 p² m (U·K) + 2 p m² (reorthogonalisation)
      + 2 p² m + 2 p² d (Ũ streamed through the Ritz basis) + 2 p m² (its projection) + 9 m³;
    * spectrum: (4/3) p³ (``"exact"``, eigenvalues only; free on the dense route); ``"edges"`` on the Krylov route:
      the top d + 1 by Lanczos (as below with m_t = 7 blocks of d + 33), 4 p² n + 8 p n² for the shift, p³/3 for
      the LDLᵀ and 2 p² per solved column (768 budgeted); ``"edges"`` elsewhere (the top n):
      2 p² m_e + 2 p m_e² + (4/3) m_e³ per checked block (≈ 4 of them) ; ``"slq"``: 2 p² · probes · steps;
      ``"none"``: 0;
    * curves: 2 n_tau r² (fᵀ H f for r modes) + O(n_tau r).

    On the streamed route every product with U also rebuilds its rows: (K + 1) 2 p² n + 2 p² d per product.
    ``memory``: bytes the route may use (default: this machine's, :func:`available_memory`).
    """
    o = resolve(config, options, memory)
    p, n, d = float(config.p), float(config.n), float(config.d)
    n_tau = float(o.taus.n_tau + 1)
    out = {}
    if o.model == "ge":
        r = n + 2 * d
        out = {"matrices": p * r * r, "dynamics": 9 * r ** 3, "spectrum": 0.0, "curves": 2 * n_tau * r * r}
    else:
        K, Kp = float(order), float(pop_order)
        m = float(basis if basis is not None else min(config.p, o.lanczos_max_steps * config.d))
        _, b = _edge_sizes(config.p, config.n, config.d)
        m_e = float(edge_basis if edge_basis is not None else min(config.p, EDGE_BLOCKS * b))
        rebuild = (K + 1) * 2 * p * p * n + 2 * p * p * d if o.method == "streamed" else 0.0
        out["matrices"] = (0.0 if o.method == "streamed" else (K + 1) * p * p * n + p * p * d) + (Kp + 1) * p * p \
            + (2 * p * p * d if o.method == "dense" else 0.0)
        if o.method == "dense":
            out["dynamics"] = 13 * p ** 3
            r = p
        else:
            out["dynamics"] = 2 * p * p * m + 4 * p * m * m + 2 * p * p * m + 2 * p * p * d + 9 * m ** 3 \
                + rebuild * m / d
            r = m
        if o.spectrum == "exact":
            out["spectrum"] = 0.0 if o.method == "dense" else 4 / 3 * p ** 3
        elif o.spectrum == "edges" and _ldl_edge(o.method, config.p, config.n, config.d):
            # _edges_ldl: top d + 1 by Lanczos, two blocks of n from G₀ for the shift, LDLᵀ of U − σI, inverse solves
            m_t = float(min(config.p, EDGE_BLOCKS * (config.d + 1 + 32)))
            out["spectrum"] = 2 * p * p * m_t + 2 * p * m_t * m_t + 4 * 4 / 3 * m_t ** 3 + 4 * p * p * n \
                + 2 * p * (2 * n) ** 2 + p ** 3 / 3 + 2 * p * p * EDGE_INVERSE_COLUMNS
        elif o.spectrum == "edges":
            out["spectrum"] = 2 * p * p * m_e + 2 * p * m_e * m_e + 4 * 4 / 3 * m_e ** 3 + rebuild * m_e / b
        elif o.spectrum == "slq":
            out["spectrum"] = 2 * p * p * o.slq_probes * o.slq_steps + rebuild * o.slq_steps
        else:
            out["spectrum"] = 0.0
        out["curves"] = 2 * n_tau * r * r
    out["total"] = sum(out.values())
    out["bytes"] = 0 if o.model == "ge" else _sized(config, o.method, o.spectrum, int(n_tau),
                                                    available_memory() if memory is None else memory)[0]
    if o.theory and config.data.kind not in NO_THEORY:      # the theory runs after the simulation
        out["bytes"] = max(out["bytes"], THEORY_BYTES_PER_TAU * int(n_tau) + THEORY_BYTES)
    out["method"], out["spectrum_method"] = o.method, o.spectrum
    return out


def theory_warnings(config: RFConfig) -> tuple[str, ...]:
    """Reasons why the theory column is not a valid comparison for ``config`` (empty when it is)."""
    out = []
    if config.d < THEORY_MIN_D:
        out.append(f"d = {config.d} is below {THEORY_MIN_D}: the high-dimensional theory does not describe "
                   f"the model there (its finite-size correction ≈ 0.65 ψ_p/n is large)")
    if config.data.kind == "mixture":
        out.append("the theory covers zero-mean Gaussian data only (no theory for mixtures)")
    if config.data.kind == "subspace":
        out.append("subspace data: ρ_Σ has an atom at 0 (rank D < d), outside the range where the theory's test "
                   "loss and score error are validated (docs/theory.md §4); no theory column")
    return tuple(out)


NO_THEORY = ("mixture", "subspace")   # data kinds without a theory column (theory_warnings says why)


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


GRID_CHUNK = 1 << 24        # τ points × modes evaluated at once by :func:`curves_chunked` (4 such arrays: 0.5 GB)


def curves_chunked(dyn, taus: np.ndarray, eta: Optional[float] = None, chunk: int = GRID_CHUNK) -> Curves:
    """``dyn.curves(taus, eta)`` evaluated on slices of the τ grid of at most ``chunk``/modes points, joined.

    The evaluation holds about 4 arrays of (τ points × modes); slicing bounds them by ``chunk``
    elements each, so a long grid costs only its output curves (docs/theory.md §3.4)."""
    r = int(np.shape(dyn.lam)[0])
    step = max(1, chunk // max(r, 1))
    if len(taus) <= step:
        return dyn.curves(taus, eta=eta)
    parts = [dyn.curves(taus[i:i + step], eta=eta) for i in range(0, len(taus), step)]
    joined = {k: None if getattr(parts[0], k) is None else np.concatenate([getattr(c, k) for c in parts], axis=-1)
              for k in CURVE_FIELDS}
    extra = {k: np.concatenate([c.extra[k] for c in parts], axis=-1) for k in parts[0].extra}
    return Curves(np.concatenate([c.tau for c in parts]), **joined, extra=extra, method=parts[0].method)


SPECTRAL_ROWS = ("lambda_mem", "tau_mem_spectral", "lambda_mem_upper", "lambda_pop", "tau_gen_spectral")


def _side(curves: Curves, spectrum: Optional[Spectrum], config: RFConfig, thresholds: Thresholds,
          unresolved: Optional[str] = None) -> Side:
    """Split the curves on the grid + τ = ∞ (the last point) and read the timescales off the grid part.

    ``unresolved`` (a reason): the spectrum cannot resolve single eigenvalues (SLQ), so the spectral
    rows are NaN rather than read off it."""
    grid = dataclasses.replace(curves, **{k: None if v is None else v[..., :-1] for k, v in _fields(curves).items()},
                               tau=curves.tau[:-1], extra={k: v[..., :-1] for k, v in curves.extra.items()})
    limit = dataclasses.replace(curves, **{k: None if v is None else v[..., -1:] for k, v in _fields(curves).items()},
                                tau=curves.tau[-1:], extra={k: v[..., -1:] for k, v in curves.extra.items()})
    ts = extract(grid, thresholds, spectrum, n=config.n, p=config.p, d=config.d, t=config.t)
    if unresolved:
        ts = dataclasses.replace(ts, **{k: math.nan for k in SPECTRAL_ROWS})
    return Side(grid, spectrum, ts, limit)


def theory_sides(config: RFConfig, options: StudyOptions = StudyOptions()) -> tuple[Side, Side, Prediction, Prediction]:
    """The theory columns of :func:`run` without the simulation: (finite-d side, d → ∞ side, and their
    spectral predictions without curves), Theorem 3.1 with the norm correction of docs/theory.md §4.5.

    The same curves on the same grid (``options.taus`` then τ = ∞) read by the same rule as in
    :func:`run`, so a prediction made before a unit runs equals the theory column it will carry."""
    taus = np.append(options.taus.values(), np.inf)
    pred, pred_inf = _theory(config, data_law(config), taus)
    theory = _side(pred.curves, pred.spectrum, config, options.thresholds)
    theory_inf = _side(pred_inf.curves, pred_inf.spectrum, config, options.thresholds)
    return (theory, theory_inf, dataclasses.replace(pred, curves=None, spectrum=None),
            dataclasses.replace(pred_inf, curves=None, spectrum=None))


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
    resolved = resolve(config, options)
    method = resolved.method if options.model == "exact" else "ge"
    return _run(config, options, method, tell, timings, diag, lap, resolved.spectrum)


def _run(config, options, method, tell, timings, diag, lap, spectrum_kind="exact") -> StudyResult:
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
        diag["spectrum_method"] = spectrum_kind
        tell("matrices")
        problem = build_problem(config, dense_population=_dense_population(config.p, method),
                                dense_train=(method == "dense"))
        # the route's estimate at the Mehler order its plan chose (the order-12 budget sized the route unless it
        # did not fit: choose_method)
        order = (problem.train_plan or problem.train).order
        diag["memory_estimate_bytes"] = memory_estimate(config.p, config.n, config.d, method, max_order=order,
                                                        n_tau=options.taus.n_tau + 1, spectrum=spectrum_kind)
        G0 = None
        if method != "dense" and spectrum_kind == "edges":
            G0 = problem.train_plan.G[0].copy()       # the start block of the top-eigenvalue Lanczos
        if method == "lanczos":                       # U formed from its plan, whose g_k are then freed
            plan = problem.train_plan
            half = _upper_rows(method, spectrum_kind, config.p, config.n, config.d)
            problem = dataclasses.replace(problem, train_plan=None, train=FeatureMoments(
                plan.upper() if half else plan.dense(), problem.train.V, plan.order, plan.error,
                {"method": "mehler", **plan.info, "tol": config.tol, "converged": bool(plan.error < config.tol)}))
            diag["U_storage"] = "upper row blocks (p²/2)" if half else "dense (p²)"
            del plan
        diag["matrices"] = {"train_order": problem.train.order, "train_trunc_error": problem.train.trunc_error,
                            "train_quad_order": problem.train.info.get("quad_order"),
                            "pop_order": problem.pop.order, "pop_trunc_error": problem.pop.trunc_error,
                            "fisher": problem.population.fisher}
        lap("matrices")
        tell("dynamics")
        dyn = _dynamics(problem, method, options)
        diag["dynamics"] = {"n_negative_eigenvalues": dyn.n_negative, **(dyn.info or {"method": "dense eigenvectors"})}
        lap("dynamics")
        tell("spectrum")
        spectrum, diag["spectrum"] = _spectrum(problem, dyn, method, options, spectrum_kind, G0)
        lap("spectrum")
    tell("curves")
    taus = np.append(options.taus.values(), np.inf)      # the grid, then τ = ∞
    unresolved = diag.get("spectrum", {}).get("unresolved")
    if unresolved:
        diag["spectral_rows"] = unresolved
    sim = _side(curves_chunked(dyn, taus, options.eta), spectrum, config, options.thresholds, unresolved)
    lap("curves")
    warns = theory_warnings(config)
    theory = theory_inf = pred = pred_inf = None
    if options.theory and config.data.kind not in NO_THEORY:
        tell("theory")
        theory, theory_inf, pred, pred_inf = theory_sides(config, options)
        lap("theory")
    return StudyResult(Study(config, options), sim, theory, theory_inf, pred, pred_inf, diag, warns, timings)


def run_study(study: Study) -> StudyResult:
    """:func:`run` for a :class:`Study` (the unit function of sweeps)."""
    return run(study.config, study.options)


def _dynamics(problem: RFProblem, method: str, options: StudyOptions) -> dynamics.ExactDynamics:
    if method == "dense":
        return dynamics.from_problem(problem)
    U = problem.train.U if problem.train.U is not None else problem.train_plan
    return lanczos.krylov_dynamics(U, problem.train.V, problem.config.t, tol=options.lanczos_tol,
                                   max_steps=options.lanczos_max_steps, pop=problem.population)


def _spectrum(problem: RFProblem, dyn, method: str, options: StudyOptions, kind: str,
              G0: Optional[np.ndarray] = None) -> tuple[Spectrum, dict]:
    """The spectrum of U by ``kind`` (module docstring) and its diagnostics (``unresolved``: why the rows are NaN)."""
    p = problem.config.p
    if kind == "exact" and method == "dense":
        return Spectrum.from_eigenvalues(np.asarray(dyn.lam), "exact eigenvalues (with eigenvectors)"), {"kind": kind}
    U = problem.train.U if problem.train.U is not None else problem.train_plan
    if kind == "exact":
        if problem.train.U is None:
            raise ValueError("spectrum='exact' needs U formed (method 'dense' or 'lanczos')")
        return Spectrum.from_eigenvalues(dynamics.eigvalsh(U), "exact eigenvalues"), {"kind": kind}
    if kind == "edges":
        return _edges(problem, U, G0, options)
    if kind == "none":
        return None, {"kind": kind, "unresolved": "not computed (spectrum='none': the study needs the curves only)"}
    key = stream_key(problem.config.seed, "slq")
    nodes, w = lanczos.slq_spectrum(U, p, key, options.slq_probes, options.slq_steps)
    why = (f"stochastic Lanczos quadrature ({options.slq_probes} probes × {options.slq_steps} steps) gives nodes of "
           f"weight ≫ 1/p and cannot resolve the n-th or d-th largest eigenvalue (use spectrum='edges')")
    return (Spectrum(nodes, w, f"SLQ ({options.slq_probes} probes × {options.slq_steps} steps; Ritz values)"),
            {"kind": kind, "unresolved": why})


def _edges(problem: RFProblem, U, G0: Optional[np.ndarray], options: StudyOptions) -> tuple[Spectrum, dict]:
    """The spectral edges of U: by :func:`_edges_ldl` where U is formed, else (or when its shift is refused) the top
    k = max(n, d + 1) eigenvalues of U by block Lanczos (:func:`rfdiff.lanczos.top_eigenvalues`).

    Start block [G₀, V, Z]: the k = 0 Mehler factor G₀ (p × n, the mean features of the training
    points, which span most of the memorisation bulk), V (the population bulk) and o Gaussian columns
    (stream ``"edges"``). The spectrum holds the k Ritz values with weight 1/p each and the unresolved
    mass (p − k)/p in one node at 0, so every quantile above 1 − k/p (λ_mem, λ_mem_upper, λ_pop) is
    the corresponding Ritz value (docs/theory.md §6.2).
    """
    c = problem.config
    p, n, d = c.p, c.n, c.d
    formed = "lanczos" if isinstance(U, np.ndarray) else "streamed"     # the route this U stands for
    if G0 is not None and _ldl_edge(formed, p, n, d):
        try:
            return _edges_ldl(problem, U, G0, options)
        except ValueError as err:             # the shift is too far from λ_mem: the top-n Lanczos below
            fallback = str(err)
    else:
        fallback = None
    k, b = _edge_sizes(p, n, d)
    vals, resid, info = _top(problem, U, k, b, options, G0)
    rest = p - k
    nodes = np.concatenate([[0.0] if rest else [], vals])
    weights = np.concatenate([[rest / p] if rest else [], np.full(k, 1.0 / p)])
    sp = Spectrum(nodes, weights, f"top {k} eigenvalues by block Lanczos (residual ≤ {resid.max(initial=0):.1e}); "
                                  f"the other {rest} not resolved (mass at 0)")
    edges = {}
    for name, i in (("lambda_pop", d), ("lambda_mem_upper", d + 1), ("lambda_mem", n)):
        if 1 <= i <= k:
            edges[name] = {"value": float(vals[i - 1]), "residual_bound": float(resid[i - 1])}
    return sp, {"kind": "edges", **info, "edges": edges, **({"ldl_fallback": fallback} if fallback else {})}


def _top(problem: RFProblem, U, k: int, b: int, options: StudyOptions, first: Optional[np.ndarray] = None):
    """The top k eigenvalues of U by block Lanczos from the block [first, V, Z] cut to width b (Z: Gaussian columns
    of stream ``"edges"``), warning when they did not settle (:func:`rfdiff.lanczos.top_eigenvalues`)."""
    c = problem.config
    V = np.asarray(problem.train.V, dtype=np.float64)
    n_rand = b - c.d - (0 if first is None else first.shape[1])
    with jax.enable_x64(True):
        Z = np.asarray(jax.random.normal(stream_key(c.seed, "edges"), (c.p, max(n_rand, 0)), dtype=jnp.float64))
    X0 = np.concatenate(([] if first is None else [first]) + [V, Z], axis=1)[:, :b]
    vals, resid, info = lanczos.top_eigenvalues(U, X0, k, tol=options.lanczos_tol, max_steps=EDGE_MAX_STEPS)
    if not info["converged"]:
        warn(f"top-eigenvalue Lanczos stopped at {info['blocks']} blocks with the top {k} Ritz values still changing "
             f"by {info['change']:.2e} > tol {options.lanczos_tol:.2e}")
    return vals, resid, info


def _edges_ldl(problem: RFProblem, U: np.ndarray, G0: np.ndarray, options: StudyOptions) -> tuple[Spectrum, dict]:
    """λ_pop, λ_mem_upper (the d-th, (d+1)-th largest) by block Lanczos, λ_mem (the n-th) by one LDLᵀ of U − σI
    (docs/theory.md §3.4; :func:`rfdiff.lanczos.ranked_eigenvalue`).

    The shift σ is the n-th Ritz value of two Lanczos blocks from G₀ (the mean features of the training points):
    below λ_mem by interlacing, and close to it because G₀ spans most of the memorisation bulk. The spectrum
    holds the top d + 1 and λ_mem with weight 1/p each, the ranks d + 2 … n − 1 (not resolved) in one node at
    λ_mem and the other p − n at 0, so the mid-point quantiles of λ_pop, λ_mem_upper and λ_mem are exact (§6.2).
    ValueError when σ is more than ``max_window`` eigenvalues from λ_mem (the caller then takes the top n).
    """
    c = problem.config
    p, n, d = c.p, c.n, c.d
    k = d + 1
    top, r_top, i_top = _top(problem, U, k, min(p, k + 32), options)
    ritz, _, _ = lanczos.top_eigenvalues(U, G0, n, tol=options.lanczos_tol, max_steps=2)
    lam, bound, i_mem = lanczos.ranked_eigenvalue(U, n, float(ritz[n - 1]), tol=options.lanczos_tol)
    lump = n - d - 2                           # ranks d + 2 … n − 1: not resolved, put at λ_mem
    nodes = np.concatenate([[0.0, lam], [lam] if lump else [], top[::-1]])
    weights = np.concatenate([[(p - n) / p, 1.0 / p], [lump / p] if lump else [], np.full(k, 1.0 / p)])
    sp = Spectrum(nodes, weights, f"top {k} eigenvalues by block Lanczos and the {n}-th by LDLᵀ and shift-invert "
                                  f"Lanczos; ranks {k + 1}–{n - 1} not resolved (at λ_mem), the other {p - n} at 0")
    edges = {"lambda_pop": {"value": float(top[d - 1]), "residual_bound": float(r_top[d - 1])},
             "lambda_mem_upper": {"value": float(top[d]), "residual_bound": float(r_top[d])},
             "lambda_mem": {"value": lam, "residual_bound": bound}}
    info = {"method": f"{i_top['method']}; λ_mem: {i_mem['method']}", "blocks": i_top["blocks"],
            "basis_size": i_top["basis_size"], "converged": bool(i_top["converged"] and i_mem["converged"]),
            "change": i_top["change"], "error_estimate": max(i_top["error_estimate"], i_mem["error_estimate"]),
            "tol": options.lanczos_tol, "max_residual": float(max(r_top.max(initial=0.0), bound)),
            "shift": i_mem["shift"], "above_shift": i_mem["above_shift"], "window": i_mem["window"]}
    return sp, {"kind": "edges", **info, "edges": edges}
