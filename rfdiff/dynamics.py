"""Exact training dynamics of the RF score from one eigendecomposition of U (SPEC §3, eq. 53).

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

from ._util import check_positive, x64
from .diffusion import delta
from .io import device_memory
from .results import Curves


def eigh(U) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Symmetric eigendecomposition in float64; LAPACK's divide-and-conquer on CPU (≈2x faster than jnp there)."""
    if jax.default_backend() == "cpu":
        lam, Q = scipy.linalg.eigh(np.asarray(U, dtype=np.float64), driver="evd", check_finite=False)
        return jnp.asarray(lam), jnp.asarray(Q)
    return jnp.linalg.eigh(jnp.asarray(U, dtype=jnp.float64))


def eigvalsh(U) -> np.ndarray:
    """Eigenvalues only (ascending, float64): LAPACK on CPU, ``jnp.linalg.eigvalsh`` on an accelerator."""
    if jax.default_backend() == "cpu":
        return scipy.linalg.eigvalsh(np.asarray(U, dtype=np.float64), check_finite=False, driver="evd")
    with jax.enable_x64(True):
        return np.asarray(jnp.linalg.eigvalsh(jnp.asarray(U, dtype=jnp.float64)))


DENSE_ARRAYS = 8  # p×p float64 arrays alive at the peak of the dense path (U, Ũ, Q, QᵀŨQ, H, temporaries)


def dense_path_bytes(p: int) -> int:
    """Peak memory of the dense path (:func:`exact_dynamics`): about ``DENSE_ARRAYS`` p×p float64 arrays."""
    return DENSE_ARRAYS * 8 * int(p) ** 2


def dense_fits(p: int, cpu_max_p: int = 8192, fraction: float = 0.7) -> bool:
    """Whether the dense eigendecomposition path suits p on the default JAX device.

    CPU: p ≤ ``cpu_max_p`` (above it the O(p³) eigendecomposition dominates; use Lanczos).
    Accelerator: :func:`dense_path_bytes` ≤ ``fraction`` of the device's memory limit.
    """
    mem = device_memory()
    if not mem or "bytes_limit" not in mem:
        return int(p) <= cpu_max_p
    return dense_path_bytes(p) <= fraction * mem["bytes_limit"]


@jax.jit
def mode_factors_flow(lam, taus, c):
    """f_i(τ) = (exp(-c λ_i τ) - 1)/λ_i, stable for λ → 0 (→ -cτ) and any large τ."""
    x = c * lam[None, :] * taus[:, None]
    small = x < 1e-12
    return jnp.where(small, -c * taus[:, None] * (1 - 0.5 * x), jnp.expm1(-x) / jnp.where(small, 1.0, lam[None, :]))


@jax.jit
def mode_factors_gd(lam, steps, rate):
    """f_i(k) = ((1 - rate λ_i)^k - 1)/λ_i for discrete GD with k steps (k integer-valued)."""
    r = rate * lam[None, :]
    k = steps[:, None]
    pos = jnp.expm1(k * jnp.log1p(-jnp.minimum(r, 0.999999999999)))
    em1 = jnp.where(r < 1.0, pos, (1.0 - r) ** k - 1.0)
    small = r < 1e-14
    return jnp.where(small, -rate * k, em1 / jnp.where(small, 1.0, lam[None, :]))


@jax.jit
def _evaluate(F, lam, ysq, H, g, g_emp):
    """Per-τ quadratic forms (rows of F): train sum, fᵀHf, fᵀg, fᵀg_emp."""
    train = F * F @ (lam * ysq) + 2 * F @ ysq
    quad = jnp.sum((F @ H) * F, axis=1)
    return train, quad, F @ g, F @ g_emp


