"""The Krylov route: block Lanczos loss curves and stochastic Lanczos quadrature (docs/theory.md §3.4).

Every curve of docs/theory.md §3.2 is a quadratic form in ``f_τ(U) V``. Block Lanczos started
from V (p × d) builds an orthonormal Krylov basis K (p × m) and the projected matrix
T = Kᵀ U K; then ``f_τ(U) V ≈ K f_τ(T) Kᵀ V`` (exact for polynomials f of degree < steps; the
quadratic forms Vᵀ h(U) V are Gauss quadratures, exact for degree < 2·steps).
With T = S diag(θ) Sᵀ the Ritz pairs (θ, K S) replace (λ, Q) in
:class:`rfdiff.dynamics.ExactDynamics`, so the curves, the score error and A(τ) come out of the
same code as the dense route. The number of blocks is chosen adaptively: after each block the
Krylov solution of U X = V (τ = ∞, ``T⁻¹ E₁ R₀``, one small Cholesky solve) is compared with the
previous one, and the iteration stops once the relative change stays below ``tol`` for two blocks;
the last change is reported (``info["change_last_block"]``) as the a-posteriori error estimate.
U is only used through products U X (a dense array or a streamed Mehler plan); Ũ likewise.
:func:`top_eigenvalues` gives the top k eigenvalues (the memorisation and population edges of
docs/theory.md §6.2) by block Lanczos with residual bounds; stochastic Lanczos quadrature gives a
smooth picture of the whole spectrum, which cannot resolve single eigenvalues.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_array, check_positive, check_positive_int, check_symmetric, row_chunks, warn
from .dynamics import ExactDynamics
from .matrices import ROW_BLOCK
from .population import Population, check_population

__all__ = ["block_lanczos", "krylov_dynamics", "top_eigenvalues", "slq_spectrum", "kolmogorov_distance", "as_matmat"]

def as_matmat(U) -> Callable[[np.ndarray], np.ndarray]:
    """``X ↦ U X`` for a dense array, an object with ``matmat`` (a Mehler plan) or a callable."""
    if callable(U):
        return U
    if hasattr(U, "matmat"):
        return U.matmat
    U = np.asarray(U)
    return lambda X: U @ X


def block_lanczos(matmat: Callable[[np.ndarray], np.ndarray], V0: np.ndarray, steps: int,
                  breakdown: float = 1e-12, stop: Optional[Callable[[np.ndarray], bool]] = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Block Lanczos with full reorthogonalisation: basis K (p, m) and T = Kᵀ U K (m, m), m ≤ steps·b.

    ``stop(T)`` (optional) is asked after each block whether the basis is large enough.
    """
    steps = check_positive_int("steps", steps)
    V0 = np.asarray(V0, dtype=np.float64)
    p, b = V0.shape
    cap = min(p, steps * b)
    K = np.empty((p, cap))
    Q, _ = np.linalg.qr(V0)
    K[:, :b] = Q
    T = np.zeros((cap, cap))
    m = b                                   # columns of K filled
    Q_prev, B_prev = None, None
    for j in range(steps):
        lo = m - b
        Wk = np.asarray(matmat(Q), dtype=np.float64)
        if Q_prev is not None:
            Wk -= Q_prev @ B_prev.T
        A = Q.T @ Wk
        T[lo:m, lo:m] = 0.5 * (A + A.T)
        Wk -= Q @ A
        Wk = _reorthogonalise(K[:, :m], Wk)
        if stop is not None and j >= 1 and stop(T[:m, :m]):
            break
        if m + b > cap:
            break
        Qn, R = _orthonormalise(Wk)
        if R is None or np.abs(np.diag(R)).min() < breakdown * max(1.0, np.abs(A).max()):
            break                           # Krylov space exhausted (invariant subspace found)
        T[m:m + b, lo:m] = R
        T[lo:m, m:m + b] = R.T
        K[:, m:m + b] = Qn
        Q_prev, B_prev, Q = Q, R, Qn
        m += b
    return K[:, :m], T[:m, :m]


