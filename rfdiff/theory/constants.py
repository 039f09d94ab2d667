"""Gaussian-equivalence constants a_t, b_t, v_t², s_t², μ_1, μ_*² (docs/theory.md §4, eqs. 12–14).

With u, v, w, z i.i.d. N(0, 1), ``Γ_t² = e^{-2t} σ_x² + Δ_t`` and ``α = e^{-t} σ_x``:

* ``μ_0 = E σ(Γ_t z)`` (zero for odd σ; a non-zero mean only adds a rank-one spike to U),
* ``μ_1 = E σ(Γ_t z) z``,  ``a_t = μ_1/Γ_t``,  ``b_t = √Δ_t μ_1/Γ_t`` (Stein's lemma),
* ``v_t² = E_u[(E_v σ(α u + √Δ_t v))²] − μ_0² − a_t² α²``   (nested quadrature),
* ``s_t² = E σ(Γ_t z)² − μ_0² − a_t² α² − v_t² − b_t²``,
* ``μ_*² = E σ(Γ_t z)² − μ_0² − μ_1² = s_t² + v_t²``.

docs/theory.md §4 writes v_t² and s_t² for a centred σ (μ_0 = 0); the −μ_0² terms make the same
formulas right for activations with a non-zero Gaussian mean (GELU, or centred ReLU at Γ_t ≠ 1).

Everything is Gauss–Hermite quadrature (nested for v_t²), never Monte Carlo. Activations with
a closed-form Gaussian smoothing (``Activation.smoothed``, e.g. centred ReLU, whose kink defeats
quadrature) use it for the one-dimensional and the inner expectations. The reported
``quad_error`` is the largest change of any constant between the quadrature order used and half
of it (an a-posteriori accuracy estimate). Measured at the default order: ≤ 1.2e-13 for tanh, erf,
GELU and centred ReLU at σ_x = 1, t ∈ [0.01, 1]; it grows when the data are wide and the noise is small
(σ_x = 2, t = 0.01: 6e-7 for tanh, 5e-9 for erf), so read ``quad_error`` there.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .._util import check_positive, gauss_hermite, x64
from ..activations import get_activation
from ..diffusion import delta as _delta

__all__ = ["GEConstants", "ge_constants"]


@dataclasses.dataclass(frozen=True)
class GEConstants:
    """Gaussian-equivalence constants at one diffusion time (docs/theory.md §4, eqs. 12–14).

    Attributes are floats. ``c = a_t² e^{-2t}`` is the coefficient of the data term in Lemma C.1
    (``G = √c (W/√d) X' + v_t Ω`` with X' whitened by Σ). Supports ``c["a"]`` item access and
    :meth:`as_dict` so the object can be used like the dict the public API promises.
    """

    activation: str
    t: float
    sigma_x2: float
    delta: float
    Gamma2: float
    mu0: float
    mu1: float
    a: float
    b: float
    v2: float
    s2: float
    mustar2: float
    second_moment: float
    quad_order: int
    quad_error: float

    @property
    def c(self) -> float:
        """Coefficient ``a_t² e^{-2t}`` of the data term of the Gaussian-equivalent G."""
        return self.a * self.a * math.exp(-2.0 * self.t)

    @property
    def b2(self) -> float:
        """``b_t²``."""
        return self.b * self.b

    def __getitem__(self, key):
        return getattr(self, key)

    def keys(self):
        return [f.name for f in dataclasses.fields(self)] + ["c", "b2"]

    def as_dict(self) -> dict:
        """JSON-able dict of all constants (including ``c`` and ``b2``)."""
        return {k: self[k] for k in self.keys()}


def _np_act(act):
    """Activation as a float64 numpy function (its numpy version when it has one: no compilation)."""
    return lambda x: act.numpy(np.asarray(x, dtype=np.float64))


def _composite_normal_rule(h: float, half_width: float = 10.0, per_panel: int = 8):
    """Composite Gauss–Legendre nodes/weights for E_u f(u), u ~ N(0,1), panels of width ≤ h on [−L, L]."""
    n_pan = max(8, int(math.ceil(2.0 * half_width / h)))
    n_pan = 1 << (n_pan - 1).bit_length()  # power of two: few distinct shapes, so JAX compiles rarely
    x, wl = np.polynomial.legendre.leggauss(per_panel)
    edges = np.linspace(-half_width, half_width, n_pan + 1)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    u = (mid[:, None] + half[:, None] * x[None]).ravel()
    wu = (half[:, None] * wl[None]).ravel() * np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    return u, wu


def _raw_constants(act, t: float, sigma_x2: float, order: int):
    """Quadrature at one order; returns (mu0, mu1, m2, cond2) with cond2 = E_u[(E_v σ(αu + √Δ v))²]."""
    dt = _delta(t)
    alpha = math.exp(-t) * math.sqrt(sigma_x2)
    gamma = math.sqrt(alpha * alpha + dt)
    if act.smoothed is not None:
        # closed-form smoothing: exact 1-D moments and inner expectation; the outer integrand
        # g_0(αu) varies on the scale √Δ/α, so use a composite rule that resolves it.
        g, m2 = act.smoothed(np.zeros(1), np.full(1, gamma), 1, np)
        g = np.asarray(g, dtype=np.float64)
        mu0, mu1, m2 = float(g[0, 0]), float(g[1, 0]) * gamma, float(np.asarray(m2)[0])
        h = min(0.5, math.sqrt(dt) / alpha) * 64.0 / order
        u, wu = _composite_normal_rule(h)
        gi, _ = act.smoothed(alpha * u, np.full(u.shape, math.sqrt(dt)), 0, np)
        inner = np.asarray(gi, dtype=np.float64)[0]
        return mu0, mu1, m2, float((inner * inner) @ wu)
    z, w = gauss_hermite(order)
    f = _np_act(act)
    vals = f(gamma * z)
    mu0 = float(vals @ w)
    mu1 = float((vals * z) @ w)
    m2 = float((vals * vals) @ w)
    # inner expectation E_v σ(α u + √Δ v) at every outer node u (nested quadrature)
    inner = f(alpha * z[:, None] + math.sqrt(dt) * z[None, :]) @ w
    return mu0, mu1, m2, float((inner * inner) @ w)


@functools.lru_cache(maxsize=256)
def _cached(act_key, act, t, sigma_x2, order):
    return _raw_constants(act, t, sigma_x2, order)


@x64
def ge_constants(activation="tanh", t: float = 0.1, sigma_x2: float = 1.0, order: int = 256) -> GEConstants:
    """Gaussian-equivalence constants a_t, b_t, v_t², s_t², μ_1, μ_*² by Gauss–Hermite quadrature (docs/theory.md §4, eqs. 12–14).

    Args:
        activation: registered name, :class:`~rfdiff.activations.Activation` or callable.
        t: diffusion time (> 0).
        sigma_x2: σ_x² = Tr Σ / d of the data.
        order: Gauss–Hermite order (the nested v_t² uses order² nodes). The default gives
            ≤ 1.2e-13 for the registered activations at σ_x = 1, but 6e-7 for tanh at σ_x = 2,
            t = 0.01 (module docstring); see ``quad_error``.

    Returns:
        :class:`GEConstants` (dict-like: ``c["v2"]``; ``c.as_dict()`` for JSON).
    """
    t = check_positive("t", t)
    sigma_x2 = check_positive("sigma_x2", sigma_x2)
    order = int(order)
    if not 16 <= order <= 350:
        raise ValueError(f"order must be in [16, 350] (numpy's Gauss–Hermite nodes fail above), got {order}")
    act = get_activation(activation)
    key = (act.name, id(act.fn))
    hi = _cached(key, act, t, sigma_x2, order)
    lo = _cached(key, act, t, sigma_x2, order // 2)
    derived = [_derive(x, t, sigma_x2) for x in (hi, lo)]
    err = max(abs(derived[0][k] - derived[1][k]) for k in derived[0])
    c = derived[0]
    return GEConstants(activation=act.name, t=t, sigma_x2=sigma_x2, quad_order=order, quad_error=float(err), **c)


def _derive(raw, t, sigma_x2):
    mu0, mu1, m2, cond2 = raw
    dt = _delta(t)
    alpha2 = math.exp(-2.0 * t) * sigma_x2
    gamma2 = alpha2 + dt
    a = mu1 / math.sqrt(gamma2)
    b = math.sqrt(dt) * mu1 / math.sqrt(gamma2)
    v2 = cond2 - mu0 * mu0 - a * a * alpha2
    s2 = m2 - mu0 * mu0 - a * a * alpha2 - v2 - b * b
    return dict(delta=dt, Gamma2=gamma2, mu0=mu0, mu1=mu1, a=a, b=b, v2=v2, s2=s2,
                mustar2=m2 - mu0 * mu0 - mu1 * mu1, second_moment=m2)


def constants_with_overrides(activation, t: float, sigma_x2: float, constants=None) -> dict:
    """GE constants as a dict, with optional overrides (e.g. ``{"a": 0, "b": 0}`` switches the RF structure off, docs/theory.md §4).

    Overriding ``b`` also sets ``b2``; overriding ``a`` also sets ``c = a² e^{-2t}``.
    """
    k = dict(ge_constants(activation, t, sigma_x2).as_dict())
    if constants:
        k.update(dict(constants))
        if "b" in constants and "b2" not in constants:
            k["b2"] = float(constants["b"]) ** 2
        if "a" in constants and "c" not in constants:
            k["c"] = float(constants["a"]) ** 2 * math.exp(-2.0 * t)
    return k
