"""Beyond the paper: finite-m dynamics, ridge, class-resolved timescales, subspace data.

Library objects at small sizes (rfdiff.finite_m, rfdiff.ridge, rfdiff.classes; docs/theory.md
§2.6, §2.8, §3.5, §3.6), the study's pipeline (rfdiff.pipelines.beyond) on tiny sizes, and one
run of the script in its own process.
"""
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from rfdiff import classes, data, dynamics, features, finite_m, matrices, metrics, results, ridge, timescales
from rfdiff.diffusion import delta
from rfdiff.pipelines import beyond
from rfdiff.sweep import Cluster

ROOT = Path(__file__).resolve().parents[1]

D4, P4, T4 = 4, 48, 0.02      # small d so that a product Gauss–Hermite rule over the noise is affordable


@pytest.fixture(scope="module")
def small():
    """d = 4, p = 48, n = 3, t = 0.02: exact U (Mehler, tol 1e-12), Ũ, and the exact-average dynamics."""
    W = features.init_W(jax.random.PRNGKey(1), P4, D4, dtype=np.float64)
    dat = data.isotropic(D4)
    X = dat.sample(jax.random.PRNGKey(2), 3)
    tr = matrices.train_matrices(W, X, T4, tol=1e-12, max_order=16)
    with warnings.catch_warnings():   # Ũ truncated at order 12 (not converged to 1e-8): shared by both sides, any order
        warnings.simplefilter("ignore", RuntimeWarning)
        pop = matrices.population_matrices(W, dat, T4, tol=1e-8, max_order=12)
    J = dat.noised(T4).fisher_information()[0]
    ex = dynamics.exact_dynamics(tr.U, tr.V, T4, pop.U, pop.V, J)
    return dict(W=W, X=X, data=dat, tr=tr, pop=pop, J=J, ex=ex)


def _fm(s, noise, **kw):
    return finite_m.finite_m_dynamics(s["W"], s["X"], T4, noise, U_pop=s["pop"].U, V_pop=s["pop"].V,
                                      fisher=s["J"], U_avg=s["tr"].U, V_avg=s["tr"].V, **kw)


# ---------------------------------------------------------------- (a) finite m → ∞

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
        fm = _fm(small, nodes, weights=w)
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
            c = _fm(small, big[:m]).curves(taus)
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
    fd, fp = _fm(small, noise, form="auto"), _fm(small, noise, form="primal")
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
        direct = np.mean(np.sum((math.sqrt(delta(t)) * np.asarray(features.rf_score(A, W, Z)) + Xi) ** 2, 1)) / D4
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


# ---------------------------------------------------------------- (b) interpolation peak

def test_m1_interpolation_peak_at_p_equals_nm(small):
    """m = 1, n = 12: the τ → ∞ test loss vs p (first p rows of one W) peaks at p = nm = 12.

    Measured: test loss 1.43, 3.11, 6.84, 1.0e3, 7.5, 7.2 at p = 4, 8, 10, 12, 14, 16 (3.4 at p = 48);
    the optimal ridge brings it to ≈ 0.99 at every p.
    """
    X = small["data"].sample(jax.random.PRNGKey(3), 12)
    noise = finite_m.frozen_noise(jax.random.PRNGKey(5), 1, 12, D4)
    ps = [4, 8, 10, 12, 14, 16, 20, 24, 32, 48]
    W, Up, Vp = small["W"], small["pop"].U, small["pop"].V
    ridges = np.append(0.0, np.logspace(-8, 3, 34))
    sw = finite_m.frozen_statics_vs_p(W, X, T4, noise, ps, ridges, U_pop=Up, V_pop=Vp)
    test = sw["test_loss"][:, 0]
    i = int(np.argmax(test))
    print("m = 1 interpolation: p =", ps, "test(τ=∞) =", np.round(test, 3), "envelope =",
          np.round(ridge.lower_envelope(sw)["value"], 4))
    assert ps[i] == 12 == sw["N"], test
    assert test[i] > 10 * max(test[0], test[-1]), test
    assert np.all(sw["train_loss"][ps.index(12):, 0] < 1e-9)        # interpolation for p ≥ N
    env = ridge.lower_envelope(sw)                                  # ridge removes the peak
    assert env["value"][i] < 0.01 * test[i] and not env["at_grid_edge"].any()
    # the fast SVD statics equal the τ = ∞ point of the dynamics (primal and dual sides of the peak)
    for p in (12, 20):
        fm = finite_m.finite_m_dynamics(W[:p], X, T4, noise, U_pop=Up[:p, :p], V_pop=Vp[:p])
        for j in (0, 20):
            c = fm.with_ridge(ridges[j]).curves([np.inf])["test_loss"][0]
            np.testing.assert_allclose(c, sw["test_loss"][ps.index(p), j], rtol=1e-8)


