"""Ridge-regularised exact dynamics and statics (rfdiff.ridge, docs/theory.md §3.5)."""
import math

import numpy as np
import pytest
from small_problems import D4, P4, T4, d4_problem

from rfdiff import dynamics, metrics, ridge
from rfdiff.diffusion import delta
from rfdiff.population import Population


@pytest.fixture(scope="module")
def small():
    """d = 4, p = 48, n = 3, t = 0.02 (tests/helpers/small_problems.py, built once per session)."""
    return d4_problem()


def test_ridge_zero_and_small_recover_unregularised(small):
    ex = small["ex"]
    taus = np.logspace(-1, 7, 40)
    ref = ex.curves(taus)
    c0 = ridge.with_ridge(ex, 0.0).curves(taus)
    c1 = ridge.with_ridge(ex, 1e-13).curves(taus)
    for k in ref:
        np.testing.assert_allclose(c0[k], ref[k], rtol=1e-14, atol=1e-15, err_msg=k)   # to round-off (measured 3e-16)
        np.testing.assert_allclose(c1[k], ref[k], rtol=1e-6, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(ridge.with_ridge(ex, 0.0).A_infinity(), ex.A_infinity(), rtol=1e-10, atol=1e-12)
    # statics over a ridge grid → 0 converge to the unregularised τ = ∞ loss
    U, V, Up, Vp = small["tr"].U, small["tr"].V, small["pop"].U, small["pop"].V
    sw = ridge.statics_vs_p(U, V, T4, [P4], [0.0, 1e-12, 1e-10, 1e-8], Population(Up, Vp))
    ref_inf = ridge.with_ridge(ex, 0.0).curves([np.inf])["test_loss"][0]
    np.testing.assert_allclose(sw["test_loss"][0, 0], ref_inf, rtol=1e-9)
    assert np.all(np.diff(np.abs(sw["test_loss"][0] - ref_inf)) > 0)


def test_large_ridge_gives_A_to_zero(small):
    ex = small["ex"]
    lam_max = float(ex.lam[-1])
    norms = []
    for r in (1e2, 1e4, 1e6):
        rd = ridge.with_ridge(ex, r * lam_max)
        norms.append(float(np.linalg.norm(rd.A_infinity())))
        c = rd.curves([1.0, 1e3, np.inf])
        assert np.all(np.abs(c["train_loss"] - 1) < 10 / r) and np.all(np.abs(c["test_loss"] - 1) < 10 / r)
    np.testing.assert_allclose(np.array(norms[:-1]) / np.array(norms[1:]), 100.0, rtol=2e-2)  # ‖A*‖ ∝ 1/λ
    assert norms[-1] < 1e-5


def test_ridge_statics_and_explicit_penalised_gd(small):
    """τ = ∞ equals the direct solve of (U + λI); discrete GD on L_train + (Δλ/(dp))‖A‖² matches the closed form."""
    ex, U, V = small["ex"], np.asarray(small["tr"].U), np.asarray(small["tr"].V)
    lam_r = 0.05
    rd = ridge.with_ridge(ex, lam_r)
    np.testing.assert_allclose(rd.A_infinity(), ridge.ridge_statics(U, V, T4, lam_r), rtol=1e-8, atol=1e-10)
    # early stopping sweep (numpy) equals the dynamics' test-loss curve for the first-p-feature model
    taus = np.logspace(-1, 6, 12)
    es = ridge.early_stopping_vs_p(U, V, T4, [20, P4], taus, Population(small["pop"].U, small["pop"].V), ridge=lam_r)
    sub = ridge.with_ridge(dynamics.exact_dynamics(U[:20, :20], V[:20], T4, Population(small["pop"].U[:20, :20],
                                                                                       small["pop"].V[:20])), lam_r)
    np.testing.assert_allclose(es["test_loss"][0], sub.curves(taus)["test_loss"], rtol=1e-10)
    np.testing.assert_allclose(es["test_loss"][1], rd.curves(taus)["test_loss"], rtol=1e-10)
    d, p, dt = D4, P4, delta(T4)
    eta = 0.5 * p * d / (dt * (float(ex.lam[-1]) + lam_r))
    A = np.zeros((d, p))
    for k in range(1, 201):
        B = A / math.sqrt(p)
        grad_B = (2 * dt / d) * B @ U + (2 * math.sqrt(dt) / d) * V.T + (2 * dt * lam_r / d) * B
        A = A - eta * grad_B / math.sqrt(p)      # ∇_A = ∇_B /√p
        if k in (1, 50, 200):
            tau = k * eta / d**2
            np.testing.assert_allclose(rd.A(tau, eta=eta), A, rtol=1e-8, atol=1e-12)
            c = rd.curves([tau], eta=eta)
            Bk = A / math.sqrt(p)
            np.testing.assert_allclose(c["train_loss"][0], metrics.quadratic_loss(Bk, U, V, T4), rtol=1e-10)
            # metrics returns a float64 JAX array: take it to numpy before further arithmetic (float32 otherwise)
            np.testing.assert_allclose(c["objective"][0], np.asarray(metrics.quadratic_loss(Bk, U, V, T4))
                                       + dt * lam_r / d * np.sum(Bk**2), rtol=1e-10)


def test_validation_errors(small):
    for bad in (-1.0, np.nan, "x"):
        with pytest.raises(ValueError, match="ridge"):
            ridge.with_ridge(small["ex"], bad)
    with pytest.raises(ValueError, match="rcond"):
        ridge.with_ridge(small["ex"], 0.0, rcond=2.0)
    with pytest.raises(ValueError, match="ExactDynamics"):
        ridge.with_ridge("not dynamics", 0.1)
    with pytest.raises(ValueError, match="taus"):
        ridge.with_ridge(small["ex"], 0.1).curves([-1.0])
    with pytest.raises(ValueError, match="ridges"):
        ridge.ridge_path(small["ex"], [])
    with pytest.raises(ValueError, match="path"):
        ridge.optimal_ridge({"ridge": [1.0]})
    with pytest.raises(ValueError, match="eta"):
        ridge.with_ridge(small["ex"], 0.1).curves([1.0], eta=1e12)
