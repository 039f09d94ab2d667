"""Spectrum of U in the high-dimensional limit: Theorem 3.1 (docs/theory.md §4).

For ``q(z) = (1/p) Tr(U − z)^{-1}``, ``r(z) = (1/(pd)) Tr(Σ^{1/2} Wᵀ (U − z)^{-1} W Σ^{1/2})`` and
``s(z) = (1/(pd)) Tr(Wᵀ (U − z)^{-1} W)``, with ``c = a_t² e^{-2t}``, ``γ = ψ_p/ψ_n`` and
``δ = γ (c r + v_t² q)``::

    ŝ = b_t² ψ_p + 1/q,     r̂ = ψ_p c / (1 + δ)
    s = ∫ dρ_Σ(λ) 1/(ŝ + λ r̂),     r = ∫ dρ_Σ(λ) λ/(ŝ + λ r̂)
    0 = ψ_p (s_t² − z) + ψ_p v_t²/(1 + δ) + (1 − ψ_p)/q − s/q²

(the form of docs/theory.md §4.3, re-derived here from the Lemma C.1 Gaussian equivalent by the sample-covariance
deterministic equivalent conditional on W followed by the one for ``(α + F D Fᵀ)^{-1}``).

Numerics. The unknowns are ``(u, δ)`` with ``u = 1/q`` (two complex numbers per spectral point);
in these variables the equations are nearly linear at large ``|z|`` and have no spurious root
(the q²-multiplied form has one at q = 0). All spectral points are solved at once (numpy,
float64, no Python loop over λ): Newton's method with an analytic 2×2 Jacobian along an ε-continuation
``z = λ + iε``, from ε large (where ``q ≈ −1/z`` is an excellent start and the solution is
unique) down to the target ε, with a per-point adaptive ε step (a point whose Newton solve fails
or leaves the physical branch retries with a smaller step). The branch is the Stieltjes one:
``Im q > 0``, ``Im δ ≥ 0``, ``Im s ≥ 0`` for ``Im z > 0`` and ``q ≈ −1/z`` at large ``|z|``.
Every point carries a convergence flag and its final relative residual; nothing non-converged is
returned silently (``n_nonconverged``).

Finite d (``spectrum_params(d=...)``): the training points' norms κ_ν = ‖x_ν‖²/(d σ_x²) spread with
relative s.d. √(2/d), and each point's GE constants depend on its norm. With types j (weights ω_j,
κ_j from :func:`sample_norm_types`) the samples are independent with covariances
``c_j κ_j F Σ Fᵀ + v_j² I``, and the equations above become, with unknowns ``u = 1/q`` and ``y = γ r``,
``δ_j = c_j κ_j y + γ v_j² q``, ``r̂ = ψ_p Σ_j ω_j c_j κ_j/(1 + δ_j)`` and ``ψ_p v_t²/(1 + δ)`` →
``ψ_p Σ_j ω_j v_j²/(1 + δ_j)``; s_t² and b_t² are type averages, and V ≃ (Σ_j ω_j b_j) W/√d.
This moves the memorisation bulk onto the exact finite-d one (README, tests).

Outputs: the continuous density ``ρ(λ) = (1/π) Im q(λ + iε)`` with the atom at ``s_t²``
subtracted (its weight reported separately, measured numerically as ``ε Im q(s_t² + iε)``),
the support edges of each bulk found numerically (grid scan + bisection), bulk masses by
Chebyshev–Gauss quadrature, and the V-weighted measure ``(1/π) Im s(λ + iε)`` (mass 1).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
import scipy.linalg

from .._util import check_positive
from .constants import constants_with_overrides

__all__ = ["SpectrumParams", "SpectrumResult", "spectrum_params", "solve_resolvent", "find_support",
           "solve_spectrum", "solve_spectrum_params", "bulk_quadrature", "normalize_atoms", "continuation",
           "atom_weight_numeric", "density"]


# ----------------------------------------------------------------------------------------------
# parameters


def normalize_atoms(atoms: Optional[Sequence], sigma_x2: Optional[float] = None):
    """ρ_Σ as arrays ``(λ_k, w_k)`` from ``[(λ, w), ...]`` (weights sum to 1) or isotropic σ_x² (docs/theory.md §1).

    Returns ``(lam, w, sigma_x2)`` with ``sigma_x2 = Σ_k w_k λ_k``. If both are given they must agree.
    """
    if atoms is None:
        s2 = 1.0 if sigma_x2 is None else check_positive("sigma_x2", sigma_x2)
        return np.array([s2]), np.array([1.0]), s2
    arr = np.asarray(atoms, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise ValueError("atoms must be a non-empty list of (eigenvalue, weight) pairs")
    lam, w = arr[:, 0].copy(), arr[:, 1].copy()
    if np.any(~np.isfinite(arr)) or np.any(lam < 0) or np.any(w <= 0):
        raise ValueError("atom eigenvalues must be >= 0 and weights > 0 (finite)")
    if abs(w.sum() - 1.0) > 1e-9:
        raise ValueError(f"atom weights must sum to 1, got {w.sum()}")
    sx2 = float(w @ lam)
    if sx2 <= 0:
        raise ValueError("ρ_Σ must have positive mean (σ_x² = Tr Σ/d > 0)")
    if sigma_x2 is not None and abs(float(sigma_x2) - sx2) > 1e-9 * max(1.0, sx2):
        raise ValueError(f"sigma_x2={sigma_x2} disagrees with the mean of the atoms ({sx2})")
    return lam, w, sx2


@dataclasses.dataclass(frozen=True)
class SpectrumParams:
    """Everything Theorem 3.1 needs (docs/theory.md §4): ``c = a_t² e^{-2t}``, ``b2 = b_t²``, ``v2``, ``s2``, ψ's, ρ_Σ atoms."""

    s2: float
    v2: float
    c: float
    b2: float
    psi_p: float
    psi_n: float
    lam: np.ndarray
    w: np.ndarray
    delta: float = float("nan")  # Δ_t (not used by the equations; carried for timescales)
    # finite-d sample-norm types (None: Theorem 3.1 as d → ∞): weights ω_j, c_j κ_j, v_j² with κ_j = ‖x‖²/(d σ_x²)
    tw: Optional[np.ndarray] = None
    tc: Optional[np.ndarray] = None
    tv2: Optional[np.ndarray] = None
    b2v: Optional[float] = None  # (mean_j b_j)², the V-side b_t² (= b2 without types)
    d: Optional[int] = None

    @property
    def typed(self) -> bool:
        return self.tw is not None

    @property
    def b2_v(self) -> float:
        """b_t² of V ≃ b_t W/√d (differs from U's mean b_j² only with finite-d types)."""
        return self.b2 if self.b2v is None else self.b2v

    @property
    def gamma(self) -> float:
        """ψ_p/ψ_n (0 in the population limit ψ_n = ∞)."""
        return 0.0 if math.isinf(self.psi_n) else self.psi_p / self.psi_n

    @property
    def sigma_x2(self) -> float:
        return float(self.w @ self.lam)

    def trace_mean(self) -> float:
        """``(1/p) Tr U`` of the Lemma C.1 Gaussian equivalent: ``c σ_x² + v_t² + b_t² + s_t²``."""
        if self.typed:
            return float(self.tw @ (self.tc * self.sigma_x2 + self.tv2)) + self.b2 + self.s2
        return self.c * self.sigma_x2 + self.v2 + self.b2 + self.s2

    def atom_weight_formula(self) -> float:
        """Weight of the atom at s_t²: ``1 − rank(U − s_t² I)/p`` with rank ``min(p, n [v>0 or c>0] + d [b>0])``."""
        r = 0.0
        if self.v2 > 0 or self.c > 0:
            r += self.psi_n if self.v2 > 0 else min(self.psi_n, float(np.sum(self.w[self.lam > 0])))
        if self.b2 > 0:
            r += 1.0
        return max(0.0, 1.0 - r / self.psi_p)

    def upper_bound(self) -> float:
        """A safe upper bound on the spectrum (norm bounds on each term of Lemma C.1)."""
        sp, lmax = math.sqrt(self.psi_p), float(self.lam.max())
        wide = (1.0 + sp) ** 2
        g = 0.0 if math.isinf(self.psi_n) else self.gamma
        tn = 0.0 if math.isinf(self.psi_n) else 1.0 / math.sqrt(self.psi_n)
        cmax = float(self.tc.max()) if self.typed else self.c
        v2max = float(self.tv2.max()) if self.typed else self.v2
        data = cmax * lmax * wide * (1.0 + tn) ** 2
        noise = v2max * (1.0 + math.sqrt(g)) ** 2
        return 1.5 * (self.s2 + self.b2 * wide + 2.0 * (data + noise)) + 1e-12


