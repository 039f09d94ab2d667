"""Helpers shared by the tests of rfdiff.theory (tests/rfdiff/theory/): moments, bulk reports, exact U at small d."""
from __future__ import annotations

import math

import jax
import numpy as np

from rfdiff.theory import ge_constants, solve_resolvent, solve_spectrum
from rfdiff.theory.curves import theory_spectrum
from rfdiff.theory.spectrum import bulk_quadrature, density

TWO_ATOMS = [(0.5, 0.5), (1.5, 0.5)]


def moments(res, n_quad=512):
    """Mass and first moment of ρ (atom included) by bulk quadrature."""
    P = res.params
    mass, mom = res.atom_weight, res.atom_weight * P.s2
    for e in res.edges:
        x, w = bulk_quadrature(e, n_quad)
        sol = solve_resolvent(x, P, eps=1e-12 * (x - P.s2))
        rho = (sol["q"] + res.atom_weight / (x + 1j * sol["eps"] - P.s2)).imag / math.pi
        mass += rho @ w
        mom += (rho * x) @ w
    return mass, mom


def mu1_g2(P, t=0.1):
    c = ge_constants("tanh", t, P.sigma_x2)
    return c.mu1, c.Gamma2


def split_by_gaps(ev, edges):
    """Eigenvalues grouped per bulk, the groups separated at the midpoints of the gaps between bulks."""
    cuts = [0.5 * (edges[k][1] + edges[k + 1][0]) for k in range(len(edges) - 1)]
    idx = np.searchsorted(cuts, ev)
    return [ev[idx == k] for k in range(len(edges))]


def bulk_report(ev, res, bin_size: int = 25):
    """Per bulk: count by gap split, relative edge errors, max relative error per bin (≥ bin_size expected
    eigenvalues a bin) and the Kolmogorov distance between the empirical and theoretical in-bulk CDFs."""
    P = res.params
    ev = np.sort(np.asarray(ev))
    cut_atom = 0.5 * (P.s2 + res.edges[0][0]) if res.atom_weight > 0 else -np.inf
    groups = split_by_gaps(ev[ev > cut_atom], res.edges)
    out = []
    for (lo, hi), m, grp in zip(res.edges, res.bulk_masses, groups):
        nodes, w = bulk_quadrature((lo, hi), 400)
        sol = solve_resolvent(nodes, P, eps=1e-12 * (nodes - P.s2))
        dens = (sol["q"] + res.atom_weight / (nodes + 1j * sol["eps"] - P.s2)).imag / math.pi * w
        o = np.argsort(nodes)
        cdf_n, cdf_v = nodes[o], np.cumsum(dens[o]) / dens.sum()
        F = lambda x: np.interp(x, cdf_n, cdf_v, left=0.0, right=1.0)  # noqa: E731
        c = round(m * ev.size)
        nb = max(1, c // bin_size)
        be = np.linspace(lo, hi, nb + 1)
        th = np.diff(F(be)) * c
        emp = np.histogram(np.clip(grp, lo, hi), be)[0] if grp.size else np.zeros(nb)
        k = np.arange(1, grp.size + 1) / max(grp.size, 1)
        ks = float(max(np.max(np.abs(k - F(grp))), np.max(np.abs(k - 1.0 / grp.size - F(grp))))) if grp.size else 1.0
        out.append({"count": int(grp.size), "count_theory": c,
                    "lo_err": float((grp.min() - lo) / lo) if grp.size else np.inf,
                    "hi_err": float((grp.max() - hi) / hi) if grp.size else np.inf,
                    "max_bin_rel": float(np.max(np.abs(emp - th) / th)), "ks": ks})
    return out


def exact_U(d, t, psi_n, atoms, seed, psi_p=64):
    """W, X and the exact noise-averaged training matrices (rfdiff.matrices) at p = ψ_p d, n = ψ_n d."""
    from rfdiff import data as rdata
    from rfdiff.features import init_W
    from rfdiff.matrices import train_matrices
    p, n = int(psi_p * d), int(psi_n * d)
    kW, kX = jax.random.split(jax.random.PRNGKey(seed))
    W = init_W(kW, p, d)
    data = rdata.isotropic(d) if atoms is None else rdata.gaussian_spectrum(d, atoms=atoms)
    X = data.sample(kX, n)
    return W, X, train_matrices(W, X, t)


def theory_quantiles(qs, t, psi_p, psi_n, d=None):
    """λ at spectral quantiles ``qs`` of the theory (finite-d correction when ``d`` is given), by the rule of
    :meth:`rfdiff.results.Spectrum.quantile` on the atom plus 400 quadrature nodes per bulk."""
    res = solve_spectrum("tanh", t, psi_p, psi_n, d=d)
    P = res.params
    x = np.concatenate([bulk_quadrature(e, 400)[0] for e in res.edges])
    w = np.concatenate([bulk_quadrature(e, 400)[1] for e in res.edges])
    sol = solve_resolvent(x, P, eps=1e-12 * (x - P.s2))
    spec = theory_spectrum(x, density(sol, x, P, res.atom_weight) * w, P.s2, res.atom_weight, "test")
    return np.array([spec.quantile(q) for q in qs])


def mem_quantile_errors(ev, d, psi_p, psi_n, t):
    """Relative errors of the finite-d theory's memorisation-bulk quartiles and last eigenvalue against ``ev``."""
    p, n = int(psi_p * d), int(psi_n * d)
    qs = [1 - 0.75 * n / p, 1 - 0.5 * n / p, 1 - 0.25 * n / p, 1 - d / p - 0.5 / p]
    return theory_quantiles(qs, t, psi_p, psi_n, d) / np.array([np.quantile(ev, q) for q in qs]) - 1
