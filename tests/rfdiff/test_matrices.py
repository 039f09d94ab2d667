"""Exact noise-averaged matrices (docs/theory.md §2) against Monte Carlo and against themselves at higher order."""
import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfdiff import data, features, matrices


def _setup(d, p, n, seed=1, dataset=None):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    W = features.init_W(k1, p, d)
    X = (dataset or data.isotropic(d)).sample(k2, n)
    return W, X


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


@pytest.mark.parametrize("d,p,n", [(16, 128, 32), pytest.param(32, 512, 64, marks=pytest.mark.slow)])
def test_mehler_matches_monte_carlo_as_m_grows(d, p, n):
    """MC error falls like 1/√m and equals the sampling error; extrapolated difference < 1e-4.

    Acceptance size d=32, p=512, n=64 (slow; measured slope −0.495, err/SE 1.00–1.02, bias² 2.8e-9); the
    default run checks the same at d=16, p=128, n=32 (measured slope −0.495, err/SE 0.95–1.01, bias² 3.8e-9).
    """
    W, X = _setup(d, p, n)
    ex = matrices.train_matrices(W, X, 0.1, tol=1e-10)
    ms = np.array([512, 2048, 8192])
    errs, ses, verrs = [], [], []
    for m in ms:
        mc = matrices.train_matrices_mc_cv(jax.random.PRNGKey(int(m)), W, X, 0.1, m=int(m))
        errs.append(rel(mc.U, ex.U))
        ses.append(mc.trunc_error)
        verrs.append(rel(mc.V, ex.V))
    errs, ses = np.array(errs), np.array(ses)
    slope = np.polyfit(np.log(ms), np.log(errs), 1)[0]
    assert -0.6 < slope < -0.4, slope
    vslope = np.polyfit(np.log(ms), np.log(verrs), 1)[0]
    assert -0.6 < vslope < -0.4, vslope
    # each error is what sampling noise alone predicts
    np.testing.assert_allclose(errs / ses, 1.0, atol=0.2)
    # m → ∞: the squared error minus the sampling variance estimates the squared bias
    # (its own noise at m = 8192 is ≈ 2.5e-9, measured over seeds)
    bias2 = errs[-1] ** 2 - ses[-1] ** 2
    print(f"MC errors {errs}, slope {slope:.3f}, bias^2 estimate {bias2:.2e}")
    assert bias2 < (1e-4) ** 2


def test_plain_monte_carlo_is_unbiased_finite_m_object():
    W, X = _setup(16, 96, 12)
    ex = matrices.train_matrices(W, X, 0.3)
    runs = [matrices.train_matrices_mc(jax.random.PRNGKey(m), W, X, 0.3, m=m) for m in (64, 1024)]
    errs = [rel(r.U, ex.U) for r in runs]
    assert 2.5 < errs[0] / errs[1] < 6.0  # ≈ 4 for 1/√m
    assert abs(errs[1] / runs[1].trunc_error - 1) < 0.3  # no bias beyond sampling noise


def test_truncation_error_estimate_is_conservative():
    W, X = _setup(16, 48, 6)
    ref = matrices.train_matrices(W, X, 0.1, tol=1e-14, max_order=20)
    for tol in (1e-3, 1e-6):
        r = matrices.train_matrices(W, X, 0.1, tol=tol)
        assert r.info["converged"]
        assert rel(r.U, ref.U) <= r.trunc_error <= tol


def test_nonconverged_order_is_flagged():
    W, X = _setup(8, 32, 4)
    with pytest.warns(RuntimeWarning, match="not converged"):
        r = matrices.train_matrices(W, X, 2.0, tol=1e-14, max_order=3)
    assert not r.info["converged"] and r.trunc_error > 1e-14


def test_quadrature_order_converged():
    W, X = _setup(16, 64, 8)
    a = matrices.train_matrices(W, X, 1.0, tol=1e-8)
    b = matrices.train_matrices(W, X, 1.0, tol=1e-8, quad_order=200)
    assert a.info["quad_order"] > 48 and rel(a.U, b.U) < 1e-8 + a.trunc_error


