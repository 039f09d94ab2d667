"""Deterministic equivalent of the test loss and the score error, any covariance spectrum ρ_Σ (docs/theory.md §3–§4).

**Reduction to a Wishart matrix.** In the Lemma C.1 model ``U = Z Zᵀ + s_t² I_p`` with
``Z = [G/√n, b_t F] ∈ R^{p×(n+d)}``, ``F = W/√d``, ``G = √c F Xᵀ + v_t Ω``. Conditionally on the
training set X the p rows z_i of Z are i.i.d. ``N(0, T)`` with

    T = (1/d) [[c X Xᵀ/n + (v_t²/ψ_n) I_n,  √c b_t X/√n], [√c b_t Xᵀ/√n,  b_t² I_d]],

so ``S = ZᵀZ = Σ_i z_i z_iᵀ`` is Wishart. With ``P_F`` the projector on the last d coordinates,
``Fᵀ h(U) F = (1/b_t²) P_F g_h(S) P_F`` where ``g_h(x) = x h(x + s_t²)``. In the basis of the
singular vectors (u_k, v_k) of X, T splits into 2×2 blocks, one per eigenvalue ℓ of XᵀX/n,

    T̂(ℓ) = d T = [[c ℓ + v_t²/ψ_n, b_t √(c ℓ)], [b_t √(c ℓ), b_t²]],

plus ``(ψ_n − 1)_+ d`` directions with ``v_t²/ψ_n`` and ``(1 − ψ_n)_+ d`` (null(X)) with ``b_t²``.
ℓ follows Marchenko–Pastur (isotropic) or the Silverstein–Bai law of ρ_Σ, so every normalised
trace below is an integral over ℓ.

**One resolvent** (Silverstein): ``Q(ω) = (S − ω)^{-1} ≃ Q̄ = (β T̂ − ω)^{-1}`` with
``β = ψ_p/(1 + δ)``, ``δ = (1/d) tr T̂ Q̄``.
**Two resolvents** (leave-one-out, same Gaussian rows):
``E Q_1 A Q_2 ≃ Q̄_1 A Q̄_2 + κ_12 tr(T Q̄_1 A Q̄_2) Q̄_1 T Q̄_2 / (1 − κ_12 tr(T Q̄_1 T Q̄_2))``,
``κ_12 = p/((1+δ_1)(1+δ_2))``. The test loss needs ``A = P_F Σ_t P_F``; since Q̄ is block-diagonal
only the diagonal overlaps ``a(ℓ) = v_kᵀ Σ_t v_k = e^{−2t} vᵀΣv + Δ_t`` enter, given by the
Ledoit–Péché formula ``vᵀΣv = ℓ/|1 − r − r ℓ m(ℓ + i0)|²`` (r = d/n; = σ_x² when isotropic; on
null(X) by trace conservation). Then

    (1/d) Tr(Q_1 A Q_2 P_F) ≃ u_0 + ψ_p u_1ᴬ u_1 / ((1+δ_1)(1+δ_2) − ψ_p u_2),
    u_0 = (1/d) tr Q̄_1 A Q̄_2 P_F,  u_1ᴬ = (1/d) tr T̂ Q̄_1 A Q̄_2,  u_1 = (1/d) tr T̂ Q̄_1 P_F Q̄_2,
    u_2 = (1/d) tr T̂² Q̄_1 Q̄_2.

**Test loss.** With ``f_τ(λ) = (e^{−2Δ_t λ τ/ψ_p} − 1)/λ``, ``Ũ ≃ κ̃ F Σ_t Fᵀ + μ_*² I``
(``κ̃ = μ_1²/Γ_t²``, ``Σ_t = e^{−2t} Σ + Δ_t I``) and ``Ṽ = V = b_t F`` (docs/theory.md §3),

    L_test(τ) = 1 + b_t² [κ̃ Φ_2(τ) + μ_*² Φ_1(f_τ²) + 2 Φ_1(f_τ)],
    Φ_1(h) = (1/d) Tr Fᵀ h(U) F,   Φ_2(τ) = (1/d) Tr Fᵀ f_τ(U) F Σ_t Fᵀ f_τ(U) F,

and ``E_score = (L_test − 1)/Δ_t + (1/d) Tr Σ_t^{-1}``. The functions of S are contour integrals
``g(S) = −(1/2πi) ∮ g(ω) Q(ω) dω`` over one Bernstein ellipse per bulk of S (bulks from
:func:`find_support` shifted by −s_t²; every ellipse stays right of ``−s_t²`` so ``e^{−kω}`` is
bounded), evaluated by the trapezoidal rule; Φ_2 is a double contour integral of the two-resolvent
kernel, computed once per (ω_1, ω_2) node pair and reused for every τ. The rank-one μ_0² spike of
non-centred activations is ignored (its eigenvalue ≈ p μ_0² makes f_τ vanish on it).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .constants import ge_constants
from .spectrum import bulk_quadrature, find_support, normalize_atoms, spectrum_params

__all__ = ["mp_quadrature", "sample_covariance_law", "wishart_delta", "generalisation_curves"]


def mp_quadrature(ratio: float, scale: float = 1.0, n_nodes: int = 128):
    """Nodes ℓ and probability weights of the non-zero eigenvalues of XᵀX/n, X ∈ R^{n×d} i.i.d. N(0, scale).

    Marchenko–Pastur law with ratio d/n (docs/theory.md §4): density ``√((b−ℓ)(ℓ−a))/(2π scale ratio ℓ)``
    on ``[a, b] = scale (1 ∓ √ratio)²``, renormalised to its continuous mass min(1, 1/ratio).
    """
    if ratio <= 0 or scale <= 0:
        raise ValueError(f"ratio and scale must be > 0, got {ratio}, {scale}")
    a, b = scale * (1 - math.sqrt(ratio)) ** 2, scale * (1 + math.sqrt(ratio)) ** 2
    x, w = bulk_quadrature((a, b), n_nodes)
    dens = np.sqrt(np.clip((b - x) * (x - a), 0.0, None)) / (2 * math.pi * scale * ratio * x)
    w = w * dens
    return x, w / w.sum()


def _companion_stieltjes(z, tau, wt, ratio, steps: int = 30, iters: int = 60):
    """Companion Stieltjes transform m̲(z) of XXᵀ/n (rows of X ~ N(0, Σ), spectrum atoms (τ, wt)).

    Silverstein–Bai: ``z = −1/m̲ + ratio Σ_j wt_j τ_j/(1 + τ_j m̲)``, Im m̲ > 0 for Im z > 0; Newton
    along an ε-ladder from far above the axis (the same continuation as the Theorem 3.1 solver).
    """
    z = np.asarray(z, dtype=np.complex128)
    R = 10.0 * (np.abs(z).max() + tau.max() * (1 + math.sqrt(ratio)) ** 2 + 1.0)
    m = -1.0 / (z + 1j * R)
    for e in np.concatenate([np.geomspace(R, 1e-13 * R, steps), [0.0]]):
        zz = z + 1j * e
        for _ in range(iters):
            den = 1.0 + np.multiply.outer(m, tau)
            F = -1.0 / m + ratio * (wt * tau / den).sum(-1) - zz
            dF = 1.0 / m ** 2 - ratio * (wt * tau ** 2 / den ** 2).sum(-1)
            step = F / dF
            m = m - step
            m = np.where(m.imag < 0, m.conj(), m)
            if float(np.max(np.abs(step) / (np.abs(m) + 1e-300))) < 1e-14:
                break
    return m


def sample_covariance_law(tau, wt, ratio: float, n_nodes: int = 160, n_grid: int = 2000):
    """Non-zero eigenvalues ℓ of XᵀX/n for rows of X ~ N(0, Σ) with spectrum atoms (τ, wt), ratio = d/n.

    Returns nodes ℓ, probability weights (Chebyshev quadrature per bulk of the Silverstein–Bai law,
    edges by bisection on the density) and the Ledoit–Péché overlap ``E[vᵀΣv | ℓ] = ℓ/|1 − r − r ℓ m(ℓ)|²``
    (r = ratio, m the Stieltjes transform of the d×d sample spectrum at ℓ + i0), used for ``vᵀ Σ_t v``.
    """
    tau = np.asarray(tau, dtype=np.float64)
    wt = np.asarray(wt, dtype=np.float64)
    top = float(tau.max()) * (1 + math.sqrt(ratio)) ** 2 * 1.05 + 1e-12

    def dens(x):
        m_ = _companion_stieltjes(np.asarray(x, float) + 0j, tau, wt, ratio)
        return np.clip(m_.imag, 0.0, None) / (math.pi * ratio)   # density of the d×d spectrum (x > 0)

    x = np.linspace(top / n_grid, top, n_grid)
    rho = dens(x)
    on = rho > 1e-8 * rho.max()
    starts = np.flatnonzero(on & ~np.r_[False, on[:-1]])
    ends = np.flatnonzero(on & ~np.r_[on[1:], False])
    nodes, weights = [], []
    for i0, i1 in zip(starts, ends):
        lo_out, lo_in = (x[i0 - 1] if i0 > 0 else 0.0), x[i0]
        hi_in, hi_out = x[i1], (x[i1 + 1] if i1 + 1 < n_grid else top)
        for _ in range(40):  # bisect both edges at once
            mid_lo, mid_hi = 0.5 * (lo_out + lo_in), 0.5 * (hi_in + hi_out)
            r_lo, r_hi = dens(np.array([mid_lo, mid_hi])) > 1e-8 * rho.max()
            lo_in, lo_out = (mid_lo, lo_out) if r_lo else (lo_in, mid_lo)
            hi_in, hi_out = (mid_hi, hi_out) if r_hi else (hi_in, mid_hi)
        xq, wq = bulk_quadrature((0.5 * (lo_in + lo_out), 0.5 * (hi_in + hi_out)), n_nodes)
        nodes.append(xq), weights.append(wq * dens(xq))
    ell, w = np.concatenate(nodes), np.concatenate(weights)
    m_ell = (_companion_stieltjes(ell + 0j, tau, wt, ratio) + (1 - ratio) / ell) / ratio
    overlap = ell / np.abs(1 - ratio - ratio * ell * m_ell) ** 2
    return ell, w / w.sum(), overlap


class _Blocks:
    """2×2 blocks T̂(ℓ) on the nodes of the XᵀX/n spectrum plus the pure-G / pure-F directions (weights per d)."""

    def __init__(self, c, v2, b2, psi_n, ell, wl, a, a_null):
        self.w = wl * min(1.0, psi_n)                       # (1/d) Σ_k → min(1, ψ_n) ∫ dℓ
        self.a, self.a_null = a, a_null                     # vᵀ Σ_t v on each block / on null(X) directions
        self.B = np.empty((ell.size, 2, 2))
        self.B[:, 0, 0] = c * ell + v2 / psi_n
        self.B[:, 0, 1] = self.B[:, 1, 0] = math.sqrt(b2 * c) * np.sqrt(ell)
        self.B[:, 1, 1] = b2
        self.tG, self.wG = v2 / psi_n, max(psi_n - 1.0, 0.0)
        self.tF, self.wF = b2, max(1.0 - psi_n, 0.0)

    def _inverse(self, beta, omega):
        """Entries (q00, q01, q11) of Q̄ = (β T̂ − ω)^{-1} per (ω, ℓ) and the extra directions' resolvents."""
        be, om = beta[..., None], omega[..., None]
        m11 = be * self.B[:, 0, 0] - om
        m22 = be * self.B[:, 1, 1] - om
        m12 = be * self.B[:, 0, 1]
        det = m11 * m22 - m12 * m12
        return m22 / det, -m12 / det, m11 / det, 1.0 / (beta * self.tG - omega), 1.0 / (beta * self.tF - omega)

    def qbar(self, beta, omega):
        """Q̄ = (β T̂ − ω)^{-1} per (ω, ℓ): (..., L, 2, 2), and the scalar resolvents of the extra directions."""
        q00, q01, q11, qG, qF = self._inverse(beta, omega)
        return np.stack([np.stack([q00, q01], -1), np.stack([q01, q11], -1)], -2), qG, qF

    def delta_map(self, delta, omega, psi_p):
        """``(1/d) tr T̂ Q̄`` at β = ψ_p/(1+δ) and its derivative in δ (explicit 2×2 algebra)."""
        beta = psi_p / (1.0 + delta)
        B00, B01, B11 = self.B[:, 0, 0], self.B[:, 0, 1], self.B[:, 1, 1]
        q00, q01, q11, qG, qF = self._inverse(beta, omega)
        a, b = B00 * q00 + B01 * q01, B00 * q01 + B01 * q11          # rows of T̂ Q̄
        c, e = B01 * q00 + B11 * q01, B01 * q01 + B11 * q11
        val = (a + e) @ self.w + self.wG * self.tG * qG + self.wF * self.tF * qF
        dval_dbeta = -((a * a + 2 * b * c + e * e) @ self.w + self.wG * (self.tG * qG) ** 2
                       + self.wF * (self.tF * qF) ** 2)
        return val, dval_dbeta * (-psi_p / (1.0 + delta) ** 2)