def _reorthogonalise(K: np.ndarray, W: np.ndarray, eta: float = 1 / math.sqrt(2)) -> np.ndarray:
    """W minus its projection on the orthonormal basis K, by classical Gram–Schmidt: a second pass only if the
    first shrank some column below ``eta`` of its norm (the criterion of Daniel, Gragg, Kaufman and Stewart).

    In the Lanczos recurrence W is already orthogonal to K up to rounding, so one pass almost always
    suffices; always doing two cost 0.25 s of the 2.8 s Krylov stage at p = 4096."""
    before = np.einsum("ij,ij->j", W, W)
    W -= K @ (K.T @ W)
    if np.any(np.einsum("ij,ij->j", W, W) < eta ** 2 * before):
        W -= K @ (K.T @ W)
    return W


def _orthonormalise(W: np.ndarray):
    """``W = Q R`` by Cholesky QR, twice (BLAS-3, and as accurate as Householder once W is reorthogonalised);
    ``(None, None)`` when W is numerically rank-deficient (the Krylov space is exhausted)."""
    R = np.eye(W.shape[1])
    Q = W
    for _ in range(2):
        G = Q.T @ Q
        try:
            L = np.linalg.cholesky(G)
        except np.linalg.LinAlgError:
            return None, None
        Rk = L.T
        Q = Q @ np.linalg.inv(Rk)
        R = Rk @ R
    return Q, R


def _block_solve(T: np.ndarray, R0: np.ndarray, b: int) -> np.ndarray:
    """``T⁻¹ E₁ R₀`` for the block-tridiagonal T of :func:`block_lanczos` (block Thomas algorithm, k b³ work)."""
    k = T.shape[0] // b
    blk = lambda i, j: T[i * b:(i + 1) * b, j * b:(j + 1) * b]  # noqa: E731
    D, G = [blk(0, 0)], [R0]
    for j in range(1, k):
        S = blk(j, j - 1)                                   # T[j, j−1]; T[j−1, j] = Sᵀ
        X = np.linalg.solve(D[-1], np.concatenate([S.T, G[-1]], axis=1))
        D.append(blk(j, j) - S @ X[:, :b])
        G.append(-S @ X[:, b:])
    Y = [np.linalg.solve(D[-1], G[-1])]
    for j in range(k - 2, -1, -1):
        Y.append(np.linalg.solve(D[j], G[j] - blk(j + 1, j).T @ Y[-1]))
    return np.concatenate(Y[::-1])


def _solve_change(T, R0, b, prev):
    """``Y = T⁻¹ E₁ R₀`` (the Krylov solution of U X = V, τ = ∞) and its relative change from ``prev``."""
    Y = _block_solve(T, R0, b)
    if prev is None:
        return Y, math.inf
    diff = Y.copy()
    diff[: prev.shape[0]] -= prev
    return Y, float(np.linalg.norm(diff) / max(np.linalg.norm(Y), 1e-300))


