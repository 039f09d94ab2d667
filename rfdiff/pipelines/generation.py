"""Generation study: memorisation f_mem and sample quality of RF scores vs training time τ (docs/theory.md §5).

One :class:`GenerationUnit` is one (data, n, repetition, activation): draw a training set, train one
RF score per diffusion time of a grid to every τ of a list (§5.1, exact dynamics of §3), sample
with the reverse SDE or the probability-flow ODE at every τ from common random numbers (§5.2),
and measure f_mem for k = 1/3, 1/2, 1/4 with bootstrap intervals, f_mem against {±x^ν}, the
fraction closer to the training set than to a fresh test set (§5.3), the Gaussian KL and W₂ of
the samples' moments (§5.6) and, for a two-class mixture, the class balance. The same measures
are taken on the exact population-score and empirical-score samplers. The loss-level τ_mem of
each grid time is read off the generalisation gap by the rule of §6.1. :func:`run_unit` does
this and returns a :class:`GenerationResult`.

A :class:`TheoryUnit` gives, per n, the spectral memorisation time τ_mem,spectral = ψ_p/(Δ_t λ_mem)
of the d → ∞ theory at every grid time (§6.2, :func:`rfdiff.theory.predict`).

:class:`GenerationStudy` is the whole study: isotropic data over n and repetitions, a two-class
mixture, and a non-odd activation at the smallest n. It runs in two sweeps
(:func:`rfdiff.sweep.run_sweep`): the smallest n first, whose seed-averaged curves calibrate the
early-stopping slope c = τ*(n₀)/n₀ (§5.5); then every larger n with τ_stop = c·n added to its τ
list, so that the rule is measured, not interpolated. :func:`summarize` turns the unit results
into a :class:`GenerationSummary` (tables over n, EMM_ε (§5.4), early stopping, generation- vs
loss- vs theory-level τ_mem); ``rfdiff_analysis.key_numbers.generation`` gives its headline numbers.
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from .. import memorisation as M, results, sampling as S, timescales
from .._util import check_fraction, check_positive, stream_key, x64
from ..model import DataSpec
from ..sweep import Cache, run_sweep, SweepReport
from ..theory import predict
from . import _checks

__all__ = ["KS", "GenerationUnit", "TheoryUnit", "Measurement", "GenerationResult", "TheoryResult",
           "GenerationStudy", "EarlyStopping", "RunSet", "GenerationSummary", "default_study", "run_unit",
           "theory_unit", "compute_unit", "first_units", "second_units", "calibrate", "gen_tau_mem",
           "theory_tau_mem", "summarize", "run"]

KS = (1.0 / 3.0, 0.5, 0.25)
"""Memorisation thresholds k of ‖x − a¹‖/‖x − a²‖ < k (docs/theory.md §5.3); the first is the headline."""

DATA_KINDS = ("isotropic", "mixture")
results.register(DataSpec)


# ----------------------------------------------------------------------------------------------
# validation helpers


def _check_common(obj, int_fields: Sequence[str]) -> None:
    for name in int_fields:
        object.__setattr__(obj, name, _checks.integer(name, getattr(obj, name)))
    object.__setattr__(obj, "t_min", check_positive("t_min", obj.t_min))
    object.__setattr__(obj, "t_max", check_positive("t_max", obj.t_max))
    if obj.t_min >= obj.t_max:
        raise ValueError(f"t_min must be < t_max, got t_min={obj.t_min:g}, t_max={obj.t_max:g}")
    if obj.n_times < 2:
        raise ValueError(f"n_times must be >= 2 (the grid spans [t_min, t_max]), got {obj.n_times}")
    if obj.method not in S.METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, S.METHODS))}, got {obj.method!r}")
    _checks.activation_name(obj.activation)
    object.__setattr__(obj, "seed", _checks.seed(obj.seed))
    object.__setattr__(obj, "taus", _checks.ascending("taus", obj.taus, allow_inf_last=True))
    object.__setattr__(obj, "curve_taus", _checks.ascending("curve_taus", obj.curve_taus, allow_inf_last=False))
    ks = tuple(float(k) for k in obj.ks)
    if not ks or any(not 0.0 < k <= 1.0 for k in ks):
        raise ValueError(f"ks must be a non-empty sequence of thresholds in (0, 1], got {obj.ks!r}")
    object.__setattr__(obj, "ks", ks)


# ----------------------------------------------------------------------------------------------
# units and their results


@results.register
@dataclasses.dataclass(frozen=True)
class GenerationUnit:
    """One (data, n, repetition, activation) of the generation study, with every result-changing parameter.

    The PRNG key is ``stream_key(seed, "generation", rep, n)`` (:func:`rfdiff._util.stream_key`; the same
    for every data kind and activation: common random numbers), split into the training set, a fresh
    test set, W, the sampler, the bootstrap and the reference samplers. ``taus`` (ascending,
    last ``inf`` allowed) are the training times where samples are measured; ``tau_stop``, when
    set, is one more τ (the early-stopping time c·n, docs/theory.md §5.5) measured apart.
    ``curve_taus`` is the τ grid of the loss curves from which the loss-level τ_mem is read
    (first τ with L_gen ≥ ``mem_frac``·L_gen(τ_max), §6.1).
    """

    data: DataSpec = DataSpec()
    d: int = 16
    p: int = 1024
    n: int = 16
    seed: int = 0
    rep: int = 0
    activation: str = "tanh"
    t_min: float = 0.01
    t_max: float = 5.0
    n_times: int = 12
    samples: int = 2000
    steps: int = 100
    method: str = "sde"
    taus: tuple = (1.0, 1e3, math.inf)
    tau_stop: Optional[float] = None
    curve_taus: tuple = tuple(np.geomspace(1e-1, 1e8, 73).tolist())
    ks: tuple = KS
    n_boot: int = 1000
    mem_frac: float = 0.5

    def __post_init__(self):
        if not isinstance(self.data, DataSpec) or self.data.kind not in DATA_KINDS:
            raise ValueError(f"data must be a DataSpec of kind {' or '.join(DATA_KINDS)}, got {self.data!r}")
        _check_common(self, ("d", "p", "n_times", "samples", "steps", "n_boot"))
        object.__setattr__(self, "n", _checks.integer("n", self.n, 2))
        object.__setattr__(self, "rep", _checks.integer("rep", self.rep, 0))
        if self.tau_stop is not None:
            object.__setattr__(self, "tau_stop", check_positive("tau_stop", self.tau_stop))
        object.__setattr__(self, "mem_frac", check_fraction("mem_frac", self.mem_frac))

    def key(self) -> jax.Array:
        """The unit's PRNG key."""
        return stream_key(self.seed, "generation", self.rep, self.n)