def sample_norm_types(d: int, lam: np.ndarray, w: np.ndarray, n_types: int = 24):
    """Quadrature of κ = ‖x‖²/(d σ_x²) for x ~ N(0, Σ) in dimension d: nodes and weights (finite-d correction).

    κ has mean 1 and variance 2 E_ρΣ[λ²]/(d σ_x⁴); it is matched by a Gamma law (exact χ²_d/d for
    isotropic Σ) and discretised by generalised Gauss–Laguerre quadrature.
    """
    d = int(d)
    if d < 1:
        raise ValueError(f"d must be a positive integer, got {d}")
    sx2 = float(w @ lam)
    k = d * sx2 * sx2 / (2.0 * float(w @ (lam * lam)))  # Gamma shape; κ ~ Gamma(k, 1/k)
    K = int(n_types)
    j = np.arange(K)
    # Golub–Welsch on the Jacobi matrix of Gamma(k, 1/k) (generalised Laguerre, α = k − 1, rescaled by 1/k):
    # stable for any k, unlike the closed-form weights (Γ functions overflow for large d)
    diag = (2.0 * j + k) / k
    off = np.sqrt((j[1:] * (j[1:] + k - 1.0))) / k
    x, vec = scipy.linalg.eigh_tridiagonal(diag, off)
    wt = vec[0] ** 2
    keep = wt > 1e-12 * wt.max()  # far-tail nodes of negligible weight
    return x[keep], wt[keep] / wt[keep].sum()


