"""Random features and the RF score ``s_A(x) = A σ(W x/√d)/√p`` (SPEC §1, eq. 7)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._util import check_positive_int
from .activations import get_activation


def init_W(key: jax.Array, p: int, d: int, dtype=None) -> jnp.ndarray:
    """Frozen first layer W ∈ R^{p×d}, i.i.d. N(0, 1) (SPEC §1)."""
    p = check_positive_int("p", p)
    d = check_positive_int("d", d)
    dtype = dtype or (jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    return jax.random.normal(key, (p, d), dtype=dtype)


def features(W: jnp.ndarray, X: jnp.ndarray, activation="tanh") -> jnp.ndarray:
    """φ(x) = σ(W x/√d) for a batch X (N, d) → (N, p)."""
    act = get_activation(activation)
    return act.fn(X @ W.T / math.sqrt(W.shape[1]))


def rf_score(A: jnp.ndarray, W: jnp.ndarray, X: jnp.ndarray, activation="tanh") -> jnp.ndarray:
    """s_A(x) = A σ(W x/√d)/√p for X (N, d) → (N, d) (SPEC eq. 7)."""
    return features(W, X, activation) @ A.T / math.sqrt(W.shape[0])
