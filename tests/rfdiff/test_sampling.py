"""Reverse-time samplers and RF score grids (docs/theory.md §5.1–5.2), checked through memorisation metrics."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import data as D
from rfdiff import memorisation as M
from rfdiff import sampling as S
from rfdiff.features import rf_score
from rfdiff.metrics import empirical_score


def _train(d, n, seed=0):
    P = D.isotropic(d)
    return P, np.asarray(P.sample(jax.random.PRNGKey(seed), n), dtype=np.float64)


# ----------------------------------------------------------------------------- reference samplers

def test_empirical_sampler_memorises():
    """Exact empirical score, t_min = 0.005: every sample lands on a training point (f_mem ≥ 0.99)."""
    P, X = _train(8, 16)
    y = S.sample_empirical(jax.random.PRNGKey(1), X, 1000, t_min=0.005, t_max=5.0, n_steps=100)
    r = M.distance_ratio(y, X)
    f = M.f_mem(r)
    print(f"empirical sampler f_mem(1/3) = {f:.4f}, f_mem(1/4) = {M.f_mem(r, 0.25):.4f}")
    assert f >= 0.99
    # the fresh-test-set criterion agrees: memorised samples are closer to the training set
    test = np.asarray(P.sample(jax.random.PRNGKey(7), 16))
    assert M.closer_to_train_fraction(y, X, test) >= 0.99


def test_population_sampler_covariance_and_no_memorisation():
    """Exact population score: f_mem ≈ 0 and sample moments match the sampler's exact covariance.

    Data: N(0, Σ), d = 8, spectrum ½δ(0.5) + ½δ(1.5) in a random basis. N = 20 000 samples.
    For N exact samples, E‖Σ̂ - C‖_F² = (Tr(C)² + Tr(C²))/(N - 1); we allow 1.5x its square root
    (‖Σ̂ - C‖_F² is a sum of d² terms, so its relative spread is small). The mean error is
    checked against E‖m̂‖² = Tr C/N (tolerance mean + 5 SD of the χ²-like statistic).
    The Euler discretisation bias (exact recursion, 100 log-spaced steps) is itself < 3%.
    """
    d, N, t_min = 8, 20000, 0.01
    P = D.gaussian_spectrum(d, atoms=((0.5, 0.5), (1.5, 0.5)), basis="random", key=jax.random.PRNGKey(3))
    X = np.asarray(P.sample(jax.random.PRNGKey(4), 64))
    C_true = P.noised(t_min).covariance()
    for method in ("sde", "ode"):
        y = np.asarray(S.sample_population(jax.random.PRNGKey(5), P, N, t_min=t_min, method=method))
        C_em = S.euler_covariance(P, t_min=t_min, method=method)
        m_hat, C_hat = M.sample_moments(y)
        err = np.linalg.norm(C_hat - C_em)
        expected = math.sqrt((np.trace(C_em) ** 2 + np.trace(C_em @ C_em)) / (N - 1))
        bias = np.linalg.norm(C_em - C_true) / np.linalg.norm(C_true)
        mean_sq, mean_tol = float(m_hat @ m_hat), (np.trace(C_em) + 5 * math.sqrt(2 * np.trace(C_em @ C_em))) / N
        f = M.f_mem(M.distance_ratio(y, X))
        q = M.gaussian_quality(y, np.zeros(d), C_true)
        print(f"{method}: |C_hat - C_em|_F = {err:.4f} (sampling RMS {expected:.4f}); discretisation bias "
              f"{bias:.4f}; |m|^2 = {mean_sq:.2e} (tol {mean_tol:.2e}); f_mem = {f:.5f}; KL = {q['kl']:.4f} "
              f"(floor {q['kl_floor']:.4f})")
        assert err <= 1.5 * expected
        assert bias < 0.03
        assert mean_sq <= mean_tol
        assert f <= 0.005          # a fresh point has ratio < 1/3 with probability ≈ 3^-d = 1.5e-4
        assert q["kl"] < 3 * q["kl_floor"] + 1e-3


def test_reference_scores_match_library():
    """The scan's score functions equal metrics.empirical_score and GaussianMixture.score."""
    P, X = _train(6, 10)
    t = 0.3
    y = np.random.default_rng(0).standard_normal((7, 6))
    with jax.enable_x64(True):
        step = (jnp.asarray(math.exp(-t)), jnp.asarray(-math.expm1(-2 * t)))
        Xj = jnp.asarray(X)
        a = S._empirical_score(jnp.asarray(y), step, (Xj, jnp.sum(Xj * Xj, 1)))
        b = empirical_score(jnp.asarray(y), Xj, t)
        assert float(jnp.max(jnp.abs(a - b))) < 1e-12
        mix = D.mixture([0.3, 0.7], np.random.default_rng(1).standard_normal((2, 6)), [0.5, 2.0])
        Pt = mix.noised(t)
        O = jnp.asarray(Pt.orthonormal_basis())
        s1 = S._mixture_score(jnp.asarray(y), (jnp.asarray(Pt.means) @ O, jnp.asarray(Pt.eigvals)),
                              (O, jnp.log(jnp.asarray(Pt.weights))))
        s2 = Pt.score(jnp.asarray(y))
        assert float(jnp.max(jnp.abs(s1 - s2))) < 1e-12


