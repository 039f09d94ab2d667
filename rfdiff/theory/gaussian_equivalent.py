"""Gaussian-equivalent samplers of U, V (training set) and Ũ, Ṽ (population): Lemma C.1 (docs/theory.md §4).

``U ≃ G Gᵀ/n + b_t² W Wᵀ/d + s_t² I_p``, ``G = e^{-t} a_t (W/√d) X' + v_t Ω``, X' ∈ R^{d×n}
the training points (columns ~ N(0, Σ)), Ω ∈ R^{p×n} i.i.d. N(0, 1);
``Ũ ≃ (μ_1²/Γ_t²) W Σ_t Wᵀ/d + (s_t² + v_t²) I_p`` with ``Σ_t = e^{-2t} Σ + Δ_t I``;
``V ≃ Ṽ ≃ b_t W/√d``.
For an activation with a non-zero Gaussian mean μ_0 both U and Ũ also get the rank-one spike
``μ_0² 1 1ᵀ`` (one eigenvalue ≈ p μ_0²; it does not change the limiting density).
These are the random matrices whose spectra Theorem 3.1 describes; numpy float64 throughout.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..data import spectrum_eigenvalues
from .._util import check_positive, check_positive_int
from ..dynamics import ExactDynamics
from .constants import constants_with_overrides

__all__ = ["ge_train_matrices", "ge_train_lowrank", "ge_population_matrices", "sample_gaussian_equivalent", "ge_dynamics"]


def _rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _consts(activation, t, sigma_x2, constants):
    k = constants_with_overrides(activation, t, sigma_x2, constants)
    k["b"] = math.sqrt(k["b2"])
    return k


def _ge_factor(W, X, t, activation, seed, sigma_x2, constants):
    """Z = [G/√n, b_t W/√d (, μ_0 1)] with G = √c (W/√d) X' + v_t Ω, so that U = Z Zᵀ + s_t² I (Lemma C.1)."""
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    p, d = W.shape
    n = X.shape[0]
    if X.shape[1] != d:
        raise ValueError(f"X must be (n, {d}), got {X.shape}")
    if sigma_x2 is None:
        sigma_x2 = float(np.mean(X * X))
    k = _consts(activation, t, sigma_x2, constants)
    F = W / math.sqrt(d)
    Om = _rng(seed).standard_normal((p, n))
    G = math.sqrt(k["c"]) * (F @ X.T) + math.sqrt(max(k["v2"], 0.0)) * Om
    cols = [G / math.sqrt(n), k["b"] * F]
    if k.get("mu0", 0.0):
        cols.append(np.full((p, 1), k["mu0"]))
    return np.concatenate(cols, axis=1), k, F


def ge_train_matrices(W, X, t: float, activation="tanh", seed=0, sigma_x2: Optional[float] = None,
                      constants=None):
    """Gaussian-equivalent U (p×p) and V (p×d) of the training set X (n×d), Lemma C.1 (docs/theory.md §4).

    ``sigma_x2`` defaults to ``‖X‖_F²/(n d)``; pass the population value to match the theory.
    ``constants`` optionally overrides GE constants (e.g. ``{"a": 0, "b": 0}`` for pure MP).
    """
    Z, k, F = _ge_factor(W, X, t, activation, seed, sigma_x2, constants)
    U = Z @ Z.T
    U[np.diag_indices(U.shape[0])] += k["s2"]
    return U, k["b"] * F


def ge_train_lowrank(W, X, t: float, activation="tanh", seed=0, sigma_x2: Optional[float] = None,
                     constants=None, vectors: bool = True) -> dict:
    """Lemma C.1 U in low-rank form ``U = Z Zᵀ + s_t² I``, ``Z = [G/√n, b_t W/√d (, μ_0 1)]`` (docs/theory.md §4).

    Returns ``Z`` (p × (n+d)), the non-trivial eigenvalues ``lam`` of U and orthonormal eigenvectors
    ``Q`` (p × k, from the eigendecomposition of ``ZᵀZ``; None with ``vectors=False``),
    ``n_trivial = p − k`` eigenvalues equal
    to ``s2``, ``V = b_t W/√d`` and the constants used. Cost ``O(p (n+d)²)``: no p×p eigensolve.
    """
    Z, k, F = _ge_factor(W, X, t, activation, seed, sigma_x2, constants)
    p = Z.shape[0]
    ZtZ = Z.T @ Z
    if not vectors:
        mu = np.linalg.eigvalsh(ZtZ)
        mu = mu[mu > 1e-12 * max(mu.max(), 1e-300)]
        Q = None
    else:
        mu, S = np.linalg.eigh(ZtZ)
        keep = mu > 1e-12 * max(mu.max(), 1e-300)
        mu, S = mu[keep], S[:, keep]
        Q = (Z @ S) / np.sqrt(mu)
    return {"Z": Z, "lam": mu + k["s2"], "Q": Q, "n_trivial": p - mu.size, "s2": k["s2"], "V": k["b"] * F,
            "constants": k}