@results.register
@dataclasses.dataclass(frozen=True)
class TheoryUnit:
    """The d → ∞ spectral memorisation time at each grid time for one n, isotropic σ_x = 1 (docs/theory.md §6.2)."""

    activation: str = "tanh"
    d: int = 16
    p: int = 1024
    n: int = 16
    times: tuple = (0.01, 0.1, 1.0)

    def __post_init__(self):
        _checks.activation_name(self.activation)
        for name in ("d", "p", "n"):
            object.__setattr__(self, name, _checks.integer(name, getattr(self, name)))
        object.__setattr__(self, "times", _checks.ascending("times", self.times, allow_inf_last=False))


@results.register
@dataclasses.dataclass(frozen=True, eq=False)
class Measurement:
    """Memorisation and quality of one set of samples (docs/theory.md §5.3, §5.6).

    ``fmem``, ``fmem_lo``, ``fmem_hi`` (per k of the unit's ``ks``): f_mem against the training set X
    with its 95 % bootstrap interval; ``fmem_sym``: against {X, −X}; ``closer_train``: fraction
    closer to X than to a fresh test set; ``kl``, ``w2``: Gaussian KL and W₂ of the samples'
    moments against P_{t_min}, ``kl_floor`` that of exact samples; ``balance``: |fraction on the
    +μ side − ½| for a two-class mixture (NaN otherwise).
    """

    fmem: np.ndarray
    fmem_lo: np.ndarray
    fmem_hi: np.ndarray
    fmem_sym: np.ndarray
    closer_train: float
    kl: float
    w2: float
    kl_floor: float
    balance: float