@dataclasses.dataclass(frozen=True, eq=False)
class ExactDynamics:
    """Eigen-data of one problem; call :meth:`curves` or :meth:`A` at any τ (SPEC §3)."""

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

    def f(self, taus, eta: Optional[float] = None) -> jnp.ndarray:
        """f_i(τ) for τ values (T,) → (T, modes): gradient flow, or discrete GD at step η (docs/theory.md §3.2–3.3).

        τ = ∞ gives the limit −1/λ_i (0 for a null mode: the minimum-norm convention).
        """
        taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
        if taus.ndim != 1 or np.any(np.isnan(taus)) or np.any(taus < 0):
            raise ValueError("taus must be a 1-d array of values >= 0 (np.inf allowed)")
        dt = delta(self.t)
        lam_max = float(jnp.max(self.lam))
        inf = np.isinf(taus)
        fin = jnp.asarray(np.where(inf, 0.0, taus))
        if eta is None:
            F = mode_factors_flow(self.lam, fin, 2.0 * dt / self.psi_p)
        else:
            eta = check_positive("eta", eta)
            rate = 2.0 * eta * dt / (self.p * self.d)
            if rate * lam_max >= 2.0:
                raise ValueError(f"eta={eta:g} is beyond the GD stability limit p d/(Δ_t λ_max) = "
                                 f"{self.p * self.d / (dt * lam_max):g}")
            F = mode_factors_gd(self.lam, jnp.round(fin * self.d**2 / eta), rate)
        if inf.any():
            pos = self.lam > 0
            f_inf = jnp.where(pos, -1.0 / jnp.where(pos, self.lam, 1.0), 0.0)
            F = jnp.where(jnp.asarray(inf)[:, None], f_inf[None, :], F)
        return F

    @x64
    def curves(self, taus, eta: Optional[float] = None) -> Curves:
        """Train/test loss, generalisation gap, score error and distance to the empirical score at τ (docs/theory.md §3.2)."""
        F = self.f(taus, eta)
        r = self.lam.shape[0]  # number of modes (p, or fewer for reduced/Ritz bases)
        zeros = jnp.zeros(r)
        H = self.H if self.H is not None else jnp.zeros((r, r))
        train, quad, lin, lin_emp = _evaluate(F, self.lam, jnp.sum(self.Y**2, 1), H,
                                              self.g if self.g is not None else zeros,
                                              self.g_emp if self.g_emp is not None else zeros)
        d, dt = self.d, delta(self.t)
        tau = np.asarray(jnp.atleast_1d(jnp.asarray(taus, dtype=jnp.float64)))
        test = score = emp = None
        if self.H is not None:
            test = np.asarray(1.0 + (quad + 2 * lin) / d)
            if self.fisher is not None:
                score = (test - 1.0) / dt + self.fisher / d
            if self.g_emp is not None:
                emp = np.asarray((quad / dt - 2 * lin_emp / math.sqrt(dt) + self.emp_sq) / d)
        return Curves(tau, np.asarray(1.0 + train / d), test, None, score, emp,
                      method=(self.info or {}).get("method", "exact modes"))

    @x64
    def A(self, tau: float, eta: Optional[float] = None) -> jnp.ndarray:
        """Trained weights A(τ) = √p (1/√Δ_t) Yᵀ diag(f) Qᵀ (d, p) (SPEC eq. 53)."""
        fv = self.f(jnp.asarray([tau]), eta)[0]
        return math.sqrt(self.p / delta(self.t)) * (self.Y.T * fv) @ self.Q.T

    @x64
    def A_infinity(self) -> jnp.ndarray:
        """τ → ∞ limit A* = -√(p/Δ_t) Vᵀ U⁻¹ (via the eigenbasis)."""
        inv = jnp.where(self.lam > 0, 1.0 / jnp.where(self.lam > 0, self.lam, 1.0), 0.0)
        return -math.sqrt(self.p / delta(self.t)) * (self.Y.T * inv) @ self.Q.T


@x64
def exact_dynamics(U, V, t: float, U_pop=None, V_pop=None, fisher: Optional[float] = None,
                   emp_cross=None, emp_sq: Optional[float] = None) -> ExactDynamics:
    """Eigendecompose U once and precompute every quadratic form the curves need (SPEC §3)."""
    V = jnp.asarray(V, dtype=jnp.float64)
    p, d = V.shape
    if np.shape(U) != (p, p):
        raise ValueError(f"U must be ({p}, {p}) to match V {V.shape}, got {np.shape(U)}")
    t = check_positive("t", t)
    lam, Q = eigh(U)
    n_neg = int(jnp.sum(lam < 0))
    lam = jnp.maximum(lam, 0.0)
    Y = Q.T @ V
    H = g = g_emp = None
    if U_pop is not None:
        QtUQ = Q.T @ (jnp.asarray(U_pop, dtype=jnp.float64) @ Q)
        H = (Y @ Y.T) * QtUQ
        g = jnp.sum(Y * (Q.T @ jnp.asarray(V_pop, dtype=jnp.float64)), axis=1)
        if emp_cross is not None:
            g_emp = jnp.sum(Y * (Q.T @ jnp.asarray(emp_cross, dtype=jnp.float64)), axis=1)
    return ExactDynamics(d, p, t, lam, Q, Y, H, g, g_emp, fisher, emp_sq, n_neg)


def from_problem(problem) -> ExactDynamics:
    """:func:`exact_dynamics` for an :class:`rfdiff.model.RFProblem`."""
    return exact_dynamics(problem.train.U, problem.train.V, problem.config.t, problem.pop.U, problem.pop.V,
                          problem.fisher, problem.emp_cross, problem.emp_sq)
