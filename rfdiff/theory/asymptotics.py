"""Asymptotics of the spectrum of U and the two timescales: Theorem 3.2 (docs/theory.md §4).

For ψ_p > ψ_n ≫ 1, ``ρ = (1 − (1+ψ_n)/ψ_p) δ(λ − s_t²) + (ψ_n/ψ_p) ρ_1 + (1/ψ_p) ρ_2``
(underparameterised ψ_n > ψ_p: ``(1 − 1/ψ_p) ρ_1 + (1/ψ_p) ρ_2``), where

* ρ_1 (memorisation bulk) is a shifted Marchenko–Pastur law on
  ``[s_t² + v_t²(1 − √(ψ_p/ψ_n))², s_t² + v_t²(1 + √(ψ_p/ψ_n))²]`` — the nonzero spectrum of
  ``s_t² + v_t² Ω Ωᵀ/n``;
* ρ_2 (population bulk, scale ψ_p) is the spectrum of ``Ũ ≃ (μ_1²/Γ_t²) W Σ_t Wᵀ/d + (s_t²+v_t²) I``
  restricted to its d non-trivial eigenvalues, computed from the Bai–Silverstein equation for
  ``Σ_t^{1/2} (WᵀW/p) Σ_t^{1/2}`` (aspect ratio d/p = 1/ψ_p).

Timescales: ``τ_gen = ψ_p/(Δ_t λ)`` for λ in ρ_2 (independent of n) and
``τ_mem = ψ_p/(Δ_t λ_min)``, λ_min the left edge of ρ_1.

At moderate ψ_n the exact equations (Theorem 3.1) also put a group of ≈ d eigenvalues just above
s_t², below the memorisation bulk (which then holds n − d eigenvalues); :func:`classify_bulks`
identifies it from the numerically found bulks, and :func:`timescales` reports its time.
"""
from __future__ import annotations

import math

import numpy as np

from .constants import ge_constants
from .spectrum import SpectrumParams, continuation

__all__ = ["atom_weight_asymptotic", "rho1_edges", "rho1_density", "rho2_solve", "rho2_edges", "classify_bulks",
           "spectral_timescales", "tau_mem_asymptotic"]


def atom_weight_asymptotic(psi_p: float, psi_n: float) -> float:
    """Weight of the atom at s_t² in Theorem 3.2 (docs/theory.md §4): ``1 − (1+ψ_n)/ψ_p`` when positive, else 0."""
    return max(0.0, 1.0 - (1.0 + psi_n) / psi_p)


def rho1_edges(P: SpectrumParams) -> tuple[float, float]:
    """Edges ``s_t² + v_t² (1 ∓ √(ψ_p/ψ_n))²`` of the memorisation bulk ρ_1 (Theorem 3.2, docs/theory.md §4)."""
    g = math.sqrt(P.psi_p / P.psi_n)
    return P.s2 + P.v2 * (1.0 - g) ** 2, P.s2 + P.v2 * (1.0 + g) ** 2


def tau_mem_asymptotic(activation, t: float, psi_p, psi_n, sigma_x2: float = 1.0) -> np.ndarray:
    """Theorem 3.2's memorisation time ``ψ_p/(Δ_t λ_min)``, ``λ_min = s_t² + v_t²(1 − √(ψ_p/ψ_n))²``, for ψ_p > ψ_n,
    else ∞ (no memorisation bulk below the population one; docs/theory.md §4.8), for any activation.

    ``psi_p`` and ``psi_n`` broadcast against each other; s_t², v_t², Δ_t are :func:`ge_constants`
    of ``activation`` at (t, σ_x²) — the same constants as :func:`rho1_edges`.
    """
    c = ge_constants(activation, t, sigma_x2)
    pp, pn = np.broadcast_arrays(np.asarray(psi_p, dtype=np.float64), np.asarray(psi_n, dtype=np.float64))
    if not (np.all(np.isfinite(pp)) and np.all(pp > 0) and np.all(pn > 0)):
        raise ValueError("psi_p and psi_n must be > 0 (psi_p finite)")
    with np.errstate(divide="ignore"):
        lmin = c.s2 + c.v2 * (1.0 - np.sqrt(pp / pn)) ** 2
        return np.where(pp > pn, pp / (c.delta * lmin), np.inf)


