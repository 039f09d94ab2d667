"""Exact noise-averaged matrices U, V (training set) and Ũ, Ṽ (population) at finite d (SPEC §2).

V and Ṽ are exact by Stein's lemma. U and Ũ use the Mehler expansion: for preactivations
h ~ N(m, C), ``E σ(h_i) σ(h_j) = Σ_k C_ij^k/k! g_k(m_i, s_i) g_k(m_j, s_j)`` (i ≠ j) with
``g_k(m, s) = E σ^{(k)}(m + s z)``, ``s_i² = C_ii``; the diagonal is done exactly. For the
training set ``m = e^{-t} W x^ν/√d`` and ``C = Δ_t W Wᵀ/d``; for the population of a Gaussian
mixture, per component ``m = e^{-t} W μ_c/√d`` and ``C = W Σ_{t,c} Wᵀ/d``. The truncation order
is chosen from a row subsample so the estimated relative Frobenius error of the omitted terms
is below ``tol``; rows are processed in blocks so p = 16384 fits in a few GB.
Monte Carlo estimators (m frozen noise draws per point; fresh population points) are the
finite-m objects and cross-checks.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_finite_array, check_positive, check_positive_int, row_chunks, x64
from .activations import get_activation, smoothed_derivatives
from .data import GaussianMixture
from .diffusion import delta


@dataclasses.dataclass(frozen=True, eq=False)
class FeatureMoments:
    """Second moments of the features: ``U = E φφᵀ`` (p, p) and ``V = E φ ξᵀ`` (p, d).

    ``order``: Mehler truncation order used (None for Monte Carlo); ``trunc_error``: estimated
    relative Frobenius error of the truncation (or the Monte Carlo standard error of U);
    ``info``: further diagnostics (JSON-able).
    """

    U: np.ndarray | jnp.ndarray  # (p, p); numpy for the exact constructions (one buffer, no copies)
    V: jnp.ndarray
    order: int | None
    trunc_error: float
    info: dict


@functools.lru_cache(maxsize=None)
def _smoother(act, K: int, quad_order: int):
    """Jitted ``(m, s) -> (g, m2)`` for a fixed activation, order and quadrature size."""
    return jax.jit(lambda m, s: smoothed_derivatives(act, m, s, K, quad_order))


def _smoothed_all(act, M, s, K, quad_order, block):
    """g_k(M, s) (K+1, p, n) and E σ² (p, n), in row blocks to bound the quadrature memory."""
    p, n = M.shape
    fn = _smoother(act, K, quad_order)
    b = max(1, min(p, block))
    gs, m2s = [], []
    for start in range(0, p, b):
        Mb, sb = M[start:start + b], s[start:start + b]
        pad = b - Mb.shape[0]
        if pad:  # keep one compiled shape
            Mb = jnp.pad(Mb, ((0, pad), (0, 0)))
            sb = jnp.pad(sb, ((0, pad), (0, 0)), constant_values=1.0)
        g, m2 = fn(Mb, sb)
        gs.append(g[:, : b - pad])
        m2s.append(m2[: b - pad])
    return jnp.concatenate(gs, axis=1), jnp.concatenate(m2s, axis=0)


@jax.jit
def _mehler_rows(G, Gw, Fb, F, rows_k):
    """Off-diagonal Mehler sum for a row block: Σ_k (C_b^k/k!) ∘ (G_k[b] Gw_kᵀ), C_b = F_b Fᵀ; also each term's squared norm."""
    Cb = Fb @ F.T

    def body(carry, xs):
        acc, Ck, k = carry
        g_rows, gw = xs
        term = Ck * (g_rows @ gw.T)
        return (acc + term, Ck * Cb / (k + 1), k + 1), jnp.sum(term * term)

    init = (jnp.zeros_like(Cb), jnp.ones_like(Cb), jnp.asarray(0.0, Cb.dtype))
    (acc, _, _), norms = jax.lax.scan(body, init, (rows_k, Gw))
    return acc, norms