def spectrum_params(activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 8.0,
                    atoms=None, sigma_x2=None, constants=None, d: Optional[int] = None,
                    n_types: int = 24) -> SpectrumParams:
    """Collect the Theorem 3.1 parameters (docs/theory.md §4) from the Gaussian-equivalence constants.

    ``constants`` (optional mapping) overrides any of ``s2, v2, b (or b2), a (or c)``; e.g.
    ``{"b": 0, "a": 0}`` switches the random-features structure off (pure Marchenko–Pastur).
    ``d`` (optional) adds the finite-d correction for the spread of the training points' norms:
    each point ν carries its own constants at σ_x² κ_ν, κ_ν = ‖x_ν‖²/(d σ_x²) (a Gamma law with
    ``n_types`` quadrature types, :func:`sample_norm_types`); U gets the type-averaged s_t², b_t²
    and the data/noise terms per type (see :func:`solve_resolvent`). As d → ∞ it reduces to Thm 3.1.
    """
    psi_p = check_positive("psi_p", psi_p)
    psi_n = float(psi_n)
    if not psi_n > 0:
        raise ValueError(f"psi_n must be > 0 (inf allowed), got {psi_n}")
    lam, w, sx2 = normalize_atoms(atoms, sigma_x2)
    t = check_positive("t", t)
    k = constants_with_overrides(activation, t, sx2, constants)
    for name in ("s2", "v2", "b2", "c"):
        if not (np.isfinite(k[name]) and k[name] >= 0):
            raise ValueError(f"constant {name} must be finite and >= 0, got {k[name]}")
    base = dict(psi_p=psi_p, psi_n=psi_n, lam=lam, w=w, delta=float(k.get("delta", float("nan"))))
    if d is None:
        return SpectrumParams(s2=float(k["s2"]), v2=float(k["v2"]), c=float(k["c"]), b2=float(k["b2"]), **base)
    if constants:
        raise ValueError("constant overrides and the finite-d correction (d) cannot be combined")
    kap, om = sample_norm_types(d, lam, w, n_types)
    ks = [constants_with_overrides(activation, t, sx2 * kj, None) for kj in kap]
    col = lambda name: np.array([kk[name] for kk in ks], dtype=np.float64)  # noqa: E731
    tc, tv2, s2, b2, b = col("c") * kap, np.maximum(col("v2"), 0.0), col("s2"), col("b2"), col("b")
    return SpectrumParams(s2=float(om @ s2), v2=float(om @ tv2), c=float(om @ tc), b2=float(om @ b2),
                          tw=om, tc=tc, tv2=tv2, b2v=float(om @ b) ** 2, d=int(d), **base)


# ----------------------------------------------------------------------------------------------
# the equations


def _equations(z, u, dl, P: SpectrumParams, want_jac=True):
    """Residuals (F1, F2), their scales, Jacobian and the auxiliary s, r at (u = 1/q, δ); all (N,) complex."""
    with np.errstate(all="ignore"):  # non-finite trial points are rejected by the callers
        return _equations_raw(z, u, dl, P, want_jac)


