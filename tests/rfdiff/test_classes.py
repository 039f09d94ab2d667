"""Class-resolved curves and timescales for Gaussian-mixture data (rfdiff.classes, docs/theory.md §3.6)."""
import math

import jax
import numpy as np
import pytest
from small_problems import d4_problem

from rfdiff import classes, data, features, matrices, metrics, timescales


@pytest.fixture(scope="module")
def two_class():
    d, p, n, t = 8, 64, 32, 0.1
    mu = np.zeros(d)
    mu[0] = 2.0
    dat = data.mixture([0.5, 0.5], np.stack([mu, -mu]), [1.0, 4.0])
    W = features.init_W(jax.random.PRNGKey(1), p, d, dtype=np.float64)
    X, lab = classes.stratified_sample(jax.random.PRNGKey(2), dat, n)
    dyn, cd = classes.class_problem(jax.random.PRNGKey(3), W, X, lab, dat, t, n_mc=4096, tol=1e-8)
    return dict(data=dat, W=W, X=X, lab=lab, dyn=dyn, cd=cd, t=t)


def test_higher_variance_class_has_shorter_tau_gen(two_class):
    """Variances 1 and 4 (centroids ±2e_1, equal weights): measured τ_gen ratio (var 4 / var 1) ≈ 0.43."""
    c = two_class["cd"].curves(np.logspace(-2, 7, 181))
    ts = classes.class_timescales(c)
    tg = [x.tau_gen for x in ts]
    print(f"two classes (var 1, 4): tau_gen = {tg}, ratio = {tg[1] / tg[0]:.3f}; tau_mem = {[x.tau_mem for x in ts]}")
    assert tg[1] < 0.7 * tg[0], tg
    # same conclusion with the distance to the class-conditional score (exact, no Monte Carlo)
    tg_c = [timescales.tau_gen(c.tau, e)["tau_gen"] for e in c["class_score_error"]]
    assert tg_c[1] < 0.7 * tg_c[0], tg_c
    assert all(np.isfinite(x.tau_mem) and x.tau_mem > 10 * g for x, g in zip(ts, tg))


def test_class_curves_sum_to_total(two_class):
    cd, dyn = two_class["cd"], two_class["dyn"]
    taus = np.logspace(-1, 6, 15)
    c, full = cd.curves(taus), dyn.curves(taus)
    frac = cd.counts / cd.counts.sum()
    np.testing.assert_allclose(frac @ c["train_loss"], full["train_loss"], rtol=1e-12)
    np.testing.assert_allclose(cd.weights @ c["test_loss"], full["test_loss"], rtol=1e-12)
    np.testing.assert_array_equal(cd.counts, [16, 16])
    # per-class train loss from its definition at A(τ)
    B = np.asarray(dyn.A(taus[7])) / math.sqrt(dyn.p)
    U0 = matrices.train_matrices(two_class["W"], two_class["X"][two_class["lab"] == 0], two_class["t"])
    np.testing.assert_allclose(c["train_loss"][0, 7], metrics.quadratic_loss(B, U0.U, U0.V, two_class["t"]), rtol=1e-9)
    assert np.all(c["score_error"] > 0) and np.all(c["class_score_error"] > 0)


def test_validation_errors(two_class):
    dat, W2, X2 = two_class["data"], two_class["W"], two_class["X"]
    with pytest.raises(ValueError, match="labels"):
        classes.class_matrices(jax.random.PRNGKey(0), W2, X2, np.full(X2.shape[0], 2), dat, 0.1)
    with pytest.raises(ValueError, match="at least one"):
        classes.class_matrices(jax.random.PRNGKey(0), W2, X2, np.zeros(X2.shape[0], int), dat, 0.1)
    with pytest.raises(ValueError, match="class index"):
        classes.class_component(dat, 5)
    with pytest.raises(ValueError, match="too small"):
        classes.class_counts([0.95, 0.05], 4)
    with pytest.raises(ValueError, match="do not match"):
        bad = classes.ClassMatrices(None, None, (np.eye(3),), *(None,) * 8, 0.1)
        classes.class_dynamics(d4_problem()["ex"], bad)
    with pytest.raises(ValueError, match="curves"):
        classes.class_timescales({"tau": np.ones(3)})
