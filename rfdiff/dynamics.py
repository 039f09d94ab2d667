"""Exact training dynamics of the RF score from one eigendecomposition of U (docs/theory.md §3, eq. 53).

With ``U = Q diag(λ) Qᵀ``, ``Y = Qᵀ V`` and A(0) = 0, gradient descent keeps every mode on
its own: ``B(τ) = A/√p = (1/√Δ_t) Yᵀ diag(f(τ)) Qᵀ`` with ``f_i = (e_i(τ) - 1)/λ_i`` where
``e_i = exp(-2Δ_t λ_i τ/ψ_p)`` (gradient flow) or ``(1 - 2ηΔ_t λ_i/(p d))^k``, ``k = τ d²/η``
(discrete GD at step η). Every loss is then a quadratic form in f:

- L_train = 1 + (1/d) Σ_i ‖Y_i‖² (λ_i f_i² + 2 f_i)
- L_test  = 1 + (1/d) [fᵀ H f + 2 fᵀ g],  H = (Y Yᵀ) ∘ (Qᵀ Ũ Q),  g_i = (Y ∘ Qᵀ Ṽ) 1
- E_score = (L_test - 1)/Δ_t + J/d
- D_emp   = (1/d) [fᵀ H f/Δ_t - 2 fᵀ g_emp/√Δ_t + E‖s_emp‖²],  g_emp from E[φ s_empᵀ].
Eigenvalues are clipped at 0 and ``expm1`` keeps the small-λ limit exact (f → -cτ).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ._util import check_array, check_positive, check_symmetric, x64
from .diffusion import delta
from .population import Population, check_population
from .results import Curves


# The eigendecomposition with vectors goes through numpy's own OpenBLAS, like the Mehler products before
# it: scipy ships a second OpenBLAS, and alternating between the two leaves one library's threads spinning
# while the other works (it slowed an eigendecomposition after the Mehler products by up to 25× on 2 cores).
# Eigenvalues alone (one LAPACK call) go through scipy.linalg.eigh: neither numpy nor scipy wraps LAPACK's
# faster two-stage driver dsyevd_2stage (measured at p = 4096, one thread: 4.2 CPU s against 6.0 s for
# dsyevd), which is not reached around them.


def eigh(U):
    """Symmetric eigendecomposition in float64 (LAPACK's divide and conquer): numpy arrays on CPU, JAX
    arrays on an accelerator."""
    if jax.default_backend() == "cpu":
        return np.linalg.eigh(np.asarray(U, dtype=np.float64))
    with jax.enable_x64(True):
        return jnp.linalg.eigh(jnp.asarray(U, dtype=jnp.float64))


EIGVALS_DRIVER = "evd"   # LAPACK dsyevd without vectors: at p = 4096 as fast as "evr" (6.0 vs 6.2 CPU s, one thread)


def eigvalsh(U) -> np.ndarray:
    """Eigenvalues only (ascending, float64): LAPACK through ``scipy.linalg.eigh`` (driver :data:`EIGVALS_DRIVER`)
    on CPU, ``jnp.linalg.eigvalsh`` on an accelerator."""
    if jax.default_backend() == "cpu":
        return scipy.linalg.eigh(np.asarray(U, dtype=np.float64), eigvals_only=True, driver=EIGVALS_DRIVER,
                                 check_finite=False)
    with jax.enable_x64(True):
        return np.asarray(jnp.linalg.eigvalsh(jnp.asarray(U, dtype=jnp.float64)))


def _xp(*arrays):
    """numpy for host arrays, jax.numpy when any argument is a JAX array (accelerators keep data on device)."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def mode_factors_flow(lam, taus, c):
    """f_i(τ) = (exp(-c λ_i τ) - 1)/λ_i, stable for λ → 0 (→ -cτ) and any large τ (docs/theory.md §3.2)."""
    xp = _xp(lam, taus)
    x = c * lam[None, :] * taus[:, None]
    small = x < 1e-12
    return xp.where(small, -c * taus[:, None] * (1 - 0.5 * x), xp.expm1(-x) / xp.where(small, 1.0, lam[None, :]))


def mode_factors_gd(lam, steps, rate):
    """f_i(k) = ((1 - rate λ_i)^k - 1)/λ_i for discrete GD with k steps (docs/theory.md §3.3)."""
    xp = _xp(lam, steps)
    r = rate * lam[None, :]
    k = steps[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        pos = xp.expm1(k * xp.log1p(-xp.minimum(r, 0.999999999999)))
        em1 = xp.where(r < 1.0, pos, (1.0 - r) ** k - 1.0)
    small = r < 1e-14
    return xp.where(small, -rate * k, em1 / xp.where(small, 1.0, lam[None, :]))


def _evaluate(F, lam, ysq, H, g, g_emp):
    """Per-τ quadratic forms (rows of F): train sum, fᵀHf, fᵀg, fᵀg_emp."""
    train = (F * F) @ (lam * ysq) + 2 * F @ ysq
    quad = ((F @ H) * F).sum(axis=1)
    return train, quad, F @ g, F @ g_emp


def congruence(M, Q):
    """Qᵀ M Q (two products, in numpy's BLAS on the host)."""
    if isinstance(M, jax.Array) or isinstance(Q, jax.Array):
        return Q.T @ (M @ Q)
    return Q.T @ (np.asarray(M, dtype=np.float64) @ Q)


@dataclasses.dataclass(frozen=True, eq=False)
class ExactDynamics:
    """Eigen-data of one problem; call :meth:`curves` or :meth:`A` at any τ (docs/theory.md §3)."""

    d: int
    p: int
    t: float
    lam: jnp.ndarray            # eigenvalues of U, clipped ≥ 0 (p,)
    Q: jnp.ndarray              # eigenvectors (p, p)
    Y: jnp.ndarray              # Qᵀ V (p, d)
    H: Optional[jnp.ndarray]    # (Y Yᵀ) ∘ (Qᵀ Ũ Q), None without population matrices
    g: Optional[jnp.ndarray]
    g_emp: Optional[jnp.ndarray]
    fisher: Optional[float]
    emp_sq: Optional[float]
    n_negative: int             # eigenvalues < 0 before clipping (round-off)
    info: Optional[dict] = None  # diagnostics of the solver (e.g. Lanczos convergence)

    @property
    def psi_p(self) -> float:
        return self.p / self.d

    def f(self, taus, eta: Optional[float] = None):
        """f_i(τ) for τ values (T,) → (T, modes): gradient flow, or discrete GD at step η (docs/theory.md §3.2–3.3).

        τ = ∞ gives the limit −1/λ_i (0 for a null mode: the minimum-norm convention).
        """
        taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
        if taus.ndim != 1 or np.any(np.isnan(taus)) or np.any(taus < 0):
            raise ValueError("taus must be a 1-d array of values >= 0 (np.inf allowed)")
        xp = _xp(self.lam)
        dt = delta(self.t)
        lam_max = float(self.lam.max())
        inf = np.isinf(taus)
        fin = xp.asarray(np.where(inf, 0.0, taus))
        if eta is None:
            F = mode_factors_flow(self.lam, fin, 2.0 * dt / self.psi_p)
        else:
            eta = check_positive("eta", eta)
            rate = 2.0 * eta * dt / (self.p * self.d)
            if rate * lam_max >= 2.0:
                raise ValueError(f"eta={eta:g} is beyond the GD stability limit p d/(Δ_t λ_max) = "
                                 f"{self.p * self.d / (dt * lam_max):g}")
            F = mode_factors_gd(self.lam, xp.round(fin * self.d**2 / eta), rate)
        if inf.any():
            pos = self.lam > 0
            f_inf = xp.where(pos, -1.0 / xp.where(pos, self.lam, 1.0), 0.0)
            F = xp.where(xp.asarray(inf)[:, None], f_inf[None, :], F)
        return F

    @x64
    def curves(self, taus, eta: Optional[float] = None) -> Curves:
        """Train/test loss, generalisation gap, score error and distance to the empirical score at τ (docs/theory.md §3.2)."""
        F = self.f(taus, eta)
        xp = _xp(self.lam)
        r = self.lam.shape[0]  # number of modes (p, or fewer for reduced/Ritz bases)
        zeros = xp.zeros(r)
        H = self.H if self.H is not None else xp.zeros((r, r))
        train, quad, lin, lin_emp = _evaluate(F, self.lam, (self.Y * self.Y).sum(axis=1), H,
                                              self.g if self.g is not None else zeros,
                                              self.g_emp if self.g_emp is not None else zeros)
        train, quad, lin, lin_emp = (np.asarray(a) for a in (train, quad, lin, lin_emp))
        d, dt = self.d, delta(self.t)
        tau = np.atleast_1d(np.asarray(taus, dtype=np.float64))
        test = score = emp = None
        if self.H is not None:
            test = 1.0 + (quad + 2 * lin) / d
            if self.fisher is not None:
                score = (test - 1.0) / dt + self.fisher / d
            if self.g_emp is not None:
                emp = (quad / dt - 2 * lin_emp / math.sqrt(dt) + self.emp_sq) / d
        return Curves(tau, 1.0 + train / d, test, None, score, emp,
                      method=(self.info or {}).get("method", "exact modes"))

    @x64
    def A(self, tau: float, eta: Optional[float] = None) -> jnp.ndarray:
        """Trained weights A(τ) = √p (1/√Δ_t) Yᵀ diag(f) Qᵀ (d, p) (docs/theory.md §3.2)."""
        fv = self.f([tau], eta)[0]
        return math.sqrt(self.p / delta(self.t)) * (self.Y.T * fv) @ self.Q.T

    @x64
    def A_infinity(self) -> jnp.ndarray:
        """τ → ∞ limit A* = -√(p/Δ_t) Vᵀ U⁻¹ (via the eigenbasis)."""
        xp = _xp(self.lam)
        inv = xp.where(self.lam > 0, 1.0 / xp.where(self.lam > 0, self.lam, 1.0), 0.0)
        return -math.sqrt(self.p / delta(self.t)) * (self.Y.T * inv) @ self.Q.T


def exact_dynamics(U, V, t: float, pop: Optional[Population] = None) -> ExactDynamics:
    """Eigendecompose U once and precompute every quadratic form the curves need (docs/theory.md §3.2).

    ``H = (Y Yᵀ) ∘ (Qᵀ Ũ Q)``, ``g = diag(Y (Qᵀ Ṽ)ᵀ)``, ``Y = Qᵀ V``; ``pop`` (Ũ, Ṽ, J and the
    empirical-score moments, :class:`~rfdiff.population.Population`) gives the test-side curves.
    numpy on the host (LAPACK and BLAS, no compilation), jax.numpy on an accelerator.
    """
    V = check_array("V", V, ndim=2)
    p, d = V.shape
    if isinstance(U, jax.Array) and jax.default_backend() != "cpu":
        if U.shape != (p, p):
            raise ValueError(f"U must have shape ({p}, {p}) to match V {V.shape}, got {U.shape}")
    else:
        U = check_symmetric("U", U)
        if U.shape != (p, p):
            raise ValueError(f"U must have shape ({p}, {p}) to match V {V.shape}, got {U.shape}")
    t = check_positive("t", t)
    pop = check_population(pop, p, d)
    lam, Q = eigh(U)
    if jax.default_backend() == "cpu":
        lam, Q = np.asarray(lam), np.asarray(Q)
    else:
        V = jnp.asarray(V)
    n_neg = int((lam < 0).sum())
    lam = lam.clip(0.0, None) if isinstance(lam, np.ndarray) else jnp.maximum(lam, 0.0)
    Y = Q.T @ V
    H = g = g_emp = None
    if pop is not None:
        H = (Y @ Y.T) * congruence(pop.U, Q)
        g = (Y * (Q.T @ _like(pop.V, Q))).sum(axis=1)
        if pop.has_emp:
            g_emp = (Y * (Q.T @ _like(pop.emp_cross, Q))).sum(axis=1)
    return ExactDynamics(d, p, t, lam, Q, Y, H, g, g_emp, None if pop is None else pop.fisher,
                         pop.emp_sq if pop is not None and pop.has_emp else None, n_neg)


def _like(M, ref):
    return jnp.asarray(M, dtype=jnp.float64) if isinstance(ref, jax.Array) else np.asarray(M, dtype=np.float64)


def from_problem(problem) -> ExactDynamics:
    """:func:`exact_dynamics` for an :class:`rfdiff.model.RFProblem`."""
    return exact_dynamics(problem.train.U, problem.train.V, problem.config.t, problem.population)
