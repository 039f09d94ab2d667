"""Finite-d theory of the train loss: the deterministic equivalent conditional on the training set (docs/theory.md §8).

Given the training set X (n × d), the p features are i.i.d. over the rows w_i of W. Keeping the
Mehler orders ℓ ≤ 1 of the noise (the mean feature and the noise-linear feature of every point)
exactly and the orders ℓ ≥ 2 as a nugget η, each feature is a vector z_i ∈ R^{n(1+d)} and

    U ≃ Z Zᵀ + diag(η_i),     V = Z S,     Z = [z_1, …, z_p]ᵀ,

with S the d columns that average the noise-linear block over the points and the orders ℓ ≥ 2 a
diagonal nugget (one value, or resolved over the neuron norms ‖w_i‖²/d) (docs/theory.md §8.2).
The second moment K = E_w z zᵀ is built in closed form from the n × n Gram matrix of X
(Hermite orders of x_ν·x_ν'/d, every point with its own norm; Stein's lemma for the noise-linear
blocks), and the first-order (Marchenko–Pastur) deterministic equivalent of the Gram matrix of p
i.i.d. rows with second moment K gives (docs/theory.md §8.3)

    g(z) = (1/d) Tr Vᵀ(U − z)⁻¹V ≃ 1 − (1/d) Σ_j β_j/(1 + m κ_j),
    m = p Σ_r ω_r/(η_r − z + θ),   θ = Σ_j κ_j/(1 + m κ_j),

with κ_j, e_j the eigenpairs of K and β_j = ‖Sᵀe_j‖². Then L_train(∞) = 1 − g(0) and the whole
gradient-flow curve ``L_train(τ) = L_train(∞) + ∫ e^{−4Δ_tλτ/ψ_p}/λ dμ(λ)`` follows by numerical
Laplace inversion (fixed Talbot contour) of ``[g(0) − g(−w)]/w``. The cost is one symmetric
eigendecomposition of size n(d+1) per training set, independent of p; L_train(∞) alone takes the
eigenvalues and one Cholesky factorisation (:func:`train_loss_inf_de`, docs/theory.md §8.6).

:func:`predict_finite_d` (also ``rfdiff.predict(..., d=d, finite_d=True)``) averages this over draws of X
and returns an :class:`rfdiff.results.Prediction` whose train loss is this finite-d prediction and whose
spectrum, test loss and score error are those of the norm-spread-corrected Theorem 3.1 (docs/theory.md
§4.5, §4.7), as labelled in ``diagnostics["finite_d_method"]`` and ``curves.method``.
:func:`finite_d_column` gives the same as one column of values with their sources, NaN (with the size and
the estimated cost, :func:`kernel_cost`) where the kernel is too large to compute.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Optional, Sequence

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .._util import check_positive, check_positive_int
from ..activations import get_activation
from ..results import Curves, Prediction
from .spectrum import sample_norm_types

__all__ = ["ConditionalKernel", "kernel_matrix", "conditional_kernel", "train_loss_inf_de", "nugget",
           "gaussian_equivalent_kernel", "train_loss_de", "predict_finite_d", "finite_d_column", "finite_d_sources", "ColumnValue", "COLUMN_QUANTITIES", "kernel_cost", "SECONDS_PER_N3",
           "MAX_DIM_CURVES", "MAX_DIM_INF"]

MAX_DIM_CURVES = 5000
"""Largest kernel size n(d+1) whose eigenpairs (the whole curve) are computed by default (docs/theory.md §8.6)."""

MAX_DIM_INF = 4500
"""Largest kernel size n(d+1) of the τ → ∞ route (:func:`train_loss_inf_de`) computed by default: about 20 s per
training set on one core of the reference machine (docs/theory.md §8.6)."""


@dataclasses.dataclass(frozen=True)
class ConditionalKernel:
    """Spectrum of the conditional second moment K of the ℓ ≤ 1 features (docs/theory.md §8.2).

    ``kappa`` eigenvalues of K (clipped at 0), ``beta`` = ‖Sᵀe_j‖² (sum d), ``eta`` the nugget of
    the Mehler orders ℓ ≥ 2 per neuron-norm type and ``eta_weights`` the types' probabilities (one
    type when the neuron norms are not resolved), ``d``, ``n``, ``t``.
    """
    kappa: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    eta_weights: np.ndarray
    d: int
    n: int
    t: float


def _hermite(k: int, z: np.ndarray) -> np.ndarray:
    h0, h1 = np.ones_like(z), z
    if k == 0:
        return h0
    for j in range(1, k):
        h0, h1 = h1, z * h1 - j * h0
    return h1


def _smoothed(act, K: int, m: np.ndarray, s, zq, wq):
    """g_k(m, s) = E σ^{(k)}(m + s z), k = 0..K, and E σ(m + s z)² (docs/theory.md §2.4)."""
    m = np.asarray(m, dtype=np.float64)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), m.shape)
    vals = act.numpy(m[..., None] + s[..., None] * zq)
    g = np.stack([(vals * _hermite(k, zq)) @ wq / s ** k for k in range(K + 1)])
    return g, (vals * vals) @ wq


def nugget(X, t: float, activation="tanh", neuron_types: int = 16, quad_order: int = 96):
    """Nugget of the Mehler orders ℓ ≥ 2 per neuron-norm type (docs/theory.md §8.2): (η_r, ω_r).

    η(r) = (1/n) Σ_ν E_m[E_z σ(m + s z)² − g_0(m, s)² − s² g_1(m, s)²], m ~ N(0, e^{−2t}‖x_ν‖²/d), s² = Δ_t r,
    at ``neuron_types`` generalised Gauss–Laguerre nodes r of the law χ²_d/d of ‖w‖²/d (0: r = 1 only).
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    act = get_activation(activation)
    zq, wq = hermegauss(check_positive_int("quad_order", quad_order))
    wq = wq / wq.sum()
    dl = -math.expm1(-2.0 * t)
    al = math.exp(-t) * np.sqrt(np.sum(X * X, axis=1) / d)
    if neuron_types:   # ‖w‖²/d ~ χ²_d/d: the Gamma law of the data-norm types of §4.5 with an isotropic Σ
        r, wr = sample_norm_types(d, np.ones(1), np.ones(1), check_positive_int("neuron_types", neuron_types))
    else:
        r, wr = np.ones(1), np.ones(1)
    eta = np.empty(r.size)
    for i, ri in enumerate(r):
        sr = math.sqrt(dl * ri)
        g, m2 = _smoothed(act, 1, al[:, None] * zq[None, :], sr, zq, wq)
        eta[i] = np.mean((m2 - g[0] ** 2 - sr * sr * g[1] ** 2) @ wq)
    return eta, wr


