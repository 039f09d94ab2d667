"""Exact noise-averaged matrices U, V (training set) and Ũ, Ṽ (population) at finite d (docs/theory.md §2).

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

import concurrent.futures
import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from ._util import (check_finite_array, check_positive, check_positive_int, gauss_hermite, host_threads, row_chunks,
                    warn, x64)
from .activations import get_activation
from .data import GaussianMixture
from .diffusion import delta


# Rows per block of the Mehler sums: the Horner passes over a 256 × p block stay in cache (at p = 4096 the
# dense U and Ũ took 0.66 s and 0.16 s with 256 rows against 0.90 s and 0.26 s with 1024, medians of 3)
ROW_BLOCK = 256
# The largest Mehler order the training plan may choose (its tol decides below it); the memory budget of a route
# assumes it until the order is probed (rfdiff.study.choose_method)
MAX_ORDER = 12


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


def _hermite_matrix(order: int, K: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Hermite nodes z (Q,) and the matrix H (Q, K+1) with H[q, k] = w_q He_k(z_q)."""
    z, w = gauss_hermite(order)
    he = [np.ones_like(z), z]
    for k in range(2, K + 1):
        he.append(z * he[-1] - (k - 1) * he[-2])
    return z, np.stack(he[: K + 1], axis=-1) * w[:, None]


def smoothed_rows(act, M: np.ndarray, s: np.ndarray, K: int, quad_order: int, block: int = 256):
    """g_k(M_iν, s_i) = E σ^{(k)}(M_iν + s_i z), k = 0..K (K+1, p, n), and E σ² (p, n); numpy, no compilation.

    ``s`` holds one noise scale per row (p,). Gauss–Hermite quadrature with ``quad_order`` nodes
    (``g_k = s^{-k} E[σ(m + s z) He_k(z)]``, docs/theory.md §2.4), or the activation's closed form.
    """
    act = get_activation(act)
    p, n = M.shape
    G = np.empty((K + 1, p, n))
    m2 = np.empty((p, n))
    if act.smoothed is not None:
        for sl in row_chunks(p, block * 16):
            g, m2b = act.smoothed(M[sl], np.broadcast_to(s[sl, None], M[sl].shape), K, np)
            G[:, sl], m2[sl] = g, m2b
        return G, m2
    z, H = _hermite_matrix(quad_order, K)
    w = H[:, 0]
    inv = s[None, :] ** -np.arange(K + 1)[:, None]                      # (K+1, p)

    def work(sl):
        vals = act.numpy(M[sl][:, :, None] + s[sl, None, None] * z)     # (b, n, Q)
        G[:, sl] = np.moveaxis(vals @ H, -1, 0) * inv[:, sl, None]
        m2[sl] = (vals * vals) @ w

    blocks = list(row_chunks(p, max(1, block)))
    threads = min(host_threads(), len(blocks))
    if threads > 1:   # numpy's ufuncs and matmul release the GIL: row blocks run side by side
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, blocks))
    else:
        for sl in blocks:
            work(sl)
    return G, m2


def mehler_rows(G: np.ndarray, w: np.ndarray, F: np.ndarray, rows: slice, cols: slice = slice(None)) -> np.ndarray:
    """Off-diagonal Mehler sum on a block, ``Σ_k (C^k/k!) ∘ (G_k[rows] diag(w) G_k[cols]ᵀ)``, C = F Fᵀ (numpy).

    Evaluated by Horner's rule in C, ``T_0 + C ∘ (T_1 + C ∘ (T_2 + …))`` with ``T_k = G_k diag(w/k!) G_kᵀ``:
    one product and two elementwise passes per order. The diagonal entries of a block that contains
    it are not exact (see :meth:`MehlerPlan.dense`).
    """
    Cb = F[rows] @ F[cols].T
    K = G.shape[0] - 1
    fact = np.cumprod(np.concatenate([[1.0], np.arange(1, K + 1)]))       # k!
    acc = G[K, rows] @ (G[K, cols] * (w / fact[K])).T
    tmp = np.empty_like(acc)
    for k in range(K - 1, -1, -1):
        acc *= Cb
        np.matmul(G[k, rows], (G[k, cols] * (w / fact[k])).T, out=tmp)
        acc += tmp
    return acc