def _equations_typed(z, u, y, P, want_jac=True):
    """Finite-d types: unknowns u = 1/q and y = γ r; δ_j = c_j κ_j y + γ v_j² q per sample-norm type.

    ``r̂ = ψ_p Σ_j ω_j c_j κ_j/(1 + δ_j)`` and ``ψ_p v_t²/(1 + δ)`` becomes ``ψ_p Σ_j ω_j v_j²/(1 + δ_j)``
    (independent samples with covariances c_j κ_j F Σ Fᵀ + v_j² I); one type is Theorem 3.1.
    """
    psi, g = P.psi_p, P.gamma
    inv_u = 1.0 / u
    kap = 1.0 / (1.0 + (P.tc[None, :] * y[:, None] + g * P.tv2[None, :] * inv_u[:, None]))
    first = kap @ np.stack([P.tw * P.tc, P.tw * P.tv2], axis=1)          # Σ_j ω_j (c_j κ_j, v_j²)/(1 + δ_j)
    r_hat, t2 = psi * first[:, 0], psi * first[:, 1]
    s_hat = psi * P.b2 + u
    den = s_hat[:, None] + r_hat[:, None] * P.lam[None, :]
    wi = P.w[None, :] / den
    s = wi.sum(1)
    r = wi @ P.lam
    F1 = y - g * r
    t1 = psi * (P.s2 - z)
    t3 = (1.0 - psi) * u
    t4 = s * u * u
    F2 = t1 + t2 + t3 - t4
    sc1 = np.abs(y) + g * np.abs(r) + 1e-300
    sc2 = np.abs(t1) + np.abs(t2) + np.abs(t3) + np.abs(t4) + 1e-300
    if not want_jac:
        return F1, F2, sc1, sc2, s, r, None
    # derivatives: dδ_j/du = -γ v_j²/u², dδ_j/dy = c_j κ_j
    du_d = g * inv_u * inv_u  # times v_j²: -dδ_j/du
    second = (kap * kap) @ np.stack([P.tw * P.tc * P.tv2, P.tw * P.tc * P.tc, P.tw * P.tv2 * P.tv2], axis=1)
    rh_u = psi * du_d * second[:, 0]
    rh_y = -psi * second[:, 1]
    t2_u = psi * du_d * second[:, 2]
    t2_y = -psi * second[:, 0]
    wi2 = wi / den
    S2, S2l, S2ll = wi2.sum(1), wi2 @ P.lam, wi2 @ (P.lam * P.lam)
    s_u, s_y = -S2 - S2l * rh_u, -S2l * rh_y
    r_u, r_y = -S2l - S2ll * rh_u, -S2ll * rh_y
    J = np.empty(u.shape + (2, 2), dtype=complex)
    J[:, 0, 0] = -g * r_u
    J[:, 0, 1] = 1.0 - g * r_y
    J[:, 1, 0] = t2_u + (1.0 - psi) - s_u * u * u - 2.0 * s * u
    J[:, 1, 1] = t2_y - s_y * u * u
    return F1, F2, sc1, sc2, s, r, J


def _equations_raw(z, u, dl, P, want_jac):
    if P.typed:
        return _equations_typed(z, u, dl, P, want_jac)
    # Unknowns u = 1/q and δ: in these variables the equations are nearly linear at large |z|
    # (u ≈ −z) and have no spurious root at q = 0, unlike the q²-multiplied form.
    psi, g = P.psi_p, P.gamma
    s_hat = psi * P.b2 + u
    kap = 1.0 / (1.0 + dl)
    r_hat = psi * P.c * kap
    den = s_hat[:, None] + r_hat[:, None] * P.lam[None, :]
    wi = P.w[None, :] / den
    s = wi.sum(1)
    r = wi @ P.lam
    inv_u = 1.0 / u
    F1 = dl - g * (P.c * r + P.v2 * inv_u)
    t1 = psi * (P.s2 - z)
    t2 = psi * P.v2 * kap
    t3 = (1.0 - psi) * u
    t4 = s * u * u
    F2 = t1 + t2 + t3 - t4
    sc1 = np.abs(dl) + g * (P.c * np.abs(r) + P.v2 * np.abs(inv_u)) + 1e-300
    sc2 = np.abs(t1) + np.abs(t2) + np.abs(t3) + np.abs(t4) + 1e-300
    if not want_jac:
        return F1, F2, sc1, sc2, s, r, None
    wi2 = wi / den
    S2, S2l, S2ll = wi2.sum(1), wi2 @ P.lam, wi2 @ (P.lam * P.lam)
    rh_d = -psi * P.c * kap * kap
    s_u, r_u = -S2, -S2l
    s_d, r_d = -S2l * rh_d, -S2ll * rh_d
    J = np.empty(u.shape + (2, 2), dtype=complex)
    J[:, 0, 0] = -g * (P.c * r_u - P.v2 * inv_u * inv_u)
    J[:, 0, 1] = 1.0 - g * P.c * r_d
    J[:, 1, 0] = (1.0 - psi) - s_u * u * u - 2.0 * s * u
    J[:, 1, 1] = -psi * P.v2 * kap * kap - s_d * u * u
    return F1, F2, sc1, sc2, s, r, J