def _choose_order(G, Gw, F, tol, rows):
    """Smallest K whose omitted terms (estimated on a row subsample) sum below ``tol`` relative.

    Terms beyond the largest computed order are extrapolated geometrically from the last two;
    returns (K, estimated relative error, relative term norms).
    """
    acc, sq = _mehler_rows(G, Gw, F[rows], F, G[:, rows])
    total = float(jnp.sqrt(jnp.sum(acc * acc)))
    # the diagonal is replaced by its exact value: measure the off-diagonal part of each term only
    s2 = np.asarray(jnp.sum(F[rows] ** 2, axis=1))
    k = np.arange(G.shape[0])[:, None]
    diag = s2[None, :] ** k / np.array([math.factorial(int(j)) for j in k[:, 0]], dtype=float)[:, None] \
        * np.asarray(jnp.sum(G[:, rows] * Gw[:, rows], axis=2))
    sq_off = np.maximum(np.asarray(sq) - np.sum(diag**2, axis=1), 0.0)
    norms = np.sqrt(sq_off) / max(total, 1e-300)
    Kmax = len(norms) - 1
    # pairs of orders: odd activations at zero mean have every other term exactly 0
    last, prev = norms[-2:].sum(), norms[-4:-2].sum() if Kmax >= 3 else 0.0
    ratio = last / prev if prev > 0 else 1.0
    beyond = 2.0 * last * ratio / (1.0 - ratio) if ratio < 1.0 else np.inf  # factor 2: safety on the extrapolation
    tail = np.append(np.cumsum(norms[::-1])[::-1], 0.0) + beyond  # tail[k] = Σ_{j>=k} |T_j| (+ beyond)
    for K in range(Kmax + 1):
        if tail[K + 1] < tol:
            return K, float(tail[K + 1]), norms
    return Kmax, float(tail[Kmax + 1]), norms


@dataclasses.dataclass(frozen=True, eq=False)
class MehlerPlan:
    """Everything needed to produce rows of one Mehler second-moment matrix on demand (SPEC §2).

    ``rows(sl)`` gives ``U[sl, :]`` (exact diagonal included) without forming U, so large-p
    consumers can stream it; :func:`_assemble` fills a dense array from the same rows.
    """

    G: jnp.ndarray        # g_k(m_iν, s_i), (K+1, p, n)
    Gw: jnp.ndarray       # G weighted by the column weights ω_ν
    F: jnp.ndarray        # covariance factor, C = F Fᵀ (p, r)
    diag: np.ndarray      # exact diagonal Σ_ν ω_ν E σ(h_iν)² (p,)
    g1: jnp.ndarray       # Σ_ν ω_ν g_1(m_iν, s_i) (p,)
    order: int
    error: float
    info: dict

    @property
    def p(self) -> int:
        return self.F.shape[0]

    def rows(self, sl: slice) -> np.ndarray:
        """Rows ``sl`` of U (b, p), float64."""
        with jax.enable_x64(True):
            acc, _ = _mehler_rows(self.G, self.Gw, self.F[sl], self.F, self.G[:, sl])
        out = np.array(acc)
        idx = np.arange(sl.start, sl.stop)
        out[idx - sl.start, idx] = self.diag[sl]
        return out


def _assemble(plans, block: int) -> np.ndarray:
    """Dense Σ_c π_c U_c from row blocks into one preallocated p×p array, symmetrised block by block."""
    p = plans[0][1].p
    b = max(1, min(p, block))
    U = np.zeros((p, p))
    for sl in row_chunks(p, b):
        for pi_c, plan in plans:
            U[sl] += pi_c * plan.rows(sl)
    for i in row_chunks(p, b):  # average the two triangles (round-off asymmetry)
        for j in row_chunks(p, b):
            if j.start > i.start:
                avg = 0.5 * (U[i, j] + U[j, i].T)
                U[i, j] = avg
                U[j, i] = avg.T
    return U


def _choose_quad_order(act, M, s, w, F, K, quad_order, tol, rows):
    """Smallest Gauss–Hermite size (quad_order·1.5^j, ≤ 240) whose subsample Mehler block changes < tol/10."""
    Ms, ss, Fs = M[rows], s[rows], F[rows]

    def block(Q):
        G, _ = _smoothed_all(act, Ms, ss, K, Q, len(rows))
        acc, _ = _mehler_rows(G, G * w, Fs, Fs, G)
        return acc

    Q, cur = quad_order, block(quad_order)
    while True:
        Q2 = min(240, int(Q * 1.5))
        nxt = block(Q2)
        change = float(jnp.linalg.norm(nxt - cur) / jnp.linalg.norm(nxt))
        if change < tol / 10 or Q2 == Q:
            return Q, change
        Q, cur = Q2, nxt