@jax.jit
def mehler_rows_device(G, Gw, Fb, F, rows_k):
    """Device (JAX) version of :func:`mehler_rows` for a row block: Σ_k (C_b^k/k!) ∘ (G_k[b] Gw_kᵀ), C_b = F_b Fᵀ."""
    Cb = Fb @ F.T

    def body(carry, xs):
        acc, Ck, k = carry
        g_rows, gw = xs
        return (acc + Ck * (g_rows @ gw.T), Ck * Cb / (k + 1), k + 1), None

    init = (jnp.zeros_like(Cb), jnp.ones_like(Cb), jnp.asarray(0.0, Cb.dtype))
    (acc, _, _), _ = jax.lax.scan(body, init, (rows_k, Gw))
    return acc


def _term_norms(G, w, F, idx):
    """Relative Frobenius norms of each Mehler term on the off-diagonal part of the sub-block idx × idx, and the sum."""
    Cb = F[idx] @ F[idx].T
    off = ~np.eye(idx.size, dtype=bool)
    Ck = np.ones_like(Cb)
    acc = np.zeros_like(Cb)
    norms = []
    for k in range(G.shape[0]):
        if k:
            Ck = Ck * Cb / k
        term = Ck * ((G[k][idx] * w) @ G[k][idx].T)
        acc += term
        norms.append(float(np.sqrt(np.sum(term[off] ** 2))))
    total = float(np.sqrt(np.sum(acc[off] ** 2)))
    return np.array(norms) / max(total, 1e-300), acc


def _choose_order(norms: np.ndarray, tol: float) -> tuple[int, float]:
    """Smallest K whose omitted terms sum below ``tol`` (relative); terms beyond the last are extrapolated.

    Pairs of orders are compared (odd activations at zero mean have every other term exactly 0);
    the geometric tail beyond the largest computed order carries a safety factor 2.
    """
    Kmax = len(norms) - 1
    last, prev = norms[-2:].sum(), norms[-4:-2].sum() if Kmax >= 3 else 0.0
    ratio = last / prev if prev > 0 else 1.0
    beyond = 2.0 * last * ratio / (1.0 - ratio) if ratio < 1.0 else np.inf
    tail = np.append(np.cumsum(norms[::-1])[::-1], 0.0) + beyond      # tail[k] = Σ_{j>=k} |T_j| (+ beyond)
    for K in range(Kmax + 1):
        if tail[K + 1] < tol:
            return K, float(tail[K + 1])
    return Kmax, float(tail[Kmax + 1])


@dataclasses.dataclass(frozen=True, eq=False)
class MehlerPlan:
    """Everything needed to produce any block of one Mehler second-moment matrix (docs/theory.md §2.4).

    ``U = Σ_ν ω_ν E[σ(h_ν) σ(h_ν)ᵀ]``, h_ν ~ N(M[:, ν], F Fᵀ): off-diagonal entries from the
    truncated Mehler sum, diagonal exact. :meth:`dense` fills U (upper blocks only, mirrored),
    :meth:`rows` gives a row block for streaming consumers, :meth:`matmat` gives U X without U.
    """

    G: np.ndarray          # g_k(M_iν, s_i), (K+1, p, n)
    w: np.ndarray          # column weights ω_ν (n,)
    F: np.ndarray          # covariance factor, C = F Fᵀ (p, r)
    diag: np.ndarray       # exact diagonal Σ_ν ω_ν E σ(h_iν)² (p,)
    g1: np.ndarray         # Σ_ν ω_ν g_1(M_iν, s_i) (p,)
    order: int
    error: float
    info: dict

    @property
    def p(self) -> int:
        return self.F.shape[0]

    def rows(self, sl: slice) -> np.ndarray:
        """Rows ``sl`` of U (b, p), exact diagonal included."""
        out = mehler_rows(self.G, self.w, self.F, sl)
        idx = np.arange(sl.start, min(sl.stop, self.p))
        out[idx - sl.start, idx] = self.diag[sl]
        return out

    def _upper_blocks(self, block: int):
        """The upper row blocks ``(sl, U[sl, sl.start:])``, their diagonal square symmetrised and the diagonal exact."""
        for sl in row_chunks(self.p, max(1, block)):
            blk = mehler_rows(self.G, self.w, self.F, sl, slice(sl.start, self.p))
            b = sl.stop - sl.start
            blk[:, :b] = 0.5 * (blk[:, :b] + blk[:, :b].T)
            blk[np.arange(b), np.arange(b)] = self.diag[sl]
            yield sl, blk

    def dense(self, block: int = ROW_BLOCK, out: Optional[np.ndarray] = None, scale: float = 1.0) -> np.ndarray:
        """U as a dense (p, p) array: upper row blocks computed, mirrored, diagonal exact (adds ``scale``·U to ``out``)."""
        p = self.p
        U = np.zeros((p, p)) if out is None else out
        for sl, blk in self._upper_blocks(block):
            blk *= scale
            U[sl, sl.start:] += blk
            U[sl.stop:, sl] += blk[:, sl.stop - sl.start:].T
        return U

    def matmat(self, X: np.ndarray, block: int = ROW_BLOCK) -> np.ndarray:
        """U X streamed in row blocks (U is never stored)."""
        return np.concatenate([self.rows(sl) @ X for sl in row_chunks(self.p, max(1, block))])

    def upper(self, block: int = ROW_BLOCK) -> "UpperRows":
        """U held as its upper row blocks (half of a dense U's memory; :class:`UpperRows`), diagonal exact: the
        blocks :meth:`dense` computes, kept instead of mirrored."""
        starts, blocks = zip(*((sl.start, blk) for sl, blk in self._upper_blocks(block)))
        return UpperRows(self.p, starts, blocks)