@results.register
@dataclasses.dataclass(frozen=True, eq=False)
class GenerationResult:
    """What one :class:`GenerationUnit` measured.

    Per τ of ``unit.taus`` (last axis): ``fmem``, ``fmem_lo``, ``fmem_hi``, ``fmem_sym`` (k, τ) and
    ``closer_train``, ``kl``, ``w2``, ``balance`` (τ,). ``stop``: the same at ``unit.tau_stop``
    (None without it). ``population``, ``empirical``: the exact-score reference samplers. Per grid
    time: ``grid_times``, ``loss_tau_mem`` (loss-level τ_mem), ``lam_ordered`` (eigenvalue of U at
    index p − n − d), ``gen_gap`` and ``score_error`` over ``unit.curve_taus``, ``mehler_orders``.
    ``warnings``: distinct library warnings raised (e.g. Mehler truncation); timings in seconds.
    """

    unit: GenerationUnit
    fmem: np.ndarray
    fmem_lo: np.ndarray
    fmem_hi: np.ndarray
    fmem_sym: np.ndarray
    closer_train: np.ndarray
    kl: np.ndarray
    w2: np.ndarray
    balance: np.ndarray
    stop: Optional[Measurement]
    population: Measurement
    empirical: Measurement
    grid_times: np.ndarray
    loss_tau_mem: np.ndarray
    lam_ordered: np.ndarray
    gen_gap: np.ndarray
    score_error: np.ndarray
    mehler_orders: np.ndarray
    warnings: tuple = ()
    seconds_train: float = math.nan
    seconds_sample: float = math.nan


@results.register
@dataclasses.dataclass(frozen=True, eq=False)
class TheoryResult:
    """``lambda_mem`` and ``tau_mem_spectral`` of :func:`rfdiff.theory.predict` per grid time (NaN where undefined)."""

    unit: TheoryUnit
    times: np.ndarray
    lambda_mem: np.ndarray
    tau_mem_spectral: np.ndarray
    seconds: float = math.nan


def _measure(key, y, X, test, ks, n_boot, mean_true, cov_true, mu_dir) -> Measurement:
    """f_mem (bootstrap CIs), f_mem against {±x^ν}, closer-to-train fraction, Gaussian quality (§5.3, §5.6)."""
    y = np.asarray(y)
    rep = M.f_mem_report(key, M.distance_ratio(y, X), ks, n_boot=n_boot)
    r_sym = M.distance_ratio(y, np.concatenate([X, -X]))
    q = M.gaussian_quality(y, mean_true, cov_true)
    f = np.array([rep[f"{k:.4g}"] for k in ks])
    bal = abs(float(np.mean(y @ mu_dir > 0)) - 0.5) if mu_dir is not None else math.nan
    return Measurement(f[:, 0], f[:, 1], f[:, 2], np.array([M.f_mem(r_sym, k) for k in ks]),
                       M.closer_to_train_fraction(y, X, test), q["kl"], q["w2"], q["kl_floor"], bal)


@x64
def run_unit(unit: GenerationUnit) -> GenerationResult:
    """Train the RF score grid, sample at every τ (and τ_stop), measure, in float64 (docs/theory.md §5)."""
    if not isinstance(unit, GenerationUnit):
        raise ValueError(f"unit must be a GenerationUnit, got {type(unit).__name__}")
    u = unit
    k_x, k_test, k_w, k_s, k_boot, k_ref = jax.random.split(u.key(), 6)
    data = u.data.build(u.d, None)     # isotropic and mixture laws draw nothing
    X = np.asarray(data.sample(k_x, u.n), dtype=np.float64)
    test = np.asarray(data.sample(k_test, u.n), dtype=np.float64)
    Pt = data.noised(u.t_min)
    mean_true, cov_true = Pt.weights @ Pt.means, Pt.covariance()
    mu_dir = data.means[0] / (np.linalg.norm(data.means[0]) or 1.0) if data.n_components == 2 else None
    taus = np.asarray(u.taus)
    all_taus = taus if u.tau_stop is None else np.append(taus, u.tau_stop)   # τ_stop last (each τ is independent)
    i_stop = None if u.tau_stop is None else taus.size
    measure = lambda y: _measure(k_boot, y, X, test, u.ks, u.n_boot, mean_true, cov_true, mu_dir)  # noqa: E731
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        G = S.train_score_grid(k_w, X, all_taus, u.p, t_min=u.t_min, t_max=u.t_max, n_times=u.n_times,
                               data=data, curve_taus=np.asarray(u.curve_taus), activation=u.activation)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    meas = [measure(S.sample_rf(k_s, G, u.samples, tau_index=i, n_steps=u.steps, method=u.method))
            for i in range(all_taus.size)]   # common random numbers across τ (same sampling key)
    kw = dict(t_min=u.t_min, t_max=u.t_max, n_steps=u.steps, method=u.method)
    population = measure(S.sample_population(k_ref, data, u.samples, **kw))
    empirical = measure(S.sample_empirical(k_ref, X, u.samples, **kw))
    t_sample = time.perf_counter() - t0
    stop = None if i_stop is None else meas.pop(i_stop)
    per = G.info["per_time"]
    curve_taus = np.asarray(u.curve_taus)
    loss_tau_mem = [timescales.tau_mem(curve_taus, np.asarray(r["curves"]["gen_gap"]), frac=u.mem_frac)["tau_mem"]
                    for r in per]
    stack = lambda name: np.stack([getattr(m, name) for m in meas], axis=-1)  # noqa: E731
    return GenerationResult(
        unit=u, fmem=stack("fmem"), fmem_lo=stack("fmem_lo"), fmem_hi=stack("fmem_hi"), fmem_sym=stack("fmem_sym"),
        closer_train=stack("closer_train"), kl=stack("kl"), w2=stack("w2"), balance=stack("balance"), stop=stop,
        population=population, empirical=empirical, grid_times=np.asarray(G.times, dtype=np.float64),
        loss_tau_mem=np.asarray(loss_tau_mem, dtype=np.float64),
        lam_ordered=np.array([math.nan if r["lam_ordered"] is None else r["lam_ordered"] for r in per]),
        gen_gap=np.array([r["curves"]["gen_gap"] for r in per]),
        score_error=np.array([r["curves"]["score_error"] for r in per]),
        mehler_orders=np.array([r["mehler_order"] for r in per]),
        warnings=tuple(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught)),
        seconds_train=t_train, seconds_sample=t_sample)