def _check_X(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not np.all(np.isfinite(X)):
        raise ValueError(f"X must be a finite (n, d) array, got shape {X.shape}")
    return X


def kernel_matrix(X, t: float, activation="tanh", hermite_order: int = 12, quad_order: int = 96) -> np.ndarray:
    """The dense second moment K (size n(d+1)) of the ℓ ≤ 1 feature vectors given X (docs/theory.md §8.2).

    With x̃_ν = e^{−t}x_ν, m_ν = w·x̃_ν/√d, s = √Δ_t and A_kl[ν,ν'] = E_w g_k(m_ν, s) g_l(m_ν', s)
    (Mehler series in ρ = x̃_ν·x̃_ν'/d off the diagonal, quadrature on it):
    K_00 = A_00/n, K_01 = √Δ_t (A_11 x̃_ν + A_02 x̃_ν')/(nd) and
    K_11 = Δ_t [A_11 δ_ab + (A_31 x̃_νa x̃_νb + A_22 (x̃_νa x̃_ν'b + x̃_ν'a x̃_νb) + A_13 x̃_ν'a x̃_ν'b)/d]/(nd).
    Built in place, point by point (memory: K itself plus O(n d²)).
    """
    X = _check_X(X)
    check_positive("t", t)
    J = check_positive_int("hermite_order", hermite_order)
    act = get_activation(activation)
    n, d = X.shape
    zq, wq = hermegauss(check_positive_int("quad_order", quad_order))
    wq = wq / wq.sum()
    dl = -math.expm1(-2.0 * t)
    s = math.sqrt(dl)
    xt = math.exp(-t) * X
    al2 = np.sum(xt * xt, axis=1) / d
    gam, _ = _smoothed(act, J + 3, np.zeros(n), np.sqrt(al2 + dl), zq, wq)   # E σ^{(k)}(Γ_ν z)
    rho = xt @ xt.T / d
    fact = np.cumprod(np.concatenate([[1.0], np.arange(1, J + 1)]))
    gd, _ = _smoothed(act, 3, np.sqrt(al2)[:, None] * zq[None, :], s, zq, wq)   # g_k(m, s), m ~ N(0, α_ν²)
    A = {}
    for k, l in [(0, 0), (1, 1), (0, 2), (3, 1), (1, 3), (2, 2)]:
        a = sum(np.outer(gam[k + j], gam[l + j]) * rho ** j / fact[j] for j in range(J + 1))
        a[np.diag_indices(n)] = (gd[k] * gd[l]) @ wq
        A[k, l] = a
    D1 = n * d
    K = np.empty((n + D1, n + D1))
    K[:n, :n] = A[0, 0] / n
    K01 = (A[1, 1][:, :, None] * xt[:, None, :] + A[0, 2][:, :, None] * xt[None, :, :]) * (s / (n * d))
    K[:n, n:] = K01.reshape(n, D1)
    K[n:, :n] = K[:n, n:].T
    del K01
    c1, eye = dl / (n * d), np.eye(d)
    K11 = K[n:, n:].reshape(n, d, n, d)
    for u in range(n):                        # block row ν = u: the d × (n d) slab
        xu = xt[u]
        blk = A[1, 1][u][None, :, None] * eye[:, None, :]
        blk += (A[3, 1][u][None, :, None] * np.outer(xu, xu)[:, None, :]
                + A[2, 2][u][None, :, None] * (xu[:, None, None] * xt[None, :, :]
                                                + xt.T[:, :, None] * xu[None, None, :])
                + A[1, 3][u][None, :, None] * (xt.T[:, :, None] * xt[None, :, :])) / d
        K11[u] = blk * c1
    return K


def conditional_kernel(X, t: float, activation="tanh", hermite_order: int = 12, quad_order: int = 96,
                       neuron_types: int = 16) -> ConditionalKernel:
    """Spectrum of the second moment K of the ℓ ≤ 1 feature vectors given the training set X (docs/theory.md §8.2).

    K is :func:`kernel_matrix`; its eigenpairs (κ_j, e_j) give β_j = ‖Sᵀe_j‖², S = (0 ⊕ 1_n ⊗ I_d)/√n.
    The nugget η(r) = ⟨E σ² − g_0² − s² g_1²⟩_ν at s² = Δ_t r is resolved over the neuron norms
    r = ‖w‖²/d ~ χ²_d/d by ``neuron_types`` generalised Gauss–Laguerre nodes (0: one type, r = 1).
    Cost: one symmetric eigendecomposition of size n(d+1).
    """
    X = _check_X(X)
    n, d = X.shape
    K = kernel_matrix(X, t, activation, hermite_order, quad_order)
    eta, wr = nugget(X, t, activation, neuron_types, quad_order)
    kappa, E = np.linalg.eigh(K)
    del K
    beta = np.sum(E[n:].reshape(n, d, -1).sum(axis=0) ** 2, axis=0) / n        # ‖Sᵀe_j‖², S = (1_n ⊗ I_d)/√n
    return ConditionalKernel(np.clip(kappa, 0.0, None), beta, eta, wr, d, n, float(t))


def train_loss_inf_de(X, t: float, p: int, activation="tanh", hermite_order: int = 12, quad_order: int = 96,
                      neuron_types=16):
    """L_train(∞) = 1 − g(0) of docs/theory.md §8.3 without eigenvectors: eigenvalues of K, then one Cholesky solve.

    θ solves θ = Σ_j κ_j/(1 + m κ_j), m = p Σ_r ω_r/(η_r + θ) (eigenvalues κ_j of K only), and
    L_train(∞) = (1/d) Tr Sᵀ(I + m K)⁻¹S by a Cholesky factorisation of I + m K with the d columns of S:
    one eigenvalue-only decomposition and one Cholesky factorisation of size n(d+1), against the eigenpairs
    of :func:`conditional_kernel`. Equal to ``train_loss_de([inf], conditional_kernel(...), p)`` up to rounding.
    ``neuron_types``: an int (returns a float), or a sequence of them (returns a tuple, one value per
    nugget, sharing the eigenvalues of K).
    """
    import scipy.linalg
    X = _check_X(X)
    p = check_positive_int("p", p)
    many = not isinstance(neuron_types, (int, np.integer))
    types = tuple(neuron_types) if many else (neuron_types,)
    n, d = X.shape
    nuggets = [nugget(X, t, activation, k, quad_order) for k in types]
    K = kernel_matrix(X, t, activation, hermite_order, quad_order)
    raw = scipy.linalg.eigvalsh(K, overwrite_a=True, check_finite=False)
    kappa = np.clip(raw, 0.0, None)
    S = np.zeros((n * (d + 1), d))
    S[n:] = np.tile(np.eye(d), (n, 1)) / math.sqrt(n)
    out = []
    for eta, wr in nuggets:
        kc = ConditionalKernel(kappa, np.zeros(0), eta, wr, d, n, float(t))
        m = float(_m(kc, p, np.zeros(1), _solve_theta(kc, p, np.zeros(1)))[0][0].real)
        if m * max(0.0, -raw[0]) > 1e-12:
            # K is not positive semi-definite beyond rounding (seen at d ≤ 8, docs/theory.md §8.6): the
            # eigenpair route, which clips the negative κ_j, is the definition; take it
            kp = conditional_kernel(X, t, activation, hermite_order, quad_order, neuron_types=0)
            out.append(float(train_loss_de([np.inf], dataclasses.replace(kp, eta=eta, eta_weights=wr), p)[0]))
            continue
        K = kernel_matrix(X, t, activation, hermite_order, quad_order)   # rebuilt, not copied: memory N², not 2N²
        K *= m
        K[np.diag_indices_from(K)] += 1.0
        cf = scipy.linalg.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)
        out.append(float(np.sum(S * scipy.linalg.cho_solve(cf, S, check_finite=False))) / d)
        del K, cf
    return tuple(out) if many else out[0]


