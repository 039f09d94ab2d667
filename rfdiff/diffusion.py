"""Forward Ornstein–Uhlenbeck process (docs/theory.md §1): ``x_t = e^{-t} x_0 + sqrt(Δ_t) ξ``."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ._util import check_positive


def delta(t: float) -> float:
    """Noise variance of the forward process, ``Δ_t = 1 - e^{-2t}`` (docs/theory.md §1)."""
    t = check_positive("t", t)
    return -math.expm1(-2.0 * t)


def forward(key: jax.Array, x0: jnp.ndarray, t: float) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Noise ``x0`` (shape (..., d)) to time t; returns ``(x_t, ξ)`` with ``x_t = e^{-t} x0 + sqrt(Δ_t) ξ``."""
    dt = delta(t)
    xi = jax.random.normal(key, jnp.shape(x0), dtype=jnp.result_type(x0, float))
    return math.exp(-t) * x0 + math.sqrt(dt) * xi, xi