def theory_tau_mem(activation: str, t: float, d: int, p: int, n: int) -> tuple[float, float]:
    """(λ_mem, ψ_p/(Δ_t λ_mem)) of the d → ∞ theory for isotropic data, σ_x = 1 (docs/theory.md §6.2).

    From :func:`rfdiff.theory.predict`; NaN where the memorisation edge is undefined (n ≤ d or
    n + d ≥ p, the rule of §6.2) or the theory fails to produce it.
    """

    if not (d < n and n + d < p):
        return math.nan, math.nan
    try:
        pred = predict(activation, float(t), p / d, n / d)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError):
        return math.nan, math.nan
    return float(pred.lambda_mem), float(pred.tau_mem_spectral)


@x64
def theory_unit(unit: TheoryUnit) -> TheoryResult:
    """:func:`theory_tau_mem` at every time of ``unit.times``."""
    if not isinstance(unit, TheoryUnit):
        raise ValueError(f"unit must be a TheoryUnit, got {type(unit).__name__}")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        vals = np.array([theory_tau_mem(unit.activation, t, unit.d, unit.p, unit.n) for t in unit.times])
    return TheoryResult(unit, np.asarray(unit.times), vals[:, 0], vals[:, 1], time.perf_counter() - t0)


_UNIT_FUNCTIONS = {GenerationUnit: run_unit, TheoryUnit: theory_unit}


def compute_unit(unit):
    """The sweep's unit function: :func:`run_unit` or :func:`theory_unit` according to the unit's type."""
    fn = _UNIT_FUNCTIONS.get(type(unit))
    if fn is None:
        raise ValueError(f"unit must be a GenerationUnit or a TheoryUnit, got {type(unit).__name__}")
    return fn(unit)


def gen_tau_mem(taus, fmem_row) -> float:
    """Generation-level τ_mem: first τ with f_mem ≥ ½ f_mem(τ = ∞), interpolated in log τ (docs/theory.md §5.5).

    ``taus`` ends with ``inf``; NaN when f_mem(∞) = 0.
    """
    taus, f = np.asarray(taus, dtype=np.float64), np.asarray(fmem_row, dtype=np.float64)
    if taus.shape != f.shape or taus.ndim != 1 or taus.size < 2 or np.isfinite(taus[-1]):
        raise ValueError("taus must be 1-d, end with inf and match fmem_row in length")
    if not f[-1] > 0:
        return math.nan
    return M.crossing_time(taus[:-1], f[:-1], 0.5 * f[-1])


# ----------------------------------------------------------------------------------------------
# the study