def ge_population_matrices(W, t: float, activation="tanh", cov_eigs=None, basis=None, constants=None):
    """Gaussian-equivalent Ũ (p×p) and Ṽ (p×d), Lemma C.1 (docs/theory.md §4), for Σ = O diag(cov_eigs) Oᵀ.

    ``cov_eigs`` defaults to the identity; ``basis`` (d×d orthonormal O) to the identity.
    """
    W = np.asarray(W, dtype=np.float64)
    p, d = W.shape
    lam = np.ones(d) if cov_eigs is None else np.asarray(cov_eigs, dtype=np.float64)
    if lam.shape != (d,):
        raise ValueError(f"cov_eigs must have shape ({d},)")
    k = _consts(activation, t, float(lam.mean()), constants)
    F = W / math.sqrt(d)
    if basis is not None:
        F = F @ np.asarray(basis, dtype=np.float64)
    lam_t = math.exp(-2.0 * t) * lam + k["delta"]
    Ut = (k["mu1"] ** 2 / k["Gamma2"]) * (F * lam_t) @ F.T
    Ut[np.diag_indices(p)] += k["s2"] + k["v2"]
    if k.get("mu0", 0.0):
        Ut += k["mu0"] ** 2
    Vt = k["b"] * (W / math.sqrt(d))
    return Ut, Vt


def sample_gaussian_equivalent(seed, d: int, psi_p: float, psi_n: float, t: float, activation="tanh",
                               atoms=None, population: bool = True, constants=None) -> dict:
    """Draw W, Gaussian data X ~ N(0, diag(λ)) with λ from ``atoms`` and the Lemma C.1 matrices (docs/theory.md §4).

    Returns a dict with ``W, X, U, V`` and (``population=True``) ``Ut, Vt``, plus ``cov_eigs``.
    ``p = round(ψ_p d)``, ``n = round(ψ_n d)``; the atom counts use largest remainders.
    """
    d = check_positive_int("d", d)
    check_positive("psi_p", psi_p)
    check_positive("psi_n", psi_n)
    rng = _rng(seed)
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    if atoms is None:
        lam = np.ones(d)
    else:
        lam = spectrum_eigenvalues(d, atoms=atoms)  # largest-remainder atom counts
    W = rng.standard_normal((p, d))
    X = rng.standard_normal((n, d)) * np.sqrt(lam)
    U, V = ge_train_matrices(W, X, t, activation, seed=rng, sigma_x2=float(lam.mean()), constants=constants)
    out = {"W": W, "X": X, "U": U, "V": V, "cov_eigs": lam, "p": p, "n": n, "d": d}
    if population:
        out["Ut"], out["Vt"] = ge_population_matrices(W, t, activation, cov_eigs=lam, constants=constants)
    return out


def ge_dynamics(W, X, t: float, activation="tanh", seed=0, cov_eigs=None):
    """Exact dynamics of the Gaussian-equivalent model on the same W, X (Lemma C.1; docs/theory.md §4.2).

    ``U = Z Zᵀ + s_t² I`` in low-rank form, ``V = Ṽ = b_t W/√d``, ``Ũ = (μ_1²/Γ_t²) F Σ_t Fᵀ + μ_*² I``
    (F = W/√d, Σ_t = e^{-2t} diag(cov_eigs) + Δ_t I). The modes are the k non-trivial eigenpairs of
    U plus an orthonormal basis of V's component in the s_t² eigenspace (any vector there is an
    eigenvector), so the curves of docs/theory.md §3.2 are exact with O(p (n + 2d)²) work.
    Returns ``(ExactDynamics, eigenvalues)``: the dynamics (no empirical-score term) and all p
    eigenvalues of U (the p − k trivial ones equal to s_t²).
    """
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    p, d = W.shape
    lam_cov = np.ones(d) if cov_eigs is None else np.asarray(cov_eigs, dtype=np.float64)
    lr = ge_train_lowrank(W, X, t, activation, seed=seed, sigma_x2=float(lam_cov.mean()))
    k = lr["constants"]
    Qn, lam, V = lr["Q"], lr["lam"], lr["V"]
    Vperp = V - Qn @ (Qn.T @ V)
    Qp, Rp = np.linalg.qr(Vperp)
    keep = np.abs(np.diag(Rp)) > 1e-12 * max(1.0, float(np.abs(V).max()))
    Q = np.concatenate([Qn, Qp[:, keep]], axis=1)
    lam_all = np.concatenate([lam, np.full(int(keep.sum()), k["s2"])])
    Y = Q.T @ V
    F = W / math.sqrt(d)
    FQ = F.T @ Q                                     # (d, r)
    lam_t = math.exp(-2.0 * t) * lam_cov + k["delta"]
    QUQ = (k["mu1"] ** 2 / k["Gamma2"]) * (FQ.T * lam_t) @ FQ + k["mustar2"] * np.eye(Q.shape[1])
    H = (Y @ Y.T) * QUQ
    g = np.sum(Y * (k["b"] * FQ.T), axis=1)          # diag of Y (Qᵀ Ṽ)ᵀ with Ṽ = b_t F
    fisher = float(np.sum(1.0 / lam_t))
    eig = np.sort(np.concatenate([lam, np.full(p - lam.size, k["s2"])]))
    dyn = ExactDynamics(d, p, float(t), lam_all, Q, Y, H, g, None, fisher, None, 0,
                        {"method": f"Gaussian-equivalent model, exact modes ({Q.shape[1]} of {p})"})
    return dyn, eig
