"""Exact eigenmode dynamics (docs/theory.md §3) against direct evaluation, explicit GD iteration and the minimiser."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff import dynamics, metrics, model
from rfdiff.diffusion import delta
from rfdiff.population import Population


@pytest.fixture(scope="module")
def problem():
    return model.build_problem(model.RFConfig(d=16, p=96, n=24, t=0.2, seed=3, n_emp=2048))


@pytest.fixture(scope="module")
def dyn(problem):
    return dynamics.from_problem(problem)


def test_curves_equal_direct_quadratic_forms(problem, dyn):
    taus = np.array([0.3, 7.0, 250.0, 1e4])
    c = dyn.curves(taus)
    p, t = problem.config.p, problem.config.t
    for i, tau in enumerate(taus):
        B = dyn.A(tau) / np.sqrt(p)
        np.testing.assert_allclose(c["train_loss"][i], metrics.quadratic_loss(B, problem.train.U, problem.train.V, t), rtol=1e-10)
        np.testing.assert_allclose(c["test_loss"][i], metrics.quadratic_loss(B, problem.pop.U, problem.pop.V, t), rtol=1e-10)
        np.testing.assert_allclose(c["score_error"][i], metrics.score_error(B, problem.pop.U, problem.pop.V, t, problem.population.fisher), rtol=1e-10)
        # distance to the empirical score from its definition with the same Monte Carlo moments
        direct = (np.sum((B @ problem.pop.U) * B) - 2 * np.sum(B * problem.population.emp_cross.T) + problem.population.emp_sq) / problem.config.d
        np.testing.assert_allclose(c["emp_distance"][i], direct, rtol=1e-9)


def test_infinite_time_limit_is_direct_minimiser(problem, dyn):
    U, V = np.asarray(problem.train.U), np.asarray(problem.train.V)
    p, t = problem.config.p, problem.config.t
    A_star = -np.sqrt(p / delta(t)) * np.linalg.solve(U, V).T
    np.testing.assert_allclose(dyn.A_infinity(), A_star, rtol=1e-7, atol=1e-9)
    # at τ far beyond 1/λ_min the curve sits at the minimiser's loss
    tau_big = 1e3 * dyn.psi_p / (delta(t) * float(dyn.lam[0]))
    np.testing.assert_allclose(dyn.A(tau_big), A_star, rtol=1e-6, atol=1e-8)
    L_star = metrics.quadratic_loss(A_star / np.sqrt(p), U, V, t)
    np.testing.assert_allclose(dyn.curves([tau_big])["train_loss"][0], L_star, rtol=1e-10)


def test_discrete_gd_matches_explicit_iteration(problem, dyn):
    """B_{k+1} = B_k - (η/p) ∇_B L, iterated in numpy, vs the per-mode formula, at a large step."""
    d, p, t = problem.config.d, problem.config.p, problem.config.t
    U, V = np.asarray(problem.train.U), np.asarray(problem.train.V)
    dt = delta(t)
    eta = 0.9 * p * d / (dt * float(dyn.lam[-1]))  # 90% of the stability limit
    B = np.zeros((d, p))
    record = {}
    for k in range(1, 401):
        B = B - (eta / p) * ((2 * dt / d) * B @ U + (2 * np.sqrt(dt) / d) * V.T)
        if k in (1, 10, 100, 400):
            record[k] = B.copy()
    for k, Bk in record.items():
        tau = k * eta / d**2
        np.testing.assert_allclose(dyn.A(tau, eta=eta) / np.sqrt(p), Bk, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(dyn.curves([tau], eta=eta)["train_loss"][0],
                                   metrics.quadratic_loss(Bk, U, V, t), rtol=1e-8)


def test_gd_step_beyond_stability_raises(dyn):
    limit = dyn.p * dyn.d / (delta(dyn.t) * float(dyn.lam[-1]))
    with pytest.raises(ValueError, match="eta"):
        dyn.curves([1.0], eta=1.01 * limit)


def test_small_step_gd_approaches_flow(dyn):
    taus = np.logspace(-1, 4, 11)
    eta = 1e-3 * dyn.p * dyn.d / (delta(dyn.t) * float(dyn.lam[-1]))
    a, b = dyn.curves(taus), dyn.curves(taus, eta=eta)
    np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=2e-3)


def test_large_tau_no_overflow_and_monotone_train(dyn):
    taus = np.logspace(-3, 30, 200)
    c = dyn.curves(taus)
    assert all(np.all(np.isfinite(v)) for v in c.values())
    assert np.all(np.diff(c["train_loss"]) <= 1e-12)  # gradient flow on a convex loss
    assert c["test_loss"].min() >= dyn.curves([0.0])["test_loss"][0] - 1.0


def test_test_loss_floor_is_exact_score(problem, dyn):
    """L_test ≥ 1 - Δ J/d (the exact score's loss), so E_score ≥ 0 along the whole curve."""
    c = dyn.curves(np.logspace(-2, 8, 60))
    assert np.all(c["score_error"] > 0)
    floor = metrics.minimal_test_loss(problem.config.t, problem.population.fisher, problem.config.d)
    assert np.all(c["test_loss"] > floor)
    np.testing.assert_allclose(c["score_error"], (c["test_loss"] - floor) / delta(problem.config.t), rtol=1e-10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(M=st.sampled_from([np.zeros((0, 3)), np.full((3, 3), np.nan), np.ones((3, 3)) * (1 + 1j), np.ones(3),
                          np.ones((3, 4)), np.array([["a"]]), np.triu(np.ones((3, 3)))]))
def test_matrix_arguments_refused_by_name(M):
    """Bad U: a one-line ValueError naming it, before any computation (property-based)."""
    with pytest.raises(ValueError, match="^U"):
        dynamics.exact_dynamics(M, np.ones((3, 2)), 0.1)


def test_other_arguments_refused_by_name():
    U, V = np.eye(3), np.ones((3, 2))
    with pytest.raises(ValueError, match="^U must have shape"):
        dynamics.exact_dynamics(np.eye(4), V, 0.1)
    with pytest.raises(ValueError, match="^t "):
        dynamics.exact_dynamics(U, V, -0.1)
    with pytest.raises(ValueError, match="^pop must be a"):
        dynamics.exact_dynamics(U, V, 0.1, U)
    with pytest.raises(ValueError, match="^pop must belong"):
        dynamics.exact_dynamics(U, V, 0.1, Population(np.eye(3), np.ones((3, 3))))
    with pytest.raises(ValueError, match="taus"):
        dynamics.exact_dynamics(U, V, 0.1).curves([-1.0])
