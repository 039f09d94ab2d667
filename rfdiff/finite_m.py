"""Exact time-resolved dynamics with m frozen noise draws per training point (docs/theory.md §2 "finite m").

The N = n·m noised points ``z^{ν,a} = e^{-t} x^ν + √Δ_t ξ^{ν,a}`` (a = 1..m) are fixed once;
with features Φ (N × p, rows φ(z)) and noises Ξ (N × d),

.. math::

    U_m = Φ^T Φ/N, \\quad V_m = Φ^T Ξ/N, \\quad
    L^{(m)}_{train} = c_Ξ + \\frac{Δ_t}{d} Tr(B U_m B^T) + \\frac{2\\sqrt{Δ_t}}{d} Tr(B V_m),
    \\quad c_Ξ = \\frac{\\|Ξ\\|_F^2}{N d}

(c_Ξ → 1 only as m → ∞). Training on L^{(m)}_train from A(0) = 0 is the dynamics of docs/theory.md §3 with
(U_m, V_m) in place of (U, V). Primal form (N ≥ p): one eigendecomposition of U_m via
:func:`rfdiff.dynamics.exact_dynamics`. Dual form (N < p): U_m has rank N; from the Gram
``K = Φ Φᵀ/N = P diag(μ) Pᵀ`` the non-null modes are ``q_k = Φᵀ p_k/√(N μ_k)`` with
``Y_k = q_kᵀ V_m = √(μ_k/N) p_kᵀ Ξ``; the p − N null modes have Y = 0, so with A(0) = 0 they never
move and the τ → ∞ limit is the minimum-norm interpolator. Both forms give a
:class:`rfdiff.ridge.RidgeDynamics` (ridge λ and τ = ∞ supported). Losses reported: the train
loss on the frozen draws, the noise-averaged train loss (exact U, V), the test loss, the score
error and the distance to the empirical score (docs/theory.md §2).

Weighted draws (``weights`` w_a, Σ_a w_a = 1) generalise 1/m: U_m = (1/n) Σ_ν Σ_a w_a φφᵀ.
With a product Gauss–Hermite rule as the "draws" the object converges to the exact average
exponentially fast; this is how the m → ∞ limit is checked to high accuracy.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ._util import check_array, check_finite_array, check_positive_int, gauss_hermite, x64
from .activations import get_activation
from .diffusion import delta
from .dynamics import exact_dynamics
from .population import Population, check_population
from .results import Curves
from .ridge import RidgeDynamics, check_ps, check_rcond, check_ridge, static_losses, with_ridge

FORMS = ("auto", "primal", "dual")


@x64
def frozen_noise(key: jax.Array, m: int, n: int, d: int) -> np.ndarray:
    """m i.i.d. N(0, I_d) noise draws per training point, (m, n, d) (docs/theory.md §2.6): draw a is
    ``normal(fold_in(key, a), (n, d))``, the draws ``TrainConfig(noise="frozen")`` trains on with this key."""
    m, n, d = (check_positive_int(k, v) for k, v in (("m", m), ("n", n), ("d", d)))
    return np.stack([np.asarray(jax.random.normal(jax.random.fold_in(key, a), (n, d), dtype=jnp.float64))
                     for a in range(m)])


def gauss_hermite_noise(d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Product Gauss–Hermite rule in R^d as weighted draws: nodes (k^d, d) and weights (k^d,) summing to 1."""
    d = check_positive_int("d", d)
    k = check_positive_int("k", k)
    if k**d > 2_000_000:
        raise ValueError(f"k**d = {k**d} nodes is too many (d={d}, k={k})")
    z, w = gauss_hermite(k)
    nodes = np.array(list(itertools.product(z, repeat=d)), dtype=np.float64)
    weights = np.prod(np.array(list(itertools.product(w, repeat=d))), axis=1)
    return nodes, weights / weights.sum()