def gaussian_equivalent_kernel(X, t: float, activation="tanh", sigma_x2: Optional[float] = None) -> ConditionalKernel:
    """The d → ∞ reduction of :func:`conditional_kernel`: rows of Lemma C.1 (docs/theory.md §4.2, §8.4).

    z_i = [G_i/√n, b_t f_i] with G = √c F X' + v_t Ω has second moment
    K = [[(c XXᵀ/d + v_t² I)/n, √c b_t X/(d√n)], [·, b_t² I_d/d]], nugget s_t² and V = b_t F (β from the last d
    coordinates); with it the deterministic equivalent of §8.3 is the one-resolvent equivalent of §4.7,
    whose train loss is Theorem 3.1's (§4.6).
    """
    from .constants import ge_constants
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    k = ge_constants(activation, t, float(np.mean(X * X)) if sigma_x2 is None else sigma_x2)
    c, b = k.c, math.sqrt(k.b2)
    K = np.zeros((n + d, n + d))
    K[:n, :n] = (c * X @ X.T / d + k.v2 * np.eye(n)) / n
    K[:n, n:] = math.sqrt(c) * b * X / (d * math.sqrt(n))
    K[n:, :n] = K[:n, n:].T
    K[n:, n:] = b * b * np.eye(d) / d
    kappa, E = np.linalg.eigh(K)
    beta = np.sum(E[n:] ** 2, axis=0)
    return ConditionalKernel(np.clip(kappa, 0.0, None), beta, np.array([k.s2]), np.ones(1), d, n, float(t))