def _mehler_plan(act, M, weights, F, tol, max_order, quad_order, block, sample_rows) -> MehlerPlan:
    """Plan for Σ_ν ω_ν E[σ(h)σ(h)ᵀ], h ~ N(M[:,ν], F Fᵀ): smoothed derivatives, order and quadrature chosen."""
    p = M.shape[0]
    s = jnp.broadcast_to(jnp.sqrt(jnp.sum(F * F, axis=1))[:, None], M.shape)
    w = jnp.asarray(weights, dtype=M.dtype)
    rows = np.sort(np.random.default_rng(0).choice(p, size=min(p, sample_rows), replace=False))
    Q, quad_err = (quad_order, 0.0) if get_activation(act).smoothed is not None else \
        _choose_quad_order(act, M, s, w, F, max_order, quad_order, tol, rows)
    G, m2 = _smoothed_all(act, M, s, max_order, Q, block)
    Gw = G * w
    K, err, term_norm = _choose_order(G, Gw, F, tol, rows)
    info = {"term_norms": [float(x) for x in term_norm], "quad_order": Q, "quad_error": quad_err}
    return MehlerPlan(G[: K + 1], Gw[: K + 1], F, np.asarray(m2 @ w), G[1] @ w, K, err + quad_err, info)


def _warn_if_not_converged(what, err, tol, max_order):
    """Non-converged Mehler sums are returned (with the estimate in ``trunc_error``) but never silently."""
    if not err < tol:
        warnings.warn(f"{what}: Mehler expansion not converged at max_order={max_order}: estimated relative "
                      f"error {err:.2e} > tol {tol:.2e} (raise max_order, or accept via info['converged'])",
                      RuntimeWarning, stacklevel=3)


def _validate_common(W, t, activation):
    W = jnp.asarray(check_finite_array("W", W))
    if W.ndim != 2:
        raise ValueError(f"W must be a (p, d) matrix, got shape {W.shape}")
    t = check_positive("t", t)
    return W, t, get_activation(activation)


@x64
def train_matrices(W, X, t: float, activation="tanh", tol: float = 1e-10, max_order: int = 12,
                   quad_order: int = 48, block: int = 1024, sample_rows: int = 256) -> FeatureMoments:
    """Exact noise-averaged U = (1/n)Σ_ν E_ξ φ_νφ_νᵀ and V = (1/n)Σ_ν E_ξ φ_ν ξᵀ (SPEC §2, eqs. 55, 164).

    V row i = √Δ_t ⟨g_1(m_iν, s_i)⟩_ν w_iᵀ/√d (Stein). U by the Mehler expansion to the order
    whose estimated relative Frobenius error is below ``tol`` (reported as ``trunc_error``).
    """
    W, t, act = _validate_common(W, t, activation)
    X = jnp.asarray(check_finite_array("X", X), dtype=jnp.float64)
    W = W.astype(jnp.float64)
    if X.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(f"X must be (n, d={W.shape[1]}), got shape {X.shape}")
    check_positive("tol", tol)
    check_positive_int("max_order", max_order)
    p, d = W.shape
    n = X.shape[0]
    dt = delta(t)
    M = math.exp(-t) * (W @ X.T) / math.sqrt(d)          # (p, n)
    F = math.sqrt(dt) * W / math.sqrt(d)                 # noise covariance C = F Fᵀ
    plan = _mehler_plan(act, M, np.full(n, 1.0 / n), F, tol, max_order, quad_order, block, sample_rows)
    U = _assemble([(1.0, plan)], block)
    V = math.sqrt(dt) * plan.g1[:, None] * W / math.sqrt(d)
    K, err = plan.order, plan.error
    info = {"method": "mehler", **plan.info, "tol": tol, "converged": bool(err < tol)}
    _warn_if_not_converged("U", err, tol, max_order)
    return FeatureMoments(U, V, K, err, info)


@x64
def population_plans(W, data: GaussianMixture, t: float, activation="tanh", tol: float = 1e-8,
                     max_order: int = 16, quad_order: int = 48, block: int = 1024,
                     sample_rows: int = 256) -> tuple[list, jnp.ndarray]:
    """Per-component Mehler plans [(π_c, plan_c)] for Ũ and the exact Ṽ (SPEC §2, eq. 165).

    Per component c of P_t, h ~ N(W μ_{t,c}/√d, W Σ_{t,c} Wᵀ/d); Ũ = Σ_c π_c U_c;
    Ṽ row i = √Δ_t Σ_c π_c g_1(m_ci, s_ci) w_iᵀ/√d (Stein).
    """
    W, t, act = _validate_common(W, t, activation)
    W = W.astype(jnp.float64)
    if not isinstance(data, GaussianMixture) or data.d != W.shape[1]:
        raise ValueError(f"data must be a GaussianMixture with d = {W.shape[1]}")
    check_positive("tol", tol)
    means, factors = data.noised(t).preactivation_moments(W)
    plans = [(float(pi_c), _mehler_plan(act, means[c][:, None], np.ones(1), factors[c], tol, max_order,
                                        quad_order, block, sample_rows))
             for c, pi_c in enumerate(data.weights)]
    g1 = sum(pi_c * plan.g1 for pi_c, plan in plans)
    V = math.sqrt(delta(t)) * g1[:, None] * W / math.sqrt(W.shape[1])
    return plans, V


