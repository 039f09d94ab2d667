"""Generation with random-features scores: time-dependent RF score and reverse-time samplers (docs/theory.md §5).

* :func:`train_score_grid` trains one RF score per diffusion time of a grid (log-spaced
  t_min..t_max by default; one shared W or an independent W per time) with the exact
  gradient-flow solution (docs/theory.md §3, eq. 53): one eigendecomposition of U per grid time gives
  A(τ) for any number of training times τ at once (τ = ∞ gives A* = -√(p/Δ_t) Vᵀ U⁻¹).
* The score at any t uses the nearest grid time (in log t) or linear interpolation in t between
  the two neighbouring grid times.
* Samplers integrate, from x ~ N(0, I) at t_max down to t_min, either the reverse-time SDE
  (Euler–Maruyama; forward process dx = -x dt + √2 dB, so a step t → t - h is
  ``x ← x + h (x + 2 s(x, t)) + √(2h) z``) or the probability-flow ODE
  (``x ← x + h (x + s(x, t))``). Steps are log-spaced by default: the score's stiffness grows
  like 1/Δ_t ≈ 1/(2t) at small t, so a step proportional to t keeps Euler stable.
* Reference samplers use the exact population score of a Gaussian mixture (closed form,
  docs/theory.md §2) or the exact empirical score of the training set (which can only reproduce
  training points).

All samplers are vectorised over samples, jit-compiled once per shape (``lax.scan`` over the
steps) and take an explicit PRNG key first. Sampling runs in float64 by default; ``dtype=
jnp.float32`` is about 2x faster on CPU (see ``benchmarks/bench_sampling.py``).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_points, check_positive, check_positive_int, x64
from .activations import get_activation
from .data import GaussianMixture
from .diffusion import delta
from .dynamics import exact_dynamics
from .features import init_W
from .matrices import population_matrices, train_matrices
from .population import Population

METHODS = ("sde", "ode")
SCHEDULES = ("log", "uniform")
INTERPOLATIONS = ("nearest", "linear")


# ----------------------------------------------------------------------------- validation / grids

def _check_choice(name, value, valid):
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def _check_time_range(t_min, t_max):
    t_min = check_positive("t_min", t_min)
    t_max = check_positive("t_max", t_max)
    if t_min >= t_max:
        raise ValueError(f"t_min must be < t_max, got t_min={t_min:g}, t_max={t_max:g}")
    return t_min, t_max


def time_grid(t_min: float, t_max: float, n_times: int, spacing: str = "log") -> np.ndarray:
    """Ascending grid of diffusion times from t_min to t_max (log- or uniformly spaced), docs/theory.md §5."""
    t_min, t_max = _check_time_range(t_min, t_max)
    n_times = check_positive_int("n_times", n_times)
    _check_choice("spacing", spacing, SCHEDULES)
    if n_times == 1:
        raise ValueError("n_times must be >= 2 to span [t_min, t_max] (pass times=[t] for one time)")
    if spacing == "log":
        return np.geomspace(t_min, t_max, n_times)
    return np.linspace(t_min, t_max, n_times)


def reverse_times(t_min: float, t_max: float, n_steps: int, schedule: str = "log") -> np.ndarray:
    """Step times t_max = t_0 > t_1 > ... > t_S = t_min of the reverse integration, (n_steps + 1,)."""
    n_steps = check_positive_int("n_steps", n_steps)
    t_min, t_max = _check_time_range(t_min, t_max)
    _check_choice("schedule", schedule, SCHEDULES)
    if schedule == "log":
        ts = np.geomspace(t_max, t_min, n_steps + 1)
    else:
        ts = np.linspace(t_max, t_min, n_steps + 1)
    ts[0], ts[-1] = t_max, t_min
    return ts


def grid_lookup(grid_times, t_query, interpolation: str = "nearest"):
    """Indices (lo, hi) and weight w of grid times for each query time: s(t) = (1-w) s_lo + w s_hi.

    ``nearest`` picks the closest grid time in log t (w = 0, lo = hi); ``linear`` interpolates
    linearly in t between the neighbouring grid times (clamped outside the grid).
    """
    g = np.asarray(grid_times, dtype=np.float64).reshape(-1)
    t = np.asarray(t_query, dtype=np.float64).reshape(-1)
    _check_choice("interpolation", interpolation, INTERPOLATIONS)
    if g.size == 0 or np.any(g <= 0) or np.any(np.diff(g) <= 0):
        raise ValueError("grid_times must be positive and strictly increasing")
    if g.size == 1:
        z = np.zeros(t.size, dtype=np.int32)
        return z, z, np.zeros(t.size)
    if interpolation == "nearest":
        idx = np.abs(np.log(t)[:, None] - np.log(g)[None]).argmin(axis=1).astype(np.int32)
        return idx, idx, np.zeros(t.size)
    hi = np.clip(np.searchsorted(g, t, side="left"), 1, g.size - 1).astype(np.int32)
    lo = hi - 1
    w = np.clip((t - g[lo]) / (g[hi] - g[lo]), 0.0, 1.0)
    return lo, hi, w


# ----------------------------------------------------------------------------- the RF score grid

@dataclasses.dataclass(frozen=True, eq=False)
class RFScoreGrid:
    """RF scores ``s_k(x) = A_k σ(W_k x/√d)/√p`` at grid times t_k, trained to one or several τ (docs/theory.md §5).

    Attributes:
        times: (K,) ascending grid times.
        taus: (T,) training times τ (``inf`` for the converged A*).
        W: (1, p, d) for a shared W, else (K, p, d).
        A: (T, K, d, p) trained second layers, float64.
        activation: the :class:`~rfdiff.activations.Activation` σ.
        info: JSON-able per-grid-time diagnostics (Mehler order, truncation error, eigenvalue
            range of U, timings and, when population data were given, loss curves).
    """

    times: np.ndarray
    taus: np.ndarray
    W: jnp.ndarray
    A: jnp.ndarray
    activation: object
    info: dict

    @property
    def d(self) -> int:
        return int(self.W.shape[2])

    @property
    def p(self) -> int:
        return int(self.W.shape[1])

    @property
    def n_times(self) -> int:
        return int(self.times.size)

    @property
    def shared_W(self) -> bool:
        return self.W.shape[0] == 1

    @property
    def t_min(self) -> float:
        return float(self.times[0])

    @property
    def t_max(self) -> float:
        return float(self.times[-1])

    def tau_index(self, tau_index: int) -> int:
        """Validated index into ``taus``."""
        if isinstance(tau_index, bool) or not isinstance(tau_index, (int, np.integer)):
            raise ValueError(f"tau_index must be an integer, got {tau_index!r}")
        T = self.taus.size
        if not -T <= tau_index < T:
            raise ValueError(f"tau_index must be in [-{T}, {T}), got {tau_index}")
        return int(tau_index) % T

    @x64
    def score(self, x, t: float, tau_index: int = 0, interpolation: str = "nearest") -> jnp.ndarray:
        """s(x, t) (N, d) at one time t from the grid (nearest in log t, or linear in t)."""
        i = self.tau_index(tau_index)
        x = jnp.asarray(check_points("x", x, self.d), dtype=jnp.float64)
        check_positive("t", t)
        lo, hi, w = grid_lookup(self.times, [t], interpolation)
        act = get_activation(self.activation).fn
        Wl, Wh = self.W[0 if self.shared_W else lo[0]], self.W[0 if self.shared_W else hi[0]]
        sd, sp = math.sqrt(self.d), math.sqrt(self.p)
        s_lo = act(x @ Wl.T / sd) @ self.A[i, lo[0]].T / sp
        if w[0] == 0.0:
            return s_lo
        s_hi = act(x @ Wh.T / sd) @ self.A[i, hi[0]].T / sp
        return (1.0 - w[0]) * s_lo + w[0] * s_hi


def _check_taus(taus) -> np.ndarray:
    tau = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if tau.ndim != 1 or tau.size == 0:
        raise ValueError("taus must be a non-empty 1-D sequence")
    if np.any(np.isnan(tau)) or np.any(tau < 0):
        raise ValueError("taus must be >= 0 (inf allowed for the converged score)")
    return tau


def _trained_A(dyn, taus, eta):
    """A(τ) (T, d, p) for all τ from one ExactDynamics (inf → A*)."""
    p, dt = dyn.p, delta(dyn.t)
    finite = np.isfinite(taus)
    out = [None] * taus.size
    if np.any(finite):
        F = dyn.f(jnp.asarray(taus[finite]), eta)                   # (T_f, p)
        YT = dyn.Y.T                                                 # (d, p)
        As = math.sqrt(p / dt) * ((YT[None] * F[:, None, :]) @ dyn.Q.T)
        for j, i in enumerate(np.nonzero(finite)[0]):
            out[i] = As[j]
    if np.any(~finite):
        Ainf = dyn.A_infinity()
        for i in np.nonzero(~finite)[0]:
            out[i] = Ainf
    return jnp.stack(out)


@x64
def train_score_grid(key: jax.Array, X, taus, p: int, *, t_min: float = 0.01, t_max: float = 5.0,
                     n_times: int = 20, spacing: str = "log", times: Optional[Sequence[float]] = None,
                     shared_W: bool = True, activation="tanh", eta: Optional[float] = None,
                     tol: float = 1e-8, data: Optional[GaussianMixture] = None, curve_taus=None,
                     callback: Optional[Callable[[int, float], None]] = None) -> RFScoreGrid:
    """Train one RF score per grid time to each τ in ``taus`` with the exact dynamics (docs/theory.md §3 eq. 53, §5).

    Per grid time t_k: U, V from :func:`~rfdiff.matrices.train_matrices` (exact noise average),
    one eigendecomposition (:func:`~rfdiff.dynamics.exact_dynamics`), then A(τ) for every τ.

    Args:
        key: PRNG key for W (and the Monte Carlo Fisher information of mixture data).
        X: (n, d) training set.
        taus: training times τ (≥ 0; ``inf`` for the converged A*).
        p: number of random features per time.
        t_min, t_max, n_times, spacing: the grid (ignored when ``times`` is given).
        times: explicit ascending grid times.
        shared_W: one W for all times (True) or an independent W per time.
        activation: σ (name, Activation or callable).
        eta: None for gradient flow, else discrete GD at step η (same τ units).
        tol: Mehler truncation tolerance for U.
        data: optional population P_0; then Ũ, Ṽ are computed too and ``info["curves"]`` holds
            the loss curves (train, test, gen_gap, score_error) at ``curve_taus`` per grid time.
        curve_taus: τ values for those curves (default: 60 log-spaced from 1e-2 to 1e7).
        callback: called as ``callback(k, t_k)`` after each grid time (progress bars).
    """
    X = check_points("X", X)
    n, d = X.shape
    p = check_positive_int("p", p)
    tau = _check_taus(taus)
    grid = time_grid(t_min, t_max, n_times, spacing) if times is None else _explicit_times(times)
    if data is not None and (not isinstance(data, GaussianMixture) or data.d != d):
        raise ValueError(f"data must be a GaussianMixture with d = {d} (the dimension of X)")
    curve_taus = _check_taus(np.geomspace(1e-2, 1e7, 60) if curve_taus is None else curve_taus)
    act = get_activation(activation)
    kW, kJ = jax.random.split(key)
    Xj = jnp.asarray(X, dtype=jnp.float64)
    W_shared = init_W(kW, p, d, dtype=jnp.float64) if shared_W else None
    Ws, As, per_time = [], [], []
    for k, t in enumerate(grid):
        W = W_shared if shared_W else init_W(jax.random.fold_in(kW, k), p, d, dtype=jnp.float64)
        A_k, rec = _train_at_time(W, Xj, float(t), tau, act, eta, tol, data, jax.random.fold_in(kJ, k), curve_taus)
        per_time.append(rec)
        if not shared_W:
            Ws.append(W)
        As.append(A_k)
        if callback is not None:
            callback(k, float(t))
    Wst = W_shared[None] if shared_W else jnp.stack(Ws)
    Ast = jnp.stack(As, axis=1)                                   # (T, K, d, p)
    info = {"n": n, "d": d, "p": p, "activation": act.name, "shared_W": bool(shared_W),
            "eta": eta, "tol": tol, "per_time": per_time,
            "curve_taus": curve_taus.tolist() if data is not None else None}
    return RFScoreGrid(grid, tau, Wst, Ast, act, info)


def _explicit_times(times) -> np.ndarray:
    grid = np.asarray(times, dtype=np.float64).reshape(-1)
    if grid.size == 0 or np.any(~np.isfinite(grid)) or np.any(grid <= 0) or np.any(np.diff(grid) <= 0):
        raise ValueError("times must be positive, finite and strictly increasing")
    return grid


def _train_at_time(W, Xj, t: float, tau, act, eta, tol, data, key_fisher, curve_taus) -> tuple:
    """A(τ) (T, d, p) at one grid time by the exact dynamics (docs/theory.md §3 eq. 53), and its diagnostics
    (Mehler order, eigenvalue range, timings; the loss curves when the population ``data`` is given)."""
    n, p = Xj.shape[0], W.shape[0]
    d = Xj.shape[1]
    t0 = time.perf_counter()
    fm = train_matrices(W, Xj, t, act, tol=tol)
    t1 = time.perf_counter()
    pop = None
    if data is not None:
        pm = population_matrices(W, data, t, act, tol=tol)
        pop = Population(pm.U, pm.V, data.noised(t).fisher_information(key_fisher)[0])
    t_pop = time.perf_counter() - t1
    t1 = time.perf_counter()
    dyn = exact_dynamics(fm.U, fm.V, t, pop)
    t2 = time.perf_counter()
    A_k = _trained_A(dyn, tau, eta).block_until_ready()
    t3 = time.perf_counter()
    lam = np.asarray(dyn.lam)
    rec = {"t": t, "mehler_order": fm.order, "trunc_error": fm.trunc_error, "n_negative": dyn.n_negative,
           "lam_min": float(lam[0]), "lam_max": float(lam[-1]),
           "lam_ordered": lam[max(0, p - n - d)].item() if p > n + d else None,
           "seconds_matrices": t1 - t0 - t_pop, "seconds_population": t_pop, "seconds_eigh": t2 - t1,
           "seconds_A": t3 - t2}
    if data is not None:
        cur = dyn.curves(curve_taus, eta)
        rec["curves"] = {kk: np.asarray(v).tolist() for kk, v in cur.items()}
    return A_k, rec


# ----------------------------------------------------------------------------- score functions for the scan

def _rf_score_shared(x, step, params, act):
    """RF score with one W: A_t = (1-w)A_lo + w A_hi (exact for linear interpolation)."""
    Ws, As = params
    lo, hi, w = step
    A = (1.0 - w) * As[lo] + w * As[hi]
    return act.fn(x @ Ws[0].T) @ A.T


def _rf_score_indep_nearest(x, step, params, act):
    Ws, As = params
    lo, _, _ = step
    return act.fn(x @ Ws[lo].T) @ As[lo].T


def _rf_score_indep_linear(x, step, params, act):
    Ws, As = params
    lo, hi, w = step
    fn = act.fn
    return (1.0 - w) * (fn(x @ Ws[lo].T) @ As[lo].T) + w * (fn(x @ Ws[hi].T) @ As[hi].T)


def _mixture_score(y, step, params, act=None):
    """∇log P_t for a Gaussian mixture with shared eigenbasis O (docs/theory.md §2): same formula as GaussianMixture.score."""
    O, logw = params
    mo, lam = step                                  # (C, d) means and eigenvalues of P_t in the eigenbasis
    yo = y @ O
    diff = yo[:, None, :] - mo[None]
    logp = logw - 0.5 * jnp.sum(jnp.log(lam), axis=1) - 0.5 * jnp.sum(diff * diff / lam, axis=2)
    resp = jax.nn.softmax(logp, axis=1)
    return -jnp.einsum("nc,ncd->nd", resp, diff / lam) @ O.T


def _empirical_score(y, step, params, act=None):
    """Score of P_t^emp = (1/n) Σ_ν N(e^{-t} x^ν, Δ_t I) (docs/theory.md §2), as metrics.empirical_score."""
    X, X2 = params
    et, dt = step
    sq = jnp.sum(y * y, axis=1)[:, None] - 2.0 * et * (y @ X.T) + (et * et) * X2[None]
    w = jax.nn.softmax(-sq / (2.0 * dt), axis=1)
    return (et * (w @ X) - y) / dt


@functools.partial(jax.jit, static_argnames=("score_fn", "method", "act", "denoise"))
def _integrate(key, x0, hs, steps, final_step, final_t, params, score_fn, method, act, denoise):
    """Euler(–Maruyama) from t_max to t_min: one scan step per (h, step tables)."""
    keys = jax.random.split(key, hs.shape[0])

    def body(x, inp):
        h, step, k = inp
        s = score_fn(x, step, params, act)
        if method == "sde":
            z = jax.random.normal(k, x.shape, x.dtype)
            x = x + h * (x + 2.0 * s) + jnp.sqrt(2.0 * h) * z
        else:
            x = x + h * (x + s)
        return x, None

    x, _ = jax.lax.scan(body, x0, (hs, steps, keys))
    if denoise:  # Tweedie: E[x_0 | x_t] = e^{t}(x + Δ_t s(x, t))
        et = jnp.exp(final_t)
        x = et * (x + (-jnp.expm1(-2.0 * final_t)) * score_fn(x, final_step, params, act))
    return x


def _run(key, n_samples, d, ts, steps_all, params, score_fn, method, act, denoise, dtype,
         batch_size, x0):
    """Shared driver: validation of the common arguments, sample batches, dtype casting."""
    n_samples = check_positive_int("n_samples", n_samples)
    _check_choice("method", method, METHODS)
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    batch = n_samples if batch_size is None else check_positive_int("batch_size", batch_size)
    if x0 is not None:
        x0 = check_points("x0", x0, d)
        if x0.shape[0] != n_samples:
            raise ValueError(f"x0 must have n_samples = {n_samples} rows, got {x0.shape[0]}")
    cast = lambda a: jax.tree_util.tree_map(  # noqa: E731
        lambda v: v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v, a)
    hs = jnp.asarray(-np.diff(ts), dtype=dtype)
    steps = cast(jax.tree_util.tree_map(lambda v: jnp.asarray(v)[:-1], steps_all))
    final_step = cast(jax.tree_util.tree_map(lambda v: jnp.asarray(v)[-1], steps_all))
    params = cast(params)
    final_t = jnp.asarray(ts[-1], dtype=dtype)
    k_init, k_run = jax.random.split(key)
    out = []
    for b, start in enumerate(range(0, n_samples, batch)):
        m = min(batch, n_samples - start)
        if x0 is None:
            xb = jax.random.normal(jax.random.fold_in(k_init, b), (batch, d), dtype)
        else:
            xb = jnp.asarray(x0[start:start + m], dtype)
            if m < batch:
                xb = jnp.concatenate([xb, jnp.zeros((batch - m, d), dtype)])
        xb = _integrate(jax.random.fold_in(k_run, b), xb, hs, steps, final_step, final_t, params,
                        score_fn, method, act, denoise)
        out.append(xb[:m])
    return jnp.concatenate(out) if len(out) > 1 else out[0]


# ----------------------------------------------------------------------------- public samplers

@x64
def sample_rf(key: jax.Array, scores: RFScoreGrid, n_samples: int, *, tau_index: int = 0,
              n_steps: int = 100, method: str = "sde", schedule: str = "log",
              interpolation: str = "nearest", t_min: Optional[float] = None, t_max: Optional[float] = None,
              denoise: bool = False, dtype=jnp.float64, batch_size: Optional[int] = None, x0=None) -> jnp.ndarray:
    """Generate samples with the time-dependent RF score trained to ``scores.taus[tau_index]`` (docs/theory.md §5).

    Reverse-time SDE ``-dx = [x + 2 s(x, t)] dt + dB`` (variance 2dt, Euler–Maruyama) or the
    probability-flow ODE ``-dx = [x + s(x, t)] dt``, from x ~ N(0, I) at t_max (default: the
    last grid time) down to t_min (default: the first), ``n_steps`` steps (log-spaced by default).

    Args:
        key: PRNG key (initial points and the SDE noise).
        scores: trained :class:`RFScoreGrid`.
        n_samples: number of samples.
        tau_index: which τ of ``scores.taus``.
        interpolation: ``nearest`` grid time (in log t) or ``linear`` in t.
        denoise: apply one Tweedie step ``x ← e^{t}(x + Δ_t s(x, t))`` at t_min.
        dtype: float64 (default) or float32 (about 2x faster on CPU).
        batch_size: samples per compiled call (bounds memory; None: all at once).
        x0: optional (n_samples, d) initial points instead of N(0, I) draws.

    Returns:
        (n_samples, d) samples at t_min.
    """
    if not isinstance(scores, RFScoreGrid):
        raise ValueError("scores must be an RFScoreGrid (from train_score_grid)")
    i = scores.tau_index(tau_index)
    _check_choice("interpolation", interpolation, INTERPOLATIONS)
    lo_t = scores.t_min if t_min is None else t_min
    hi_t = scores.t_max if t_max is None else t_max
    ts = reverse_times(lo_t, hi_t, n_steps, schedule)
    lo, hi, w = grid_lookup(scores.times, ts, interpolation)
    d, p = scores.d, scores.p
    Ws = scores.W / math.sqrt(d)
    As = scores.A[i] / math.sqrt(p)
    if scores.shared_W:
        fn = _rf_score_shared
    else:
        fn = _rf_score_indep_nearest if interpolation == "nearest" else _rf_score_indep_linear
    steps_all = (jnp.asarray(lo), jnp.asarray(hi), jnp.asarray(w))
    return _run(key, n_samples, d, ts, steps_all, (Ws, As), fn, method, get_activation(scores.activation), denoise,
                dtype, batch_size, x0)


def _score_times(ts, grid_times):
    if grid_times is None:
        return ts
    g = np.sort(np.asarray(grid_times, dtype=np.float64).reshape(-1))
    lo, _, _ = grid_lookup(g, ts, "nearest")
    return g[lo]


@x64
def sample_population(key: jax.Array, data: GaussianMixture, n_samples: int, *, t_min: float = 0.01,
                      t_max: float = 5.0, n_steps: int = 100, method: str = "sde", schedule: str = "log",
                      grid_times=None, denoise: bool = False, dtype=jnp.float64,
                      batch_size: Optional[int] = None, x0=None) -> jnp.ndarray:
    """Reference sampler with the exact population score ∇log P_t of a Gaussian mixture (docs/theory.md §5).

    ``grid_times``: evaluate the score at the nearest of these times instead of the step time
    (isolates the time-quantisation error of an RF grid from the RF approximation error).
    Other arguments as :func:`sample_rf`.
    """
    if not isinstance(data, GaussianMixture):
        raise ValueError("data must be a GaussianMixture")
    ts = reverse_times(t_min, t_max, n_steps, schedule)
    st = _score_times(ts, grid_times)
    O = jnp.asarray(data.orthonormal_basis())
    mo = jnp.asarray(np.exp(-st)[:, None, None] * (data.means @ np.asarray(O))[None])
    lam = jnp.asarray(np.exp(-2 * st)[:, None, None] * data.eigvals[None] + (-np.expm1(-2 * st))[:, None, None])
    params = (O, jnp.log(jnp.asarray(data.weights)))
    return _run(key, n_samples, data.d, ts, (mo, lam), params, _mixture_score, method, None, denoise,
                dtype, batch_size, x0)


@x64
def sample_empirical(key: jax.Array, X, n_samples: int, *, t_min: float = 0.01, t_max: float = 5.0,
                     n_steps: int = 100, method: str = "sde", schedule: str = "log", grid_times=None,
                     denoise: bool = False, dtype=jnp.float64, batch_size: Optional[int] = None,
                     x0=None) -> jnp.ndarray:
    """Reference sampler with the exact empirical score of the training set X (docs/theory.md §2, §5).

    The score of P_t^emp = (1/n) Σ_ν N(e^{-t} x^ν, Δ_t I) drives every trajectory onto a
    training point as t_min → 0. ``batch_size`` defaults to keep batch × n ≤ 2²⁴ kernel entries.
    Other arguments as :func:`sample_population`.
    """
    X = check_points("X", X)
    n, d = X.shape
    ts = reverse_times(t_min, t_max, n_steps, schedule)
    st = _score_times(ts, grid_times)
    if batch_size is None:
        batch_size = max(1, min(check_positive_int("n_samples", n_samples), (1 << 24) // n))
    Xj = jnp.asarray(X, dtype=jnp.float64)
    params = (Xj, jnp.sum(Xj * Xj, axis=1))
    steps_all = (jnp.asarray(np.exp(-st)), jnp.asarray(-np.expm1(-2 * st)))
    return _run(key, n_samples, d, ts, steps_all, params, _empirical_score, method, None, denoise,
                dtype, batch_size, x0)


def euler_covariance(data: GaussianMixture, *, t_min: float = 0.01, t_max: float = 5.0, n_steps: int = 100,
                     method: str = "sde", schedule: str = "log", grid_times=None) -> np.ndarray:
    """Exact covariance of the discretised population-score sampler for zero-mean Gaussian data (docs/theory.md §5).

    In the eigenbasis of Σ the score is linear, ``s = -y/Γ²(t)`` with ``Γ² = e^{-2t}λ + Δ_t``, so
    one Euler step maps the variance v to ``a² v + 2h`` (SDE) or ``a² v`` (ODE) with
    ``a = 1 + h(1 - c/Γ²)``, c = 2 (SDE) or 1 (ODE), starting from v = 1. Comparing sample
    moments with this separates sampling error from the O(h) discretisation bias.
    """
    if not isinstance(data, GaussianMixture) or not data.is_gaussian:
        raise ValueError("euler_covariance needs a single zero-mean Gaussian (data.is_gaussian)")
    _check_choice("method", method, METHODS)
    ts = reverse_times(t_min, t_max, n_steps, schedule)
    st = _score_times(ts, grid_times)
    lam = data.eigvals[0]
    c = 2.0 if method == "sde" else 1.0
    v = np.ones_like(lam)
    for k in range(n_steps):
        h = ts[k] - ts[k + 1]
        g2 = math.exp(-2 * st[k]) * lam - math.expm1(-2 * st[k])
        a = 1.0 + h * (1.0 - c / g2)
        v = a * a * v + (2.0 * h if method == "sde" else 0.0)
    O = data.orthonormal_basis()
    return (O * v) @ O.T


def activation_is_odd(activation, atol: float = 1e-12) -> bool:
    """True if σ(-x) = -σ(x) on a grid; then every RF score is odd, s(-x) = -s(x) (docs/theory.md §1, eq. 7).

    An odd score cannot tell x^ν from -x^ν: its memorising limit reproduces the symmetrised
    training set {±x^ν}, so f_mem against X alone saturates near ½ (measure it against
    ``np.concatenate([X, -X])`` as well).
    """
    fn = get_activation(activation).fn
    with jax.enable_x64(True):
        x = jnp.linspace(-6.0, 6.0, 241)
        return bool(jnp.max(jnp.abs(fn(-x) + fn(x))) <= atol)
