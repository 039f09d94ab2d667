"""Data models P_0 (docs/theory.md §1), all represented as Gaussian mixtures with a shared eigenbasis.

Isotropic Gaussian, Gaussian with a covariance spectrum, Gaussian mixtures and Gaussian data on
a D-dimensional subspace are all ``GaussianMixture`` objects: component c has weight π_c, mean
μ_c and covariance ``O diag(λ_c) Oᵀ`` with one orthonormal basis O shared by all components.
This gives closed forms for the noised law P_t, its score, and the preactivation moments that
the exact population matrices need.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._util import check_positive, check_positive_int
from .diffusion import delta


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianMixture:
    """P_0 = Σ_c π_c N(μ_c, O diag(λ_c) Oᵀ).

    Attributes:
        weights: (C,) mixture weights, sum 1.
        means: (C, d) centroids μ_c.
        eigvals: (C, d) covariance eigenvalues λ_c (≥ 0) in the basis O.
        basis: (d, d) orthonormal O (columns are eigenvectors), or None for the identity.
        name: short description used in results files.
    """

    weights: np.ndarray
    means: np.ndarray
    eigvals: np.ndarray
    basis: Optional[np.ndarray] = None
    name: str = "gaussian"

    def __post_init__(self):
        w = np.atleast_1d(np.asarray(self.weights, dtype=np.float64))
        mu = np.atleast_2d(np.asarray(self.means, dtype=np.float64))
        lam = np.atleast_2d(np.asarray(self.eigvals, dtype=np.float64))
        if w.ndim != 1 or np.any(~np.isfinite(w)) or np.any(w <= 0):
            raise ValueError("weights must be positive and finite")
        if abs(w.sum() - 1.0) > 1e-9:
            raise ValueError(f"weights must sum to 1, got {w.sum()}")
        if mu.shape != lam.shape or mu.shape[0] != w.shape[0]:
            raise ValueError(f"means {mu.shape} and eigvals {lam.shape} must both be (C={w.shape[0]}, d)")
        if np.any(~np.isfinite(mu)) or np.any(~np.isfinite(lam)):
            raise ValueError("means and eigvals must be finite")
        if np.any(lam < 0):
            raise ValueError("covariance eigenvalues must be >= 0")
        if self.basis is not None:
            O = np.asarray(self.basis, dtype=np.float64)
            d = mu.shape[1]
            if O.shape != (d, d) or not np.allclose(O.T @ O, np.eye(d), atol=1e-8):
                raise ValueError(f"basis must be an orthonormal ({d}, {d}) matrix")
            object.__setattr__(self, "basis", O)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", mu)
        object.__setattr__(self, "eigvals", lam)

    @property
    def d(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]

    @property
    def is_gaussian(self) -> bool:
        """True for a single zero-mean Gaussian (exact Fisher information, Stein cross terms)."""
        return self.n_components == 1 and not np.any(self.means)

    def orthonormal_basis(self) -> np.ndarray:
        """The eigenbasis O of every component's covariance (d, d); the identity when none was given."""
        return np.eye(self.d) if self.basis is None else self.basis

    def covariance(self) -> np.ndarray:
        """Total covariance Σ of P_0 (d, d)."""
        O = self.orthonormal_basis()
        mbar = self.weights @ self.means
        S = sum(wc * ((O * lc) @ O.T + np.outer(mc, mc)) for wc, mc, lc in zip(self.weights, self.means, self.eigvals))
        return S - np.outer(mbar, mbar)

    @property
    def sigma_x2(self) -> float:
        """σ_x² = Tr Σ / d (docs/theory.md §1)."""
        return float(np.trace(self.covariance()) / self.d)

    def sample(self, key: jax.Array, n: int, return_labels: bool = False):
        """Draw n samples (n, d) from P_0 (and their component labels on request), float64 numpy arrays.

        The draw is made in float64 whatever the global JAX setting, so a key gives the same points everywhere.
        """
        n = check_positive_int("n", n)
        with jax.enable_x64(True):
            kc, kz = jax.random.split(key)
            if self.n_components == 1:          # every label is 0 (the same draws as choosing among one class)
                labels = np.zeros(n, dtype=np.int32)
            else:
                labels = np.asarray(jax.random.choice(kc, self.n_components, (n,), p=jnp.asarray(self.weights)))
            z = np.asarray(jax.random.normal(kz, (n, self.d), dtype=jnp.float64))
        x = z * np.sqrt(self.eigvals[labels])
        if self.basis is not None:
            x = x @ self.basis.T
        x = x + self.means[labels]
        return (x, labels) if return_labels else x

    def noised(self, t: float) -> "GaussianMixture":
        """The noised law P_t (docs/theory.md §1): means e^{-t}μ_c, eigenvalues e^{-2t}λ_c + Δ_t."""
        dt = delta(t)
        return dataclasses.replace(self, means=math.exp(-t) * self.means,
                                   eigvals=math.exp(-2 * t) * self.eigvals + dt, name=f"{self.name}@t={t:g}")

    def score(self, y: jnp.ndarray) -> jnp.ndarray:
        """∇ log P(y) for y of shape (N, d) (closed form; P must have full-rank components)."""
        y = jnp.asarray(y)
        if np.any(self.eigvals <= 0):
            raise ValueError("score needs positive covariance eigenvalues (use .noised(t) first)")
        O = jnp.asarray(self.orthonormal_basis())
        yo = y @ O                                   # coordinates in the eigenbasis
        mo = jnp.asarray(self.means) @ O             # (C, d)
        lam = jnp.asarray(self.eigvals)              # (C, d)
        diff = yo[:, None, :] - mo[None]             # (N, C, d)
        logp = (jnp.log(jnp.asarray(self.weights)) - 0.5 * jnp.sum(jnp.log(lam), axis=1)
                - 0.5 * jnp.sum(diff**2 / lam, axis=2))
        resp = jax.nn.softmax(logp, axis=1)          # posterior over components
        grad_o = -jnp.einsum("nc,ncd->nd", resp, diff / lam)
        return grad_o @ O.T

    def fisher_information(self, key: Optional[jax.Array] = None, n_mc: int = 20000) -> tuple[float, float]:
        """J = E‖∇log P(y)‖² with its standard error (exact, error 0, for one Gaussian; Monte Carlo otherwise)."""
        if self.n_components == 1:
            return float(np.sum(1.0 / self.eigvals[0])), 0.0
        if key is None:
            raise ValueError("fisher_information of a mixture needs a PRNG key (Monte Carlo)")
        y = self.sample(key, n_mc)
        sq = np.asarray(jnp.sum(self.score(y) ** 2, axis=1))
        return float(sq.mean()), float(sq.std(ddof=1) / math.sqrt(n_mc))

    def preactivation_moments(self, W) -> tuple[np.ndarray, np.ndarray]:
        """Per component, mean ``W μ_c/√d`` (C, p) and covariance factor ``F_c = W O diag(√λ_c)/√d`` (C, p, d); float64."""
        W = np.asarray(W, dtype=np.float64)
        sd = math.sqrt(self.d)
        WO = W @ self.orthonormal_basis() / sd
        means = self.means @ W.T / sd
        factors = WO[None] * np.sqrt(self.eigvals)[:, None, :]
        return means, factors

    def describe(self) -> dict:
        """JSON-able summary."""
        return {"name": self.name, "d": self.d, "n_components": self.n_components,
                "weights": self.weights.tolist(), "sigma_x2": self.sigma_x2,
                "mean_norms": np.linalg.norm(self.means, axis=1).tolist(),
                "eigval_mean_per_component": self.eigvals.mean(axis=1).tolist()}


