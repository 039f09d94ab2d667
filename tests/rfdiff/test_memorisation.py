"""Memorisation and Gaussian-quality metrics: nearest neighbours, f_mem, bootstrap, KL/W₂, EMM (docs/theory.md §5.3–5.6)."""
import math

import jax
import numpy as np
import pytest

from rfdiff import memorisation as M


def test_chunked_top2_equals_bruteforce():
    """Streaming top-2 over training chunks (chunk not dividing n, samples batched) = brute force."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 5))
    Y = np.concatenate([rng.standard_normal((690, 5)), X[:10] + 1e-3])   # some near-exact copies
    d1, d2, i1 = M.nearest_two(Y, X, chunk=128, sample_batch=300)
    D2 = np.sqrt(((Y[:, None, :] - X[None]) ** 2).sum(-1))
    srt = np.sort(D2, axis=1)
    np.testing.assert_allclose(d1, srt[:, 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d2, srt[:, 1], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(i1, D2.argmin(axis=1))
    r = M.distance_ratio(Y, X, chunk=128)
    np.testing.assert_allclose(r, srt[:, 0] / srt[:, 1], rtol=1e-9)
    assert M.f_mem(r) >= 10 / 700


def test_bootstrap_ci_covers():
    """95% percentile-bootstrap intervals for f_mem cover the true rate in ≈ 95% of 200 repetitions."""
    p_true, N, reps = 0.3, 400, 200
    rng = np.random.default_rng(1)
    hits, widths = 0, []
    for i in range(reps):
        flags = (rng.random(N) < p_true).astype(float)
        lo, hi = M.bootstrap_ci(jax.random.PRNGKey(i), flags, n_boot=500, batch=500)
        hits += lo <= p_true <= hi
        widths.append(hi - lo)
    coverage = hits / reps
    wald = 2 * 1.96 * math.sqrt(p_true * (1 - p_true) / N)
    print(f"bootstrap coverage {coverage:.3f} (SE {math.sqrt(0.95 * 0.05 / reps):.3f}); "
          f"mean width {np.mean(widths):.4f} vs Wald {wald:.4f}")
    assert 0.90 <= coverage <= 0.99
    assert abs(np.mean(widths) / wald - 1) < 0.1
    rep = M.f_mem_report(jax.random.PRNGKey(0), np.linspace(0, 1, 101), n_boot=200)
    assert set(rep) == {"0.3333", "0.5", "0.25"}
    assert rep["0.5"][0] == pytest.approx(50 / 101) and rep["0.5"][1] < 50 / 101 < rep["0.5"][2]


def test_gaussian_distances():
    """KL and W₂ against closed forms."""
    d = 5
    A = np.random.default_rng(0).standard_normal((d, d))
    C = A @ A.T + np.eye(d)
    assert M.gaussian_kl(np.zeros(d), C, np.zeros(d), C) == pytest.approx(0, abs=1e-10)
    assert M.wasserstein2_gaussian(np.zeros(d), C, np.zeros(d), C) == pytest.approx(0, abs=1e-6)
    # KL(N(m, a I) ‖ N(0, I)) = ½(d a - d + |m|² - d log a)
    m, a = np.ones(d), 2.0
    assert M.gaussian_kl(m, a * np.eye(d), np.zeros(d), np.eye(d)) == pytest.approx(
        0.5 * (d * a - d + d - d * math.log(a)))
    # commuting covariances: W₂² = |m1-m2|² + |√C1 - √C2|_F²
    c1, c2 = np.diag([1.0, 2, 3, 4, 5]), np.diag([2.0, 2, 1, 1, 9])
    w = M.wasserstein2_gaussian(m, c1, np.zeros(d), c2)
    assert w**2 == pytest.approx(d + np.sum((np.sqrt(np.diag(c1)) - np.sqrt(np.diag(c2))) ** 2))


def test_emm_and_early_stopping():
    """EMM_ε from a table; crossings; τ_stop = c n calibrated at the smallest n."""
    n = np.array([4, 8, 16, 32])
    taus = np.array([1.0, 10, 100, 1000])
    F = np.array([[0.0, 0.5, 0.95, 1.0],
                  [0.0, 0.1, 0.92, 0.99],
                  [0.0, 0.0, 0.5, 0.95],
                  [0.0, 0.0, 0.1, 0.5]])
    np.testing.assert_array_equal(M.emm(n, F, 0.1), [0, 0, 8, 16])
    np.testing.assert_array_equal(M.emm(n, np.stack([F, F]), 0.1), [0, 0, 8, 16])   # seeds averaged
    e = M.emm_interpolated(n, F, 0.1)
    assert np.isnan(e[0]) and 8 <= e[2] < 16 and 16 <= e[3] < 32
    assert M.crossing_time(taus, F[2], 0.5) == pytest.approx(100.0)
    assert 10 < M.crossing_time(taus, F[0], 0.9) < 100
    i = M.best_stopping_time(taus, quality=np.array([3.0, 1.0, 0.5, 0.7]), fmem=F[0], f_max=0.1)
    assert i == 0                         # τ = 10 and later memorise more than f_max = 0.1
    i = M.best_stopping_time(taus, quality=np.array([3.0, 1.0, 0.5, 0.7]), fmem=F[3], f_max=0.1)
    assert i == 2
    c = M.calibrate_early_stopping(4, 40.0)
    np.testing.assert_allclose(M.early_stopping_times(c, n), [40, 80, 160, 320])
    with pytest.raises(ValueError, match="fmem_table"):
        M.emm(n, F[:3], 0.1)


def test_coincident_training_points_count_as_memorised():
    """A sample on two coincident training points has ratio 0/0 → 0 (memorised); next to them, ratio 1."""
    a, b = np.array([1.0, 2.0]), np.array([-3.0, 0.5])
    train = np.stack([a, b, a])
    samples = np.stack([a, a + np.array([0.1, 0.0]), b + np.array([0.0, 0.2])])
    d1, d2, i1 = M.nearest_two(samples, train)
    np.testing.assert_allclose(d1, [0.0, 0.1, 0.2], atol=1e-12)
    np.testing.assert_allclose(d2, [0.0, 0.1, np.linalg.norm(b + [0.0, 0.2] - a)], atol=1e-12)
    assert i1[2] == 1 and i1[0] in (0, 2)
    r = M.distance_ratio(samples, train)
    np.testing.assert_allclose(r, [0.0, 1.0, 0.2 / np.linalg.norm(b + [0.0, 0.2] - a)], atol=1e-12)
    np.testing.assert_array_equal(M.memorized(r), [True, False, True])
    assert M.f_mem(r) == pytest.approx(2 / 3)
    assert M.f_mem(r, k=0.04) == pytest.approx(1 / 3)


def test_closer_to_train_fraction_counts_exactly():
    """Samples at training points are closer to train; samples at test points are not; a tie is not closer."""
    rng = np.random.default_rng(2)
    train, test = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    samples = np.concatenate([train[:3] + 1e-6, test[:2] - 1e-6])
    assert M.closer_to_train_fraction(samples, train, test) == pytest.approx(3 / 5)
    # one training point (second-nearest padded internally)
    assert M.closer_to_train_fraction(train[:1], train[:1], test[:1]) == 1.0
    assert M.closer_to_train_fraction(test[:1], train[:1], test[:1]) == 0.0
    e = np.eye(3)
    assert M.closer_to_train_fraction(5 * e[1:2], e[:1], -e[:1]) == 0.0     # equidistant: a tie is not closer


def test_kl_floor_matches_exact_samples():
    """Mean KL(N(m̂, Ĉ) ‖ N(m, C)) of N exact samples ≈ d/(2N) + d(d+1)/(4N); gaussian_quality reports both."""
    rng = np.random.default_rng(3)
    d, N, reps = 8, 4000, 40
    L = np.tril(rng.standard_normal((d, d))) + 2 * np.eye(d)
    C, m = L @ L.T, rng.standard_normal(d)
    kls = []
    for _ in range(reps):
        x = m + rng.standard_normal((N, d)) @ L.T
        m_hat, C_hat = M.sample_moments(x)
        kls.append(M.gaussian_kl(m_hat, C_hat, m, C))
    floor = M.kl_floor(d, N)
    assert floor == pytest.approx(d / (2 * N) + d * (d + 1) / (4 * N))
    se = np.std(kls) / math.sqrt(reps)
    print(f"mean KL {np.mean(kls):.5f} ± {se:.5f}, floor {floor:.5f}")
    assert abs(np.mean(kls) - floor) < 4 * se + 0.02 * floor      # next order is ≈ +1% here
    q = M.gaussian_quality(x, m, C)
    assert q["kl"] == pytest.approx(kls[-1], rel=1e-12) and q["kl_floor"] == floor and q["N"] == N
    assert q["mean_error"] == pytest.approx(np.linalg.norm(x.mean(0) - m), rel=1e-12)
    assert q["cov_rel_error"] == pytest.approx(np.linalg.norm(np.cov(x.T) - C) / np.linalg.norm(C), rel=1e-12)
    assert M.gaussian_kl(m, np.diag([1.0] * (d - 1) + [0.0]), m, C) == math.inf     # singular sample covariance


def test_bootstrap_ci_deterministic_per_key():
    """The same key gives the same interval; the interval brackets the sample mean; constant values give a point."""
    v = (np.arange(400) % 4 == 0).astype(float)
    kw = dict(n_boot=500, batch=500)                 # the shapes of test_bootstrap_ci_covers: already compiled
    a = M.bootstrap_ci(jax.random.PRNGKey(5), v, **kw)
    assert a == M.bootstrap_ci(jax.random.PRNGKey(5), v, **kw)
    assert a != M.bootstrap_ci(jax.random.PRNGKey(6), v, **kw)
    assert a[0] < v.mean() < a[1]
    assert M.bootstrap_ci(jax.random.PRNGKey(0), np.ones(400), **kw) == (1.0, 1.0)
    with pytest.raises(ValueError, match="level"):
        M.bootstrap_ci(jax.random.PRNGKey(0), v, level=1.0)
    with pytest.raises(ValueError, match="values"):
        M.bootstrap_ci(jax.random.PRNGKey(0), np.zeros((2, 2)))
