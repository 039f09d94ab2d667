"""Deterministic equivalent of the test loss and the score error for isotropic data (SPEC §3–§4).

**Reduction to a Wishart matrix.** In the Lemma C.1 model ``U = Z Zᵀ + s_t² I_p`` with
``Z = [G/√n, b_t F] ∈ R^{p×(n+d)}``, ``F = W/√d``, ``G = √c F Xᵀ + v_t Ω``. Conditionally on the
training set X the p rows z_i of Z are i.i.d. ``N(0, T)`` with

    T = (1/d) [[c X Xᵀ/n + (v_t²/ψ_n) I_n,  √c b_t X/√n], [√c b_t Xᵀ/√n,  b_t² I_d]],

so ``S = ZᵀZ = Σ_i z_i z_iᵀ`` is Wishart. With ``P_F`` the projector on the last d coordinates,
``Fᵀ h(U) F = (1/b_t²) P_F g_h(S) P_F`` where ``g_h(x) = x h(x + s_t²)``. In the basis of the
singular vectors of X, T splits into 2×2 blocks, one per eigenvalue ℓ of XᵀX/n,

    T̂(ℓ) = d T = [[c ℓ + v_t²/ψ_n, b_t √(c ℓ)], [b_t √(c ℓ), b_t²]],

plus ``(ψ_n − 1)_+ d`` directions with ``v_t²/ψ_n`` and ``(1 − ψ_n)_+ d`` with ``b_t²``; ℓ follows
Marchenko–Pastur with ratio d/n and scale σ_x², so every normalised trace below is an integral over ℓ.

**One resolvent** (Silverstein): ``Q(ω) = (S − ω)^{-1} ≃ Q̄ = (β T̂ − ω)^{-1}`` with
``β = ψ_p/(1 + δ)``, ``δ = (1/d) tr T̂ Q̄``.
**Two resolvents** (leave-one-out, same Gaussian rows):
``E Q_1 A Q_2 ≃ Q̄_1 A Q̄_2 + κ_12 tr(T Q̄_1 A Q̄_2) Q̄_1 T Q̄_2 / (1 − κ_12 tr(T Q̄_1 T Q̄_2))``,
``κ_12 = p/((1+δ_1)(1+δ_2))``; with A = P_F,

    (1/d) Tr(Q_1 P_F Q_2 P_F) ≃ u_0 + ψ_p u_1² / ((1+δ_1)(1+δ_2) − ψ_p u_2),
    u_0 = (1/d) tr Q̄_1 P_F Q̄_2 P_F,  u_1 = (1/d) tr T̂ Q̄_1 P_F Q̄_2,  u_2 = (1/d) tr T̂² Q̄_1 Q̄_2.

**Test loss.** With ``f_τ(λ) = (e^{−2Δ_t λ τ/ψ_p} − 1)/λ``, ``Ũ ≃ κ̃ λ_t F Fᵀ + μ_*² I``
(``κ̃ = μ_1²/Γ_t²``, ``λ_t = e^{−2t} σ_x² + Δ_t``) and ``Ṽ = V = b_t F`` (SPEC §3),

    L_test(τ) = 1 + b_t² [κ̃ λ_t Φ_2(τ) + μ_*² Φ_1(f_τ²) + 2 Φ_1(f_τ)],
    Φ_1(h) = (1/d) Tr Fᵀ h(U) F,   Φ_2(τ) = (1/d) Tr (Fᵀ f_τ(U) F)²,

and ``E_score = (L_test − 1)/Δ_t + 1/λ_t``. The functions of S are contour integrals
``g(S) = −(1/2πi) ∮ g(ω) Q(ω) dω`` over one Bernstein ellipse per bulk of S (bulks from
:func:`find_support` shifted by −s_t²; every ellipse stays right of ``−s_t²`` so ``e^{−kω}`` is
bounded), evaluated by the trapezoidal rule; Φ_2 is a double contour integral of the two-resolvent
kernel, computed once per (ω_1, ω_2) node pair and reused for every τ. The rank-one μ_0² spike of
non-centred activations is ignored (its eigenvalue ≈ p μ_0² makes f_τ vanish on it).
"""
from __future__ import annotations

import math

import numpy as np

from .spectrum import bulk_quadrature

__all__ = ["mp_quadrature", "wishart_delta", "generalisation_curves"]


