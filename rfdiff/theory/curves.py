"""Theoretical learning curves (docs/theory.md §3–§4) and the one-call public prediction :func:`predict`.

**Train loss — deterministic equivalent.** In the eigenbasis of U (docs/theory.md §3)
``L_train(τ) = 1 − (1/d) Σ_i ‖Vᵀq_i‖²/λ_i (1 − e^{−4Δ_t λ_i τ/ψ_p})``. With ``V ≃ b_t W/√d``
(Lemma C.1), ``(1/d) Σ_i ‖Vᵀq_i‖² h(λ_i) = b_t² ψ_p (1/(pd)) Tr(Wᵀ h(U) W) = b_t² ψ_p ∫ h dμ_s``,
where ``μ_s = (1/π) Im s(λ + i0) dλ`` is the V-weighted spectral measure of Theorem 3.1 (mass 1,
no atom at s_t²). Hence

    L_train(τ) = 1 − b_t² ψ_p ∫ dμ_s(λ) (1 − e^{−4Δ_t λ τ/ψ_p}) / λ,

integrated bulk by bulk with Chebyshev–Gauss quadrature on the numerically found supports.
``train_loss_inf`` is its τ → ∞ limit and ``train_loss_plateau`` the value once only the
population bulk has relaxed (memorisation bulks frozen).

**Test loss and score error.** The two-resolvent deterministic equivalent of
``Tr(Vᵀ f(U) Ũ f(U) V)`` is :func:`.generalisation.generalisation_curves` (used by :func:`predict`,
any ρ_Σ). The finite-d cross-check (not a deterministic equivalent): :func:`ge_finite_curves`
evaluates the exact eigen-mode formulas of docs/theory.md §3 on finite-d draws of the Lemma C.1
Gaussian-equivalent matrices (U, Ũ sampled; V = Ṽ = b_t W/√d), averaged over seeds, using the
low-rank structure ``U = Z Zᵀ + s_t² I`` so that d of a few hundred costs seconds; its train curve
is returned too, as a finite-d cross-check of the deterministic one. For Gaussian data the score
error then follows exactly from ``E_score = (L_test − 1)/Δ_t + (1/d) Tr Σ_t^{-1}`` (because Ṽ = √Δ_t E[φ yᵀ] Σ_t^{-1}, Stein).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from ..data import spectrum_eigenvalues
from .asymptotics import spectral_timescales
from .constants import ge_constants
from .generalisation import generalisation_curves
from .gaussian_equivalent import ge_train_lowrank
from ..results import Curves, Prediction, Spectrum
from .spectrum import (SpectrumParams, atom_weight_numeric, bulk_quadrature, density, find_support, normalize_atoms,
                       solve_resolvent, spectrum_params)

__all__ = ["VWeightedMeasure", "v_weighted_measure", "train_loss_curve", "ge_lowrank_curves", "ge_finite_curves",
           "predict", "theory_spectrum"]


class VWeightedMeasure:
    """Quadrature representation of μ_s = (1/π) Im s(λ+i0) dλ per bulk (docs/theory.md §4): nodes, weights, bulk index."""

    def __init__(self, nodes: np.ndarray, weights: np.ndarray, bulk: np.ndarray, edges: list, converged: np.ndarray,
                 solution: Optional[dict] = None):
        self.nodes, self.weights, self.bulk, self.edges, self.converged = nodes, weights, bulk, edges, converged
        self.solution = solution  # solve_resolvent output at the nodes (q, s, ... at ε = 1e-12 (λ − s²))

    def integrate(self, f, bulks: Optional[Sequence[int]] = None) -> np.ndarray:
        """``∫ f(λ) dμ_s(λ)`` (restricted to ``bulks``); f maps (N,) → (..., N)."""
        w = self.weights if bulks is None else np.where(np.isin(self.bulk, list(bulks)), self.weights, 0.0)
        return f(self.nodes) @ w


def v_weighted_measure(P: SpectrumParams, edges=None, n_quad: int = 512) -> VWeightedMeasure:
    """V-weighted measure (1/π) Im s(λ + i0) of Theorem 3.1 (docs/theory.md §4) on Chebyshev nodes of each bulk."""
    if edges is None:
        edges, _ = find_support(P)
    nodes, wts, idx = [], [], []
    for k, e in enumerate(edges):
        x, w = bulk_quadrature(e, n_quad)
        nodes.append(x), wts.append(w), idx.append(np.full(x.size, k))
    nodes = np.concatenate(nodes) if nodes else np.zeros(0)
    sol = solve_resolvent(nodes, P, eps=1e-12 * (nodes - P.s2))
    dens = np.clip(sol["s"].imag / math.pi, 0.0, None)
    return VWeightedMeasure(nodes, (np.concatenate(wts) if wts else np.zeros(0)) * dens,
                            np.concatenate(idx) if idx else np.zeros(0, int), edges, sol["converged"], sol)


def train_loss_curve(taus, P: SpectrumParams, delta: float, measure: Optional[VWeightedMeasure] = None,
                     bulks: Optional[Sequence[int]] = None) -> np.ndarray:
    """Deterministic-equivalent ``L_train(τ) = 1 − b_t² ψ_p ∫ dμ_s (1 − e^{−4Δλτ/ψ_p})/λ`` (docs/theory.md §3–§4).

    ``taus`` may include ``np.inf`` (gives the τ → ∞ limit). ``bulks`` restricts the integral.
    """
    if measure is None:
        measure = v_weighted_measure(P)
    taus = np.asarray(taus, dtype=np.float64)
    k = 4.0 * delta / P.psi_p

    def h(lam):
        with np.errstate(over="ignore", invalid="ignore"):
            x = np.multiply.outer(taus, lam) * k
            return np.where(np.isinf(x), 1.0, -np.expm1(-x)) / lam

    return 1.0 - P.b2_v * P.psi_p * measure.integrate(h, bulks)


def ge_lowrank_curves(taus, W, X, t: float, activation="tanh", cov_eigs=None, seed=0) -> dict:
    """Exact eigen-mode L_train, L_test, E_score (docs/theory.md §3) for one Lemma C.1 draw, via its low-rank structure.

    ``U = Z Zᵀ + s_t² I`` with ``Z = [G/√n, b_t W/√d (, μ_0 1)]`` (p × (n+d)), so U's
    non-trivial eigenpairs come from the (n+d)×(n+d) matrix ``ZᵀZ`` and every other mode has
    eigenvalue s_t²; with ``V = Ṽ = b_t W/√d`` and ``Ũ = (μ_1²/Γ_t²) F Σ_t Fᵀ + μ_*² I`` all the
    quadratic forms of docs/theory.md §3 reduce to (n+d)×d and d×d products. Cost ``O(p (n+d)²)``, no p×p
    eigendecomposition, so d of a few hundred is affordable.
    """
    W = np.asarray(W, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    p, d = W.shape
    lam_cov = np.ones(d) if cov_eigs is None else np.asarray(cov_eigs, dtype=np.float64)
    lr = ge_train_lowrank(W, X, t, activation, seed=seed, sigma_x2=float(lam_cov.mean()))
    k = lr["constants"]
    dt = k["delta"]
    F = W / math.sqrt(d)
    Qn, lam, V = lr["Q"], lr["lam"], lr["V"]
    Y = Qn.T @ V                               # (k, d)
    Vperp = V - Qn @ Y                         # component on the s² eigenspace (0 when b > 0)
    FQ = F.T @ Qn                              # (d, k)
    FVp = F.T @ Vperp                          # (d, d)
    lam_t = math.exp(-2.0 * t) * lam_cov + dt  # Σ_t eigenvalues (diagonal basis)
    kappa, mustar2 = k["mu1"] ** 2 / k["Gamma2"], k["mustar2"]
    vp2 = float(np.sum(Vperp * Vperp))
    ysq = np.sum(Y * Y, axis=1)
    cross = np.sum(Y * (k["b"] * FQ.T), axis=1)  # diag of Y (Qnᵀ Ṽ)ᵀ
    cross0 = float(np.sum(Vperp * V))
    psi_p = p / d
    train, test = [], []
    for tau in np.atleast_1d(np.asarray(taus, dtype=np.float64)):
        x = 2.0 * dt * lam * tau / psi_p
        x0 = 2.0 * dt * k["s2"] * tau / psi_p
        f, f0 = np.expm1(-x) / lam, math.expm1(-x0) / k["s2"]
        train.append(1.0 - (ysq @ (-np.expm1(-2.0 * x) / lam) + vp2 * (-math.expm1(-2.0 * x0)) / k["s2"]) / d)
        fY = f[:, None] * Y
        FX = FQ @ fY + f0 * FVp                # Fᵀ f(U) V  (d, d)
        quad = kappa * float(np.sum(lam_t[:, None] * FX * FX)) + mustar2 * (float(np.sum(fY * fY)) + f0 * f0 * vp2)
        lin = float(f @ cross) + f0 * cross0
        test.append(1.0 + (quad + 2.0 * lin) / d)
    train, test = np.array(train), np.array(test)
    fisher_over_d = float(np.mean(1.0 / lam_t))
    return {"train_loss": train, "test_loss": test, "score_error": (test - 1.0) / dt + fisher_over_d,
            "eigenvalues": lam, "n_trivial": p - lam.size}


def ge_finite_curves(taus, activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 8.0,
                     d: int = 64, atoms=None, seeds: Sequence[int] = (0,)) -> dict:
    """Fallback L_train, L_test, E_score from finite-d Gaussian-equivalent draws (docs/theory.md §3, Lemma C.1).

    Not a deterministic equivalent: for each seed draws W, Gaussian data (covariance spectrum
    ``atoms``) and Ω, then evaluates the exact eigen-mode formulas of docs/theory.md §3 on the Lemma C.1
    matrices (:func:`ge_lowrank_curves`). Returns seed means and standard errors (``*_sem``).
    """
    taus = np.asarray(taus, dtype=np.float64)
    p, n = int(round(psi_p * d)), int(round(psi_n * d))
    if atoms is None:
        cov = np.ones(d)
    else:
        cov = spectrum_eigenvalues(d, atoms=atoms)  # largest-remainder atom counts
    runs = {"train_loss": [], "test_loss": [], "score_error": []}
    for sd in seeds:
        rng = np.random.default_rng(sd)
        W = rng.standard_normal((p, d))
        X = rng.standard_normal((n, d)) * np.sqrt(cov)
        r = ge_lowrank_curves(taus, W, X, t, activation, cov_eigs=cov, seed=rng)
        for key in runs:
            runs[key].append(r[key])
    out = {}
    for key, vals in runs.items():
        a = np.array(vals)
        out[key] = a.mean(0)
        out[key + "_sem"] = a.std(0, ddof=1) / math.sqrt(len(seeds)) if len(seeds) > 1 else np.zeros(a.shape[1])
    out["method"] = f"gaussian-equivalent finite-d exact modes (d={d}, seeds={list(seeds)})"
    return out


def _finite(x) -> float:
    """A float, NaN for None or non-finite values (undefined quantities)."""
    if x is None:
        return math.nan
    x = float(x)
    return x if math.isfinite(x) else math.nan


def theory_spectrum(nodes, masses, atom_location: float, atom_weight: float, method: str) -> Spectrum:
    """The theory's spectral measure: the atom at s_t² plus the density's quadrature nodes and masses (§6.2)."""
    return Spectrum(np.concatenate([[atom_location], nodes]), np.concatenate([[atom_weight], np.clip(masses, 0, None)]),
                    method)


def _spectral_solution(P, n_quad: int) -> tuple:
    """Theorem 3.1 solved (docs/theory.md §4.3–4.4): the atom's weight, the bulk edges, the V-weighted measure
    on quadrature nodes and the ρ masses on the same nodes."""
    w_atom, atom_ok = atom_weight_numeric(P)
    edges, grid_sol = find_support(P, w_atom=w_atom)
    measure = v_weighted_measure(P, edges, n_quad)
    rho = density(measure.solution, measure.nodes, P, w_atom)       # ρ masses per bulk on the same nodes
    rho_w = rho * (np.concatenate([bulk_quadrature(e, n_quad)[1] for e in edges]) if edges else np.zeros(0))
    return w_atom, atom_ok, edges, grid_sol, measure, rho_w


def _timescales(P, c, t, edges, masses, activation, psi_p, psi_n, atoms_n, sx2_arg) -> dict:
    """Spectral timescales (docs/theory.md §4.8); with the finite-d correction the Theorem 3.2 quantities,
    which are d → ∞ limits, come from the untyped parameters."""
    ts = spectral_timescales(P, c.delta, c.mu1, c.Gamma2, t, edges, masses)
    if P.typed:
        P_inf = spectrum_params(activation, t, psi_p, psi_n, atoms=atoms_n, sigma_x2=sx2_arg)
        ts.update({k: v for k, v in spectral_timescales(P_inf, c.delta, c.mu1, c.Gamma2, t).items()
                   if k.endswith("_asymptotic") or k in ("tau_gen", "tau_gen_mean")})
    return ts


def _test_curves(taus, test_method, P, edges, activation, t, psi_p, psi_n, sx2_arg, atoms_n, ge_d, ge_seeds,
                 diagnostics: dict) -> tuple:
    """(test loss, score error, τ → ∞ test loss, extra curves, method) by the deterministic equivalent
    (docs/theory.md §4.7) or the finite-d Gaussian-equivalent cross-check; records its diagnostics."""
    if test_method in ("auto", "de"):
        g = generalisation_curves(np.append(np.where(np.isinf(taus), 1e300, taus), np.inf), activation, t,
                                  psi_p, psi_n, sigma_x2=sx2_arg, atoms=atoms_n, edges=None if P.typed else edges)
        diagnostics.update(test_contour_error=g["contour_error"], test_n_nonconverged=g["n_nonconverged"])
        return g["test_loss"][:-1], g["score_error"][:-1], float(g["test_loss"][-1]), {}, g["method"]
    ge = ge_finite_curves(taus, activation, t, psi_p, psi_n, d=ge_d, atoms=atoms_n, seeds=ge_seeds)
    return ge["test_loss"], ge["score_error"], math.nan, {"train_loss_ge": ge["train_loss"]}, ge["method"]


def predict(activation="tanh", t: float = 0.1, psi_p: float = 64.0, psi_n: float = 8.0, atoms=None,
            sigma_x2: Optional[float] = None, taus=None, test_loss: bool = True, ge_d: int = 64,
            ge_seeds: Sequence[int] = (0,), n_quad: int = 512, d: Optional[int] = None,
            test_method: str = "auto", finite_d: bool = False) -> Prediction:
    """Theory predictions for one (activation, t, ρ_Σ, ψ_p, ψ_n): spectrum, spectral timescales, curves (docs/theory.md §4).

    ``d`` (optional) switches on the finite-d sample-norm correction of :func:`spectrum_params`
    (docs/theory.md §4.5): the memorisation edge ``lambda_mem`` is then the spectral quantile
    ``1 − ψ_n/ψ_p + 1/(2p)`` with p = ψ_p d (the rule applied to exact eigenvalues; the bulk may
    be split into small islands by the discrete norm types, so support edges are not used), and
    without ``d`` the quantile 0.1 % of the bulk's mass past ``1 − ψ_n/ψ_p``.

    With ``taus``: ``curves`` holds ``train_loss`` (deterministic equivalent, §4.6) and, if
    ``test_loss``, ``test_loss``, ``gen_gap`` and ``score_error`` by ``test_method``: ``"de"``
    (= ``"auto"``) — the two-resolvent deterministic equivalent of :func:`generalisation_curves`
    (§4.7; any ρ_Σ; d → ∞ equations even when ``d`` is given), or ``"ge"`` — the finite-d
    Gaussian-equivalent cross-check :func:`ge_finite_curves` at ``ge_d`` (its train curve in
    ``curves.extra["train_loss_ge"]``). Undefined values (e.g. no memorisation bulk) are NaN.

    ``finite_d=True`` (needs ``d``; isotropic data) returns :func:`rfdiff.theory.finite_d.predict_finite_d`
    instead: the train loss by the finite-d conditional kernel equivalent (docs/theory.md §8), every other
    field as with ``d`` alone; ``diagnostics["finite_d_method"]`` and ``curves.method`` say which is which.
    """
    if finite_d:
        if d is None:
            raise ValueError("d: finite_d=True needs the model's d")
        if atoms is not None:
            raise ValueError("atoms: the finite-d train loss (docs/theory.md §8) is for isotropic data; give sigma_x2")
        if test_method not in ("auto", "de"):
            raise ValueError(f"test_method: finite_d=True uses the deterministic equivalent, got {test_method!r}")
        from .finite_d import predict_finite_d
        return predict_finite_d(activation, t, psi_p, psi_n, d=d, sigma_x2=1.0 if sigma_x2 is None else sigma_x2,
                                taus=taus, test_loss=test_loss)
    if test_method not in ("auto", "de", "ge"):
        raise ValueError(f"test_method must be 'auto', 'de' or 'ge', got {test_method!r}")
    if taus is not None:
        taus = np.atleast_1d(np.asarray(taus, dtype=np.float64))
        if taus.ndim != 1 or taus.size == 0 or np.any(np.isnan(taus)) or np.any(taus < 0):
            raise ValueError("taus must be a non-empty 1-d array of values >= 0 (np.inf gives the τ → ∞ limit)")
    lam_s, w_s, sx2 = normalize_atoms(atoms, sigma_x2)
    atoms_n = None if atoms is None else list(zip(lam_s.tolist(), w_s.tolist()))
    sx2_arg = sx2 if atoms is None else None
    P = spectrum_params(activation, t, psi_p, psi_n, atoms=atoms_n, sigma_x2=sx2_arg, d=d)
    c = ge_constants(activation, t, sx2)
    w_atom, atom_ok, edges, grid_sol, measure, rho_w = _spectral_solution(P, n_quad)
    masses = [float(rho_w[measure.bulk == k].sum()) for k in range(len(edges))]
    ts = _timescales(P, c, t, edges, masses, activation, psi_p, psi_n, atoms_n, sx2_arg)
    spec = theory_spectrum(measure.nodes, rho_w, P.s2, w_atom,
                           "Theorem 3.1" + (f" with the finite-d norm correction (d = {d})" if d else " (d → ∞)"))
    q_mem = 1.0 - psi_n / psi_p + (0.5 / (psi_p * d) if d else 1e-3 * psi_n / psi_p)
    lam_mem = spec.quantile(q_mem) if edges and 0 < q_mem < 1 and psi_n < psi_p else math.nan
    lab = ts["bulk_labels"] or {"population": []}
    diagnostics = {"n_nonconverged": int(np.sum(~measure.converged) + np.sum(~grid_sol["converged"])
                                         + (0 if atom_ok else 1)),
                   "total_mass": float(w_atom + sum(masses))}
    curves, test_inf = None, math.nan
    if taus is not None:
        train = train_loss_curve(taus, P, c.delta, measure)
        test = score = None
        extra = {}
        methods = {"train_loss": "deterministic equivalent (V-weighted measure, Theorem 3.1)"}
        if test_loss:
            test, score, test_inf, extra, methods["test_loss"] = _test_curves(
                taus, test_method, P, edges, activation, t, psi_p, psi_n, sx2_arg, atoms_n, ge_d, ge_seeds, diagnostics)
        diagnostics["curves_method"] = methods
        curves = Curves(taus, train, test, None, score, None, extra, method="theory: " + "; ".join(
            f"{k}: {v}" for k, v in methods.items()))
    return Prediction(
        activation=c.activation, t=float(t), psi_p=float(psi_p), psi_n=float(psi_n),
        atoms=[[float(a), float(b)] for a, b in zip(lam_s, w_s)], sigma_x2=float(sx2), d=P.d,
        constants=c.as_dict(), spectrum=spec, atom_location=float(P.s2), atom_weight=float(w_atom),
        atom_weight_formula=float(P.atom_weight_formula()), atom_weight_asymptotic=float(ts["atom_weight_asymptotic"]),
        edges=[[float(a), float(b)] for a, b in edges], bulk_masses=masses,
        bulk_v_masses=[float(measure.weights[measure.bulk == k].sum()) for k in range(len(edges))],
        bulk_labels=ts["bulk_labels"], finite_group=ts["finite_group"], lambda_mem=_finite(lam_mem),
        lambda_mem_support=_finite(ts["lambda_min"]), lambda_mem_asymptotic=_finite(ts["lambda_min_asymptotic"]),
        tau_gen_spectral=_finite(ts["tau_gen"]), tau_gen_spectral_exact=_finite(ts["tau_gen_exact"]),
        tau_gen_mean=_finite(ts["tau_gen_mean"]),
        tau_mem_spectral=psi_p / (c.delta * lam_mem) if lam_mem > 0 else math.nan,
        tau_mem_asymptotic=_finite(ts["tau_mem_asymptotic"]),
        rho1_edges_asymptotic=list(ts["rho1_edges_asymptotic"]), rho2_edges_asymptotic=ts["rho2_edges_asymptotic"],
        train_loss_inf=float(train_loss_curve([np.inf], P, c.delta, measure)[0]),
        train_loss_plateau=float(train_loss_curve([np.inf], P, c.delta, measure, lab["population"])[0])
        if lab["population"] else math.nan,
        test_loss_inf=test_inf, curves=curves, diagnostics=diagnostics)
