"""Theorem 3.2 (rfdiff.theory.asymptotics, docs/theory.md §4): atom weight, ρ_1, ρ_2, bulk labels."""
from __future__ import annotations

import math

import numpy as np
import pytest
from theory_checks import TWO_ATOMS, mu1_g2, split_by_gaps

from rfdiff.theory import (atom_weight_asymptotic, classify_bulks, rho1_density, rho1_edges, rho2_edges, rho2_solve,
                           solve_spectrum, spectrum_params)


def test_rho1_edges_asymptotic_at_large_psi():
    """The memorisation-bulk edges tend to Theorem 3.2's s² + v²(1 ± √(ψ_p/ψ_n))² as ψ_n grows (ψ_p/ψ_n = 16)."""
    errs = []
    for psi_n in (16.0, 64.0, 256.0):
        res = solve_spectrum("tanh", 0.1, 16 * psi_n, psi_n)
        P = res.params
        ts = classify_bulks(res.edges, res.bulk_masses, P, *mu1_g2(P), 0.1)
        lo, hi = res.edges[ts["memorisation"]]
        alo, ahi = rho1_edges(P)
        errs.append(max(abs(lo / alo - 1), abs(hi / ahi - 1)))
        assert res.atom_weight == pytest.approx(atom_weight_asymptotic(16 * psi_n, psi_n), abs=1e-8)
    assert errs[0] > errs[1] > errs[2]
    assert errs[0] < 0.03 and errs[2] < 0.003  # measured: 0.017, 0.0043, 0.0014 (0.0007 at ψ_n = 1024)


def test_rho1_density_normalised():
    P = spectrum_params("tanh", 0.1, 64.0, 8.0)
    lo, hi = rho1_edges(P)
    x = np.linspace(lo, hi, 200001)
    assert np.trapezoid(rho1_density(x, P), x) == pytest.approx(1.0, abs=1e-4)
    P2 = spectrum_params("tanh", 0.1, 4.0, 8.0)  # underparameterised
    lo, hi = rho1_edges(P2)
    x = np.linspace(lo, hi, 200001)
    assert np.trapezoid(rho1_density(x, P2), x) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("atoms", [None, TWO_ATOMS])
def test_rho2_bai_silverstein(atoms):
    """ρ_2 (Ũ's d nontrivial eigenvalues): mass 1, isotropic edges μ1²(√ψ_p ± 1)² + s² + v², and vs a sampled Ũ."""
    t = 0.1
    P = spectrum_params("tanh", t, 64.0, 8.0, atoms=atoms)
    mu1, g2 = mu1_g2(P, t)
    edges = rho2_edges(P, mu1, g2, t)
    if atoms is None:
        assert np.allclose(edges[0], [P.s2 + P.v2 + mu1 ** 2 * (8 - 1) ** 2, P.s2 + P.v2 + mu1 ** 2 * 81], rtol=1e-10)
    lam = np.linspace(edges[0][0] - 1, edges[-1][1] + 1, 6001)
    rho, ok = rho2_solve(lam, P, mu1, g2, t)
    assert ok.all()
    assert np.trapezoid(rho, lam) == pytest.approx(1.0, abs=2e-3)
    # Ũ = κ F Σ_t Fᵀ + μ*² I: its d nontrivial eigenvalues from the d×d matrix κ Σ_t^½ FᵀF Σ_t^½ + μ*²
    d = 64
    rng = np.random.default_rng(5)
    F = rng.standard_normal((64 * d, d)) / math.sqrt(d)
    cov = np.ones(d) if atoms is None else np.repeat([0.5, 1.5], d // 2)
    st = np.sqrt(math.exp(-2 * t) * cov - math.expm1(-2 * t))
    ev = np.linalg.eigvalsh((mu1 ** 2 / g2) * (st[:, None] * (F.T @ F) * st[None, :])) + P.s2 + P.v2
    for (lo, hi), grp in zip(edges, split_by_gaps(ev, edges)):
        assert len(grp) == d // len(edges)
        # finite-sample edge fluctuation of 32–64 eigenvalues: measured ≤ 6 % of the width
        assert abs(grp.min() - lo) < 0.1 * (hi - lo) and abs(grp.max() - hi) < 0.1 * (hi - lo)