def test_diagonal_exact_and_symmetric():
    W, X = _setup(8, 16, 5)
    r = matrices.train_matrices(W, X, 0.5)
    U = np.asarray(r.U)
    np.testing.assert_allclose(U, U.T, atol=0)
    assert np.all(np.linalg.eigvalsh(U) > 0)


@pytest.mark.parametrize("act", ["erf", "relu_centered", "gelu"])
def test_other_activations_against_monte_carlo(act):
    W, X = _setup(16, 64, 16, seed=3)
    ex = matrices.train_matrices(W, X, 0.2, activation=act)
    mc = matrices.train_matrices_mc_cv(jax.random.PRNGKey(7), W, X, 0.2, m=512, activation=act)
    err = rel(mc.U, ex.U)
    assert err < 4 * mc.trunc_error + 1e-6, (err, mc.trunc_error)


def test_population_matrices_match_fresh_points_monte_carlo():
    """Ũ, Ṽ against N fresh data points: error falls like 1/√N and equals the sampling error."""
    d, p = 16, 128
    for dataset in (data.isotropic(d, 1.3), data.two_class_mixture(d, 2.0, 0.5)):
        W, _ = _setup(d, p, 1, dataset=dataset)
        ex = matrices.population_matrices(W, dataset, 0.3)
        Ns = [16384, 262144]
        errs = []
        for N in Ns:
            mc = matrices.population_matrices_mc(jax.random.PRNGKey(N), W, dataset, 0.3, N=N)
            errs.append((rel(mc.U, ex.U), mc.trunc_error, rel(mc.V, ex.V)))
        (e1, s1, v1), (e2, s2, v2) = errs
        assert 2.8 < e1 / e2 < 5.7 and 2.8 < v1 / v2 < 5.7  # ≈ 4 for 1/√N
        assert abs(e2 / s2 - 1) < 0.3


def test_invalid_inputs_raise():
    W, X = _setup(4, 8, 3)
    with pytest.raises(ValueError, match="t"):
        matrices.train_matrices(W, X, 0.0)
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        matrices.train_matrices(W, X_nan, 0.1)
    with pytest.raises(ValueError, match="X"):
        matrices.train_matrices(W, X[:, :3], 0.1)
    with pytest.raises(ValueError, match="activation"):
        matrices.train_matrices(W, X, 0.1, activation="softsign")
    with pytest.raises(ValueError, match="m"):
        matrices.train_matrices_mc(jax.random.PRNGKey(0), W, X, 0.1, m=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(X=st.sampled_from([np.zeros((0, 4)), np.full((2, 4), np.inf), np.ones((2, 4)) + 0j, np.ones((2, 3)),
                          np.ones(4)]))
def test_training_set_refused_by_name(X):
    """Bad training sets: a one-line ValueError naming X, before any computation (property-based)."""
    with pytest.raises(ValueError, match="X"):
        matrices.train_matrices(np.ones((8, 4)), X, 0.1)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=st.integers(3, 90), block=st.integers(1, 40), cols=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_upper_row_blocks_hold_half_of_u_and_multiply_as_u(p, block, cols, seed):
    """U held as its upper row blocks (rfdiff.matrices.UpperRows): every block is the dense U's rows from its own
    diagonal on, the product equals the dense U's to rounding, and it holds about half of U's numbers."""
    rng = np.random.default_rng(seed)
    W, X = rng.standard_normal((p, 4)), rng.standard_normal((6, 4))
    plan, _ = matrices.train_plan_and_V(W, X, 0.3)
    U, H = plan.dense(), plan.upper(block=block)
    for s, B in zip(H.starts, H.blocks):
        np.testing.assert_allclose(B, U[s:s + B.shape[0], s:], rtol=1e-13, atol=1e-15)
    Z = rng.standard_normal((p, cols))
    np.testing.assert_allclose(H.matmat(Z), U @ Z, rtol=1e-12, atol=1e-13 * np.abs(U).max())
    assert H.nbytes <= 0.5 * U.nbytes + 8 * p * block