def _m(kc: ConditionalKernel, p: int, z, theta):
    """m = p Σ_r ω_r/(η_r − z + θ) and dm/dθ (docs/theory.md §8.3)."""
    den = kc.eta - z[..., None] + theta[..., None]
    return p * (kc.eta_weights / den).sum(-1), -p * (kc.eta_weights / den ** 2).sum(-1)


def _solve_theta(kc: ConditionalKernel, p: int, z: np.ndarray, th0: Optional[np.ndarray] = None) -> np.ndarray:
    """θ(z) = Σ_j κ_j/(1 + m κ_j), m = p Σ_r ω_r/(η_r − z + θ) (docs/theory.md §8.3): bisection for real z below the spectrum, else Newton."""
    z = np.asarray(z, dtype=np.complex128)
    k = kc.kappa
    if th0 is None:
        lo, hi = np.zeros(z.shape), np.full(z.shape, k.sum())
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            m, _ = _m(kc, p, z.real, mid)
            f = mid - (k / (1.0 + m[..., None] * k)).sum(-1)
            lo, hi = np.where(f < 0, mid, lo), np.where(f < 0, hi, mid)
            if np.all(hi - lo <= 1e-15 * hi):
                break
        return (0.5 * (lo + hi)).astype(np.complex128)
    th = np.asarray(th0, dtype=np.complex128)
    for _ in range(60):
        m, dm = _m(kc, p, z, th)
        den = 1.0 + m[..., None] * k
        f = th - (k / den).sum(-1)
        fp = 1.0 + dm * (k * k / den ** 2).sum(-1)
        step = f / fp
        th = th - step
        if np.all(np.abs(step) <= 1e-14 * np.abs(th)):
            break
    return th


