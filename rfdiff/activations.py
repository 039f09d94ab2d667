"""Activation functions σ of the random-features score (docs/theory.md §1) and their Gaussian smoothings.

Named activations live in a registry so command-line tools can refer to them by name; any
callable ``jnp.ndarray -> jnp.ndarray`` may also be passed directly wherever an activation is
expected. The Mehler construction of U (docs/theory.md §2) needs the Gaussian-smoothed derivatives
``g_k(m, s) = E_z σ^{(k)}(m + s z)``; they come from Gauss–Hermite quadrature unless the
activation supplies a closed form (centred ReLU does, because its kink defeats quadrature).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import scipy.special as ssp

from ._util import gauss_hermite

Array = jnp.ndarray
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class Activation:
    """An activation σ, optionally with closed-form Gaussian smoothings.

    ``smoothed(m, s, K, xp)`` (optional) returns ``(g, m2)`` with ``g[k] = E σ^{(k)}(m + s z)`` for
    k = 0..K stacked on a leading axis and ``m2 = E σ(m + s z)²``, z ~ N(0, 1), computed with the
    array module ``xp`` (numpy or jax.numpy). ``np_fn`` (optional) is a numpy version of ``fn``
    used by the CPU path of :mod:`rfdiff.matrices` (no compilation); without it ``fn`` is jitted.
    """

    name: str
    fn: Callable[[Array], Array]
    smoothed: Optional[Callable] = None
    np_fn: Optional[Callable] = None

    def __call__(self, x: Array) -> Array:
        return self.fn(x)

    def numpy(self, x: np.ndarray) -> np.ndarray:
        """σ(x) for a float64 numpy array (the numpy version when there is one, else ``fn`` jitted)."""
        if self.np_fn is not None:
            return self.np_fn(x)
        with jax.enable_x64(True):
            return np.asarray(_jitted(self.fn)(jnp.asarray(x, dtype=jnp.float64)))


@functools.lru_cache(maxsize=None)
def _jitted(fn):
    return jax.jit(fn)


def _relu_centered(x):
    return jnp.maximum(x, 0.0) - _INV_SQRT_2PI


def _relu_centered_np(x):
    return np.maximum(x, 0.0) - _INV_SQRT_2PI


def _relu_centered_smoothed(m, s, K, xp=jnp):
    """Closed-form g_k for σ(x) = max(x, 0) - 1/√(2π): g_1 = Φ(m/s), g_k = (-1)^k He_{k-2}(m/s) φ(m/s)/s^{k-1}."""
    u = m / s
    pdf = xp.exp(-0.5 * u * u) * _INV_SQRT_2PI
    cdf = (ssp.ndtr if xp is np else jsp.ndtr)(u)
    relu_mean = m * cdf + s * pdf
    gs = [relu_mean - _INV_SQRT_2PI]
    if K >= 1:
        gs.append(cdf)
    he_prev, he = xp.zeros_like(u), xp.ones_like(u)  # He_{-1}, He_0
    for k in range(2, K + 1):
        j = k - 2  # He_j(u)
        gs.append(((-1.0) ** k) * he * pdf / s ** (k - 1))
        he_prev, he = he, u * he - j * he_prev
    relu_m2 = (m * m + s * s) * cdf + m * s * pdf
    m2 = relu_m2 - 2.0 * _INV_SQRT_2PI * relu_mean + _INV_SQRT_2PI**2
    return xp.stack(gs[: K + 1]), m2


def _gelu(x):
    return 0.5 * x * (1.0 + jsp.erf(x / math.sqrt(2.0)))


def _gelu_np(x):
    return 0.5 * x * (1.0 + ssp.erf(x / math.sqrt(2.0)))


_REGISTRY: dict[str, Activation] = {
    "tanh": Activation("tanh", jnp.tanh, np_fn=np.tanh),
    "erf": Activation("erf", jsp.erf, np_fn=ssp.erf),
    "relu_centered": Activation("relu_centered", _relu_centered, _relu_centered_smoothed, _relu_centered_np),
    "gelu": Activation("gelu", _gelu, np_fn=_gelu_np),
}


def available_activations() -> tuple[str, ...]:
    """Names accepted by :func:`get_activation`."""
    return tuple(sorted(_REGISTRY))


def register_activation(name: str, fn: Callable[[Array], Array], smoothed: Optional[Callable] = None,
                        overwrite: bool = False, np_fn: Optional[Callable] = None) -> Activation:
    """Register ``fn`` under ``name`` (a jnp-traceable function with a Hermite expansion; ``np_fn`` its numpy twin)."""
    if not isinstance(name, str) or not name:
        raise ValueError("activation name must be a non-empty string")
    if not callable(fn):
        raise ValueError(f"activation {name!r}: fn must be callable")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"activation {name!r} already registered (pass overwrite=True to replace)")
    act = Activation(name, fn, smoothed, np_fn)
    _REGISTRY[name] = act
    return act


def get_activation(act) -> Activation:
    """Return the :class:`Activation` for a registered name, an Activation, or a bare callable."""
    if isinstance(act, Activation):
        return act
    if isinstance(act, str):
        try:
            return _REGISTRY[act]
        except KeyError:
            raise ValueError(
                f"unknown activation {act!r}; valid names: {', '.join(available_activations())}"
            ) from None
    if callable(act):
        return Activation(getattr(act, "__name__", "custom"), act)
    raise ValueError(f"activation must be a name, an Activation or a callable, got {act!r}")


def smoothed_derivatives(act, m: Array, s: Array, K: int, order: int = 48):
    """Gaussian-smoothed derivatives (docs/theory.md §2): ``g_k = E σ^{(k)}(m + s z) = s^{-k} E[σ(m + s z) He_k(z)]``.

    ``m`` and ``s`` broadcast together; returns ``(g, m2)`` with ``g`` of shape ``(K+1,) + shape``
    and ``m2 = E σ(m + s z)²``. Uses the activation's closed form when it has one, otherwise
    ``order``-point Gauss–Hermite quadrature.
    """
    act = get_activation(act)
    if act.smoothed is not None:
        return act.smoothed(m, s, K)
    z, w = gauss_hermite(order)
    z = jnp.asarray(z, dtype=jnp.result_type(m, float))
    w = jnp.asarray(w, dtype=z.dtype)
    m, s = jnp.broadcast_arrays(jnp.asarray(m), jnp.asarray(s))
    vals = act.fn(m[..., None] + s[..., None] * z)  # (..., Q)
    he = [jnp.ones_like(z), z]
    for k in range(2, K + 1):
        he.append(z * he[-1] - (k - 1) * he[-2])
    H = jnp.stack(he[: K + 1], axis=-1) * w[:, None]  # (Q, K+1)
    g = jnp.moveaxis(vals @ H, -1, 0)  # (K+1, ...)
    ks = jnp.arange(K + 1).reshape((K + 1,) + (1,) * m.ndim) if m.ndim else jnp.arange(K + 1)
    g = g / s ** ks
    m2 = (vals * vals) @ w
    return g, m2