def _validate_draws(W, X, t, noise, weights):
    W = np.asarray(check_finite_array("W", W), dtype=np.float64)
    X = np.asarray(check_finite_array("X", X), dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"W must be a (p, d) matrix, got shape {W.shape}")
    p, d = W.shape
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(f"X must be (n, d={d}), got shape {X.shape}")
    n = X.shape[0]
    noise = np.asarray(check_finite_array("noise", noise), dtype=np.float64)
    if noise.ndim == 2 and noise.shape[1] == d:  # the same draws for every point
        noise = np.broadcast_to(noise[:, None, :], (noise.shape[0], n, d))
    if noise.ndim != 3 or noise.shape[1:] != (n, d) or noise.shape[0] == 0:
        raise ValueError(f"noise must be (m, n={n}, d={d}) or (m, d={d}), got shape {noise.shape}")
    m = noise.shape[0]
    if weights is None:
        w = np.full(m, 1.0 / m)
    else:
        w = np.asarray(check_finite_array("weights", weights), dtype=np.float64).reshape(-1)
        if w.shape != (m,) or np.any(w <= 0) or abs(w.sum() - 1.0) > 1e-9:
            raise ValueError(f"weights must be {m} positive numbers summing to 1")
    delta(t)  # validates t
    return W, X, noise, w


@x64
def frozen_features(W, X, t: float, noise, weights=None, activation="tanh"):
    """Weighted feature and noise rows Φ̃ = √(w_a/n) φ(z^{ν,a}) (N, p), Ξ̃ = √(w_a/n) ξ^{ν,a} (N, d), and c_Ξ.

    So that U_m = Φ̃ᵀΦ̃, V_m = Φ̃ᵀΞ̃ and c_Ξ = ‖Ξ̃‖²_F/d (module docstring).
    """
    W, X, noise, w = _validate_draws(W, X, t, noise, weights)
    act = get_activation(activation)
    m, n, d = noise.shape
    Z = math.exp(-t) * X[None] + math.sqrt(delta(t)) * noise          # (m, n, d)
    scale = np.sqrt(w / n)[:, None, None]
    Phi = act.fn(jnp.asarray(Z.reshape(m * n, d)) @ jnp.asarray(W).T / math.sqrt(d))
    Phi = Phi * jnp.asarray(np.broadcast_to(scale, (m, n, 1)).reshape(m * n, 1))
    Xi = (noise * scale).reshape(m * n, d)
    return Phi, jnp.asarray(Xi), float(np.sum(Xi * Xi) / d)


def _dual_core(Phi, Xi, d, p, t, pop: Optional[Population]):
    """Eigen-data of U_m from the Gram Φ̃Φ̃ᵀ (rank N < p); returns an ExactDynamics-compatible dict."""
    K = np.asarray(Phi @ Phi.T)
    mu, P = scipy.linalg.eigh(K, driver="evd")
    N = K.shape[0]
    keep = mu > N * np.finfo(np.float64).eps * max(float(mu[-1]), 1e-300)
    n_neg = int(np.sum(mu < 0))
    mu, P = mu[keep], P[:, keep]
    Q = Phi.T @ jnp.asarray(P / np.sqrt(mu))                 # (p, r), orthonormal columns
    Y = jnp.asarray(np.sqrt(mu)[:, None] * (P.T @ np.asarray(Xi)))
    r = mu.size
    has_pop = pop is not None
    H = (Y @ Y.T) * (Q.T @ (jnp.asarray(pop.U, dtype=jnp.float64) @ Q)) if has_pop else jnp.zeros((r, r))
    g = jnp.sum(Y * (Q.T @ jnp.asarray(pop.V, dtype=jnp.float64)), axis=1) if has_pop else jnp.zeros(r)
    has_emp = has_pop and pop.has_emp
    g_emp = jnp.sum(Y * (Q.T @ jnp.asarray(pop.emp_cross, dtype=jnp.float64)), axis=1) if has_emp else jnp.zeros(r)
    return dict(d=d, p=p, t=t, lam=jnp.asarray(mu), Q=Q, Y=Y, H=H, g=g, g_emp=g_emp,
                fisher=pop.fisher if has_pop else None, emp_sq=pop.emp_sq if has_emp else 0.0, n_negative=n_neg)


