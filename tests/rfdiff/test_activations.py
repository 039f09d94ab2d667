"""Activation registry and Gaussian-smoothed derivatives (rfdiff.activations, docs/theory.md §1.3, §2.4)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from rfdiff import activations


def test_activation_registry():
    with pytest.raises(ValueError, match="tanh"):  # the message lists the valid names
        activations.get_activation("sigmoidish")
    act = activations.register_activation("test_sin", jnp.sin, overwrite=True)
    assert activations.get_activation("test_sin") is act
    with pytest.raises(ValueError, match="already registered"):
        activations.register_activation("test_sin", jnp.sin)
    # sin smoothing has a closed form: E sin(m + s z) = sin(m) e^{-s²/2}
    with jax.enable_x64(True):        # quadrature in jax.numpy: float64 only inside an x64 context
        g, _ = activations.smoothed_derivatives("test_sin", jnp.array([0.3]), jnp.array([0.8]), 2)
    np.testing.assert_allclose(g[:, 0], [np.sin(0.3) * np.exp(-0.32), np.cos(0.3) * np.exp(-0.32),
                                         -np.sin(0.3) * np.exp(-0.32)], rtol=1e-12)


def test_relu_closed_form_smoothing_matches_adaptive_integration():
    from scipy import integrate, stats

    act = activations.get_activation("relu_centered")
    s = 0.7
    for m in (-1.5, -0.2, 0.0, 0.9):
        g, m2 = act.smoothed(np.array(m), np.array(s), 3, np)   # numpy float64, as rfdiff.matrices calls it
        pdf = stats.norm.pdf
        ref = [integrate.quad(lambda z, k=k: act.numpy(m + s * z) * z**k * pdf(z), -12, 12, points=[-m / s])[0]
               for k in (0, 1)]
        ref_m2 = integrate.quad(lambda z: act.numpy(m + s * z) ** 2 * pdf(z), -12, 12, points=[-m / s])[0]
        np.testing.assert_allclose([float(g[0]), float(g[1]) * s, float(m2)], [ref[0], ref[1], ref_m2], atol=1e-9)
        # g_2 = E δ(m + s z) = φ(m/s)/s
        np.testing.assert_allclose(float(g[2]), pdf(m / s) / s, rtol=1e-12)


def test_registry_errors_name_the_parameter(monkeypatch):
    """Bad names, non-callables and bad specs are refused with a message naming what was wrong."""
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))   # leave the real registry alone
    with pytest.raises(ValueError, match="activation name must be a non-empty string"):
        activations.register_activation("", jnp.sin)
    with pytest.raises(ValueError, match="activation name"):
        activations.register_activation(3, jnp.sin)
    with pytest.raises(ValueError, match="activation 'cubic': fn must be callable"):
        activations.register_activation("cubic", 3.0)
    assert "cubic" not in activations.available_activations()
    with pytest.raises(ValueError, match="activation must be a name, an Activation or a callable, got 2.5"):
        activations.get_activation(2.5)
    with pytest.raises(ValueError, match="unknown activation 'relu'; valid names: ") as err:
        activations.get_activation("relu")
    assert all(name in str(err.value) for name in ("erf", "gelu", "relu_centered", "tanh"))
    # overwrite=True replaces the entry; a bare callable is wrapped under its own name
    old = activations.get_activation("tanh")
    new = activations.register_activation("tanh", jnp.sin, overwrite=True)
    assert activations.get_activation("tanh") is new and new is not old
    wrapped = activations.get_activation(jnp.cos)
    assert wrapped.name == "cos" and wrapped.smoothed is None
    assert activations.get_activation(wrapped) is wrapped


def test_numpy_paths_agree_with_jax_in_float64():
    """``Activation.numpy`` (numpy twin, or the jitted fn in float64) equals σ to float64 precision."""
    x = np.linspace(-3.0, 3.0, 13) + 1e-3
    ref = {"tanh": np.tanh(x), "erf": special.erf(x), "relu_centered": np.maximum(x, 0) - 1 / math.sqrt(2 * math.pi),
           "gelu": x * stats.norm.cdf(x)}
    for name in ("tanh", "erf", "relu_centered", "gelu"):
        act = activations.get_activation(name)
        np.testing.assert_allclose(act.numpy(x), ref[name], rtol=1e-14, atol=1e-15)
        with jax.enable_x64(True):
            np.testing.assert_allclose(np.asarray(act(jnp.asarray(x))), ref[name], rtol=1e-14, atol=1e-15)
    # no numpy twin: the jitted fn runs in float64 (float32 would be off by ~1e-8)
    custom = activations.get_activation(lambda v: jnp.sin(v) * v)
    out = custom.numpy(x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, np.sin(x) * x, rtol=1e-14, atol=1e-15)


def _tanh_derivative(k, x):
    """σ^{(k)} of tanh for k = 0..3, T = tanh x: T, 1 - T², -2T(1 - T²), -2(1 - T²)(1 - 3T²)."""
    T = np.tanh(x)
    return [T, 1 - T**2, -2 * T * (1 - T**2), -2 * (1 - T**2) * (1 - 3 * T**2)][k]


def test_tanh_smoothed_derivatives_match_direct_quadrature():
    """Gauss–Hermite g_k = s^{-k} E[σ He_k] equals E σ^{(k)}(m + s z) integrated directly, for a 2-D (m, s) grid."""
    m = np.array([[-1.2, 0.0, 0.4], [2.0, -0.3, 0.9]])
    s = np.array([[0.3, 0.7, 1.0], [0.5, 0.9, 0.1]])
    K = 3
    with jax.enable_x64(True):   # 120 nodes: error ≤ 1e-13 at s ≤ 1 (48 nodes leave ~1e-8 at s = 1)
        g, m2 = activations.smoothed_derivatives("tanh", jnp.asarray(m), jnp.asarray(s), K, order=120)
        g, m2 = np.asarray(g), np.asarray(m2)
    assert g.shape == (K + 1, 2, 3) and m2.shape == (2, 3) and g.dtype == np.float64
    z, w = np.polynomial.legendre.leggauss(200)      # Gauss–Legendre on [-14, 14]: a different rule, exact to ~1e-14
    z, w = 14.0 * z, 14.0 * w * stats.norm.pdf(14.0 * z)
    for idx in np.ndindex(m.shape):
        y = m[idx] + s[idx] * z
        for k in range(K + 1):
            assert g[(k,) + idx] == pytest.approx(w @ _tanh_derivative(k, y), abs=1e-11), (k, idx)
        assert m2[idx] == pytest.approx(w @ np.tanh(y) ** 2, abs=1e-11)
    # the reference rule itself: E 1 = 1, E z² = 1
    assert w.sum() == pytest.approx(1.0, abs=1e-13) and w @ z**2 == pytest.approx(1.0, abs=1e-13)
    # tanh is odd: g_k(-m, s) = (-1)^{k+1} g_k(m, s)
    with jax.enable_x64(True):
        gm, _ = activations.smoothed_derivatives("tanh", jnp.asarray(-m), jnp.asarray(s), K, order=120)
    signs = np.array([-1.0, 1.0, -1.0, 1.0])[:, None, None]
    np.testing.assert_allclose(np.asarray(gm), signs * g, atol=1e-14)


def test_erf_smoothing_closed_form():
    """E erf(m + s z) = erf(m/√(1+2s²)) and E erf'(m + s z) = 2 e^{-m²/(1+2s²)}/√(π(1+2s²))."""
    m = np.array([[-0.8, 0.0, 0.5], [1.7, -2.0, 0.1]])
    s = np.array([[0.2, 1.0, 0.6], [1.2, 0.4, 0.05]])
    with jax.enable_x64(True):   # same shapes as the tanh test above: the quadrature ops are compiled once
        g, _ = activations.smoothed_derivatives("erf", jnp.asarray(m), jnp.asarray(s), 3, order=120)
    q = 1 + 2 * s**2
    np.testing.assert_allclose(np.asarray(g[0]), special.erf(m / np.sqrt(q)), atol=1e-13)
    np.testing.assert_allclose(np.asarray(g[1]), 2 * np.exp(-m**2 / q) / np.sqrt(np.pi * q), atol=1e-13)
    # g_2 = E erf''(m + s z) = -2m/(1+2s²) g_1
    np.testing.assert_allclose(np.asarray(g[2]), -2 * m / q * np.asarray(g[1]), atol=1e-12)