def _valid(u, dl, s, tiny=1e-10):
    """Physical (Stieltjes) branch: Im q > 0 (Im u < 0), Im δ ≥ 0, Im s ≥ 0 (to round-off)."""
    au = np.abs(u)
    with np.errstate(all="ignore"):
        return ((u.imag < tiny * au) & (dl.imag > -tiny * (np.abs(dl) + 1.0 / au))
                & (s.imag > -tiny * (np.abs(s) + 1.0 / au)) & np.isfinite(u) & np.isfinite(dl) & np.isfinite(s)
                & (au > 0))


def _newton(z, u, dl, P, tol, max_iter):
    """Damped Newton on all points at once; returns (u, δ, converged, rel_residual)."""
    u, dl = u.copy(), dl.copy()
    conv = np.zeros(u.shape, bool)
    res = np.full(u.shape, np.inf)
    act = np.arange(u.size)
    for _ in range(max_iter + 1):
        if act.size == 0:
            break
        za, ua, da = z[act], u[act], dl[act]
        F1, G, sc1, sc2, s, _, J = _equations(za, ua, da, P)
        rr = np.maximum(np.abs(F1) / sc1, np.abs(G) / sc2)
        res[act] = rr
        good = (rr < tol) & _valid(ua, da, s)
        conv[act[good]] = True
        keep = ~good
        act, za, ua, da, F1, G, J, rr = act[keep], za[keep], ua[keep], da[keep], F1[keep], G[keep], J[keep], rr[keep]
        if act.size == 0:
            break
        with np.errstate(all="ignore"):
            det = J[:, 0, 0] * J[:, 1, 1] - J[:, 0, 1] * J[:, 1, 0]
            du = -(J[:, 1, 1] * F1 - J[:, 0, 1] * G) / det
            dd = -(-J[:, 1, 0] * F1 + J[:, 0, 0] * G) / det
        step = np.ones(act.size)
        newu, newd = ua + du, da + dd
        for _h in range(6):  # backtrack steps that leave the branch or blow up the residual
            f1n, gn, s1n, s2n, sn, _, _ = _equations(za, newu, newd, P, want_jac=False)
            rn = np.maximum(np.abs(f1n) / s1n, np.abs(gn) / s2n)
            bad = ~(_valid(newu, newd, sn) & (rn < 2.0 * rr + tol)) & (step > 1e-2)
            if not bad.any():
                break
            step[bad] *= 0.5
            newu = np.where(bad, ua + step * du, newu)
            newd = np.where(bad, da + step * dd, newd)
        u[act], dl[act] = newu, newd
    return u, dl, conv, res


def _start(z, P):
    """Large-|z| start on the physical branch: q ≈ −1/z (u = 1/q ≈ −z), δ ≈ γ (c σ_x² + v²) q."""
    if P.typed:  # second unknown y = γ r ≈ γ σ_x² q
        return -z, P.gamma * P.sigma_x2 * (-1.0 / z)
    return -z, P.gamma * (P.c * P.sigma_x2 + P.v2) * (-1.0 / z)


def continuation(lam, eps_f, e0, x0, newton, max_newton=30, max_rounds=400):
    """Per-point adaptive ε-continuation, vectorised over points (used for Theorem 3.1 and Bai–Silverstein).

    ``newton(z, xs, max_iter) -> (*xs_new, converged, residual)`` solves at ``z`` from the start
    ``xs`` (a tuple of (N,) arrays). Starting at ``ε = e0`` (large) every point steps its ε down by
    a factor that grows after each success and shrinks after each failure, keeping the solution
    on the branch it started on. Returns ``(xs, eps_reached, failed)``.
    """
    *xs, ok, _ = newton(lam + 1j * e0, tuple(x0), max_newton)
    cur = np.asarray(e0, dtype=np.float64).copy()
    fac = np.full(lam.shape, 0.2)
    failed = ~ok
    for _ in range(max_rounds):
        act = np.nonzero((cur > eps_f) & ~failed)[0]
        if act.size == 0:
            break
        new = np.maximum(eps_f[act], cur[act] * fac[act])
        *xn, cn, _ = newton(lam[act] + 1j * new, tuple(x[act] for x in xs), 12)
        acc, rej = act[cn], act[~cn]
        for x, x_new in zip(xs, xn):
            x[acc] = x_new[cn]
        cur[acc] = new[cn]
        fac[acc] = np.maximum(fac[acc] ** 1.5, 1e-3)
        fac[rej] = np.sqrt(fac[rej])
        failed[rej[fac[rej] > 0.995]] = True
    return tuple(xs), cur, failed