@dataclasses.dataclass(frozen=True, eq=False)
class UpperRows:
    """A symmetric (p, p) matrix held as its upper row blocks, ``blocks[i] = M[s_i:s_i + b_i, s_i:]`` (docs/theory.md
    §3.4): p²/2 numbers instead of p², products at the cost of a dense one,
    ``(M X)[s_i:] += M_i X[s_i:]`` and ``(M X)[s_i + b_i:] += M_i[:, b_i:]ᵀ X[s_i:s_i + b_i]`` per block."""

    p: int
    starts: tuple
    blocks: tuple

    @property
    def nbytes(self) -> int:
        return int(sum(b.nbytes for b in self.blocks))

    def matmat(self, X: np.ndarray, block: int = ROW_BLOCK) -> np.ndarray:
        """M X (``block`` is the blocks' own; accepted for the interface of :meth:`MehlerPlan.matmat`)."""
        X = np.asarray(X, dtype=np.float64)
        Y = np.zeros((self.p,) + X.shape[1:])
        for s, B in zip(self.starts, self.blocks):
            b = B.shape[0]
            Y[s:s + b] += B @ X[s:]
            Y[s + b:] += B[:, b:].T @ X[s:s + b]
        return Y


def _quad_change(act, M, s, w, F, K, Q, Q2, idx):
    """Largest relative change of the sub-block Mehler sum, of Σ_ν ω_ν g_1 (V) and of the exact
    diagonal when the Gauss–Hermite size grows from Q to Q2 nodes."""
    parts = []
    for q in (Q, Q2):
        G, m2 = smoothed_rows(act, M[idx], s[idx], K, q)
        parts.append((_term_norms(G, w, F[idx], np.arange(idx.size))[1], G[1] @ w, m2 @ w))
    return max(float(np.linalg.norm(b - a) / max(np.linalg.norm(b), 1e-300)) for a, b in zip(*parts))


def _select(act, M, s, w, F, tol: float, max_order: int, quad_order: Optional[int], idx: np.ndarray):
    """Gauss–Hermite size Q, its error, the Mehler term norms and the order (K, error) chosen on the rows ``idx``
    (:func:`mehler_plan`)."""
    Q, quad_err = (quad_order or 16), 0.0
    if act.smoothed is None:
        while True:
            Q2 = min(240, int(Q * 1.5))
            quad_err = _quad_change(act, M, s, w, F, max_order, Q, Q2, idx) if Q2 > Q else 0.0
            if quad_err < tol / 10 or Q2 == Q:
                break
            Q = Q2
    Gs, _ = smoothed_rows(act, M[idx], s[idx], max_order, Q)
    norms, _ = _term_norms(Gs, w, F[idx], np.arange(idx.size))
    K, err = _choose_order(norms, tol)
    return Q, quad_err, norms, K, err