@results.register
@dataclasses.dataclass(frozen=True)
class GenerationStudy:
    """The generation study (docs/theory.md §5): isotropic N(0, I_d) over ``n_values`` × ``seeds``
    repetitions, the mixture ½N(μ, I) + ½N(−μ, I) (‖μ‖ = ``mu_norm``) at ``mixture_n``, and
    ``compare_activation`` (None: skipped) at ``compare_n``; ``f_max`` sets the best-in-hindsight
    τ of the early-stopping rule (§5.5). Other fields as :class:`GenerationUnit`.
    """

    d: int = 16
    p: int = 1024
    n_values: tuple = (2, 4, 8, 16, 32, 64, 128)
    seeds: int = 2
    samples: int = 2000
    steps: int = 100
    n_times: int = 12
    t_min: float = 0.01
    t_max: float = 5.0
    activation: str = "tanh"
    compare_activation: Optional[str] = "gelu"
    compare_n: tuple = (2, 4)
    method: str = "sde"
    mu_norm: float = 3.0
    f_max: float = 0.1
    mixture_n: tuple = (8, 32, 128)
    taus: tuple = tuple(np.concatenate([np.geomspace(1.0, 1e7, 15), [np.inf]]).tolist())
    curve_taus: tuple = tuple(np.geomspace(1e-1, 1e8, 73).tolist())
    seed: int = 0
    ks: tuple = KS
    n_boot: int = 1000

    def __post_init__(self):
        _check_common(self, ("d", "p", "seeds", "samples", "steps", "n_times", "n_boot"))
        for name, allow_empty in (("n_values", False), ("mixture_n", True), ("compare_n", True)):
            try:
                vals = sorted({int(x) for x in getattr(self, name)})
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a sequence of integers, got {getattr(self, name)!r}") from None
            if (not vals and not allow_empty) or (vals and vals[0] < 2):
                raise ValueError(f"n must be >= 2 for every size in {name} (f_mem needs a second-nearest "
                                 f"training point), got {getattr(self, name)!r}")
            object.__setattr__(self, name, tuple(vals))
        if not np.isinf(self.taus[-1]):
            raise ValueError("taus must end with inf (f_mem(τ = ∞) sets the generation-level τ_mem)")
        if len(self.taus) < 2:
            raise ValueError("taus must hold at least one finite τ before inf")
        if self.compare_activation is None:
            object.__setattr__(self, "compare_n", ())
        else:
            try:
                _checks.activation_name(self.compare_activation)
            except ValueError as err:
                raise ValueError(f"compare_activation: {err}") from None
            missing = sorted(set(self.compare_n) - set(self.n_values))
            if missing:
                raise ValueError(f"compare_n must be a subset of n_values, got extra sizes {missing}")
        object.__setattr__(self, "mu_norm", check_positive("mu_norm", self.mu_norm))
        if not 0.0 <= self.f_max <= 1.0:
            raise ValueError(f"f_max must be in [0, 1], got {self.f_max!r}")
        object.__setattr__(self, "f_max", float(self.f_max))

    @property
    def grid_times(self) -> np.ndarray:
        """The diffusion times of the score grid (log-spaced, docs/theory.md §5.1)."""
        return S.time_grid(self.t_min, self.t_max, self.n_times)

    def unit(self, n: int, rep: int = 0, data: str = "isotropic", activation: Optional[str] = None,
             tau_stop: Optional[float] = None) -> GenerationUnit:
        """The unit of one (data, n, repetition, activation)."""
        spec = DataSpec("mixture", mu_norm=self.mu_norm) if data == "mixture" else DataSpec("isotropic")
        return GenerationUnit(data=spec, d=self.d, p=self.p, n=n, seed=self.seed, rep=rep,
                              activation=activation or self.activation, t_min=self.t_min, t_max=self.t_max,
                              n_times=self.n_times, samples=self.samples, steps=self.steps, method=self.method,
                              taus=self.taus, tau_stop=tau_stop, curve_taus=self.curve_taus, ks=self.ks,
                              n_boot=self.n_boot)

    def theory_units(self) -> list[TheoryUnit]:
        """One :class:`TheoryUnit` per n."""
        times = tuple(self.grid_times.tolist())
        return [TheoryUnit(self.activation, self.d, self.p, n, times) for n in self.n_values]


def default_study(quick: bool = False, **overrides) -> GenerationStudy:
    """The study's default sizes (``quick``: a smoke test of a few minutes on 2 cores); ``overrides``
    (None values ignored) replace fields. ``n_values`` also sets ``compare_n`` (the smallest one or two)."""
    kw = dict(d=8, p=256, n_values=(4, 16, 64), seeds=1, samples=500, steps=60, n_times=6, mixture_n=(8, 32),
              taus=tuple(np.concatenate([np.geomspace(1.0, 1e6, 7), [np.inf]]).tolist()),
              curve_taus=tuple(np.geomspace(1e-1, 1e8, 37).tolist())) if quick else {}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    if "compare_n" not in overrides or overrides["compare_n"] is None:
        ns = sorted({int(x) for x in kw.get("n_values", GenerationStudy.n_values)})
        kw["compare_n"] = tuple(ns[:1] if quick else ns[:2])
    return GenerationStudy(**kw)


