"""Exact dynamics with m frozen noise draws per point (rfdiff.finite_m, docs/theory.md §2.6): m → ∞, dual form,
the m = 1 interpolation peak."""
import math

import jax
import numpy as np
import pytest
from small_problems import D4, P4, T4, d4_problem, finite_m_of

from rfdiff import features, finite_m, metrics, ridge
from rfdiff.diffusion import delta
from rfdiff.population import Population


@pytest.fixture(scope="module")
def small():
    """d = 4, p = 48, n = 3, t = 0.02 (tests/helpers/small_problems.py, built once per session)."""
    return d4_problem()


def test_m_to_infinity_quadrature_draws_reach_exact_average(small):
    """Weighted 'draws' = product Gauss–Hermite rule with k^d nodes: curves → exact-average curves.

    Measured (sup over τ ∈ [0.1, 1e5], 25 points): k = 4, 6, 8, 10 (m = 256 … 10⁴) gives frozen-draw
    train-loss errors 5.7e-5, 7.2e-7, 2.3e-8, 6.6e-10 and test-loss errors 1.8e-3, 4.9e-5, 1.7e-6, 2.4e-8
    (log-log slope in m over the last three ≈ -3.7 for the test loss).
    """
    taus = np.logspace(-1, 5, 25)
    ref = small["ex"].curves(taus)
    errs = []
    for k in (4, 6, 8, 10):
        nodes, w = finite_m.gauss_hermite_noise(D4, k)
        fm = finite_m_of(small, nodes, weights=w)
        assert abs(fm.noise_sq - 1.0) < 1e-12      # the rule integrates ‖ξ‖²/d exactly (k ≥ 2)
        c = fm.curves(taus)
        errs.append([np.abs(c["train_loss_frozen"] - ref["train_loss"]).max(),
                     np.abs(c["train_loss"] - ref["train_loss"]).max(),
                     np.abs(c["test_loss"] - ref["test_loss"]).max()])
    errs = np.array(errs)
    print("quadrature draws k=4,6,8,10: sup errors (frozen train, averaged train, test) =\n", errs)
    assert np.all(np.diff(np.log(errs), axis=0) < 0), errs          # monotone convergence in m
    assert errs[-1].max() < 1e-6, errs                               # m → ∞ limit to 1e-6
    # rate: log err vs log m, fitted over the last three rules (faster than any power of 1/√m)
    slope = np.polyfit(np.log([6.0**4, 8.0**4, 10.0**4]), np.log(errs[1:, 2]), 1)[0]
    assert slope < -2.0, slope


def test_m_to_infinity_iid_draws_rate_one_over_sqrt_m(small):
    """i.i.d. frozen draws (the finite-m training object): sup_τ |L_m − L_∞| ∝ m^{-1/2}.

    Fit of log(median over 4 draw sets of the sup deviation) against log m, m = 4 … 4096:
    measured slope ≈ -0.55 (frozen train loss) and -0.6 (test loss). The 1e-6 limit itself cannot
    be reached with random draws (fluctuations are O((nm)^{-1/2})): it is checked by the
    quadrature draws above.
    """
    taus = np.logspace(-1, 5, 25)
    ref = small["ex"].curves(taus)
    ms = 4 ** np.arange(1, 6)
    dev = np.zeros((3, len(ms), 2))
    for r in range(3):
        big = finite_m.frozen_noise(jax.random.PRNGKey(100 + r), int(ms[-1]), 3, D4)
        for j, m in enumerate(ms):
            c = finite_m_of(small, big[:m]).curves(taus)
            dev[r, j] = [np.abs(c["train_loss_frozen"] - ref["train_loss"]).max(),
                         np.abs(c["test_loss"] - ref["test_loss"]).max()]
    med = np.median(dev, axis=0)
    slopes = [np.polyfit(np.log(ms), np.log(med[:, i]), 1)[0] for i in range(2)]
    assert all(-0.85 < s < -0.35 for s in slopes), slopes
    print(f"iid draws: log-log slopes (train, test) = {slopes[0]:.3f}, {slopes[1]:.3f}; median sup dev {med.T}")
    assert med[-1, 0] < 0.15 * med[0, 0], med  # m grows 256x: m^{-1/2} predicts 1/16