def wishart_delta(blocks: _Blocks, omega: np.ndarray, psi_p: float, tol: float = 1e-13, steps: int = 12,
                  max_newton: int = 50):
    """δ(ω) of the Silverstein equation ``δ = (1/d) tr T̂ (β T̂ − ω)^{-1}``, β = ψ_p/(1+δ), on the physical branch.

    ε-continuation: Newton on ``ω + i ε_k`` for a geometric ladder ε_k from far above the spectrum
    down to 0 (upper half-plane; ``δ(ω̄) = conj δ(ω)``), each rung started from the previous one;
    Im δ ≥ 0 is enforced on the way. Returns (δ, converged, residual).
    """
    omega = np.asarray(omega, dtype=np.complex128)
    flip = omega.imag < 0
    om = np.where(flip, omega.conj(), omega)
    R = 10.0 * (float(np.abs(om).max()) + psi_p * float(np.abs(blocks.B).max()) + 1.0)
    ladder = np.concatenate([np.geomspace(R, 1e-12 * R, steps), [0.0]])
    delta = np.zeros_like(om)
    for e in ladder:
        z = om + 1j * e
        for _ in range(max_newton):
            val, dval = blocks.delta_map(delta, z, psi_p)
            step = (delta - val) / (1.0 - dval)
            delta = delta - step
            delta = np.where(delta.imag < 0, delta.conj(), delta)
            if float(np.max(np.abs(step))) < tol * (1.0 + float(np.max(np.abs(delta)))):
                break
    val, _ = blocks.delta_map(delta, om, psi_p)
    resid = np.abs(delta - val)
    conv = np.isfinite(resid) & (resid < 1e-9 * (1.0 + np.abs(delta)))
    return np.where(flip, delta.conj(), delta), conv, resid