def first_units(study: GenerationStudy) -> list:
    """Units that need no calibration: the smallest n (all repetitions), the activation comparison, the theory."""
    n0 = study.n_values[0]
    units = [study.unit(n0, s) for s in range(study.seeds)]
    if study.compare_activation is not None:
        units += [study.unit(n, 0, activation=study.compare_activation) for n in study.compare_n]
    return units + study.theory_units()


def second_units(study: GenerationStudy, c: float) -> list:
    """Every larger n (all repetitions) with τ_stop = c·n, and the mixture (docs/theory.md §5.5)."""
    c = check_positive("c", c)
    units = [study.unit(n, s, tau_stop=c * n) for n in study.n_values[1:] for s in range(study.seeds)]
    return units + [study.unit(n, 0, data="mixture") for n in study.mixture_n]


def _finite(study: GenerationStudy) -> np.ndarray:
    return np.isfinite(np.asarray(study.taus))


def calibrate(study: GenerationStudy, smallest: Sequence[GenerationResult]) -> tuple[float, int]:
    """Early-stopping slope c = τ*(n₀)/n₀ and the index of τ* among the finite τ (docs/theory.md §5.5).

    τ* is the lowest seed-averaged KL among the finite τ with seed-averaged f_mem (k = ks[0]) ≤ f_max,
    from the results of the smallest n (every repetition).
    """
    if not smallest:
        raise ValueError("smallest must hold the results of the smallest n")
    fin = _finite(study)
    taus = np.asarray(study.taus)[fin]
    kl = np.mean([r.kl for r in smallest], axis=0)[fin]
    f = np.mean([r.fmem[0] for r in smallest], axis=0)[fin]
    j = M.best_stopping_time(taus, kl, f, study.f_max)
    return M.calibrate_early_stopping(study.n_values[0], float(taus[j])), int(j)


@results.register
@dataclasses.dataclass(frozen=True, eq=False)
class EarlyStopping:
    """The rule τ_stop = c·n calibrated at the smallest n₀, and the best-in-hindsight τ*(n) (docs/theory.md §5.5).

    Per n: ``tau_stop`` with the seed-averaged ``kl_stop`` and ``fmem_stop`` (k = ks[0]) measured
    there (at n₀, τ_stop = τ*), and ``tau_best``, ``kl_best``, ``fmem_best`` at τ*(n) on the τ grid.
    """

    c: float
    n0: int
    f_max: float
    tau_stop: np.ndarray
    kl_stop: np.ndarray
    fmem_stop: np.ndarray
    tau_best: np.ndarray
    kl_best: np.ndarray
    fmem_best: np.ndarray


@results.register
@dataclasses.dataclass(frozen=True, eq=False)
class RunSet:
    """Repetition-0 runs of one variant over its sizes ``n`` (the mixture, or another activation).

    Arrays have a leading n axis: ``fmem``, ``fmem_lo``, ``fmem_hi``, ``fmem_sym`` (n, k, τ);
    ``kl``, ``w2``, ``balance``, ``closer_train`` (n, τ); the reference samplers' ``ref_pop_kl``,
    ``ref_pop_balance``, ``ref_emp_fmem`` (n,).
    """

    label: str
    activation: str
    n: np.ndarray
    fmem: np.ndarray
    fmem_lo: np.ndarray
    fmem_hi: np.ndarray
    fmem_sym: np.ndarray
    kl: np.ndarray
    w2: np.ndarray
    balance: np.ndarray
    closer_train: np.ndarray
    ref_pop_kl: np.ndarray
    ref_pop_balance: np.ndarray
    ref_emp_fmem: np.ndarray


def _run_set(label: str, activation: str, rs: Sequence[GenerationResult]) -> RunSet:
    g = lambda f: np.asarray([f(r) for r in rs], dtype=np.float64)  # noqa: E731
    return RunSet(label, activation, np.asarray([r.unit.n for r in rs], dtype=np.int64),
                  g(lambda r: r.fmem), g(lambda r: r.fmem_lo), g(lambda r: r.fmem_hi), g(lambda r: r.fmem_sym),
                  g(lambda r: r.kl), g(lambda r: r.w2), g(lambda r: r.balance), g(lambda r: r.closer_train),
                  g(lambda r: r.population.kl), g(lambda r: r.population.balance), g(lambda r: r.empirical.fmem[0]))


