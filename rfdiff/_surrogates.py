"""Surrogates of the exact train matrix U that each replace one part of it: where the finite-d gap comes from (docs/theory.md §7.1).

With the Mehler factors ``G0 = g_0(M, s)``, ``G1 = g_1(M, s)`` of the training set (docs/theory.md
§2.4), the exact noise-averaged U is ``G0 G0ᵀ/n + C``, C the noise covariance averaged over the
training set. :func:`train_loss_surrogates` returns L_train(τ → ∞) = 1 − (1/d) Tr Vᵀ Û⁻¹ V of the
exact model and of surrogates Û, all with the exact V (so each is the loss of a valid model):

* ``order1``: C's off-diagonal truncated at Mehler order 1, ``Δ_t K ∘ (G1 G1ᵀ/n)``, K = WWᵀ/d;
* ``slopes_avg``: the per-point slopes replaced by their average, ``Δ_t K ∘ ḡ ḡᵀ``;
* ``mean_iid``: the mean's nonlinear part (G0 minus its population linear part, per neuron)
  replaced by independent Gaussians of the same population variance, with the exact C;
* ``both``: slopes_avg and mean_iid together (closest to the Gaussian-equivalent model).

Every diagonal is the exact one.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ._util import check_positive, gauss_hermite
from .diffusion import delta
from .matrices import smoothed_rows, train_matrices
from .results import register

__all__ = ["TrainLossSurrogates", "train_loss_surrogates", "POPULATION_QUADRATURE"]

POPULATION_QUADRATURE = 64
"""Gauss–Hermite nodes of the population moments of each neuron's mean feature."""


@register
@dataclasses.dataclass(frozen=True)
class TrainLossSurrogates:
    """L_train(τ → ∞) of the exact model and of the surrogates of the module docstring."""

    exact: float
    order1: float
    slopes_avg: float
    mean_iid: float
    both: float


def train_loss_surrogates(W, X, t: float, activation="tanh", tol: float = 1e-10, seed: int = 0) -> TrainLossSurrogates:
    """L_train(∞) of the exact model and of its surrogates on the draws W (p, d), X (n, d) (docs/theory.md §7.1).

    The population moments of each neuron's mean feature h ~ N(0, e^{-2t}‖w‖²/d) use
    Gauss–Hermite quadrature (:data:`POPULATION_QUADRATURE` nodes) over h and
    :func:`rfdiff.matrices.smoothed_rows` for the noise average (Stein: the population slope is
    E[g_0(h) h]/E h² = E g_1(h)). ``mean_iid`` draws its Gaussians from ``numpy.random.default_rng(seed)``.
    """
    t = check_positive("t", t)
    W, X = np.asarray(W, dtype=np.float64), np.asarray(X, dtype=np.float64)
    (p, d), n = W.shape, X.shape[0]
    exact = train_matrices(W, X, t, activation, tol=tol)
    U, V = np.asarray(exact.U), np.asarray(exact.V)
    order = int(exact.info["quad_order"])            # the Gauss–Hermite size train_matrices chose
    dt = delta(t)
    wn2 = np.sum(W * W, axis=1) / d
    s = np.sqrt(dt * wn2)                            # noise scale of each preactivation (§2.4)
    M = math.exp(-t) * (W @ X.T) / math.sqrt(d)      # noise-free preactivations (p, n)
    (G0, G1), _ = smoothed_rows(activation, M, s, 1, order)
    z, wq = gauss_hermite(POPULATION_QUADRATURE)
    sm = math.exp(-t) * np.sqrt(wn2)                 # population s.d. of the mean preactivation, per neuron
    gq, _ = smoothed_rows(activation, sm[:, None] * z[None, :], s, 1, order)
    mean0, slope = gq[0] @ wq, gq[1] @ wq
    res_var = (gq[0] ** 2) @ wq - mean0 ** 2 - slope ** 2 * sm ** 2
    K = W @ W.T / d
    mean_exact = G0 @ G0.T / n
    C = U - mean_exact
    diag_C = np.diag(C).copy()

    def with_diag(A):
        A[np.diag_indices(p)] = diag_C
        return A

    def linf(Uh):
        return float(1.0 - np.trace(V.T @ np.linalg.solve(Uh, V)) / d)

    gbar = G1.mean(axis=1)
    C_avg = with_diag(dt * K * np.outer(gbar, gbar))
    rng = np.random.default_rng(seed)
    G_iid = mean0[:, None] + slope[:, None] * M + rng.standard_normal((p, n)) * np.sqrt(np.maximum(res_var, 0))[:, None]
    mean_iid = G_iid @ G_iid.T / n
    return TrainLossSurrogates(linf(U), linf(mean_exact + with_diag(dt * K * (G1 @ G1.T / n))),
                               linf(mean_exact + C_avg), linf(mean_iid + C), linf(mean_iid + C_avg))