def solve_resolvent(lambdas, P: SpectrumParams, eps=None, tol: float = 1e-12, max_newton: int = 30,
                    eps_start=None, max_rounds: int = 400):
    """Solve Theorem 3.1 (docs/theory.md §4) at ``z = λ + iε`` for all λ at once by ε-continuation + Newton.

    Args:
        lambdas: real spectral points (any shape; flattened).
        P: :class:`SpectrumParams`.
        eps: final imaginary part (scalar or per point); default ``1e-9 (|λ − s_t²| + 1e-6 × norm bound)``.
        tol: relative residual for convergence.

    Returns:
        dict with complex ``q, delta, s, r`` at the final ε, ``converged`` (bool), ``residual``
        (relative, at the final ε) and ``eps`` — all flattened arrays.
    """
    lam = np.asarray(lambdas, dtype=np.float64).ravel()
    scale = P.upper_bound()
    if eps is None:  # relative to the local scale |λ − s²| (bulks live on very different scales)
        eps = 1e-9 * (np.abs(lam - P.s2) + 1e-6 * scale)
    eps_f = np.broadcast_to(np.asarray(eps, dtype=np.float64), lam.shape).copy()
    if np.any(eps_f <= 0):
        raise ValueError("eps must be > 0")
    e0 = 10.0 * (scale + np.abs(lam)) if eps_start is None else np.broadcast_to(eps_start, lam.shape) * 1.0
    e0 = np.maximum(e0, eps_f)
    newton = lambda z, x, it: _newton(z, x[0], x[1], P, tol, it)  # noqa: E731
    (u, dl), cur, failed = continuation(lam, eps_f, e0, _start(lam + 1j * e0, P), newton, max_newton, max_rounds)
    # final evaluation at the target ε (points that failed stay where they were and are flagged)
    z = lam + 1j * eps_f
    u, dl, ok, res = _newton(z, u, dl, P, tol, 4)
    F1, G, sc1, sc2, s, r, _ = _equations(z, u, dl, P, want_jac=False)
    res = np.maximum(np.abs(F1) / sc1, np.abs(G) / sc2)
    ok = ok & ~failed & (cur <= eps_f * (1 + 1e-12)) & _valid(u, dl, s)
    with np.errstate(all="ignore"):
        q = 1.0 / u
        if P.typed:  # report the type-averaged δ
            dl = P.tw @ (P.tc[:, None] * dl[None, :] + P.gamma * P.tv2[:, None] * q[None, :])
    return {"q": q, "delta": dl, "s": s, "r": r, "converged": ok, "residual": res, "eps": eps_f}


# ----------------------------------------------------------------------------------------------
# support, atom, quadrature


def atom_weight_numeric(P: SpectrumParams, rel_eps=1e-9):
    """``w = lim ε Im q(s_t² + iε)`` at ε = rel_eps × upper bound (error O(ε²/gap²))."""
    e = rel_eps * P.upper_bound()
    sol = solve_resolvent(np.array([P.s2]), P, eps=e)
    return float(e * sol["q"].imag[0]), bool(sol["converged"][0])


def density(sol, lam, P, w_atom):
    """Continuous density (1/π) Im[q + w/(z − s²)] (atom at s² subtracted)."""
    z = lam + 1j * sol["eps"]
    return (sol["q"] + w_atom / (z - P.s2)).imag / math.pi