def test_dual_equals_primal_and_direct_evaluation(small):
    """N = nm < p: the dual (Gram) form equals the primal form, and the frozen-draw loss equals its definition."""
    noise = finite_m.frozen_noise(jax.random.PRNGKey(7), 4, 3, D4)          # N = 12 < p = 48
    fd, fp = finite_m_of(small, noise, form="auto"), finite_m_of(small, noise, form="primal")
    assert fd.form == "dual" and fd.n_modes == 12 and fp.n_modes == P4
    taus = np.array([0.5, 30.0, 2e3, 1e5, np.inf])
    cd, cp = fd.curves(taus), fp.curves(taus)
    for k in ("train_loss_frozen", "train_loss", "test_loss", "score_error", "gen_gap", "gen_gap_frozen"):
        np.testing.assert_allclose(cd[k], cp[k], rtol=1e-7, atol=1e-9, err_msg=k)
    W, X, t = small["W"], small["X"], T4
    Z = math.exp(-t) * np.asarray(X)[None] + math.sqrt(delta(t)) * np.asarray(noise)
    Z, Xi = Z.reshape(-1, D4), np.asarray(noise).reshape(-1, D4)
    for i, tau in enumerate(taus):
        A = np.asarray(fd.A(tau))
        with jax.enable_x64(True):      # rf_score is jax.numpy: float64 only inside an x64 context
            s_A = np.asarray(features.rf_score(A, W, Z))
        direct = np.mean(np.sum((math.sqrt(delta(t)) * s_A + Xi) ** 2, 1)) / D4
        np.testing.assert_allclose(cd["train_loss_frozen"][i], direct, rtol=1e-9, atol=1e-12)
        B = A / math.sqrt(P4)
        np.testing.assert_allclose(cd["train_loss"][i], metrics.quadratic_loss(B, small["tr"].U, small["tr"].V, t),
                                   rtol=1e-9)
        np.testing.assert_allclose(cd["test_loss"][i], metrics.quadratic_loss(B, small["pop"].U, small["pop"].V, t),
                                   rtol=1e-9)
    assert cd["train_loss_frozen"][-1] < 1e-9   # min-norm interpolator of the N noised points
    np.testing.assert_allclose(cd["gen_gap"], cd["test_loss"] - cd["train_loss"], rtol=1e-12)
    np.testing.assert_allclose(cd["gen_gap_frozen"], cd["test_loss"] - cd["train_loss_frozen"], rtol=1e-12)
    np.testing.assert_allclose(fd.noise_sq, np.mean(np.sum(Xi**2, 1)) / D4, rtol=1e-12)


def test_m1_interpolation_peak_at_p_equals_nm(small):
    """m = 1, n = 12: the τ → ∞ test loss vs p (first p rows of one W) peaks at p = nm = 12.

    Measured: test loss 1.24, 5.73, 6.87, 50.9, 10.7, 8.78 at p = 4, 8, 10, 12, 14, 16 (4.41 at p = 48);
    the optimal ridge brings it to ≈ 0.995 at every p. (The height of the peak is set by the smallest
    singular value of one 12 × 12 feature matrix, so it varies a lot between draws: an earlier draw gave 1.0e3.)
    """
    X = small["data"].sample(jax.random.PRNGKey(3), 12)
    noise = finite_m.frozen_noise(jax.random.PRNGKey(5), 1, 12, D4)
    ps = [4, 8, 10, 12, 14, 16, 20, 24, 32, 48]
    W, Up, Vp = small["W"], small["pop"].U, small["pop"].V
    ridges = np.append(0.0, np.logspace(-8, 3, 34))
    sw = finite_m.frozen_statics_vs_p(W, X, T4, noise, ps, ridges, pop=Population(Up, Vp))
    test = sw["test_loss"][:, 0]
    i = int(np.argmax(test))
    print("m = 1 interpolation: p =", ps, "test(τ=∞) =", np.round(test, 3), "envelope =",
          np.round(ridge.lower_envelope(sw)["value"], 4))
    assert ps[i] == 12 == sw["N"], test
    assert test[i] > 10 * max(test[0], test[-1]), test
    assert np.all(sw["train_loss"][ps.index(12):, 0] < 1e-9)        # interpolation for p ≥ N
    env = ridge.lower_envelope(sw)                                  # ridge removes the peak:
    # at p = N the optimally regularised loss is below the unregularised one at every p (0.996 < 1.24 < 50.9)
    assert env["value"][i] < test.min() and not env["at_grid_edge"].any()
    # the fast SVD statics equal the τ = ∞ point of the dynamics (primal and dual sides of the peak)
    for p in (12, 20):
        fm = finite_m.finite_m_dynamics(W[:p], X, T4, noise, pop=Population(Up[:p, :p], Vp[:p]))
        for j in (0, 20):
            c = fm.with_ridge(ridges[j]).curves([np.inf])["test_loss"][0]
            np.testing.assert_allclose(c, sw["test_loss"][ps.index(p), j], rtol=1e-8)


def test_validation_errors(small):
    W, X = small["W"], small["X"]
    noise = finite_m.frozen_noise(jax.random.PRNGKey(0), 2, 3, D4)
    assert noise.shape == (2, 3, D4) and noise.dtype == np.float64
    with pytest.raises(ValueError, match="noise"):
        finite_m.finite_m_dynamics(W, X, T4, np.zeros((2, 4, D4)))
    with pytest.raises(ValueError, match="weights"):
        finite_m.finite_m_dynamics(W, X, T4, noise, weights=[1.5, -0.5])
    with pytest.raises(ValueError, match="form"):
        finite_m.finite_m_dynamics(W, X, T4, noise, form="both")
    with pytest.raises(ValueError, match="^pop must belong to p = 48"):
        finite_m.finite_m_dynamics(W, X, T4, noise, pop=Population(np.eye(3), np.zeros((3, D4))))
    with pytest.raises(ValueError, match="^pop must be a"):
        finite_m.finite_m_dynamics(W, X, T4, noise, pop=(np.eye(P4), np.zeros((P4, D4))))
    with pytest.raises(ValueError, match="^avg"):
        finite_m.finite_m_dynamics(W, X, T4, noise, avg=np.eye(P4))
    with pytest.raises(ValueError, match="noise"):
        finite_m.finite_m_dynamics(W, X, T4, np.full((2, 3, D4), np.nan))
    with pytest.raises(ValueError, match="m"):
        finite_m.frozen_noise(jax.random.PRNGKey(0), 0, 3, D4)
    with pytest.raises(ValueError, match="too many"):
        finite_m.gauss_hermite_noise(12, 10)
    with pytest.raises(ValueError, match="t"):
        finite_m.finite_m_dynamics(W, X, -1.0, noise)
