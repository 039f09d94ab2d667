"""Losses and score errors of an RF score as quadratic forms in B = A/√p (docs/theory.md §2, eqs. 55, 164–165)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ._util import x64
from .diffusion import delta


@x64
def quadratic_loss(B, U, V, t: float) -> jnp.ndarray:
    """Denoising loss ``1 + (Δ_t/d) Tr(B U Bᵀ) + (2√Δ_t/d) Tr(B V)`` (docs/theory.md §2); train with U, V, test with Ũ, Ṽ."""
    dt = delta(t)
    d = B.shape[0]
    return 1.0 + (dt / d) * jnp.sum((B @ U) * B) + (2.0 * math.sqrt(dt) / d) * jnp.sum(B * V.T)


@x64
def score_error(B, U_pop, V_pop, t: float, fisher: float) -> jnp.ndarray:
    """E_score = (1/d) E‖s_A(y) - ∇log P_t(y)‖² = (L_test - 1)/Δ_t + J/d, J = E‖∇log P_t‖² (docs/theory.md §2).

    Uses E[φ ∇log P_tᵀ] = -Ṽ/√Δ_t (integration by parts), exact for any P_t.
    """
    d = B.shape[0]
    return (quadratic_loss(B, U_pop, V_pop, t) - 1.0) / delta(t) + fisher / d


def minimal_test_loss(t: float, fisher: float, d: int) -> float:
    """Loss of the exact score, ``1 - Δ_t J/d`` (the floor of L_test)."""
    return 1.0 - delta(t) * fisher / d


def empirical_score_np(Y: np.ndarray, X: np.ndarray, t: float) -> np.ndarray:
    """:func:`empirical_score` in numpy float64 (no compilation)."""
    dt = delta(t)
    et = math.exp(-t)
    sq = np.sum(Y * Y, 1)[:, None] - 2 * et * Y @ X.T + et**2 * np.sum(X * X, 1)[None]
    logits = -sq / (2 * dt)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    return (et * w @ X - Y) / dt


@x64
def empirical_score(Y: jnp.ndarray, X: jnp.ndarray, t: float) -> jnp.ndarray:
    """Score of P_t^emp = (1/n) Σ_ν N(e^{-t} x^ν, Δ_t I) at Y (N, d) (docs/theory.md §2): (e^{-t} Σ_ν w_ν x^ν - y)/Δ_t."""
    dt = delta(t)
    et = math.exp(-t)
    sq = jnp.sum(Y * Y, 1)[:, None] - 2 * et * Y @ X.T + et**2 * jnp.sum(X * X, 1)[None]
    w = jax.nn.softmax(-sq / (2 * dt), axis=1)
    return (et * w @ X - Y) / dt