@results.register
@dataclasses.dataclass(frozen=True, eq=False)
class GenerationSummary:
    """The study's tables (docs/theory.md §5): isotropic runs indexed (n, repetition, [k,] τ).

    ``fmem``, ``fmem_lo``, ``fmem_hi``, ``fmem_sym`` (n, s, k, τ); ``closer_train``, ``kl``, ``w2``
    (n, s, τ); per grid time ``loss_tau_mem``, ``lam_ordered`` (n, s, grid) and the theory's
    ``theory_tau_mem``, ``theory_lambda_mem`` (n, grid); ``gen_tau_mem`` (n, s) from f_mem
    (:func:`gen_tau_mem`); ``gen_gap_seed0``, ``score_error_seed0`` (n, grid, curve τ); the
    references ``ref_pop_kl``, ``ref_pop_fmem``, ``ref_emp_kl``, ``ref_emp_fmem`` (n, s) (f_mem at
    k = ks[0]); ``emm`` {"0.1", "0.5" and, for an odd σ, "sym_0.1", "sym_0.5": (τ,)} (§5.4);
    ``early_stopping`` (§5.5); ``mixture`` and ``compare`` (None when not run); ``runs``: timings
    and warnings per unit.
    """

    study: GenerationStudy
    taus: np.ndarray
    n_values: np.ndarray
    grid_times: np.ndarray
    fmem: np.ndarray
    fmem_lo: np.ndarray
    fmem_hi: np.ndarray
    fmem_sym: np.ndarray
    closer_train: np.ndarray
    kl: np.ndarray
    w2: np.ndarray
    loss_tau_mem: np.ndarray
    lam_ordered: np.ndarray
    gen_tau_mem: np.ndarray
    theory_tau_mem: np.ndarray
    theory_lambda_mem: np.ndarray
    gen_gap_seed0: np.ndarray
    score_error_seed0: np.ndarray
    ref_pop_kl: np.ndarray
    ref_pop_fmem: np.ndarray
    ref_emp_kl: np.ndarray
    ref_emp_fmem: np.ndarray
    emm: dict
    early_stopping: EarlyStopping
    odd_activation: bool
    mixture: Optional[RunSet]
    compare: Optional[RunSet]
    runs: list = dataclasses.field(default_factory=list)