def krylov_dynamics(U, V, t: float, *, tol: float = 1e-10, max_steps: int = 64, pop: Optional[Population] = None,
                    block: int = ROW_BLOCK) -> ExactDynamics:
    """:class:`ExactDynamics` in the Ritz basis of a block-Lanczos run from V (docs/theory.md §3.4).

    ``U`` and ``pop.U`` (:class:`~rfdiff.population.Population`) are dense arrays, Mehler plans (``matmat``/``rows``, streamed, never
    formed) or lists ``[(π_c, plan_c)]`` of population plans. The basis grows until the
    a-posteriori change of f_τ(U)V is below ``tol`` (relative, every τ) or ``max_steps`` blocks.
    """
    V = check_array("V", V, ndim=2)
    p, d = V.shape
    t = check_positive("t", t)
    check_positive("tol", tol)
    max_steps = check_positive_int("max_steps", max_steps)
    if not (callable(U) or hasattr(U, "matmat")):
        U = check_symmetric("U", U)
        if U.shape != (p, p):
            raise ValueError(f"U must have shape ({p}, {p}) to match V {V.shape}, got {U.shape}")
    pop = check_population(pop, p, d, dense=False)
    _, R0 = np.linalg.qr(V)
    est = {"change": math.inf, "prev": None, "streak": 0}

    def stop(T):
        # the τ = ∞ solution U⁻¹V converges last (f_τ(λ) = (e^{−cλτ} − 1)/λ is −1/λ there): stop once the
        # Krylov solution of U X = V changes by less than tol for two blocks in a row
        est["prev"], est["change"] = _solve_change(T, R0, d, est["prev"])
        est["streak"] = est["streak"] + 1 if est["change"] < tol else 0
        return est["streak"] >= 2

    K, T = block_lanczos(as_matmat(U), V, max_steps, stop=stop)
    theta, S = np.linalg.eigh(T)
    basis = K
    for sl in row_chunks(p, 4 * block):     # the Ritz basis K S in K's own memory, a row block at a time
        basis[sl] = basis[sl] @ S
    Z = basis.T @ V
    n_neg = int(np.sum(theta < 0))
    theta = np.maximum(theta, 0.0)
    H = g = g_emp = None
    if pop is not None:
        P = np.zeros((basis.shape[1], basis.shape[1]))
        for sl in row_chunks(p, block):     # Bᵀ Ũ B by row blocks of Ũ: no p × m product held
            P += basis[sl].T @ (_rows(pop.U, sl) @ basis)
        P = 0.5 * (P + P.T)
        H = (Z @ Z.T) * P
        g = np.sum(Z * (basis.T @ np.asarray(pop.V, dtype=np.float64)), axis=1)
        if pop.has_emp:
            g_emp = np.sum(Z * (basis.T @ np.asarray(pop.emp_cross, dtype=np.float64)), axis=1)
    converged = est["change"] < tol or K.shape[1] >= p
    if not converged:
        warn(f"block Lanczos stopped at {K.shape[1] // d} blocks (max_steps={max_steps}) with the solution still "
             f"changing by {est['change']:.2e} > tol {tol:.2e}: the curves are not resolved to tol "
             "(raise max_steps, or use the dense route)")
    info = {"method": f"block Lanczos ({K.shape[1] // d} blocks, basis {K.shape[1]})", "basis_size": int(K.shape[1]),
            "blocks": int(K.shape[1] // d), "change_last_block": float(est["change"]), "tol": tol,
            "converged": bool(converged)}
    return ExactDynamics(d, p, t, theta, basis, Z, H, g, g_emp, None if pop is None else pop.fisher,
                         pop.emp_sq if pop is not None and pop.has_emp else None, n_neg, info)


def _rows(M, sl: slice) -> np.ndarray:
    """Rows ``sl`` of M: a dense matrix, a Mehler plan, or a list of weighted plans [(π_c, plan_c)]."""
    if isinstance(M, (list, tuple)):
        return sum(pi_c * plan.rows(sl) for pi_c, plan in M)
    if hasattr(M, "rows"):
        return M.rows(sl)
    return np.asarray(M[sl], dtype=np.float64)


def top_eigenvalues(U, X0: np.ndarray, k: int, *, tol: float = 1e-8, max_steps: int = 16,
                    first_check: int = 3) -> tuple[np.ndarray, np.ndarray, dict]:
    """The k largest eigenvalues of a symmetric U by block Lanczos from the block X0 (p × b, b ≥ k), with error bounds
    (docs/theory.md §3.4).

    Block Lanczos with full reorthogonalisation (as :func:`block_lanczos`) grows the basis
    K = [X0, U X0, U² X0, …] (m = j·b columns after j blocks); the top k eigenvalues θ₁ ≥ … ≥ θ_k
    of T = Kᵀ U K are the Ritz values, checked after block ``first_check`` + 1 and every block after.
    They rise monotonically to the eigenvalues, about geometrically: with c_j the largest relative
    change of the top k over block j and ρ = c_j/c_{j−1}, the error left is estimated as
    ``c_j ρ/(1 − ρ)`` (``info["error_estimate"]``); the iteration stops once it is below ``tol``, or
    at ``max_steps`` blocks. Returns ``(θ, r, info)``: θ (k,) descending and the residual norms
    ``r_i = ‖U y_i − θ_i y_i‖ = ‖W S_{last block, i}‖`` (W the next, unnormalised Lanczos block, y_i = K s_i).
    Bounds: θ_i ≤ λ_i (Cauchy interlacing, λ_i the i-th largest eigenvalue of U), and an eigenvalue of U
    lies within r_i of θ_i (Kahan); ``info["change"]`` is the last block's change c_j.

    Cost: Σ_j 2 p² b (products with a dense U; a streamed plan recomputes its rows each time)
    + 2 p m² (reorthogonalisation) + Σ_j (4/3) m_j³ (Ritz values of T after each checked block).
    """
    import scipy.linalg

    X0 = check_array("X0", X0, ndim=2)
    p, b = X0.shape
    k = check_positive_int("k", k)
    if k > b:
        raise ValueError(f"k must be <= the block size {b} of X0, got {k}")
    check_positive("tol", tol)
    max_steps = check_positive_int("max_steps", max_steps)
    matmat = as_matmat(U)
    cap = min(p, max_steps * b)
    K = np.empty((p, cap))
    Q, _ = np.linalg.qr(X0)
    K[:, :b] = Q
    T = np.zeros((cap, cap))
    m, Q_prev, B_prev = b, None, None
    prev, change, est, products, scale = None, math.inf, math.inf, 0, 0.0
    rng = np.random.default_rng(0)
    for j in range(max_steps):
        lo = m - Q.shape[1]
        W = np.asarray(matmat(Q), dtype=np.float64)
        products += Q.shape[1]
        if Q_prev is not None:
            W -= Q_prev @ B_prev.T
        A = Q.T @ W
        T[lo:m, lo:m] = 0.5 * (A + A.T)
        scale = max(scale, float(np.abs(A).max()))
        W -= Q @ A
        W = _reorthogonalise(K[:, :m], W)
        last = m >= cap or j == max_steps - 1
        if j >= first_check or last:
            theta = np.linalg.eigvalsh(T[:m, :m])[::-1][:k]
            if prev is not None:
                c = float(np.max(np.abs(theta - prev) / np.maximum(np.abs(theta), 1e-300)))
                rho = c / change if math.isfinite(change) and change > 0 else 1.0
                est = c * rho / (1.0 - rho) if rho < 1.0 else math.inf
                change = c
            prev = theta
            if est < tol or change == 0.0 or last:
                break
        Qn, R = _orthonormalise(W)
        if R is None or np.abs(np.diag(R)).min() < 1e-10 * scale:
            Qn, R = _complete_block(W, K[:, :m], rng, 1e-10 * scale)
        c = min(b, cap - m)                  # the last block is cut where the basis reaches p
        Qn, R = Qn[:, :c], R[:c]
        T[m:m + c, lo:m] = R
        T[lo:m, m:m + c] = R.T
        K[:, m:m + c] = Qn
        Q_prev, B_prev, Q = Q, R, Qn
        m += c
    vals, S = scipy.linalg.eigh(T[:m, :m], subset_by_index=[m - k, m - 1], driver="evr")
    order = np.argsort(vals)[::-1]
    vals, S = vals[order], S[:, order]
    resid = np.linalg.norm(W @ S[m - Q.shape[1]:m], axis=0)
    if m >= p:                                # the basis is all of R^p: T is U in it (up to rounding)
        change = est = 0.0
    converged = bool(est < tol or change == 0.0)
    info = {"method": f"block Lanczos, top {k} ({j + 1} blocks of {b}, basis {m})", "blocks": int(j + 1),
            "block_size": int(b), "basis_size": int(m), "products": int(products), "change": float(change),
            "error_estimate": float(est),
            "tol": float(tol), "converged": converged, "max_residual": float(resid.max(initial=0.0))}
    return vals, resid, info


def _complete_block(W: np.ndarray, K: np.ndarray, rng: np.random.Generator, small: float):
    """Orthonormal Qn (⊥ K) whose span holds W, and R = Qnᵀ W, when W's columns are numerically dependent.

    The directions where W has (almost) no component (|R_ii| < ``small`` in a Householder QR) are
    replaced by random vectors orthogonalised against K, so the block keeps its width and the Krylov
    space keeps growing (W = Qn R still holds: W lies in the span of the kept directions)."""
    Qh, Rh = np.linalg.qr(W)
    bad = np.abs(np.diag(Rh)) < small
    Qh[:, bad] = rng.standard_normal((W.shape[0], int(bad.sum())))
    for _ in range(2):
        Qh -= K @ (K.T @ Qh)
        Qh, _ = np.linalg.qr(Qh)
    return Qh, Qh.T @ W


def slq_spectrum(U, p: int, key: jax.Array, probes: int = 16, steps: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights (sum 1) approximating the eigenvalue distribution of U.

    One block Lanczos run from ``probes`` random orthonormal vectors; weight of Ritz value θ_i is
    ‖S[:probes, i]‖²/probes, so Σ_i w_i h(θ_i) ≈ (1/p) Tr h(U) (docs/theory.md §3.4).
    """
    probes = check_positive_int("probes", probes)
    with jax.enable_x64(True):
        Z0 = np.asarray(jax.random.normal(key, (p, probes), dtype=jnp.float64))
    K, T = block_lanczos(as_matmat(U), Z0, steps)
    theta, S = np.linalg.eigh(T)
    w = np.sum(S[:probes] ** 2, axis=0) / probes
    return theta, w / w.sum()


def kolmogorov_distance(nodes: np.ndarray, weights: np.ndarray, eigenvalues: np.ndarray) -> float:
    """sup_x |F_SLQ(x) − F_emp(x)| between a discrete measure and the empirical CDF of eigenvalues."""
    order = np.argsort(nodes)
    nodes, cw = nodes[order], np.cumsum(weights[order])
    ev = np.sort(eigenvalues)
    grid = np.union1d(nodes, ev)
    F1 = np.concatenate([[0.0], cw])[np.searchsorted(nodes, grid, side="right")]
    F2 = np.searchsorted(ev, grid, side="right") / ev.size
    return float(np.max(np.abs(F1 - F2)))


def _inertia_above(ldu: np.ndarray, ipiv: np.ndarray) -> int:
    """Number of positive eigenvalues of D in LAPACK's Bunch–Kaufman A = U D Uᵀ (``dsytrf``, upper): by Sylvester's
    law of inertia, the number of positive eigenvalues of A. 1 × 1 pivots where ipiv[k] > 0; a 2 × 2 block at
    (k, k + 1) where ipiv[k] = ipiv[k + 1] < 0 (its two eigenvalues' signs from its trace and determinant)."""
    p = ldu.shape[0]
    diag = np.diagonal(ldu)
    pos, k = 0, 0
    while k < p:
        if ipiv[k] > 0 or k == p - 1:
            pos += int(diag[k] > 0)
            k += 1
        else:
            a, b, c = diag[k], ldu[k, k + 1], diag[k + 1]
            det, tr = a * c - b * b, a + c
            pos += 1 if det < 0 else (2 if tr > 0 else 0)
            k += 2
    return pos


def _restore_lower(U: np.ndarray, diag: np.ndarray, block: int = ROW_BLOCK) -> None:
    """U (C order) whose lower triangle was overwritten: copied back from the upper one, and the diagonal set."""
    p = U.shape[0]
    for r0 in range(0, p, block):
        r1 = min(p, r0 + block)
        U[r0:r1, :r0] = U[:r0, r0:r1].T
        blk = U[r0:r1, r0:r1]
        low = np.tril_indices(r1 - r0, -1)
        blk[low] = blk.T[low]
    U[np.diag_indices(p)] = diag


def ranked_eigenvalue(U: np.ndarray, rank: int, shift: float, *, tol: float = 1e-10, max_window: int = 256,
                      max_steps: int = 16) -> tuple[float, float, dict]:
    """The ``rank``-th largest eigenvalue of a dense symmetric U: one LDLᵀ factorisation of U − σI and
    shift-invert block Lanczos (docs/theory.md §3.4).

    ``U − σI = L D Lᵀ`` (Bunch–Kaufman, LAPACK ``dsytrf``, σ = ``shift``) gives ν = #{λ > σ} exactly (Sylvester's
    law of inertia). On M = (U − σI)⁻¹ the eigenvalues nearest σ are the largest |θ|, θ = 1/(λ − σ): the j-th
    largest θ > 0 is the j-th eigenvalue above σ, of rank ν − j + 1; the j-th largest −θ is the j-th below σ, of
    rank ν + j. So the wanted eigenvalue is the top j = |ν − rank| (+1 above σ) of ±M by
    :func:`top_eigenvalues`, λ = σ + 1/θ, with the bound r/θ² from θ's residual r (first order).
    The factorisation overwrites U's lower triangle in place (no second p × p array); U is restored before
    returning. Returns ``(λ, bound, info)``; ``info["window"]`` = j; ValueError (naming ``shift``) when
    j > ``max_window`` (the shift is too far from the wanted eigenvalue), with U restored.
    Cost: p³/3 (factorisation) + 2 p² per column solved (``dsytrs``, about j + 32 columns per block).
    """
    import scipy.linalg.lapack as lapack

    U = check_array("U", U, ndim=2)
    p = U.shape[0]
    rank = check_positive_int("rank", rank)
    if rank > p or U.shape != (p, p) or not U.flags.c_contiguous:
        raise ValueError(f"rank must be <= p = {p} and U a C-contiguous square array, got rank={rank}, U {U.shape}")
    if not math.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift!r}")
    diag = np.diagonal(U).copy()
    U[np.diag_indices(p)] = diag - shift
    F = U.T                                   # the same memory in Fortran order: dsytrf works in place
    try:
        lwork = int(lapack.dsytrf_lwork(p)[0])
        ldu, ipiv, info_f = lapack.dsytrf(F, lower=0, lwork=lwork, overwrite_a=1)
        if info_f < 0:
            raise ValueError(f"dsytrf: argument {-info_f} invalid")
        nu = _inertia_above(ldu, ipiv)
        above = nu >= rank
        j = nu - rank + 1 if above else rank - nu
        if j > max_window:
            raise ValueError(f"shift {shift:.6g} is {j} eigenvalues from the {rank}-th largest (> max_window "
                             f"{max_window}): choose a shift nearer it")
        sign = 1.0 if above else -1.0

        def solve(X):
            Y, inf = lapack.dsytrs(ldu, ipiv, X, lower=0)
            return sign * Y

        b = min(p, j + 32)
        X0 = np.random.default_rng(rank).standard_normal((p, b))
        theta, resid, info = top_eigenvalues(solve, X0, j, tol=tol, max_steps=max_steps)
    finally:
        _restore_lower(U, diag)
    th = sign * theta[j - 1]
    lam = shift + 1.0 / th
    bound = float(resid[j - 1] / th ** 2)
    return float(lam), bound, {**info, "method": f"LDLᵀ of U − σI (σ = {shift:.6g}: {nu} eigenvalues above) and "
                                                 f"shift-invert block Lanczos ({info['method']})",
                               "shift": float(shift), "above_shift": int(nu), "window": int(j)}
