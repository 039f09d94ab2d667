"""Fluctuation floor of fresh-noise gradient descent: gradients, noise covariance, excess losses (docs/theory.md §7.2)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import fluctuations as F
from rfdiff import matrices
from rfdiff.diffusion import delta


def _recursion(S, lam, QtUpQ, eta, steps, d, t):
    """Excess losses by iterating C ← M C M + η² S, M = diag(1 - r λ), from C = 0 (the definition)."""
    p = lam.size
    dt = delta(t)
    r = 2.0 * eta * dt / (d * p)
    M = np.diag(1.0 - r * lam)
    C = np.zeros((p, p))
    for _ in range(steps):
        C = M @ C @ M + eta**2 * S
    return dt / (d * p) * np.trace(C @ np.diag(lam)), dt / (d * p) * np.trace(C @ QtUpQ)


def _problem(p=5, seed=0):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((p, p))
    H = rng.standard_normal((p, p))
    return G @ G.T, H @ H.T + np.eye(p)


def test_excess_zero_without_noise():
    """S = 0 (no gradient noise): fresh-noise GD is its mean trajectory, zero excess at every step."""
    lam = np.array([0.0, 0.3, 1.0, 4.0])
    _, Up = _problem(4)
    for steps in (1, 10, 1000):
        assert F.excess_losses(np.zeros((4, 4)), lam, Up, 0.7, steps, 3, 0.2) == (0.0, 0.0)


def test_excess_diagonal_closed_form():
    """Diagonal S and Ũ: ΔL_train = Δ/(dp) Σ λ_i η² S_ii (1 - a_i^k)/(1 - a_i), ΔL_test the same with Ũ_ii."""
    lam = np.array([0.5, 1.0, 2.0, 8.0])
    S = np.diag([1.0, 0.5, 2.0, 0.25])
    Up = np.diag([3.0, 1.0, 0.5, 2.0])
    d, t, eta, k = 3, 0.3, 2.0, 17
    p, dt = lam.size, delta(t)
    a = (1 - 2 * eta * dt / (d * p) * lam) ** 2
    C = eta**2 * np.diag(S) * (1 - a**k) / (1 - a)
    tr, te = F.excess_losses(S, lam, Up, eta, k, d, t)
    assert tr == pytest.approx(dt / (d * p) * np.sum(lam * C), rel=1e-13)
    assert te == pytest.approx(dt / (d * p) * np.sum(np.diag(Up) * C), rel=1e-13)
    # one step: C = η² S whatever λ
    tr1, te1 = F.excess_losses(S, lam, Up, eta, 1, d, t)
    assert te1 == pytest.approx(dt / (d * p) * eta**2 * np.sum(np.diag(S) * np.diag(Up)), rel=1e-13)
    assert tr1 == pytest.approx(dt / (d * p) * eta**2 * np.sum(np.diag(S) * lam), rel=1e-13)


@pytest.mark.parametrize("steps", [1, 6, 7, 250])
def test_excess_matches_covariance_recursion(steps):
    """Full S and Ũ, 0 < rλ < 1, a zero eigenvalue (a = 1, the k-steps limit): closed form = recursion."""
    S, Up = _problem(5, seed=1)
    lam = np.array([0.0, 0.2, 1.0, 3.0, 6.0])
    d, t, eta = 4, 0.5, 2.3           # r = 2ηΔ_t/(dp) ≈ 0.145, r λ_max ≈ 0.87
    got = F.excess_losses(S, lam, Up, eta, steps, d, t)
    np.testing.assert_allclose(got, _recursion(S, lam, Up, eta, steps, d, t), rtol=1e-11)
    assert got[0] > 0 and got[1] > 0


def test_excess_saturates_and_vanishes_with_eta():
    """k → ∞: C_ij → η² S_ij/(1 - a_ij) (λ > 0), so the excess is O(η) as η → 0."""
    S, Up = _problem(4, seed=2)
    lam = np.array([0.5, 1.0, 2.0, 3.0])
    d, t = 3, 0.4
    p, dt = lam.size, delta(t)
    excess = {}
    for eta in (1e-2, 1e-4):
        r = 2 * eta * dt / (d * p)
        a = np.outer(1 - r * lam, 1 - r * lam)
        C_inf = eta**2 * S / (1 - a)
        big = int(50 / (r * lam.min()))
        tr, te = F.excess_losses(S, lam, Up, eta, big, d, t)
        assert tr == pytest.approx(dt / (d * p) * np.sum(lam * np.diag(C_inf)), rel=1e-9)
        assert te == pytest.approx(dt / (d * p) * np.sum(C_inf * Up), rel=1e-9)
        excess[eta] = te
    assert excess[1e-4] / excess[1e-2] == pytest.approx(1e-2, rel=3e-3)


def test_excess_with_overshooting_modes_matches_recursion():
    """1 < rλ_i < 2 (GD still converges): off-diagonal a_ij < 0, and the test excess must still be the recursion's."""
    S, Up = _problem(4, seed=3)
    lam = np.array([0.5, 1.0, 2.0, 3.0])
    d, t, eta = 3, 0.5, 5.0           # r λ = 0.26, 0.53, 1.05, 1.58
    np.testing.assert_allclose(F.excess_losses(S, lam, Up, eta, 5, d, t), _recursion(S, lam, Up, eta, 5, d, t),
                               rtol=1e-11)