@x64
def population_matrices(W, data: GaussianMixture, t: float, activation="tanh", tol: float = 1e-10,
                        max_order: int = 16, quad_order: int = 48, block: int = 1024,
                        sample_rows: int = 256) -> FeatureMoments:
    """Exact population Ũ = E_{y~P_t} φ(y)φ(y)ᵀ and Ṽ = E φ(y) ξᵀ for Gaussian-mixture data (SPEC §2, eq. 165)."""
    plans, V = population_plans(W, data, t, activation, tol, max_order, quad_order, block, sample_rows)
    U = _assemble(plans, block)
    err = float(max(plan.error for _, plan in plans))
    info = {"method": "mehler", "orders": [pl.order for _, pl in plans],
            "quad_orders": [pl.info["quad_order"] for _, pl in plans], "tol": tol, "converged": bool(err < tol)}
    _warn_if_not_converged("Ũ", err, tol, max_order)
    return FeatureMoments(U, V, max(info["orders"]), err, info)


@functools.partial(jax.jit, static_argnames=("act",))
def _mc_chunk(key, W, X, t_exp, sqrt_dt, act):
    xi = jax.random.normal(key, X.shape, dtype=X.dtype)
    phi = act.fn((t_exp * X + sqrt_dt * xi) @ W.T / jnp.sqrt(W.shape[1]))
    return phi.T @ phi, phi.T @ xi