def _contours(bulks_S, s2: float, n: int, rho_max: float = 3.0):
    """Bernstein ellipses around each bulk of S, inside the gaps and right of −s²: nodes ω and dω/(2πi).

    Each ellipse reaches at most 45 % of the way into the neighbouring gap (or towards −s² for the
    first bulk), and at most ``rho_max`` in Bernstein parameter; nodes avoid the real axis.
    """
    nodes, dws = [], []
    th = 2 * math.pi * (np.arange(n) + 0.5) / n
    e = np.exp(1j * th)
    for k, (lo, hi) in enumerate(bulks_S):
        h, c = max(0.5 * (hi - lo), 1e-12 * max(abs(hi), 1e-300)), 0.5 * (hi + lo)
        left = lo - (bulks_S[k - 1][1] if k else -s2)
        right = (bulks_S[k + 1][0] - hi) if k + 1 < len(bulks_S) else math.inf
        ext = min(0.45 * min(left, right), h * ((rho_max + 1 / rho_max) / 2 - 1))
        a = 1.0 + ext / h
        rho = a + math.sqrt(a * a - 1.0)
        nodes.append(c + 0.5 * h * (rho * e + 1 / (rho * e)))
        dws.append(0.5 * h * 1j * (rho * e - 1 / (rho * e)) * (2 * math.pi / n) / (2j * math.pi))
    return np.concatenate(nodes), np.concatenate(dws)