def _sample_rows(p: int, sample_rows: int) -> np.ndarray:
    """The rows on which the order and the quadrature are chosen (the same for a given p)."""
    return np.sort(np.random.default_rng(0).choice(p, size=min(p, sample_rows), replace=False))


def mehler_plan(act, M, weights, F, tol: float, max_order: int, quad_order: Optional[int] = None,
                sample_rows: int = 256) -> MehlerPlan:
    """Plan for Σ_ν ω_ν E[σ(h)σ(h)ᵀ], h ~ N(M[:, ν], F Fᵀ): quadrature size and Mehler order chosen for ``tol``.

    Both are chosen on a random sub-block of ``sample_rows`` rows and the same columns (off-diagonal
    entries only): the Gauss–Hermite size grows by 1.5× from ``quad_order`` (default 16, at most 240)
    until the sub-block, V and the diagonal change by < tol/10; the order is the smallest whose omitted terms are
    estimated below ``tol`` (relative Frobenius). Then g_k is computed for all rows up to that order
    only (docs/theory.md §2.4).
    """
    act = get_activation(act)
    M = np.asarray(M, dtype=np.float64)
    F = np.asarray(F, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    s = np.sqrt(np.sum(F * F, axis=1))
    Q, quad_err, norms, K, err = _select(act, M, s, w, F, tol, max_order, quad_order, _sample_rows(M.shape[0], sample_rows))
    G, m2 = smoothed_rows(act, M, s, K if K >= 1 else 1, Q)
    g1 = G[1] @ w
    info = {"term_norms": [float(x) for x in norms], "quad_order": int(Q), "quad_error": float(quad_err)}
    return MehlerPlan(np.ascontiguousarray(G[: K + 1]), w, F, m2 @ w, g1, int(K), float(err + quad_err), info)


@x64
def train_order(W, X, t: float, activation="tanh", tol: float = 1e-8, max_order: int = MAX_ORDER,
                quad_order: Optional[int] = None, sample_rows: int = 256) -> int:
    """The Mehler order K of the training U that :func:`train_plan_and_V` will choose, from its sample rows alone
    (p·n work: for sizing a route's memory, (K + 2) p n for the factors, before any p × n array exists)."""
    W, t, act = _validate_common(W, t, activation)
    X = np.asarray(check_finite_array("X", X), dtype=np.float64)
    p, d = W.shape
    idx = _sample_rows(p, sample_rows)
    M = math.exp(-t) * (W[idx] @ X.T) / math.sqrt(d)
    F = math.sqrt(delta(t)) * W[idx] / math.sqrt(d)
    w = np.full(X.shape[0], 1.0 / X.shape[0])
    return int(_select(act, M, np.sqrt(np.sum(F * F, axis=1)), w, F, tol, max_order, quad_order,
                       np.arange(idx.size))[3])


def _warn_if_not_converged(what, err, tol, max_order):
    """Non-converged Mehler sums are returned (with the estimate in ``trunc_error``) but never silently."""
    if not err < tol:
        warn(f"{what}: Mehler expansion not converged at max_order={max_order}: estimated relative "
             f"error {err:.2e} > tol {tol:.2e} (raise max_order, or accept via info['converged'])")


def _validate_common(W, t, activation):
    W = np.asarray(check_finite_array("W", W), dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"W must be a (p, d) matrix, got shape {W.shape}")
    t = check_positive("t", t)
    return W, t, get_activation(activation)


@x64
def train_plan_and_V(W, X, t: float, activation="tanh", tol: float = 1e-8, max_order: int = MAX_ORDER,
                     quad_order: Optional[int] = None, sample_rows: int = 256) -> tuple[MehlerPlan, np.ndarray]:
    """The Mehler plan of the training U and the exact V (docs/theory.md §2.3–2.4), U not formed.

    m = e^{-t} W x/√d per point, C = Δ_t W Wᵀ/d; V row i = √Δ_t ⟨g_1(m_iν, s_i)⟩_ν w_iᵀ/√d (Stein).
    """
    W, t, act = _validate_common(W, t, activation)
    X = np.asarray(check_finite_array("X", X), dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != W.shape[1]:
        raise ValueError(f"X must be (n, d={W.shape[1]}), got shape {X.shape}")
    check_positive("tol", tol)
    check_positive_int("max_order", max_order)
    p, d = W.shape
    n = X.shape[0]
    dt = delta(t)
    M = math.exp(-t) * (W @ X.T) / math.sqrt(d)          # (p, n)
    F = math.sqrt(dt) * W / math.sqrt(d)                 # noise covariance C = F Fᵀ
    plan = mehler_plan(act, M, np.full(n, 1.0 / n), F, tol, max_order, quad_order, sample_rows)
    _warn_if_not_converged("U", plan.error, tol, max_order)
    return plan, math.sqrt(dt) * plan.g1[:, None] * W / math.sqrt(d)


@x64
def train_matrices(W, X, t: float, activation="tanh", tol: float = 1e-8, max_order: int = MAX_ORDER,
                   quad_order: Optional[int] = None, block: int = ROW_BLOCK, sample_rows: int = 256) -> FeatureMoments:
    """Exact noise-averaged U = (1/n)Σ_ν E_ξ φ_νφ_νᵀ and V = (1/n)Σ_ν E_ξ φ_ν ξᵀ (docs/theory.md §2.3–2.4).

    U by the Mehler expansion to the order whose estimated relative Frobenius error is below
    ``tol`` (reported as ``trunc_error``); V by Stein's lemma. numpy float64, no compilation.
    """
    plan, V = train_plan_and_V(W, X, t, activation, tol, max_order, quad_order, sample_rows)
    info = {"method": "mehler", **plan.info, "tol": tol, "converged": bool(plan.error < tol)}
    return FeatureMoments(plan.dense(block), V, plan.order, plan.error, info)


@x64
def population_plans(W, data: GaussianMixture, t: float, activation="tanh", tol: float = 1e-8,
                     max_order: int = 32, quad_order: Optional[int] = None,
                     sample_rows: int = 256) -> tuple[list, np.ndarray]:
    """Per-component Mehler plans [(π_c, plan_c)] for Ũ and the exact Ṽ (docs/theory.md §2.5).

    Per component c of P_t, h ~ N(W μ_{t,c}/√d, W Σ_{t,c} Wᵀ/d); Ũ = Σ_c π_c U_c;
    Ṽ row i = √Δ_t Σ_c π_c g_1(m_ci, s_ci) w_iᵀ/√d (Stein).
    """
    W, t, act = _validate_common(W, t, activation)
    if not isinstance(data, GaussianMixture) or data.d != W.shape[1]:
        raise ValueError(f"data must be a GaussianMixture with d = {W.shape[1]}")
    check_positive("tol", tol)
    means, factors = data.noised(t).preactivation_moments(W)
    plans = [(float(pi_c), mehler_plan(act, np.asarray(means[c])[:, None], np.ones(1), np.asarray(factors[c]), tol,
                                       max_order, quad_order, sample_rows))
             for c, pi_c in enumerate(data.weights)]
    g1 = sum(pi_c * plan.g1 for pi_c, plan in plans)
    V = math.sqrt(delta(t)) * g1[:, None] * W / math.sqrt(W.shape[1])
    return plans, V


@x64
def population_matrices(W, data: GaussianMixture, t: float, activation="tanh", tol: float = 1e-8,
                        max_order: int = 32, quad_order: Optional[int] = None, block: int = ROW_BLOCK,
                        sample_rows: int = 256) -> FeatureMoments:
    """Exact population Ũ = E_{y~P_t} φ(y)φ(y)ᵀ and Ṽ = E φ(y) ξᵀ for Gaussian-mixture data (docs/theory.md §2.5)."""
    plans, V = population_plans(W, data, t, activation, tol, max_order, quad_order, sample_rows)
    U = None
    for pi_c, plan in plans:
        U = plan.dense(block, out=U, scale=pi_c)
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
    """Finite-m estimator: U_m = (1/(nm)) Σ_ν Σ_a φ(x_t^{ν,a}) φᵀ, V_m likewise with ξ^{ν,a} (docs/theory.md §2).

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
    g, _ = smoothed_rows(act, np.asarray(M), np.sqrt(np.sum(np.asarray(F) ** 2, axis=1)), 2, 48)
    g = jnp.asarray(g)
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
