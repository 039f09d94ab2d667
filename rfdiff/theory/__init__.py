"""Spectral theory of the random-features score model (docs/theory.md §4).

* :func:`ge_constants` — Gaussian-equivalence constants a_t, b_t, v_t², s_t², μ_1, μ_*² (eqs. 12–14).
* :func:`solve_spectrum` — Theorem 3.1 for any ρ_Σ given as atoms: ρ(λ), the atom at s_t², bulk
  edges, V-weighted measure; vectorised ε-continuation + Newton with per-point convergence flags.
* :mod:`.asymptotics` — Theorem 3.2: atom weight, ρ_1 (shifted Marchenko–Pastur), ρ_2
  (Bai–Silverstein for Ũ), τ_gen, τ_mem, the finite-ψ group above s_t².
* :func:`predict` — one-call predictions: timescales, plateau and τ → ∞ losses, curves over τ
  (train loss by deterministic equivalent; test loss and score error by the two-resolvent
  deterministic equivalent of :func:`generalisation_curves`, any ρ_Σ; the finite-d
  Gaussian-equivalent curves of :func:`ge_finite_curves` remain as a cross-check).
* :mod:`.gaussian_equivalent` — Lemma C.1 samplers of U, V, Ũ, Ṽ.
"""
from .asymptotics import (atom_weight_asymptotic, classify_bulks, rho1_density, rho1_edges, rho2_edges,  # noqa: F401
                          rho2_solve, spectral_timescales)
from .constants import GEConstants, ge_constants  # noqa: F401
from .curves import (VWeightedMeasure, ge_finite_curves, ge_lowrank_curves, predict, train_loss_curve,  # noqa: F401
                     v_weighted_measure)
from .generalisation import generalisation_curves, mp_quadrature, sample_covariance_law  # noqa: F401
from .finite_d import conditional_kernel, predict_finite_d, train_loss_de  # noqa: F401
from .gaussian_equivalent import (ge_dynamics, ge_population_matrices, ge_train_lowrank, ge_train_matrices,  # noqa: F401
                                  sample_gaussian_equivalent)
from .spectrum import (SpectrumParams, SpectrumResult, find_support, solve_resolvent, solve_spectrum,  # noqa: F401
                       solve_spectrum_params, spectrum_params)

__all__ = [
    "ge_constants", "GEConstants", "solve_spectrum", "solve_spectrum_params", "solve_resolvent", "spectrum_params",
    "SpectrumParams", "SpectrumResult", "find_support", "predict", "train_loss_curve", "v_weighted_measure",
    "VWeightedMeasure", "ge_finite_curves", "ge_lowrank_curves", "atom_weight_asymptotic", "rho1_edges",
    "rho1_density", "rho2_edges",
    "rho2_solve", "classify_bulks", "spectral_timescales", "ge_train_matrices", "ge_train_lowrank", "ge_population_matrices",
    "sample_gaussian_equivalent", "ge_dynamics", "generalisation_curves", "mp_quadrature", "sample_covariance_law",
]
