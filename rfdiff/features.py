"""Random features and the RF score ``s_A(x) = A σ(W x/√d)/√p`` (docs/theory.md §1, eq. 7)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_positive_int
from .activations import get_activation


def init_W(key: jax.Array, p: int, d: int, dtype=np.float64) -> np.ndarray:
    """Frozen first layer W ∈ R^{p×d}, i.i.d. N(0, 1) (docs/theory.md §1.3).

    Drawn in float64 whatever the global JAX setting, so a key gives the same W everywhere;
    returned as a numpy array of ``dtype`` (float64 by default).
    """
    p = check_positive_int("p", p)
    d = check_positive_int("d", d)
    with jax.enable_x64(True):
        W = np.asarray(jax.random.normal(key, (p, d), dtype=jnp.float64))
    return W.astype(dtype, copy=False)


def features(W: jnp.ndarray, X: jnp.ndarray, activation="tanh") -> jnp.ndarray:
    """φ(x) = σ(W x/√d) for a batch X (N, d) → (N, p)."""
    act = get_activation(activation)
    return act.fn(X @ W.T / math.sqrt(W.shape[1]))


def rf_score(A: jnp.ndarray, W: jnp.ndarray, X: jnp.ndarray, activation="tanh") -> jnp.ndarray:
    """s_A(x) = A σ(W x/√d)/√p for X (N, d) → (N, d) (docs/theory.md §1.3)."""
    return features(W, X, activation) @ A.T / math.sqrt(W.shape[0])