# ---------------------------------------------------------------- (c) ridge

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
    sw = ridge.statics_vs_p(U, V, T4, [P4], [0.0, 1e-12, 1e-10, 1e-8], Up, Vp)
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
    es = ridge.early_stopping_vs_p(U, V, T4, [20, P4], taus, small["pop"].U, small["pop"].V, ridge=lam_r)
    sub = ridge.with_ridge(dynamics.exact_dynamics(U[:20, :20], V[:20], T4, small["pop"].U[:20, :20],
                                                   small["pop"].V[:20]), lam_r)
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
            np.testing.assert_allclose(c["objective"][0], metrics.quadratic_loss(Bk, U, V, T4)
                                       + dt * lam_r / d * np.sum(Bk**2), rtol=1e-10)


# ---------------------------------------------------------------- (d) classes

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


# ---------------------------------------------------------------- (e) validation

def test_validation_errors(small, two_class):
    W, X = small["W"], small["X"]
    noise = finite_m.frozen_noise(jax.random.PRNGKey(0), 2, 3, D4)
    with pytest.raises(ValueError, match="noise"):
        finite_m.finite_m_dynamics(W, X, T4, np.zeros((2, 4, D4)))
    with pytest.raises(ValueError, match="weights"):
        finite_m.finite_m_dynamics(W, X, T4, noise, weights=[1.5, -0.5])
    with pytest.raises(ValueError, match="form"):
        finite_m.finite_m_dynamics(W, X, T4, noise, form="both")
    with pytest.raises(ValueError, match="U_pop"):
        finite_m.finite_m_dynamics(W, X, T4, noise, U_pop=np.eye(3), V_pop=np.zeros((3, D4)))
    with pytest.raises(ValueError, match="emp_cross"):
        finite_m.finite_m_dynamics(W, X, T4, noise, emp_cross=np.zeros((P4, D4)))
    with pytest.raises(ValueError, match="noise"):
        finite_m.finite_m_dynamics(W, X, T4, np.full((2, 3, D4), np.nan))
    with pytest.raises(ValueError, match="m"):
        finite_m.frozen_noise(jax.random.PRNGKey(0), 0, 3, D4)
    with pytest.raises(ValueError, match="too many"):
        finite_m.gauss_hermite_noise(12, 10)
    with pytest.raises(ValueError, match="t"):
        finite_m.finite_m_dynamics(W, X, -1.0, noise)
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
        classes.class_dynamics(small["ex"], bad)
    with pytest.raises(ValueError, match="curves"):
        classes.class_timescales({"tau": np.ones(3)})




# ---------------------------------------------------------------- (f) the study's pipeline