def test_sampler_compiles_once():
    """A second call with the same shapes reuses the compiled scan."""
    P = D.isotropic(4)
    S.sample_population(jax.random.PRNGKey(0), P, 64, n_steps=20)
    size = S._integrate._cache_size()
    S.sample_population(jax.random.PRNGKey(1), P, 64, n_steps=20)
    assert S._integrate._cache_size() == size


# ----------------------------------------------------------------------------- validation

def test_bad_inputs_raise():
    P, X = _train(4, 8)
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="t_min"):
        S.sample_population(key, P, 10, t_min=1.0, t_max=1.0)
    with pytest.raises(ValueError, match="t_min"):
        S.sample_empirical(key, X, 10, t_min=2.0, t_max=1.0)
    with pytest.raises(ValueError, match="t_min"):
        S.train_score_grid(key, X, [1.0], 16, t_min=5.0, t_max=0.1)
    with pytest.raises(ValueError, match="n_samples"):
        S.sample_population(key, P, 0)
    with pytest.raises(ValueError, match="n_steps"):
        S.sample_empirical(key, X, 10, n_steps=-3)
    with pytest.raises(ValueError, match="p must"):
        S.train_score_grid(key, X, [1.0], 0)
    with pytest.raises(ValueError, match="n_times"):
        S.train_score_grid(key, X, [1.0], 16, n_times=0)
    with pytest.raises(ValueError, match="taus"):
        S.train_score_grid(key, X, [-1.0], 16)
    with pytest.raises(ValueError, match="data"):
        S.train_score_grid(key, X, [1.0], 16, data=D.isotropic(5))
    with pytest.raises(ValueError, match="x0"):
        S.sample_population(key, P, 10, x0=np.zeros((10, 5)))
    with pytest.raises(ValueError, match="method"):
        S.sample_population(key, P, 10, method="heun")
    with pytest.raises(ValueError, match="samples"):
        M.nearest_two(np.zeros((3, 5)), X)
    with pytest.raises(ValueError, match="train"):
        M.nearest_two(np.zeros((3, 4)), X[:1])
    with pytest.raises(ValueError, match="k must"):
        M.f_mem(np.array([0.1, 0.2]), k=1.5)
    with pytest.raises(ValueError, match="test"):
        M.closer_to_train_fraction(X, X, X[:3])


# ----------------------------------------------------------------------------- RF scores

@pytest.fixture(scope="module")
def rf_grid():
    """d = 8, n = 4 ≪ p = 192, 6 log-spaced grid times in [0.01, 5]; τ = 10, 1e3, ∞ from one eigh each."""
    P, X = _train(8, 4, seed=11)
    G = S.train_score_grid(jax.random.PRNGKey(2), X, [10.0, 1e3, np.inf], 192, t_min=0.01, t_max=5.0, n_times=6)
    return P, X, G