def test_noise_covariance_symmetric_psd_and_summed_over_rows():
    """S = Qᵀ Σ_ζ Q with Σ_ζ the unbiased covariance of the gradient rows, summed over the d output rows."""
    rng = np.random.default_rng(4)
    draws, d, p = 50, 3, 6
    g = rng.standard_normal((draws, d, p)) * np.array([1.0, 2.0, 0.5, 1.0, 3.0, 0.1]) + 5.0   # offset: centred
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    S = F.noise_covariance(g, Q)
    assert S.shape == (p, p)
    np.testing.assert_allclose(S, S.T, rtol=0, atol=1e-12)
    assert np.linalg.eigvalsh(S).min() > -1e-12
    Sigma = sum(np.cov(g[:, i, :], rowvar=False) for i in range(d))
    np.testing.assert_allclose(S, Q.T @ Sigma @ Q, rtol=1e-11, atol=1e-12)
    # rank ≤ d (draws - 1); identical draws give S = 0
    assert np.linalg.matrix_rank(F.noise_covariance(g[:2], Q), tol=1e-9) <= d
    np.testing.assert_allclose(F.noise_covariance(np.repeat(g[:1], 4, axis=0), Q), 0.0, atol=1e-12)


def test_fresh_gradients_exact_per_draw_and_unbiased():
    """Each draw is ∇_A of the batch loss (1/nd) Σ‖√Δ s_A(x_t) + ξ‖² with its own noise; the draws average
    to ∇_A L_train = (2Δ/d) B U/√p + (2√Δ/d) Vᵀ/√p of the exact noise-averaged loss (B = A/√p)."""
    rng = np.random.default_rng(5)
    n, d, p, t, draws = 4, 6, 8, 0.3, 1024
    W = rng.standard_normal((p, d))
    X = rng.standard_normal((n, d))
    A = 0.5 * rng.standard_normal((d, p))
    key = jax.random.PRNGKey(11)
    g = F.fresh_gradients(key, A, W, X, t, "tanh", draws=draws)
    assert g.shape == (draws, d, p) and g.dtype == np.float64
    dt = delta(t)
    Xs = math.exp(-t) * X

    def loss(A_, xi):
        s = np.tanh((Xs + math.sqrt(dt) * xi) @ W.T / math.sqrt(d)) @ A_.T / math.sqrt(p)
        return np.sum((math.sqrt(dt) * s + xi) ** 2) / (n * d)

    keys = jax.random.split(key, draws)
    h = 1e-3                                   # the loss is quadratic in A: central differences are exact
    for i in (0, 1, draws - 1):
        with jax.enable_x64(True):
            xi = np.asarray(jax.random.normal(keys[i], (n, d), dtype=jnp.float64))
        fd = np.zeros((d, p))
        for j, k in np.ndindex(d, p):
            E = np.zeros((d, p))
            E[j, k] = h
            fd[j, k] = (loss(A + E, xi) - loss(A - E, xi)) / (2 * h)
        np.testing.assert_allclose(g[i], fd, rtol=1e-9, atol=1e-11)
    tm = matrices.train_matrices(W, X, t, tol=1e-10, max_order=24)
    assert tm.info["converged"]
    U, V = np.asarray(tm.U), np.asarray(tm.V)
    B = A / math.sqrt(p)
    exact = ((2 * dt / d) * B @ U + (2 * math.sqrt(dt) / d) * V.T) / math.sqrt(p)
    se = g.std(axis=0, ddof=1) / math.sqrt(draws)
    z = (g.mean(axis=0) - exact) / se
    print(f"max |z| = {np.max(np.abs(z)):.2f}, mean z² = {np.mean(z**2):.2f}")
    assert np.max(np.abs(z)) < 4.5, z
    assert np.mean(z**2) < 3.0        # ≈ 1 on average; the 48 entries are strongly correlated


def test_predict_floor_is_the_checkpoint_loop_with_one_stream_per_checkpoint():
    """predict_floor = at each checkpoint i: fresh gradients at the mean iterate A(τ_i) with key fold_in(key, i),
    their covariance in U's eigenbasis, and the excess losses after k_i steps (docs/theory.md §7.2)."""
    from rfdiff import dynamics
    from rfdiff._util import stream_key
    from rfdiff.model import build_problem, RFConfig

    prob = build_problem(RFConfig(d=4, p=16, n=8, t=0.1, seed=3, n_emp=256, tol=1e-6))
    dyn = dynamics.from_problem(prob)
    eta, draws = 5.0, 16
    tau, steps = np.array([0.5, 2.0]), np.array([3, 12])
    key = stream_key(3, "fluctuations")
    floor = F.predict_floor(key, dyn, prob.pop.U, prob.W, prob.X, tau, steps, eta, draws)
    Q, lam = np.asarray(dyn.Q), np.asarray(dyn.lam)
    QUQ = Q.T @ np.asarray(prob.pop.U) @ Q
    for i in range(2):
        g = F.fresh_gradients(stream_key(3, "fluctuations", i), np.asarray(dyn.A(float(tau[i]), eta=eta)), prob.W,
                              prob.X, 0.1, "tanh", draws)
        tr, te = F.excess_losses(F.noise_covariance(g, Q), lam, QUQ, eta, int(steps[i]), 4, 0.1)
        assert floor.train_excess[i] == pytest.approx(tr, rel=1e-10)
        assert floor.test_excess[i] == pytest.approx(te, rel=1e-10)
    np.testing.assert_allclose(floor.score_excess, floor.test_excess / delta(0.1))
    assert floor.draws == draws and np.all(floor.train_excess > 0)
    with pytest.raises(ValueError, match="^tau and steps"):
        F.predict_floor(key, dyn, prob.pop.U, prob.W, prob.X, tau, steps[:1], eta, draws)
    with pytest.raises(ValueError, match="^eta"):
        F.predict_floor(key, dyn, prob.pop.U, prob.W, prob.X, tau, steps, -1.0, draws)