def summarize(study: GenerationStudy, unit_results: Sequence) -> GenerationSummary:
    """The study's tables, EMM_ε, early stopping and τ_mem comparison from its unit results (docs/theory.md §5, §6.2).

    ``unit_results`` holds the :class:`GenerationResult` and :class:`TheoryResult` of
    :func:`first_units` and :func:`second_units` (any order; others are ignored).
    """
    by_unit = {}
    for r in unit_results:
        if isinstance(r, (GenerationResult, TheoryResult)):
            by_unit[r.unit] = r

    def get(unit):
        if unit not in by_unit:
            raise ValueError(f"unit_results lacks the result of {unit!r}")
        return by_unit[unit]

    ns, S_ = study.n_values, study.seeds
    smallest = [get(study.unit(ns[0], s)) for s in range(S_)]
    c, j0 = calibrate(study, smallest)
    iso = [[smallest[s] if i == 0 else get(study.unit(n, s, tau_stop=c * n)) for s in range(S_)]
           for i, n in enumerate(ns)]
    arr = lambda f: np.asarray([[f(r) for r in row] for row in iso], dtype=np.float64)  # noqa: E731
    fmem, kl = arr(lambda r: r.fmem), arr(lambda r: r.kl)
    fmem_sym = arr(lambda r: r.fmem_sym)
    taus = np.asarray(study.taus)
    fin = _finite(study)
    f_mean, kl_mean = fmem[:, :, 0].mean(axis=1), kl.mean(axis=1)           # (n, τ)
    best = [M.best_stopping_time(taus[fin], kl_mean[i, fin], f_mean[i, fin], study.f_max) for i in range(len(ns))]
    stop_kl = [kl_mean[0, fin][j0]] + [np.mean([r.stop.kl for r in row]) for row in iso[1:]]
    stop_f = [f_mean[0, fin][j0]] + [np.mean([r.stop.fmem[0] for r in row]) for row in iso[1:]]
    es = EarlyStopping(c=c, n0=ns[0], f_max=study.f_max,
                       tau_stop=np.asarray([taus[fin][j0]] + [c * n for n in ns[1:]], dtype=np.float64),
                       kl_stop=np.asarray(stop_kl, dtype=np.float64), fmem_stop=np.asarray(stop_f, dtype=np.float64),
                       tau_best=taus[fin][best], kl_best=np.array([kl_mean[i, fin][j] for i, j in enumerate(best)]),
                       fmem_best=np.array([f_mean[i, fin][j] for i, j in enumerate(best)]))
    odd = S.activation_is_odd(study.activation)
    emm = {}
    for eps in (0.1, 0.5):
        emm[f"{eps:g}"] = M.emm(ns, fmem[:, :, 0].transpose(1, 0, 2), eps)
        if odd:
            emm[f"sym_{eps:g}"] = M.emm(ns, fmem_sym[:, :, 0].transpose(1, 0, 2), eps)
    theory = [get(u) for u in study.theory_units()]
    mixture = [get(study.unit(n, 0, data="mixture")) for n in study.mixture_n]
    compare = [get(study.unit(n, 0, activation=study.compare_activation)) for n in study.compare_n] \
        if study.compare_activation is not None else []
    runs = [{"data": r.unit.data.kind, "n": r.unit.n, "rep": r.unit.rep, "activation": r.unit.activation,
             "seconds_train": r.seconds_train, "seconds_sample": r.seconds_sample,
             "mehler_orders": r.mehler_orders.tolist(), "warnings": list(r.warnings)}
            for r in [r for row in iso for r in row] + mixture + compare]
    return GenerationSummary(
        study=study, taus=taus, n_values=np.asarray(ns, dtype=np.int64), grid_times=smallest[0].grid_times,
        fmem=fmem, fmem_lo=arr(lambda r: r.fmem_lo), fmem_hi=arr(lambda r: r.fmem_hi), fmem_sym=fmem_sym,
        closer_train=arr(lambda r: r.closer_train), kl=kl, w2=arr(lambda r: r.w2),
        loss_tau_mem=arr(lambda r: r.loss_tau_mem), lam_ordered=arr(lambda r: r.lam_ordered),
        gen_tau_mem=arr(lambda r: gen_tau_mem(taus, r.fmem[0])),
        theory_tau_mem=np.asarray([t.tau_mem_spectral for t in theory]),
        theory_lambda_mem=np.asarray([t.lambda_mem for t in theory]),
        gen_gap_seed0=np.asarray([row[0].gen_gap for row in iso]),
        score_error_seed0=np.asarray([row[0].score_error for row in iso]),
        ref_pop_kl=arr(lambda r: r.population.kl), ref_pop_fmem=arr(lambda r: r.population.fmem[0]),
        ref_emp_kl=arr(lambda r: r.empirical.kl), ref_emp_fmem=arr(lambda r: r.empirical.fmem[0]),
        emm=emm, early_stopping=es, odd_activation=odd,
        mixture=_run_set("mixture", study.activation, mixture) if mixture else None,
        compare=_run_set("activation", study.compare_activation, compare) if compare else None, runs=runs)


def run(study: GenerationStudy, *, cache_dir, client=None,
        progress: Optional[Callable[[int, int], object]] = None,
        recompute: bool = False) -> tuple[GenerationSummary, list[SweepReport]]:
    """Run the study in two cached sweeps (calibration at the smallest n, then the rest) and summarise it, on
    ``client`` (a ``distributed.Client``; None: serially in this process).

    ``progress(done, total)`` counts units over both sweeps. Raises :class:`rfdiff.sweep.SweepError`
    if a unit fails (after the other units of its sweep have finished).
    """
    if not isinstance(study, GenerationStudy):
        raise ValueError(f"study must be a GenerationStudy, got {type(study).__name__}")
    first = first_units(study)
    total = len(first) + len(study.n_values[1:]) * study.seeds + len(study.mixture_n)
    offset = 0

    def tick(done, _):
        if progress is not None:
            progress(offset + done, total)

    cache = Cache(Path(cache_dir), kind="rfdiff.pipelines.generation", recompute=recompute)
    rep1 = run_sweep(compute_unit, first, cache=cache, client=client, progress=tick).raise_on_failure()
    smallest = {study.unit(study.n_values[0], s) for s in range(study.seeds)}
    c, _ = calibrate(study, [r for r in rep1.results if isinstance(r, GenerationResult) and r.unit in smallest])
    offset = len(first)
    rep2 = run_sweep(compute_unit, second_units(study, c), cache=cache, client=client, progress=tick).raise_on_failure()
    return summarize(study, rep1.results + rep2.results), [rep1, rep2]