def generalisation_curves(taus, activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 8.0,
                          sigma_x2: Optional[float] = None, atoms=None, edges=None, n_contour: int = 192,
                          n_mp: int = 64, tol: float = 1e-8, max_doublings: int = 3) -> dict:
    """Deterministic-equivalent L_test(τ), E_score(τ) (and L_train(τ) as a check), docs/theory.md §3–§4 (module doc).

    Data: isotropic with variance ``sigma_x2`` (default 1), or a covariance spectrum ``atoms``
    [(λ, w), ...] (then the spectrum of XᵀX/n is the Silverstein–Bai law and Σ_t enters through the
    Ledoit–Péché overlaps, :func:`sample_covariance_law`).
    ``edges``: bulks of U (from :func:`find_support`, d → ∞ equations); computed if None.
    The nodes per ellipse start at ``n_contour`` and double (at most ``max_doublings`` times) until
    ``contour_error`` — the largest change of any curve when every other node is dropped — is below
    ``tol``. Returns the curves, ``contour_error``, ``n_contour`` used, ``n_nonconverged`` contour
    nodes of the δ equation and ``max_imag`` (imaginary residue of the real quantities).
    """
    tau_s, w_s, sx2 = normalize_atoms(atoms, sigma_x2)
    law = _data_law(tau_s, w_s, sx2, psi_n, t, n_mp)
    for k in range(max_doublings + 1):
        res = _curves_on_contours(taus, activation, t, psi_p, psi_n, sx2, tau_s, w_s, law, edges, n_contour)
        edges = res.pop("_edges")
        if res["contour_error"] < tol or k == max_doublings:
            return res
        n_contour *= 2


