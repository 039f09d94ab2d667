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
BUILTIN = frozenset(_REGISTRY)   # names that keep their meaning: results and caches record an activation by name

GROWTH_RADII = (20.0, 40.0)
MAX_GROWTH_DEGREE = 5


@functools.lru_cache(maxsize=256)
def _check_activation_fn(name: str, fn: Callable) -> Callable:
    """``fn`` if it can serve as σ, else a ValueError naming the activation (the rule, checked before any computation):

    * traceable by jax.numpy (it is jitted and differentiated): ``jax.eval_shape`` must succeed;
    * real, finite and at most polynomially growing: with ``M(r) = max(|σ(r)|, |σ(-r)|)``,
      ``M(40) ≤ 2⁵ max(M(20), 1)`` (growth of degree ≤ 5). The Mehler expansion of U and the
      Gaussian moments of docs/theory.md §2, §4 need Hermite coefficients that decay, i.e.
      E σ(s z)² finite with a tail the quadrature resolves; exp(3x) (growth e⁶⁰ between 20 and 40) is refused.
    """
    try:
        out = jax.eval_shape(fn, jax.ShapeDtypeStruct((4,), jnp.float32))
    except Exception as err:  # noqa: BLE001 - any tracing failure means the same thing to the user
        raise ValueError(f"activation {name!r} must be traceable by jax.numpy (use jnp, not np; tracing failed with "
                         f"{type(err).__name__})") from None
    if getattr(out, "shape", None) != (4,) or not jnp.issubdtype(out.dtype, jnp.floating):
        raise ValueError(f"activation {name!r} must map a float array elementwise to a float array of the same shape")
    r1, r2 = GROWTH_RADII
    with jax.enable_x64(True):
        v = np.asarray(fn(jnp.asarray([-r2, -r1, r1, r2], dtype=jnp.float64)), dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"activation {name!r} is not finite at x = ±{r1:g}, ±{r2:g}: σ must be finite and grow at most "
                         f"polynomially")
    m1, m2 = max(abs(v[1]), abs(v[2])), max(abs(v[0]), abs(v[3]))
    if m2 > 2.0**MAX_GROWTH_DEGREE * max(m1, 1.0):
        raise ValueError(f"activation {name!r} grows too fast (|σ| = {m1:.3g} at |x| = {r1:g}, {m2:.3g} at |x| = {r2:g}): "
                         f"σ must grow at most like |x|^{MAX_GROWTH_DEGREE} so that its Hermite expansion converges")
    return fn


def available_activations() -> tuple[str, ...]:
    """Names accepted by :func:`get_activation`."""
    return tuple(sorted(_REGISTRY))


def register_activation(name: str, fn: Callable[[Array], Array], smoothed: Optional[Callable] = None,
                        overwrite: bool = False, np_fn: Optional[Callable] = None) -> Activation:
    """Register ``fn`` under ``name``: traceable by jax.numpy, finite and growing at most like |x|⁵ (checked here;
    the rule is in ``_check_activation_fn``); ``np_fn`` its numpy twin. Built-in names (:data:`BUILTIN`) cannot
    be replaced: results and caches record σ by name."""
    if not isinstance(name, str) or not name:
        raise ValueError("activation name must be a non-empty string")
    if not callable(fn):
        raise ValueError(f"activation {name!r}: fn must be callable")
    if name in BUILTIN:
        raise ValueError(f"activation {name!r} is built in and cannot be replaced (saved results and caches name it); "
                         f"register under another name")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"activation {name!r} already registered (pass overwrite=True to replace)")
    _check_activation_fn(name, fn)
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
        name = getattr(act, "__name__", "custom")
        return Activation(name, _check_activation_fn(name, act))
    raise ValueError(f"activation must be a name, an Activation or a callable, got {act!r}")
