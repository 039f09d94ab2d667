"""Fresh-noise gradient descent around its mean trajectory: the fluctuation floor (docs/theory.md §7.2).

The authors' trainer draws one fresh noise per training point at every step:
``A_{k+1} = A_k − η (∇L(A_k) + ζ_k)`` with E ζ_k = 0. The loss is quadratic in A, so the mean
iterate follows exact gradient descent (:mod:`rfdiff.dynamics`) and the deviation δA = A − E A
obeys ``δA_{k+1} = δA_k (I − r U) − η ζ_k``, r = 2ηΔ_t/(d p). In the eigenbasis of U
(U = Q diag(λ) Qᵀ), with ``S = Qᵀ Σ_ζ Q`` the gradient-noise covariance (summed over the d
output rows), the covariance of the iterates after k steps is

    C_ij(k) = η² S_ij (1 − a_ij^k)/(1 − a_ij),    a_ij = (1 − rλ_i)(1 − rλ_j),

and the excess of the noise-averaged losses over the mean trajectory is

    ΔL_train = (Δ_t/(d p)) Σ_i λ_i C_ii,    ΔL_test = (Δ_t/(d p)) Σ_ij C_ij (QᵀŨQ)_ji,    ΔE_score = ΔL_test/Δ_t.

Σ_ζ depends on A; it is estimated by Monte Carlo over fresh draws at the mean iterate of each
checkpoint (quasi-static: the transient factor uses the step count reached there).
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_positive, check_positive_int
from .activations import get_activation
from .diffusion import delta
from .results import register

__all__ = ["fresh_gradients", "noise_covariance", "excess_losses", "FloorPrediction"]


@functools.partial(jax.jit, static_argnames=("act",))
def _grads(keys, A, W, Xs, t, act):
    d, p = A.shape
    sdt = jnp.sqrt(-jnp.expm1(-2.0 * t))

    def one(key):
        xi = jax.random.normal(key, Xs.shape, dtype=A.dtype)
        phi = act.fn((Xs + sdt * xi) @ W.T / math.sqrt(d))
        r = (sdt / math.sqrt(p)) * (phi @ A.T) + xi                        # residuals (n, d)
        return (2.0 * sdt / (Xs.shape[0] * d * math.sqrt(p))) * (r.T @ phi)  # ∇_A of the batch loss

    return jax.lax.map(one, keys)


def fresh_gradients(key, A, W, X, t: float, activation="tanh", draws: int = 64) -> np.ndarray:
    """``draws`` full-batch gradients ∇_A L̂ (draws, d, p), each with one fresh noise per training point."""
    draws = check_positive_int("draws", draws)
    t = check_positive("t", t)
    with jax.enable_x64(True):
        Xs = math.exp(-t) * jnp.asarray(X, dtype=jnp.float64)
        g = _grads(jax.random.split(key, draws), jnp.asarray(A, dtype=jnp.float64),
                   jnp.asarray(W, dtype=jnp.float64), Xs, float(t), get_activation(activation))
        return np.asarray(g)


def noise_covariance(grads: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """``S = Qᵀ Σ_ζ Q``: covariance of the gradient noise in U's eigenbasis, summed over output rows (p, p)."""
    g = np.asarray(grads, dtype=np.float64)
    z = g - g.mean(axis=0, keepdims=True)
    Z = (z @ Q).reshape(-1, Q.shape[1])                          # (draws·d, p)
    return Z.T @ Z / max(g.shape[0] - 1, 1)


def excess_losses(S: np.ndarray, lam: np.ndarray, QtUpQ: np.ndarray, eta: float, steps: int, d: int,
                  t: float) -> tuple[float, float]:
    """``(ΔL_train, ΔL_test)`` of fresh-noise GD after ``steps`` steps at step η (module docstring)."""
    lam = np.asarray(lam, dtype=np.float64)
    p = lam.size
    dt = delta(t)
    r = 2.0 * eta * dt / (d * p)
    a = np.outer(1.0 - r * lam, 1.0 - r * lam)
    # Σ_{k<steps} a^k = (1 − a^steps)/(1 − a); a < 0 (overshooting but stable modes, 1 < rλ < 2) keeps its sign
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        geo = np.where(np.abs(1.0 - a) > 1e-14, (1.0 - np.power(a, steps)) / (1.0 - a), float(steps))
    C = eta**2 * S * geo
    return float(dt / (d * p) * np.sum(lam * np.diag(C))), float(dt / (d * p) * np.sum(C * QtUpQ))


@register
@dataclasses.dataclass(frozen=True, eq=False)
class FloorPrediction:
    """Predicted excess of fresh-noise GD over its mean trajectory at checkpoints ``tau`` (docs/theory.md §7.2)."""

    tau: np.ndarray
    steps: np.ndarray
    train_excess: np.ndarray
    test_excess: np.ndarray
    score_excess: np.ndarray
    draws: int