def find_support(P: SpectrumParams, n_grid: int = 3000, rel_threshold: float = 1e-7, bisect_iter: int = 48,
                 w_atom: Optional[float] = None, zoom: int = 32):
    """Numerical support of the continuous part of ρ (docs/theory.md §4): list of ``[lo, hi]`` per bulk.

    A grid uniform in ``log(λ − s_t²)`` from ``1e-7`` to the norm bound is scanned for
    ``ρ·(λ − s_t²) > rel_threshold · max ρ·(λ − s_t²)`` at ``ε = 1e-10 (λ − s_t²)``, then every edge's
    bracket is refined at once, ``zoom`` geometric points per bracket and round (``bisect_iter``/12
    rounds, each dividing the bracket by ``zoom``); the edge error is ~1e-7 relative (set by ε and
    the threshold). Bulks narrower than
    the grid spacing (~0.6 % of λ − s_t² at the default) are missed.
    """
    ub = P.upper_bound()
    if w_atom is None:
        w_atom = atom_weight_numeric(P)[0]
    x = np.geomspace(1e-7 * ub, ub, n_grid)
    lam = P.s2 + x
    rel_eps = 1e-10  # ε relative to the local scale λ − s², so bulks of every scale are resolved
    sol = solve_resolvent(lam, P, eps=rel_eps * x)
    rho = density(sol, lam, P, w_atom)
    thr = rel_threshold * np.max(rho * x)  # threshold on ρ·(λ−s²): scale-free across bulks
    inside = (rho * x > thr) & sol["converged"]
    if not inside.any():
        return [], sol
    idx = np.nonzero(np.diff(inside.astype(int)))[0]
    starts = list(idx[inside[idx + 1]])  # transitions out→in between idx and idx+1
    ends = list(idx[inside[idx] & ~inside[idx + 1]])
    if inside[0]:
        starts = [-1] + starts
    if inside[-1]:
        ends = ends + [len(x) - 1]
    # bisection brackets: (outside, inside) for lower edges, (inside, outside) for upper edges
    lo_a = np.array([x[i] if i >= 0 else x[0] * 1e-3 for i in starts])
    lo_b = np.array([x[i + 1] for i in starts])
    hi_a = np.array([x[i] for i in ends])
    hi_b = np.array([x[i + 1] if i + 1 < len(x) else x[-1] * 2 for i in ends])
    a = np.concatenate([lo_a, hi_b])   # outside points
    b = np.concatenate([lo_b, hi_a])   # inside points
    # zoom: each round evaluates `zoom` geometric points across every bracket in one vectorised solve and
    # keeps the pair where the density switches on (4 rounds of 31 points: bracket ÷ 32⁴ ≈ 1e6)
    u = np.linspace(0.0, 1.0, zoom + 1)[1:-1]
    for _ in range(max(1, -(-bisect_iter // 12))):
        if np.all(np.abs(b - a) <= 1e-13 * np.sqrt(a * b)):
            break
        m = a[:, None] * (b / a)[:, None] ** u[None, :]                 # (edges, zoom − 1), from outside to inside
        s = solve_resolvent(P.s2 + m.ravel(), P, eps=rel_eps * m.ravel())
        ins = (density(s, P.s2 + m.ravel(), P, w_atom) * m.ravel() > thr).reshape(m.shape)
        first = np.where(ins.any(axis=1), ins.argmax(axis=1), m.shape[1])  # first inside point per bracket
        rows = np.arange(m.shape[0])
        new_b = np.where(first < m.shape[1], m[rows, np.minimum(first, m.shape[1] - 1)], b)
        new_a = np.where(first > 0, m[rows, np.maximum(first - 1, 0)], a)
        a, b = new_a, new_b
    nb = len(starts)
    edges = [[float(P.s2 + b[k]), float(P.s2 + b[nb + k])] for k in range(nb)]
    return edges, sol


def bulk_quadrature(edge, n: int = 256):
    """Chebyshev nodes ``λ_j = m + h cos θ_j`` and weights ``h sin θ_j π/n`` on one bulk [lo, hi].

    For densities with square-root edges, ``∫ f ρ dλ ≈ Σ_j f(λ_j) ρ(λ_j) w_j`` converges spectrally.
    """
    lo, hi = edge
    th = (np.arange(n) + 0.5) * math.pi / n
    m, h = 0.5 * (lo + hi), 0.5 * (hi - lo)
    return m + h * np.cos(th), h * np.sin(th) * math.pi / n


# ----------------------------------------------------------------------------------------------
# public solver


@dataclasses.dataclass
class SpectrumResult:
    """Output of :func:`solve_spectrum` (docs/theory.md §4, Theorem 3.1). Arrays follow ``lambdas``.

    ``rho``: continuous density with the atom at ``s2`` removed; ``rho_total``: raw
    ``(1/π) Im q(λ+iε)``; ``v_weighted``: ``(1/π) Im s(λ+iε)`` (the measure that drives
    L_train, mass 1); ``converged``/``residual`` per point; ``atom_weight`` measured numerically
    (``atom_weight_formula`` the rank count); ``edges`` one ``[lo, hi]`` per bulk;
    ``bulk_masses`` (ρ mass) and ``bulk_v_masses`` (V-weighted mass) per bulk.
    """

    lambdas: np.ndarray
    eps: np.ndarray
    q: np.ndarray
    s: np.ndarray
    r: np.ndarray
    delta: np.ndarray
    rho: np.ndarray
    rho_total: np.ndarray
    v_weighted: np.ndarray
    converged: np.ndarray
    residual: np.ndarray
    atom_location: float
    atom_weight: float
    atom_weight_formula: float
    edges: list
    bulk_masses: list
    bulk_v_masses: list
    params: SpectrumParams

    @property
    def n_nonconverged(self) -> int:
        return int(np.sum(~self.converged))


def solve_spectrum(activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 8.0, lambdas=None,
                   atoms=None, eps=None, sigma_x2=None, constants=None, tol: float = 1e-12,
                   find_edges: bool = True, n_grid: int = 3000, n_quad: int = 256,
                   d: Optional[int] = None) -> SpectrumResult:
    """Density ρ(λ), atom, bulk edges and V-weighted measure of U from Theorem 3.1 (docs/theory.md §4).

    Args:
        activation, t, psi_p, psi_n: model (``psi_n = inf`` gives the population limit).
        lambdas: real points where ρ is wanted (default: 1000 points across the support).
        atoms: ρ_Σ as ``[(λ, w), ...]`` (default isotropic with ``sigma_x2``, default 1).
        eps: imaginary part of z (default ``1e-9 (|λ − s_t²| + 1e-6 ×`` the norm bound)).
        constants: optional overrides of the GE constants (see :func:`spectrum_params`).
        find_edges: also locate the bulks numerically (grid + bisection) and their masses.
        d: if given, the finite-d sample-norm correction (see :func:`spectrum_params`).
    """
    P = spectrum_params(activation, t, psi_p, psi_n, atoms=atoms, sigma_x2=sigma_x2, constants=constants, d=d)
    return solve_spectrum_params(P, lambdas=lambdas, eps=eps, tol=tol, find_edges=find_edges, n_grid=n_grid,
                                 n_quad=n_quad)


def solve_spectrum_params(P: SpectrumParams, lambdas=None, eps=None, tol=1e-12, find_edges=True, n_grid=3000,
                          n_quad=256) -> SpectrumResult:
    """:func:`solve_spectrum` (Theorem 3.1, docs/theory.md §4) for explicit :class:`SpectrumParams`."""
    w_num, _ = atom_weight_numeric(P)
    edges, masses, vmasses = [], [], []
    if find_edges:
        edges, _ = find_support(P, n_grid=n_grid, w_atom=w_num)
        if edges:
            nodes = [bulk_quadrature(e, n_quad) for e in edges]
            lam_all = np.concatenate([nd[0] for nd in nodes])
            sol = solve_resolvent(lam_all, P, eps=1e-12 * (lam_all - P.s2), tol=tol)
            rho_q = density(sol, lam_all, P, w_num)
            vq = sol["s"].imag / math.pi
            for k, (_, wq) in enumerate(nodes):
                sl = slice(k * n_quad, (k + 1) * n_quad)
                masses.append(float(rho_q[sl] @ wq))
                vmasses.append(float(vq[sl] @ wq))
    if lambdas is None:
        if edges:
            lambdas = np.concatenate([np.linspace(lo, hi, 1000 // len(edges)) for lo, hi in edges])
        else:
            lambdas = np.linspace(P.s2, P.upper_bound(), 1000)
    lam = np.asarray(lambdas, dtype=np.float64).ravel()
    sol = solve_resolvent(lam, P, eps=eps, tol=tol)
    rho_tot = sol["q"].imag / math.pi
    return SpectrumResult(lambdas=lam, eps=sol["eps"], q=sol["q"], s=sol["s"], r=sol["r"], delta=sol["delta"],
                          rho=density(sol, lam, P, w_num), rho_total=rho_tot, v_weighted=sol["s"].imag / math.pi,
                          converged=sol["converged"], residual=sol["residual"], atom_location=P.s2,
                          atom_weight=w_num, atom_weight_formula=P.atom_weight_formula(), edges=edges,
                          bulk_masses=masses, bulk_v_masses=vmasses, params=P)
