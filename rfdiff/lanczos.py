"""Matrix-free path for large p: block Lanczos loss curves and stochastic Lanczos quadrature (SPEC §3).

Block Lanczos started from V (p × d) builds an orthonormal Krylov basis K (p × m) and the
projected matrix T = Kᵀ U K. With T = S diag(θ) Sᵀ, every quantity of SPEC §3 is a Gauss
quadrature in the Ritz pairs: replacing (λ, Q, Y) by (θ, K S, (K S)ᵀ V) in
:class:`rfdiff.dynamics.ExactDynamics` gives the train loss exactly for polynomials of degree
< 2·steps in U, and the test loss, score error and A(τ) through the projected solution
B(τ)ᵀ ≈ (K S) diag(f) Z / √Δ. Ũ is streamed in row blocks (never stored). No eigendecomposition
of U is formed; U itself is only used through products U X.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import numpy as np
import scipy.linalg

from ._util import check_positive_int, row_chunks
from .dynamics import ExactDynamics


def block_lanczos(matmat: Callable[[np.ndarray], np.ndarray], V0: np.ndarray, steps: int,
                  breakdown: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Block Lanczos with full reorthogonalisation: basis K (p, m) and T = Kᵀ U K (m, m), m ≤ steps·b."""
    steps = check_positive_int("steps", steps)
    V0 = np.asarray(V0, dtype=np.float64)
    p, b = V0.shape
    Q, _ = np.linalg.qr(V0)
    blocks, diag, off = [Q], [], []
    Q_prev, B_prev = None, None
    for _ in range(steps):
        Wk = np.asarray(matmat(Q), dtype=np.float64)
        if Q_prev is not None:
            Wk -= Q_prev @ B_prev.T
        A = Q.T @ Wk
        diag.append(0.5 * (A + A.T))
        Wk -= Q @ A
        K = np.hstack(blocks)
        for _ in range(2):  # full reorthogonalisation, twice is enough
            Wk -= K @ (K.T @ Wk)
        if K.shape[1] + b > p:
            break
        Qn, R = np.linalg.qr(Wk)
        if np.abs(np.diag(R)).min() < breakdown * max(1.0, np.abs(A).max()):
            break  # Krylov space exhausted (invariant subspace found)
        off.append(R)
        blocks.append(Qn)
        Q_prev, B_prev, Q = Q, R, Qn
    k = len(diag)
    K = np.hstack(blocks[:k])
    T = np.zeros((k * b, k * b))
    for j in range(k):
        T[j * b:(j + 1) * b, j * b:(j + 1) * b] = diag[j]
        if j + 1 < k:
            T[(j + 1) * b:(j + 2) * b, j * b:(j + 1) * b] = off[j]
            T[j * b:(j + 1) * b, (j + 1) * b:(j + 2) * b] = off[j].T
    return K, T


def lanczos_dynamics(U, V, t: float, steps: int = 60, pop_plans=None, V_pop=None,
                     fisher: Optional[float] = None, emp_cross=None, emp_sq: Optional[float] = None,
                     block: int = 1024) -> ExactDynamics:
    """:class:`ExactDynamics` in the Ritz basis of a block-Lanczos run from V (matrix-free in Ũ).

    ``U`` is a dense (p, p) array or a callable X ↦ U X; ``pop_plans`` are the Mehler plans of
    :func:`rfdiff.matrices.population_plans`, whose rows are streamed to form (KS)ᵀ Ũ (KS).
    """
    V = np.asarray(V, dtype=np.float64)
    p, d = V.shape
    matmat = U if callable(U) else (lambda X: U @ X)
    K, T = block_lanczos(matmat, V, steps)
    theta, S = scipy.linalg.eigh(T)
    basis = K @ S
    Z = basis.T @ V
    info = {"basis_size": int(K.shape[1]), "blocks": int(K.shape[1] // d),
            "train_loss_change_last_2_blocks": _quadrature_change(T, K.T @ V, d, p, t)}
    n_neg = int(np.sum(theta < 0))
    theta = np.maximum(theta, 0.0)
    H = g = g_emp = None
    if pop_plans is not None:
        m = basis.shape[1]
        P = np.zeros((m, m))
        for sl in row_chunks(p, block):
            rows = sum(pi_c * plan.rows(sl) for pi_c, plan in pop_plans)
            P += basis[sl].T @ (rows @ basis)
        P = 0.5 * (P + P.T)
        H = (Z @ Z.T) * P
        g = np.sum(Z * (basis.T @ np.asarray(V_pop)), axis=1)
        if emp_cross is not None:
            g_emp = np.sum(Z * (basis.T @ np.asarray(emp_cross)), axis=1)
    j = jax.numpy.asarray
    with jax.enable_x64(True):
        return ExactDynamics(d, p, t, j(theta), j(basis), j(Z), None if H is None else j(H),
                             None if g is None else j(g), None if g_emp is None else j(g_emp),
                             fisher, emp_sq, n_neg, info)


def _quadrature_change(T, R, b, p, t):
    """Max relative change of the train-loss decrease (τ ∈ [1e-2, 1e9]) when the last two blocks are dropped.

    Decrease = (1/d) Σ_i z_i²/θ_i (1 - e^{-4Δ_t θ_i τ/ψ_p}) (SPEC §3) in Gauss quadrature; the leading
    principal part of T is the projection of an earlier Lanczos step, so this estimate is free.
    """
    from .diffusion import delta

    taus = np.logspace(-2, 9, 45)
    c = 4.0 * delta(t) * b / p
    out = []
    for m in (T.shape[0], max(b, T.shape[0] - 2 * b)):
        th, S = scipy.linalg.eigh(T[:m, :m])
        z2 = np.sum((S.T @ R[:m]) ** 2, axis=1)
        th = np.maximum(th, 1e-300)
        out.append((z2 / th) @ -np.expm1(-c * np.outer(th, taus)))
    return float(np.max(np.abs(out[0] - out[1]) / np.maximum(np.abs(out[0]), 1e-300)))


def slq_spectrum(U, p: int, key: jax.Array, probes: int = 16, steps: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature: nodes and weights (sum 1) approximating the eigenvalue distribution of U.

    One block Lanczos run from ``probes`` random orthonormal vectors; weight of Ritz value θ_i is
    ‖S[:probes, i]‖²/probes, so Σ_i w_i h(θ_i) ≈ (1/p) Tr h(U).
    """
    probes = check_positive_int("probes", probes)
    matmat = U if callable(U) else (lambda X: U @ X)
    Z0 = np.asarray(jax.random.normal(key, (p, probes), dtype=np.float32), dtype=np.float64)
    K, T = block_lanczos(matmat, Z0, steps)
    theta, S = scipy.linalg.eigh(T)
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


def from_problem(problem, steps: int = 24) -> ExactDynamics:
    """:func:`lanczos_dynamics` for an :class:`rfdiff.model.RFProblem` (streamed or dense Ũ)."""
    plans = problem.pop_plans
    if plans is None:  # dense Ũ available: stream its rows through a trivial plan
        plans = [(1.0, _DenseRows(np.asarray(problem.pop.U)))]
    return lanczos_dynamics(problem.train.U, problem.train.V, problem.config.t, steps, plans, problem.pop.V,
                            problem.fisher, problem.emp_cross, problem.emp_sq)


class _DenseRows:
    """Row provider over a dense matrix (same interface as a Mehler plan)."""

    def __init__(self, M):
        self.M = M

    def rows(self, sl):
        return self.M[sl]