def test_relu_closed_form_same_in_numpy_and_jax():
    """The closed form dispatches on the array module: numpy (matrices' CPU path) and jax.numpy agree."""
    act = activations.get_activation("relu_centered")
    m, s = np.array([-1.0, 0.0, 0.3, 2.5]), np.array([0.4, 1.0, 0.05, 1.3])
    g_np, m2_np = act.smoothed(m, s, 4, np)
    with jax.enable_x64(True):
        g_j, m2_j = activations.smoothed_derivatives("relu_centered", jnp.asarray(m), jnp.asarray(s), 4)
        g_j, m2_j = np.asarray(g_j), np.asarray(m2_j)
    assert g_np.shape == g_j.shape == (5, 4)
    np.testing.assert_allclose(g_j, g_np, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m2_j, m2_np, rtol=1e-13)
    # g_3 = -He_1(u) φ(u)/s² = -u φ(u)/s², u = m/s
    u = m / s
    np.testing.assert_allclose(g_np[3], -u * stats.norm.pdf(u) / s**2, rtol=1e-12)


def test_smoothed_derivatives_broadcast_scalar_m():
    """Docstring: ``m`` and ``s`` broadcast together. A scalar m with s of shape (2, 3) must equal m repeated."""
    with jax.enable_x64(True):
        s = jnp.asarray([[0.3, 0.7, 1.0], [0.5, 0.9, 0.1]])
        g_b, _ = activations.smoothed_derivatives("tanh", jnp.asarray(0.3), s, 2, order=120)
        g_f, _ = activations.smoothed_derivatives("tanh", jnp.full((2, 3), 0.3), s, 2, order=120)
        np.testing.assert_allclose(np.asarray(g_b), np.asarray(g_f), atol=1e-14)