def mp_quadrature(ratio: float, scale: float = 1.0, n_nodes: int = 128):
    """Nodes ℓ and probability weights of the non-zero eigenvalues of XᵀX/n, X ∈ R^{n×d} i.i.d. N(0, scale).

    Marchenko–Pastur law with ratio d/n (SPEC §4): density ``√((b−ℓ)(ℓ−a))/(2π scale ratio ℓ)``
    on ``[a, b] = scale (1 ∓ √ratio)²``, renormalised to its continuous mass min(1, 1/ratio).
    """
    if ratio <= 0 or scale <= 0:
        raise ValueError(f"ratio and scale must be > 0, got {ratio}, {scale}")
    a, b = scale * (1 - math.sqrt(ratio)) ** 2, scale * (1 + math.sqrt(ratio)) ** 2
    x, w = bulk_quadrature((a, b), n_nodes)
    dens = np.sqrt(np.clip((b - x) * (x - a), 0.0, None)) / (2 * math.pi * scale * ratio * x)
    w = w * dens
    return x, w / w.sum()


class _Blocks:
    """2×2 blocks T̂(ℓ) on MP nodes plus the pure-G / pure-F directions (weights per d)."""

    def __init__(self, c, v2, b2, psi_n, sigma_x2, n_mp):
        ell, wl = mp_quadrature(1.0 / psi_n, sigma_x2, n_mp)
        self.w = wl * min(1.0, psi_n)                       # (1/d) Σ_k → min(1, ψ_n) ∫ dMP
        self.B = np.empty((ell.size, 2, 2))
        self.B[:, 0, 0] = c * ell + v2 / psi_n
        self.B[:, 0, 1] = self.B[:, 1, 0] = math.sqrt(b2 * c) * np.sqrt(ell)
        self.B[:, 1, 1] = b2
        self.tG, self.wG = v2 / psi_n, max(psi_n - 1.0, 0.0)
        self.tF, self.wF = b2, max(1.0 - psi_n, 0.0)

    def qbar(self, beta, omega):
        """Q̄ = (β T̂ − ω)^{-1} per (ω, ℓ): (..., L, 2, 2), and the scalar resolvents of the extra directions."""
        be, om = beta[..., None], omega[..., None]
        m11 = be * self.B[:, 0, 0] - om
        m22 = be * self.B[:, 1, 1] - om
        m12 = be * self.B[:, 0, 1]
        det = m11 * m22 - m12 * m12
        Q = np.stack([np.stack([m22, -m12], -1), np.stack([-m12, m11], -1)], -2) / det[..., None, None]
        return Q, 1.0 / (beta * self.tG - omega), 1.0 / (beta * self.tF - omega)

    def delta_map(self, delta, omega, psi_p):
        """``(1/d) tr T̂ Q̄`` at β = ψ_p/(1+δ) and its derivative in δ (explicit 2×2 algebra)."""
        beta = psi_p / (1.0 + delta)
        be, om = beta[..., None], omega[..., None]
        B00, B01, B11 = self.B[:, 0, 0], self.B[:, 0, 1], self.B[:, 1, 1]
        m11, m22, m12 = be * B00 - om, be * B11 - om, be * B01
        det = m11 * m22 - m12 * m12
        q00, q11, q01 = m22 / det, m11 / det, -m12 / det
        a, b = B00 * q00 + B01 * q01, B00 * q01 + B01 * q11          # rows of T̂ Q̄
        c, e = B01 * q00 + B11 * q01, B01 * q01 + B11 * q11
        qG, qF = 1.0 / (beta * self.tG - omega), 1.0 / (beta * self.tF - omega)
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
        h, c = 0.5 * (hi - lo), 0.5 * (hi + lo)
        left = lo - (bulks_S[k - 1][1] if k else -s2)
        right = (bulks_S[k + 1][0] - hi) if k + 1 < len(bulks_S) else math.inf
        ext = min(0.45 * min(left, right), h * ((rho_max + 1 / rho_max) / 2 - 1))
        a = 1.0 + ext / h
        rho = a + math.sqrt(a * a - 1.0)
        nodes.append(c + 0.5 * h * (rho * e + 1 / (rho * e)))
        dws.append(0.5 * h * 1j * (rho * e - 1 / (rho * e)) * (2 * math.pi / n) / (2j * math.pi))
    return np.concatenate(nodes), np.concatenate(dws)


