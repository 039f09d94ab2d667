"""Losses as quadratic forms in B = A/√p, score error and the empirical score (docs/theory.md §2.1–2.2, §2.7)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from rfdiff import metrics
from rfdiff.diffusion import delta
from rfdiff.features import rf_score


def _spd(p, rng):
    G = rng.standard_normal((p, p))
    return G @ G.T / p + 0.1 * np.eye(p)


def test_quadratic_loss_formula_and_minimum():
    """L(0) = 1; L(B) = 1 + (Δ/d) Tr(B U Bᵀ) + (2√Δ/d) Tr(B V); minimum 1 - Tr(Vᵀ U⁻¹ V)/d at B* = -Vᵀ U⁻¹/√Δ."""
    rng = np.random.default_rng(0)
    d, p, t = 3, 7, 0.25
    U, V = _spd(p, rng), rng.standard_normal((p, d))
    dt = delta(t)
    assert float(metrics.quadratic_loss(np.zeros((d, p)), U, V, t)) == 1.0
    B = rng.standard_normal((d, p))
    ref = 1 + dt / d * np.trace(B @ U @ B.T) + 2 * math.sqrt(dt) / d * np.trace(B @ V)
    L = metrics.quadratic_loss(B, U, V, t)
    assert L.dtype == jnp.float64
    assert float(L) == pytest.approx(ref, rel=1e-14)
    B_star = -V.T @ np.linalg.inv(U) / math.sqrt(dt)
    L_star = float(metrics.quadratic_loss(B_star, U, V, t))
    assert L_star == pytest.approx(1 - np.trace(V.T @ np.linalg.solve(U, V)) / d, rel=1e-12)
    for _ in range(5):                                   # the minimum: any perturbation raises the loss
        assert float(metrics.quadratic_loss(B_star + 1e-3 * rng.standard_normal((d, p)), U, V, t)) > L_star


def test_quadratic_loss_equals_direct_average_over_noise_draws():
    """With U, V the sample moments of m noise draws, the quadratic form reproduces (1/(md)) Σ‖√Δ s_A(x_t) + ξ‖²
    exactly, up to the draws' (1/(md)) Σ‖ξ‖² replacing its mean 1 (checks the B = A/√p and Vᵀ conventions)."""
    rng = np.random.default_rng(1)
    d, p, m, t = 4, 9, 50, 0.6
    W, A = rng.standard_normal((p, d)), rng.standard_normal((d, p))
    x0 = rng.standard_normal(d)
    xi = rng.standard_normal((m, d))
    dt = delta(t)
    xt = math.exp(-t) * x0 + math.sqrt(dt) * xi
    with jax.enable_x64(True):
        s = np.asarray(rf_score(jnp.asarray(A), jnp.asarray(W), jnp.asarray(xt)))
    direct = np.mean(np.sum((math.sqrt(dt) * s + xi) ** 2, axis=1)) / d
    phi = np.tanh(xt @ W.T / math.sqrt(d))
    U, V = phi.T @ phi / m, phi.T @ xi / m
    L = float(metrics.quadratic_loss(A / math.sqrt(p), U, V, t))
    assert L - 1 + np.mean(np.sum(xi**2, 1)) / d == pytest.approx(direct, rel=1e-12)


def test_score_error_and_minimal_test_loss():
    """E_score = (L_test - 1)/Δ + J/d: J/d at B = 0, and 0 exactly when L_test = 1 - Δ J/d (the floor)."""
    rng = np.random.default_rng(2)
    d, p, t, J = 3, 5, 0.1, 7.5
    U, V = _spd(p, rng), rng.standard_normal((p, d))
    dt = delta(t)
    assert float(metrics.score_error(np.zeros((d, p)), U, V, t, J)) == pytest.approx(J / d, rel=1e-15)
    B = rng.standard_normal((d, p))
    L = float(metrics.quadratic_loss(B, U, V, t))
    assert float(metrics.score_error(B, U, V, t, J)) == pytest.approx((L - 1) / dt + J / d, rel=1e-13)
    floor = metrics.minimal_test_loss(t, J, d)
    assert floor == pytest.approx(1 - dt * J / d, rel=1e-15)
    # isotropic N(0, I) data: P_t = N(0, I), J = d, the exact score -y; its loss is E‖ξ - √Δ y‖²/d = 1 - Δ
    assert metrics.minimal_test_loss(t, d, d) == pytest.approx(1 - dt, rel=1e-15)
    with pytest.raises(ValueError, match="^t must"):
        metrics.minimal_test_loss(0.0, J, d)


def _log_p_emp(Y, X, t):
    """log of P_t^emp = (1/n) Σ N(e^{-t} x^ν, Δ_t I) at the rows of Y, up to a constant (numpy)."""
    sq = np.sum((Y[:, None, :] - math.exp(-t) * X[None]) ** 2, axis=2)
    return special.logsumexp(-sq / (2 * delta(t)), axis=1)


def test_empirical_score_is_gradient_of_log_density():
    """empirical_score (jax) = empirical_score_np (numpy) = ∇_y log P_t^emp by central differences."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 4))
    Y = rng.standard_normal((9, 4))
    h = 1e-5
    for t in (0.05, 0.7, 3.0):
        s_np = metrics.empirical_score_np(Y, X, t)
        s_jx = metrics.empirical_score(Y, X, t)          # numpy in: float64 inside the library's x64 context
        assert s_jx.dtype == jnp.float64 and s_np.shape == (9, 4)
        np.testing.assert_allclose(np.asarray(s_jx), s_np, rtol=1e-12, atol=1e-12)
        fd = np.stack([(_log_p_emp(Y + h * e, X, t) - _log_p_emp(Y - h * e, X, t)) / (2 * h) for e in np.eye(4)], 1)
        np.testing.assert_allclose(s_np, fd, rtol=1e-6, atol=1e-6)


def test_empirical_score_single_point_and_far_away():
    """n = 1: the score is (e^{-t} x - y)/Δ_t exactly. Far from the data at small t (unnormalised weights
    underflow to 0) the score stays finite and points to the nearest centre."""
    rng = np.random.default_rng(4)
    t = 0.2
    x = rng.standard_normal((1, 3))
    Y = rng.standard_normal((5, 3))
    np.testing.assert_allclose(metrics.empirical_score_np(Y, x, t), (math.exp(-t) * x - Y) / delta(t), rtol=1e-13)
    X = np.array([[0.0, 0.0], [1.0, 0.0]])
    t = 1e-3
    Y = np.array([[40.0, 3.0], [-40.0, 3.0]])           # ‖y - x‖²/(2Δ) ~ 4e5: exp underflows without the shift
    ref = (math.exp(-t) * X[[1, 0]] - Y) / delta(t)
    s_np = metrics.empirical_score_np(Y, X, t)
    s_jx = np.asarray(metrics.empirical_score(Y, X, t))
    assert np.all(np.isfinite(s_np)) and np.all(np.isfinite(s_jx))
    np.testing.assert_allclose(s_np, ref, rtol=1e-12)
    np.testing.assert_allclose(s_jx, ref, rtol=1e-12)
