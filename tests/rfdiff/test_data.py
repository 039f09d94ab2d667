"""Data models (docs/theory.md §1): sampling moments, closed-form scores, Fisher information, validation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rfdiff import data


def test_sample_covariances_match(key):
    d = 8
    cases = [data.isotropic(d, 1.5), data.gaussian_spectrum(d, atoms=[(0.5, 0.5), (1.5, 0.5)], basis="random", key=key),
             data.gaussian_spectrum(d, power_law=1.0, sigma_x=2.0), data.two_class_mixture(d, 2.0, 0.5),
             data.subspace(d, 3, key=key)]
    N = 200_000
    for ds in cases:
        x = np.asarray(ds.sample(jax.random.PRNGKey(5), N))
        C = np.cov(x.T)
        # sampling error of a covariance entry ≈ sqrt(2/N) * scale
        np.testing.assert_allclose(C, ds.covariance(), atol=6 * np.sqrt(2 / N) * ds.covariance().diagonal().max())
    assert abs(data.gaussian_spectrum(d, power_law=1.0, sigma_x=2.0).sigma_x2 - 4.0) < 1e-12
    assert abs(data.subspace(8, 2, basis="axis").sigma_x2 - 0.25) < 1e-12


def test_two_atom_counts():
    lam = data.spectrum_eigenvalues(100, atoms=[(0.5, 0.5), (1.5, 0.5)])
    assert (lam == 0.5).sum() == 50 and (lam == 1.5).sum() == 50


def test_mixture_score_is_gradient_of_log_density(key):
    ds = data.mixture([0.3, 0.7], np.array([[1.0, -1.0, 0.5], [-0.5, 0.2, 0.0]]), [0.5, 2.0]).noised(0.4)

    def logp(y):
        out = []
        for w, mu, lam in zip(ds.weights, ds.means, ds.eigvals):
            out.append(np.log(w) - 0.5 * jnp.sum(jnp.log(2 * np.pi * lam)) - 0.5 * jnp.sum((y - mu) ** 2 / lam))
        return jax.scipy.special.logsumexp(jnp.stack(out))

    with jax.enable_x64(True):        # the autodiff reference in float64 (the global setting stays float32)
        y = jax.random.normal(key, (5, 3), dtype=jnp.float64)
        ref = jax.vmap(jax.grad(logp))(y)
        got = ds.score(y)             # jax.numpy: float64 only inside an x64 context
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_fisher_information_exact_and_mc(key):
    ds = data.gaussian_spectrum(6, eigenvalues=[0.5, 1, 1, 2, 3, 4]).noised(0.3)
    J, err = ds.fisher_information()
    assert err == 0 and abs(J - np.sum(1 / ds.eigvals[0])) < 1e-12
    mix = data.two_class_mixture(6, 0.0, 1.0).noised(0.3)  # degenerate mixture = one Gaussian
    Jm, se = mix.fisher_information(key, 50_000)
    assert abs(Jm - 6.0) < 4 * se + 1e-9


def test_validation_messages():
    with pytest.raises(ValueError, match="d must be"):
        data.isotropic(0)
    with pytest.raises(ValueError, match="sigma_x"):
        data.isotropic(4, -1.0)
    with pytest.raises(ValueError, match="weights"):
        data.mixture([0.5, 0.6], np.zeros((2, 3)), [1, 1])
    with pytest.raises(ValueError, match="D must be"):
        data.subspace(4, 5)
    with pytest.raises(ValueError, match="exactly one"):
        data.spectrum_eigenvalues(4)