def _draws_per_chunk(m: int, n: int, requested: int | None) -> int:
    """Noise draws per batch: ``requested`` (must divide m) or the largest divisor of m with ≤ 8192 rows."""
    if requested is not None:
        if check_positive_int("draws_per_chunk", requested) and m % requested:
            raise ValueError(f"m={m} must be a multiple of draws_per_chunk={requested}")
        return requested
    target = max(1, min(max(1, m // 8), 8192 // n))  # >= 8 chunks for a standard error
    return max(k for k in range(1, target + 1) if m % k == 0)


def _mc_finish(sums_U, sums_V, sq_norms, count_per_chunk, method_info):
    """Average R independent chunk estimates; error = relative standard error of the mean U."""
    R = len(sq_norms)
    U = sums_U / (R * count_per_chunk)
    V = sums_V / (R * count_per_chunk)
    uf2 = float(jnp.sum(U * U))
    if R > 1:
        s2 = (float(np.sum(sq_norms)) / count_per_chunk**2 - R * uf2) / (R - 1)
        err = math.sqrt(max(s2, 0.0) / R / uf2)
    else:
        err = float("nan")
    return FeatureMoments(U, V, None, err, {**method_info, "n_chunks": R})


@x64
def train_matrices_mc(key: jax.Array, W, X, t: float, m: int, activation="tanh",
                      draws_per_chunk: int | None = None) -> FeatureMoments:
    """Finite-m estimator: U_m = (1/(nm)) Σ_ν Σ_a φ(x_t^{ν,a}) φᵀ, V_m likewise with ξ^{ν,a} (SPEC §2).

    m frozen noise draws per training point (the finite-m training object, and a Monte Carlo
    cross-check of :func:`train_matrices`). ``trunc_error`` is the relative standard error of U
    estimated from the spread of independent chunks.
    """
    W, t, act = _validate_common(W, t, activation)
    m = check_positive_int("m", m)
    X = jnp.asarray(check_finite_array("X", X), dtype=jnp.float64)
    W = W.astype(jnp.float64)
    n = X.shape[0]
    per = _draws_per_chunk(m, n, draws_per_chunk)
    Xr = jnp.tile(X, (per, 1))
    sU, sV, sq = 0.0, 0.0, []
    for k in jax.random.split(key, m // per):
        dU, dV = _mc_chunk(k, W, Xr, math.exp(-t), math.sqrt(delta(t)), act)
        sU, sV = sU + dU, sV + dV
        sq.append(float(jnp.sum(dU * dU)))
    return _mc_finish(sU, sV, sq, n * per, {"method": "mc", "m": m})


@x64
def population_matrices_mc(key: jax.Array, W, data: GaussianMixture, t: float, N: int,
                           activation="tanh", chunk: int = 4096) -> FeatureMoments:
    """Monte Carlo Ũ, Ṽ from N fresh points x ~ P_0 with one noise draw each (cross-check)."""
    W, t, act = _validate_common(W, t, activation)
    N = check_positive_int("N", N)
    chunk = min(chunk, N)
    if N % chunk:
        raise ValueError(f"N={N} must be a multiple of chunk={chunk}")
    W = W.astype(jnp.float64)
    kd, kn = jax.random.split(key)
    sU, sV, sq = 0.0, 0.0, []
    for i in range(N // chunk):
        X = data.sample(jax.random.fold_in(kd, i), chunk)
        dU, dV = _mc_chunk(jax.random.fold_in(kn, i), W, X, math.exp(-t), math.sqrt(delta(t)), act)
        sU, sV = sU + dU, sV + dV
        sq.append(float(jnp.sum(dU * dU)))
    return _mc_finish(sU, sV, sq, chunk, {"method": "mc", "N": N})


@functools.partial(jax.jit, static_argnames=("act",))
def _cv_chunk(key, W, M, F, g, act):
    """One batch of noise draws: Σ (φφᵀ - ccᵀ), Σ (φ - c)ξᵀ with c the 2nd-order chaos control."""
    p, n = M.shape
    xi = jax.random.normal(key, (n, W.shape[1]), dtype=M.dtype)
    z = xi @ F.T                                   # (n, p) noise part of the preactivation
    s2 = jnp.sum(F * F, axis=1)
    phi = act.fn(M.T + z)
    c = g[0].T + g[1].T * z + 0.5 * g[2].T * (z * z - s2)
    return phi.T @ phi - c.T @ c, (phi - c).T @ xi


@x64
def train_matrices_mc_cv(key: jax.Array, W, X, t: float, m: int, activation="tanh",
                         draws_per_chunk: int | None = None) -> FeatureMoments:
    """Low-variance unbiased Monte Carlo of the exact U, V (cross-check of :func:`train_matrices`).

    Control variate c_i = g_0 + g_1 z_i + g_2 (z_i² - s_i²)/2 (second-order Hermite chaos of
    σ(m_i + z_i)), whose moments are closed-form: E c_i c_j = g_0g_0 + g_1g_1 C_ij + g_2g_2 C_ij²/2,
    E c_i ξᵀ = g_1 √Δ w_iᵀ/√d. Unbiased for any coefficients; residual variance O(s⁶).
    Not the finite-m training object (use :func:`train_matrices_mc` for that).
    """
    W, t, act = _validate_common(W, t, activation)
    m = check_positive_int("m", m)
    X = jnp.asarray(check_finite_array("X", X), dtype=jnp.float64)
    W = W.astype(jnp.float64)
    p, d = W.shape
    n = X.shape[0]
    dt = delta(t)
    M = math.exp(-t) * (W @ X.T) / math.sqrt(d)
    F = math.sqrt(dt) * W / math.sqrt(d)
    s = jnp.broadcast_to(jnp.sqrt(jnp.sum(F * F, axis=1))[:, None], M.shape)
    g, _ = _smoothed_all(act, M, s, 2, 48, 1024)
    per = _draws_per_chunk(m, n, draws_per_chunk)
    Mr, gr = jnp.tile(M, (1, per)), jnp.tile(g, (1, 1, per))
    sU, sV, sq = 0.0, 0.0, []
    for k in jax.random.split(key, m // per):
        dU, dV = _cv_chunk(k, W, Mr, F, gr, act)
        sU, sV = sU + dU, sV + dV
        sq.append(float(jnp.sum(dU * dU)))
    C = F @ F.T
    known_U = (g[0] @ g[0].T + C * (g[1] @ g[1].T) + 0.5 * C * C * (g[2] @ g[2].T)) / n
    known_V = math.sqrt(dt) * jnp.mean(g[1], axis=1)[:, None] * W / math.sqrt(d)
    R, cnt = len(sq), n * per
    U = sU / (R * cnt) + known_U
    V = sV / (R * cnt) + known_V
    resid = sU / (R * cnt)
    s2 = (float(np.sum(sq)) / cnt**2 - R * float(jnp.sum(resid * resid))) / max(R - 1, 1)
    err = math.sqrt(max(s2, 0.0) / R) / float(jnp.linalg.norm(U))
    return FeatureMoments(U, V, None, err, {"method": "mc_control_variate", "m": m, "n_chunks": R})