def rho1_density(lam, P: SpectrumParams) -> np.ndarray:
    """Shifted Marchenko–Pastur density ρ_1 (normalised to 1) of Theorem 3.2 (docs/theory.md §4).

    ρ_1 is the law of the nonzero eigenvalues of ``s_t² + v_t² ΩΩᵀ/n`` (Ω p×n): with
    ``x = λ − s_t²`` and edges ``x_± = v_t²(1 ± √(ψ_p/ψ_n))²``,
    ``ρ_1(λ) = √((x_+ − x)(x − x_−)) / (2π v_t² min(1, ψ_p/ψ_n) x)`` inside, 0 outside.
    """
    lam = np.asarray(lam, dtype=np.float64)
    lo, hi = rho1_edges(P)
    x = lam - P.s2
    xm, xp = lo - P.s2, hi - P.s2
    y = min(1.0, P.psi_p / P.psi_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.sqrt(np.clip((xp - x) * (x - xm), 0.0, None)) / (2.0 * math.pi * P.v2 * y * x)
    return np.where((x > xm) & (x < xp), val, 0.0)


# ----------------------------------------------------------------------------------------------
# ρ_2 via Bai–Silverstein


def _rho2_setup(P: SpectrumParams, mu1: float, Gamma2: float, t: float):
    """Population spectrum H of Σ_t (atoms), ratio y = 1/ψ_p, scale κ = ψ_p μ_1²/Γ_t², shift s²+v²."""
    tau = math.exp(-2.0 * t) * P.lam + (-math.expm1(-2.0 * t))
    return tau, P.w, 1.0 / P.psi_p, P.psi_p * mu1 * mu1 / Gamma2, P.s2 + P.v2


def _bs_newton(z, mu, tau, h, y, tol, max_iter):
    """Newton for the companion Bai–Silverstein equation ``z = −1/m̲ + y ∫ τ dH/(1 + τ m̲)``."""
    mu = mu.copy()
    conv = np.zeros(mu.shape, bool)
    res = np.full(mu.shape, np.inf)
    with np.errstate(all="ignore"):
        for _ in range(max_iter + 1):
            den = 1.0 + tau[None, :] * mu[:, None]
            f = -1.0 / mu + y * (h * tau / den).sum(1) - z
            scale = np.abs(1.0 / mu) + y * (h * tau / np.abs(den)).sum(1) + np.abs(z)
            res = np.abs(f) / scale
            ok = (res < tol) & (mu.imag > -1e-10 * np.abs(mu)) & np.isfinite(mu)
            conv |= ok
            if conv.all():
                break
            fp = 1.0 / (mu * mu) - y * (h * tau * tau / (den * den)).sum(1)
            step = np.where(conv, 0.0, -f / fp)
            new = mu + step
            bad = (new.imag < 0) | ~np.isfinite(new)
            new = np.where(bad, mu + 0.3 * step, new)
            mu = new
    return mu, conv, res


def rho2_solve(lam, P: SpectrumParams, mu1: float, Gamma2: float, t: float, eps=None, tol=1e-12):
    """ρ_2(λ) (normalised to 1) from the Bai–Silverstein equation (Theorem 3.2, docs/theory.md §4).

    ρ_2 is the law of the d non-trivial eigenvalues of Ũ: ``λ = s_t² + v_t² + κ x`` with
    ``κ = ψ_p μ_1²/Γ_t²`` and x an eigenvalue of ``Σ_t^{1/2} (WᵀW/p) Σ_t^{1/2}``, whose Stieltjes
    transform ``m = (m̲ + (1 − y)/z)/y`` follows from the companion ``m̲`` (y = 1/ψ_p).
    Returns ``(rho2, converged)``.
    """
    tau, h, y, kappa, shift = _rho2_setup(P, mu1, Gamma2, t)
    lam = np.asarray(lam, dtype=np.float64).ravel()
    x = (lam - shift) / kappa
    xmax = float(tau.max()) * (1.0 + math.sqrt(y)) ** 2
    eps_f = np.full(x.shape, 1e-10 * xmax if eps is None else eps / kappa)
    e0 = 10.0 * (xmax + np.abs(x))
    newton = lambda z, xs, it: _bs_newton(z, xs[0], tau, h, y, tol, it)  # noqa: E731
    (mu,), cur, failed = continuation(x, eps_f, e0, (-1.0 / (x + 1j * e0),), newton)
    z = x + 1j * eps_f
    mu, ok, _ = _bs_newton(z, mu, tau, h, y, tol, 4)
    with np.errstate(all="ignore"):
        m = (mu + (1.0 - y) / z) / y
    rho = np.where(x > 0, m.imag / math.pi, 0.0) / kappa
    return np.clip(rho, 0.0, None), ok & ~failed & (cur <= eps_f * (1 + 1e-12))


def rho2_edges(P: SpectrumParams, mu1: float, Gamma2: float, t: float, n_grid: int = 4000):
    """Edges of each bulk of ρ_2 from the companion Bai–Silverstein map (Theorem 3.2, docs/theory.md §4).

    Outside the support ``x(m̲) = −1/m̲ + y Σ_k h_k τ_k/(1 + τ_k m̲)`` is increasing on the real
    m̲ axis; support edges are its critical values (Silverstein–Choi). Returns a list of ``[lo, hi]``
    in λ units (sorted).
    """
    tau, h, y, kappa, shift = _rho2_setup(P, mu1, Gamma2, t)
    poles = np.sort(np.unique(-1.0 / tau))  # negative; the support of B comes from real m̲ < 0
    u = np.geomspace(1e-13, 0.5, n_grid // 2)
    grids = [poles[0] - np.abs(poles[0]) * np.geomspace(1e8, 1e-13, n_grid)]  # (−∞, first pole)
    for a, b in zip(poles, np.concatenate([poles[1:], [0.0]])):
        grids.append(np.concatenate([a + (b - a) * u, b - (b - a) * u[::-1]]))
    crit = [m for g in grids for m in _critical_points(g, tau, h, y)]
    xs = np.sort(np.array([_x_of(mu, tau, h, y) for mu in crit]))
    xs = xs[xs > 0]
    if xs.size % 2:
        raise RuntimeError(f"rho2_edges: found an odd number of edges {xs}")
    return [[float(shift + kappa * xs[2 * k]), float(shift + kappa * xs[2 * k + 1])] for k in range(xs.size // 2)]


def _x_of(mu, tau, h, y):
    return -1.0 / mu + y * float(np.sum(h * tau / (1.0 + tau * mu)))


def _dx(mu, tau, h, y):
    return 1.0 / (mu * mu) - y * np.sum(h[None] * tau[None] ** 2 / (1.0 + tau[None] * mu[:, None]) ** 2, axis=1)


def _critical_points(grid, tau, h, y):
    """Roots of x'(m̲) on a real grid, refined by bisection."""
    d = _dx(grid, tau, h, y)
    out = []
    for i in np.nonzero(np.sign(d[:-1]) != np.sign(d[1:]))[0]:
        a, b = grid[i], grid[i + 1]
        fa = d[i]
        for _ in range(100):
            m = 0.5 * (a + b)
            fm = _dx(np.array([m]), tau, h, y)[0]
            if np.sign(fm) == np.sign(fa):
                a, fa = m, fm
            else:
                b = m
        out.append(0.5 * (a + b))
    return out


# ----------------------------------------------------------------------------------------------
# bulk identification and timescales


def classify_bulks(edges, masses, P: SpectrumParams, mu1: float, Gamma2: float, t: float) -> dict:
    """Label the numerically found bulks of Theorem 3.1 as population / memorisation / finite group (docs/theory.md §4).

    A bulk is *population* when its centre is closer (in log scale) to the ρ_2 range than to the
    ρ_1 range of Theorem 3.2; among the others the heaviest is the *memorisation* bulk and those
    below it form the *finite group* (≈ d eigenvalues just above s_t²). Returns indices.
    """
    if not edges:
        return {"population": [], "memorisation": None, "finite_group": [], "other": []}
    r1 = rho1_edges(P)
    r2 = rho2_edges(P, mu1, Gamma2, t)
    c1 = math.log(math.sqrt(max(r1[0], 1e-300) * r1[1]) - P.s2 + 1e-300)
    c2 = math.log(math.sqrt(r2[0][0] * r2[-1][1]) - P.s2) if r2 else math.inf
    pop, rest = [], []
    for k, (lo, hi) in enumerate(edges):
        c = math.log(math.sqrt(max(lo - P.s2, 1e-300) * (hi - P.s2)))
        (pop if abs(c - c2) < abs(c - c1) else rest).append(k)
    mem = max(rest, key=lambda k: masses[k]) if rest and masses else (rest[-1] if rest else None)
    fg = [k for k in rest if mem is not None and edges[k][1] <= edges[mem][0]]
    other = [k for k in rest if k != mem and k not in fg]
    return {"population": pop, "memorisation": mem, "finite_group": fg, "other": other}


def spectral_timescales(P: SpectrumParams, delta: float, mu1: float, Gamma2: float, t: float, edges=None, masses=None) -> dict:
    """τ_gen, τ_mem (Theorem 3.2 and from the exact bulks), and the finite-ψ group (docs/theory.md §4).

    ``τ = ψ_p/(Δ_t λ)``: τ_gen uses the lower edge of the population bulk (slowest population
    mode; ``tau_gen_mean`` its mean), τ_mem the lower edge of the memorisation bulk.
    ``edges``/``masses`` are the numerically found bulks of Theorem 3.1 (optional).
    """
    r1 = rho1_edges(P)
    r2 = rho2_edges(P, mu1, Gamma2, t)
    out = {
        "atom_weight_asymptotic": atom_weight_asymptotic(P.psi_p, P.psi_n),
        "rho1_edges_asymptotic": [float(r1[0]), float(r1[1])],
        "rho2_edges_asymptotic": r2,
        "lambda_min_asymptotic": float(r1[0]),
        "tau_mem_asymptotic": P.psi_p / (delta * r1[0]) if r1[0] > 0 else math.inf,
        "tau_gen": P.psi_p / (delta * r2[0][0]) if r2 else math.nan,
    }
    # mean of ρ_2: s²+v² + κ E[x], E[x] = mean of Σ_t's spectrum
    tau = math.exp(-2.0 * t) * P.lam + delta
    mean2 = P.s2 + P.v2 + P.psi_p * mu1 * mu1 / Gamma2 * float(P.w @ tau)
    out["tau_gen_mean"] = P.psi_p / (delta * mean2)
    out.update({"lambda_min": math.nan, "tau_mem": math.nan, "tau_gen_exact": math.nan, "finite_group": None,
                "bulk_labels": None})
    if edges:
        lab = classify_bulks(edges, masses or [], P, mu1, Gamma2, t)
        out["bulk_labels"] = lab
        if lab["population"]:
            lo = min(edges[k][0] for k in lab["population"])
            out["tau_gen_exact"] = P.psi_p / (delta * lo)
        if lab["memorisation"] is not None:
            lmin = edges[lab["memorisation"]][0]
            out["lambda_min"] = float(lmin)
            out["tau_mem"] = P.psi_p / (delta * lmin)
        if lab["finite_group"]:
            lo = min(edges[k][0] for k in lab["finite_group"])
            hi = max(edges[k][1] for k in lab["finite_group"])
            mass = float(sum(masses[k] for k in lab["finite_group"])) if masses else math.nan
            out["finite_group"] = {"edges": [float(lo), float(hi)], "mass": mass,
                                   "count_over_d": mass * P.psi_p, "tau": P.psi_p / (delta * lo),
                                   "tau_upper_edge": P.psi_p / (delta * hi)}
    return out
