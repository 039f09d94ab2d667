"""Random features W, φ(x) = σ(Wx/√d) and the RF score s_A(x) = A σ(Wx/√d)/√p (docs/theory.md §1.3)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from rfdiff.features import features, init_W, rf_score


def test_init_W_is_standard_gaussian_and_reproducible():
    """W is i.i.d. N(0, 1), float64, and a key gives the same W inside and outside an x64 context."""
    key = jax.random.PRNGKey(4)
    W = init_W(key, 300, 100)
    assert W.shape == (300, 100) and W.dtype == np.float64 and isinstance(W, np.ndarray)
    N = W.size
    assert abs(W.mean()) < 5 / math.sqrt(N)
    assert W.var() == pytest.approx(1.0, abs=5 * math.sqrt(2.0 / N))
    assert np.mean(W**4) == pytest.approx(3.0, abs=5 * math.sqrt(96.0 / N))   # Gaussian kurtosis, Var z⁴ = 96
    with jax.enable_x64(True):
        W_x64 = init_W(key, 300, 100)
    np.testing.assert_array_equal(W, W_x64)
    W32 = init_W(key, 300, 100, dtype=np.float32)
    assert W32.dtype == np.float32
    np.testing.assert_array_equal(W32, W.astype(np.float32))
    assert not np.allclose(init_W(jax.random.PRNGKey(5), 300, 100), W)


@pytest.mark.parametrize("p,d,name", [(0, 3, "p"), (4, -1, "d"), (2.5, 3, "p"), (3, True, "d")])
def test_init_W_rejects_bad_sizes(p, d, name):
    with pytest.raises(ValueError, match=f"^{name} must be a positive integer"):
        init_W(jax.random.PRNGKey(0), p, d)


@pytest.mark.parametrize("activation", ["tanh", "erf", "gelu", "relu_centered", "callable"])
def test_rf_score_equals_hand_computation(activation):
    """s_A(x) = A σ(W x/√d)/√p for a batch, against numpy float64 by hand."""
    rng = np.random.default_rng(0)
    N, d, p = 7, 5, 11
    W = rng.standard_normal((p, d))
    A = rng.standard_normal((d, p))
    X = rng.standard_normal((N, d))
    sig = {"tanh": np.tanh, "erf": special.erf, "gelu": lambda z: z * special.ndtr(z),
           "relu_centered": lambda z: np.maximum(z, 0) - 1 / math.sqrt(2 * math.pi),
           "callable": lambda z: np.sin(z) + 0.1 * z**2}[activation]
    act = (lambda z: jnp.sin(z) + 0.1 * z**2) if activation == "callable" else activation
    phi = sig((W @ X.T).T / math.sqrt(d))                 # (N, p)
    ref = np.stack([A @ phi[i] / math.sqrt(p) for i in range(N)])
    with jax.enable_x64(True):
        F = np.asarray(features(jnp.asarray(W), jnp.asarray(X), act))
        s = np.asarray(rf_score(jnp.asarray(A), jnp.asarray(W), jnp.asarray(X), act))
    assert F.shape == (N, p) and s.shape == (N, d) and s.dtype == np.float64
    np.testing.assert_allclose(F, phi, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(s, ref, rtol=1e-12, atol=1e-14)
    # linear in A, and the score of one point does not depend on the rest of the batch
    with jax.enable_x64(True):
        s2 = np.asarray(rf_score(jnp.asarray(2 * A), jnp.asarray(W), jnp.asarray(X[2:3]), act))
    np.testing.assert_allclose(s2[0], 2 * ref[2], rtol=1e-12, atol=1e-14)