def _random_basis(key, d):
    q, r = np.linalg.qr(np.asarray(jax.random.normal(key, (d, d), dtype=jnp.float32), dtype=np.float64))
    return q * np.sign(np.diag(r))


def _basis_from(basis: str, key, d):
    if basis == "axis":
        return None
    if basis == "random":
        if key is None:
            raise ValueError("basis='random' needs a PRNG key")
        return _random_basis(key, d)
    raise ValueError(f"basis must be 'axis' or 'random', got {basis!r}")


def isotropic(d: int, sigma_x: float = 1.0) -> GaussianMixture:
    """N(0, σ_x² I_d)."""
    d = check_positive_int("d", d)
    s = check_positive("sigma_x", sigma_x)
    return GaussianMixture(np.ones(1), np.zeros((1, d)), np.full((1, d), s * s), name=f"isotropic(sigma_x={s:g})")


def spectrum_eigenvalues(d: int, atoms: Optional[Sequence[tuple[float, float]]] = None,
                         power_law: Optional[float] = None, eigenvalues: Optional[Sequence[float]] = None,
                         sigma_x: float = 1.0) -> np.ndarray:
    """Eigenvalues of Σ for a spectrum given as atoms [(λ, weight)], a power law λ_k ∝ k^{-α} (scaled to Tr Σ/d = σ_x²), or explicitly."""
    d = check_positive_int("d", d)
    given = [x is not None for x in (atoms, power_law, eigenvalues)]
    if sum(given) != 1:
        raise ValueError("give exactly one of atoms, power_law, eigenvalues")
    if eigenvalues is not None:
        lam = np.asarray(eigenvalues, dtype=np.float64)
        if lam.shape != (d,):
            raise ValueError(f"eigenvalues must have shape ({d},), got {lam.shape}")
    elif atoms is not None:
        vals = np.array([a[0] for a in atoms], dtype=np.float64)
        wts = np.array([a[1] for a in atoms], dtype=np.float64)
        if np.any(wts <= 0) or abs(wts.sum() - 1) > 1e-9:
            raise ValueError("atom weights must be positive and sum to 1")
        counts = np.floor(wts * d).astype(int)
        counts[np.argsort(-(wts * d - counts))[: d - counts.sum()]] += 1  # largest remainders
        lam = np.repeat(vals, counts)
    else:
        alpha = float(power_law)
        if not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"power_law exponent must be finite and >= 0, got {power_law!r}")
        lam = np.arange(1, d + 1, dtype=np.float64) ** (-alpha)
        lam *= sigma_x**2 / lam.mean()
    if np.any(~np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError("covariance eigenvalues must be finite and >= 0")
    return lam


def gaussian_spectrum(d: int, atoms=None, power_law=None, eigenvalues=None, sigma_x: float = 1.0,
                      basis: str = "axis", key: Optional[jax.Array] = None) -> GaussianMixture:
    """N(0, Σ) with Σ's spectrum from :func:`spectrum_eigenvalues`, eigenbasis axis-aligned or random."""
    lam = spectrum_eigenvalues(d, atoms, power_law, eigenvalues, sigma_x)
    return GaussianMixture(np.ones(1), np.zeros((1, d)), lam[None], _basis_from(basis, key, d),
                           name="gaussian_spectrum")


def mixture(weights: Sequence[float], means, variances) -> GaussianMixture:
    """Σ_c π_c N(μ_c, v_c I): per-class weights, centroids (C, d) and isotropic variances (C,)."""
    mu = np.atleast_2d(np.asarray(means, dtype=np.float64))
    v = np.asarray(variances, dtype=np.float64).reshape(-1)
    if v.shape[0] != mu.shape[0]:
        raise ValueError(f"variances has {v.shape[0]} entries for {mu.shape[0]} centroids")
    if np.any(v <= 0):
        raise ValueError("variances must be > 0")
    return GaussianMixture(np.asarray(weights, dtype=np.float64), mu, np.repeat(v[:, None], mu.shape[1], axis=1),
                           name=f"mixture(C={mu.shape[0]})")


def two_class_mixture(d: int, mu_norm: float = 1.0, variance: float = 1.0) -> GaussianMixture:
    """½N(μ, vI) + ½N(-μ, vI) with μ = mu_norm · e_1."""
    d = check_positive_int("d", d)
    mu = np.zeros(d)
    mu[0] = mu_norm
    return mixture([0.5, 0.5], np.stack([mu, -mu]), [variance, variance])


def subspace(d: int, D: int, sigma: float = 1.0, basis: str = "random", key: Optional[jax.Array] = None) -> GaussianMixture:
    """Gaussian with variance σ² on a D-dimensional linear subspace of R^d (zero elsewhere)."""
    d = check_positive_int("d", d)
    D = check_positive_int("D", D)
    if D > d:
        raise ValueError(f"D must be <= d, got D={D}, d={d}")
    s = check_positive("sigma", sigma)
    lam = np.zeros(d)
    lam[:D] = s * s
    return GaussianMixture(np.ones(1), np.zeros((1, d)), lam[None], _basis_from(basis, key, d), name=f"subspace(D={D})")