@dataclasses.dataclass(frozen=True, eq=False)
class FiniteMDynamics:
    """Dynamics trained on m frozen noise draws per point; :meth:`curves` at any τ (np.inf allowed).

    ``core``: eigen-data of (U_m, V_m) with the population/empirical-score projections;
    ``avg``: the same basis with the exact noise-averaged (U, V) projected (None if not given);
    ``noise_sq``: c_Ξ = ‖Ξ‖²/(N d), the constant of the frozen-draw train loss; ``form``: primal/dual.
    """

    core: RidgeDynamics
    avg: Optional[RidgeDynamics]
    m: int
    n: int
    noise_sq: float
    form: str
    has_pop: bool
    has_emp: bool

    @property
    def ridge(self) -> float:
        return self.core.ridge

    @property
    def n_modes(self) -> int:
        """Number of modes kept: p (primal) or rank N of the Gram (dual)."""
        return int(self.core.lam.shape[0])

    @x64
    def curves(self, taus, eta: Optional[float] = None) -> Curves:
        """Losses of docs/theory.md §2 for training on the frozen draws (τ = np.inf allowed).

        ``train_loss`` is the noise-averaged train loss (exact U, V; None without them) and
        ``gen_gap`` = test − that; ``extra`` holds ``train_loss_frozen`` (on the draws, what is
        minimised), ``gen_gap_frozen``, ``objective`` and ``weight_norm``.
        """
        c = self.core.curves(taus, eta)
        shift = self.noise_sq - 1.0
        frozen = c.train_loss + shift
        extra = {"train_loss_frozen": frozen, "objective": c.extra["objective"] + shift,
                 "weight_norm": c.extra["weight_norm"]}
        avg = self.avg.curves(taus, eta).test_loss if self.avg is not None else None
        test = c.test_loss if self.has_pop else None
        if test is not None:
            extra["gen_gap_frozen"] = test - frozen
        return Curves(c.tau, avg, test, None, c.score_error if self.has_pop else None,
                      c.emp_distance if self.has_emp else None, extra,
                      method=f"exact modes on m = {self.m} frozen draws ({self.form})")

    def A(self, tau: float, eta: Optional[float] = None) -> jnp.ndarray:
        """Trained weights A(τ) (d, p) (docs/theory.md §3.2 with U_m, V_m); τ = np.inf gives the min-norm / ridge solution."""
        return self.core.A(tau, eta)

    def A_infinity(self) -> jnp.ndarray:
        """τ → ∞ weights: -√(p/Δ_t) V_mᵀ (U_m + λI)^+ (minimum-norm at λ = 0)."""
        return self.core.A_infinity()

    def with_ridge(self, ridge: float) -> "FiniteMDynamics":
        """The same frozen draws with ridge λ (rfdiff.ridge normalisation); no new eigendecomposition."""
        r = check_ridge(ridge)
        avg = None if self.avg is None else dataclasses.replace(self.avg, ridge=r)
        return dataclasses.replace(self, core=dataclasses.replace(self.core, ridge=r), avg=avg)


def _check_avg(avg, p: int, d: int):
    """``avg`` = (U, V), the exact noise-averaged training matrices (p, p), (p, d), as float64 arrays (None allowed)."""
    if avg is None:
        return None
    if not isinstance(avg, (tuple, list)) or len(avg) != 2:
        raise ValueError("avg must be a pair (U, V) of the exact noise-averaged training matrices")
    return check_array("avg U", avg[0], shape=(p, p)), check_array("avg V", avg[1], shape=(p, d))


