"""Activation registry and Gaussian-smoothed derivatives (rfdiff.activations, docs/theory.md §1.3, §2.4)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from rfdiff import activations
from rfdiff.matrices import smoothed_rows


def _smoothed(name, m, s, K, order=120):
    """g_k(m, s) and E σ² for arrays m, s of one shape through the library's quadrature (rfdiff.matrices.smoothed_rows)."""
    g, m2 = smoothed_rows(name, np.asarray(m, dtype=np.float64).reshape(-1, 1), np.asarray(s, dtype=np.float64).reshape(-1),
                          K, order)
    return g.reshape((K + 1,) + np.shape(m)), m2.reshape(np.shape(m))


def test_activation_registry():
    with pytest.raises(ValueError, match="tanh"):  # the message lists the valid names
        activations.get_activation("sigmoidish")
    act = activations.register_activation("test_sin", jnp.sin, overwrite=True)
    assert activations.get_activation("test_sin") is act
    with pytest.raises(ValueError, match="already registered"):
        activations.register_activation("test_sin", jnp.sin)
    # sin smoothing has a closed form: E sin(m + s z) = sin(m) e^{-s²/2}
    g, _ = smoothed_rows("test_sin", np.array([[0.3]]), np.array([0.8]), 2, 48)
    np.testing.assert_allclose(g[:, 0, 0], [np.sin(0.3) * np.exp(-0.32), np.cos(0.3) * np.exp(-0.32),
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
    # overwrite=True replaces a user entry; a bare callable is wrapped under its own name
    old = activations.register_activation("mine", jnp.tanh)
    new = activations.register_activation("mine", jnp.sin, overwrite=True)
    assert activations.get_activation("mine") is new and new is not old
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
    g, m2 = _smoothed("tanh", m, s, K)   # 120 nodes: error ≤ 1e-13 at s ≤ 1 (48 nodes leave ~1e-8 at s = 1)
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
    gm, _ = _smoothed("tanh", -m, s, K)
    signs = np.array([-1.0, 1.0, -1.0, 1.0])[:, None, None]
    np.testing.assert_allclose(np.asarray(gm), signs * g, atol=1e-14)


def test_erf_smoothing_closed_form():
    """E erf(m + s z) = erf(m/√(1+2s²)) and E erf'(m + s z) = 2 e^{-m²/(1+2s²)}/√(π(1+2s²))."""
    m = np.array([[-0.8, 0.0, 0.5], [1.7, -2.0, 0.1]])
    s = np.array([[0.2, 1.0, 0.6], [1.2, 0.4, 0.05]])
    g, _ = _smoothed("erf", m, s, 3)
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
        g_j, m2_j = act.smoothed(jnp.asarray(m), jnp.asarray(s), 4)
        g_j, m2_j = np.asarray(g_j), np.asarray(m2_j)
    assert g_np.shape == g_j.shape == (5, 4)
    np.testing.assert_allclose(g_j, g_np, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m2_j, m2_np, rtol=1e-13)
    # g_3 = -He_1(u) φ(u)/s² = -u φ(u)/s², u = m/s
    u = m / s
    np.testing.assert_allclose(g_np[3], -u * stats.norm.pdf(u) / s**2, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(activations.BUILTIN))
def test_builtin_names_cannot_be_replaced(name, monkeypatch):
    """Re-registering "tanh" changed what cached results under that name meant: refused, even with overwrite."""
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
    with pytest.raises(ValueError, match=f"^activation '{name}' is built in and cannot be replaced"):
        activations.register_activation(name, jnp.sin, overwrite=True)
    assert activations.get_activation(name).fn is not jnp.sin


@pytest.mark.parametrize("fn", [lambda x: jnp.exp(3 * x), jnp.exp, jnp.cosh, lambda x: x**7, lambda x: jnp.exp(x * x)])
def test_unbounded_activations_refused(fn, monkeypatch):
    """exp(3x) gave min E_score 1.6e18 "OK": growth faster than |x|⁵ is refused (the stated rule), by name."""
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
    with pytest.raises(ValueError, match="^activation 'fast' (grows too fast|is not finite)"):
        activations.register_activation("fast", fn)
    with pytest.raises(ValueError, match="grows too fast|is not finite"):
        activations.get_activation(fn)


@pytest.mark.parametrize("fn", [lambda x: x**5, jnp.sin, lambda x: x * jnp.tanh(x), jnp.abs])
def test_polynomially_bounded_activations_accepted(fn):
    assert activations.get_activation(fn).fn is fn


def test_numpy_only_activation_refused_up_front(monkeypatch):
    """A numpy-only σ ended in a JAX tracer error deep inside training: now refused when it is registered or used."""
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
    np_only = lambda x: np.tanh(np.asarray(x))  # noqa: E731
    with pytest.raises(ValueError, match="^activation 'np_tanh' must be traceable by jax.numpy"):
        activations.register_activation("np_tanh", np_only)
    with pytest.raises(ValueError, match="must be traceable by jax.numpy"):
        activations.get_activation(np_only)