TINY = beyond.Sizes(d=8, n=12, p_max=96, ms=(1, 4), sweep_ms=(1,), n_tau=41, n_ridge=17, cls_d=8, cls_p=64, cls_n=32,
                    variances=(1.0, 4.0), weights=(0.25,), sub_d=8, sub_p=64, sub_n=16, Ds=(2, 8), n_mc=1024)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Every unit of the four parts at tiny sizes, through the sweep (serial, cached in a temporary folder)."""
    cache = tmp_path_factory.mktemp("beyond_cache")
    with warnings.catch_warnings():   # Ũ at d = 8 stops at Mehler order 32, 2e-8 > tol 1e-8: immaterial here
        warnings.simplefilter("ignore", RuntimeWarning)
        res, rep = beyond.run(TINY, seed=0, cache_dir=cache, cluster=Cluster(serial=True))
    return res, rep, cache


def test_pipeline_units_and_summaries(tiny, tmp_path):
    """Tiny sizes (d = 8, n = 12, p_max = 96; classes d = 8, p = 64; subspace d = 8, p = 64; about 9 s).

    Asserted: one unit per (part, m / value / D); the m = 1 interpolation peak at p = N = n·m with a
    train loss on the draws of 0 there and at p_max; the ridge envelope and early stopping below the
    λ = 0 test loss at every p; λ* > 0; finite-m gaps = test − (noise-averaged / frozen) train;
    class 1 of variance 4 generalises first; τ_mem reported only when the final gap ≥ 0.05;
    the result survives results.save/load and the cache answers a second run.
    """
    res, rep, cache = tiny
    assert rep.n_computed == len(beyond.units(TINY)) == 3 + 1 + 3 + 2
    assert [r.label for r in res.finite_m] == ["1", "4", "inf"] and res.parts == (1, 2, 3, 4)
    assert [r.form for r in res.finite_m] == ["dual", "dual", "exact"]
    for r in res.finite_m[:2]:
        c = r.curves
        np.testing.assert_allclose(c.gen_gap, c.test_loss - c.train_loss, rtol=1e-12)
        np.testing.assert_allclose(c["gen_gap_frozen"], c.test_loss - c["train_loss_frozen"], rtol=1e-12)
        assert r.limit["train_loss_frozen"][0] < 1e-9 and math.isfinite(r.tau_mem_frozen)
    assert math.isnan(res.finite_m[-1].tau_mem_frozen) and res.finite_m[-1].noise_sq == 1.0
    s1, sw1 = res.statics["1"], res.finite_m[0].statics
    assert s1.N == 12 and s1.p_peak == 12 and s1.test_at_peak > 10 * s1.min_test, s1
    assert np.all(sw1.train_loss_frozen[list(sw1.p).index(12):, 0] < 1e-9)
    assert res.finite_m[1].statics is None and set(res.statics) == {"1", "inf"}
    rd, sw = res.ridge, res.finite_m[-1].statics
    assert rd.lambda_opt > 0 and rd.lambdas[2] == rd.lambda_opt and len(rd.curves) == 4
    assert np.all(sw.envelope()["value"] <= sw.test_loss[:, 0] + 1e-12)
    assert np.all(rd.early_stopping_test <= sw.test_loss[:, 0] + 1e-12)
    assert res.statics["inf"].early_stopping_max == pytest.approx(rd.early_stopping_test.max())
    var = {c.unit.value: c for c in res.classes if c.unit.kind == "variance"}
    assert var[4.0].curves.test_loss.shape == (2, TINY.n_tau)
    assert var[4.0].timescales[1].tau_gen < var[4.0].timescales[0].tau_gen
    w = [c for c in res.classes if c.unit.kind == "weight"][0].row()
    assert w["counts"] == [24, 8] and w["weights"] == [0.75, 0.25]
    for s in res.subspace:
        row = s.row()
        assert (row["tau_mem"] is None) == (row["final_gap"] < beyond.MEMORISES_GAP)
        assert row["J_over_d"] > 0 and row["tau_gen"] > 0
    assert res.subspace[-1].row()["J_over_d"] == pytest.approx(1.0)       # D = d: isotropic, J = d
    back = results.load(results.save(res, tmp_path / "b")[0].with_suffix(""))
    np.testing.assert_array_equal(back.finite_m[0].statics.test_loss, sw1.test_loss)
    assert [(x.tau_gen, x.tau_mem) for x in back.classes[0].timescales] == \
        [(x.tau_gen, x.tau_mem) for x in res.classes[0].timescales]
    again, rep2 = beyond.run(TINY, seed=0, parts=[3, 4], cache_dir=cache, cluster=Cluster(serial=True))
    assert rep2.n_loaded == 5 and rep2.n_computed == 0 and again.finite_m == [] and again.ridge is None


def test_pipeline_figures_and_printing(tiny, capsys):
    """Every figure and the printed summary from the tiny result (plotting only)."""
    from rfdiff_analysis import plots_beyond
    from rfdiff_cli import beyond as script
    res = tiny[0]
    assert plots_beyond.figure_names(res) == list(plots_beyond.FIGURES)
    plt = plots_beyond.pyplot()
    for name in plots_beyond.figure_names(res):
        fig = plots_beyond.FIGURES[name](res)
        assert fig.axes, name
        plt.close(fig)
    script.print_summary(res)
    out = capsys.readouterr().out
    assert "[1] finite m" in out and "[2] ridge" in out and "[3] weight" in out and "[4] D/d" in out


def test_pipeline_validation(capsys):
    for bad, name in ((lambda: beyond.FiniteMUnit(8, 12, 96, -1), "m"),
                      (lambda: beyond.FiniteMUnit(8, 12, 96, 1, t=0), "t"),
                      (lambda: beyond.FiniteMUnit(8, 12, 96, 1, ps=(200,)), "ps"),
                      (lambda: beyond.ClassUnit(8, 64, 32, "mean", 1.0), "kind"),
                      (lambda: beyond.ClassUnit(8, 64, 32, "weight", 1.5), "value"),
                      (lambda: beyond.ClassUnit(8, 64, 32, "weight", 0.5, mu_norm=-1), "mu_norm"),
                      (lambda: beyond.SubspaceUnit(8, 64, 16, 9), "D"),
                      (lambda: beyond.units(TINY, parts=[5]), "parts"),
                      (lambda: beyond.units(TINY, seed=-1), "seed"), (lambda: beyond.beyond_unit("x"), "unit"),
                      (lambda: beyond.Sizes(**{**vars(TINY), "Ds": (2, 9)}), "Ds")):
        with pytest.raises(ValueError, match=f"^{name}"):
            bad()
    from rfdiff_cli import beyond as script
    with pytest.raises(SystemExit):
        script.parse_args(["--parts", "1,5"])
    assert "--parts must be a subset" in capsys.readouterr().err
    assert script.parse_args(["--parts", "2"]).parts == {1, 2}
    for argv, flag in ((["--t", "0"], "--t"), (["--seed", "-2"], "--seed"), (["--mu-norm", "-1"], "--mu-norm")):
        assert script.main(argv + ["--no-plot", "--no-progress"]) == 2
        assert capsys.readouterr().err.startswith(f"error: {flag}:")


def test_beyond_script_smoke(tmp_path):
    """The script end to end at its smallest (--quick) sizes, parts 3 and 4, in its own process (about 6 s)."""
    cmd = [sys.executable, str(ROOT / "experiments" / "beyond.py"), "--quick", "--parts", "3,4", "--serial",
           "--no-progress", "--out", str(tmp_path), "--figdir", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[3] variance of class 1" in proc.stdout and "[4] D/d" in proc.stdout
    res, meta = results.load(tmp_path / "beyond_quick_s0", with_meta=True)
    assert isinstance(res, beyond.BeyondResult) and res.parts == (3, 4)
    assert len(res.classes) == 6 and len(res.subspace) == 4 and meta["sweep"]["computed"] == 10
    for name in ("classes", "subspace"):
        assert (tmp_path / f"beyond_{name}_quick.png").stat().st_size > 0
    assert not (tmp_path / "beyond_finite_m_quick.png").exists()