def test_rf_memorisation_rises_with_tau(rf_grid):
    """n ≪ p: samples of the RF score trained to τ = ∞ are memorised far more often than at τ = 10."""
    P, X, G = rf_grid
    f = []
    for i in range(G.taus.size):
        y = S.sample_rf(jax.random.PRNGKey(3), G, 1000, tau_index=i)
        f.append(M.f_mem(M.distance_ratio(y, X)))
    lo, hi = M.bootstrap_ci(jax.random.PRNGKey(0), M.memorized(M.distance_ratio(y, X)).astype(float), 500)
    print(f"f_mem at tau = {G.taus.tolist()}: {f}; 95% CI at tau=inf [{lo:.3f}, {hi:.3f}]")
    assert f[0] < 0.05
    assert f[-1] > f[0] + 0.15
    assert f[-1] >= f[1] - 0.02
    # tanh is odd, so is every RF score: the memorising limit reproduces {±x^ν}, not X alone
    assert S.activation_is_odd(G.activation) and not S.activation_is_odd("gelu")
    x = np.random.default_rng(0).standard_normal((4, 8))
    np.testing.assert_allclose(np.asarray(G.score(-x, 0.05, 2)), -np.asarray(G.score(x, 0.05, 2)), atol=1e-10)
    f_sym = M.f_mem(M.distance_ratio(y, np.concatenate([X, -X])))
    print(f"f_mem against {{±x}} at tau=inf: {f_sym:.3f}")
    assert f_sym > f[-1] + 0.2


def test_rf_grid_score_and_interpolation(rf_grid):
    """Grid score at a grid time = rf_score(A, W); linear interpolation of a shared-W grid mixes A."""
    _, X, G = rf_grid
    y = np.random.default_rng(0).standard_normal((5, 8))
    with jax.enable_x64(True):
        k = 2
        s = G.score(y, float(G.times[k]), tau_index=1)
        ref = rf_score(G.A[1, k], G.W[0], jnp.asarray(y))
        assert float(jnp.max(jnp.abs(s - ref))) < 1e-10
        tm = 0.5 * (G.times[k] + G.times[k + 1])
        s_lin = G.score(y, tm, tau_index=1, interpolation="linear")
        ref_lin = 0.5 * (ref + rf_score(G.A[1, k + 1], G.W[0], jnp.asarray(y)))
        assert float(jnp.max(jnp.abs(s_lin - ref_lin))) < 1e-10
    lo, hi, w = S.grid_lookup(G.times, [G.times[0] * 0.5, G.times[3], G.times[-1] * 2], "nearest")
    np.testing.assert_array_equal(lo, [0, 3, 5])


def test_float32_sampling_agrees(rf_grid):
    """float32 sampling is safe: probability-flow trajectories from common starting points agree
    with float64 to ~1e-5 relative, and the memorised fraction is the same."""
    _, X, G = rf_grid
    x0 = np.asarray(jax.random.normal(jax.random.PRNGKey(9), (500, 8)))
    kw = dict(tau_index=2, method="ode", x0=x0)
    y64 = np.asarray(S.sample_rf(jax.random.PRNGKey(0), G, 500, **kw))
    y32 = np.asarray(S.sample_rf(jax.random.PRNGKey(0), G, 500, dtype=jnp.float32, **kw))
    rel = np.linalg.norm(y64 - y32, axis=1) / np.linalg.norm(y64, axis=1)
    f64, f32 = M.f_mem(M.distance_ratio(y64, X)), M.f_mem(M.distance_ratio(y32, X))
    print(f"float32 vs float64 (ODE): median rel diff {np.median(rel):.2e}, max {rel.max():.2e}; "
          f"f_mem {f64} vs {f32}")
    assert np.median(rel) < 1e-4
    assert abs(f64 - f32) <= 0.004