def _g(kc: ConditionalKernel, p: int, z: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """g(z) = (1/d) Tr Vᵀ(U − z)⁻¹V ≃ 1 − (1/d) Σ_j β_j/(1 + m(z) κ_j) (docs/theory.md §8.3)."""
    m, _ = _m(kc, p, z, theta)
    return 1.0 - (kc.beta / (1.0 + m[..., None] * kc.kappa)).sum(-1) / kc.d


def train_loss_de(taus, kc: ConditionalKernel, p: int, talbot_nodes: int = 32, substeps: int = 8) -> np.ndarray:
    """Deterministic-equivalent L_train(τ) = 1 − g(0) + ∫ e^{−cλ}/λ dμ(λ), c = 4Δ_tτ/ψ_p (docs/theory.md §8.3).

    The integral is the inverse Laplace transform of F(w) = [g(0) − g(−w)]/w at c, by the fixed
    Talbot contour with ``talbot_nodes`` nodes; δ is continued along the contour from its real
    starting point in ``substeps`` Newton sub-steps per node. ``taus`` may contain 0 and ``np.inf``.
    """
    p = check_positive_int("p", p)
    taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    if taus.ndim != 1 or np.any(np.isnan(taus)) or np.any(taus < 0):
        raise ValueError("taus must be a 1-d array of values >= 0")
    dl = -math.expm1(-2.0 * kc.t)
    psi_p = p / kc.d
    z0 = np.zeros(1)
    g0 = float(_g(kc, p, z0 + 0j, _solve_theta(kc, p, z0)).real[0])
    out = np.full(taus.shape, 1.0 - g0)
    fin = np.isfinite(taus) & (taus > 0)
    out[taus == 0] = 1.0
    if not np.any(fin):
        return out
    c = 4.0 * dl * taus[fin] / psi_p
    M = check_positive_int("talbot_nodes", talbot_nodes)
    r = 2.0 * M / (5.0 * c)
    x = _solve_theta(kc, p, -r)
    F0 = (g0 - _g(kc, p, -r + 0j, x)) / r
    acc = 0.5 * np.real(F0) * np.exp(r * c)
    th_prev = 0.0
    for k in range(1, M):
        th = k * math.pi / M
        for th_s in np.linspace(th_prev, th, substeps + 1)[1:]:
            w = r * th_s * (1.0 / math.tan(th_s) + 1j)
            x = _solve_theta(kc, p, -w, x)
        th_prev = th
        cot = 1.0 / math.tan(th)
        sig = th + (th * cot - 1.0) * cot
        F = (g0 - _g(kc, p, -w, x)) / w
        acc += np.real(np.exp(c * w) * F * (1.0 + 1j * sig))
    out[fin] = 1.0 - g0 + (r / M) * acc
    return out


def kernel_cost(n: int, d: int) -> dict:
    """Estimated cost of one training set's §8 kernel of size N = n(d+1) (docs/theory.md §8.3): seconds and GiB.

    ``seconds_inf`` (τ → ∞, :func:`train_loss_inf_de`) and ``seconds_curves`` (eigenpairs,
    :func:`conditional_kernel`) are c·N³ with c measured on one core of the reference 2-core machine
    (:data:`SECONDS_PER_N3`); ``gib`` is the memory of K (8 N² bytes).
    """
    N = check_positive_int("n", n) * (check_positive_int("d", d) + 1)
    return {"N": N, "seconds_inf": SECONDS_PER_N3["inf"] * N ** 3, "seconds_curves": SECONDS_PER_N3["curves"] * N ** 3,
            "gib": 8.0 * N * N / 2 ** 30}


SECONDS_PER_N3 = {"inf": 2.3e-10, "curves": 3.6e-10}
"""Measured seconds per N³ (N = n(d+1)) of the two §8 routes, one OpenBLAS thread on the shared reference machine
(docs/theory.md §8.6); a loaded machine is slower (up to 3× measured)."""


def _unaffordable(n: int, d: int, limit: int) -> str:
    c = kernel_cost(n, d)
    return (f"not computed: the §8 kernel has size n(d+1) = {c['N']} > {limit} (estimated {c['seconds_inf']:.3g} s "
            f"per training set for τ → ∞ on one core, {c['gib']:.3g} GiB)")


def predict_finite_d(activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 8.0, d: int = 32,
                     sigma_x2: float = 1.0, taus=None, seeds: Sequence[int] = (0, 1, 2, 3, 4), X_list=None,
                     test_loss: bool = True, hermite_order: int = 12, neuron_types: int = 16,
                     max_dim: Optional[int] = None, max_dim_inf: Optional[int] = None) -> Prediction:
    """Finite-d prediction at the model's own d: train loss by the conditional kernel deterministic equivalent (docs/theory.md §8).

    ``L_train`` (curve and τ → ∞) is averaged over training sets X ~ N(0, σ_x² I_d)^n drawn from
    ``seeds`` (``numpy.random.default_rng(seed)``), or over the given ``X_list``. A curve (finite τ in
    ``taus``) costs one eigendecomposition of size n(d+1) ≤ ``max_dim`` (default :data:`MAX_DIM_CURVES`)
    per training set; τ → ∞ alone the cheaper :func:`train_loss_inf_de`, n(d+1) ≤ ``max_dim_inf``
    (default :data:`MAX_DIM_INF`); larger sizes are a ValueError. ``neuron_types`` = 0 uses one nugget.
    The spectrum, memorisation edge, test loss and score error are those of :func:`rfdiff.theory.predict`
    with the norm-spread correction at this d (docs/theory.md §4.5; the test loss and score error by the
    d → ∞ equations of §4.7). ``gen_gap`` is left None: a test loss at d → ∞ minus a finite-d train loss
    is not a finite-d gap, so τ_mem is not predicted here (docs/theory.md §8.5). Which quantity comes
    from where is in ``diagnostics["finite_d_method"]`` (and ``curves.method``). Isotropic data only.
    """
    from .curves import predict      # the d → ∞ / norm-corrected theory supplies every non-train quantity

    d = check_positive_int("d", d)
    check_positive("psi_p", psi_p)
    check_positive("psi_n", psi_n)
    check_positive("sigma_x2", sigma_x2)
    max_dim = MAX_DIM_CURVES if max_dim is None else check_positive_int("max_dim", max_dim)
    max_dim_inf = MAX_DIM_INF if max_dim_inf is None else check_positive_int("max_dim_inf", max_dim_inf)
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    grid = np.array([np.inf]) if taus is None else np.atleast_1d(np.asarray(taus, dtype=np.float64))
    need_curve = bool(np.any(np.isfinite(grid)))
    limit = max_dim if need_curve else max(max_dim, max_dim_inf)
    if n * (d + 1) > limit:
        raise ValueError(f"d: the conditional kernel has size n(d+1) = {n * (d + 1)} > "
                         f"{'max_dim' if need_curve else 'max_dim_inf'} = {limit}")
    if X_list is None:
        X_list = [math.sqrt(sigma_x2) * np.random.default_rng(s).standard_normal((n, d)) for s in seeds]
    if len(X_list) == 0:
        raise ValueError("seeds: at least one training set is needed")
    trains = []
    for X in X_list:
        X = np.asarray(X, dtype=np.float64)
        if X.shape != (n, d):
            raise ValueError(f"X_list: each X must be ({n}, {d}), got {X.shape}")
        if need_curve:
            kc = conditional_kernel(X, t, activation, hermite_order, neuron_types=neuron_types)
            trains.append(train_loss_de(np.append(grid, np.inf), kc, p))
        else:
            v = train_loss_inf_de(X, t, p, activation, hermite_order, neuron_types=neuron_types)
            trains.append(np.full(grid.size + 1, v))
    trains = np.asarray(trains)
    train, train_inf = trains[:, :-1].mean(0), float(trains[:, -1].mean())
    base = predict(activation, t, psi_p, psi_n, sigma_x2=sigma_x2, taus=taus, test_loss=test_loss, d=d)
    src = finite_d_sources(len(X_list))
    diag = dict(base.diagnostics)
    diag.update(train_loss_inf_seeds=trains[:, -1].tolist(), train_loss_inf_norm_corrected=base.train_loss_inf,
                n_training_sets=len(X_list), finite_d_method=src)
    curves = None
    if taus is not None:
        bc = base.curves
        test = bc.test_loss
        method = "finite-d theory: train_loss: " + src["train_loss_inf"] + "; other curves: " + bc.method
        curves = Curves(grid, train, test, None, bc.score_error, None,
                        {"train_loss_norm_corrected": bc.train_loss}, method=method)
    return dataclasses.replace(base, train_loss_inf=train_inf, curves=curves, diagnostics=diag)


def finite_d_sources(n_sets: int) -> dict:
    """Where each quantity of a finite-d prediction comes from (docs/theory.md §4.5, §4.7, §8): a label per quantity."""
    nc = "norm-corrected Theorem 3.1 at this d (docs/theory.md §4.5)"
    return {"train_loss_inf": f"conditional kernel deterministic equivalent (docs/theory.md §8), mean over {n_sets} "
                              "training sets",
            "lambda_mem": nc + ", spectral quantile 1 − n/p + 1/(2p) (§6.2)",
            "lambda_mem_upper": nc + ", spectral quantile 1 − d/p − 1/(2p) (§6.2)",
            "lambda_pop": nc + ", spectral quantile 1 − d/p + 1/(2p) (§6.2)",
            "tau_mem_spectral": nc + ", ψ_p/(Δ_t λ_mem) (§6.2)",
            "tau_gen_spectral": nc + ", ψ_p/(Δ_t λ_pop) (§6.2)",
            "spectrum": nc,
            "test_loss_inf": "d → ∞ deterministic equivalent (docs/theory.md §4.7): no finite-d test loss (§8.5)",
            "score_error": "d → ∞ deterministic equivalent (docs/theory.md §4.7): no finite-d score error (§8.5)"}


class ColumnValue(NamedTuple):
    """One entry of the finite-d column: ``value`` (NaN where not predicted or not affordable) and its ``source``.

    Immutable; unpacks as ``value, source = column[q]`` (a pair, as a report row takes it).
    """

    value: float
    source: str


COLUMN_QUANTITIES = ("train_loss_inf", "test_loss_inf", "min_score_error", "tau_gen", "tau_mem", "lambda_mem",
                     "lambda_mem_upper", "lambda_pop", "tau_mem_spectral", "tau_gen_spectral")
"""The quantities of :func:`finite_d_column` (the report's ladder quantities and the spectral rows)."""


def finite_d_column(activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 4.0, d: int = 32,
                    seeds: Sequence[int] = (0, 1, 2), sigma_x2: float = 1.0, neuron_types: int = 16,
                    max_dim: Optional[int] = None) -> dict:
    """The finite-d prediction at (ψ_p, ψ_n, t, d) as a report column: ``{quantity: ColumnValue}`` (docs/theory.md §8, §4.5).

    ``train_loss_inf``: the §8 equivalent (:func:`train_loss_inf_de`), mean over the training sets of
    ``seeds``, when n(d+1) ≤ ``max_dim`` (default :data:`MAX_DIM_INF`), else NaN with the size and the
    estimated cost (:func:`kernel_cost`) in its source; never computed above the limit.
    ``lambda_mem``, ``lambda_mem_upper``, ``lambda_pop``, ``tau_mem_spectral``, ``tau_gen_spectral``:
    the norm-corrected spectrum (§4.5) read by the ladder's quantile rules (§6.2, :func:`rfdiff.timescales.extract`),
    with n = round(ψ_n d), p = round(ψ_p d). ``test_loss_inf``, ``min_score_error``, ``tau_gen``, ``tau_mem``:
    NaN (no finite-d theory of the test side, §8.5). Isotropic data N(0, σ_x² I_d).
    """
    from .. import timescales as T
    from .curves import predict
    d = check_positive_int("d", d)
    check_positive("psi_p", psi_p)
    check_positive("psi_n", psi_n)
    check_positive("sigma_x2", sigma_x2)
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds: at least one training set is needed")
    limit = MAX_DIM_INF if max_dim is None else check_positive_int("max_dim", max_dim)
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    src = finite_d_sources(len(seeds))
    out = {}
    if n * (d + 1) <= limit:
        vals = [train_loss_inf_de(math.sqrt(sigma_x2) * np.random.default_rng(s).standard_normal((n, d)), t, p,
                                  activation, neuron_types=neuron_types) for s in seeds]
        out["train_loss_inf"] = ColumnValue(float(np.mean(vals)), src["train_loss_inf"])
    else:
        out["train_loss_inf"] = ColumnValue(math.nan, "conditional kernel deterministic equivalent (docs/theory.md §8): "
                                            + _unaffordable(n, d, limit))
    spec = predict(activation, t, psi_p, psi_n, sigma_x2=sigma_x2, test_loss=False, d=d).spectrum
    lam, up, pop = T.memorisation_edge(spec, n, p, d), T.memorisation_upper_edge(spec, n, p, d), T.population_edge(spec, p, d)
    for q, v in (("lambda_mem", lam), ("lambda_mem_upper", up), ("lambda_pop", pop),
                 ("tau_mem_spectral", T.spectral_tau(lam, psi_p, t)), ("tau_gen_spectral", T.spectral_tau(pop, psi_p, t))):
        out[q] = ColumnValue(float(v), src[q])
    none = "not predicted at finite d: no finite-d theory of the test loss and score error (docs/theory.md §8.5)"
    for q in ("test_loss_inf", "min_score_error", "tau_gen", "tau_mem"):
        out[q] = ColumnValue(math.nan, none)
    return {q: out[q] for q in COLUMN_QUANTITIES}