def generalisation_curves(taus, activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 8.0,
                          sigma_x2: float = 1.0, edges=None, n_contour: int = 192, n_mp: int = 160,
                          tol: float = 1e-9, max_doublings: int = 3) -> dict:
    """Deterministic-equivalent L_test(τ), E_score(τ) (and L_train(τ) as a check) for isotropic data (module doc).

    ``edges``: bulks of U (from :func:`find_support`, d → ∞ equations); computed if None.
    The nodes per ellipse start at ``n_contour`` and double (at most ``max_doublings`` times) until
    ``contour_error`` — the largest change of any curve when every other node is dropped — is below
    ``tol``. Returns the curves, ``contour_error``, ``n_contour`` used, ``n_nonconverged`` contour
    nodes of the δ equation and ``max_imag`` (imaginary residue of the real quantities).
    """
    for k in range(max_doublings + 1):
        res = _curves_on_contours(taus, activation, t, psi_p, psi_n, sigma_x2, edges, n_contour, n_mp)
        edges = res.pop("_edges")
        if res["contour_error"] < tol or k == max_doublings:
            return res
        n_contour *= 2


def _curves_on_contours(taus, activation, t, psi_p, psi_n, sigma_x2, edges, n_contour, n_mp) -> dict:
    """:func:`generalisation_curves` at a fixed number of contour nodes per bulk."""
    from .constants import ge_constants
    from .spectrum import find_support, spectrum_params
    taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
    k = ge_constants(activation, t, sigma_x2)
    if edges is None:
        edges, _ = find_support(spectrum_params(activation, t, psi_p, psi_n, sigma_x2=sigma_x2))
    s2, b2, dt = k.s2, k.b2, k.delta
    blocks = _Blocks(k.c, k.v2, b2, psi_n, sigma_x2, n_mp)
    bulks_S = [(lo - s2, hi - s2) for lo, hi in edges]
    om, dw = _contours(bulks_S, s2, n_contour)
    delta, conv, _ = wishart_delta(blocks, om, psi_p)
    beta = psi_p / (1.0 + delta)
    Q, qG, qF = blocks.qbar(beta, om)
    wl = blocks.w
    # one-resolvent trace t1 = (1/d) tr P_F Q̄ and the two-resolvent kernel K = (1/d) Tr Q1 P_F Q2 P_F
    q22 = Q[:, :, 1, 1]
    t1 = q22 @ wl + blocks.wF * qF
    u0 = (q22 * wl) @ q22.T + blocks.wF * np.outer(qF, qF)
    TQ = np.einsum("lab,jlbc->jlac", blocks.B, Q)                 # T̂ Q̄
    R1 = (TQ[:, :, :, 1] * wl[None, :, None]).reshape(om.size, -1)
    u1 = R1 @ Q[:, :, 1, :].reshape(om.size, -1).T + blocks.wF * blocks.tF * np.outer(qF, qF)
    TTQ = np.einsum("lab,jlbc->jlac", blocks.B, TQ) * wl[None, :, None, None]
    u2 = TTQ.reshape(om.size, -1) @ np.swapaxes(Q, 2, 3).reshape(om.size, -1).T
    u2 = u2 + blocks.wG * blocks.tG ** 2 * np.outer(qG, qG) + blocks.wF * blocks.tF ** 2 * np.outer(qF, qF)
    opd = 1.0 + delta
    K2 = u0 + psi_p * u1 ** 2 / (np.outer(opd, opd) - psi_p * u2)
    lam_t = math.exp(-2 * t) * sigma_x2 + dt
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
            phi2 = gw @ K2 @ gw / b2 ** 2
            out["train_loss"].append(1.0 - b2 * phi_tr)
            out["test_loss"].append(1.0 + b2 * (kappa * lam_t * phi2 + mustar2 * phi1_sq + 2.0 * phi1))
        return {kk: np.array(v) for kk, v in out.items()}

    full = curves(np.ones(om.size, bool))
    half = curves((np.arange(om.size) % 2) == 0)
    res = {key: v.real for key, v in full.items()}
    res["score_error"] = (res["test_loss"] - 1.0) / dt + 1.0 / lam_t
    res["contour_error"] = float(max(np.max(np.abs(full[kk] - half[kk])) for kk in full))
    res["max_imag"] = float(max(np.max(np.abs(v.imag)) for v in full.values()))
    res["n_nonconverged"] = int(np.sum(~conv))
    res["n_contour"] = n_contour
    res["method"] = "deterministic equivalent (Wishart two-resolvent, isotropic data)"
    res["_edges"] = edges
    return res