@x64
def finite_m_dynamics(W, X, t: float, noise, weights=None, activation="tanh", pop: Optional[Population] = None,
                      avg=None, ridge: float = 0.0, form: str = "auto", rcond: float = 1e-12) -> FiniteMDynamics:
    """Exact dynamics on the frozen draws ``noise`` (m, n, d) (module docstring; docs/theory.md §2–3 with U_m, V_m).

    ``form``: "primal" (eigh of U_m, p×p), "dual" (eigh of the N×N Gram) or "auto" (dual iff N < p).
    ``pop`` (:class:`~rfdiff.population.Population`) gives the test loss, score error and distance to
    the empirical score; ``avg`` = (U, V), the exact noise-averaged matrices, the noise-averaged train loss.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    check_ridge(ridge)
    check_rcond(rcond)
    Phi, Xi, c = frozen_features(W, X, t, noise, weights, activation)
    N, p = Phi.shape
    d = Xi.shape[1]
    pop = check_population(pop, p, d)
    avg = _check_avg(avg, p, d)
    use_dual = form == "dual" or (form == "auto" and N < p)
    if use_dual:
        core = RidgeDynamics(**_dual_core(Phi, Xi, d, p, t, pop), ridge=ridge, rcond=rcond)
    else:
        core = with_ridge(exact_dynamics(Phi.T @ Phi, Phi.T @ Xi, t, pop), ridge, rcond)
        if core.H is None:  # fill so that replacing H, g below (noise-averaged train loss) works
            core = dataclasses.replace(core, H=jnp.zeros((p, p)), g=jnp.zeros(p))
    averaged = None
    if avg is not None:
        Q, Y = core.Q, core.Y
        averaged = dataclasses.replace(core, H=(Y @ Y.T) * (Q.T @ (jnp.asarray(avg[0], dtype=jnp.float64) @ Q)),
                                       g=jnp.sum(Y * (Q.T @ jnp.asarray(avg[1], dtype=jnp.float64)), axis=1),
                                       g_emp=jnp.zeros(Y.shape[0]), emp_sq=0.0, fisher=None)
    return FiniteMDynamics(core, averaged, int(np.shape(noise)[0]), int(np.shape(X)[0]), c,
                           "dual" if use_dual else "primal", pop is not None, pop is not None and pop.has_emp)


@x64
def frozen_statics_vs_p(W, X, t: float, noise, ps, ridges=(0.0,), weights=None, activation="tanh",
                        pop: Optional[Population] = None, avg=None, rcond: float = 1e-12) -> dict:
    """τ → ∞ frozen-draw losses of the models made of the first p rows of W (p ∈ ps), per ridge: arrays (P, R).

    From the thin SVD Φ̃_p = S diag(s) Rᵀ: modes q = columns of R, λ = s², Y = diag(s) SᵀΞ̃, so the
    minimum-norm (λ = 0) and ridge solutions are exact without squaring the conditioning; the
    interpolation peak at p = N = nm is resolved. ``pop`` and ``avg`` = (U, V) are sliced to their leading blocks
    (see :func:`rfdiff.ridge.statics_vs_p`). Same numbers as ``finite_m_dynamics(...).curves([inf])``.
    """
    Phi, Xi, c = frozen_features(W, X, t, noise, weights, activation)
    Phi, Xi = np.asarray(Phi), np.asarray(Xi)
    ps = check_ps(ps, Phi.shape[1])
    pop = check_population(pop, Phi.shape[1], Xi.shape[1])
    avg = _check_avg(avg, Phi.shape[1], Xi.shape[1])
    rows = []
    for p in ps:
        S, s, Rt = np.linalg.svd(Phi[:, :p], full_matrices=False)
        rows.append(static_losses(s * s, Rt.T, s[:, None] * (S.T @ Xi), t, ridges,
                                  None if pop is None else pop.leading(p),
                                  None if avg is None else (avg[0][:p, :p], avg[1][:p]), const=c, rcond=rcond))
    out = {k: np.stack([r[k] for r in rows]) for k in rows[0] if k != "ridge"}
    out["ridge"] = rows[0]["ridge"]
    out["p"] = np.array(ps)
    out["N"] = Phi.shape[0]
    return out
