"""Forward Ornstein–Uhlenbeck process: Δ_t and the noising map x_t = e^{-t} x_0 + √Δ_t ξ (docs/theory.md §1.2)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff.diffusion import delta, forward


def test_delta_values_and_small_t_accuracy():
    """Δ_t = 1 - e^{-2t}, evaluated as -expm1(-2t): exact to float64 precision even at t = 1e-12."""
    for t in (1e-3, 0.1, 0.5, 1.0, 3.0):
        assert delta(t) == pytest.approx(1.0 - math.exp(-2.0 * t), rel=1e-13)
    assert delta(0.5) == pytest.approx(0.6321205588285577, rel=1e-15)
    t = 1e-12
    assert delta(t) == pytest.approx(2 * t - 2 * t * t, rel=1e-15)   # 1 - exp(-2t) would be off by ~1e-4
    assert delta(50.0) == 1.0
    assert isinstance(delta(np.float32(0.25)), float)
    ts = np.geomspace(1e-6, 10, 50)
    assert np.all(np.diff([delta(float(t)) for t in ts]) > 0)


@pytest.mark.parametrize("bad", [0.0, -0.1, float("inf"), float("nan"), "0.5", True, None])
def test_delta_rejects_non_positive_times(bad):
    with pytest.raises(ValueError, match="^t must"):
        delta(bad)


def test_forward_moments_and_returned_noise():
    """Fixed x_0: x_t has mean e^{-t} x_0 and variance Δ_t per coordinate; ξ returned is the one used."""
    t, N = 0.4, 50_000
    x0 = np.array([2.0, -1.0, 0.0])
    with jax.enable_x64(True):
        xt, xi = forward(jax.random.PRNGKey(3), jnp.broadcast_to(jnp.asarray(x0), (N, 3)), t)
        xt, xi = np.asarray(xt), np.asarray(xi)
    assert xt.shape == xi.shape == (N, 3) and xt.dtype == np.float64
    np.testing.assert_allclose(xt, math.exp(-t) * x0 + math.sqrt(delta(t)) * xi, rtol=0, atol=1e-15)
    se_mean = math.sqrt(delta(t) / N)
    np.testing.assert_allclose(xt.mean(0), math.exp(-t) * x0, atol=5 * se_mean)
    np.testing.assert_allclose(xt.var(0), delta(t), rtol=5 * math.sqrt(2.0 / N))
    # the noise coordinates are uncorrelated
    C = np.cov(xi.T)
    np.testing.assert_allclose(C, np.eye(3), atol=5 * math.sqrt(2.0 / N))


def test_forward_keeps_standard_gaussian_stationary_and_is_keyed():
    """x_0 ~ N(0, I) stays N(0, I) (e^{-2t} + Δ_t = 1); the same key gives the same noise, another key not."""
    t, N = 1.3, 50_000
    k0, k1 = jax.random.split(jax.random.PRNGKey(0))
    x0 = jax.random.normal(k0, (N, 2))
    xt, xi = forward(k1, x0, t)
    assert xt.dtype == jnp.float32            # dtype follows x_0 (float32 outside an x64 context)
    np.testing.assert_allclose(np.var(np.asarray(xt, np.float64), axis=0), [1.0, 1.0], rtol=5 * math.sqrt(2.0 / N))
    # correlation of x_t with x_0 is e^{-t}
    corr = np.mean(np.asarray(xt, np.float64) * np.asarray(x0, np.float64), axis=0)
    np.testing.assert_allclose(corr, math.exp(-t), atol=5 / math.sqrt(N))
    _, xi_same = forward(k1, x0, t)
    _, xi_other = forward(jax.random.PRNGKey(7), x0, t)
    np.testing.assert_array_equal(np.asarray(xi), np.asarray(xi_same))
    assert not np.allclose(np.asarray(xi), np.asarray(xi_other))