def _data_law(tau_s, w_s, sx2, psi_n, t, n_mp):
    """Nodes ℓ and weights of the XᵀX/n spectrum, ``vᵀ Σ_t v`` per node and on null(X) (per direction)."""
    dt = -math.expm1(-2 * t)
    if np.ptp(tau_s) == 0:  # isotropic: Marchenko–Pastur, vᵀ Σ_t v = λ_t exactly
        ell, wl = mp_quadrature(1.0 / psi_n, sx2, n_mp)
        lam_t = math.exp(-2 * t) * sx2 + dt
        return ell, wl, np.full(ell.size, lam_t), lam_t
    ell, wl, ov = sample_covariance_law(tau_s, w_s, 1.0 / psi_n, n_mp)
    a = math.exp(-2 * t) * ov + dt
    if psi_n >= 1:
        return ell, wl, a, 0.0
    null_ov = (sx2 - psi_n * float(ov @ wl)) / (1.0 - psi_n)  # trace conservation: Σ_k vᵀΣv = Tr Σ
    return ell, wl, a, math.exp(-2 * t) * null_ov + dt


def _curves_on_contours(taus, activation, t, psi_p, psi_n, sx2, tau_s, w_s, law, edges, n_contour) -> dict:
    """:func:`generalisation_curves` at a fixed number of contour nodes per bulk."""
    taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    k = ge_constants(activation, t, sx2)
    isotropic = bool(np.ptp(tau_s) == 0)
    if edges is None:
        atoms_n = None if isotropic else list(zip(tau_s.tolist(), w_s.tolist()))
        edges, _ = find_support(spectrum_params(activation, t, psi_p, psi_n, atoms=atoms_n,
                                                sigma_x2=sx2 if atoms_n is None else None))
    s2, b2, dt = k.s2, k.b2, k.delta
    blocks = _Blocks(k.c, k.v2, b2, psi_n, *law)
    bulks_S = [(lo - s2, hi - s2) for lo, hi in edges]
    om, dw = _contours(bulks_S, s2, n_contour)
    delta, conv, _ = wishart_delta(blocks, om, psi_p)
    beta = psi_p / (1.0 + delta)
    Q, qG, qF = blocks.qbar(beta, om)
    wl, wa = blocks.w, blocks.w * blocks.a
    wFa = blocks.wF * blocks.a_null
    # one-resolvent trace t1 = (1/d) tr P_F Q̄; two-resolvent kernel K = (1/d) Tr Q1 A Q2 P_F, A = P_F Σ_t P_F
    q22 = Q[:, :, 1, 1]
    t1 = q22 @ wl + blocks.wF * qF
    u0 = (q22 * wa) @ q22.T + wFa * np.outer(qF, qF)
    TQ = np.einsum("lab,jlbc->jlac", blocks.B, Q)                 # T̂ Q̄
    Qrow = Q[:, :, 1, :].reshape(om.size, -1)
    u1 = (TQ[:, :, :, 1] * wl[None, :, None]).reshape(om.size, -1) @ Qrow.T \
        + blocks.wF * blocks.tF * np.outer(qF, qF)
    u1a = (TQ[:, :, :, 1] * wa[None, :, None]).reshape(om.size, -1) @ Qrow.T + wFa * blocks.tF * np.outer(qF, qF)
    TTQ = np.einsum("lab,jlbc->jlac", blocks.B, TQ) * wl[None, :, None, None]
    u2 = TTQ.reshape(om.size, -1) @ np.swapaxes(Q, 2, 3).reshape(om.size, -1).T
    u2 = u2 + blocks.wG * blocks.tG ** 2 * np.outer(qG, qG) + blocks.wF * blocks.tF ** 2 * np.outer(qF, qF)
    opd = 1.0 + delta
    K2 = u0 + psi_p * u1a * u1 / (np.outer(opd, opd) - psi_p * u2)
    kappa, mustar2 = k.mu1 ** 2 / k.Gamma2, k.mustar2
    lam = om + s2                                                 # U-space variable on the contour

    def curves(sel):
        w = np.where(sel, dw, 0.0) * (2.0 if not sel.all() else 1.0)
        out = {"train_loss": [], "test_loss": []}
        for tau in taus:
            kk = 2.0 * dt * tau / psi_p
            em = -np.ones_like(lam) if np.isinf(kk) else np.expm1(-kk * lam)   # e^{−kλ} − 1
            f = em / lam
            e2 = -np.ones_like(lam) if np.isinf(kk) else np.expm1(-2 * kk * lam)
            g_f, g_f2, g_tr = om * f, om * f * f, -om * e2 / lam
            phi1 = -(g_f * t1) @ w / b2
            phi1_sq = -(g_f2 * t1) @ w / b2
            phi_tr = -(g_tr * t1) @ w / b2                        # (1/d) Tr Fᵀ U^{-1}(1 − e^{−2kU}) F
            gw = g_f * w
            phi2 = gw @ K2 @ gw / b2 ** 2                         # (1/d) Tr Fᵀ f F Σ_t Fᵀ f F
            out["train_loss"].append(1.0 - b2 * phi_tr)
            out["test_loss"].append(1.0 + b2 * (kappa * phi2 + mustar2 * phi1_sq + 2.0 * phi1))
        return {kk: np.array(v) for kk, v in out.items()}

    full = curves(np.ones(om.size, bool))
    half = curves((np.arange(om.size) % 2) == 0)
    res = {key: v.real for key, v in full.items()}
    fisher = float(w_s @ (1.0 / (math.exp(-2 * t) * tau_s + dt)))  # (1/d) Tr Σ_t^{-1}
    res["score_error"] = (res["test_loss"] - 1.0) / dt + fisher
    res["contour_error"] = float(max(np.max(np.abs(full[kk] - half[kk])) for kk in full))
    res["max_imag"] = float(max(np.max(np.abs(v.imag)) for v in full.values()))
    res["n_nonconverged"] = int(np.sum(~conv))
    res["n_contour"] = n_contour
    res["method"] = ("deterministic equivalent (Wishart two-resolvent, "
                     + ("isotropic data)" if isotropic else "covariance spectrum, Ledoit–Péché overlaps)"))
    res["_edges"] = edges
    return res
